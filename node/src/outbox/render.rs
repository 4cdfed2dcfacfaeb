//! What a family reads: a receipt or a reminder as an e-mail (subject,
//! plain text, HTML with everything escaped) and as an SMS of at most
//! [`SMS_GSM_CHARS_MAX`] GSM 03.38 characters. Pure: the facts come in
//! ([`ReceiptNotice`], [`ReminderNotice`]), text goes out, so a test checks
//! every line without a database.

use saldo_api::Lang;
use saldo_api::money::{format_amount, format_eur, format_eur_cents};
use saldo_api::payments::PaymentMethodApi;
use saldo_api::receipt::escape_html;
use saldo_sync::{Amount, Balance};

/// Longest SMS, in GSM 03.38 septets (one message, no concatenation).
pub const SMS_GSM_CHARS_MAX: usize = 160;

/// What a receipt is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NoticeKind {
    TopUp,
    DuePayment,
    Reversal,
    Refund,
}

/// One wallet a receipt moved: whose, which service, how much, and the
/// hub's confirmed balance after it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NoticeLine {
    pub child: String,
    pub service: String,
    pub amount: Amount,
    pub balance_after: Balance,
}

/// What the paper receipt says, as a message to the family.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReceiptNotice {
    pub kind: NoticeKind,
    pub realm: String,
    pub cash_point: String,
    pub lines: Vec<NoticeLine>,
    pub method: PaymentMethodApi,
    /// The cash point's receipt number (a refund has none; a reversal's is
    /// the one of the receipt it undoes).
    pub receipt_number: Option<u64>,
    /// When it was recorded (at the cash point, for one recorded offline).
    pub recorded_ms: u64,
    /// The same, local time as printed ("07/12/2026 10:32").
    pub recorded_local: String,
    /// The public verification page (`{public_url}/v/{code}`), when the
    /// hub has a public address and the receipt has a code.
    pub verification_url: Option<String>,
}

/// A balance crossed one of its service's thresholds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderNotice {
    pub realm: String,
    pub child: String,
    pub service: String,
    pub balance: Balance,
    /// The threshold in charges left (3: three left, 0: none, -3: a debt of three).
    pub charges: i32,
}

/// An e-mail: subject, plain text, HTML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub subject: String,
    pub text: String,
    pub html: String,
}

fn total(notice: &ReceiptNotice) -> String {
    format_eur_cents(notice.lines.iter().map(|l| l.amount.minor()).sum())
}

fn kind_name(kind: NoticeKind, lang: Lang) -> &'static str {
    match kind {
        NoticeKind::TopUp => lang.pick("Ricarica", "Top-up"),
        NoticeKind::DuePayment => lang.pick("Pagamento", "Payment"),
        NoticeKind::Reversal => lang.pick("Storno", "Reversal"),
        NoticeKind::Refund => lang.pick("Rimborso", "Refund"),
    }
}

fn method_name(method: PaymentMethodApi, lang: Lang) -> &'static str {
    match method {
        PaymentMethodApi::Cash => lang.pick("contanti", "cash"),
        PaymentMethodApi::DebitCard => lang.pick("bancomat", "debit card"),
        PaymentMethodApi::CreditCard => lang.pick("carta di credito", "credit card"),
        PaymentMethodApi::Other => lang.pick("altro", "other"),
    }
}

