//! The one error every endpoint answers with: a kind (which HTTP status), a
//! message for people (what is wrong and what to do), and the request field
//! it is about, when there is one, so a form can put it beside that field.

use serde::{Deserialize, Serialize};

/// What kind of failure, independent of HTTP: the server maps it to a
/// status with [`ErrorKind::http_status`], the UI decides how to show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request is malformed or a value in it is not acceptable.
    InvalidInput,
    /// What the request names does not exist (or is not visible to this operator).
    NotFound,
    /// The operator is logged in but their role may not do this.
    Forbidden,
    /// Nobody is logged in, or the session expired.
    Unauthenticated,
    /// The request is well-formed but clashes with the state (a reversal of
    /// a receipt already reversed, a login that exists).
    Conflict,
    /// The node cannot do it now (it checks its own log, the hub is needed
    /// and unreachable); trying again later may work.
    Unavailable,
    /// Too many attempts (login); wait and try again.
    TooManyRequests,
    /// A fault of the node; the details are in its log, not here.
    Internal,
}

impl ErrorKind {
    /// The HTTP status code that carries this kind.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::InvalidInput => 400,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::TooManyRequests => 429,
            ErrorKind::Internal => 500,
            ErrorKind::Unavailable => 503,
        }
    }
}

/// The JSON body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[error("{message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    /// What is wrong and what to do, for the operator.
    pub message: String,
    /// The request field the message is about (`lines[1].amount`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError { kind, message: message.into(), field: None }
    }

    /// Bad input in one field of the request.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError { kind: ErrorKind::InvalidInput, message: message.into(), field: Some(field.into()) }
    }

    /// The answer to a fault: generic, so nothing internal leaks.
    pub fn internal() -> ApiError {
        ApiError::new(ErrorKind::Internal, "something went wrong on this node; the details are in its log")
    }

    pub fn http_status(&self) -> u16 {
        self.kind.http_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_maps_to_a_distinct_error_status() {
        let kinds = [
            ErrorKind::InvalidInput,
            ErrorKind::NotFound,
            ErrorKind::Forbidden,
            ErrorKind::Unauthenticated,
            ErrorKind::Conflict,
            ErrorKind::Unavailable,
            ErrorKind::TooManyRequests,
            ErrorKind::Internal,
        ];
        let mut statuses: Vec<u16> = kinds.iter().map(|k| k.http_status()).collect();
        assert!(statuses.iter().all(|s| (400..600).contains(s)));
        statuses.sort();
        statuses.dedup();
        assert_eq!(statuses.len(), kinds.len());
    }

    #[test]
    fn an_error_body_names_its_field_in_snake_case_json() {
        let error = ApiError::invalid("lines[0].amount", "type an amount like 20,50");
        let json = serde_json::to_string(&error).unwrap();
        assert_eq!(json, r#"{"kind":"invalid_input","message":"type an amount like 20,50","field":"lines[0].amount"}"#);
        assert_eq!(serde_json::from_str::<ApiError>(&json).unwrap(), error);
        let plain = serde_json::to_string(&ApiError::internal()).unwrap();
        assert!(!plain.contains("field"));
    }
}
