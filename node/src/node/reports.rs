//! The municipality's accounts, added up from the log: the daily close per
//! cash point and operator, the remittance statement per cash point and
//! period (what the *agente contabile* signs), the yearly statement per
//! payer and child (the 730 attestation), and the movements per service
//! and day. At the hub they count what the hub counts; at a cash point its
//! own operations awaiting a verdict count too, and the report says
//! `provisional`. What awaits a verdict or is flagged is listed apart.

use std::collections::BTreeMap;

use saldo_api::payments::{MethodTotal, PaymentMethodApi};
use saldo_api::reports::{
    CashPointDay, ChildYear, DailyCloseReport, MovementRow, MovementsReport, OperatorDay, PayerYear, Pending,
    REPORT_DAYS_MAX, RemittanceLine, RemittanceReport, RemittanceStatement, ServicePaid, Tally, YearlyReport,
};
use saldo_sync::{AuthorId, Balance, Body, OpId, OpKind, ReceiptNo, SignedOp};

use super::counter::field;
use super::money_requests::{day_of_ms, day_span_ms};
use super::{Node, NodeError, Result};
use crate::store::{ReportOp, TillOp, Tx};

fn decode(bytes: &[u8]) -> Result<SignedOp> {
    SignedOp::decode(bytes).map_err(|e| NodeError::Refused(format!("stored operation: {e}")))
}

fn balance(minor: i64) -> Balance {
    Balance::from_minor(minor).unwrap_or(Balance::ZERO)
}

fn is_receipt(kind: &str) -> bool {
    kind == OpKind::TopUp.name() || kind == OpKind::DuePayment.name()
}

fn counted(op: &ReportOp, provisional: bool) -> bool {
    if provisional { op.counts_provisional } else { op.counts }
}

/// Notes an operation that does not count: awaiting the hub, or flagged.
fn note_pending(pending: &mut Pending, op: &ReportOp) {
    if op.reversed {
        return; // settled at the counter: its reversal is in the report
    }
    match op.verdict.as_deref() {
        None => pending.awaiting_verdict.add(op.total_minor),
        Some("flagged") => pending.flagged.add(op.total_minor),
        Some(_) => {} // accepted but reversed, or rejected: settled
    }
}

fn add_method(lines: &mut Vec<MethodTotal>, method: Option<&str>, minor: i64) {
    let method = method.and_then(PaymentMethodApi::from_name).unwrap_or(PaymentMethodApi::Other);
    match lines.iter_mut().find(|m| m.method == method) {
        Some(line) => {
            line.count += 1;
            line.total = balance(line.total.minor() + minor);
        }
        None => lines.push(MethodTotal { method, count: 1, total: balance(minor) }),
    }
}

fn operator_of(body: &Body) -> String {
    match body {
        Body::TopUp(t) => t.operator.as_ref().map(|o| o.to_string()).unwrap_or_default(),
        Body::DuePayment(p) => p.operator.as_ref().map(|o| o.to_string()).unwrap_or_default(),
        _ => String::new(),
    }
}

/// What a reversal undid: its target's operator, total and wallet lines.
struct Reversed {
    operator: String,
    total_minor: i64,
    lines: Vec<(saldo_sync::WalletKey, i64)>,
}

fn reversed(tx: &Tx<'_>, target: &OpId) -> Result<Reversed> {
    let bytes = tx.op_bytes(target)?.ok_or_else(|| NodeError::UnknownOperation(target.to_hex()))?;
    let body = decode(&bytes)?.op.body;
    Ok(Reversed {
        operator: operator_of(&body),
        total_minor: crate::state::money_total(&body),
        lines: body.wallet_deltas(),
    })
}

/// `[start, end)` in hybrid logical time of the days `from..=to`.
fn span_hlc(from: u32, to: u32) -> Result<(u64, u64)> {
    let (start, _) =
        day_span_ms(from).ok_or_else(|| field("from".into(), format!("{from}: the calendar has no such day")))?;
    let (_, end) = day_span_ms(to).ok_or_else(|| field("to".into(), format!("{to}: the calendar has no such day")))?;
    Ok((start << 16, end << 16))
}

fn days_between(from: u32, to: u32) -> Option<i64> {
    let date = |d: u32| chrono::NaiveDate::from_ymd_opt((d / 10_000) as i32, d / 100 % 100, d % 100);
    Some((date(to)? - date(from)?).num_days() + 1)
}

