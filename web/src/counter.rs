//! The counter's keyboard state machine, without a browser: what each key
//! does at each step of a sale. The page feeds it keys and what is typed in
//! the box that has the focus, and does what the returned [`Effect`] says.
//!
//! A sale: type or scan a PAN, codice fiscale or name in the search box and
//! press Enter (1); the first result gets the focus and the amount box takes
//! what is typed; arrows move among the results (one row per child and
//! service); `+` or Tab puts the amount on the receipt and leaves the box
//! free for a sibling or another service; Enter (2) puts the last amount on
//! the receipt and asks for the method (cash unless switched with F2 or
//! `m`); Enter (3) records it and shows the receipt. Esc cancels the step.

use saldo_api::Lang;
use saldo_api::money::{AmountInputError, parse_amount_input};
use saldo_api::payments::{PaymentMethodApi, TopUpLineRequest, TopUpRequest};
use saldo_sync::op::TOPUP_LINES_MAX;
use saldo_sync::{Amount, Balance, ConsumerId, FamilyId, ServiceId};

/// One result row: a child's wallet for one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub consumer: ConsumerId,
    pub family: FamilyId,
    /// "Rossi Anna".
    pub child: String,
    pub service: ServiceId,
    pub confirmed: Balance,
    pub provisional: Balance,
}

impl Row {
    /// The balance counts operations the hub has not confirmed yet.
    pub fn is_provisional(&self) -> bool {
        self.confirmed != self.provisional
    }
}

/// One line of the receipt being prepared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub consumer: ConsumerId,
    pub family: FamilyId,
    pub child: String,
    pub service: ServiceId,
    pub amount: Amount,
}

/// Where the sale stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Typing in the search box.
    Search,
    /// A result has the focus; the amount box takes what is typed.
    Amount,
    /// The lines are set; Enter records them with the method shown.
    Method,
    /// The request is on its way.
    Recording,
    /// The receipt is shown.
    Receipt,
}

/// The keys the counter knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Enter,
    Escape,
    Up,
    Down,
    /// `+` or Tab in the amount box: one more line on this receipt.
    AddLine,
    /// F2 or `m`: cash → debit card → credit card → cash.
    SwitchMethod,
}

impl Key {
    /// The key of a browser `KeyboardEvent.key`, in the box of `step`.
    pub fn from_dom(key: &str, step: Step) -> Option<Key> {
        match key {
            "Enter" => Some(Key::Enter),
            "Escape" | "Esc" => Some(Key::Escape),
            "ArrowUp" | "Up" => Some(Key::Up),
            "ArrowDown" | "Down" => Some(Key::Down),
            "+" | "Tab" if step == Step::Amount => Some(Key::AddLine),
            "F2" => Some(Key::SwitchMethod),
            "m" | "M" if step == Step::Method => Some(Key::SwitchMethod),
            _ => None,
        }
    }
}

/// What the page does after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Nothing more (the state may have changed: redraw).
    None,
    /// Let the browser handle the key as usual.
    Pass,
    /// Run this search (`GET /consumers?q=`).
    Search(String),
    /// Clear the search box and put the focus in it.
    FocusSearch,
    /// Clear the amount box and put the focus in it.
    FocusAmount,
    /// Put this text back in the amount box, focused.
    RestoreAmount(String),
    /// Put the focus on the method.
    FocusMethod,
    /// Record this top-up (`POST /topups`) with a new idempotency key.
    Record(TopUpRequest),
}

/// Why the counter refused a key, in the operator's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// What was typed in the amount box is not an amount.
    Amount(AmountInputError),
    /// A query the server would refuse (too short, a bad PAN).
    Query(String),
    /// A child of another family: one receipt is one family's.
    OtherFamily,
    /// More lines than one receipt holds.
    TooManyLines,
    /// Enter with nothing typed and nothing on the receipt.
    NothingToRecord,
}

impl Refusal {
    pub fn message(&self, lang: Lang) -> String {
        match self {
            Refusal::Amount(e) => e.message(lang),
            Refusal::Query(m) => m.clone(),
            Refusal::OtherFamily => lang
                .pick(
                    "una ricevuta è di una sola famiglia: registra prima questa, poi l'altra",
                    "one receipt is for one family: record this one first, then the other",
                )
                .into(),
            Refusal::TooManyLines => {
                format!(
                    "{} {TOPUP_LINES_MAX}",
                    lang.pick("righe al massimo su una ricevuta:", "lines at most on one receipt:")
                )
            }
            Refusal::NothingToRecord => {
                lang.pick("scrivi un importo, per esempio 20", "type an amount, like 20").into()
            }
        }
    }

