//! Restored and replaced cash points: a cash point restored from an older
//! copy strands no money (its second branch reaching the hub directly,
//! through a neighbour or in a bundle), or fetches its log back before it
//! records; a backup taken while it runs; a cash point enrolled in place
//! of another continues its receipt numbers.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use saldo_node::net::PeerAddr;
use saldo_sync::{
    Amount, Body, ConsumerId, DeviceKey, Hlc, OpId, Operation, PaymentMethod, RealmId, ReceiptNo, Seq, ServiceId,
    TopUp, TopUpLine, WalletKey,
};
use serde_json::Value;

use super::common::{ok, saldo};

use super::{Relay, address, confirmed, enroll, hub, json, some_consumer, spawn, status, wait_until};

/// How a restored cash point's log reaches the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carrier {
    /// It syncs with the hub itself.
    Direct,
    /// It cannot reach the hub; a neighbour it syncs with can.
    Neighbour,
    /// A bundle file, made for the hub's frontier file.
    Bundle,
}

/// `saldo topup` of 5.00 on `pan` at the cash point in `dir`, as it ran.
fn try_top_up(dir: &Path, pan: &str) -> std::process::Output {
    saldo(&["topup", "--data", dir.to_str().unwrap(), "--pan", pan, "--amount", "5.00", "--method", "cash", "--json"])
}