impl Node {
    fn provisional_here(&self) -> bool {
        !self.is_hub()
    }

    fn today(&self) -> u32 {
        day_of_ms(self.me.clock.now_ms())
    }

    /// The period `from..=to` with its defaults (this month so far) and bounds.
    fn period(&self, from: Option<u32>, to: Option<u32>) -> Result<(u32, u32)> {
        let to = to.unwrap_or_else(|| self.today());
        let from = from.unwrap_or(to / 100 * 100 + 1);
        match days_between(from, to) {
            None => Err(field("from".into(), format!("{from} to {to}: the calendar has no such days"))),
            Some(days) if days < 1 => Err(field("to".into(), format!("{to} is before {from}"))),
            Some(days) if days > i64::from(REPORT_DAYS_MAX) => Err(field(
                "from".into(),
                format!("{days} days: a report spans at most {REPORT_DAYS_MAX} days; ask for a shorter period"),
            )),
            Some(_) => Ok((from, to)),
        }
    }

    /// The close of `day` (today when `None`) of every cash point that took
    /// money that day, or of `cash_point`: per method and per operator.
    pub fn report_daily_close(&mut self, day: Option<u32>, cash_point: Option<AuthorId>) -> Result<DailyCloseReport> {
        let day = day.unwrap_or_else(|| self.today());
        let provisional = self.provisional_here();
        let (from, to) =
            span_hlc(day, day).map_err(|_| field("day".into(), format!("{day}: the calendar has no such day")))?;
        let tx = self.store.read()?;
        let mut days: BTreeMap<AuthorId, CashPointDay> = BTreeMap::new();
        if let Some(author) = cash_point {
            let name = tx.author(&author)?.map(|a| a.name).ok_or_else(|| {
                field(
                    "cash_point".into(),
                    format!("no device {} is known here: /cash-points lists them", author.to_hex()),
                )
            })?;
            days.insert(author, empty_day(author, name));
        }
        for op in tx.report_ops_between(from, to, cash_point.as_ref())? {
            let receipt = is_receipt(&op.kind);
            let reversal = op.kind == OpKind::Reversal.name();
            if !receipt && !reversal {
                continue;
            }
            let entry = days.entry(op.author).or_insert_with(|| empty_day(op.author, op.author_name.clone()));
            if receipt && let Some(number) = op.receipt.map(ReceiptNo) {
                entry.first_receipt = Some(entry.first_receipt.map_or(number, |f| f.min(number)));
                entry.last_receipt = Some(entry.last_receipt.map_or(number, |l| l.max(number)));
            }
            if !counted(&op, provisional) {
                note_pending(&mut entry.pending, &op);
                continue;
            }
            if receipt {
                let operator = operator_of(&decode(&op.bytes)?.op.body);
                entry.receipts.add(op.total_minor);
                add_method(&mut entry.per_method, op.method.as_deref(), op.total_minor);
                let line = operator_day(&mut entry.operators, operator);
                line.receipts.add(op.total_minor);
                add_method(&mut line.per_method, op.method.as_deref(), op.total_minor);
            } else if let Some(target) = op.reverses {
                let undone = reversed(&tx, &target)?;
                entry.reversals.add(undone.total_minor);
                operator_day(&mut entry.operators, undone.operator).reversals.add(undone.total_minor);
            }
        }
        for (author, entry) in days.iter_mut() {
            for (op, bytes) in tx.counted_ops_of_kind(author, TillOp::DailyClose, provisional)? {
                if matches!(decode(&bytes)?.op.body, Body::DailyClose { day: closed, .. } if closed == day) {
                    entry.closed_by = Some(op);
                }
            }
        }
        Ok(DailyCloseReport { day, provisional, cash_points: days.into_values().collect() })
    }

