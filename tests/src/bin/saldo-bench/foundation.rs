//! `foundation`: raw verification against the hub's verified and durable
//! ingest, round by round, and search over the 1,000,000-consumer realm.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use saldo_node::node::Node;
use saldo_node::{generate, import};
use saldo_sync::{
    Amount, Balance, Body, Hlc, OfflineLimits, OpId, Operation, PaymentMethod, ReceiptNo, Seq, TopUp, TopUpLine,
};

use super::{
    Options, enrolled_cash_points, expand_all_receipts, hub_with_wallets, label, ms, peak_rss_kib, percentile,
    process_cpu_split, process_written,
};

pub(super) fn foundation(options: &Options) -> Result<()> {
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
        // Every operation is signed before the first round, seeing the hub's
        // log as it was then: all of them stay unconfirmed at their cash
        // point, about 1,000,000 € each over 7 rounds. A limit above that keeps
        // every round's operations accepted, however many rounds.
        unconfirmed_total: Balance::parse("1000000000")?,
        offline_secs_max: 86_400,
    };
    let cash_points = enrolled_cash_points(&mut hub, 20, "bench cash point", limits)?;
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

        let (started, cpu, written) = (Instant::now(), process_cpu_split(), process_written());
        let results = hub.ingest(stream_ops)?;
        let (elapsed, (user, system)) = (started.elapsed(), process_cpu_split());
        let (user, system) = (user - cpu.0, system - cpu.1);
        let cpu = user + system;
        let written_per_op = (process_written() - written) / stream_ops.len() as u64;
        anyhow::ensure!(results.iter().all(Result::is_ok), "a benchmark operation was refused");
        let stream = stream_ops.len() as f64 / elapsed.as_secs_f64();
        let stream_cpu_us = cpu.as_secs_f64() * 1e6 / stream_ops.len() as f64;
        let stream_system_us = system.as_secs_f64() * 1e6 / stream_ops.len() as f64;
        let verify_after = signatures.batched_rate(cores);
        let verify = (verify_before + verify_after) / 2.0;

        let started = Instant::now();
        for batch in call_ops.chunks(options.batch) {
            anyhow::ensure!(hub.ingest(batch)?.iter().all(Result::is_ok), "a benchmark operation was refused");
        }
        let calls = call_ops.len() as f64 / started.elapsed().as_secs_f64();

        // What the service's writer does between jobs: the receipts due
        // become the outbox's messages; then the write-ahead log goes into
        // the database.
        let started = Instant::now();
        let expanded = expand_all_receipts(&mut hub)?;
        let receipts = expanded as f64 / started.elapsed().as_secs_f64();
        hub.checkpoint_when_idle()?;
        anyhow::ensure!(expanded == round_ops.len(), "{expanded} receipts queued for {} top-ups", round_ops.len());
        println!("    round {}: receipts turned into messages after the commits: {receipts:.0}/s", i + 1);
        println!(
            "    round {}: (a) {verify:.0}/s ({verify_before:.0} before, {verify_after:.0} after), (b) {stream:.0} operations/s ({stream_cpu_us:.1} µs of CPU, {stream_system_us:.1} of them in the kernel, {written_per_op} bytes written each), ratio {:.2}; one call per batch {calls:.0}/s",
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
pub(super) fn search_latency(options: &Options) -> Result<()> {
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

pub(super) struct Samples {
    pub(super) pans: Vec<String>,
    pub(super) codes: Vec<String>,
    pub(super) prefixes: Vec<String>,
}

/// Queries drawn from the realm's own file: PANs (as printed, when given),
/// consumers' codici fiscali, and surname prefixes of 3 to 6 letters.
pub(super) fn sample_queries(csv_path: &Path, n: usize) -> Result<Samples> {
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
