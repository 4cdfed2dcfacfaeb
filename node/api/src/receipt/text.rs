//! A receipt as plain text for thermal printers: 32, 42 or 48 columns,
//! every line wrapped to the width and never wider (a printer would wrap it
//! again, or cut it).

use crate::Lang;
use crate::money::format_eur_cents;

use super::Receipt;
use super::labels::{labels, signed_cents};

/// The widths of thermal receipt printers, in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextWidth {
    /// 58 mm paper, large font.
    Columns32,
    /// 80 mm paper, large font, or 58 mm small.
    Columns42,
    /// 80 mm paper, small font.
    Columns48,
}

impl TextWidth {
    pub fn columns(self) -> usize {
        match self {
            TextWidth::Columns32 => 32,
            TextWidth::Columns42 => 42,
            TextWidth::Columns48 => 48,
        }
    }

    pub fn from_columns(columns: usize) -> Option<TextWidth> {
        match columns {
            32 => Some(TextWidth::Columns32),
            42 => Some(TextWidth::Columns42),
            48 => Some(TextWidth::Columns48),
            _ => None,
        }
    }
}

/// The receipt as lines of text at most `width` columns wide, ending in a newline.
pub fn render_text(receipt: &Receipt, width: TextWidth, lang: Lang) -> String {
    render_columns(receipt, width.columns(), lang)
}

/// Narrowest width the layout works at.
const COLUMNS_MIN: usize = 16;

/// [`render_text`] at any width of at least [`COLUMNS_MIN`] columns.
pub(super) fn render_columns(receipt: &Receipt, width: usize, lang: Lang) -> String {
    let width = width.max(COLUMNS_MIN);
    let l = labels(receipt, lang);
    let mut out = Page { width, lines: Vec::new() };
    out.center(&receipt.realm);
    out.center(&format!("{}: {}", l.cash_point, receipt.cash_point));
    out.rule('=');
    out.center(l.title);
    if receipt.provisional {
        out.center(&format!("** {} **", l.provisional_banner));
    }
    out.pair(l.receipt_number, &receipt.receipt_number.to_string());
    out.pair(l.date, &receipt.recorded_at_local);
    if let Some(operator) = &receipt.operator {
        out.pair(l.operator, operator);
    }
    if let Some(due) = &receipt.due {
        out.pair(l.due, due);
    }
    if let Some(reverses) = &receipt.reverses {
        out.wrap(&format!("{} {} ({})", l.reverses, reverses.receipt_number, reverses.recorded_at_local));
    }
    if let Some(reason) = &receipt.reason {
        out.wrap(&format!("{}: {}", l.reason, reason));
    }
    out.rule('-');
    let mut previous: Option<&saldo_sync::ConsumerId> = None;
    for line in &receipt.lines {
        if previous != Some(&line.consumer) {
            out.pair(&line.consumer_name.to_uppercase(), &line.pan_masked);
            previous = Some(&line.consumer);
        }
        out.pair(&format!("  {}", line.service_name), &format_eur_cents(signed_cents(receipt, line.amount.minor())));
        let marker = if line.provisional { " *" } else { "" };
        out.pair(&format!("  {}{marker}", l.balance_after), &format_eur_cents(line.balance_after.minor()));
    }
    out.rule('-');
    out.pair(l.total, &format_eur_cents(signed_cents(receipt, receipt.total.minor())));
    out.pair(l.method, l.method_name);
    if receipt.provisional || receipt.lines.iter().any(|line| line.provisional) {
        out.wrap(l.provisional_note);
    }
    if let Some(reversed_by) = &receipt.reversed_by {
        out.rule('-');
        out.wrap(&format!("{} {} ({})", l.reversed_by, reversed_by.receipt_number, reversed_by.recorded_at_local));
    }
    if !receipt.last_top_ups.is_empty() {
        out.rule('-');
        out.wrap(&format!("{}:", l.last_top_ups));
        for past in receipt.last_top_ups.iter().take(super::LAST_TOP_UPS_MAX) {
            out.pair(
                &format!("{} {} {}", past.recorded_at_local, past.consumer_name, past.service_name),
                &format_eur_cents(past.amount.minor()),
            );
        }
    }
    out.rule('-');
    out.wrap(&format!("{}:", l.verify));
    out.wrap_hard(&receipt.verification_url);
    out.wrap(&format!("{}: {}", l.code, receipt.verification_code));
    let mut text = out.lines.join("\n");
    text.push('\n');
    text
}