    /// Each cash point's account for `from..=to` (this month so far by
    /// default): cash owed before, collected, remitted, still owed.
    pub fn report_remittances(
        &mut self,
        from: Option<u32>,
        to: Option<u32>,
        cash_point: Option<AuthorId>,
    ) -> Result<RemittanceReport> {
        let (from, to) = self.period(from, to)?;
        let provisional = self.provisional_here();
        let (start, end) = span_hlc(from, to)?;
        let tx = self.store.read()?;
        let mut statements: BTreeMap<AuthorId, RemittanceStatement> = BTreeMap::new();
        if let Some(author) = cash_point {
            let name = tx.author(&author)?.map(|a| a.name).ok_or_else(|| {
                field(
                    "cash_point".into(),
                    format!("no device {} is known here: /cash-points lists them", author.to_hex()),
                )
            })?;
            statements.insert(author, empty_statement(author, name));
        }
        for op in tx.report_ops_between(start, end, cash_point.as_ref())? {
            let receipt = is_receipt(&op.kind);
            let remittance = op.kind == OpKind::Remittance.name();
            if !receipt && !remittance {
                continue;
            }
            let entry =
                statements.entry(op.author).or_insert_with(|| empty_statement(op.author, op.author_name.clone()));
            if receipt && let Some(number) = op.receipt.map(ReceiptNo) {
                entry.first_receipt = Some(entry.first_receipt.map_or(number, |f| f.min(number)));
                entry.last_receipt = Some(entry.last_receipt.map_or(number, |l| l.max(number)));
            }
            if !counted(&op, provisional) {
                note_pending(&mut entry.pending, &op);
            } else if receipt && op.method.as_deref() == Some("cash") {
                entry.collected_cash.add(op.total_minor);
            } else if receipt {
                entry.collected_cards.add(op.total_minor);
            } else if let Body::Remittance { receipts, amount, reference } = decode(&op.bytes)?.op.body {
                entry.remitted.add(amount.minor());
                entry.remittances.push(RemittanceLine {
                    operation: op.id,
                    day: day_of_ms(op.hlc >> 16),
                    first_receipt: receipts.first,
                    last_receipt: receipts.last,
                    amount,
                    reference: reference.to_string(),
                });
            }
        }
        for (author, entry) in statements.iter_mut() {
            let (collected_minor, remitted_minor) = tx.cash_before(author, start, provisional)?;
            entry.owed_before = balance(collected_minor - remitted_minor);
            entry.owed =
                balance(entry.owed_before.minor() + entry.collected_cash.total.minor() - entry.remitted.total.minor());
        }
        Ok(RemittanceReport { from, to, provisional, cash_points: statements.into_values().collect() })
    }

    /// What each payer (or `payer`, a codice fiscale) paid in `year` (last
    /// year by default) per child and service, traceable and cash apart.
    pub fn report_yearly(&mut self, year: Option<u32>, payer: Option<&str>) -> Result<YearlyReport> {
        let year = year.unwrap_or(self.today() / 10_000 - 1);
        let provisional = self.provisional_here();
        let (start, end) = span_hlc(year * 10_000 + 101, year * 10_000 + 1231)
            .map_err(|_| field("year".into(), format!("{year} is not a year: write it like 2026")))?;
        let realm_name = self.realm_name().to_string();
        let tx = self.store.read()?;
        let mut payers: Vec<PayerYear> = Vec::new();
        for line in tx.year_lines(start, end, payer, provisional)? {
            if payers.last().is_none_or(|p| p.payer_fiscal_code != line.payer_fiscal_code) {
                payers.push(PayerYear {
                    payer_fiscal_code: line.payer_fiscal_code.clone(),
                    payer_surname: line.payer_surname.clone(),
                    payer_name: line.payer_name.clone(),
                    children: Vec::new(),
                    traceable: Balance::ZERO,
                    cash: Balance::ZERO,
                    other: Balance::ZERO,
                });
            }
            let payer = payers.last_mut().expect("pushed above");
            if payer.children.last().is_none_or(|c| c.consumer != line.consumer) {
                payer.children.push(ChildYear {
                    consumer: line.consumer,
                    fiscal_code: line.fiscal_code.clone(),
                    surname: line.surname.clone(),
                    name: line.name.clone(),
                    school: line.school.clone(),
                    services: Vec::new(),
                    traceable: Balance::ZERO,
                    cash: Balance::ZERO,
                    other: Balance::ZERO,
                    refunded: Balance::ZERO,
                });
            }
            let child = payer.children.last_mut().expect("pushed above");
            if child.services.last().is_none_or(|s| s.service != line.service) {
                child.services.push(ServicePaid {
                    service: line.service.clone(),
                    traceable: Tally::default(),
                    cash: Tally::default(),
                    other: Tally::default(),
                    refunded: Tally::default(),
                });
            }
            let service = child.services.last_mut().expect("pushed above");
            if line.refund {
                service.refunded.count += line.payments;
                service.refunded.total = balance(service.refunded.total.minor() - line.total_minor);
                child.refunded = balance(child.refunded.minor() - line.total_minor);
                continue;
            }
            let (tally, child_sum, payer_sum) = match line.method.as_deref() {
                Some("cash") => (&mut service.cash, &mut child.cash, &mut payer.cash),
                Some("debit-card" | "credit-card") => {
                    (&mut service.traceable, &mut child.traceable, &mut payer.traceable)
                }
                _ => (&mut service.other, &mut child.other, &mut payer.other),
            };
            tally.count += line.payments;
            tally.total = balance(tally.total.minor() + line.total_minor);
            *child_sum = balance(child_sum.minor() + line.total_minor);
            *payer_sum = balance(payer_sum.minor() + line.total_minor);
        }
        Ok(YearlyReport { year, realm_name, payers })
    }

