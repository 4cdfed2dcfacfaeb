//! Receipts (*ricevute*): what a top-up, a payment of a due or a reversal
//! gives back, as JSON, plain text for thermal printers ([`render_text`])
//! and a printable HTML page with the verification QR code
//! ([`render_html`]); and the public verification of one (`GET /verify/{code}`).
//!
//! The server formats the local date and time (`recorded_at_local`): it
//! knows the realm's time zone, and a receipt must show the same time
//! wherever it is printed.

use saldo_sync::{Amount, Balance, ConsumerId, OpId, ReceiptNo, ServiceId};
use serde::{Deserialize, Serialize};

use crate::payments::PaymentMethodApi;

/// Most past top-ups a receipt lists.
pub const LAST_TOP_UPS_MAX: usize = 10;

mod html;
mod labels;
mod qr;
mod text;
mod verify;

pub use html::{Paper, escape_html, render_html};
pub use qr::qr_svg;
pub use text::{TextWidth, render_text};
pub use verify::render_verification_html;

/// What the receipt is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReceiptKind {
    /// A top-up (*ricarica*) of one or more wallets of one family.
    TopUp,
    /// The payment of a due (*pagamento*).
    DuePayment,
    /// The reversal (*storno*) of an earlier receipt.
    Reversal,
}

/// One wallet on a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReceiptLine {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub consumer: ConsumerId,
    /// "Rossi Mario".
    pub consumer_name: String,
    pub pan_masked: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub service: ServiceId,
    /// The service's name ("Mensa").
    pub service_name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub amount: Amount,
    /// The wallet's balance after this receipt, as this node knows it.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub balance_after: Balance,
    /// The balance counts operations the hub has not confirmed yet.
    pub provisional: bool,
}

/// An earlier top-up on the same wallets, listed on the receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PastTopUp {
    pub recorded_at_ms: u64,
    /// The date as the realm reads it ("28/11/2026").
    pub recorded_at_local: String,
    pub consumer_name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub service: ServiceId,
    pub service_name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub amount: Amount,
}

/// Another receipt, named (what a reversal undoes, or what undid this one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReceiptRef {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub operation: OpId,
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub receipt_number: ReceiptNo,
    pub recorded_at_ms: u64,
    pub recorded_at_local: String,
}

/// A receipt: everything the paper shows. Answered by `POST /topups`,
/// `POST /due-payments`, `POST /reversals` and `GET /receipts/{operation}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Receipt {
    /// The operation recorded.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub operation: OpId,
    pub kind: ReceiptKind,
    /// The realm's name (the municipality).
    pub realm: String,
    /// The cash point's name.
    pub cash_point: String,
    /// The operator's name, when one was logged in.
    pub operator: Option<String>,
    /// The cash point's receipt number.
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub receipt_number: ReceiptNo,
    pub recorded_at_ms: u64,
    /// Date and time in the realm's time zone, as printed ("29/11/2026 10:32").
    pub recorded_at_local: String,
    pub method: PaymentMethodApi,
    /// For a payment: which due.
    pub due: Option<String>,
    /// For a reversal: why.
    pub reason: Option<String>,
    pub lines: Vec<ReceiptLine>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub total: Balance,
    /// The hub has not confirmed the operation yet.
    pub provisional: bool,
    /// What anyone can check at the hub (the end of `verification_url`).
    pub verification_code: String,
    /// The public page that says whether the receipt is genuine.
    pub verification_url: String,
    /// For a reversal: the receipt it undoes.
    pub reverses: Option<ReceiptRef>,
    /// The reversal that undid this receipt, if one did.
    pub reversed_by: Option<ReceiptRef>,
    /// The last top-ups on the same wallets, newest first (at most [`LAST_TOP_UPS_MAX`]).
    pub last_top_ups: Vec<PastTopUp>,
}

/// Where a receipt stands, as its public verification says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum VerificationState {
    Accepted,
    Flagged,
    Rejected,
    Reversed,
    /// The hub does not hold it yet (the cash point has not synced since).
    Pending,
}