/// The receipt as an e-mail.
pub fn receipt_email(notice: &ReceiptNotice, lang: Lang) -> Email {
    let kind = kind_name(notice.kind, lang);
    let children: Vec<&str> = notice.lines.iter().map(|l| l.child.as_str()).collect();
    let subject = format!("{} - {kind} {} - {}", notice.realm, total(notice), children.join(", "));
    let mut facts: Vec<(&str, String)> = vec![
        (lang.pick("Ente", "Municipality"), notice.realm.clone()),
        (lang.pick("Punto di ricarica", "Cash point"), notice.cash_point.clone()),
    ];
    if let Some(number) = notice.receipt_number {
        facts.push((lang.pick("Ricevuta n.", "Receipt no."), number.to_string()));
    }
    facts.push((lang.pick("Registrata il", "Recorded on"), notice.recorded_local.clone()));
    facts.push((lang.pick("Pagamento", "Paid by"), method_name(notice.method, lang).to_string()));
    facts.push((lang.pick("Totale", "Total"), total(notice)));
    let mut text = format!("{kind}\n\n");
    for (label, value) in &facts {
        text.push_str(&format!("{label}: {value}\n"));
    }
    text.push('\n');
    let (child_h, service_h, amount_h, balance_h) = (
        lang.pick("Utente", "Child"),
        lang.pick("Servizio", "Service"),
        lang.pick("Importo", "Amount"),
        lang.pick("Saldo dopo", "Balance after"),
    );
    for line in &notice.lines {
        text.push_str(&format!(
            "- {} | {service_h}: {} | {amount_h}: {} | {balance_h}: {}\n",
            line.child,
            line.service,
            format_amount(line.amount),
            format_eur(line.balance_after)
        ));
    }
    if let Some(url) = &notice.verification_url {
        text.push_str(&format!("\n{}: {url}\n", lang.pick("Verifica la ricevuta", "Check this receipt")));
    }
    text.push_str(&format!(
        "\n{}\n",
        lang.pick(
            "Messaggio automatico: il saldo è quello confermato dall'ente.",
            "Automatic message: the balance is the one the municipality confirmed."
        )
    ));
    let mut html = format!(
        "<!DOCTYPE html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title></head><body>\n<h1>{}</h1>\n<table>\n",
        lang.pick("it", "en"),
        escape_html(&subject),
        escape_html(kind)
    );
    for (label, value) in &facts {
        html.push_str(&format!("<tr><th>{}</th><td>{}</td></tr>\n", escape_html(label), escape_html(value)));
    }
    html.push_str(&format!(
        "</table>\n<table>\n<tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>\n",
        escape_html(child_h),
        escape_html(service_h),
        escape_html(amount_h),
        escape_html(balance_h)
    ));
    for line in &notice.lines {
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape_html(&line.child),
            escape_html(&line.service),
            escape_html(&format_amount(line.amount)),
            escape_html(&format_eur(line.balance_after))
        ));
    }
    html.push_str("</table>\n");
    if let Some(url) = &notice.verification_url {
        html.push_str(&format!(
            "<p><a href=\"{}\">{}</a></p>\n",
            escape_html(url),
            escape_html(lang.pick("Verifica la ricevuta", "Check this receipt"))
        ));
    }
    html.push_str("</body></html>\n");
    Email { subject, text, html }
}

/// The receipt as an SMS of at most [`SMS_GSM_CHARS_MAX`] GSM characters:
/// the richest wording that fits, then shorter names, then fewer facts.
pub fn receipt_sms(notice: &ReceiptNotice, lang: Lang) -> String {
    let kind = kind_name(notice.kind, lang);
    let balance = lang.pick("saldo", "balance");
    let lines = |short: bool| -> String {
        let parts: Vec<String> = notice
            .lines
            .iter()
            .map(|l| {
                let child = if short { short_name(&l.child) } else { l.child.clone() };
                format!("{child} {} {} {balance} {}", l.service, format_amount(l.amount), format_eur(l.balance_after))
            })
            .collect();
        parts.join("; ")
    };
    let number = notice.receipt_number.map(|n| format!(" n.{n}")).unwrap_or_default();
    let link = notice.verification_url.as_deref().map(|u| format!(" {u}")).unwrap_or_default();
    let candidates = [
        format!(
            "{}: {kind}{number} {}, {}. {} {}.{link}",
            notice.realm,
            lines(false),
            notice.cash_point,
            notice.recorded_local,
            method_name(notice.method, lang)
        ),
        format!("{}: {kind}{number} {}, {}.{link}", notice.realm, lines(false), notice.recorded_local),
        format!("{}: {kind}{number} {}, {}.{link}", notice.realm, lines(true), notice.recorded_local),
        format!("{kind}{number} {}, {}.{link}", lines(true), notice.recorded_local),
        format!("{kind}{number} {}.{link}", lines(true)),
        format!("{kind}{number} {}", lines(true)),
    ];
    fit_sms(&candidates)
}