    /// The money moved per day, service and device in `from..=to`.
    pub fn report_movements(
        &mut self,
        from: Option<u32>,
        to: Option<u32>,
        device: Option<AuthorId>,
    ) -> Result<MovementsReport> {
        let (from, to) = self.period(from, to)?;
        let provisional = self.provisional_here();
        let (start, end) = span_hlc(from, to)?;
        let tx = self.store.read()?;
        let mut rows: BTreeMap<(u32, String, AuthorId), MovementRow> = BTreeMap::new();
        let mut pending = Pending::default();
        for op in tx.report_ops_between(start, end, device.as_ref())? {
            let kind = op.kind.as_str();
            let moves = [OpKind::TopUp, OpKind::DuePayment, OpKind::ServiceCharge, OpKind::Reversal, OpKind::Refund]
                .iter()
                .any(|k| k.name() == kind);
            if !moves {
                continue;
            }
            if !counted(&op, provisional) {
                note_pending(&mut pending, &op);
                continue;
            }
            let day = day_of_ms(op.hlc >> 16);
            let lines = match op.reverses {
                Some(target) if kind == OpKind::Reversal.name() => reversed(&tx, &target)?.lines,
                _ => decode(&op.bytes)?.op.body.wallet_deltas(),
            };
            for (wallet, delta) in lines {
                let row = rows.entry((day, wallet.service.to_string(), op.author)).or_insert_with(|| MovementRow {
                    day,
                    service: wallet.service.to_string(),
                    device: op.author,
                    device_name: op.author_name.clone(),
                    top_ups: Tally::default(),
                    due_payments: Tally::default(),
                    charges: Tally::default(),
                    reversals: Tally::default(),
                    refunds: Tally::default(),
                });
                let tally = match kind {
                    "top-up" => &mut row.top_ups,
                    "due-payment" => &mut row.due_payments,
                    "service-charge" => &mut row.charges,
                    "reversal" => &mut row.reversals,
                    _ => &mut row.refunds,
                };
                tally.add(delta.abs());
            }
        }
        Ok(MovementsReport { from, to, provisional, rows: rows.into_values().collect(), pending })
    }
}

fn empty_day(cash_point: AuthorId, cash_point_name: String) -> CashPointDay {
    CashPointDay {
        cash_point,
        cash_point_name,
        receipts: Tally::default(),
        first_receipt: None,
        last_receipt: None,
        per_method: Vec::new(),
        reversals: Tally::default(),
        operators: Vec::new(),
        closed_by: None,
        pending: Pending::default(),
    }
}

fn operator_day(operators: &mut Vec<OperatorDay>, operator: String) -> &mut OperatorDay {
    let at = match operators.iter().position(|o| o.operator == operator) {
        Some(at) => at,
        None => {
            operators.push(OperatorDay {
                operator,
                receipts: Tally::default(),
                per_method: Vec::new(),
                reversals: Tally::default(),
            });
            operators.len() - 1
        }
    };
    &mut operators[at]
}

fn empty_statement(cash_point: AuthorId, cash_point_name: String) -> RemittanceStatement {
    RemittanceStatement {
        cash_point,
        cash_point_name,
        owed_before: Balance::ZERO,
        collected_cash: Tally::default(),
        collected_cards: Tally::default(),
        first_receipt: None,
        last_receipt: None,
        remitted: Tally::default(),
        remittances: Vec::new(),
        owed: Balance::ZERO,
        pending: Pending::default(),
    }
}