/// `GET /verify/{code}` (public, rate-limited): whether a receipt is
/// genuine, and nothing personal beyond what its paper shows. When
/// `genuine` is false, every other field is absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Verification {
    pub genuine: bool,
    pub state: Option<VerificationState>,
    pub realm: Option<String>,
    pub cash_point: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u64>))]
    pub receipt_number: Option<ReceiptNo>,
    pub recorded_at_ms: Option<u64>,
    pub recorded_at_local: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub total: Option<Balance>,
}

impl Verification {
    /// The answer for a code no receipt has.
    pub fn not_genuine() -> Verification {
        Verification {
            genuine: false,
            state: None,
            realm: None,
            cash_point: None,
            receipt_number: None,
            recorded_at_ms: None,
            recorded_at_local: None,
            total: None,
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use saldo_sync::{Amount, Balance, ConsumerId, OpId, ReceiptNo, ServiceId};

    use super::*;

    /// Two children of one family, three wallets, recorded offline.
    pub(in crate::receipt) fn sample() -> Receipt {
        let line = |consumer: u8, name: &str, pan: &str, service: &str, amount: i64, after: i64| ReceiptLine {
            consumer: ConsumerId([consumer; 16]),
            consumer_name: name.into(),
            pan_masked: pan.into(),
            service: ServiceId::from_name(service).unwrap(),
            service_name: service.into(),
            amount: Amount::from_minor(amount).unwrap(),
            balance_after: Balance::from_minor(after).unwrap(),
            provisional: true,
        };
        Receipt {
            operation: OpId([3; 32]),
            kind: ReceiptKind::TopUp,
            realm: "Comune di Esempio".into(),
            cash_point: "Farmacia Centrale".into(),
            operator: Some("Anna Bianchi".into()),
            receipt_number: ReceiptNo(42),
            recorded_at_ms: 1_795_941_120_000,
            recorded_at_local: "29/11/2026 10:32".into(),
            method: PaymentMethodApi::Cash,
            due: None,
            reason: None,
            lines: vec![
                line(1, "Rossi Mario", "************1111", "Mensa", 2_000, 3_550),
                line(1, "Rossi Mario", "************1111", "Scuolabus", 10_000, 123_450),
                line(2, "Rossi Giulia", "************2222", "Mensa", 2_000, -450),
            ],
            total: Balance::from_minor(14_000).unwrap(),
            provisional: true,
            verification_code: "7KQ2M9XW4R".into(),
            verification_url: "https://hub.comune.example/v/7KQ2M9XW4R".into(),
            reverses: None,
            reversed_by: None,
            last_top_ups: vec![PastTopUp {
                recorded_at_ms: 1_795_850_000_000,
                recorded_at_local: "28/11/2026".into(),
                consumer_name: "Rossi Mario".into(),
                service: ServiceId::parse("mensa").unwrap(),
                service_name: "Mensa".into(),
                amount: Amount::from_minor(1_550).unwrap(),
            }],
        }
    }

    #[test]
    fn a_receipt_reads_back_from_its_json_with_amounts_as_strings() {
        let receipt = sample();
        let json = serde_json::to_string(&receipt).unwrap();
        assert!(json.contains(r#""total":"140.00""#) && json.contains(r#""balance_after":"-4.50""#), "{json}");
        assert!(json.contains(r#""kind":"top_up""#) && json.contains(r#""method":"cash""#));
        assert!(json.contains(&format!(r#""operation":"{}""#, "03".repeat(32))));
        assert_eq!(serde_json::from_str::<Receipt>(&json).unwrap(), receipt);
    }

    #[test]
    fn a_code_nobody_issued_verifies_as_not_genuine_and_says_nothing_else() {
        let json = serde_json::to_string(&Verification::not_genuine()).unwrap();
        assert!(json.starts_with(r#"{"genuine":false,"state":null"#), "{json}");
        assert!(!json.contains("\"total\":\""));
    }
}
