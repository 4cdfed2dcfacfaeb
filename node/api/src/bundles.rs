//! Bundles (signed files of operations, for sites without a network) and
//! the log's self-check.

use serde::{Deserialize, Serialize};

/// `POST /bundles` (the bundle's bytes): what importing it did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BundleReport {
    /// The device that wrote the bundle (hex id).
    pub exporter: String,
    pub operations: u64,
    pub new: u64,
    pub duplicates: u64,
    /// Conflicting operations kept as evidence.
    pub equivocations: u64,
    /// Operations refused, each with its reason; nothing else changed for them.
    pub refused: Vec<String>,
}

/// What checking the whole log found (`saldo log verify`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogVerifyReport {
    pub operations: u64,
    pub authors: u64,
    pub equivocations: u64,
    pub wallets: u64,
    pub problems: Vec<String>,
    /// SQLite's own integrity check: "ok" or what it found.
    pub integrity_check: String,
}