fn threshold_words(charges: i32, lang: Lang) -> String {
    match charges {
        0 => lang.pick("credito esaurito", "no credit left").to_string(),
        n if n > 0 => format!("{} {n}", lang.pick("credito sufficiente solo per", "credit left for only")),
        n => format!("{} {}", lang.pick("debito pari a", "a debt of"), -n),
    }
}

fn charges_unit(charges: i32, lang: Lang) -> &'static str {
    match charges.abs() {
        0 => "",
        1 => lang.pick(" addebito", " charge"),
        _ => lang.pick(" addebiti", " charges"),
    }
}

/// A reminder as an e-mail.
pub fn reminder_email(notice: &ReminderNotice, lang: Lang) -> Email {
    let what = format!("{}{}", threshold_words(notice.charges, lang), charges_unit(notice.charges, lang));
    let subject = format!("{} - {} {} - {}", notice.realm, notice.service, notice.child, what);
    let text = format!(
        "{}\n\n{}: {}\n{}: {}\n{}: {}\n\n{}\n",
        what,
        lang.pick("Utente", "Child"),
        notice.child,
        lang.pick("Servizio", "Service"),
        notice.service,
        lang.pick("Saldo confermato", "Confirmed balance"),
        format_eur(notice.balance),
        lang.pick(
            "Ricarica presso un punto di ricarica dell'ente.",
            "Top up at one of the municipality's cash points."
        ),
    );
    let html = format!(
        "<!DOCTYPE html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title></head><body>\n<h1>{}</h1>\n<table>\n<tr><th>{}</th><td>{}</td></tr>\n<tr><th>{}</th><td>{}</td></tr>\n<tr><th>{}</th><td>{}</td></tr>\n</table>\n<p>{}</p>\n</body></html>\n",
        lang.pick("it", "en"),
        escape_html(&subject),
        escape_html(&what),
        escape_html(lang.pick("Utente", "Child")),
        escape_html(&notice.child),
        escape_html(lang.pick("Servizio", "Service")),
        escape_html(&notice.service),
        escape_html(lang.pick("Saldo confermato", "Confirmed balance")),
        escape_html(&format_eur(notice.balance)),
        escape_html(lang.pick(
            "Ricarica presso un punto di ricarica dell'ente.",
            "Top up at one of the municipality's cash points."
        )),
    );
    Email { subject, text, html }
}

/// A reminder as an SMS.
pub fn reminder_sms(notice: &ReminderNotice, lang: Lang) -> String {
    let what = format!("{}{}", threshold_words(notice.charges, lang), charges_unit(notice.charges, lang));
    let balance = lang.pick("saldo", "balance");
    let candidates = [
        format!(
            "{}: {} {}: {what}, {balance} {}.",
            notice.realm,
            notice.child,
            notice.service,
            format_eur(notice.balance)
        ),
        format!("{} {}: {what}, {balance} {}.", short_name(&notice.child), notice.service, format_eur(notice.balance)),
    ];
    fit_sms(&candidates)
}

/// "Rossi Maria Luisa" -> "Maria Luisa R.": the name a parent knows, short.
fn short_name(full: &str) -> String {
    match full.split_once(' ') {
        Some((surname, name)) => format!("{name} {}.", surname.chars().next().unwrap_or(' ')),
        None => full.to_string(),
    }
}

/// The first candidate that fits in one SMS once in GSM characters, or the
/// last one cut to fit.
fn fit_sms(candidates: &[String]) -> String {
    let mut last = String::new();
    for candidate in candidates {
        let gsm = to_gsm(candidate);
        if gsm_len(&gsm) <= SMS_GSM_CHARS_MAX {
            return gsm;
        }
        last = gsm;
    }
    let mut cut = String::new();
    for c in last.chars() {
        if gsm_len(&cut) + gsm_char_len(c).unwrap_or(1) > SMS_GSM_CHARS_MAX {
            break;
        }
        cut.push(c);
    }
    cut
}

