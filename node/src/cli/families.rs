//! Families and consumers: `families import`, `search`, `generate`.

use super::args::{DataArg, GenerateArgs, JsonArg, SearchArgs};
use super::render::print_json;
use super::{OutputError, Session};
use crate::{generate, import};
use anyhow::{Context as _, Result, bail};
use saldo_api::consumers::SearchParams;
use std::fs::File;
use std::io::{Read as _, Write};
use std::path::PathBuf;

pub(super) fn import_families(data: DataArg, file: PathBuf, json: JsonArg) -> Result<()> {
    let session = Session::open(&data.data)?;
    let input = File::open(&file).with_context(|| format!("cannot open {}", file.display()))?;
    let mut csv = Vec::new();
    // One byte past the limit, so the import can say the file is too large.
    input
        .take(import::IMPORT_BYTES_MAX as u64 + 1)
        .read_to_end(&mut csv)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} families ({per_sec}, {eta} left)")
            .expect("a valid progress template"),
    );
    let progress = bar.clone();
    let report = session.call(async |s| {
        s.import_families_telling(csv, move |done, total| {
            progress.set_length(total);
            progress.set_position(done);
        })
        .await
    })?;
    bar.finish_and_clear();
    if json.json {
        print_json(&report)?;
    } else {
        for refused in &report.refused {
            outln!("line {}: {}", refused.line, refused.message);
        }
        outln!(
            "{} rows read: {} imported, {} rejected; {} families, {} directory changes written{}",
            report.rows,
            report.accepted_rows,
            report.refused.len(),
            report.families,
            report.directory_operations,
            if report.services_created.is_empty() {
                String::new()
            } else {
                format!("; new services: {}", report.services_created.join(", "))
            }
        );
    }
    Ok(())
}

pub(super) fn search(args: SearchArgs) -> Result<()> {
    let session = Session::open(&args.data.data)?;
    let params = SearchParams { q: args.query.clone(), limit: Some(args.limit) };
    let found = session.call(async |s| s.search(params).await)?;
    if args.json.json {
        print_json(&found)?;
    } else if found.consumers.is_empty() {
        outln!("nobody found for {:?}", args.query);
    } else {
        for c in &found.consumers {
            outln!(
                "{:<20} {:<20} PAN {}  CF {}  {} {}  [{}]",
                c.surname.as_str(),
                c.name.as_str(),
                c.pan,
                c.fiscal_code,
                c.school.as_ref().map_or("-", |s| s.as_str()),
                c.class.as_ref().map_or("", |s| s.as_str()),
                c.wallets.iter().map(|w| w.service.as_str()).collect::<Vec<_>>().join(", ")
            );
        }
        if found.truncated {
            outln!("(more match: type more of the name, or use --limit)");
        }
    }
    Ok(())
}

pub(super) fn generate_csv(args: GenerateArgs) -> Result<()> {
    if args.consumers == 0 || args.consumers > generate::CONSUMERS_MAX {
        bail!("--consumers must be 1 to {}", generate::CONSUMERS_MAX);
    }
    crate::out_file::write_atomically(&args.out, |mut out| generate::write_csv(&mut out, args.consumers, args.seed))?;
    let _ = writeln!(std::io::stderr(), "wrote {} consumers to {}", args.consumers, args.out.display());
    Ok(())
}
