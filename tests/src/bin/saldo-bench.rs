//! Saldo's benchmarks, run in release mode outside the test suite:
//!
//! ```text
//! cargo run --release -p saldo-tests --bin saldo-bench -- foundation
//! ```
//!
//! `sync-latency` runs a hub and a cash point over iroh on 127.0.0.1 and
//! prints the time from a top-up at the cash point to the hub's decision,
//! and back at the cash point (p50/p99 over `--queries` top-ups, 200 by
//! default here).
//!
//! `sync-catch-up` builds a hub holding 1,000,000 operations of 1,000 cash
//! points (`--ops N` for another count) and a neighbour carrying them all,
//! lets the hub turn its receipts due into messages, then times fresh cash
//! points catching up from each over iroh.
//!
//! `sync-protocol` prints the bytes and round trips of the sync protocol
//! (no transport) for two nodes of 1,000 authors × 1,000 operations that
//! differ in 100 operations.
//!
//! `topup-under-import` prints the latency of top-ups at a hub (p50, p99,
//! max) while another process imports a bundle of 100,000 operations on the
//! same data directory (`--ops N` for another count), beside the idle figure.
//!
//! `http` prints top-ups per second and their latency through the HTTP API
//! at a cash point with 50 concurrent keep-alive clients, and search latency
//! at the hub of the 1,000,000-consumer realm while 1,000,000 operations are
//! ingested into it, each beside the in-process figure of the same run.
//!
//! `reports` builds a hub holding a year of 1,000,000 top-ups by 1,000 cash
//! points over 20,000 children (`--ops N` for another count) and prints how
//! long each of the municipality's reports takes there, and the memory.
//!
//! `foundation` prints, in one run: (a) raw ed25519 verifications per second
//! with batch verification on all cores, (b) operations per second verified
//! and durably stored by the hub's store in batches, (c) their ratio, (d)
//! search latency p50/p99 over a realm of 1,000,000 consumers by PAN, codice
//! fiscale and surname prefix, and (e) the peak resident memory. (a) and (b)
//! are measured in `--rounds` rounds, (a) right before and right after its
//! (b) (the ratio takes their mean: this machine's speed drifts), into
//! one hub that grows round by round; the medians are printed, with the CPU
//! time and the bytes written per operation stored.

// Rates and latencies are floating point; no amount of money is, here or anywhere.
#![allow(clippy::float_arithmetic)]

#[path = "saldo-bench/foundation.rs"]
mod foundation;
#[path = "saldo-bench/http.rs"]
mod http;
#[path = "saldo-bench/outbox.rs"]
mod outbox;
#[path = "saldo-bench/reports.rs"]
mod reports;
#[path = "saldo-bench/sync.rs"]
mod sync;
#[path = "saldo-bench/under_import.rs"]
mod under_import;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use saldo_node::node::Node;
use saldo_node::{generate, import};
use saldo_sync::{
    Amount, Body, ConsumerId, DeviceKey, Hlc, Label, OpId, Operation, PaymentMethod, ReceiptNo, Seq, TopUp, TopUpLine,
    WalletKey,
};