    /// Whether the message belongs next to the amount box (else the search box).
    pub fn is_about_amount(&self) -> bool {
        !matches!(self, Refusal::Query(_))
    }
}

/// The counter's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    pub step: Step,
    pub rows: Vec<Row>,
    /// The result with the focus (an index of `rows`).
    pub focus: usize,
    pub lines: Vec<Line>,
    pub method: PaymentMethodApi,
    pub refusal: Option<Refusal>,
}

impl Default for Counter {
    fn default() -> Self {
        Counter {
            step: Step::Search,
            rows: Vec::new(),
            focus: 0,
            lines: Vec::new(),
            method: PaymentMethodApi::Cash,
            refusal: None,
        }
    }
}

/// `20,50`: an amount as the amount box shows it back.
pub fn amount_text(amount: Amount) -> String {
    let cents = amount.minor();
    format!("{},{:02}", cents / 100, cents % 100)
}

impl Counter {
    /// A key pressed in the box that has the focus; `typed` is that box's text.
    pub fn key(&mut self, key: Key, typed: &str) -> Effect {
        match (self.step, key) {
            (Step::Search, Key::Enter) => match saldo_api::search::parse_query(typed) {
                Ok(_) => {
                    self.refusal = None;
                    Effect::Search(typed.trim().to_owned())
                }
                Err(e) => {
                    self.refusal = Some(Refusal::Query(e.to_string()));
                    Effect::None
                }
            },
            (Step::Search, Key::Escape) => {
                self.reset();
                Effect::FocusSearch
            }
            (Step::Search, Key::Down) if !self.rows.is_empty() => {
                self.step = Step::Amount;
                self.focus = 0;
                Effect::FocusAmount
            }
            (Step::Amount, Key::Up) => {
                if self.focus == 0 {
                    self.step = Step::Search;
                    self.refusal = None;
                    return Effect::FocusSearch;
                }
                self.focus -= 1;
                Effect::None
            }
            (Step::Amount, Key::Down) => {
                self.focus = (self.focus + 1).min(self.rows.len().saturating_sub(1));
                Effect::None
            }
            (Step::Amount, Key::AddLine) => {
                if typed.trim().is_empty() {
                    // Tab with nothing typed moves on, as Tab does.
                    return Effect::Pass;
                }
                match self.add_line(typed) {
                    Ok(()) => Effect::FocusAmount,
                    Err(refusal) => {
                        self.refusal = Some(refusal);
                        Effect::None
                    }
                }
            }
            (Step::Amount, Key::Enter) => {
                if typed.trim().is_empty() && !self.lines.is_empty() {
                    self.refusal = None;
                    self.step = Step::Method;
                    return Effect::FocusMethod;
                }
                if typed.trim().is_empty() {
                    self.refusal = Some(Refusal::NothingToRecord);
                    return Effect::None;
                }
                match self.add_line(typed) {
                    Ok(()) => {
                        self.step = Step::Method;
                        Effect::FocusMethod
                    }
                    Err(refusal) => {
                        self.refusal = Some(refusal);
                        Effect::None
                    }
                }
            }
            (Step::Amount, Key::Escape) => {
                self.lines.clear();
                self.step = Step::Search;
                self.refusal = None;
                Effect::FocusSearch
            }
            (Step::Amount | Step::Method, Key::SwitchMethod) => {
                self.method = match self.method {
                    PaymentMethodApi::Cash => PaymentMethodApi::DebitCard,
                    PaymentMethodApi::DebitCard => PaymentMethodApi::CreditCard,
                    _ => PaymentMethodApi::Cash,
                };
                Effect::None
            }
            (Step::Method, Key::Enter) => {
                let request = TopUpRequest {
                    lines: self
                        .lines
                        .iter()
                        .map(|l| TopUpLineRequest {
                            consumer: l.consumer,
                            service: l.service.clone(),
                            amount: l.amount,
                        })
                        .collect(),
                    method: self.method,
                };
                self.step = Step::Recording;
                Effect::Record(request)
            }
            (Step::Method, Key::Escape) => {
                self.step = Step::Amount;
                match self.lines.pop() {
                    Some(line) => Effect::RestoreAmount(amount_text(line.amount)),
                    None => Effect::FocusAmount,
                }
            }
            (Step::Receipt, Key::Enter | Key::Escape) => {
                self.reset();
                Effect::FocusSearch
            }
            _ => Effect::Pass,
        }
    }