/// Lines being laid out at a fixed width.
struct Page {
    width: usize,
    lines: Vec<String>,
}

impl Page {
    fn rule(&mut self, c: char) {
        self.lines.push(c.to_string().repeat(self.width));
    }

    fn wrap(&mut self, text: &str) {
        self.lines.extend(wrap(&clean(text), self.width));
    }

    /// Breaks anywhere (a URL has no spaces to break at).
    fn wrap_hard(&mut self, text: &str) {
        self.lines.extend(chunks(&clean(text).replace(' ', ""), self.width));
    }

    fn center(&mut self, text: &str) {
        for line in wrap(&clean(text), self.width) {
            let pad = (self.width - width_of(&line)) / 2;
            self.lines.push(format!("{}{line}", " ".repeat(pad)));
        }
    }

    /// `left` and `right` on one line, `right` flush right; wrapped when they
    /// do not fit, `right` staying flush right on the last line.
    fn pair(&mut self, left: &str, right: &str) {
        let (left, right) = (clean_keep_indent(left), clean(right));
        let right_width = width_of(&right);
        let mut lines = wrap_indented(&left, self.width);
        let last = lines.pop().unwrap_or_default();
        if width_of(&last) + 1 + right_width <= self.width {
            let pad = self.width - width_of(&last) - right_width;
            lines.push(format!("{last}{}{right}", " ".repeat(pad)));
        } else {
            if !last.trim().is_empty() {
                lines.push(last);
            }
            for piece in wrap(&right, self.width) {
                let pad = self.width - width_of(&piece);
                lines.push(format!("{}{piece}", " ".repeat(pad)));
            }
        }
        self.lines.extend(lines);
    }
}

/// Columns a character takes on a printer, counted high where unsure, so
/// that a line is never wider than it was laid out: East Asian wide
/// characters and emoji take two.
fn char_width(c: char) -> usize {
    let wide = matches!(u32::from(c),
        0x1100..=0x115F | 0x2E80..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x1F300..=0x1FAFF | 0x20000..=0x3FFFD);
    if wide { 2 } else { 1 }
}

fn width_of(text: &str) -> usize {
    text.chars().map(char_width).sum()
}

/// Data as printable text: control characters (a newline in a name) become
/// spaces, runs of spaces one.
fn clean(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// [`clean`], keeping a leading indent of spaces.
fn clean_keep_indent(text: &str) -> String {
    let indent = text.len() - text.trim_start_matches(' ').len();
    format!("{}{}", " ".repeat(indent), clean(text))
}

/// Greedy word wrap; a word wider than the line is cut.
fn wrap(text: &str, width: usize) -> Vec<String> {
    wrap_indented(text, width)
}

/// [`wrap`], keeping the text's leading indent on its first line.
fn wrap_indented(text: &str, width: usize) -> Vec<String> {
    let indent_len = text.len() - text.trim_start_matches(' ').len();
    let mut lines = Vec::new();
    let mut line = " ".repeat(indent_len.min(width / 2));
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let pieces = if width_of(word) > width { chunks(word, width) } else { vec![word.to_owned()] };
        for piece in pieces {
            let separator = usize::from(!line.trim().is_empty());
            if width_of(&line) + separator + width_of(&piece) <= width {
                if separator == 1 {
                    line.push(' ');
                }
                line.push_str(&piece);
            } else {
                if !line.trim().is_empty() {
                    lines.push(std::mem::take(&mut line));
                } else {
                    line.clear();
                }
                line.push_str(&piece);
            }
        }
    }
    if !line.trim().is_empty() || lines.is_empty() {
        lines.push(line.trim_end().to_owned());
    }
    lines
}

