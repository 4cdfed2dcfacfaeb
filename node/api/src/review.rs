//! Operations the hub flagged, and their review (hub).

use saldo_sync::{AuthorId, Balance, ConsumerId, FlagReason, Label, OpId, ReceiptNo, ServiceId};
use serde::{Deserialize, Serialize};

use crate::ApiError;

/// Why the hub flagged an operation: the operation model's reasons, one
/// for one ([`FlaggedOperation::detail`] explains each case for people).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FlagReasonApi {
    RevokedAuthor,
    FrozenAuthor,
    RoleNotAllowed,
    UnknownConsumer,
    NotEnrolledInService,
    OverOperationLimit,
    OverUnconfirmedLimit,
    OfflineTooLong,
    DuplicateReceipt,
    DuplicateDuePayment,
    DuplicateCharge,
    BelowFloor,
    InsufficientFunds,
    ReversalNotAllowed,
    CloseMismatch,
    OverEscrow,
}

impl From<FlagReason> for FlagReasonApi {
    fn from(reason: FlagReason) -> Self {
        match reason {
            FlagReason::RevokedAuthor => FlagReasonApi::RevokedAuthor,
            FlagReason::FrozenAuthor => FlagReasonApi::FrozenAuthor,
            FlagReason::RoleNotAllowed => FlagReasonApi::RoleNotAllowed,
            FlagReason::UnknownConsumer => FlagReasonApi::UnknownConsumer,
            FlagReason::NotEnrolledInService => FlagReasonApi::NotEnrolledInService,
            FlagReason::OverOperationLimit => FlagReasonApi::OverOperationLimit,
            FlagReason::OverUnconfirmedLimit => FlagReasonApi::OverUnconfirmedLimit,
            FlagReason::OfflineTooLong => FlagReasonApi::OfflineTooLong,
            FlagReason::DuplicateReceipt => FlagReasonApi::DuplicateReceipt,
            FlagReason::DuplicateDuePayment => FlagReasonApi::DuplicateDuePayment,
            FlagReason::DuplicateCharge => FlagReasonApi::DuplicateCharge,
            FlagReason::BelowFloor => FlagReasonApi::BelowFloor,
            FlagReason::InsufficientFunds => FlagReasonApi::InsufficientFunds,
            FlagReason::ReversalNotAllowed => FlagReasonApi::ReversalNotAllowed,
            FlagReason::CloseMismatch => FlagReasonApi::CloseMismatch,
            FlagReason::OverEscrow => FlagReasonApi::OverEscrow,
        }
    }
}

/// A wallet that accepting the operation would take below its floor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WalletBelowFloor {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub consumer: ConsumerId,
    /// "Rossi Mario", or the consumer's short id when the directory does not know them.
    pub consumer_name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub service: ServiceId,
    /// The balance it would have.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub after: Balance,
    /// What devices' allowances may still charge there on top.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub reserved: Balance,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub floor: Balance,
    /// How far below the floor.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub short: Balance,
}

/// `GET /flagged`: one operation awaiting review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlaggedOperation {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub operation: OpId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub author: AuthorId,
    /// The device's name, when enrolled with one.
    pub author_name: Option<String>,
    /// The operation's kind: "top-up", "service-charge", "daily-close", ...
    pub kind: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u64>))]
    pub receipt: Option<ReceiptNo>,
    /// What it moves, signed, summed over its lines.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub amount: Balance,
    pub reason: FlagReasonApi,
    /// The hub's explanation, for people.
    pub detail: String,
    pub recorded_at_ms: u64,
    pub below_floor_if_accepted: Vec<WalletBelowFloor>,
}

/// `GET /flagged`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlaggedList {
    pub operations: Vec<FlaggedOperation>,
}

/// `POST /flagged/{operation}/review`: accept or reject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReviewRequest {
    pub accept: bool,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<Label>,
    /// Accept even though wallets go below their floors (the review showed which).
    #[serde(default)]
    pub confirm_below_floor: bool,
}

impl ReviewRequest {
    pub fn validate(&self) -> Result<(), ApiError> {
        if !self.accept && self.confirm_below_floor {
            return Err(ApiError::invalid(
                "confirm_below_floor",
                "confirm_below_floor goes with accepting: a rejection takes no wallet below its floor",
            ));
        }
        if !self.accept && self.note.is_none() {
            return Err(ApiError::invalid("note", "say why it is rejected: the cash point will see it"));
        }
        Ok(())
    }
}

/// What a review recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReviewOutcome {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub operation: OpId,
    pub accepted: bool,
    /// The hub's operation that carries the decision.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub decision: OpId,
    /// Wallets the acceptance took below their floors (confirmed by the request).
    #[serde(default)]
    pub below_floor: Vec<WalletBelowFloor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_reason_has_a_distinct_api_name() {
        let names: std::collections::BTreeSet<String> =
            FlagReason::ALL.iter().map(|r| serde_json::to_string(&FlagReasonApi::from(*r)).unwrap()).collect();
        assert_eq!(names.len(), FlagReason::ALL.len());
        assert!(names.contains("\"below_floor\""));
    }

    #[test]
    fn a_rejection_says_why_and_confirms_no_floor() {
        let mut request = ReviewRequest { accept: false, note: None, confirm_below_floor: false };
        assert_eq!(request.validate().unwrap_err().field.as_deref(), Some("note"));
        request.note = Some(Label::parse("duplicate of receipt 12").unwrap());
        assert!(request.validate().is_ok());
        request.confirm_below_floor = true;
        assert_eq!(request.validate().unwrap_err().field.as_deref(), Some("confirm_below_floor"));
        request.accept = true;
        assert!(request.validate().is_ok());
    }
}
