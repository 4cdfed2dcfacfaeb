//! Cash points syncing with the hub: one cut from it reaches it through a
//! neighbour and converges, the demo's nodes sync, a used enrolment token
//! is refused, and another realm's node is refused for good.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

use saldo_node::net::PeerAddr;
use saldo_sync::Amount;
use serde_json::Value;

use super::common::{ok, saldo};

use super::{Relay, address, confirmed, enroll, hub, json, runs_as, some_consumer, spawn, status, wait_until};

#[test]
fn a_cash_point_cut_from_the_hub_reaches_it_through_a_neighbour_and_converges() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let (hub_dir, _hub, hub_address) = hub(tmp);
    let hub_peer: PeerAddr = hub_address.parse().unwrap();
    let (a_dir, b_dir) = (tmp.join("edicola"), tmp.join("farmacia"));
    let (a, b) = (a_dir.to_str().unwrap(), b_dir.to_str().unwrap());

    // Both cash points join through the hub and receive its directory.
    let (token_a, token_b) = (enroll(&hub_dir, "Edicola A"), enroll(&hub_dir, "Farmacia B"));
    let joined = spawn(&["cashpoint", "--data", a, "--p2p", "127.0.0.1:0", "--join", &token_a], &tmp.join("a0.log"));
    let (pan, service) = wait_until("A's directory", || some_consumer(&a_dir));
    drop(joined);
    let _b = spawn(&["cashpoint", "--data", b, "--p2p", "127.0.0.1:0", "--join", &token_b], &tmp.join("b.log"));
    wait_until("B's directory", || some_consumer(&b_dir));
    let b_address = address(&b_dir);
    // (A catch-up commits in short transactions: the directory can be there before the enrolment.)
    wait_until("B's enrolment", || Some(()).filter(|()| status(&b_dir)["device_name"] != ""));

    // A reaches the hub only through the relay, and B directly.
    let relay = Relay::new(hub_peer.addr);
    let through_relay = format!("{}@{}", hub_peer.id.to_hex(), relay.addr);
    // (B as a static peer in A's configuration file, as a shop would set it up.)
    std::fs::write(a_dir.join("saldo.toml"), format!("p2p = \"127.0.0.1:0\"\npeers = [\"{b_address}\"]\n")).unwrap();
    let a_node = spawn(&["cashpoint", "--data", a, "--hub", &through_relay], &tmp.join("a.log"));
    wait_until("A online with the hub", || status(&a_dir)["online"].as_bool().filter(|online| *online));

    // Cut: A records top-ups; its receipts say provisional. (Once the hub
    // or B has answered A's hello: a node just started holds recording
    // until it knows how much of its own log they hold.)
    relay.cut.store(true, Ordering::SeqCst);
    // A connection through the relay learns the hub's own address (iroh's
    // NAT traversal advertises it inside the encrypted connection) and may
    // open a direct path beside the relay's, which the cut cannot stop on
    // loopback. A cash point restarted while cut knows only the relay.
    drop(a_node);
    let a_node = spawn(&["cashpoint", "--data", a, "--hub", &through_relay], &tmp.join("a-cut.log"));
    wait_until("A to know what its peers hold of its log", || {
        Some(()).filter(|()| runs_as(&a_dir, &a_node) && status(&a_dir)["recording_held"].is_null())
    });
    let mut total = 0i64;
    for (i, amount) in ["12.50", "7.25", "30.00"].iter().enumerate() {
        let receipt = json(&[
            "topup",
            "--data",
            a,
            "--pan",
            &pan,
            "--amount",
            amount,
            "--method",
            "cash",
            "--service",
            &service,
            "--json",
        ]);
        assert_eq!(receipt["provisional"], true, "top-up {i}: {receipt}");
        total += Amount::parse(amount).unwrap().minor();
    }
    let total = format!("{}.{:02}", total / 100, total % 100);
    assert_eq!(confirmed(&a_dir, &pan).1, total, "A's provisional balance counts its own top-ups");

    // B carries A's operations to the hub, which accepts them.
    wait_until("the hub to hold A's top-ups", || Some(()).filter(|()| confirmed(&hub_dir, &pan).0 == total));
    let received_from = |dir: &Path| -> u64 {
        let id = status(dir)["device"].clone();
        let peers = status(&hub_dir)["peers"].clone();
        peers.as_array().unwrap().iter().find(|p| p["id"] == id).map_or(0, |p| p["ops_received"].as_u64().unwrap())
    };
    // (status.json is rewritten twice a second)
    wait_until("the hub's status to show A's top-ups came from B", || Some(()).filter(|()| received_from(&b_dir) == 3));
    assert_eq!(received_from(&a_dir), 0, "nothing reached the hub from A while it was cut");

    // A comes back: everything converges, A's balance is confirmed.
    relay.cut.store(false, Ordering::SeqCst);
    wait_until("A's balance confirmed", || {
        let s = status(&a_dir);
        Some(()).filter(|()| confirmed(&a_dir, &pan).0 == total && s["unconfirmed_operations"] == 0)
    });
    wait_until("B to hold the hub's decisions", || Some(()).filter(|()| confirmed(&b_dir, &pan).0 == total));
    for dir in [&hub_dir, &a_dir, &b_dir] {
        ok(&["log", "verify", "--data", dir.to_str().unwrap()]);
    }
}

