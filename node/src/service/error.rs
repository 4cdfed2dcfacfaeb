//! The one error every front end sees: a kind (what the caller can do about
//! it, and the HTTP status it becomes) and a message for people. The CLI adds
//! its flag hints at its own edge; the HTTP API sends it as JSON.

use crate::node::NodeError;
use crate::state::IngestError;

pub use saldo_api::ErrorKind;

/// What went wrong, said for the person who can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ServiceError {
    pub kind: ErrorKind,
    pub message: String,
    /// The request field the message is about, when one is.
    pub field: Option<String>,
}

pub type Result<T> = std::result::Result<T, ServiceError>;

/// What a write says when the disk is full (SQLITE_FULL or ENOSPC); the CLI
/// names the directory instead.
const DISK_FULL: &str = "the disk of this node is full: free some space; nothing was recorded";

impl ServiceError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ServiceError {
        ServiceError { kind, message: message.into(), field: None }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ServiceError {
        ServiceError { kind: ErrorKind::InvalidInput, message: message.into(), field: Some(field.into()) }
    }

    pub fn not_found(message: impl Into<String>) -> ServiceError {
        ServiceError::new(ErrorKind::NotFound, message)
    }

    pub fn forbidden(message: impl Into<String>) -> ServiceError {
        ServiceError::new(ErrorKind::Forbidden, message)
    }

    pub fn conflict(message: impl Into<String>) -> ServiceError {
        ServiceError::new(ErrorKind::Conflict, message)
    }

    pub fn internal(message: impl Into<String>) -> ServiceError {
        ServiceError::new(ErrorKind::Internal, message)
    }

    /// The same error, about `field` of the request.
    pub fn at(mut self, field: impl Into<String>) -> ServiceError {
        self.field = Some(field.into());
        self
    }

    /// Whether the node's disk is full: front ends say where, and what to do.
    pub fn is_disk_full(&self) -> bool {
        self.kind == ErrorKind::Internal && self.message == DISK_FULL
    }

    pub fn to_api(&self) -> saldo_api::ApiError {
        saldo_api::ApiError { kind: self.kind, message: self.message.clone(), field: self.field.clone() }
    }
}

impl From<NodeError> for ServiceError {
    fn from(error: NodeError) -> ServiceError {
        let kind = match &error {
            NodeError::UnknownPan(_)
            | NodeError::UnknownConsumer(_)
            | NodeError::UnknownOperation(_)
            | NodeError::UnknownDevice(_)
            | NodeError::NotInitialised { .. } => ErrorKind::NotFound,
            NodeError::NotEnrolled { .. }
            | NodeError::ServiceNeeded { .. }
            | NodeError::NoWallet(_)
            | NodeError::Query(_)
            | NodeError::Directory(_) => ErrorKind::InvalidInput,
            NodeError::Refused(_)
            | NodeError::NotFlagged(_)
            | NodeError::BelowFloorInReview { .. }
            | NodeError::AlreadyInitialised { .. }
            | NodeError::Forked { .. } => ErrorKind::Conflict,
            NodeError::HubOnly(_) | NodeError::NoKey => ErrorKind::Forbidden,
            NodeError::Busy
            | NodeError::FetchingOwnLog { .. }
            | NodeError::CheckingOwnLog { .. }
            | NodeError::RestoredNotStarted => ErrorKind::Unavailable,
            NodeError::InvalidField { .. } => ErrorKind::InvalidInput,
            NodeError::Ingest(e) => match e {
                IngestError::Storage(_) => ErrorKind::Internal,
                _ => ErrorKind::InvalidInput,
            },
            NodeError::Io { .. }
            | NodeError::BadKey { .. }
            | NodeError::Open(_)
            | NodeError::Storage(_)
            | NodeError::FormatVersion { .. } => ErrorKind::Internal,
        };
        let field = match &error {
            NodeError::Query(_) => Some("q".to_string()),
            NodeError::ServiceNeeded { .. } | NodeError::NotEnrolled { .. } => Some("service".to_string()),
            NodeError::BelowFloorInReview { .. } => Some("confirm_below_floor".to_string()),
            NodeError::InvalidField { field, .. } => Some(field.clone()),
            _ => None,
        };
        let message = if let NodeError::InvalidField { message, .. } = &error {
            message.clone()
        } else if std::iter::successors(Some(&error as &(dyn std::error::Error + 'static)), |e| e.source())
            .any(crate::node::is_disk_full)
        {
            DISK_FULL.to_string()
        } else {
            error.to_string()
        };
        ServiceError { kind, message, field }
    }
}

impl From<saldo_api::ApiError> for ServiceError {
    fn from(error: saldo_api::ApiError) -> ServiceError {
        ServiceError { kind: error.kind, message: error.message, field: error.field }
    }
}
