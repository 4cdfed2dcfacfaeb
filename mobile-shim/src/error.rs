//! The one error the apps see: the service layer's, kind by kind, with its
//! message for people (and the field it is about, for bad input).

use saldo_api::ErrorKind;
use saldo_node::service::ServiceError;

/// What went wrong, said for the person at the counter. Each variant is a
/// kind of [`ServiceError`]: what the app can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum SaldoError {
    /// A value typed or sent is not acceptable: `field` names it (`lines[0].amount`, `pan`), when one does.
    #[error("{message}")]
    InvalidInput { field: Option<String>, message: String },
    /// What the call names does not exist here (an unknown PAN, receipt).
    #[error("{message}")]
    NotFound { message: String },
    /// The operator may not do this.
    #[error("{message}")]
    Forbidden { message: String },
    /// The login or password is wrong, or the account is disabled.
    #[error("{message}")]
    Unauthenticated { message: String },
    /// The call clashes with the state (a receipt reversed already, a node there already).
    #[error("{message}")]
    Conflict { message: String },
    /// Not now (the node checks its own log, the hub is needed and unreachable, the node is closed): try again later.
    #[error("{message}")]
    Unavailable { message: String },
    /// Too many attempts: wait and try again.
    #[error("{message}")]
    TooManyRequests { message: String },
    /// A fault of the node.
    #[error("{message}")]
    Internal { message: String },
}

impl From<ServiceError> for SaldoError {
    fn from(error: ServiceError) -> SaldoError {
        let message = error.message;
        match error.kind {
            ErrorKind::InvalidInput => SaldoError::InvalidInput { field: error.field, message },
            ErrorKind::NotFound => SaldoError::NotFound { message },
            ErrorKind::Forbidden => SaldoError::Forbidden { message },
            ErrorKind::Unauthenticated => SaldoError::Unauthenticated { message },
            ErrorKind::Conflict => SaldoError::Conflict { message },
            ErrorKind::Unavailable => SaldoError::Unavailable { message },
            ErrorKind::TooManyRequests => SaldoError::TooManyRequests { message },
            ErrorKind::Internal => SaldoError::Internal { message },
        }
    }
}

impl From<saldo_api::ApiError> for SaldoError {
    fn from(error: saldo_api::ApiError) -> SaldoError {
        SaldoError::from(ServiceError::from(error))
    }
}

/// A value the app sent that does not parse, about `field`.
pub(crate) fn invalid(field: impl Into<String>, error: impl std::fmt::Display) -> SaldoError {
    SaldoError::InvalidInput { field: Some(field.into()), message: error.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_service_error_keeps_its_kind_message_and_field() {
        let bad = ServiceError::invalid("lines[0].amount", "12.345 has more than two decimals");
        assert_eq!(
            SaldoError::from(bad),
            SaldoError::InvalidInput {
                field: Some("lines[0].amount".into()),
                message: "12.345 has more than two decimals".into()
            }
        );
        let cases = [
            (ErrorKind::NotFound, SaldoError::NotFound { message: "m".into() }),
            (ErrorKind::Forbidden, SaldoError::Forbidden { message: "m".into() }),
            (ErrorKind::Unauthenticated, SaldoError::Unauthenticated { message: "m".into() }),
            (ErrorKind::Conflict, SaldoError::Conflict { message: "m".into() }),
            (ErrorKind::Unavailable, SaldoError::Unavailable { message: "m".into() }),
            (ErrorKind::TooManyRequests, SaldoError::TooManyRequests { message: "m".into() }),
            (ErrorKind::Internal, SaldoError::Internal { message: "m".into() }),
        ];
        for (kind, expected) in cases {
            let error = SaldoError::from(ServiceError::new(kind, "m"));
            assert_eq!(error.to_string(), "m");
            assert_eq!(error, expected);
        }
    }
}
