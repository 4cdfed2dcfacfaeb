//! Cash points (*esercenti*) and other devices: enrolment, limits while
//! offline, escrow, revocation (hub).

use saldo_sync::{Amount, AuthorId, Balance, Label, OfflineLimits, OpId};
use serde::{Deserialize, Serialize};

use crate::ApiError;
use crate::payments::WalletRef;

/// Longest time a device may record without news from the hub, in hours (a year).
pub const OFFLINE_HOURS_MAX: u32 = 8_760;

/// What a device may record while the hub has not confirmed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Limits {
    /// Largest single operation recorded while unconfirmed.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "500.00"))]
    pub per_operation: Amount,
    /// Largest total of unconfirmed operations.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "5000.00"))]
    pub unconfirmed_total: Balance,
    /// Longest time without contact with the hub, in hours.
    pub offline_hours: u32,
}

impl Limits {
    pub fn validate(&self) -> Result<(), ApiError> {
        check_unconfirmed_total("limits.unconfirmed_total", self.unconfirmed_total)?;
        check_offline_hours("limits.offline_hours", self.offline_hours)
    }

    /// The operation model's form (seconds).
    pub fn to_offline_limits(self) -> OfflineLimits {
        OfflineLimits {
            per_operation: self.per_operation,
            unconfirmed_total: self.unconfirmed_total,
            offline_secs_max: self.offline_hours * 3_600,
        }
    }
}

impl From<OfflineLimits> for Limits {
    fn from(limits: OfflineLimits) -> Self {
        Limits {
            per_operation: limits.per_operation,
            unconfirmed_total: limits.unconfirmed_total,
            offline_hours: limits.offline_secs_max / 3_600,
        }
    }
}

fn check_unconfirmed_total(field: &str, total: Balance) -> Result<(), ApiError> {
    if total.minor() <= 0 {
        return Err(ApiError::invalid(
            field,
            "the unconfirmed total must be above zero, like 5000.00: with 0 the device could record nothing (to stop a device, revoke it)",
        ));
    }
    Ok(())
}

fn check_offline_hours(field: &str, hours: u32) -> Result<(), ApiError> {
    if !(1..=OFFLINE_HOURS_MAX).contains(&hours) {
        return Err(ApiError::invalid(
            field,
            format!("the time offline is {hours} hours: allow 1 to {OFFLINE_HOURS_MAX} (to stop a device, revoke it)"),
        ));
    }
    Ok(())
}

/// A device's revocation: what it recorded up to `last_seq_seen` (the last
/// operation of it the hub had seen) keeps counting; anything later is
/// flagged for review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Revocation {
    pub last_seq_seen: u64,
}

/// What a revocation recorded (`POST /cash-points/{device}/revoke`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevocationRecorded {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub operation: OpId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub device: AuthorId,
    pub last_seq_seen: u64,
}

/// What kind of device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeviceRole {
    CashPoint,
    SchoolDevice,
}

/// `GET /cash-points`: one enrolled device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CashPoint {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub device: AuthorId,
    pub name: String,
    pub role: DeviceRole,
    pub limits: Limits,
    pub revoked: Option<Revocation>,
    /// When the hub last heard from it.
    pub last_seen_ms: Option<u64>,
    /// Its operations the hub has not decided yet.
    pub unconfirmed_operations: u64,
}

/// `GET /cash-points`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CashPointList {
    pub cash_points: Vec<CashPoint>,
}

/// `POST /cash-points/tokens`: a one-time enrolment token for a new cash
/// point, or for the replacement of one (its receipt numbers continue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrolmentTokenRequest {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: Label,
    pub limits: Limits,
    /// The device this one replaces (revoked by the enrolment).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<AuthorId>,
}

impl EnrolmentTokenRequest {
    pub fn validate(&self) -> Result<(), ApiError> {
        self.limits.validate()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrolmentTokenResponse {
    pub name: String,
    /// What `saldo cashpoint --join` takes; valid once.
    pub token: String,
}

/// `PATCH /cash-points/{device}/limits`: any of the limits; at least one.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LimitsUpdate {
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_operation: Option<Amount>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unconfirmed_total: Option<Balance>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_hours: Option<u32>,
}

impl LimitsUpdate {
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.per_operation.is_none() && self.unconfirmed_total.is_none() && self.offline_hours.is_none() {
            return Err(ApiError::invalid(
                "per_operation",
                "say which limit changes: per_operation, unconfirmed_total or offline_hours",
            ));
        }
        if let Some(total) = self.unconfirmed_total {
            check_unconfirmed_total("unconfirmed_total", total)?;
        }
        if let Some(hours) = self.offline_hours {
            check_offline_hours("offline_hours", hours)?;
        }
        Ok(())
    }
}

/// `POST /cash-points/{device}/escrow`: lets a device charge a wallet this
/// much more while offline, reserved for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EscrowRequest {
    pub wallet: WalletRef,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub amount: Amount,
}

/// What an escrow grant recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EscrowGrant {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub operation: OpId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub device: AuthorId,
    pub wallet: WalletRef,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub amount: Amount,
}

/// `POST /cash-points/{device}/revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevokeRequest {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub reason: Label,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_refuse_what_would_stop_a_device_and_name_the_field() {
        let limits = Limits {
            per_operation: Amount::parse("500").unwrap(),
            unconfirmed_total: Balance::ZERO,
            offline_hours: 72,
        };
        assert_eq!(limits.validate().unwrap_err().field.as_deref(), Some("limits.unconfirmed_total"));
        let limits = Limits { unconfirmed_total: Balance::from_minor(500_000).unwrap(), ..limits };
        assert!(limits.validate().is_ok());
        assert_eq!(Limits::from(limits.to_offline_limits()), limits);
        assert_eq!(
            Limits { offline_hours: 0, ..limits }.validate().unwrap_err().field.as_deref(),
            Some("limits.offline_hours")
        );
        assert!(LimitsUpdate::default().validate().is_err());
        assert!(LimitsUpdate { offline_hours: Some(OFFLINE_HOURS_MAX + 1), ..Default::default() }.validate().is_err());
        assert!(LimitsUpdate { offline_hours: Some(24), ..Default::default() }.validate().is_ok());
    }
}
