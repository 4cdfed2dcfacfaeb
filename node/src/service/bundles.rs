//! Sync by file (bundles and frontier files) and the log's self-check.

use saldo_api::bundles::{BundleExport, BundleRecipient, LogVerifyReport};

use super::{Result, Service};
use crate::node::FrontierHolder;

fn recipient(holder: &FrontierHolder) -> BundleRecipient {
    BundleRecipient {
        device: holder.holder.to_hex(),
        name: holder.name.clone(),
        role: holder.role.name().to_string(),
        frontier_written_ms: holder.created_ms,
    }
}

/// A written bundle: its bytes, and what it holds.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub bytes: Vec<u8>,
    pub export: BundleExport,
}

/// A frontier file: its bytes, and how many authors it names.
#[derive(Debug, Clone)]
pub struct FrontierFileBytes {
    pub bytes: Vec<u8>,
    pub authors: u64,
}

impl Service {
    /// Whom a frontier file is from (checked: signed, of this realm).
    pub async fn bundle_recipient(&self, frontier_file: Vec<u8>) -> Result<BundleRecipient> {
        self.read(move |node| Ok(recipient(&node.open_frontier_file(&frontier_file)?))).await
    }

    /// A bundle of what the holder of `lacking` (a frontier file) lacks, or
    /// of everything held.
    pub async fn export_bundle(&self, lacking: Option<Vec<u8>>) -> Result<Bundle> {
        self.write(move |node| {
            let holder = lacking.as_deref().map(|bytes| node.open_frontier_file(bytes)).transpose()?;
            let (bytes, count) = node.export_bundle(lacking.as_deref())?;
            let export = BundleExport {
                operations: count as u64,
                bytes: bytes.len() as u64,
                recipient: holder.as_ref().map(recipient),
            };
            Ok(Bundle { bytes, export })
        })
        .await
    }

    /// This node's frontier file, signed: what a bundle for it must hold.
    pub async fn frontier_file(&self) -> Result<FrontierFileBytes> {
        self.write(|node| {
            let (file, bytes) = node.frontier_file()?;
            Ok(FrontierFileBytes { bytes, authors: file.frontier.0.len() as u64 })
        })
        .await
    }

    /// Checks every signature, chain link and balance, and SQLite's integrity.
    pub async fn verify_log(&self) -> Result<LogVerifyReport> {
        self.read(|node| {
            let report = node.verify_log()?;
            let integrity_check = node.store().integrity_check().map_err(crate::node::NodeError::from)?;
            Ok(LogVerifyReport {
                operations: report.operations,
                authors: report.authors,
                equivocations: report.equivocations,
                wallets: report.wallets,
                problems: report.problems,
                integrity_check,
            })
        })
        .await
    }
}
