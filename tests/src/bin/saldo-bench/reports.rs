//! `reports`: the municipality's reports at a hub holding a year of top-ups.

use std::time::Instant;

use anyhow::Result;
use saldo_node::generate;
use saldo_sync::{Amount, Balance, OfflineLimits, Seq};

use super::{ArrivalTime, Options, enrolled_cash_points, hub_with_wallets, peak_rss_kib, signed_arrival};

/// The year the benchmark's top-ups were recorded in.
const YEAR: u32 = 2025;
/// 2025-01-01T00:00:00Z, in milliseconds.
const YEAR_START_MS: u64 = 1_735_689_600_000;
const CASH_POINTS: usize = 1_000;
const CHILDREN: u64 = 20_000;

/// Builds a hub of 20,000 children where 1,000 cash points recorded
/// `--ops` top-ups (1,000,000 by default) spread evenly over 2025, then
/// times each report as the hub's staff ask for it.
pub(super) fn reports(options: &Options) -> Result<()> {
    let total = options.ops.unwrap_or(1_000_000);
    let per_author = total / CASH_POINTS;
    let dir = options.work.join("reports");
    let _ = std::fs::remove_dir_all(&dir);
    let started = Instant::now();
    let (mut hub, wallets) = hub_with_wallets(&dir, CHILDREN, 5)?;
    let realm = hub.realm();
    // Recorded online through the year: nothing is flagged for its age.
    let limits = OfflineLimits {
        per_operation: Amount::parse("500")?,
        unconfirmed_total: Balance::parse("100000000")?,
        offline_secs_max: 10 * 366 * 86_400,
    };
    let keys = enrolled_cash_points(&mut hub, CASH_POINTS, "bench reports", limits)?;
    let hub_seen = hub.store_mut().read()?.author(&realm.hub())?.map_or(Seq(0), |a| a.head_seq);
    let year_ms = 365 * 86_400_000;
    let time = ArrivalTime { first_ms: YEAR_START_MS, step_ms: year_ms / (per_author as u64 + 1) };
    let arrival = signed_arrival(&realm, &keys, hub_seen, &wallets, per_author, time);
    for batch in arrival.chunks(options.batch) {
        for result in hub.ingest(batch)? {
            result?;
        }
    }
    drop(arrival);
    let year = hub.report_movements(Some(YEAR * 10_000 + 101), Some(YEAR * 10_000 + 1231), None)?;
    let flagged = year.pending.flagged.count;
    println!(
        "saldo-bench reports: built in {:.0} s a hub of {CHILDREN} children holding {} top-ups of {CASH_POINTS} cash points over {YEAR} ({flagged} flagged)",
        started.elapsed().as_secs_f64(),
        per_author * CASH_POINTS,
    );
    let mut csv = Vec::new();
    generate::write_csv(&mut csv, CHILDREN, 5)?;
    let payer = String::from_utf8(csv)?.lines().nth(1).and_then(|l| l.split(',').next()).unwrap_or_default().to_owned();
    let mut time_it = |what: &str, run: &mut dyn FnMut(&mut saldo_node::Node) -> Result<usize>| -> Result<()> {
        let started = Instant::now();
        let rows = run(&mut hub)?;
        println!("    {what}: {:.2} s ({rows} rows)", started.elapsed().as_secs_f64());
        Ok(())
    };
    time_it("daily close, one day of every cash point", &mut |hub| {
        Ok(hub.report_daily_close(Some(YEAR * 10_000 + 615), None)?.cash_points.len())
    })?;
    time_it("remittances, one month of every cash point", &mut |hub| {
        Ok(hub.report_remittances(Some(YEAR * 10_000 + 601), Some(YEAR * 10_000 + 630), None)?.cash_points.len())
    })?;
    time_it("movements, one month", &mut |hub| {
        Ok(hub.report_movements(Some(YEAR * 10_000 + 601), Some(YEAR * 10_000 + 630), None)?.rows.len())
    })?;
    time_it("movements, the whole year", &mut |hub| {
        Ok(hub.report_movements(Some(YEAR * 10_000 + 101), Some(YEAR * 10_000 + 1231), None)?.rows.len())
    })?;
    time_it("yearly statement of one payer", &mut |hub| Ok(hub.report_yearly(Some(YEAR), Some(&payer))?.payers.len()))?;
    time_it("yearly statements of every payer", &mut |hub| Ok(hub.report_yearly(Some(YEAR), None)?.payers.len()))?;
    time_it("yearly statements of a year without top-ups", &mut |hub| {
        Ok(hub.report_yearly(Some(YEAR - 1), None)?.payers.len())
    })?;
    println!("peak resident memory, building the hub included: {} MiB", peak_rss_kib() / 1024);
    Ok(())
}