/// The README's run command: the demo runs a hub and two cash points that
/// sync, and stops them all on SIGTERM.
#[test]
fn the_demo_runs_a_hub_and_two_cash_points_that_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let mut demo = spawn(&["demo", "--data", dir.to_str().unwrap(), "--consumers", "40"], &tmp.path().join("demo.log"));
    let (edicola, farmacia, hub) = (dir.join("edicola"), dir.join("farmacia"), dir.join("hub"));
    for cash_point in [&edicola, &farmacia] {
        wait_until("a demo cash point online with the hub", || {
            let s = saldo(&["status", "--data", cash_point.to_str().unwrap(), "--json"]);
            let s: Value = serde_json::from_slice(&s.stdout).ok()?;
            Some(()).filter(|()| s["online"] == true && s["device_name"] != "")
        });
    }
    let (pan, service) = wait_until("the edicola's directory", || some_consumer(&edicola));
    let before = confirmed(&hub, &pan).0;
    ok(&[
        "topup",
        "--data",
        edicola.to_str().unwrap(),
        "--pan",
        &pan,
        "--amount",
        "3.00",
        "--method",
        "cash",
        "--service",
        &service,
    ]);
    wait_until("the top-up at the hub", || Some(()).filter(|()| confirmed(&hub, &pan).0 != before));
    // The logins it prints work: each cash point's cashier there, the
    // administrator and the clerk at the hub.
    for (dir, login) in [(&edicola, "edicola"), (&farmacia, "farmacia"), (&hub, "admin"), (&hub, "ufficio")] {
        let password = format!("saldo-demo-{login}");
        // (Printed once every node listens: on a busy machine, after the sync above.)
        wait_until("the demo to print the login", || {
            let printed = std::fs::read_to_string(tmp.path().join("demo.log")).ok()?;
            printed.lines().any(|l| l.contains(login) && l.contains(&password)).then_some(())
        });
        wait_until("the demo login to work", || {
            let mut node = saldo_node::node::Node::open(dir).ok()?;
            node.authenticate(login, &password).ok()
        });
    }
    assert!(Command::new("kill").arg(demo.0.id().to_string()).status().unwrap().success());
    let exit = demo.0.wait().unwrap();
    assert!(exit.success(), "the demo exits cleanly on SIGTERM: {exit}");
    // Its nodes stopped with it.
    for node in [&hub, &edicola, &farmacia] {
        wait_until("a demo node to stop", || Some(()).filter(|()| !node.join("status.json").exists()));
    }
}

/// A token used a second time is refused, and the cash point says why in
/// plain words, once ("the hub refused: …", not "refused: refused:"), and
/// leaves nothing behind.
#[test]
fn a_used_enrolment_token_is_refused_saying_so_once() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let (hub_dir, _hub, _) = hub(tmp);
    let token = enroll(&hub_dir, "Edicola");
    let (a_dir, b_dir) = (tmp.join("edicola"), tmp.join("copia"));
    let joined = spawn(
        &["cashpoint", "--data", a_dir.to_str().unwrap(), "--p2p", "127.0.0.1:0", "--join", &token],
        &tmp.join("a.log"),
    );
    wait_until("A's directory", || some_consumer(&a_dir));
    drop(joined);
    let out = saldo(&["cashpoint", "--data", b_dir.to_str().unwrap(), "--p2p", "127.0.0.1:0", "--join", &token]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("could not join the realm; nothing was created: the hub refused: this enrolment token is unknown or was used already"),
        "{stderr}"
    );
    assert!(!stderr.contains("refused: refused"), "{stderr}");
    assert!(!b_dir.exists(), "a refused join left {}", b_dir.display());
}

/// A cash point set to sync with a node of another realm (a wrong address
/// in its configuration) is told for good that the realms differ: its
/// status shows that peer as refused, with the reason, and it stops dialing
/// it, while it keeps syncing with its own hub.
#[test]
fn a_device_that_reaches_another_realms_node_is_refused_for_good_and_stops_dialing_it() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let (hub_dir, _hub, _) = hub(tmp);
    let other_dir = tmp.join("altro-comune");
    ok(&["realm", "init", "--data", other_dir.to_str().unwrap(), "--name", "Altro Comune"]);
    let other_log = tmp.join("other.log");
    let _other = spawn(&["hub", "--data", other_dir.to_str().unwrap(), "--p2p", "127.0.0.1:0"], &other_log);
    let other_address = address(&other_dir);
    let other_id = other_address.split('@').next().unwrap().to_string();

    let a_dir = tmp.join("edicola");
    let a = a_dir.to_str().unwrap();
    let token = enroll(&hub_dir, "Edicola");
    let _a = spawn(
        &["cashpoint", "--data", a, "--p2p", "127.0.0.1:0", "--join", &token, "--peer", &other_address],
        &tmp.join("a.log"),
    );
    let refused = wait_until("the other realm's node refused for good in A's status", || {
        let s: Value = serde_json::from_slice(&saldo(&["status", "--data", a, "--json"]).stdout).ok()?;
        let peer = s["peers"].as_array()?.iter().find(|p| p["id"] == other_id.as_str())?.clone();
        peer["refused"].as_str().map(str::to_string)
    });
    assert!(refused.contains("the realms differ"), "{refused}");
    let text = ok(&["status", "--data", a]);
    assert!(text.contains("refused for good") && text.contains("the realms differ"), "{text}");
    wait_until("A online with its own hub", || status(&a_dir)["online"].as_bool().filter(|online| *online));

    let refusals = || std::fs::read_to_string(&other_log).unwrap().matches("refused a sync from").count();
    let seen = refusals();
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!((seen, refusals()), (1, 1), "A dialed the other realm's node again after its refusal");
}
