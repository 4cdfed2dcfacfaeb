//! Logging in and out, and who is logged in (`/session`).

use serde::{Deserialize, Serialize};

use crate::ApiError;
use crate::operators::{Login, Password};

/// What an operator may do. Administrators and clerks work at the hub; a
/// cashier is bound to one cash point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OperatorRole {
    /// Everything at the hub: operators, cash points, services, reviews.
    Administrator,
    /// The municipality's service office: families, transfers, refunds, reports.
    Clerk,
    /// Top-ups, payments, reversals and the daily close at one cash point.
    Cashier,
}

impl OperatorRole {
    /// The role's name, as the API writes it.
    pub fn name(self) -> &'static str {
        match self {
            OperatorRole::Administrator => "administrator",
            OperatorRole::Clerk => "clerk",
            OperatorRole::Cashier => "cashier",
        }
    }
}

/// Which kind of node answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    Hub,
    CashPoint,
}

/// `POST /session`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginRequest {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub login: Login,
    pub password: Password,
}

impl LoginRequest {
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.password.expose().is_empty() {
            return Err(ApiError::invalid("password", "type your password"));
        }
        self.password.check_bound("password")
    }
}

/// Who is logged in (`POST /session`, `GET /session`). The session itself
/// is an HttpOnly cookie; `csrf_token` goes back in the
/// [`CSRF_HEADER`](crate::CSRF_HEADER) of every state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Me {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub login: Login,
    /// The name printed on receipts.
    pub name: String,
    pub role: OperatorRole,
    /// The cash point a cashier works at, by name.
    pub cash_point: Option<String>,
    /// The node this session is on.
    pub node: NodeKind,
    pub csrf_token: String,
}