fn top_up_ok(dir: &Path, pan: &str) -> Value {
    let out = try_top_up(dir, pan);
    assert!(out.status.success(), "topup at {}: {}", dir.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Waits until everything the cash point in `dir` recorded has the hub's verdict (so the hub holds it).
fn wait_confirmed(dir: &Path) {
    wait_until("the hub's verdicts at the cash point", || {
        Some(()).filter(|()| status(dir)["unconfirmed_operations"].as_u64() == Some(0))
    });
}

/// A copy of a stopped node's data directory, as a disk image or a file copy makes it.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "status.json" {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// Consumers with one service, as a node's directory shows them: (PAN, service).
fn consumers(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for prefix in ["ro", "ma", "ri", "co", "ga", "fe", "ba", "be", "gi", "de", "sa", "pa", "mo", "ca", "lo"] {
        // Nothing while the node is being created.
        let searched = saldo(&["search", "--data", dir.to_str().unwrap(), prefix, "--json"]);
        let Ok(found) = serde_json::from_slice::<Value>(&searched.stdout) else { return Vec::new() };
        for c in found["consumers"].as_array().into_iter().flatten() {
            if c["wallets"].as_array().is_some_and(|w| w.len() == 1) {
                out.push((
                    c["pan"].as_str().unwrap().to_string(),
                    c["wallets"][0]["service"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Records a top-up of `amount` at the cash point `dir` (running or not): its
/// receipt. While a node that just started checks its log with the hub, the
/// counter is asked to try again in a moment, as an operator would.
fn record(dir: &Path, (pan, service): &(String, String), amount: &str) -> Value {
    let args = [
        "topup",
        "--data",
        dir.to_str().unwrap(),
        "--pan",
        pan,
        "--amount",
        amount,
        "--method",
        "cash",
        "--service",
        service,
        "--json",
    ];
    wait_until("a top-up recorded", || {
        let out = saldo(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() || stderr.contains("try again"), "saldo {args:?}: {stderr}");
        out.status.success().then(|| serde_json::from_slice(&out.stdout).unwrap())
    })
}

fn unconfirmed(dir: &Path) -> u64 {
    status(dir)["unconfirmed_operations"].as_u64().unwrap_or(u64::MAX)
}

/// A cash point is restored from a copy of itself taken after `before`
/// top-ups reached the hub; `lost_later` more had reached the hub since. It
/// records `on_branch` top-ups offline (a second branch of its log, its
/// receipt numbers used again), then `carrier` brings its log to the hub.
/// Every top-up of both branches is at the hub, the ones of the branch it
/// had second in review with their receipt numbers, each accepted exactly
/// once: nothing stranded, nothing counted twice.
fn restored_cash_point_strands_nothing(
    tmp: &Path,
    hub_dir: &Path,
    name: &str,
    consumer: &(String, String),
    (lost_later, on_branch): (usize, usize),
    carrier: Carrier,
    neighbour: Option<&str>,
) {
    let dir = tmp.join(name);
    let data = dir.to_str().unwrap();
    let log = |step: &str| tmp.join(format!("{name}-{step}.log"));
    let joined =
        spawn(&["cashpoint", "--data", data, "--p2p", "127.0.0.1:0", "--join", &enroll(hub_dir, name)], &log("join"));
    wait_until("the cash point's directory", || Some(()).filter(|()| !consumers(&dir).is_empty()));
    let hub_balance = |dir: &Path| confirmed(dir, &consumer.0).0;
    let cents = |text: &str| saldo_sync::Balance::parse(text).unwrap().minor();
    let start = cents(&hub_balance(hub_dir));
    let mut expected = start;
    for amount in ["10.00", "11.00"] {
        record(&dir, consumer, amount);
        expected += cents(amount);
    }
    wait_until("the first top-ups confirmed", || Some(()).filter(|()| unconfirmed(&dir) == 0));
    drop(joined);
    let copy = tmp.join(format!("{name}-copy"));
    copy_dir(&dir, &copy);

    // After the copy: more top-ups reach the hub (real cash, printed receipts).
    let online = spawn(&["cashpoint", "--data", data, "--p2p", "127.0.0.1:0"], &log("online"));
    for i in 0..lost_later {
        let amount = format!("{}.00", 20 + i);
        record(&dir, consumer, &amount);
        expected += cents(&amount);
    }
    wait_until("the later top-ups confirmed", || Some(()).filter(|()| unconfirmed(&dir) == 0));
    drop(online);
    assert_eq!(cents(&hub_balance(hub_dir)), expected, "{name}: the hub counts what reached it");

    // The disk is restored from the copy; offline, the counter goes on.
    std::fs::remove_dir_all(&dir).unwrap();
    copy_dir(&copy, &dir);
    let mut branch = Vec::new();
    for i in 0..on_branch {
        let amount = format!("{}.50", 30 + i);
        let receipt = record(&dir, consumer, &amount);
        branch.push((
            receipt["operation"].as_str().unwrap().to_string(),
            receipt["receipt_number"].as_u64().unwrap(),
            amount,
        ));
    }
    let hub_id = status(hub_dir)["device"].as_str().unwrap().to_string();

    let _running = match carrier {
        Carrier::Direct => Some(spawn(&["cashpoint", "--data", data, "--p2p", "127.0.0.1:0"], &log("restored"))),
        Carrier::Neighbour => {
            // The hub is out of reach (nothing listens there); the neighbour is not.
            let nowhere = format!("{hub_id}@127.0.0.1:9");
            Some(spawn(
                &["cashpoint", "--data", data, "--p2p", "127.0.0.1:0", "--hub", &nowhere, "--peer", neighbour.unwrap()],
                &log("restored"),
            ))
        }
        Carrier::Bundle => {
            let frontier = tmp.join(format!("{name}-hub.frontier"));
            let bundle = tmp.join(format!("{name}.bundle"));
            ok(&["bundle", "frontier", "--data", hub_dir.to_str().unwrap(), "--out", frontier.to_str().unwrap()]);
            ok(&[
                "bundle",
                "export",
                "--data",
                data,
                "--for",
                frontier.to_str().unwrap(),
                "--out",
                bundle.to_str().unwrap(),
            ]);
            ok(&["bundle", "import", "--data", hub_dir.to_str().unwrap(), bundle.to_str().unwrap()]);
            None
        }
    };

    // Every top-up of the second branch awaits review at the hub, saying why and which receipt.
    let flagged = wait_until("the second branch in review at the hub", || {
        let list = json(&["review", "list", "--data", hub_dir.to_str().unwrap(), "--json"]);
        let found: Vec<Value> = list["operations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| branch.iter().any(|(id, _, _)| f["operation"] == id.as_str()))
            .cloned()
            .collect();
        Some(found).filter(|f| f.len() == on_branch)
    });
    for (id, receipt, _) in &branch {
        let f = flagged.iter().find(|f| f["operation"] == id.as_str()).unwrap();
        assert_eq!(f["reason"], "frozen_author", "{name}: {f}");
        let detail = f["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("receipt {receipt},")) && detail.contains("second branch"),
            "{name}: {detail}"
        );
    }
    let verify = json(&["log", "verify", "--data", hub_dir.to_str().unwrap(), "--json"]);
    assert!(verify["equivocations"].as_u64().unwrap() >= on_branch as u64, "{name}: {verify}");
    assert_eq!(cents(&hub_balance(hub_dir)), expected, "{name}: nothing of the second branch counts before review");
    if carrier == Carrier::Direct {
        // The restored device learns of the fork too: it holds the hub's branch as evidence.
        wait_until("the device to hold the other branch", || {
            let v = json(&["log", "verify", "--data", data, "--json"]);
            Some(()).filter(|()| v["equivocations"].as_u64().unwrap() >= lost_later.min(on_branch) as u64)
        });
    }

    // The hub's operator accepts each once: it counts once, and a second accept is refused.
    for (id, _, amount) in &branch {
        let accept = [
            "review",
            "accept",
            "--data",
            hub_dir.to_str().unwrap(),
            id,
            "--operator",
            "Ufficio",
            "--note",
            "contanti incassati",
        ];
        ok(&accept);
        expected += cents(amount);
        assert!(!saldo(&accept).status.success(), "{name}: a second accept of {id}");
    }
    assert_eq!(cents(&hub_balance(hub_dir)), expected, "{name}: each accepted top-up counts once");
    ok(&["log", "verify", "--data", hub_dir.to_str().unwrap()]);
}

#[test]
fn a_cash_point_restored_from_an_older_copy_strands_no_money_whether_behind_level_or_ahead_of_the_hub() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let (hub_dir, _hub, _) = hub(tmp);
    let people = consumers(&hub_dir);
    for (i, (case, lengths)) in [("behind", (3, 1)), ("level", (2, 2)), ("ahead", (1, 3))].into_iter().enumerate() {
        restored_cash_point_strands_nothing(
            tmp,
            &hub_dir,
            &format!("direct-{case}"),
            &people[i],
            lengths,
            Carrier::Direct,
            None,
        );
    }
}

#[test]
fn a_restored_cash_point_s_second_branch_reaches_the_hub_through_a_neighbour_or_a_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let (hub_dir, _hub, _) = hub(tmp);
    let people = consumers(&hub_dir);
    let neighbour_dir = tmp.join("neighbour");
    let _neighbour = spawn(
        &[
            "cashpoint",
            "--data",
            neighbour_dir.to_str().unwrap(),
            "--p2p",
            "127.0.0.1:0",
            "--join",
            &enroll(&hub_dir, "Vicino"),
        ],
        &tmp.join("neighbour.log"),
    );
    wait_until("the neighbour's directory", || Some(()).filter(|()| !consumers(&neighbour_dir).is_empty()));
    let neighbour = address(&neighbour_dir);
    for (i, (case, lengths)) in [("behind", (3, 1)), ("level", (2, 2)), ("ahead", (1, 3))].into_iter().enumerate() {
        restored_cash_point_strands_nothing(
            tmp,
            &hub_dir,
            &format!("bundle-{case}"),
            &people[i],
            lengths,
            Carrier::Bundle,
            None,
        );
        restored_cash_point_strands_nothing(
            tmp,
            &hub_dir,
            &format!("neighbour-{case}"),
            &people[3 + i],
            lengths,
            Carrier::Neighbour,
            Some(&neighbour),
        );
    }
}

/// The cash point's own top-ups its data directory holds, in log order: their ids.
fn own_top_ups(dir: &Path) -> Vec<String> {
    let mut node = saldo_node::node::Node::open(dir).unwrap();
    let me = node.author().unwrap();
    let mut ops: Vec<saldo_sync::SignedOp> = node
        .all_operations()
        .unwrap()
        .iter()
        .map(|bytes| saldo_sync::SignedOp::decode(bytes).unwrap())
        .filter(|op| op.op.author == me && matches!(op.op.body, Body::TopUp(_)))
        .collect();
    ops.sort_by_key(|op| op.op.seq);
    ops.iter().map(|op| op.id.to_hex()).collect()
}

/// A shop restores its cash point from an older copy of its data directory
/// and types a top-up as soon as it runs: the cash point first fetches back
/// what it recorded after the copy, its receipt numbers continue, and the
/// hub sees no fork.
#[test]
fn a_cash_point_restored_from_an_older_copy_fetches_its_log_back_before_recording_and_never_forks() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let (hub_dir, _hub, hub_address) = hub(tmp);
    let (a_dir, old_dir) = (tmp.join("edicola"), tmp.join("edicola-copy"));
    let a = a_dir.to_str().unwrap();
    let token = enroll(&hub_dir, "Edicola A");
    let running = spawn(&["cashpoint", "--data", a, "--p2p", "127.0.0.1:0", "--join", &token], &tmp.join("a0.log"));
    let (pan, _) = wait_until("A's directory", || some_consumer(&a_dir));
    for expected in 1..=2 {
        assert_eq!(top_up_ok(&a_dir, &pan)["receipt_number"], expected);
    }
    wait_confirmed(&a_dir);
    drop(running);
    // (Killed, it left its status file, which would say it runs for 3 s more.)
    let _ = std::fs::remove_file(a_dir.join("status.json"));
    copy_dir(&a_dir, &old_dir);

    // Three more top-ups online after the copy: the hub holds them.
    let running = spawn(&["cashpoint", "--data", a, "--p2p", "127.0.0.1:0"], &tmp.join("a1.log"));
    wait_until("A to check its log with the hub", || {
        let s = status(&a_dir);
        Some(()).filter(|()| !s["addresses"][0].is_null() && s["recording_held"].is_null())
    });
    for expected in 3..=5 {
        assert_eq!(top_up_ok(&a_dir, &pan)["receipt_number"], expected);
    }
    wait_confirmed(&a_dir);
    drop(running);

    // The old copy is started in its place, with the hub slow to answer
    // (behind a relay, cut for now), and a top-up is typed at once.
    let relay = Relay::new(hub_address.parse::<PeerAddr>().unwrap().addr);
    relay.cut.store(true, Ordering::SeqCst);
    let through_relay = format!("{}@{}", hub_address.parse::<PeerAddr>().unwrap().id.to_hex(), relay.addr);
    let _restored = spawn(
        &["cashpoint", "--data", old_dir.to_str().unwrap(), "--p2p", "127.0.0.1:0", "--hub", &through_relay],
        &tmp.join("a2.log"),
    );
    wait_until("the restored cash point to run", || Some(()).filter(|()| !status(&old_dir)["addresses"][0].is_null()));
    let held = try_top_up(&old_dir, &pan);
    assert!(String::from_utf8_lossy(&held.stderr).contains("is checking its log with the hub"), "{held:?}");
    let own_log = status(&old_dir)["recording_held"].as_str().unwrap_or_default().to_string();
    assert!(own_log.starts_with("checking this device's log with the hub"), "{own_log}");
    relay.cut.store(false, Ordering::SeqCst);
    let mut refusals = 0;
    let receipt = wait_until("a top-up at the restored cash point", || {
        let out = try_top_up(&old_dir, &pan);
        if out.status.success() {
            return Some(serde_json::from_slice::<Value>(&out.stdout).unwrap());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("it is fetching them back") || stderr.contains("is checking its log with the hub"),
            "{stderr}"
        );
        refusals += 1;
        None
    });
    assert_eq!(receipt["receipt_number"], 6, "the receipt numbers continue after the fetched ones");
    assert_eq!(own_top_ups(&old_dir).len(), 6, "the restored copy holds its whole log");
    wait_confirmed(&old_dir);
    assert_eq!(status(&old_dir)["recording_held"], Value::Null);

    // The hub saw no fork: nothing frozen, nothing in review.
    let verify = json(&["log", "verify", "--data", hub_dir.to_str().unwrap(), "--json"]);
    assert_eq!(verify["equivocations"], 0, "{verify}");
    let review = json(&["review", "list", "--data", hub_dir.to_str().unwrap(), "--json"]);
    assert_eq!(review["operations"].as_array().map(Vec::len), Some(0), "{review}");
    println!("refused {refusals} times before the log was back");
}

/// A shop backs its cash point up while it runs and records: the backup
/// restores to a node whose log verifies and holds what was acknowledged
/// before the backup began (and nothing that was never acknowledged).
#[test]
fn a_backup_taken_while_the_cash_point_runs_and_records_restores_what_was_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let (hub_dir, _hub, _) = hub(tmp);
    let a_dir = tmp.join("edicola");
    let a = a_dir.to_str().unwrap();
    let token = enroll(&hub_dir, "Edicola A");
    let _running = spawn(&["cashpoint", "--data", a, "--p2p", "127.0.0.1:0", "--join", &token], &tmp.join("a.log"));
    let (pan, _) = wait_until("A's directory", || some_consumer(&a_dir));
    std::fs::write(a_dir.join("saldo.toml"), "lan = false\n").unwrap();

    let acknowledged: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    for _ in 0..3 {
        acknowledged.lock().unwrap().push(top_up_ok(&a_dir, &pan)["operation"].as_str().unwrap().into());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let recorder = {
        let (acknowledged, stop, a_dir, pan) = (acknowledged.clone(), stop.clone(), a_dir.clone(), pan.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let code = top_up_ok(&a_dir, &pan)["operation"].as_str().unwrap().to_string();
                acknowledged.lock().unwrap().push(code);
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let before = acknowledged.lock().unwrap().len();
    let file = tmp.join("edicola.backup");
    let out = ok(&["backup", "--data", a, "--out", file.to_str().unwrap()]);
    assert!(out.contains("secret key"), "{out}");
    stop.store(true, Ordering::SeqCst);
    recorder.join().unwrap();
    let acknowledged = acknowledged.lock().unwrap().clone();

    // A backup never replaces a file, and a restore never fills a directory in use.
    let again = saldo(&["backup", "--data", a, "--out", file.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"), "{again:?}");
    let into_used = saldo(&["restore", "--from", file.to_str().unwrap(), "--data", a]);
    assert!(String::from_utf8_lossy(&into_used.stderr).contains("is not empty"), "{into_used:?}");

    let restored = tmp.join("restored");
    let out = ok(&["restore", "--from", file.to_str().unwrap(), "--data", restored.to_str().unwrap()]);
    assert!(out.contains("saldo cashpoint --data"), "{out}");
    ok(&["log", "verify", "--data", restored.to_str().unwrap()]);
    assert_eq!(std::fs::read(restored.join("device.key")).unwrap(), std::fs::read(a_dir.join("device.key")).unwrap());
    assert_eq!(std::fs::read_to_string(restored.join("saldo.toml")).unwrap(), "lan = false\n");
    let held = own_top_ups(&restored);
    assert!(held.len() >= before, "{} top-ups were acknowledged before the backup, it holds {}", before, held.len());
    assert_eq!(held[..], acknowledged[..held.len()], "the backup holds a prefix of what was acknowledged");

    // Restored, it records nothing before its node has run and asked the hub.
    let refused = try_top_up(&restored, &pan);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("was restored from a backup"), "{refused:?}");
}

/// A cash point enrolled in place of another (one whose log forked) goes on
/// with the receipt numbers after the highest the hub holds of the old one,
/// forks included: a shop's receipt numbers stay unique across its keys.
#[test]
fn a_cash_point_enrolled_in_place_of_another_continues_its_receipt_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let (hub_dir, _hub, hub_address) = hub(tmp);
    let realm = RealmId(hub_address.parse::<PeerAddr>().unwrap().id.0);
    let (a_dir, b_dir) = (tmp.join("edicola"), tmp.join("edicola-nuova"));
    let token = enroll(&hub_dir, "Edicola A");
    let running = spawn(
        &["cashpoint", "--data", a_dir.to_str().unwrap(), "--p2p", "127.0.0.1:0", "--join", &token],
        &tmp.join("a.log"),
    );
    let (pan, service) = wait_until("A's directory", || some_consumer(&a_dir));
    for _ in 0..3 {
        top_up_ok(&a_dir, &pan);
    }
    wait_confirmed(&a_dir);
    drop(running);

    // The hub also holds a fork of A: another operation #3, receipt no. 9.
    let a_key = DeviceKey::from_secret_bytes(&std::fs::read(a_dir.join("device.key")).unwrap().try_into().unwrap());
    let consumer = ConsumerId::from_hex(
        json(&["search", "--data", hub_dir.to_str().unwrap(), &pan, "--json"])["consumers"][0]["consumer"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let wallet = WalletKey { consumer, service: ServiceId::parse(&service).unwrap() };
    let fork = Operation {
        author: a_key.author(),
        seq: Seq(3),
        prev: OpId::NONE,
        hlc: Hlc::from_parts(1_790_000_000_000, 0),
        hub_seen: Seq(1),
        body: Body::TopUp(TopUp {
            receipt: ReceiptNo(9),
            lines: vec![TopUpLine { wallet, amount: Amount::parse("1.00").unwrap() }],
            method: PaymentMethod::Cash,
            operator: None,
        }),
    }
    .sign(&realm, &a_key)
    .to_bytes();
    let results = saldo_node::node::Node::open(&hub_dir).unwrap().ingest(&[fork]).unwrap();
    assert!(matches!(results[0], Ok(saldo_node::state::Applied::Equivocation { .. })), "{results:?}");

    let hub_data = hub_dir.to_str().unwrap();
    let unknown = saldo(&["enroll", "--data", hub_data, "--name", "X", "--replaces", &"ab".repeat(32)]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no device"), "{unknown:?}");
    let a_id = a_key.author().to_hex();
    let token =
        json(&["enroll", "--data", hub_data, "--name", "Edicola A (nuova)", "--replaces", &a_id, "--json"])["token"]
            .as_str()
            .unwrap()
            .to_string();
    let joined = spawn(
        &["cashpoint", "--data", b_dir.to_str().unwrap(), "--p2p", "127.0.0.1:0", "--join", &token],
        &tmp.join("b.log"),
    );
    wait_until("B's directory", || some_consumer(&b_dir));
    let receipt = top_up_ok(&b_dir, &pan);
    assert_eq!(receipt["receipt_number"], 10, "after the highest receipt the hub held of A, its fork included");
    wait_confirmed(&b_dir);
    drop(joined);

    // The old device is revoked; the new one's top-up is not taken for a duplicate receipt.
    let b_id = status(&b_dir)["device"].as_str().unwrap().to_string();
    let review = json(&["review", "list", "--data", hub_data, "--json"]);
    assert!(review["operations"].as_array().unwrap().iter().all(|f| f["author"] != b_id.as_str()), "{review}");
    let a_row = saldo_node::store::Store::open(&hub_dir.join("saldo.db"))
        .unwrap()
        .read()
        .unwrap()
        .author(&a_key.author())
        .unwrap()
        .unwrap();
    assert!(a_row.revoked_after.is_some(), "the replaced device is revoked");
}
