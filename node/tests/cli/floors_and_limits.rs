//! What the hub sets for wallets and devices: services' floors and
//! tariffs, devices' offline limits and allowances (zero refused where it
//! would stop all work), and a review that takes a wallet below its floor.

use saldo_sync::OpId;

use super::common::{ok, saldo};
use super::{Realm, check_refused, enrol_cash_point, realm, top_up_setup};

#[test]
fn services_keep_their_floor_and_tariff() {
    let realm = realm(5);
    let d = realm.data();
    let listed = ok(&["services", "list", "--data", d]);
    assert!(listed.contains("mensa") && listed.contains("floor     0.00 EUR"), "{listed}");
    let set: serde_json::Value = serde_json::from_str(&ok(&[
        "services", "set", "--data", d, "--name", "Mensa", "--floor", "-50", "--tariff", "4,50", "--json",
    ]))
    .unwrap();
    assert_eq!((set["floor"].as_str(), set["tariff"].as_str()), (Some("-50.00"), Some("4.50")));
    let again: serde_json::Value =
        serde_json::from_str(&ok(&["services", "set", "--data", d, "--name", "Mensa", "--tariff", "5", "--json"]))
            .unwrap();
    assert_eq!(
        (again["floor"].as_str(), again["tariff"].as_str()),
        (Some("-50.00"), Some("5.00")),
        "an unnamed field is kept"
    );
    check_refused(
        &realm,
        &["services", "set", "--data", d, "--name", "Mensa", "--floor", "10"],
        "zero or negative, like -20.00 (with --floor)",
    );
    check_refused(
        &realm,
        &["services", "set", "--data", d, "--name", "Mensa", "--tariff", "4.555"],
        "more than two decimals",
    );
    assert!(ok(&["log", "verify", "--data", d]).contains("verifies"));
}

/// The hub changes a device's offline limits: what is given changes, the
/// rest stays; a request that changes nothing, or names no device of the
/// realm, is refused and writes nothing.
#[test]
fn the_hub_changes_a_devices_offline_limits() {
    let realm = realm(6);
    let device = enrol_cash_point(&realm, "Edicola").author().to_hex();
    let out = ok(&["limits", "--data", realm.data(), "--device", &device, "--per-operation", "20", "--json"]);
    let limits: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(limits["per_operation"], "20.00", "{limits}");
    assert_eq!(limits["unconfirmed_total"], "5000.00", "{limits}");
    assert_eq!(limits["offline_hours"], 168, "{limits}");
    let out = ok(&["limits", "--data", realm.data(), "--device", &device, "--offline-hours", "48"]);
    assert!(out.contains("20.00 EUR per operation") && out.contains("48 h"), "{out}");

    check_refused(&realm, &["limits", "--data", realm.data(), "--device", &device], "say which limit to change");
    check_refused(
        &realm,
        &["limits", "--data", realm.data(), "--device", &"ab".repeat(32), "--per-operation", "5"],
        "is enrolled in this realm",
    );
    check_refused(
        &realm,
        &["limits", "--data", realm.data(), "--device", &device, "--unconfirmed-total=-1"],
        "the unconfirmed total must be above zero",
    );
}

/// An allowance for a device the realm does not know is refused, and
/// nothing changes.
#[test]
fn an_allowance_for_an_unknown_device_is_refused() {
    let (realm, pan, _) = top_up_setup();
    let stranger = "ab".repeat(32);
    check_refused(
        &realm,
        &["escrow", "--data", realm.data(), "--device", &stranger, "--pan", &pan, "--amount", "5"],
        "is enrolled in this realm",
    );
    check_refused(
        &realm,
        &["escrow", "--data", realm.data(), "--device", "12", "--pan", &pan, "--amount", "5"],
        "is not a device id",
    );
}