/// GSM 03.38 basic character set (one septet each).
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// GSM 03.38 extension table (an escape and a septet: two each).
const GSM_EXTENSION: &str = "\u{c}^{}\\[~]|€";

/// Septets `c` takes in GSM 03.38, `None` when it has no GSM form.
pub fn gsm_char_len(c: char) -> Option<usize> {
    // Most of a message is printable ASCII: all of it is in the basic set
    // but for the extension's brackets and the backquote.
    if c.is_ascii_graphic() || c == ' ' {
        return match c {
            '^' | '{' | '}' | '\\' | '[' | '~' | ']' | '|' => Some(2),
            '`' => None,
            _ => Some(1),
        };
    }
    if GSM_BASIC.contains(c) {
        Some(1)
    } else if GSM_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Septets `text` takes; characters outside GSM 03.38 count as the `?`
/// they would become.
pub fn gsm_len(text: &str) -> usize {
    text.chars().map(|c| gsm_char_len(c).unwrap_or(1)).sum()
}

/// `text` in GSM 03.38 characters: accented letters outside the set lose
/// their accent (Italian names keep à è é ì ò ù, which GSM has), typographic
/// quotes and dashes become plain ones, anything else becomes `?`.
pub fn to_gsm(text: &str) -> String {
    text.chars()
        .map(|c| {
            if gsm_char_len(c).is_some() {
                return c;
            }
            match c {
                'á' | 'â' | 'ã' | 'ā' | 'ą' => 'a',
                'À' | 'Á' | 'Â' | 'Ã' | 'Ā' | 'Ą' => 'A',
                'ç' | 'ć' | 'č' => 'c',
                'Ć' | 'Č' => 'C',
                'ê' | 'ë' | 'ē' | 'ę' | 'ě' => 'e',
                'È' | 'Ê' | 'Ë' | 'Ē' | 'Ę' | 'Ě' => 'E',
                'í' | 'î' | 'ï' | 'ī' => 'i',
                'Ì' | 'Í' | 'Î' | 'Ï' | 'Ī' => 'I',
                'ó' | 'ô' | 'õ' | 'ō' | 'ő' => 'o',
                'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ō' | 'Ő' => 'O',
                'ú' | 'û' | 'ū' | 'ů' | 'ű' => 'u',
                'Ù' | 'Ú' | 'Û' | 'Ū' | 'Ů' | 'Ű' => 'U',
                'ý' | 'ÿ' => 'y',
                'Ý' | 'Ÿ' => 'Y',
                'ñ' | 'ń' | 'ň' => 'ñ',
                'š' | 'ś' => 's',
                'Š' | 'Ś' => 'S',
                'ž' | 'ź' | 'ż' => 'z',
                'Ž' | 'Ź' | 'Ż' => 'Z',
                'ł' => 'l',
                'Ł' => 'L',
                'đ' => 'd',
                'Đ' => 'D',
                'ř' => 'r',
                'Ř' => 'R',
                '\u{2018}' | '\u{2019}' | '`' | '´' => '\'',
                '\u{201c}' | '\u{201d}' | '«' | '»' => '"',
                '\u{2013}' | '\u{2014}' | '\u{2212}' => '-',
                '\u{a0}' | '\t' => ' ',
                _ => '?',
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(child: &str) -> ReceiptNotice {
        ReceiptNotice {
            kind: NoticeKind::TopUp,
            realm: "Comune di Prova".into(),
            cash_point: "Edicola <Centrale> & Figli".into(),
            lines: vec![NoticeLine {
                child: child.into(),
                service: "Mensa".into(),
                amount: Amount::parse("20.00").unwrap(),
                balance_after: Balance::parse("35.50").unwrap(),
            }],
            method: PaymentMethodApi::Cash,
            receipt_number: Some(42),
            recorded_ms: 1_796_639_520_000,
            recorded_local: "07/12/2026 10:32".into(),
            verification_url: Some("https://saldo.comune.example.it/v/0123456789abcdef0123".into()),
        }
    }

    #[test]
    fn a_receipt_email_says_what_the_paper_says_in_italian_or_english_with_html_escaped() {
        let it = receipt_email(&notice("Rossi Marco"), Lang::It);
        assert!(it.subject.contains("Ricarica 20,00 €") && it.subject.contains("Rossi Marco"), "{}", it.subject);
        for needed in [
            "Comune di Prova",
            "Edicola <Centrale> & Figli",
            "Ricevuta n.: 42",
            "07/12/2026 10:32",
            "contanti",
            "Mensa",
            "20,00 €",
            "35,50 €",
            "/v/0123456789abcdef0123",
        ] {
            assert!(it.text.contains(needed), "{needed:?} missing from {}", it.text);
        }
        assert!(it.html.contains("Edicola &lt;Centrale&gt; &amp; Figli"), "{}", it.html);
        assert!(!it.html.contains("<Centrale>"), "{}", it.html);
        let en = receipt_email(&notice("Rossi Marco"), Lang::En);
        assert!(
            en.subject.contains("Top-up") && en.text.contains("Balance after: 35,50 €") && en.text.contains("cash"),
            "{}",
            en.text
        );
        let hostile = receipt_email(&notice("O'Brien <script>alert(1)</script>"), Lang::It);
        assert!(!hostile.html.contains("<script>") && hostile.html.contains("&lt;script&gt;"), "{}", hostile.html);
    }

    #[test]
    fn the_ascii_shortcut_agrees_with_the_gsm_tables() {
        for c in (0u8..128).map(char::from) {
            let table = if GSM_BASIC.contains(c) {
                Some(1)
            } else if GSM_EXTENSION.contains(c) {
                Some(2)
            } else {
                None
            };
            assert_eq!(gsm_char_len(c), table, "{c:?}");
        }
    }

    #[test]
    fn an_sms_fits_160_gsm_characters_even_for_long_names_and_counts_the_euro_sign_as_two() {
        assert_eq!(gsm_len("€"), 2);
        assert_eq!(gsm_len("àèéìòù"), 6);
        assert_eq!(to_gsm("Niccolò Çelik Łukasz “Ž”"), "Niccolò Çelik Lukasz \"Z\"");
        let short = receipt_sms(&notice("Rossi Marco"), Lang::It);
        assert!(gsm_len(&short) <= SMS_GSM_CHARS_MAX, "{} septets: {short}", gsm_len(&short));
        assert!(short.contains("Rossi Marco") && short.contains("20,00 €") && short.contains("35,50 €"), "{short}");
        let long_name = "Dell'Acqua Bianchi Maria Vittoria Annunziata Benedetta Ludovica";
        let mut long = notice(long_name);
        long.lines.push(NoticeLine {
            child: "Dell'Acqua Bianchi Giovanni Battista Francesco".into(),
            ..long.lines[0].clone()
        });
        for lang in [Lang::It, Lang::En] {
            let sms = receipt_sms(&long, lang);
            assert!(gsm_len(&sms) <= SMS_GSM_CHARS_MAX, "{} septets: {sms}", gsm_len(&sms));
            assert!(sms.chars().all(|c| gsm_char_len(c).is_some()), "{sms}");
            assert!(sms.contains("20,00 €"), "{sms}");
        }
        let reminder = ReminderNotice {
            realm: "Comune di Sant'Angelo in Vado e Borgo Pace Unione dei Comuni".into(),
            child: long_name.into(),
            service: "Mensa scolastica".into(),
            balance: Balance::parse("-13.50").unwrap(),
            charges: -3,
        };
        let sms = reminder_sms(&reminder, Lang::It);
        assert!(
            gsm_len(&sms) <= SMS_GSM_CHARS_MAX && sms.contains("-13,50 €") && sms.contains("debito pari a 3"),
            "{sms}"
        );
    }
}
