//! Sync by file: `bundle export`, `bundle import`, `bundle frontier`.

use super::OutputError;
use super::args::{DataArg, JsonArg};
use super::open;
use super::render::{format_time, print_json};
use anyhow::Context as _;
use anyhow::{Result, bail};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` whole, only if it is a regular file or a new
/// name (see [`crate::out_file`]).
fn write_new_file(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(crate::out_file::write_bytes(path, bytes)?)
}

pub(super) fn export_bundle(data: DataArg, out: PathBuf, lacking: Option<PathBuf>, json: JsonArg) -> Result<()> {
    crate::out_file::check_destination(&out)?;
    let mut node = open(&data.data)?;
    let (lacking, holder) = match &lacking {
        Some(path) => {
            let bytes = crate::out_file::read_bounded(
                path,
                saldo_sync::bundle::FRONTIER_FILE_BYTES_MAX as u64,
                "frontier file",
            )?;
            let holder = node
                .open_frontier_file(&bytes)
                .with_context(|| format!("cannot use the frontier file {}", path.display()))?;
            (Some(bytes), Some(holder))
        }
        None => (None, None),
    };
    let (bytes, count) = node.export_bundle(lacking.as_deref())?;
    write_new_file(&out, &bytes)?;
    let for_whom = holder.as_ref().map(|h| {
        serde_json::json!({
            "device": h.holder.to_hex(),
            "name": h.name,
            "role": h.role.name(),
            "frontier_written_ms": h.created_ms,
        })
    });
    if json.json {
        print_json(&serde_json::json!({
            "file": out,
            "operations": count,
            "bytes": bytes.len(),
            "for": for_whom,
        }))?;
    } else {
        outln!("wrote {count} operations ({} bytes) to {}", bytes.len(), out.display());
        match &holder {
            Some(h) => outln!(
                "for {} ({}), whose frontier was written {}",
                h.name.as_deref().unwrap_or("the hub"),
                h.role.name(),
                format_time(h.created_ms)
            ),
            None if node.is_hub() => outln!(
                "everything this hub holds, contact data included: a backup for the hub only (a cash point refuses the contact data)"
            ),
            None => {}
        }
    }
    Ok(())
}

pub(super) fn import_bundle(data: DataArg, file: PathBuf, json: JsonArg) -> Result<()> {
    let mut node = open(&data.data)?;
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
    let report = node.import_bundle(&bytes).with_context(|| format!("{} was not imported", file.display()))?;
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
    let mut node = open(&data.data)?;
    crate::out_file::check_destination(&out)?;
    let (file, bytes) = node.frontier_file()?;
    write_new_file(&out, &bytes)?;
    outln!("wrote the frontier of {} authors to {}", file.frontier.0.len(), out.display());
    Ok(())
}