/// Saldo's benchmarks (release mode, outside the test suite): each prints its figures.
#[derive(Debug, clap::Parser)]
#[command(name = "saldo-bench")]
struct Cli {
    /// The benchmark to run.
    #[arg(value_enum, default_value_t = Benchmark::Foundation)]
    benchmark: Benchmark,
    #[command(flatten)]
    options: Options,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Benchmark {
    /// Raw verification against the hub's verified, durable ingest; search at 1,000,000 consumers.
    Foundation,
    /// Bytes and round trips of the sync protocol, without a transport.
    SyncProtocol,
    /// A top-up at a cash point to the hub's decision and back, over iroh.
    SyncLatency,
    /// Fresh cash points catching up 1,000,000 operations over iroh.
    SyncCatchUp,
    /// Top-ups at a hub while another process imports a bundle.
    TopupUnderImport,
    /// Top-ups and search through the HTTP API, beside the in-process figures.
    Http,
    /// The hub's outbox delivering receipts to an SMTP server on 127.0.0.1.
    Outbox,
    /// The municipality's reports at a hub holding a year of 1,000,000 top-ups.
    Reports,
}

#[derive(Debug, Clone, clap::Args)]
struct Options {
    /// Consumers in the generated realm.
    #[arg(long, default_value_t = 1_000_000)]
    consumers: u64,
    /// Operations (each benchmark has its own default; `foundation`: per round).
    #[arg(long)]
    ops: Option<usize>,
    /// Operations per ingest call, as a sync session hands them over.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Rounds of `foundation`'s (a) and (b).
    #[arg(long, default_value_t = 5, value_parser = at_least_one)]
    rounds: usize,
    /// Queries (or top-ups) whose latencies are measured.
    #[arg(long, default_value_t = 2_000)]
    queries: usize,
    /// Where the benchmarks keep their nodes (the 1,000,000-consumer realm is kept there).
    #[arg(long, default_value = "target/bench")]
    work: PathBuf,
    /// Skips the search over the 1,000,000-consumer realm (building it takes about 10 minutes).
    #[arg(long)]
    skip_search: bool,
}

fn at_least_one(value: &str) -> std::result::Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{value} is not a whole number of at least 1")),
    }
}

fn main() -> Result<()> {
    if std::env::args().nth(1).as_deref() == Some(under_import::IMPORT_CHILD) {
        return under_import::import_child(std::env::args().skip(2));
    }
    let Cli { benchmark, options } = clap::Parser::parse();
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for meaningful figures");
    }
    match benchmark {
        Benchmark::Foundation => foundation::foundation(&options),
        Benchmark::SyncProtocol => sync::sync_protocol(),
        Benchmark::SyncLatency => sync::sync_latency(&options),
        Benchmark::SyncCatchUp => sync::sync_catch_up(&options),
        Benchmark::TopupUnderImport => under_import::topup_under_import(&options),
        Benchmark::Http => http::http(&options),
        Benchmark::Outbox => outbox::outbox(&options),
        Benchmark::Reports => reports::reports(&options),
    }
}

/// A benchmark hub in `dir` with a generated directory of `consumers`, and
/// the wallets top-ups go to: every consumer's first service.
fn hub_with_wallets(dir: &Path, consumers: u64, seed: u64) -> Result<(Node, Vec<WalletKey>)> {
    let mut hub = Node::init_realm(dir, &label("Comune di Benchmark"))?;
    let mut csv = Vec::new();
    generate::write_csv(&mut csv, consumers, seed)?;
    let report = import::import_csv(&mut hub, csv.as_slice(), &|_, _| {})?;
    anyhow::ensure!(report.rejected.is_empty(), "benchmark directory did not import");
    let wallets = {
        let tx = hub.store_mut().read()?;
        let mut out = Vec::new();
        for line in String::from_utf8(csv)?.lines().skip(1) {
            let code = saldo_sync::CodiceFiscale::parse(line.split(',').nth(5).unwrap_or_default())?;
            let consumer = ConsumerId::derive(&code);
            if let Some(service) = tx.consumer_services(&consumer)?.into_iter().next() {
                out.push(WalletKey { consumer, service });
            }
        }
        out
    };
    Ok((hub, wallets))
}

/// When the top-ups of [`signed_arrival`] were recorded: each cash point's
/// `seq`-th at `first_ms + seq × step_ms` (milliseconds since 1970).
#[derive(Debug, Clone, Copy)]
struct ArrivalTime {
    first_ms: u64,
    step_ms: u64,
}

impl ArrivalTime {
    /// All within a few minutes of one day.
    const ONE_DAY: ArrivalTime = ArrivalTime { first_ms: 1_790_000_000_000, step_ms: 1 };
}