    /// A search answered: the first result takes the focus.
    pub fn results(&mut self, rows: Vec<Row>) -> Effect {
        self.rows = rows;
        self.focus = 0;
        if self.rows.is_empty() {
            self.step = Step::Search;
            return Effect::None;
        }
        self.step = Step::Amount;
        Effect::FocusAmount
    }

    /// The top-up was recorded: the receipt is shown.
    pub fn recorded(&mut self) {
        self.step = Step::Receipt;
        self.refusal = None;
    }

    /// The top-up was refused or failed: back to the method, lines kept.
    pub fn failed(&mut self) {
        self.step = Step::Method;
    }

    /// A wallet's balances changed (an event): the row shows them in place.
    pub fn balance(&mut self, consumer: ConsumerId, service: &ServiceId, confirmed: Balance, provisional: Balance) {
        for row in self.rows.iter_mut().filter(|r| r.consumer == consumer && &r.service == service) {
            row.confirmed = confirmed;
            row.provisional = provisional;
        }
    }

    /// The amount box's message is for the focused result.
    pub fn focused(&self) -> Option<&Row> {
        self.rows.get(self.focus)
    }

    /// Total of the lines on the receipt.
    pub fn total_cents(&self) -> i64 {
        self.lines.iter().map(|l| l.amount.minor()).sum()
    }

    fn reset(&mut self) {
        *self = Counter { method: PaymentMethodApi::Cash, ..Counter::default() };
    }

