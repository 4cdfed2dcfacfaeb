//! An offline cash point and the hub on files: bundles carry top-ups to
//! the hub and its decisions back, what `saldo status` says of the hub's
//! own top-ups and of the last contact, and a cash point whose log forked.

use super::common::ok;
use super::{Realm, check_refused, check_top_up_refused, dump, enrol_cash_point, top_up_setup};

/// The hub's status counts no operation of its own as unconfirmed: the
/// hub's top-ups need no verdict.
#[test]
fn the_hubs_own_top_ups_are_not_unconfirmed() {
    let (realm, pan, _) = top_up_setup();
    ok(&["topup", "--data", realm.data(), "--pan", &pan, "--amount", "10", "--method", "cash"]);
    let status: serde_json::Value = serde_json::from_str(&ok(&["status", "--data", realm.data(), "--json"])).unwrap();
    assert_eq!(
        (status["unconfirmed_operations"].as_u64(), status["unconfirmed_total"].as_str()),
        (Some(0), Some("0.00"))
    );
}

/// A clock stopped at a given time.
#[derive(Debug)]
struct StoppedClock(u64);

impl saldo_node::Clock for StoppedClock {
    fn now_ms(&self) -> u64 {
        self.0
    }
}

/// A cash point that imports a week-old bundle of the hub says its last
/// contact with the hub was a week ago (the time of the newest operation of
/// the hub it holds), not "just now".
#[test]
fn a_week_old_bundle_from_the_hub_is_no_contact_now() {
    let tmp = tempfile::tempdir().unwrap();
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let week_ago_ms = now_ms - 7 * 86_400_000;
    let (hub_dir, cp_dir) = (tmp.path().join("hub"), tmp.path().join("edicola"));
    let mut hub = saldo_node::node::Node::init_realm_with(
        &hub_dir,
        &saldo_sync::Label::parse("Comune di Prova").unwrap(),
        saldo_sync::DeviceKey::generate(),
        saldo_sync::DeviceKey::generate(),
        std::sync::Arc::new(StoppedClock(week_ago_ms)),
    )
    .unwrap();
    let key = saldo_sync::DeviceKey::generate();
    hub.enrol(
        key.author(),
        saldo_sync::Role::CashPoint,
        &saldo_sync::Label::parse("Edicola").unwrap(),
        saldo_sync::OfflineLimits::default_for_cash_point(),
    )
    .unwrap();
    let mut cash_point = saldo_node::node::Node::join(&cp_dir, hub.realm(), key).unwrap();
    let (bundle, _) = hub.export_bundle(Some(&cash_point.frontier_file().unwrap().1)).unwrap();
    drop((hub, cash_point));
    let file = tmp.path().join("week-old.bundle");
    std::fs::write(&file, bundle).unwrap();

    ok(&["bundle", "import", "--data", cp_dir.to_str().unwrap(), file.to_str().unwrap()]);
    let status: serde_json::Value =
        serde_json::from_str(&ok(&["status", "--data", cp_dir.to_str().unwrap(), "--json"])).unwrap();
    let contact_ms = status["last_hub_contact_ms"].as_u64().expect("a contact with the hub");
    assert!(
        contact_ms.abs_diff(week_ago_ms) < 60_000,
        "last contact {} ms ago, the hub's newest operation is a week old",
        now_ms.saturating_sub(contact_ms)
    );
}

