//! Families and consumers: `families import`, `search`, `generate`.

use super::OutputError;
use super::args::{DataArg, GenerateArgs, JsonArg, SearchArgs};
use super::open;
use super::render::print_json;
use crate::{generate, import};
use anyhow::{Context as _, Result, bail};
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

pub(super) fn import_families(data: DataArg, file: PathBuf, json: JsonArg) -> Result<()> {
    let mut node = open(&data.data)?;
    let input = File::open(&file).with_context(|| format!("cannot open {}", file.display()))?;
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} families ({per_sec}, {eta} left)")
            .expect("a valid progress template"),
    );
    let report = import::import_csv(&mut node, input, &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    if json.json {
        print_json(&report)?;
    } else {
        for rejected in &report.rejected {
            outln!("{rejected}");
        }
        outln!(
            "{} rows read: {} imported, {} rejected; {} families, {} directory changes written{}",
            report.rows,
            report.accepted_rows,
            report.rejected.len(),
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
    let mut node = open(&args.data.data)?;
    let found = node.search(&args.query, args.limit)?;
    if args.json.json {
        print_json(&found)?;
    } else if found.is_empty() {
        outln!("nobody found for {:?}", args.query);
    } else {
        for c in &found {
            outln!(
                "{:<20} {:<20} PAN {}  CF {}  {} {}  [{}]",
                c.surname,
                c.name,
                c.pan,
                c.fiscal_code,
                c.school.as_deref().unwrap_or("-"),
                c.class.as_deref().unwrap_or(""),
                c.services.join(", ")
            );
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