/// A charge of a school device beyond its allowance, flagged at the hub of
/// `realm`: (the charge's id, the consumer's PAN). The wallet holds nothing,
/// its floor is -50.00; an allowance of 20.00 was charged whole, and the
/// flagged charge of 35.00 would take the wallet to -55.00.
fn flagged_charge_below_floor(realm: &Realm) -> (String, String) {
    use saldo_sync::{Amount, Balance, Body, Hlc, Label, Operation, Role, Seq, ServiceCharge, WalletKey};
    let ((pan, _), _) = realm.consumers();
    let mut hub = saldo_node::node::Node::open(&realm.dir).unwrap();
    let (consumer, service) = hub.resolve_wallet(&saldo_sync::Pan::parse(&pan).unwrap(), None).unwrap();
    let record = hub.services().unwrap().into_iter().find(|s| s.id == service).unwrap();
    hub.set_service(&record.name, Some(Balance::parse("-50").unwrap()), None).unwrap();
    let device = saldo_sync::DeviceKey::generate();
    let limits = saldo_sync::OfflineLimits::default_for_cash_point();
    hub.enrol(device.author(), Role::SchoolDevice, &Label::parse("Mensa Rodari").unwrap(), limits).unwrap();
    let wallet = WalletKey { consumer: consumer.consumer, service };
    hub.grant_escrow(device.author(), wallet.clone(), Amount::parse("20").unwrap()).unwrap();
    let hub_seen = {
        let author = hub.author().unwrap();
        let tx = hub.store_mut().read().unwrap();
        tx.author(&author).unwrap().unwrap().head_seq
    };
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let mut prev = OpId::NONE;
    let mut ops = Vec::new();
    for (seq, (reference, amount)) in [("pasto-1", "20"), ("pasto-2", "35")].into_iter().enumerate() {
        let op = Operation {
            author: device.author(),
            seq: Seq(seq as u64 + 1),
            prev,
            hlc: Hlc::from_parts(now_ms + seq as u64, 0),
            hub_seen,
            body: Body::ServiceCharge(ServiceCharge {
                reference: Label::parse(reference).unwrap(),
                wallet: wallet.clone(),
                amount: Amount::parse(amount).unwrap(),
            }),
        }
        .sign(&hub.realm(), &device);
        prev = op.id;
        ops.push(op);
    }
    let results = hub.ingest(&ops.iter().map(saldo_sync::SignedOp::to_bytes).collect::<Vec<_>>()).unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    (ops[1].id.to_hex(), pan)
}

/// An operator accepting in review a charge beyond an allowance is told that
/// the wallet goes below its floor and by how much, and must confirm it a
/// second time; until then nothing is recorded and the command fails.
#[test]
fn review_accept_says_how_far_below_its_floor_a_charge_takes_the_wallet() {
    let realm = realm(12);
    let (charge, pan) = flagged_charge_below_floor(&realm);
    let d = realm.data();
    let listed = ok(&["review", "list", "--data", d]);
    assert!(listed.contains(&charge) && listed.contains("over_escrow"), "{listed}");
    let accept = ["review", "accept", "--data", d, &charge, "--operator", "Ufficio", "--note", "paid at the desk"];
    check_refused(&realm, &accept, "wallet to -55.00 EUR, 5.00 EUR below its floor of -50.00 EUR");
    check_refused(&realm, &accept, "confirm that it goes below the floor (with --confirm-below-floor)");
    let out = ok(&[&accept[..], &["--confirm-below-floor"]].concat());
    assert!(out.contains(&format!("accepted {charge}")) && out.contains("5.00 EUR below its floor"), "{out}");
    let balance: serde_json::Value =
        serde_json::from_str(&ok(&["balance", "--data", d, "--pan", &pan, "--json"])).unwrap();
    assert_eq!(balance["wallets"][0]["confirmed"], "-55.00", "{balance}");
    assert!(ok(&["review", "list", "--data", d]).contains("nothing awaits review"));
}

/// A limit of zero is refused where it would stop all work, saying why and
/// what to do instead; nothing is written.
#[test]
fn limits_of_zero_are_refused_with_what_they_would_mean() {
    let realm = realm(6);
    let d = realm.data();
    let device = enrol_cash_point(&realm, "Edicola").author().to_hex();
    for (flag, value, message) in [
        ("--per-operation", "0", "--per-operation: the amount must be greater than zero"),
        ("--unconfirmed-total", "0", "the unconfirmed total must be above zero"),
        ("--offline-hours", "0", "0 is not in 1..="),
    ] {
        check_refused(&realm, &["limits", "--data", d, "--device", &device, flag, value], message);
        check_refused(&realm, &["enroll", "--data", d, "--name", "Farmacia", flag, value], message);
    }
    check_refused(&realm, &["search", "--data", d, "ro", "--limit", "0"], "0 is not in 1..=50");
    check_refused(&realm, &["search", "--data", d, "ro", "--limit", "51"], "51 is not in 1..=50");
    let csv = realm.dir.join("none.csv");
    let out = saldo(&["generate", "--consumers", "0", "--out", csv.to_str().unwrap()]);
    assert!(!out.status.success() && !csv.exists());
    assert!(String::from_utf8_lossy(&out.stderr).contains("0 is not in 1..=1000000"));
}