/// An offline cash point and the hub exchange operations on files only: the
/// directory goes out, top-ups come back, decisions go out again; importing
/// twice changes nothing and an altered bundle is refused whole.
#[test]
fn bundles_carry_a_cash_points_top_ups_to_the_hub_and_its_decisions_back() {
    let (hub, pan, _) = top_up_setup();
    let tmp = hub._tmp.path();
    let cp_dir = tmp.join("farmacia");
    let key = enrol_cash_point(&hub, "Farmacia Comunale");
    let realm_id = saldo_node::node::Node::open(&hub.dir).unwrap().realm();
    saldo_node::node::Node::join(&cp_dir, realm_id, key).unwrap();
    let cp = Realm { _tmp: tempfile::tempdir().unwrap(), dir: cp_dir };
    let file = |name: &str| tmp.join(name).to_str().unwrap().to_string();
    let json = |text: String| -> serde_json::Value { serde_json::from_str(&text).unwrap() };

    // The hub's log (directory, enrolment) goes to the cash point.
    ok(&["bundle", "frontier", "--data", cp.data(), "--out", &file("cp.frontier")]);
    ok(&["bundle", "export", "--data", hub.data(), "--out", &file("to-cp.bundle"), "--for", &file("cp.frontier")]);
    let report = json(ok(&["bundle", "import", "--data", cp.data(), &file("to-cp.bundle"), "--json"]));
    assert!(report["new"].as_u64().unwrap() > 20 && report["new"] == report["operations"], "{report}");
    assert_eq!(report["refused"].as_array().unwrap().len(), 0, "{report}");

    // Offline, the cash point records a top-up: provisional.
    let receipt =
        json(ok(&["topup", "--data", cp.data(), "--pan", &pan, "--amount", "12.50", "--method", "cash", "--json"]));
    assert_eq!(receipt["provisional"], true);

    // Its operations go to the hub: only what the hub lacks.
    ok(&["bundle", "frontier", "--data", hub.data(), "--out", &file("hub.frontier")]);
    let exported = json(ok(&[
        "bundle",
        "export",
        "--data",
        cp.data(),
        "--out",
        &file("to-hub.bundle"),
        "--for",
        &file("hub.frontier"),
        "--json",
    ]));
    assert_eq!(exported["operations"], 1);

    // Altered anywhere, the bundle is refused whole, and the hub is unchanged.
    let mut bytes = std::fs::read(file("to-hub.bundle")).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(file("tampered.bundle"), &bytes).unwrap();
    check_refused(&hub, &["bundle", "import", "--data", hub.data(), &file("tampered.bundle")], "altered or damaged");
    check_refused(&hub, &["bundle", "import", "--data", hub.data(), &file("hub.frontier")], "not a Saldo bundle");

    let report = json(ok(&["bundle", "import", "--data", hub.data(), &file("to-hub.bundle"), "--json"]));
    assert_eq!((report["new"].as_u64(), report["duplicates"].as_u64()), (Some(1), Some(0)), "{report}");
    let before = dump(&hub.dir);
    let report = json(ok(&["bundle", "import", "--data", hub.data(), &file("to-hub.bundle"), "--json"]));
    assert_eq!((report["new"].as_u64(), report["duplicates"].as_u64()), (Some(0), Some(1)), "{report}");
    assert_eq!(dump(&hub.dir), before, "importing a bundle twice changed the hub");

    // The hub accepted it; its decision goes back and the cash point's balance is confirmed.
    let balance = |realm: &Realm| json(ok(&["balance", "--data", realm.data(), "--pan", &pan, "--json"]));
    assert_eq!(balance(&hub)["wallets"][0]["confirmed"], "12.50");
    ok(&["bundle", "frontier", "--data", cp.data(), "--out", &file("cp2.frontier")]);
    ok(&["bundle", "export", "--data", hub.data(), "--out", &file("to-cp2.bundle"), "--for", &file("cp2.frontier")]);
    assert_eq!(balance(&cp)["wallets"][0]["confirmed"], "0.00");
    ok(&["bundle", "import", "--data", cp.data(), &file("to-cp2.bundle")]);
    assert_eq!(balance(&cp)["wallets"][0]["confirmed"], "12.50");
    ok(&["log", "verify", "--data", cp.data()]);
    ok(&["log", "verify", "--data", hub.data()]);
}

/// An operator whose cash point's log forked (it was restored from an older
/// copy while offline, or cloned) is told what happened and how to go on, by
/// `saldo topup` and `saldo status`, and the cash point records nothing more.
#[test]
fn a_cash_point_whose_log_forked_refuses_to_record_and_says_how_to_go_on() {
    let (hub, pan, _) = top_up_setup();
    let cp_dir = hub._tmp.path().join("farmacia");
    let key = enrol_cash_point(&hub, "Farmacia Comunale");
    let realm_id = saldo_node::node::Node::open(&hub.dir).unwrap().realm();
    saldo_node::node::Node::join(&cp_dir, realm_id, key).unwrap();
    let cp = Realm { _tmp: tempfile::tempdir().unwrap(), dir: cp_dir };
    let file = |name: &str| hub._tmp.path().join(name).to_str().unwrap().to_string();
    ok(&["bundle", "frontier", "--data", cp.data(), "--out", &file("cp.frontier")]);
    ok(&["bundle", "export", "--data", hub.data(), "--out", &file("to-cp.bundle"), "--for", &file("cp.frontier")]);
    ok(&["bundle", "import", "--data", cp.data(), &file("to-cp.bundle")]);
    let top_up = ["topup", "--data", cp.data(), "--pan", &pan, "--amount", "4.00", "--method", "cash"];
    ok(&top_up);
    ok(&top_up);

    // A copy of it signs another operation #2 with the same key, and the two meet.
    let key = std::fs::read(cp.dir.join("device.key")).unwrap();
    let key = saldo_sync::DeviceKey::from_secret_bytes(&key.try_into().unwrap());
    let mut node = saldo_node::node::Node::open(&cp.dir).unwrap();
    let ops: Vec<saldo_sync::SignedOp> =
        node.all_operations().unwrap().iter().map(|b| saldo_sync::SignedOp::decode(b).unwrap()).collect();
    let second = ops.iter().find(|o| o.op.author == key.author() && o.op.seq == saldo_sync::Seq(2)).unwrap();
    let saldo_sync::Body::TopUp(mut other) = second.op.body.clone() else { panic!("a top-up") };
    other.lines[0].amount = saldo_sync::Amount::parse("40.00").unwrap();
    let fork =
        saldo_sync::Operation { body: saldo_sync::Body::TopUp(other), ..second.op.clone() }.sign(&realm_id, &key);
    let applied = node.ingest(&[fork.to_bytes()]).unwrap();
    assert!(matches!(applied[0], Ok(saldo_node::state::Applied::Equivocation { .. })), "{applied:?}");
    drop(node);

    let id = key.author().to_hex();
    for expected in [
        "this cash point's log forked at #2",
        "restored from an older copy of its data directory, or cloned",
        "reaches the hub for review",
        &format!("saldo enroll --name NAME --replaces {id}"),
        "saldo cashpoint --data NEWDIR --join TOKEN",
    ] {
        check_top_up_refused(&cp, &pan, "1.00", &[], expected);
    }
    let status = ok(&["status", "--data", cp.data()]);
    assert!(status.contains("recording:   held: this cash point's log forked at #2"), "{status}");
    assert!(status.contains(&format!("--replaces {id}")), "{status}");
}
