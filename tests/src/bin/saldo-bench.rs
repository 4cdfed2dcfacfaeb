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
//! then times fresh cash points catching up from each over iroh.
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

#[path = "saldo-bench/http.rs"]
mod http;
#[path = "saldo-bench/outbox.rs"]
mod outbox;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use saldo_node::node::Node;
use saldo_node::{generate, import};
use saldo_sync::{
    Amount, Balance, Body, ConsumerId, DeviceKey, Hlc, Label, OfflineLimits, OpId, Operation, PaymentMethod, ReceiptNo,
    Role, Seq, TopUp, TopUpLine, WalletKey,
};

#[derive(Debug, Clone)]
struct Options {
    consumers: u64,
    /// `--ops`, when given: each benchmark has its own default.
    ops: Option<usize>,
    batch: usize,
    rounds: usize,
    queries: usize,
    work: PathBuf,
    skip_search: bool,
}

fn parse_options() -> Result<(String, Options)> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_else(|| "foundation".into());
    let mut options = Options {
        consumers: 1_000_000,
        ops: None,
        batch: 10_000,
        rounds: 5,
        queries: 2_000,
        work: PathBuf::from("target/bench"),
        skip_search: false,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--consumers" => options.consumers = value()?.parse()?,
            "--ops" => options.ops = Some(value()?.parse()?),
            "--batch" => options.batch = value()?.parse()?,
            "--rounds" => options.rounds = value()?.parse::<usize>()?.max(1),
            "--queries" => options.queries = value()?.parse()?,
            "--work" => options.work = PathBuf::from(value()?),
            "--skip-search" => options.skip_search = true,
            "--help" | "-h" => {
                println!(
                    "usage: saldo-bench foundation [--consumers N (1000000)] [--ops N per round (100000)] [--batch N (10000)] [--rounds N (5)] [--queries N (2000)] [--work DIR (target/bench)] [--skip-search]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown option {other}: see --help"),
        }
    }
    Ok((command, options))
}

fn main() -> Result<()> {
    if std::env::args().nth(1).as_deref() == Some(IMPORT_CHILD) {
        return import_child(std::env::args().skip(2));
    }
    let (command, options) = parse_options()?;
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for meaningful figures");
    }
    match command.as_str() {
        "foundation" => foundation(&options),
        "sync-protocol" => sync_protocol(),
        "sync-latency" => sync_latency(&options),
        "sync-catch-up" => sync_catch_up(&options),
        "topup-under-import" => topup_under_import(&options),
        "http" => http::http(&options),
        "outbox" => outbox::outbox(&options),
        other => bail!("unknown benchmark {other}: try `foundation` or `sync-protocol`"),
    }
}

fn foundation(options: &Options) -> Result<()> {
    std::fs::create_dir_all(&options.work)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("saldo-bench foundation: {cores} cores");

    let signatures = SignedMessages::new();
    println!("    ed25519 one by one on one core: {:.0} verifications/s", signatures.one_by_one_rate());
    let rounds = ingest_rounds(options, cores, &signatures)?;
    let median = |f: &dyn Fn(&Round) -> f64| {
        let mut v: Vec<f64> = rounds.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[0], v[v.len() - 1])
    };
    let (a, a_min, a_max) = median(&|r| r.verify);
    let (b, b_min, b_max) = median(&|r| r.stream);
    let (c, c_min, c_max) = median(&|r| r.stream / r.verify);
    let (calls, calls_min, calls_max) = median(&|r| r.calls);
    let (cpu_us, _, _) = median(&|r| r.stream_cpu_us);
    let (receipts, receipts_min, receipts_max) = median(&|r| r.receipts);
    let n = rounds.len();
    println!("    medians of {n} rounds (lowest–highest); each round measures (a) just before and just after its (b):");
    println!(
        "(a) raw ed25519 verification, batches of {} on {cores} cores: {a:.0}/s ({a_min:.0}–{a_max:.0})",
        SignedMessages::CHUNK
    );
    println!(
        "(b) hub store, verified and durably stored, committed every {} operations: {b:.0} operations/s ({b_min:.0}–{b_max:.0})",
        saldo_node::node::OPS_PER_BATCH_MAX
    );
    println!("(c) ratio (b)/(a): {c:.2} ({c_min:.2}–{c_max:.2})  (target >= 0.5)");
    println!(
        "    CPU time per operation stored, all threads: {cpu_us:.1} µs; (a) spends {:.1} µs of CPU per verification",
        cores as f64 * 1e6 / a
    );
    println!(
        "    (b) with one call per batch of {} (as a sync session hands them over): {calls:.0} operations/s ({calls_min:.0}–{calls_max:.0}), {:.2} of (a)",
        options.batch,
        calls / a
    );

    println!(
        "    receipts due turned into the outbox's messages after the commits (two each): {receipts:.0}/s ({receipts_min:.0}–{receipts_max:.0})"
    );

    if !options.skip_search {
        search_latency(options)?;
    }

    println!("(e) peak resident memory: {} MiB", peak_rss_kib() / 1024);
    Ok(())
}

/// Signed messages to verify for (a): 80 bytes each, by 1,024 keys.
struct SignedMessages {
    messages: Vec<[u8; 80]>,
    signed: Vec<(VerifyingKey, Signature)>,
}

