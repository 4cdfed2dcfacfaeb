//! The words on a receipt, in Italian and English.

use crate::Lang;
use crate::payments::PaymentMethodApi;

use super::{Receipt, ReceiptKind};

/// Every label a receipt prints.
pub(super) struct Labels {
    pub title: &'static str,
    pub cash_point: &'static str,
    pub receipt_number: &'static str,
    pub date: &'static str,
    pub operator: &'static str,
    pub method: &'static str,
    pub due: &'static str,
    pub reason: &'static str,
    pub balance_after: &'static str,
    pub total: &'static str,
    pub provisional_banner: &'static str,
    pub provisional_note: &'static str,
    pub last_top_ups: &'static str,
    pub verify: &'static str,
    pub code: &'static str,
    pub reverses: &'static str,
    pub reversed_by: &'static str,
    pub method_name: &'static str,
}

pub(super) fn labels(receipt: &Receipt, lang: Lang) -> Labels {
    let it = lang == Lang::It;
    let pick = |i: &'static str, e: &'static str| if it { i } else { e };
    Labels {
        title: match receipt.kind {
            ReceiptKind::TopUp => pick("RICEVUTA DI RICARICA", "TOP-UP RECEIPT"),
            ReceiptKind::DuePayment => pick("RICEVUTA DI PAGAMENTO", "PAYMENT RECEIPT"),
            ReceiptKind::Reversal => pick("RICEVUTA DI STORNO", "REVERSAL RECEIPT"),
        },
        cash_point: pick("Punto di ricarica", "Cash point"),
        receipt_number: pick("Ricevuta n.", "Receipt no."),
        date: pick("Data", "Date"),
        operator: pick("Operatore", "Operator"),
        method: pick("Pagamento", "Paid by"),
        due: pick("Rata", "Due"),
        reason: pick("Causale", "Reason"),
        balance_after: pick("Saldo dopo", "Balance after"),
        total: pick("TOTALE", "TOTAL"),
        provisional_banner: pick("PROVVISORIA", "PROVISIONAL"),
        provisional_note: pick(
            "* saldo provvisorio: in attesa di conferma dell'Ente",
            "* provisional balance: awaiting confirmation by the realm",
        ),
        last_top_ups: pick("Ultime ricariche", "Last top-ups"),
        verify: pick("Verifica la ricevuta", "Verify this receipt"),
        code: pick("Codice", "Code"),
        reverses: pick("Storna la ricevuta n.", "Reverses receipt no."),
        reversed_by: pick("STORNATA dalla ricevuta n.", "REVERSED by receipt no."),
        method_name: match receipt.method {
            PaymentMethodApi::Cash => pick("contanti", "cash"),
            PaymentMethodApi::DebitCard => pick("bancomat", "debit card"),
            PaymentMethodApi::CreditCard => pick("carta di credito", "credit card"),
            PaymentMethodApi::Other => pick("altro", "other"),
        },
    }
}

/// What a line's amount prints as: negative on a reversal, which hands
/// money back.
pub(super) fn signed_cents(receipt: &Receipt, cents: i64) -> i64 {
    match receipt.kind {
        ReceiptKind::Reversal => -cents.abs(),
        _ => cents,
    }
}