    fn add_line(&mut self, typed: &str) -> Result<(), Refusal> {
        let amount = parse_amount_input(typed).map_err(Refusal::Amount)?;
        let row = self.rows.get(self.focus).ok_or(Refusal::NothingToRecord)?.clone();
        if self.lines.first().is_some_and(|l| l.family != row.family) {
            return Err(Refusal::OtherFamily);
        }
        self.refusal = None;
        // The same wallet twice: the new amount replaces the old one.
        if let Some(line) = self.lines.iter_mut().find(|l| l.consumer == row.consumer && l.service == row.service) {
            line.amount = amount;
            return Ok(());
        }
        if self.lines.len() >= TOPUP_LINES_MAX {
            return Err(Refusal::TooManyLines);
        }
        self.lines.push(Line {
            consumer: row.consumer,
            family: row.family,
            child: row.child,
            service: row.service,
            amount,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(consumer: u8, family: u8, child: &str) -> Row {
        Row {
            consumer: ConsumerId([consumer; 16]),
            family: FamilyId([family; 16]),
            child: child.into(),
            service: ServiceId::parse("mensa").unwrap(),
            confirmed: Balance::from_minor(1_000).unwrap(),
            provisional: Balance::from_minor(1_000).unwrap(),
        }
    }

    fn rossi() -> Vec<Row> {
        vec![row(1, 7, "Rossi Anna"), row(2, 7, "Rossi Luca"), row(3, 8, "Rossini Ada")]
    }

    #[test]
    fn a_scanned_card_becomes_a_recorded_top_up_in_three_enters() {
        let mut counter = Counter::default();
        assert_eq!(counter.key(Key::Enter, "4111 1111 1111 1111"), Effect::Search("4111 1111 1111 1111".into()));
        assert_eq!(counter.results(vec![row(1, 7, "Rossi Anna")]), Effect::FocusAmount);
        assert_eq!(counter.key(Key::Enter, "20"), Effect::FocusMethod);
        let Effect::Record(request) = counter.key(Key::Enter, "") else { panic!("no record") };
        assert_eq!(request.method, PaymentMethodApi::Cash);
        assert_eq!(request.lines.len(), 1);
        assert_eq!(request.lines[0].amount.minor(), 2_000);
        assert_eq!(counter.step, Step::Recording);
        counter.recorded();
        assert_eq!(counter.key(Key::Enter, ""), Effect::FocusSearch);
        assert_eq!(counter, Counter::default());
    }

    #[test]
    fn two_siblings_go_on_one_receipt_and_the_method_switches() {
        let mut counter = Counter::default();
        assert!(matches!(counter.key(Key::Enter, "rossi"), Effect::Search(_)));
        counter.results(rossi());
        assert_eq!(counter.key(Key::AddLine, "20,00"), Effect::FocusAmount);
        counter.key(Key::Down, "");
        assert_eq!(counter.focus, 1);
        assert_eq!(counter.key(Key::Enter, "15.00"), Effect::FocusMethod);
        counter.key(Key::SwitchMethod, "");
        assert_eq!(counter.method, PaymentMethodApi::DebitCard);
        let Effect::Record(request) = counter.key(Key::Enter, "") else { panic!("no record") };
        assert_eq!(request.method, PaymentMethodApi::DebitCard);
        let amounts: Vec<i64> = request.lines.iter().map(|l| l.amount.minor()).collect();
        assert_eq!(amounts, [2_000, 1_500]);
        assert!(request.validate().is_ok());
    }

    #[test]
    fn a_bad_amount_is_refused_next_to_the_box_and_nothing_is_recorded() {
        let mut counter = Counter::default();
        counter.results(rossi());
        assert_eq!(counter.key(Key::Enter, "12,345"), Effect::None);
        assert_eq!(counter.step, Step::Amount);
        let refusal = counter.refusal.clone().unwrap();
        assert!(refusal.is_about_amount());
        assert!(refusal.message(Lang::It).contains("ambiguo"), "{}", refusal.message(Lang::It));
        assert!(counter.lines.is_empty());
        assert_eq!(counter.key(Key::Enter, ""), Effect::None);
        assert_eq!(counter.refusal, Some(Refusal::NothingToRecord));
    }

    #[test]
    fn another_family_is_refused_on_the_same_receipt() {
        let mut counter = Counter::default();
        counter.results(rossi());
        counter.key(Key::AddLine, "5");
        counter.key(Key::Down, "");
        counter.key(Key::Down, "");
        counter.key(Key::Down, "");
        assert_eq!(counter.focus, 2, "the focus stops at the last result");
        assert_eq!(counter.key(Key::Enter, "5"), Effect::None);
        assert_eq!(counter.refusal, Some(Refusal::OtherFamily));
        assert_eq!(counter.lines.len(), 1);
    }

    #[test]
    fn escape_cancels_each_step() {
        let mut counter = Counter::default();
        counter.results(rossi());
        counter.key(Key::Enter, "20,5");
        assert_eq!(counter.step, Step::Method);
        assert_eq!(counter.key(Key::Escape, ""), Effect::RestoreAmount("20,50".into()));
        assert_eq!(counter.step, Step::Amount);
        assert!(counter.lines.is_empty());
        counter.key(Key::AddLine, "3");
        assert_eq!(counter.key(Key::Escape, ""), Effect::FocusSearch);
        assert!(counter.lines.is_empty());
        assert_eq!(counter.step, Step::Search);
        assert!(matches!(counter.key(Key::Enter, "r"), Effect::None));
        assert!(matches!(counter.refusal, Some(Refusal::Query(_))));
    }

    #[test]
    fn a_balance_event_turns_a_row_confirmed_in_place() {
        let mut counter = Counter::default();
        let mut rows = rossi();
        rows[0].provisional = Balance::from_minor(3_000).unwrap();
        counter.results(rows);
        assert!(counter.rows[0].is_provisional());
        let service = ServiceId::parse("mensa").unwrap();
        let three = Balance::from_minor(3_000).unwrap();
        counter.balance(ConsumerId([1; 16]), &service, three, three);
        assert!(!counter.rows[0].is_provisional());
    }

    #[test]
    fn keys_are_read_from_the_dom_per_step() {
        assert_eq!(Key::from_dom("+", Step::Amount), Some(Key::AddLine));
        assert_eq!(Key::from_dom("+", Step::Search), None);
        assert_eq!(Key::from_dom("m", Step::Method), Some(Key::SwitchMethod));
        assert_eq!(Key::from_dom("m", Step::Search), None);
        assert_eq!(Key::from_dom("F2", Step::Amount), Some(Key::SwitchMethod));
    }
}
