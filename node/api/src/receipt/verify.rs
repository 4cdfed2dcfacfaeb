//! The public page a receipt's QR code opens: genuine or not, and where the
//! receipt stands; nothing personal beyond what the paper shows.

use std::fmt::Write as _;

use super::html::escape_html;
use super::{Verification, VerificationState};
use crate::Lang;
use crate::money::format_eur_cents;

/// The verification as a small HTML page (no script, nothing loaded).
pub fn render_verification_html(verification: &Verification, lang: Lang) -> String {
    let it = lang == Lang::It;
    let (title, verdict) = match (verification.genuine, verification.state) {
        (false, _) | (true, None) => (
            if it { "Ricevuta non riconosciuta" } else { "Receipt not recognised" },
            if it {
                "Nessuna ricevuta ha questo codice: controlla di averlo copiato per intero, o chiedi all'ufficio del Comune."
            } else {
                "No receipt has this code: check that it was copied whole, or ask the municipality's office."
            },
        ),
        (true, Some(state)) => (
            if it { "Ricevuta autentica" } else { "Genuine receipt" },
            match (state, it) {
                (VerificationState::Accepted, true) => "Confermata dal Comune.",
                (VerificationState::Accepted, false) => "Confirmed by the municipality.",
                (VerificationState::Pending, true) => {
                    "Registrata dal punto di ricarica, non ancora ricevuta dal Comune: sarà confermata al prossimo collegamento."
                }
                (VerificationState::Pending, false) => {
                    "Recorded by the cash point, not yet received by the municipality: it is confirmed at its next sync."
                }
                (VerificationState::Flagged, true) => "In verifica presso il Comune.",
                (VerificationState::Flagged, false) => "Under review at the municipality.",
                (VerificationState::Rejected, true) => "Respinta dal Comune dopo verifica: non è valida.",
                (VerificationState::Rejected, false) => "Rejected by the municipality after review: it is not valid.",
                (VerificationState::Reversed, true) => "Stornata: l'importo non è più sul borsellino.",
                (VerificationState::Reversed, false) => "Reversed: the amount is no longer in the wallet.",
            },
        ),
    };
    let e = escape_html;
    let mut h = String::with_capacity(2048);
    let _ = write!(
        h,
        r#"<!DOCTYPE html>
<html lang="{lang}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body {{ font-family: sans-serif; max-width: 32em; margin: 2em auto; padding: 0 1em; color: #111; }} dt {{ font-weight: bold; }} dd {{ margin: 0 0 0.5em 0; }}</style>
</head>
<body>
<main>
<h1>{title}</h1>
<p>{verdict}</p>
"#,
        lang = if it { "it" } else { "en" },
        title = e(title),
        verdict = e(verdict),
    );
    if verification.genuine {
        h.push_str("<dl>\n");
        let mut row = |label: &str, value: Option<String>| {
            if let Some(value) = value {
                let _ = writeln!(h, "<dt>{}</dt><dd>{}</dd>", e(label), e(&value));
            }
        };
        row(if it { "Ente" } else { "Municipality" }, verification.realm.clone());
        row(if it { "Punto di ricarica" } else { "Cash point" }, verification.cash_point.clone());
        row(if it { "Ricevuta n." } else { "Receipt no." }, verification.receipt_number.map(|n| n.0.to_string()));
        row(if it { "Data" } else { "Date" }, verification.recorded_at_local.clone());
        row(if it { "Totale" } else { "Total" }, verification.total.map(|t| format_eur_cents(t.minor())));
        h.push_str("</dl>\n");
    }
    h.push_str("</main>\n</body>\n</html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use saldo_sync::{Balance, ReceiptNo};

    #[test]
    fn a_genuine_receipt_says_where_it_stands_and_escapes_names() {
        let page = render_verification_html(
            &Verification {
                genuine: true,
                state: Some(VerificationState::Pending),
                realm: Some("Comune di <Prova>".into()),
                cash_point: Some("Farmacia Rossi".into()),
                receipt_number: Some(ReceiptNo(42)),
                recorded_at_ms: Some(0),
                recorded_at_local: Some("29/11/2026 10:32".into()),
                total: Balance::from_minor(3_500),
            },
            Lang::It,
        );
        assert!(page.contains("Ricevuta autentica"));
        assert!(page.contains("non ancora ricevuta dal Comune"));
        assert!(page.contains("Comune di &lt;Prova&gt;"));
        assert!(page.contains("35,00 €"));
        assert!(page.contains("<dd>42</dd>"));
    }

    #[test]
    fn an_unknown_code_says_so_and_shows_nothing_else() {
        let page = render_verification_html(&Verification::not_genuine(), Lang::En);
        assert!(page.contains("Receipt not recognised"));
        assert!(!page.contains("<dl>"));
    }
}