/// The log of the cash point `key`: `count` top-ups of 1–50 euro in cash on
/// random `wallets`, each holding the hub's log up to `hub_seen`, timed by
/// `time`.
fn signed_log(
    realm: &saldo_sync::RealmId,
    key: &DeviceKey,
    hub_seen: Seq,
    wallets: &[WalletKey],
    count: usize,
    time: ArrivalTime,
    rng: &mut fastrand::Rng,
) -> Vec<Vec<u8>> {
    let mut prev = OpId::NONE;
    (1..=count as u64)
        .map(|seq| {
            let op = Operation {
                author: key.author(),
                seq: Seq(seq),
                prev,
                hlc: Hlc::from_parts(time.first_ms + seq * time.step_ms, 0),
                hub_seen,
                body: Body::TopUp(TopUp {
                    receipt: ReceiptNo(seq),
                    lines: vec![TopUpLine {
                        wallet: wallets[rng.usize(..wallets.len())].clone(),
                        amount: Amount::from_minor(rng.i64(100..=5_000)).expect("amount"),
                    }],
                    method: PaymentMethod::Cash,
                    operator: None,
                }),
            }
            .sign(realm, key);
            prev = op.id;
            op.to_bytes()
        })
        .collect()
}

/// The logs of `keys` (cash points), `per_author` top-ups each
/// ([`signed_log`]), signed on all cores; interleaved as they would arrive
/// at the hub.
fn signed_arrival(
    realm: &saldo_sync::RealmId,
    keys: &[DeviceKey],
    hub_seen: Seq,
    wallets: &[WalletKey],
    per_author: usize,
    time: ArrivalTime,
) -> Vec<Vec<u8>> {
    let logs: Vec<Vec<Vec<u8>>> = std::thread::scope(|scope| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let handles: Vec<_> = keys
            .chunks(keys.len().div_ceil(cores))
            .enumerate()
            .map(|(part, chunk)| {
                scope.spawn(move || {
                    let mut rng = fastrand::Rng::with_seed(part as u64);
                    chunk
                        .iter()
                        .map(|key| signed_log(realm, key, hub_seen, wallets, per_author, time, &mut rng))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("signing thread")).collect()
    });
    let mut arrival = Vec::with_capacity(keys.len() * per_author);
    for i in 0..per_author {
        for log in &logs {
            arrival.push(log[i].clone());
        }
    }
    arrival
}

/// `count` cash points, their keys derived from `context` (the same on
/// every run), enrolled at `hub` as "Esercente 0", "Esercente 1", ...
fn enrolled_cash_points(
    hub: &mut Node,
    count: usize,
    context: &str,
    limits: saldo_sync::OfflineLimits,
) -> Result<Vec<DeviceKey>> {
    let keys: Vec<DeviceKey> = (0..count as u32)
        .map(|i| DeviceKey::from_secret_bytes(&blake3::derive_key(context, &i.to_le_bytes())))
        .collect();
    for (i, key) in keys.iter().enumerate() {
        hub.enrol(key.author(), saldo_sync::Role::CashPoint, &label(&format!("Esercente {i}")), limits)?;
    }
    Ok(keys)
}

/// What a hub's service writer does first once idle: turns every receipt
/// due into the outbox's messages. Returns how many receipts it handled.
fn expand_all_receipts(hub: &mut Node) -> Result<usize> {
    let mut receipts = 0;
    loop {
        let n = hub.expand_receipts_due(saldo_node::outbox::queue::EXPAND_BATCH)?;
        if n == 0 {
            break;
        }
        receipts += n;
    }
    Ok(receipts)
}

fn label(text: &str) -> Label {
    Label::parse(text).expect("a valid label")
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Bytes this process has handed to write calls so far (the write-ahead
/// log, and the database when the log is copied back): unlike times, the
/// same on every run of the same work.
fn process_written() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|io| io.lines().find_map(|l| l.strip_prefix("wchar:").and_then(|v| v.trim().parse().ok())))
        .unwrap_or(0)
}

/// CPU time of this process so far (all threads): in user space, and in the kernel.
fn process_cpu_split() -> (Duration, Duration) {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            Some((fields.get(11)?.parse::<u64>().ok()?, fields.get(12)?.parse::<u64>().ok()?))
        })
        .unwrap_or((0, 0));
    // Clock ticks are 1/100 s on Linux.
    (Duration::from_millis(ticks.0 * 10), Duration::from_millis(ticks.1 * 10))
}

/// Peak resident set size of this process, in KiB (Linux).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
