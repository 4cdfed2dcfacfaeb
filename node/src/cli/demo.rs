//! `saldo demo`: a realm with a hub and cash points on this machine, to try Saldo.

use super::OutputError;
use super::args::DemoArgs;
use super::open;
use super::operator;
use super::render::print_json;
use crate::node::Node;
use crate::{generate, import};
use anyhow::{Context as _, Result, bail};
use saldo_sync::{Amount, Label, Pan, PaymentMethod, ServiceId};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A running demo cash point: its directory, name and address.
type DemoCashPoint<'a> = (PathBuf, &'a str, String);

/// What the hints say about the running demo: its cash points, the hub's
/// address and the first cash point's process id.
type DemoNetwork<'a> = (&'a [DemoCashPoint<'a>], &'a str, u32);

/// The demo's cash points: (directory, name).
const DEMO_CASH_POINTS: [(&str, &str); 2] = [("edicola", "Edicola della Piazza"), ("farmacia", "Farmacia Comunale")];

pub(super) fn demo(args: &DemoArgs) -> Result<()> {
    let dir = &args.data;
    let hub_dir = dir.join("hub");
    let fresh = !hub_dir.join(crate::node::DATABASE_FILE).exists();
    if fresh {
        let mut node = Node::init_realm(&hub_dir, &Label::parse("Comune di Esempio").expect("a valid realm name"))?;
        let mut csv = Vec::new();
        generate::write_csv(&mut csv, args.consumers, 2026)?;
        let report = import::import_csv(&mut node, csv.as_slice(), &|_, _| {})?;
        if !report.rejected.is_empty() {
            bail!("the demo data did not import cleanly: {}", report.rejected[0]);
        }
        // A few top-ups so balances and movements show something.
        let hits = node.search("ro", 5)?;
        for (i, consumer) in hits.iter().enumerate() {
            let pan = Pan::parse(&consumer.pan)?;
            let amount = Amount::from_minor(1_000 + 250 * i as i64)?;
            let line = node.top_up_line(&pan, None, amount).or_else(|_| {
                let service = ServiceId::parse(&consumer.services[0])?;
                node.top_up_line(&pan, Some(&service), amount).map_err(anyhow::Error::from)
            })?;
            node.record_top_up(&[line], PaymentMethod::Cash, Some(&Label::parse("demo").expect("a label")))?;
        }
    }
    let mut node = open(&hub_dir)?;
    let hub_logins = operator::demo_hub_logins(&mut node)?;
    let (consumers, families) = node.directory_counts()?;
    let sample = node.search("ro", 3)?;
    let realm_name = node.realm_name().to_string();
    let realm = node.realm();
    drop(node);
    let exe = std::env::args().next().unwrap_or_else(|| "saldo".into());
    // Run through cargo (the README's way): say how to run it the same way.
    let exe = match std::env::var_os("CARGO") {
        Some(_) if exe.contains("/release/") => "cargo run -q --release --bin saldo --".to_string(),
        Some(_) => "cargo run -q --bin saldo --".to_string(),
        None => exe,
    };
    if args.json.json {
        print_json(&serde_json::json!({
            "data": dir, "created": fresh, "realm": realm.to_hex(), "consumers": consumers,
            "families": families, "sample": sample, "logins": hub_logins,
        }))?;
    } else {
        outln!(
            "Saldo demo realm \"{realm_name}\" in {} ({})",
            dir.display(),
            if fresh { "just created" } else { "already there" }
        );
        outln!("  realm id (hub key): {}", realm.to_hex());
        outln!(
            "  {consumers} consumers in {families} families; hub database {}",
            hub_dir.join(crate::node::DATABASE_FILE).display()
        );
    }
    if args.no_network {
        if !args.json.json {
            operator::print_demo_logins(&hub_logins)?;
            print_demo_hints(&exe, &hub_dir, &sample, None)?;
        }
        return Ok(());
    }
    run_demo_network(dir, &hub_dir, &exe, &sample, hub_logins, args.json.json)
}

