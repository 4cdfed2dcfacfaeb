//! `topup-under-import`: top-ups at a hub while another process imports
//! a large bundle on the same data directory.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use saldo_node::node::Node;
use saldo_sync::{Amount, Balance, DeviceKey, OfflineLimits, PaymentMethod, Role, Seq, WalletKey};

use super::{ArrivalTime, Options, hub_with_wallets, label, ms, percentile, signed_log};

/// `topup-under-import`: top-ups recorded at a hub, one every 10 ms, each
/// timed from the call to its durable commit: first with nothing else
/// running, then while another process imports a bundle of `--ops`
/// (100,000) top-ups of a cash point on the same data directory, in short
/// transactions (as `saldo bundle import` does) and, for comparison, in
/// transactions of `OPS_PER_BATCH_MAX` operations.
pub(super) fn topup_under_import(options: &Options) -> Result<()> {
    let count = options.ops.unwrap_or(100_000);
    let work = options.work.join("topup-under-import");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let hub_dir = work.join("hub");
    let (mut hub, wallets) = hub_with_wallets(&hub_dir, 1_000, 5)?;
    let realm = hub.realm();
    let cash_point = DeviceKey::from_secret_bytes(&blake3::derive_key("bench bundle cash point", &[0]));
    let limits = OfflineLimits {
        per_operation: Amount::parse("500")?,
        unconfirmed_total: Balance::parse("100000000")?,
        offline_secs_max: 86_400,
    };
    hub.enrol(cash_point.author(), Role::CashPoint, &label("Sportello"), limits)?;
    let hub_seen = hub.store_mut().read()?.author(&realm.hub())?.map_or(Seq(0), |a| a.head_seq);
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
    let mut rng = fastrand::Rng::with_seed(21);
    // Recorded in the last hour, one a millisecond.
    let time = ArrivalTime { first_ms: now_ms - 3_600_000, step_ms: 1 };
    let ops = signed_log(&realm, &cash_point, hub_seen, &wallets, count, time, &mut rng);
    let body = saldo_sync::bundle::BundleBody { realm, exporter: cash_point.author(), created_ms: now_ms, ops };
    let bundle = work.join("cash-point.bundle");
    std::fs::write(&bundle, body.seal(&cash_point))?;
    drop(hub);
    let large_dir = work.join("hub-large");
    std::fs::create_dir_all(&large_dir)?;
    for entry in std::fs::read_dir(&hub_dir)? {
        let entry = entry?;
        std::fs::copy(entry.path(), large_dir.join(entry.file_name()))?;
    }
    println!("saldo-bench topup-under-import: a hub of {} wallets; a bundle of {count} top-ups", wallets.len());

    let mut counter = Node::open(&hub_dir)?;
    let started = Instant::now();
    let idle = top_ups_while(&mut counter, &wallets, &mut || Ok(started.elapsed() < Duration::from_secs(3)))?;
    print_latencies("idle (no import)", &idle);
    for (dir, how, large) in [(&hub_dir, "short transactions", false), (&large_dir, "transactions of 50,000", true)] {
        let mut counter = Node::open(dir)?;
        let mut import = std::process::Command::new(std::env::current_exe()?);
        import.arg(IMPORT_CHILD).arg(dir).arg(&bundle);
        if large {
            import.arg("--large");
        }
        let started = Instant::now();
        let mut child = import.spawn().context("starting the importing process")?;
        let mut exit = None;
        let busy = top_ups_while(&mut counter, &wallets, &mut || {
            exit = child.try_wait()?;
            Ok(exit.is_none())
        })?;
        let elapsed = started.elapsed();
        let exit = match exit {
            Some(exit) => exit,
            None => child.wait()?,
        };
        anyhow::ensure!(exit.success(), "the import failed: {exit}");
        print_latencies(
            &format!(
                "during the import ({how}, {:.1} s, {:.0} operations/s)",
                elapsed.as_secs_f64(),
                count as f64 / elapsed.as_secs_f64()
            ),
            &busy,
        );
    }
    let report = Node::open(&hub_dir)?.verify_log()?;
    anyhow::ensure!(report.ok(), "the hub does not verify: {:?}", report.problems);
    Ok(())
}

/// The hidden subcommand of the process that imports: `DIR BUNDLE [--large]`.
pub(super) const IMPORT_CHILD: &str = "import-bundle-child";

pub(super) fn import_child(mut args: impl Iterator<Item = String>) -> Result<()> {
    let dir = PathBuf::from(args.next().context("the data directory")?);
    let bytes = std::fs::read(args.next().context("the bundle")?)?;
    let mut node = Node::open(&dir)?;
    if args.next().as_deref() == Some("--large") {
        let body = saldo_sync::bundle::BundleBody::open(&bytes, &node.realm())?;
        let results = node.ingest(&body.ops)?;
        anyhow::ensure!(results.iter().all(Result::is_ok), "an operation of the bundle was refused");
    } else {
        let report = node.import_bundle(&bytes)?;
        anyhow::ensure!(report.refused.is_empty(), "refused: {:?}", report.refused.first());
    }
    Ok(())
}

/// Top-ups at the counter every 10 ms while `go_on` says so; their latencies, sorted.
fn top_ups_while(
    counter: &mut Node,
    wallets: &[WalletKey],
    go_on: &mut dyn FnMut() -> Result<bool>,
) -> Result<Vec<Duration>> {
    let mut latencies = Vec::new();
    let mut rng = fastrand::Rng::with_seed(33);
    while go_on()? {
        let wallet = &wallets[rng.usize(..wallets.len())];
        let line = saldo_node::node::TopUpRequestLine {
            consumer: wallet.consumer,
            service: wallet.service.clone(),
            amount: Amount::parse("5")?,
        };
        let started = Instant::now();
        counter.record_top_up(&[line], PaymentMethod::Cash, None)?;
        latencies.push(started.elapsed());
        std::thread::sleep(Duration::from_millis(10));
    }
    latencies.sort();
    Ok(latencies)
}

fn print_latencies(what: &str, sorted: &[Duration]) {
    match sorted.last() {
        Some(max) => println!(
            "    top-up latency {what}: p50 {:.1} ms   p99 {:.1} ms   max {:.1} ms   ({} top-ups; target p99 <= 100 ms)",
            ms(percentile(sorted, 50)),
            ms(percentile(sorted, 99)),
            ms(*max),
            sorted.len()
        ),
        None => println!("    top-up latency {what}: no top-up recorded"),
    }
}
