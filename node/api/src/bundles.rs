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

/// Whom a bundle was written for: the device whose frontier file said what it lacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BundleRecipient {
    /// The device (hex id).
    pub device: String,
    /// Its name, or none for the hub.
    pub name: Option<String>,
    /// "hub", "cash point", "school device".
    pub role: String,
    /// When it wrote its frontier file.
    pub frontier_written_ms: u64,
}

/// `GET /bundles` and `saldo bundle export`: what a written bundle holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BundleExport {
    pub operations: u64,
    pub bytes: u64,
    /// Whom it is for; none when it holds everything this node holds.
    pub recipient: Option<BundleRecipient>,
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

/// `GET /bundle?device=`: a bundle of everything the hub would send that
/// device in a sync session (the hub's log and the device's own), for a
/// site without a network. Carried to the device and imported there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct BundleParams {
    /// The device's id (64 hexadecimal digits).
    pub device: String,
}