/// Runs the demo's hub and cash points as child processes on 127.0.0.1
/// until Ctrl-C or SIGTERM, then stops them.
fn run_demo_network(
    dir: &Path,
    hub_dir: &Path,
    exe: &str,
    sample: &[crate::node::ConsumerView],
    mut logins: Vec<operator::DemoLogin>,
    quiet: bool,
) -> Result<()> {
    let me = std::env::current_exe().context("cannot find the saldo executable")?;
    let mut children = DemoChildren(Vec::new());
    let spawn = |args: &[&str], log: &Path| -> Result<std::process::Child> {
        let log = File::create(log).with_context(|| format!("cannot write {}", log.display()))?;
        Ok(std::process::Command::new(&me)
            .args(args)
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(std::process::Stdio::null())
            .spawn()?)
    };
    let hub_data = hub_dir.display().to_string();
    children.0.push(spawn(
        &["hub", "--data", &hub_data, "--p2p", "127.0.0.1:0", "--http", "127.0.0.1:0"],
        &dir.join("hub.log"),
    )?);
    let (hub_address, hub_http) = wait_for_address(hub_dir, &mut children)?;
    let mut cash_points = Vec::new();
    let mut https = Vec::new();
    for (name, label) in DEMO_CASH_POINTS {
        let cp_dir = dir.join(name);
        let cp_data = cp_dir.display().to_string();
        let mut args = vec![
            "cashpoint".to_string(),
            "--data".into(),
            cp_data,
            "--p2p".into(),
            "127.0.0.1:0".into(),
            "--http".into(),
            "127.0.0.1:0".into(),
        ];
        if cp_dir.join(crate::node::DATABASE_FILE).exists() {
            args.extend(["--hub".into(), hub_address.clone()]);
        } else {
            let mut hub = open(hub_dir)?;
            let secret = hub.create_enrolment_token(
                &Label::parse(label).expect("a valid name"),
                saldo_sync::OfflineLimits::default_for_cash_point(),
            )?;
            let token = crate::net::EnrolmentToken { realm: hub.realm(), hub: vec![hub_address.parse()?], secret };
            args.extend(["--join".into(), token.encode()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        children.0.push(spawn(&args, &dir.join(format!("{name}.log")))?);
        let (address, http) = wait_for_address(&cp_dir, &mut children)?;
        // Enrolled by now (it joins before it listens): its cashier's
        // account reaches it with the hub's log.
        logins.push(operator::demo_cashier(&mut open(hub_dir)?, name, label)?);
        cash_points.push((cp_dir, label, address));
        https.push(http);
    }
    if quiet {
        print_json(&serde_json::json!({
            "hub": hub_address,
            "hub_http": hub_http,
            "cash_points": cash_points.iter().zip(&https).map(|((d, l, a), h)| serde_json::json!({"name": l, "data": d, "address": a, "http": h})).collect::<Vec<_>>(),
            "logins": logins,
        }))?;
    } else {
        outln!();
        outln!("Running on 127.0.0.1 (logs in {}/*.log); Ctrl-C stops everything:", dir.display());
        outln!("  hub                   {hub_address}");
        outln!("                        web UI {hub_http}/  (log in as admin / saldo-demo-admin)");
        outln!("                        API {hub_http}/api/v1 (OpenAPI: {hub_http}/api/v1/openapi.json)");
        for ((_, label, address), http) in cash_points.iter().zip(&https) {
            outln!("  {label:<21} {address}");
            outln!("                        web UI {http}/");
            outln!("                        API {http}/api/v1");
        }
        operator::print_demo_logins(&logins)?;
        print_demo_hints(exe, hub_dir, sample, Some((&cash_points, &hub_address, children.0[1].id())))?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        anyhow::Ok(())
    })?;
    outln!("stopping the demo nodes");
    Ok(())
}

/// The demo's child processes, stopped when the demo ends however it ends.
struct DemoChildren(Vec<std::process::Child>);

impl Drop for DemoChildren {
    fn drop(&mut self) {
        for child in &mut self.0 {
            // SIGTERM lets a node remove its status file; then make sure.
            let _ = std::process::Command::new("kill").arg(child.id().to_string()).status();
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits until the node in `dir` runs and says where it listens: its sync
/// address and its HTTP API's.
fn wait_for_address(dir: &Path, children: &mut DemoChildren) -> Result<(String, String)> {
    let started = std::time::Instant::now();
    loop {
        // The status of the child just started, not one a previous run left.
        let child = children.0.last().map(std::process::Child::id);
        if let Some(found) = crate::net::RunStatus::read(dir)
            .filter(|s| Some(s.pid) == child)
            .and_then(|s| Some((s.addresses.into_iter().next()?, s.http?)))
        {
            return Ok(found);
        }
        if let Some(child) = children.0.last_mut()
            && let Some(status) = child.try_wait()?
        {
            bail!("a demo node stopped ({status}): see the logs in {}", dir.parent().unwrap_or(dir).display());
        }
        if started.elapsed() > std::time::Duration::from_secs(30) {
            bail!("a demo node in {} did not start within 30 s", dir.display());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn print_demo_hints(
    exe: &str,
    hub_dir: &Path,
    sample: &[crate::node::ConsumerView],
    network: Option<DemoNetwork<'_>>,
) -> Result<()> {
    let Some(first) = sample.first() else { return Ok(()) };
    let service = first.services.first().cloned().unwrap_or_default();
    let hub = hub_dir.display();
    outln!();
    outln!("Try:");
    outln!("  {exe} search --data {hub} {}", first.surname.to_lowercase());
    outln!("  {exe} balance --data {hub} --pan {}", first.pan);
    outln!("  {exe} topup --data {hub} --pan {} --amount 12.345 --method cash   # refused: three decimals", first.pan);
    outln!("  {exe} search --data {hub} {}", first.fiscal_code);
    outln!("  {exe} log verify --data {hub}");
    match network {
        None => {
            outln!("  {exe} topup --data {hub} --pan {} --amount 12.50 --method cash --service {service}", first.pan);
        }
        Some((cash_points, hub_address, first_pid)) => {
            let (edicola, _, _) = &cash_points[0];
            let (_, _, farmacia_address) = &cash_points[1];
            let edicola = edicola.display();
            outln!();
            outln!("A top-up at a cash point reaches the hub within a second:");
            outln!(
                "  {exe} topup --data {edicola} --pan {} --amount 12.50 --method cash --service {service}",
                first.pan
            );
            outln!("  {exe} balance --data {hub} --pan {}", first.pan);
            outln!();
            outln!("Take the edicola offline, record there, and watch it converge:");
            outln!("  kill {first_pid}                                   # the edicola's node stops: it is offline");
            outln!(
                "  {exe} topup --data {edicola} --pan {} --amount 5 --method cash --service {service}   # provisional",
                first.pan
            );
            outln!("  {exe} status --data {edicola}                      # 1 unconfirmed operation");
            outln!("  {exe} cashpoint --data {edicola} --p2p 127.0.0.1:0 --hub {hub_address}");
            outln!("  {exe} balance --data {edicola} --pan {}             # confirmed again", first.pan);
            outln!();
            outln!("Or let the farmacia carry its operations to the hub (store and forward):");
            outln!(
                "  {exe} cashpoint --data {edicola} --p2p 127.0.0.1:0 --peer {farmacia_address} --hub {}@127.0.0.1:9",
                &hub_address[..64]
            );
        }
    }
    Ok(())
}
