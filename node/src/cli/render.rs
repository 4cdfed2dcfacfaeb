//! Output helpers shared by the commands: JSON, times.

use super::OutputError;
use anyhow::Result;
use std::io::Write;

pub(super) fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let mut out = std::io::stdout().lock();
    // As an io::Error, so that a closed pipe is recognised.
    serde_json::to_writer_pretty(&mut out, value).map_err(|e| OutputError(e.into()))?;
    writeln!(out).map_err(OutputError)?;
    Ok(())
}

pub(super) fn format_time(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// An API enum's JSON name (`over_escrow`).
pub(super) fn api_name(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}

/// An API enum as the command line prints it: its JSON name with spaces
/// (`top_up` → "top up").
pub(super) fn snake_words(value: &impl serde::Serialize) -> String {
    api_name(value).replace('_', " ")
}