/// `text` cut into pieces at most `width` columns wide.
fn chunks(text: &str, width: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut piece = String::new();
    for c in text.chars() {
        if width_of(&piece) + char_width(c) > width {
            pieces.push(std::mem::take(&mut piece));
        }
        piece.push(c);
    }
    if !piece.is_empty() {
        pieces.push(piece);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;
    use proptest::prelude::*;

    fn assert_fits(text: &str, width: usize) {
        for line in text.lines() {
            assert!(width_of(line) <= width, "{} columns > {width}: {line:?}", width_of(line));
            assert!(!line.chars().any(char::is_control), "{line:?}");
        }
    }

    #[test]
    fn a_two_child_receipt_prints_every_fact_at_32_columns() {
        let receipt = sample();
        let text = render_text(&receipt, TextWidth::Columns32, Lang::It);
        assert_fits(&text, 32);
        let expected = [
            "       Comune di Esempio",
            "  Punto di ricarica: Farmacia",
            "            Centrale",
            "================================",
            "      RICEVUTA DI RICARICA",
            "       ** PROVVISORIA **",
            "Ricevuta n.                   42",
            "Data            29/11/2026 10:32",
            "Operatore           Anna Bianchi",
            "--------------------------------",
            "ROSSI MARIO     ************1111",
            "  Mensa                  20,00 €",
            "  Saldo dopo *           35,50 €",
            "  Scuolabus             100,00 €",
            "  Saldo dopo *        1.234,50 €",
            "ROSSI GIULIA    ************2222",
            "  Mensa                  20,00 €",
            "  Saldo dopo *           -4,50 €",
            "--------------------------------",
            "TOTALE                  140,00 €",
            "Pagamento               contanti",
            "* saldo provvisorio: in attesa",
            "di conferma dell'Ente",
            "--------------------------------",
            "Ultime ricariche:",
            "28/11/2026 Rossi Mario Mensa",
            "                         15,50 €",
            "--------------------------------",
            "Verifica la ricevuta:",
            "https://hub.comune.example/v/7KQ",
            "2M9XW4R",
            "Codice: 7KQ2M9XW4R",
        ];
        assert_eq!(text.lines().collect::<Vec<_>>(), expected, "\n{text}");
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn english_labels_and_a_confirmed_receipt_have_no_provisional_marker() {
        let mut receipt = sample();
        receipt.provisional = false;
        for line in &mut receipt.lines {
            line.provisional = false;
        }
        let text = render_text(&receipt, TextWidth::Columns48, Lang::En);
        assert_fits(&text, 48);
        assert!(text.contains("TOP-UP RECEIPT") && text.contains("Balance after") && text.contains("cash"));
        assert!(
            !text.contains("PROVISIONAL") && !text.contains("after *") && !text.contains("* provisional"),
            "{text}"
        );
    }

    #[test]
    fn a_reversal_prints_negative_amounts_and_what_it_reverses() {
        let mut receipt = sample();
        receipt.kind = super::super::ReceiptKind::Reversal;
        receipt.reason = Some("importo sbagliato".into());
        receipt.reverses = Some(super::super::ReceiptRef {
            operation: saldo_sync::OpId([9; 32]),
            receipt_number: saldo_sync::ReceiptNo(41),
            recorded_at_ms: 0,
            recorded_at_local: "29/11/2026 10:30".into(),
        });
        let text = render_text(&receipt, TextWidth::Columns48, Lang::It);
        assert_fits(&text, 48);
        assert!(text.contains("RICEVUTA DI STORNO"));
        assert!(text.contains("Storna la ricevuta n. 41 (29/11/2026 10:30)"));
        assert!(text.contains("-140,00 €") && text.contains("-20,00 €"));
    }

    #[test]
    fn a_long_name_or_a_newline_in_data_never_breaks_the_width() {
        let mut receipt = sample();
        receipt.lines[0].consumer_name = "Dell'Acqua Bianchi Maria Vittoria Antonietta Giuseppina".into();
        receipt.cash_point =
            "Farmacia\nComunale\tN. 3 — via Giuseppe Garibaldi 1234567890123456789012345678901234567890".into();
        receipt.lines[1].service_name = "服务服务服务服务服务服务服务服务服务服务".into();
        for width in [TextWidth::Columns32, TextWidth::Columns42, TextWidth::Columns48] {
            assert_fits(&render_text(&receipt, width, Lang::It), width.columns());
        }
    }

    proptest! {
        #[test]
        fn no_line_is_ever_wider_than_the_paper(
            width in 16usize..=80,
            realm in "\\PC{0,80}",
            name in "[\\PC\n\t ]{0,90}",
            service in "\\PC{0,50}",
            url in "\\PC{0,150}",
            operator in proptest::option::of("\\PC{0,70}"),
            cents in 1i64..=500_000,
        ) {
            let mut receipt = sample();
            receipt.realm = realm;
            receipt.lines[0].consumer_name = name.clone();
            receipt.lines[1].service_name = service;
            receipt.last_top_ups[0].consumer_name = name;
            receipt.verification_url = url;
            receipt.operator = operator;
            receipt.lines[2].amount = saldo_sync::Amount::from_minor(cents).unwrap();
            let text = render_columns(&receipt, width, Lang::It);
            for line in text.lines() {
                prop_assert!(width_of(line) <= width, "{} > {width}: {line:?}", width_of(line));
            }
        }
    }
}
