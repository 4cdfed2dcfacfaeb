//! `saldo-bench outbox`: the hub's outbox against a local SMTP server
//! (aiosmtpd, installed by `scripts/smtp-venv`), in one run:
//!
//! 1. top-ups per second at the hub (50 callers on the service layer), the
//!    sender stopped: each queues one receipt e-mail (`notify = email`);
//! 2. the sender started on those receipts (10,000 by default) while the
//!    same number of top-ups is recorded again: top-ups per second with the
//!    drain running (target: no more than 10% slower than 1 and 3), the
//!    time to drain the first receipts and messages handed to the server per
//!    second;
//! 3. top-ups per second with the sender stopped again, once drained.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use saldo_node::delivery::config::{EmailSettings, OutboxSettings, Security};
use saldo_node::delivery::{Delivery, DeliverySettings};
use saldo_node::node::Node;
use saldo_node::service::Service;
use saldo_node::store::Store;
use saldo_node::store::outbox::DeliveryState;
use saldo_sync::{Amount, ConsumerId, WalletKey};

use super::{Options, label};

const CLIENTS: usize = 50;
const CONSUMERS: u64 = 5_000;

/// The SMTP server, stopped when dropped.
struct Smtp(std::process::Child);

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python() -> Result<PathBuf> {
    if let Some(python) = std::env::var_os("SALDO_TEST_PYTHON") {
        return Ok(PathBuf::from(python));
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/smtp-venv/bin/python");
    ensure!(venv.exists(), "{} is missing: run scripts/smtp-venv (it installs aiosmtpd)", venv.display());
    Ok(venv)
}

fn start_smtp() -> Result<(Smtp, u16)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new(python()?)
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Sink"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting aiosmtpd")?;
    let smtp = Smtp(child);
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        ensure!(started.elapsed() < Duration::from_secs(20), "aiosmtpd did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((smtp, port))
}

/// A hub whose families all want their receipts by e-mail, and its wallets.
fn hub(dir: &Path) -> Result<(Node, Vec<WalletKey>)> {
    let mut hub = Node::init_realm(dir, &label("Comune di Benchmark"))?;
    let mut csv = Vec::new();
    saldo_node::generate::write_csv(&mut csv, CONSUMERS, 13)?;
    let text = String::from_utf8(csv)?;
    let mut lines = text.lines();
    let mut with_notify = format!("{},notify\n", lines.next().context("a header")?);
    for line in lines {
        with_notify.push_str(line);
        with_notify.push_str(",email\n");
    }
    let report = saldo_node::import::import_csv(&mut hub, with_notify.as_bytes(), &|_, _| {})?;
    ensure!(report.rejected.is_empty(), "the benchmark's families did not import: {:?}", report.rejected.first());
    let tx = hub.store_mut().read()?;
    let mut wallets = Vec::new();
    for line in text.lines().skip(1) {
        let code = saldo_sync::CodiceFiscale::parse(line.split(',').nth(5).unwrap_or_default())?;
        let consumer = ConsumerId::derive(&code);
        if let Some(service) = tx.consumer_services(&consumer)?.into_iter().next() {
            wallets.push(WalletKey { consumer, service });
        }
    }
    drop(tx);
    Ok((hub, wallets))
}

/// Records `count` top-ups from `CLIENTS` callers; top-ups per second.
async fn top_ups(service: &Service, wallets: &Arc<Vec<WalletKey>>, count: usize) -> Result<f64> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (next, service, wallets) = (next.clone(), service.clone(), wallets.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return anyhow::Ok(());
                }
                let wallet = &wallets[i.wrapping_mul(7919) % wallets.len()];
                let request = saldo_api::payments::TopUpRequest {
                    lines: vec![saldo_api::payments::TopUpLineRequest {
                        consumer: wallet.consumer,
                        service: wallet.service.clone(),
                        amount: Amount::parse("5")?,
                    }],
                    method: saldo_api::payments::PaymentMethodApi::Cash,
                };
                service.top_up_by(Some(label("Bench")), request).await?;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

fn counts(store: &mut Store) -> Result<(u64, u64)> {
    let counts = store.read()?.outbox_counts()?;
    let of = |state: DeliveryState| counts.iter().find(|(s, _)| *s == state).map_or(0, |(_, n)| *n);
    Ok((of(DeliveryState::Sent), of(DeliveryState::Queued) + of(DeliveryState::Failing) + of(DeliveryState::GivenUp)))
}

pub fn outbox(options: &Options) -> Result<()> {
    let count = options.ops.unwrap_or(10_000);
    let dir = options.work.join("outbox");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&options.work)?;
    let (smtp, port) = start_smtp()?;
    let (node, wallets) = hub(&dir)?;
    let wallets = Arc::new(wallets);
    let mut watch = Store::open(&dir.join(saldo_node::node::DATABASE_FILE)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let settings = DeliverySettings {
        email: Some(EmailSettings {
            host: Some("127.0.0.1".into()),
            port: Some(port),
            security: Security::Plain,
            from: Some("Comune di Benchmark <servizi@comune.example>".into()),
            ..EmailSettings::default()
        }),
        sms: None,
        outbox: Some(OutboxSettings { poll_ms: Some(100), ..OutboxSettings::default() }),
    };
    let delivery = Delivery::from_settings(&settings, &|_| None)?;
    println!(
        "saldo-bench outbox: {count} top-ups per phase at a hub of {CONSUMERS} consumers, 50 callers; \
         receipts by e-mail to aiosmtpd on 127.0.0.1:{port} ({} messages at once)",
        delivery.policy.concurrency
    );
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let service = Service::start(node, Some(dir.clone()))?;
        let without = top_ups(&service, &wallets, count).await?;
        let (_, waiting) = counts(&mut watch)?;
        ensure!(waiting as usize == count, "{waiting} receipts queued for {count} top-ups");
        println!("    1. top-ups, sender stopped:            {without:>8.0}/s   ({count} receipts queued)");

        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let started = Instant::now();
        let sender = tokio::spawn(saldo_node::delivery::run(service.clone(), delivery, async move {
            let _ = stopped.await;
        }));
        let with = top_ups(&service, &wallets, count).await?;
        println!(
            "    2. top-ups, sender draining:           {with:>8.0}/s   ({:+.1}% against 1)",
            (with / without - 1.0) * 100.0
        );
        let mut first_drained = None;
        loop {
            let (sent, waiting) = counts(&mut watch)?;
            if first_drained.is_none() && sent as usize >= count {
                first_drained = Some(started.elapsed());
            }
            if waiting == 0 {
                break;
            }
            ensure!(started.elapsed() < Duration::from_secs(3_600), "the outbox did not drain in an hour");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let all = started.elapsed();
        let first = first_drained.unwrap_or(all);
        println!(
            "       the first {count} receipts drained in {:.1} s; all {} in {:.1} s: {:.0} messages/s to the SMTP server",
            first.as_secs_f64(),
            2 * count,
            all.as_secs_f64(),
            (2 * count) as f64 / all.as_secs_f64()
        );
        let _ = stop.send(());
        sender.await?;
        let again = top_ups(&service, &wallets, count).await?;
        println!(
            "    3. top-ups, sender stopped again:      {again:>8.0}/s   (2 is {:+.1}% against the mean of 1 and 3; target >= -10%)",
            (with / ((without + again) / 2.0) - 1.0) * 100.0
        );
        anyhow::Ok(())
    })?;
    drop(smtp);
    Ok(())
}
