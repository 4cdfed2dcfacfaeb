//! Sync by file: `bundle export`, `bundle import`, `bundle frontier`.

use super::args::{DataArg, JsonArg};
use super::render::{format_time, print_json};
use super::{OutputError, Session};
use anyhow::Context as _;
use anyhow::{Result, bail};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` whole, only if it is a regular file or a new
/// name (see [`crate::out_file`]).
fn write_new_file(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(crate::out_file::write_bytes(path, bytes)?)
}

/// What `bundle export --json` prints: where the bundle went, and what it holds.
#[derive(Debug, Serialize)]
struct WrittenBundle<'a> {
    file: &'a Path,
    #[serde(flatten)]
    export: &'a saldo_api::bundles::BundleExport,
}

pub(super) fn export_bundle(data: DataArg, out: PathBuf, lacking: Option<PathBuf>, json: JsonArg) -> Result<()> {
    crate::out_file::check_destination(&out)?;
    let session = Session::open(&data.data)?;
    let lacking = match &lacking {
        Some(path) => {
            let bytes = crate::out_file::read_bounded(
                path,
                saldo_sync::bundle::FRONTIER_FILE_BYTES_MAX as u64,
                "frontier file",
            )?;
            let file = bytes.clone();
            session
                .call(async |s| s.bundle_recipient(file).await)
                .with_context(|| format!("cannot use the frontier file {}", path.display()))?;
            Some(bytes)
        }
        None => None,
    };
    let bundle = session.call(async |s| s.export_bundle(lacking).await)?;
    write_new_file(&out, &bundle.bytes)?;
    let export = &bundle.export;
    if json.json {
        print_json(&WrittenBundle { file: &out, export })?;
    } else {
        outln!("wrote {} operations ({} bytes) to {}", export.operations, export.bytes, out.display());
        match &export.recipient {
            Some(r) => outln!(
                "for {} ({}), whose frontier was written {}",
                r.name.as_deref().unwrap_or("the hub"),
                r.role,
                format_time(r.frontier_written_ms)
            ),
            None if session.service().about().is_hub => outln!(
                "everything this hub holds, contact data included: a backup for the hub only (a cash point refuses the contact data)"
            ),
            None => {}
        }
    }
    Ok(())
}

pub(super) fn import_bundle(data: DataArg, file: PathBuf, json: JsonArg) -> Result<()> {
    let session = Session::open(&data.data)?;
    let meta = std::fs::metadata(&file).with_context(|| format!("cannot read the bundle {}", file.display()))?;
    if meta.len() > saldo_sync::bundle::BUNDLE_BYTES_MAX {
        bail!(
            "{} is {} bytes, over the bundle limit of {}",
            file.display(),
            meta.len(),
            saldo_sync::bundle::BUNDLE_BYTES_MAX
        );
    }
    let bytes = std::fs::read(&file).with_context(|| format!("cannot read the bundle {}", file.display()))?;
    let report = session
        .call(async |s| s.import_bundle(bytes).await)
        .with_context(|| format!("{} was not imported", file.display()))?;
    if json.json {
        print_json(&report)?;
    } else {
        outln!(
            "{} operations from {}: {} new, {} already held, {} equivocations kept as evidence, {} refused",
            report.operations,
            report.exporter,
            report.new,
            report.duplicates,
            report.equivocations,
            report.refused.len()
        );
        for reason in &report.refused {
            outln!("  refused {reason}");
        }
    }
    Ok(())
}

pub(super) fn write_frontier(data: DataArg, out: PathBuf) -> Result<()> {
    let session = Session::open(&data.data)?;
    crate::out_file::check_destination(&out)?;
    let file = session.call(async |s| s.frontier_file().await)?;
    write_new_file(&out, &file.bytes)?;
    outln!("wrote the frontier of {} authors to {}", file.authors, out.display());
    Ok(())
}
