//! Finding a consumer and seeing their wallets (`/consumers`).

use saldo_sync::{
    Amount, Balance, CodiceFiscale, ConsumerId, FamilyId, Label, OpId, Pan, PersonName, ReceiptNo, ServiceId,
};
use serde::{Deserialize, Serialize};

use crate::ApiError;
use crate::payments::PaymentMethodApi;
use crate::search::{self, Query, SEARCH_RESULTS_MAX};

/// Results a search returns when the request does not say.
pub const SEARCH_RESULTS_DEFAULT: u32 = 20;

/// `GET /consumers?q=&limit=`: what the operator typed in the search box.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct SearchParams {
    /// A PAN, a codice fiscale, or the beginning of a surname and/or name.
    pub q: String,
    /// At most this many results (1 to 50, 20 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

impl SearchParams {
    /// The query understood, or why not (field `q` or `limit`).
    pub fn validate(&self) -> Result<Query, ApiError> {
        if let Some(limit) = self.limit
            && !(1..=SEARCH_RESULTS_MAX).contains(&limit)
        {
            return Err(ApiError::invalid(
                "limit",
                format!("limit is {limit}: ask for 1 to {SEARCH_RESULTS_MAX} results"),
            ));
        }
        search::parse_query(&self.q).map_err(|e| ApiError::invalid("q", e.to_string()))
    }

    /// How many results to return.
    pub fn limit_or_default(&self) -> u32 {
        self.limit.unwrap_or(SEARCH_RESULTS_DEFAULT).clamp(1, SEARCH_RESULTS_MAX)
    }
}

/// The balances of one wallet, as a search shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WalletSummary {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub service: ServiceId,
    /// What the hub has confirmed.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub confirmed: Balance,
    /// Confirmed plus what this node recorded that the hub has not confirmed yet.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub provisional: Balance,
}

/// A consumer (child) as a search shows them: enough to be sure it is the
/// right child before taking money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsumerSummary {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub consumer: ConsumerId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub surname: PersonName,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: PersonName,
    /// The PAN as printed on receipts (`************1111`).
    pub pan_masked: String,
    /// The whole PAN: operators see it to compare with the family's card.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub pan: Pan,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub fiscal_code: CodiceFiscale,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub family: FamilyId,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub school: Option<Label>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub class: Option<Label>,
    pub wallets: Vec<WalletSummary>,
}

/// `GET /consumers`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchResults {
    pub consumers: Vec<ConsumerSummary>,
    /// True when more consumers matched than were returned: type more.
    #[serde(default)]
    pub truncated: bool,
}

/// Another consumer, named (a sibling, a family member).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsumerRef {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub consumer: ConsumerId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub surname: PersonName,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: PersonName,
    pub pan_masked: String,
}

/// What kind of operation moved a wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    TopUp,
    DuePayment,
    ServiceCharge,
    Reversal,
    Transfer,
    Refund,
    /// A cash point's daily close (*chiusura*): flagged when its totals do not match.
    DailyClose,
    /// Cash handed over to the treasury (*versamento*).
    Remittance,
}

impl MovementKind {
    /// From the name of a `saldo_sync::OpKind` (`"top-up"`), for the kinds
    /// of operations on money (the hub judges them all).
    pub fn from_op_kind_name(name: &str) -> Option<MovementKind> {
        Some(match name {
            "top-up" => MovementKind::TopUp,
            "due-payment" => MovementKind::DuePayment,
            "service-charge" => MovementKind::ServiceCharge,
            "reversal" => MovementKind::Reversal,
            "transfer" => MovementKind::Transfer,
            "refund" => MovementKind::Refund,
            "daily-close" => MovementKind::DailyClose,
            "remittance" => MovementKind::Remittance,
            _ => return None,
        })
    }
}

/// Where a movement stands with the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MovementStatus {
    /// Recorded here, not yet confirmed by the hub: counts in the provisional balance.
    Provisional,
    /// Confirmed by the hub: counts in the confirmed balance.
    Accepted,
    /// Held by the hub for review: counts nowhere until decided.
    Flagged,
    /// Rejected in review.
    Rejected,
    /// Undone by a reversal (storno) or a decision of the hub.
    Reversed,
    /// Known here, awaiting the hub, counted nowhere yet (recorded by another device).
    Pending,
}

/// One movement of a wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Movement {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub operation: OpId,
    pub kind: MovementKind,
    /// The cash point's receipt number, for top-ups and payments.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u64>))]
    pub receipt: Option<ReceiptNo>,
    pub method: Option<PaymentMethodApi>,
    pub recorded_at_ms: u64,
    /// Signed: what the movement did to the wallet.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub amount: Balance,
    pub status: MovementStatus,
    /// Why (a reversal's, refund's or the hub's reason).
    pub reason: Option<String>,
}

/// One wallet of a consumer with its last movements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WalletDetail {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub service: ServiceId,
    /// The service's name, for people.
    pub service_name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub confirmed: Balance,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub provisional: Balance,
    /// How far below zero a service charge may take this wallet.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub floor: Balance,
    /// The price of one charge, when the service has one.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub tariff: Option<Amount>,
    /// Newest first.
    pub movements: Vec<Movement>,
}

/// `GET /consumers/{consumer}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsumerDetail {
    pub summary: ConsumerSummary,
    /// The payer's other children: who may share one receipt.
    pub siblings: Vec<ConsumerRef>,
    pub wallets: Vec<WalletDetail>,
}
