//! A receipt as a complete, printable HTML page (A4, or 58 and 80 mm
//! thermal rolls), with the verification QR code inline. Every string taken
//! from data is escaped; the page loads nothing and runs no script.

use std::fmt::Write as _;

use crate::Lang;
use crate::money::format_eur_cents;

use super::Receipt;
use super::labels::{labels, signed_cents};
use super::qr::qr_svg;

/// The paper the page is laid out for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Paper {
    A4,
    /// A 58 mm thermal roll.
    Mm58,
    /// An 80 mm thermal roll.
    Mm80,
}

impl Paper {
    /// The CSS `@page` size, the printable width and the font size.
    fn layout(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Paper::A4 => ("A4", "15mm", "120mm", "11pt"),
            Paper::Mm58 => ("58mm auto", "2mm", "54mm", "8pt"),
            Paper::Mm80 => ("80mm auto", "2mm", "76mm", "9pt"),
        }
    }

    fn qr_size(self) -> &'static str {
        match self {
            Paper::A4 => "40mm",
            Paper::Mm58 => "30mm",
            Paper::Mm80 => "36mm",
        }
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The receipt as a complete HTML page for `paper`.
pub fn render_html(receipt: &Receipt, paper: Paper, lang: Lang) -> String {
    let l = labels(receipt, lang);
    let e = escape_html;
    let eur = |cents: i64| e(&format_eur_cents(cents));
    let (page_size, page_margin, width, font) = paper.layout();
    let mut h = String::with_capacity(16 * 1024);
    let lang_code = match lang {
        Lang::It => "it",
        Lang::En => "en",
    };
    let _ = write!(
        h,
        r#"<!DOCTYPE html>
<html lang="{lang_code}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} {number_label} {number}</title>
<style>
@page {{ size: {page_size}; margin: {page_margin}; }}
* {{ box-sizing: border-box; }}
body {{ margin: 0; font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: {font}; color: #000; }}
.receipt {{ width: {width}; max-width: 100%; margin: 0 auto; }}
h1 {{ font-size: 1.15em; text-align: center; margin: 0.4em 0; }}
.realm, .cash-point {{ text-align: center; margin: 0; overflow-wrap: anywhere; }}
.realm {{ font-weight: bold; font-size: 1.1em; }}
.provisional {{ text-align: center; font-weight: bold; border: 1px dashed #000; padding: 0.2em; margin: 0.3em 0; }}
table {{ width: 100%; border-collapse: collapse; }}
td {{ padding: 0.05em 0; vertical-align: top; overflow-wrap: anywhere; }}
td.amount {{ text-align: right; white-space: nowrap; padding-left: 0.5em; }}
tr.consumer td {{ font-weight: bold; padding-top: 0.4em; }}
tr.total td {{ font-weight: bold; border-top: 1px solid #000; padding-top: 0.3em; }}
.indent {{ padding-left: 1em; }}
hr {{ border: 0; border-top: 1px dashed #000; margin: 0.4em 0; }}
.note, .reversed {{ margin: 0.3em 0; }}
.reversed {{ font-weight: bold; }}
.verify {{ text-align: center; overflow-wrap: anywhere; }}
.verify svg {{ width: {qr_size}; height: {qr_size}; display: block; margin: 0.3em auto; }}
@media screen {{ body {{ background: #f2f2f2; padding: 1em; }} .receipt {{ background: #fff; padding: 1em; box-shadow: 0 0 0.3em #999; }} }}
@media print {{ body {{ background: none; padding: 0; }} .receipt {{ box-shadow: none; padding: 0; }} }}
</style>
</head>
<body>
<main class="receipt">
<p class="realm">{realm}</p>
<p class="cash-point">{cash_point_label}: {cash_point}</p>
<h1>{title}</h1>
"#,
        title = e(l.title),
        number_label = e(l.receipt_number),
        number = receipt.receipt_number,
        realm = e(&receipt.realm),
        cash_point_label = e(l.cash_point),
        cash_point = e(&receipt.cash_point),
        qr_size = paper.qr_size(),
    );
    if receipt.provisional {
        let _ = writeln!(h, r#"<p class="provisional">{}</p>"#, e(l.provisional_banner));
    }
    h.push_str("<table>\n");
    let row = |h: &mut String, label: &str, value: &str| {
        let _ = writeln!(h, r#"<tr><td>{}</td><td class="amount">{}</td></tr>"#, e(label), e(value));
    };
    row(&mut h, l.receipt_number, &receipt.receipt_number.to_string());
    row(&mut h, l.date, &receipt.recorded_at_local);
    if let Some(operator) = &receipt.operator {
        row(&mut h, l.operator, operator);
    }
    if let Some(due) = &receipt.due {
        row(&mut h, l.due, due);
    }
    h.push_str("</table>\n");
    if let Some(reverses) = &receipt.reverses {
        let _ = writeln!(
            h,
            r#"<p class="note">{} {} ({})</p>"#,
            e(l.reverses),
            reverses.receipt_number,
            e(&reverses.recorded_at_local)
        );
    }
    if let Some(reason) = &receipt.reason {
        let _ = writeln!(h, r#"<p class="note">{}: {}</p>"#, e(l.reason), e(reason));
    }
    h.push_str("<hr>\n<table>\n");
    let mut previous = None;
    for line in &receipt.lines {
        if previous != Some(&line.consumer) {
            let _ = writeln!(
                h,
                r#"<tr class="consumer"><td>{}</td><td class="amount">{}</td></tr>"#,
                e(&line.consumer_name),
                e(&line.pan_masked)
            );
            previous = Some(&line.consumer);
        }
        let _ = writeln!(
            h,
            r#"<tr><td class="indent">{}</td><td class="amount">{}</td></tr>"#,
            e(&line.service_name),
            eur(signed_cents(receipt, line.amount.minor()))
        );
        let _ = writeln!(
            h,
            r#"<tr><td class="indent">{}{}</td><td class="amount">{}</td></tr>"#,
            e(l.balance_after),
            if line.provisional { " *" } else { "" },
            eur(line.balance_after.minor())
        );
    }
    let _ = writeln!(
        h,
        r#"<tr class="total"><td>{}</td><td class="amount">{}</td></tr>"#,
        e(l.total),
        eur(signed_cents(receipt, receipt.total.minor()))
    );
    let _ = writeln!(h, r#"<tr><td>{}</td><td class="amount">{}</td></tr>"#, e(l.method), e(l.method_name));
    h.push_str("</table>\n");
    if receipt.provisional || receipt.lines.iter().any(|line| line.provisional) {
        let _ = writeln!(h, r#"<p class="note">{}</p>"#, e(l.provisional_note));
    }
    if let Some(reversed_by) = &receipt.reversed_by {
        let _ = writeln!(
            h,
            r#"<p class="reversed">{} {} ({})</p>"#,
            e(l.reversed_by),
            reversed_by.receipt_number,
            e(&reversed_by.recorded_at_local)
        );
    }
    if !receipt.last_top_ups.is_empty() {
        let _ = writeln!(h, "<hr>\n<p>{}:</p>\n<table>", e(l.last_top_ups));
        for past in receipt.last_top_ups.iter().take(super::LAST_TOP_UPS_MAX) {
            let _ = writeln!(
                h,
                r#"<tr><td>{} {} {}</td><td class="amount">{}</td></tr>"#,
                e(&past.recorded_at_local),
                e(&past.consumer_name),
                e(&past.service_name),
                eur(past.amount.minor())
            );
        }
        h.push_str("</table>\n");
    }
    let _ = writeln!(h, r#"<hr>\n<div class="verify">\n<p>{}</p>"#, e(l.verify));
    if let Some(svg) = qr_svg(&receipt.verification_url) {
        h.push_str(&svg);
        h.push('\n');
    }
    let _ = writeln!(
        h,
        "<p>{url}</p>\n<p>{code_label}: {code}</p>\n</div>\n</main>\n</body>\n</html>",
        url = e(&receipt.verification_url),
        code_label = e(l.code),
        code = e(&receipt.verification_code),
    );
    h
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn a_receipt_page_is_complete_and_printable_on_every_paper() {
        for (paper, size) in
            [(Paper::A4, "size: A4;"), (Paper::Mm58, "size: 58mm auto;"), (Paper::Mm80, "size: 80mm auto;")]
        {
            let page = render_html(&sample(), paper, Lang::It);
            assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"it\">"));
            assert!(page.ends_with("</html>\n"));
            assert!(page.contains(size), "{paper:?}");
            assert!(page.contains("@media print"));
            assert!(page.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));
            assert!(page.contains("Saldo dopo *</td><td class=\"amount\">1.234,50 €</td>"));
            assert!(page.contains("<p class=\"provisional\">PROVVISORIA</p>"));
            assert!(page.contains("Anna Bianchi") && page.contains("************2222"));
            assert!(!page.contains("<script"));
        }
    }

    #[test]
    fn every_string_from_data_is_escaped() {
        let mut receipt = sample();
        receipt.realm = "<script>alert(1)</script>".into();
        receipt.cash_point = "Bar \"Tom & Jerry\"".into();
        receipt.lines[0].consumer_name = "O'Brien <b>".into();
        receipt.operator = Some("</td></tr><img src=x onerror=alert(1)>".into());
        receipt.verification_code = "\"><svg onload=alert(1)>".into();
        receipt.last_top_ups[0].service_name = "<i>x</i>".into();
        let page = render_html(&receipt, Paper::Mm80, Lang::En);
        assert!(!page.contains("<script>") && !page.contains("<img") && !page.contains("<b>") && !page.contains("<i>"));
        assert!(!page.contains("<svg onload"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("Bar &quot;Tom &amp; Jerry&quot;"));
        assert!(page.contains("O&#39;Brien &lt;b&gt;"));
        assert!(page.contains("<html lang=\"en\">") && page.contains("TOP-UP RECEIPT"));
    }

    #[test]
    fn a_confirmed_receipt_has_no_provisional_marker_and_a_reversed_one_says_so() {
        let mut receipt = sample();
        receipt.provisional = false;
        for line in &mut receipt.lines {
            line.provisional = false;
        }
        receipt.reversed_by = Some(super::super::ReceiptRef {
            operation: saldo_sync::OpId([7; 32]),
            receipt_number: saldo_sync::ReceiptNo(43),
            recorded_at_ms: 0,
            recorded_at_local: "29/11/2026 10:40".into(),
        });
        let page = render_html(&receipt, Paper::A4, Lang::It);
        assert!(!page.contains("PROVVISORIA") && !page.contains(" *</td>") && !page.contains("saldo provvisorio"));
        assert!(page.contains("STORNATA dalla ricevuta n. 43 (29/11/2026 10:40)"));
    }
}