impl SignedMessages {
    const N: usize = 64 * 1024;
    /// The batch size of the hub's ingest, so that (a) bounds (b).
    const CHUNK: usize = saldo_node::node::VERIFY_PART_OPS;

    fn new() -> SignedMessages {
        let keys: Vec<SigningKey> =
            (0..1024u32).map(|i| SigningKey::from_bytes(&blake3::derive_key("bench key", &i.to_le_bytes()))).collect();
        let messages: Vec<[u8; 80]> = (0..Self::N as u64)
            .map(|i| {
                let mut m = [0u8; 80];
                m[..8].copy_from_slice(&i.to_le_bytes());
                m
            })
            .collect();
        let signed = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let key = &keys[i % keys.len()];
                (key.verifying_key(), key.sign(m))
            })
            .collect();
        SignedMessages { messages, signed }
    }

    /// Verifications per second, one by one on one core.
    fn one_by_one_rate(&self) -> f64 {
        let n = Self::N / 4;
        let started = Instant::now();
        for (message, (key, signature)) in self.messages.iter().zip(&self.signed).take(n) {
            key.verify_strict(message, signature).expect("valid signature");
        }
        n as f64 / started.elapsed().as_secs_f64()
    }

    /// (a) Verifications per second, batched over all cores.
    fn batched_rate(&self, cores: usize) -> f64 {
        let started = Instant::now();
        std::thread::scope(|scope| {
            let per_thread = Self::N.div_ceil(cores);
            for part in 0..cores {
                let range = part * per_thread..((part + 1) * per_thread).min(Self::N);
                scope.spawn(move || {
                    for start in range.clone().step_by(Self::CHUNK) {
                        let end = (start + Self::CHUNK).min(range.end);
                        let msgs: Vec<&[u8]> = self.messages[start..end].iter().map(|m| m.as_slice()).collect();
                        let sigs: Vec<Signature> = self.signed[start..end].iter().map(|s| s.1).collect();
                        let keys: Vec<VerifyingKey> = self.signed[start..end].iter().map(|s| s.0).collect();
                        ed25519_dalek::verify_batch(&msgs, &sigs, &keys).expect("valid batch");
                    }
                });
            }
        });
        Self::N as f64 / started.elapsed().as_secs_f64()
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

/// The logs of `keys` (cash points), `per_author` top-ups each on random
/// `wallets`, signed on all cores, each holding the hub's log up to
/// `hub_seen`; interleaved as they would arrive at the hub.
fn signed_arrival(
    realm: &saldo_sync::RealmId,
    keys: &[DeviceKey],
    hub_seen: Seq,
    wallets: &[WalletKey],
    per_author: usize,
) -> Vec<Vec<u8>> {
    let realm = *realm;
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
                        .map(|key| {
                            let mut prev = OpId::NONE;
                            (1..=per_author as u64)
                                .map(|seq| {
                                    let op = Operation {
                                        author: key.author(),
                                        seq: Seq(seq),
                                        prev,
                                        hlc: Hlc::from_parts(1_790_000_000_000 + seq, 0),
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
                                    .sign(&realm, key);
                                    prev = op.id;
                                    op.to_bytes()
                                })
                                .collect::<Vec<_>>()
                        })
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

fn label(text: &str) -> Label {
    Label::parse(text).expect("a valid label")
}

/// One round of (a) and (b), measured one right after the other so that
/// both see the machine as it is then (it varies by ±20% here, minute to
/// minute, from outside).
struct Round {
    /// (a), verifications per second batched on all cores: the mean of
    /// one measure just before (b) and one just after.
    verify: f64,
    /// Receipts per second the hub's writer turns into messages after the
    /// commits (every family has contacts: two messages each).
    receipts: f64,
    /// (b), operations per second, all of the round's operations handed to
    /// the hub at once: it commits every `OPS_PER_BATCH_MAX`, checking the
    /// signatures of the next batch while it stores one.
    stream: f64,
    /// CPU time (all threads) per operation of `stream`.
    stream_cpu_us: f64,
    /// (b) with one call per `--batch` operations, each returning once
    /// durable, as a sync session hands over what it received.
    calls: f64,
}

/// (b) A hub on disk ingests cash points' top-ups in batches: each decoded,
/// its signature verified, chain checked, judged by the hub's rules, stored
/// with its effects and the hub's decisions, and committed durably. Round
/// after round into the same hub, which grows.
fn ingest_rounds(options: &Options, cores: usize, signatures: &SignedMessages) -> Result<Vec<Round>> {
    let dir = options.work.join("ingest");
    let _ = std::fs::remove_dir_all(&dir);
    let (mut hub, wallets) = hub_with_wallets(&dir, 10_000, 3)?;
    let realm = hub.realm();
    let limits = OfflineLimits {
        per_operation: Amount::parse("500")?,
        unconfirmed_total: Balance::parse("1000000")?,
        offline_secs_max: 86_400,
    };
    let cash_points: Vec<DeviceKey> = (0..20u32)
        .map(|i| DeviceKey::from_secret_bytes(&blake3::derive_key("bench cash point", &i.to_le_bytes())))
        .collect();
    for (i, key) in cash_points.iter().enumerate() {
        hub.enrol(key.author(), Role::CashPoint, &label(&format!("Esercente {i}")), limits)?;
    }
    // Each cash point's log, signed in advance, holding the hub's log as it is now.
    let hub_seen = hub.store_mut().read()?.author(&realm.hub())?.map_or(Seq(0), |a| a.head_seq);
    let mut heads = vec![(0u64, OpId::NONE); cash_points.len()];
    let mut rng = fastrand::Rng::with_seed(9);
    let calls_per_round = 2 * options.batch;
    let stream_per_round = options.ops.unwrap_or(100_000);
    let per_round = stream_per_round + calls_per_round;
    let ops: Vec<Vec<u8>> = (0..options.rounds * per_round)
        .map(|i| {
            let c = i % cash_points.len();
            let (seq, prev) = heads[c];
            let wallet = wallets[rng.usize(..wallets.len())].clone();
            let op = Operation {
                author: cash_points[c].author(),
                seq: Seq(seq + 1),
                prev,
                hlc: Hlc::from_parts(1_790_000_000_000 + i as u64, 0),
                hub_seen,
                body: Body::TopUp(TopUp {
                    receipt: ReceiptNo(seq + 1),
                    lines: vec![TopUpLine {
                        wallet,
                        amount: Amount::from_minor(rng.i64(100..=5_000)).expect("amount"),
                    }],
                    method: PaymentMethod::Cash,
                    operator: None,
                }),
            }
            .sign(&realm, &cash_points[c]);
            heads[c] = (seq + 1, op.id);
            op.to_bytes()
        })
        .collect();

    let mut rounds = Vec::with_capacity(options.rounds);
    for (i, round_ops) in ops.chunks(per_round).enumerate() {
        let (stream_ops, call_ops) = round_ops.split_at(stream_per_round);
        let verify_before = signatures.batched_rate(cores);

        let (started, cpu, written) = (Instant::now(), process_cpu(), process_written());
        let results = hub.ingest(stream_ops)?;
        let (elapsed, cpu) = (started.elapsed(), process_cpu() - cpu);
        let written_per_op = (process_written() - written) / stream_ops.len() as u64;
        anyhow::ensure!(results.iter().all(Result::is_ok), "a benchmark operation was refused");
        let stream = stream_ops.len() as f64 / elapsed.as_secs_f64();
        let stream_cpu_us = cpu.as_secs_f64() * 1e6 / stream_ops.len() as f64;
        let verify_after = signatures.batched_rate(cores);
        let verify = (verify_before + verify_after) / 2.0;

        let started = Instant::now();
        for batch in call_ops.chunks(options.batch) {
            anyhow::ensure!(hub.ingest(batch)?.iter().all(Result::is_ok), "a benchmark operation was refused");
        }
        let calls = call_ops.len() as f64 / started.elapsed().as_secs_f64();

        // What the service's writer does between jobs: the receipts due
        // become the outbox's messages.
        let (started, mut expanded) = (Instant::now(), 0usize);
        loop {
            let n = hub.expand_receipts_due(saldo_node::outbox::queue::EXPAND_BATCH)?;
            if n == 0 {
                break;
            }
            expanded += n;
        }
        let receipts = expanded as f64 / started.elapsed().as_secs_f64();
        anyhow::ensure!(expanded == round_ops.len(), "{expanded} receipts queued for {} top-ups", round_ops.len());
        println!("    round {}: receipts turned into messages after the commits: {receipts:.0}/s", i + 1);
        println!(
            "    round {}: (a) {verify:.0}/s ({verify_before:.0} before, {verify_after:.0} after), (b) {stream:.0} operations/s ({stream_cpu_us:.1} µs of CPU, {written_per_op} bytes written each), ratio {:.2}; one call per batch {calls:.0}/s",
            i + 1,
            stream / verify
        );
        rounds.push(Round { verify, stream, stream_cpu_us, calls, receipts });
    }
    let report = hub.verify_log()?;
    anyhow::ensure!(report.ok(), "the benchmark hub does not verify: {:?}", report.problems);
    println!(
        "    {} top-ups from {} cash points into a hub of {} consumers ({} operations in the log after, verified)",
        ops.len(),
        cash_points.len(),
        wallets.len(),
        report.operations
    );
    Ok(rounds)
}

/// (d) Search latency over a realm of `options.consumers` consumers, built
/// once under the work directory and reused by later runs.
fn search_latency(options: &Options) -> Result<()> {
    let dir = options.work.join(format!("realm-{}", options.consumers));
    let csv_path = options.work.join(format!("families-{}.csv", options.consumers));
    // A realm built by an earlier saldo, in an operation format this one
    // does not read, is built again.
    if dir.join("saldo.db").exists()
        && let Err(saldo_node::node::NodeError::FormatVersion { .. }) = Node::open(&dir)
    {
        println!("    the realm under {} is of an older format: building it again", dir.display());
        std::fs::remove_dir_all(&dir)?;
    }
    if !dir.join("saldo.db").exists() {
        let _ = std::fs::remove_dir_all(&dir);
        let started = Instant::now();
        let mut file = std::io::BufWriter::new(std::fs::File::create(&csv_path)?);
        generate::write_csv(&mut file, options.consumers, 1)?;
        drop(file);
        let generated = started.elapsed();
        let mut hub = Node::init_realm(&dir, &label("Comune di Benchmark"))?;
        let started = Instant::now();
        let report = import::import_csv(&mut hub, std::fs::File::open(&csv_path)?, &|done, total| {
            if done % 50_000 < 1_000 {
                eprint!("\r    importing: {done}/{total} families");
            }
        })?;
        eprintln!();
        anyhow::ensure!(report.rejected.is_empty(), "the benchmark realm did not import: {}", report.rejected[0]);
        let elapsed = started.elapsed();
        println!(
            "    built a realm of {} consumers in {} families: generated in {:.1} s, imported in {:.1} s ({:.0} consumers/s, {} directory operations)",
            report.accepted_rows,
            report.families,
            generated.as_secs_f64(),
            elapsed.as_secs_f64(),
            report.accepted_rows as f64 / elapsed.as_secs_f64(),
            report.directory_operations
        );
    }
    let db_bytes = std::fs::metadata(dir.join("saldo.db"))?.len();
    // A hub that has been running has its database in the operating system's
    // page cache (1.4 GB on a 24 GB machine): read the file once so the
    // figures are the steady state, not the first queries after a reboot.
    std::io::copy(&mut std::fs::File::open(dir.join("saldo.db"))?, &mut std::io::sink())?;
    let mut hub = Node::open(&dir)?;
    let (consumers, _) = hub.directory_counts()?;
    let samples = sample_queries(&csv_path, options.queries)?;
    println!(
        "(d) search over {consumers} consumers (database {} MiB, in the page cache), {} queries each:",
        db_bytes >> 20,
        options.queries
    );
    for (what, queries) in
        [("PAN", &samples.pans), ("codice fiscale", &samples.codes), ("surname prefix", &samples.prefixes)]
    {
        let mut latencies = Vec::with_capacity(queries.len());
        let mut found = 0usize;
        for query in queries {
            let started = Instant::now();
            let results = hub.search(query, 20)?;
            latencies.push(started.elapsed());
            found += usize::from(!results.is_empty());
        }
        anyhow::ensure!(
            found == queries.len(),
            "{what}: {} of {} queries found nobody",
            queries.len() - found,
            queries.len()
        );
        latencies.sort();
        println!(
            "    {what:<15} p50 {:>7.3} ms   p99 {:>7.3} ms   max {:>7.3} ms  (target p99 <= 5 ms)",
            ms(percentile(&latencies, 50)),
            ms(percentile(&latencies, 99)),
            ms(*latencies.last().expect("queries ran"))
        );
    }
    Ok(())
}

struct Samples {
    pans: Vec<String>,
    codes: Vec<String>,
    prefixes: Vec<String>,
}

/// Queries drawn from the realm's own file: PANs (as printed, when given),
/// consumers' codici fiscali, and surname prefixes of 3 to 6 letters.
fn sample_queries(csv_path: &Path, n: usize) -> Result<Samples> {
    let text = std::fs::read_to_string(csv_path).context("the realm's CSV is kept beside it for sampling")?;
    let rows: Vec<Vec<&str>> = text.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let mut rng = fastrand::Rng::with_seed(17);
    let mut samples = Samples { pans: Vec::new(), codes: Vec::new(), prefixes: Vec::new() };
    while samples.pans.len() < n || samples.codes.len() < n || samples.prefixes.len() < n {
        let row = &rows[rng.usize(..rows.len())];
        if samples.pans.len() < n && !row[8].is_empty() {
            samples.pans.push(row[8].to_string());
        }
        if samples.codes.len() < n {
            samples.codes.push(row[5].to_string());
        }
        if samples.prefixes.len() < n {
            let surname: String = row[6].chars().filter(|c| c.is_alphabetic()).collect();
            let len = rng.usize(3..=6).min(surname.chars().count());
            samples.prefixes.push(surname.chars().take(len).collect());
        }
    }
    Ok(samples)
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Peak resident set size of this process, in KiB (Linux).
/// Bytes this process has handed to write calls so far (the write-ahead
/// log, and the database when the log is copied back): unlike times, the
/// same on every run of the same work.
fn process_written() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|io| io.lines().find_map(|l| l.strip_prefix("wchar:").and_then(|v| v.trim().parse().ok())))
        .unwrap_or(0)
}

/// CPU time this process has used, all threads (user and system).
fn process_cpu() -> Duration {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    // Clock ticks are 1/100 s on Linux.
    Duration::from_millis(ticks * 10)
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The sync protocol's cost when two nodes share 1,000 authors' logs of
/// 1,000 operations each and one lacks the last operation of 100 authors:
/// frontiers from the full logs, and the 100 missing operations real and
/// signed. Messages as encoded for the wire; the transport adds its framing.
fn sync_protocol() -> Result<()> {
    use saldo_sync::reconcile::{ChainOp, Incoming, Message, OpSource, Session, SharePolicy};
    use saldo_sync::{Frontier, FrontierEntry};
    const AUTHORS: u32 = 1_000;
    const PER_AUTHOR: u64 = 1_000;
    const MISSING: u32 = 100;
    let hub = DeviceKey::from_secret_bytes(&[1; 32]);
    let realm = saldo_sync::RealmId(hub.author().0);
    let keys: Vec<DeviceKey> = (0..AUTHORS)
        .map(|i| DeviceKey::from_secret_bytes(&blake3::derive_key("bench author", &i.to_le_bytes())))
        .collect();
    // The operations only A holds: each author's last.
    let mut extra: std::collections::BTreeMap<saldo_sync::AuthorId, ChainOp> = Default::default();
    let mut full = Frontier::default();
    let mut behind = Frontier::default();
    for (i, key) in keys.iter().enumerate() {
        let prev = OpId(blake3::derive_key("bench prev", &(i as u32).to_le_bytes()));
        let last = Operation {
            author: key.author(),
            seq: Seq(PER_AUTHOR),
            prev,
            hlc: Hlc::from_parts(1_790_000_000_000, 0),
            hub_seen: Seq(0),
            body: Body::TopUp(TopUp {
                receipt: ReceiptNo(PER_AUTHOR),
                lines: vec![TopUpLine {
                    wallet: WalletKey {
                        consumer: ConsumerId([i as u8; 16]),
                        service: saldo_sync::ServiceId::parse("mensa")?,
                    },
                    amount: Amount::parse("12.50")?,
                }],
                method: PaymentMethod::Cash,
                operator: None,
            }),
        }
        .sign(&realm, key);
        full.0.insert(key.author(), FrontierEntry { seq: Seq(PER_AUTHOR), head: last.id });
        if (i as u32) < MISSING {
            behind.0.insert(key.author(), FrontierEntry { seq: Seq(PER_AUTHOR - 1), head: prev });
            extra.insert(key.author(), ChainOp { seq: last.op.seq, id: last.id, bytes: last.to_bytes() });
        } else {
            behind.0.insert(key.author(), FrontierEntry { seq: Seq(PER_AUTHOR), head: last.id });
        }
    }
    struct Held<'a>(&'a std::collections::BTreeMap<saldo_sync::AuthorId, ChainOp>);
    impl OpSource for Held<'_> {
        type Error = std::convert::Infallible;
        fn chain(
            &mut self,
            author: &saldo_sync::AuthorId,
            from: Seq,
            upto: Seq,
            _: usize,
            _: usize,
        ) -> Result<Vec<ChainOp>, Self::Error> {
            Ok(self.0.get(author).filter(|op| op.seq >= from && op.seq <= upto).cloned().into_iter().collect())
        }
        fn all_from(
            &mut self,
            author: &saldo_sync::AuthorId,
            from: Seq,
            max_ops: usize,
        ) -> Result<Vec<ChainOp>, Self::Error> {
            self.chain(author, from, Seq(u64::MAX), max_ops, usize::MAX)
        }
        fn holds(&mut self, id: &saldo_sync::OpId) -> Result<bool, Self::Error> {
            Ok(self.0.values().any(|op| op.id == *id))
        }
    }
    let missing_bytes: usize = extra.values().map(|op| op.bytes.len()).sum();
    // One session: `holder` has the missing operations; `initiator_holds`
    // says which side begins; `since` is the frontier the initiator sent
    // last time, which the responder remembers.
    let run = |initiator_holds: bool, since: Option<&Frontier>| -> Result<(usize, usize)> {
        let (first, second) = if initiator_holds { (&full, &behind) } else { (&behind, &full) };
        let mut a = Session::new(realm, SharePolicy::Everything, first.clone());
        let mut b = Session::new(realm, SharePolicy::Everything, second.clone());
        let hello = match since {
            Some(base) => {
                b.remember(base.clone());
                a.hello_since(base)
            }
            None => a.hello(),
        };
        let (mut to_b, mut to_a): (Vec<Message>, Vec<Message>) = (vec![hello], Vec::new());
        let (mut flights, mut bytes, mut received) = (0usize, 0usize, 0usize);
        // The one-way flight in which the last operation arrived.
        let mut complete_at = 0usize;
        let (mut source_a, mut source_b) = (Held(&extra), Held(&extra));
        while !(to_a.is_empty() && to_b.is_empty()) {
            flights += 1;
            for message in std::mem::take(&mut to_b) {
                let wire = message.encode();
                bytes += wire.len();
                if let Incoming::Ops(ops) = b.receive(Message::decode(&wire)?)? {
                    received += ops.len();
                    complete_at = flights;
                }
            }
            for message in std::mem::take(&mut to_a) {
                let wire = message.encode();
                bytes += wire.len();
                if let Incoming::Ops(ops) = a.receive(Message::decode(&wire)?)? {
                    received += ops.len();
                    complete_at = flights;
                }
            }
            while let Some(m) = a.next_message(&mut source_a)? {
                to_b.push(m);
            }
            while let Some(m) = b.next_message(&mut source_b)? {
                to_a.push(m);
            }
        }
        anyhow::ensure!(received == MISSING as usize, "received {received} operations");
        Ok((complete_at, bytes))
    };
    let target = 80 * AUTHORS as usize + 2 * missing_bytes;
    let again_target = missing_bytes * 5 / 4 + 2048;
    println!(
        "sync protocol, {AUTHORS} authors x {PER_AUTHOR} operations, {MISSING} missing ({missing_bytes} bytes of operations):"
    );
    for initiator_holds in [true, false] {
        let who = if initiator_holds { "the initiator" } else { "the responder" };
        let (flights, bytes) = run(initiator_holds, None)?;
        println!(
            "  first sync, {who} holds them: all there after {flights} one-way flights ({} round trips; target <= 2), \
             {bytes} bytes (target <= {target}: 80/author + 2 x missing)",
            flights.div_ceil(2)
        );
    }
    // Synced before: the initiator's frontier then was the one before the
    // 100 operations (if it holds them) or its frontier now (if it lacks them).
    for initiator_holds in [true, false] {
        let who = if initiator_holds { "the initiator" } else { "the responder" };
        let (flights, bytes) = run(initiator_holds, Some(&behind))?;
        println!(
            "  synced before, {who} holds them: all there after {flights} one-way flights ({} round trips), \
             {bytes} bytes (target <= {again_target}: 1.25 x missing + 2 KB)",
            flights.div_ceil(2)
        );
    }
    Ok(())
}

/// A hub and a cash point on 127.0.0.1 over iroh: each top-up at the cash
/// point, until the hub holds its decision, and until the cash point does.
fn sync_latency(options: &Options) -> Result<()> {
    use saldo_node::net::{NetConfig, NodeHandle, PeerAddr, RunStatus, run_service};
    use saldo_node::service::Service;
    let samples = if options.queries == 2_000 { 200 } else { options.queries };
    let dir = options.work.join("latency");
    let _ = std::fs::remove_dir_all(&dir);
    let (hub_dir, cp_dir) = (dir.join("hub"), dir.join("cash-point"));
    let (mut hub, wallets) = hub_with_wallets(&hub_dir, 200, 4)?;
    let key = DeviceKey::generate();
    let limits = OfflineLimits {
        per_operation: Amount::parse("500")?,
        unconfirmed_total: Balance::parse("1000000")?,
        offline_secs_max: 86_400,
    };
    hub.enrol(key.author(), Role::CashPoint, &label("Edicola"), limits)?;
    let cash_point = Node::join(&cp_dir, hub.realm(), key)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (to_hub, to_cash_point) = runtime.block_on(async {
        let (hub_service, cp_service) =
            (Service::start(hub, Some(hub_dir.clone()))?, Service::start(cash_point, Some(cp_dir.clone()))?);
        let (hub, cash_point) = (hub_service.writer().clone(), cp_service.writer().clone());
        let stop = std::sync::Arc::new(tokio::sync::Notify::new());
        let bind: std::net::SocketAddr = "127.0.0.1:0".parse()?;
        let (h, s, d) = (hub_service.clone(), stop.clone(), hub_dir.clone());
        let hub_task = tokio::spawn(async move {
            run_service(h, &d, NetConfig { bind, peers: vec![], lan: false }, async move { s.notified().await }).await
        });
        let hub_address: PeerAddr = loop {
            if let Some(address) = RunStatus::read(&hub_dir).and_then(|s| s.address()) {
                break address;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let (c, s, d) = (cp_service.clone(), stop.clone(), cp_dir.clone());
        let cp_task =
            tokio::spawn(async move {
                run_service(c, &d, NetConfig { bind, peers: vec![hub_address], lan: false }, async move {
                    s.notified().await
                })
                .await
            });
        while cash_point.call(|n| n.directory_counts().map_err(anyhow::Error::from)).await?.0 < 200 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut rng = fastrand::Rng::with_seed(3);
        let (mut to_hub, mut to_cash_point) = (Vec::new(), Vec::new());
        for _ in 0..samples {
            let WalletKey { consumer, service } = wallets[rng.usize(..wallets.len())].clone();
            let line = saldo_node::node::TopUpRequestLine { consumer, service, amount: Amount::parse("5")? };
            let started = Instant::now();
            let receipt = cash_point
                .call(move |n| n.record_top_up(&[line], PaymentMethod::Cash, None).map_err(anyhow::Error::from))
                .await?;
            cash_point.refresh_frontier().await?;
            let id = OpId::from_hex(&receipt.verification_code)?;
            let judged = |handle: NodeHandle| async move {
                loop {
                    let verdict = handle.call(move |n| n.store_mut().read().and_then(|tx| tx.verdict(&id))).await?;
                    if verdict.is_some() {
                        return anyhow::Ok(());
                    }
                    tokio::time::sleep(Duration::from_micros(500)).await;
                }
            };
            judged(hub.clone()).await?;
            to_hub.push(started.elapsed());
            judged(cash_point.clone()).await?;
            to_cash_point.push(started.elapsed());
            tokio::time::sleep(Duration::from_millis(rng.u64(0..20))).await;
        }
        stop.notify_waiters();
        let _ = tokio::time::timeout(Duration::from_secs(5), async { (hub_task.await, cp_task.await) }).await;
        anyhow::Ok((to_hub, to_cash_point))
    })?;
    for (what, mut times) in [("the hub's decision", to_hub), ("the decision back at the cash point", to_cash_point)] {
        times.sort();
        println!(
            "online top-up at a cash point to {what}, over iroh on 127.0.0.1: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} top-ups; target p99 <= 1000 ms)",
            ms(percentile(&times, 50)),
            ms(percentile(&times, 99)),
            ms(percentile(&times, 100)),
            times.len()
        );
    }
    Ok(())
}

/// Catch-up over iroh on 127.0.0.1 from nodes holding 1,000,000 operations
/// of 1,000 cash points: (1) a fresh cash point joining the hub, which gives
/// it what a device needs (the hub's log), and (2) a fresh cash point
/// dialing a neighbour that carries all 1,000,000 (store and forward), which
/// gives it everything, each verified before it is stored.
fn sync_catch_up(options: &Options) -> Result<()> {
    use saldo_node::net::{NetConfig, PeerAddr, RunStatus, run_service};
    use saldo_node::service::Service;
    const AUTHORS: usize = 1_000;
    let total = options.ops.unwrap_or(1_000_000);
    let per_author = total / AUTHORS;
    let dir = options.work.join("catch-up");
    let _ = std::fs::remove_dir_all(&dir);
    let started = Instant::now();
    let (mut hub, wallets) = hub_with_wallets(&dir.join("hub"), 2_000, 8)?;
    let realm = hub.realm();
    let limits = OfflineLimits {
        per_operation: Amount::parse("500")?,
        unconfirmed_total: Balance::parse("100000000")?,
        offline_secs_max: 86_400,
    };
    let keys: Vec<DeviceKey> = (0..AUTHORS as u32)
        .map(|i| DeviceKey::from_secret_bytes(&blake3::derive_key("bench catch-up", &i.to_le_bytes())))
        .collect();
    for (i, key) in keys.iter().enumerate() {
        hub.enrol(key.author(), Role::CashPoint, &label(&format!("Esercente {i}")), limits)?;
    }
    // Each cash point's log, signed on all cores, holding the hub's log as it
    // is now; then interleaved as they would arrive.
    let hub_seen = hub.store_mut().read()?.author(&realm.hub())?.map_or(Seq(0), |a| a.head_seq);
    let arrival = signed_arrival(&realm, &keys, hub_seen, &wallets, per_author);
    for batch in arrival.chunks(10_000) {
        for result in hub.ingest(batch)? {
            result?;
        }
    }
    // The neighbour: a cash point that holds (carries) all of it.
    let carrier_key = DeviceKey::generate();
    hub.enrol(carrier_key.author(), Role::CashPoint, &label("Vicino"), limits)?;
    let mut carrier = Node::join(&dir.join("carrier"), realm, carrier_key)?;
    let hub_log = hub.all_operations()?;
    let hub_author = realm.hub();
    let own_log: Vec<Vec<u8>> =
        hub_log.into_iter().filter(|b| saldo_sync::op::peek(b).is_some_and(|(a, _, _)| a == hub_author)).collect();
    carrier.ingest(&own_log)?;
    for batch in arrival.chunks(10_000) {
        carrier.ingest(batch)?;
    }
    drop(arrival);
    let fresh: Vec<(DeviceKey, &str)> = vec![(DeviceKey::generate(), "fresh-a"), (DeviceKey::generate(), "fresh-b")];
    for (key, name) in &fresh {
        hub.enrol(key.author(), Role::CashPoint, &label(name), limits)?;
    }
    // The carrier learns of the fresh devices' enrolments too.
    let hub_log: Vec<Vec<u8>> = hub
        .all_operations()?
        .into_iter()
        .filter(|b| saldo_sync::op::peek(b).is_some_and(|(a, _, _)| a == hub_author))
        .collect();
    carrier.ingest(&hub_log)?;
    let hub_ops = hub.frontier()?.get(&hub_author).map_or(0, |e| e.seq.0);
    let held = carrier.frontier()?.0.values().map(|e| e.seq.0).sum::<u64>();
    println!(
        "built in {:.0} s: a hub holding {} operations ({hub_ops} of them its own log), a neighbour carrying {held}",
        started.elapsed().as_secs_f64(),
        hub.store_mut().read()?.op_count()?,
    );

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let stop = std::sync::Arc::new(tokio::sync::Notify::new());
        let bind: std::net::SocketAddr = "127.0.0.1:0".parse()?;
        let mut serving = Vec::new();
        let mut addresses = Vec::new();
        for (node, name) in [(hub, "hub"), (carrier, "carrier")] {
            let service = Service::start(node, Some(dir.join(name)))?;
            let handle = service.writer().clone();
            let (h, s, d) = (service, stop.clone(), dir.join(name));
            serving.push(tokio::spawn(async move {
                run_service(h, &d, NetConfig { bind, peers: vec![], lan: false }, async move { s.notified().await }).await
            }));
            let address: PeerAddr = loop {
                if let Some(address) = RunStatus::read(&dir.join(name)).and_then(|s| s.address()) {
                    break address;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            addresses.push((handle, address));
        }
        let carrier_at = addresses[1].clone();
        let mut fresh_b = None;
        for ((key, name), (source, address)) in fresh.into_iter().zip(addresses) {
            let target = source.call(|n| n.frontier().map_err(anyhow::Error::from)).await?;
            let node = Node::join(&dir.join(name), realm, key)?;
            let service = Service::start(node, Some(dir.join(name)))?;
            let handle = service.writer().clone();
            let started = Instant::now();
            let own_stop = std::sync::Arc::new(tokio::sync::Notify::new());
            let (h, s, o, d) = (service, stop.clone(), own_stop.clone(), dir.join(name));
            let task = tokio::spawn(async move {
                let config = NetConfig { bind, peers: vec![address], lan: false };
                run_service(h, &d, config, async move { tokio::select! { () = s.notified() => {}, () = o.notified() => {} } })
                    .await
            });
            // Done when it holds everything the source shares with it.
            let expected: u64 = if name == "fresh-a" {
                target.get(&hub_author).map_or(0, |e| e.seq.0)
            } else {
                target.0.values().map(|e| e.seq.0).sum()
            };
            let got = loop {
                let frontier = handle.call(|n| n.frontier().map_err(anyhow::Error::from)).await?;
                let got: u64 = frontier.0.values().map(|e| e.seq.0).sum();
                if got >= expected {
                    break got;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            let seconds = started.elapsed().as_secs_f64();
            let what = if name == "fresh-a" {
                "a fresh cash point from the hub (the hub's log: what a device needs)"
            } else {
                "a fresh cash point from a neighbour carrying everything"
            };
            println!(
                "catch-up of {what}: {got} operations in {seconds:.1} s, {:.0} operations/s (target for 1,000,000: <= 20 s)",
                got as f64 / seconds
            );
            match name {
                "fresh-b" => fresh_b = Some((handle, own_stop, task)),
                _ => serving.push(task),
            }
        }

        // Reconnect: the fresh cash point and its neighbour now share every
        // operation; it goes offline, 100 cash points record one top-up each
        // at the neighbour, and it comes back. Bytes counted by QUIC on the
        // connection once it is up (as the protocol benchmark counts them).
        let (carrier, carrier_address) = carrier_at;
        let (mut handle, mut own_stop, mut task) = fresh_b.context("the second fresh cash point")?;
        let mut next = 0usize;
        for remembered in [false, true] {
            own_stop.notify_one();
            task.await??;
            drop(handle);
            let heads = carrier.call(|n| n.frontier().map_err(anyhow::Error::from)).await?;
            let hub_seen = heads.get(&hub_author).map_or(Seq(0), |e| e.seq);
            let missing: Vec<Vec<u8>> = keys[next..next + 100]
                .iter()
                .map(|key| {
                    let head = heads.get(&key.author()).expect("every cash point recorded");
                    Operation {
                        author: key.author(),
                        seq: head.seq.next(),
                        prev: head.head,
                        hlc: Hlc::from_parts(1_790_000_000_000 + head.seq.0 + 1, 0),
                        hub_seen,
                        body: Body::TopUp(TopUp {
                            receipt: ReceiptNo(head.seq.0 + 1),
                            lines: vec![TopUpLine { wallet: wallets[next % wallets.len()].clone(), amount: Amount::parse("12.50").expect("amount") }],
                            method: PaymentMethod::Cash,
                            operator: None,
                        }),
                    }
                    .sign(&realm, key)
                    .to_bytes()
                })
                .collect();
            next += 100;
            let missing_bytes: usize = missing.iter().map(Vec::len).sum();
            carrier.call(move |n| n.ingest(&missing).map_err(anyhow::Error::from)).await?;
            let mut node = Node::open(&dir.join("fresh-b"))?;
            if !remembered {
                node.forget_peer(&carrier_address.id)?;
            }
            let before: u64 = node.frontier()?.0.values().map(|e| e.seq.0).sum();
            let authors = node.frontier()?.0.len();
            let service = Service::start(node, Some(dir.join("fresh-b")))?;
            handle = service.writer().clone();
            own_stop = std::sync::Arc::new(tokio::sync::Notify::new());
            let started = Instant::now();
            let (h, s, o, d) = (service, stop.clone(), own_stop.clone(), dir.join("fresh-b"));
            task = tokio::spawn(async move {
                let config = NetConfig { bind, peers: vec![carrier_address], lan: false };
                run_service(h, &d, config, async move { tokio::select! { () = s.notified() => {}, () = o.notified() => {} } })
                    .await
            });
            loop {
                let frontier = handle.call(|n| n.frontier().map_err(anyhow::Error::from)).await?;
                if frontier.0.values().map(|e| e.seq.0).sum::<u64>() >= before + 100 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let seconds = started.elapsed().as_secs_f64();
            // The byte counts are refreshed every 200 ms.
            tokio::time::sleep(Duration::from_millis(600)).await;
            let status = RunStatus::read(&dir.join("fresh-b")).context("the cash point's status")?;
            let peer = status.peers.get(&carrier_address.id.to_hex()).context("the session with the neighbour")?;
            let wire = peer.wire_sent_bytes + peer.wire_received_bytes;
            let (what, target) = if remembered {
                ("synced before, remembering the frontiers", missing_bytes * 5 / 4 + 2_048)
            } else {
                ("first sync, whole frontiers", 80 * authors + 2 * missing_bytes)
            };
            println!(
                "reconnect on the wire, {what}: {authors} authors, 100 operations missing ({missing_bytes} bytes): {wire} bytes once the connection was up ({} out, {} in; the handshake {} more), {seconds:.2} s (target <= {target})",
                peer.wire_sent_bytes, peer.wire_received_bytes, peer.handshake_bytes
            );
        }
        serving.push(task);
        stop.notify_waiters();
        anyhow::Ok(())
    })?;
    println!("(e) peak resident memory: {} MiB", peak_rss_kib() / 1024);
    Ok(())
}

/// `topup-under-import`: top-ups recorded at a hub, one every 10 ms, each
/// timed from the call to its durable commit: first with nothing else
/// running, then while another process imports a bundle of `--ops`
/// (100,000) top-ups of a cash point on the same data directory, in short
/// transactions (as `saldo bundle import` does) and, for comparison, in
/// transactions of `OPS_PER_BATCH_MAX` operations.
fn topup_under_import(options: &Options) -> Result<()> {
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
    let mut prev = OpId::NONE;
    let ops: Vec<Vec<u8>> = (1..=count as u64)
        .map(|seq| {
            let op = Operation {
                author: cash_point.author(),
                seq: Seq(seq),
                prev,
                hlc: Hlc::from_parts(now_ms - 3_600_000 + seq, 0),
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
            .sign(&realm, &cash_point);
            prev = op.id;
            op.to_bytes()
        })
        .collect();
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
const IMPORT_CHILD: &str = "import-bundle-child";

fn import_child(mut args: impl Iterator<Item = String>) -> Result<()> {
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
