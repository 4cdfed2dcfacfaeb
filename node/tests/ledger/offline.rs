//! A device on its own: the offline limits it applies at the counter (and
//! the hub after it), the hub's heartbeat, provisional balances, a device
//! restored behind its own log, and receipt numbers across replacements.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use saldo_node::node::{Node, NodeError, TopUpRequestLine};
use saldo_node::state::IngestError;
use saldo_node::store::Store;
use saldo_sync::{
    Amount, Balance, Body, DeviceKey, FlagReason, OfflineLimits, OpId, PaymentMethod, Role, Seq, SignedOp, WalletKey,
};

use super::{
    Device, StepClock, deliver, hub_with_directory, kept_by_a_device, key, label, limits, reason_of, replay,
    twelve_fifty,
};

/// Limits the hub changes reach the device, which applies them at the
/// counter, and the hub judges by them what the device records after.
#[test]
fn changed_limits_apply_at_the_counter_and_at_the_hub() {
    let (mut hub, consumers) = hub_with_directory(63, 2);
    let realm = hub.realm();
    let key = key(63, 6);
    hub.enrol(key.author(), Role::CashPoint, &label("Edicola"), limits("40")).unwrap();
    let limits = hub.change_limits(key.author(), Some(Amount::parse("10").unwrap()), None, None).unwrap();
    assert_eq!(limits.per_operation, Amount::parse("10").unwrap());
    assert_eq!(limits.offline_secs_max, 3600, "what was not given stays");
    let refused = hub.change_limits(realm.hub(), Some(Amount::parse("10").unwrap()), None, None);
    assert!(matches!(&refused, Err(NodeError::Refused(why)) if why.contains("no offline limits")), "{refused:?}");

    let mut cash_point = Node::replica(
        Store::open_in_memory().unwrap(),
        realm,
        Some(DeviceKey::from_secret_bytes(&key.secret_bytes())),
        Arc::new(StepClock::default()),
    )
    .unwrap();
    assert!(cash_point.ingest(&hub.all_operations().unwrap()).unwrap().iter().all(kept_by_a_device));
    let line = TopUpRequestLine {
        consumer: consumers[0].id,
        service: consumers[0].services[0].clone(),
        amount: Amount::parse("20").unwrap(),
    };
    let error = cash_point.record_top_up(std::slice::from_ref(&line), PaymentMethod::Cash, None).unwrap_err();
    assert!(error.to_string().contains("limit of 10.00 EUR per operation"), "{error}");

    // A device that records it anyway is flagged by the hub.
    let mut device = Device::new(key);
    let w = WalletKey { consumer: consumers[0].id, service: consumers[0].services[0].clone() };
    let over = device.top_up(&realm, vec![(w, Amount::parse("20").unwrap())]);
    deliver(&mut hub, std::slice::from_ref(&over));
    assert_eq!(reason_of(&mut hub, &over.id), Some(FlagReason::OverOperationLimit));
}

/// A quiet hub writes a heartbeat, so a device in touch with it (by sync or
/// by a bundle) holds a recent operation of the hub; a busy one does not.
#[test]
fn a_quiet_hub_writes_a_heartbeat() {
    let clock = Arc::new(StepClock::default());
    let mut hub = Node::create_hub(
        Store::open_in_memory().unwrap(),
        key(62, 0),
        key(62, 1),
        &label("Comune di Prova"),
        clock.clone(),
    )
    .unwrap();
    let before = hub.all_operations().unwrap().len();
    assert!(!hub.heartbeat_if_quiet().unwrap(), "the genesis was just written");
    clock.0.fetch_add(saldo_node::node::HEARTBEAT_AFTER.as_millis() as u64, Ordering::SeqCst);
    assert!(hub.heartbeat_if_quiet().unwrap());
    assert!(!hub.heartbeat_if_quiet().unwrap(), "the heartbeat was just written");
    let all = hub.all_operations().unwrap();
    assert_eq!(all.len(), before + 1);
    assert_eq!(SignedOp::decode(all.last().unwrap()).unwrap().op.body, Body::Heartbeat);
    // A bundle the hub exports after a quiet while carries a fresh one.
    clock.0.fetch_add(saldo_node::node::HEARTBEAT_AFTER.as_millis() as u64, Ordering::SeqCst);
    let (_, count) = hub.export_bundle(None).unwrap();
    assert_eq!(count, before + 2);
    let all = hub.all_operations().unwrap();
    assert_eq!(SignedOp::decode(all.last().unwrap()).unwrap().op.body, Body::Heartbeat);
}

#[test]
fn a_provisional_balance_shows_this_nodes_unconfirmed_operations() {
    let (mut hub, consumers) = hub_with_directory(11, 2);
    let realm = hub.realm();
    let cash_key = key(11, 5);
    let mut cash_point = Device::new(key(11, 5));
    hub.enrol(cash_point.author(), Role::CashPoint, &label("Tabaccheria"), limits("100")).unwrap();
    let w = WalletKey { consumer: consumers[0].id, service: consumers[0].services[0].clone() };
    let op = cash_point.top_up(&realm, vec![(w.clone(), twelve_fifty())]);
    // The cash point's own node holds the realm's history and its own top-up.
    let mut node = replay(realm, Some(cash_key), &hub.all_operations().unwrap(), &mut fastrand::Rng::with_seed(3));
    deliver(&mut node, std::slice::from_ref(&op));
    let wallet = node.wallet(&w.consumer, &w.service).unwrap();
    assert_eq!((wallet.confirmed, wallet.provisional), (Balance::ZERO, Balance::parse("12.50").unwrap()));
    // The hub decides; its decision reaches the cash point; the balance is confirmed.
    deliver(&mut hub, std::slice::from_ref(&op));
    let decisions: Vec<Vec<u8>> = hub.all_operations().unwrap();
    node.ingest(&decisions).unwrap();
    let wallet = node.wallet(&w.consumer, &w.service).unwrap();
    assert_eq!(
        (wallet.confirmed, wallet.provisional),
        (Balance::parse("12.50").unwrap(), Balance::parse("12.50").unwrap())
    );
}

/// A cash point refuses, with a message that says what to do, what goes
/// beyond the offline limits the hub granted it: one operation's amount, the
/// total awaiting the hub's verdict, the time since the last contact with
/// the hub; and nothing is written.
#[test]
fn a_cash_point_refuses_beyond_its_offline_limits_and_writes_nothing() {
    let (mut hub, consumers) = hub_with_directory(41, 6);
    let device = key(41, 7);
    let realm = hub.realm();
    let limits = OfflineLimits {
        per_operation: Amount::parse("40").unwrap(),
        unconfirmed_total: Balance::parse("100").unwrap(),
        offline_secs_max: 3600,
    };
    hub.enrol(device.author(), saldo_sync::Role::CashPoint, &label("Edicola"), limits).unwrap();
    let clock = Arc::new(StepClock::default());
    let mut cash_point = Node::replica(
        Store::open_in_memory().unwrap(),
        realm,
        Some(DeviceKey::from_secret_bytes(&device.secret_bytes())),
        clock.clone(),
    )
    .unwrap();
    let hub_ops = hub.all_operations().unwrap();
    assert!(cash_point.ingest(&hub_ops).unwrap().iter().all(kept_by_a_device));
    let consumer = &consumers[0];
    let line = |amount: &str| TopUpRequestLine {
        consumer: consumer.id,
        service: consumer.services[0].clone(),
        amount: Amount::parse(amount).unwrap(),
    };
    let refused = |node: &mut Node, amount: &str, expected: &str| {
        let before = node.store().dump().unwrap();
        let error = node.record_top_up(&[line(amount)], PaymentMethod::Cash, None).unwrap_err().to_string();
        assert!(error.contains(expected), "{amount}: {error}");
        assert_eq!(node.store().dump().unwrap(), before, "a refused top-up of {amount} wrote something");
    };

    refused(&mut cash_point, "40.01", "over this cash point's limit of 40.00 EUR per operation");
    for _ in 0..3 {
        cash_point.record_top_up(&[line("30")], PaymentMethod::Cash, None).unwrap();
    }
    refused(&mut cash_point, "10.01", "90.00 EUR recorded here await the hub's confirmation");
    cash_point.record_top_up(&[line("10")], PaymentMethod::Cash, None).unwrap();

    // The hub confirms them: the room is back.
    let mine = cash_point.all_operations().unwrap();
    assert!(hub.ingest(&mine).unwrap().iter().all(Result::is_ok));
    let back = hub.all_operations().unwrap();
    assert!(cash_point.ingest(&back).unwrap().iter().all(kept_by_a_device));
    assert_eq!(cash_point.unconfirmed().unwrap().0, 0);
    cash_point.record_top_up(&[line("40")], PaymentMethod::Cash, None).unwrap();

    // Two hours without the hub.
    clock.0.fetch_add(2 * 3600 * 1000, Ordering::SeqCst);
    // (The hub's newest operation here was written a minute's worth of its
    // test clock's steps after the cash point's last contact.)
    refused(
        &mut cash_point,
        "1",
        "the newest news from the hub here is 1 h 59 min old, over this cash point's limit of 1 h",
    );
}

/// A device restored from an older copy of itself records nothing once a
/// peer has shown it holds more of its own log, until that is fetched back;
/// then its receipt numbers continue after the fetched ones.
#[test]
fn a_device_behind_its_own_log_refuses_to_record_until_it_has_fetched_it_back() {
    use saldo_sync::reconcile::{FrontierForm, Hello, Message, PROTOCOL_VERSION};
    let (mut hub, consumers) = hub_with_directory(64, 2);
    let realm = hub.realm();
    let key = key(64, 6);
    hub.enrol(key.author(), Role::CashPoint, &label("Edicola"), limits("400")).unwrap();
    let device = |hub: &mut Node| {
        let mut node = Node::replica(
            Store::open_in_memory().unwrap(),
            realm,
            Some(DeviceKey::from_secret_bytes(&key.secret_bytes())),
            Arc::new(StepClock::default()),
        )
        .unwrap();
        // All of the hub's log but its contact data, which a device refuses.
        let results = node.ingest(&hub.all_operations().unwrap()).unwrap();
        assert!(results.iter().all(|r| matches!(r, Ok(_) | Err(IngestError::HubOnly))), "{results:?}");
        node
    };
    let (mut original, mut restored) = (device(&mut hub), device(&mut hub));
    let line = TopUpRequestLine {
        consumer: consumers[0].id,
        service: consumers[0].services[0].clone(),
        amount: Amount::parse("5").unwrap(),
    };
    let mut own = Vec::new();
    for _ in 0..3 {
        let receipt = original.record_top_up(std::slice::from_ref(&line), PaymentMethod::Cash, None).unwrap();
        own.push(OpId::from_hex(&receipt.verification_code).unwrap());
    }
    let own: Vec<Vec<u8>> = original
        .all_operations()
        .unwrap()
        .into_iter()
        .filter(|b| SignedOp::decode(b).is_ok_and(|op| own.contains(&op.id)))
        .collect();
    assert!(hub.ingest(&own).unwrap().iter().all(Result::is_ok));
    // The older copy holds the first of the three.
    assert!(restored.ingest(&own[..1]).unwrap().iter().all(Result::is_ok));

    // The hub's hello shows it holding #3 of the device's log.
    let mut session = restored.respond(realm.hub()).unwrap();
    let hello = Hello { version: PROTOCOL_VERSION, realm, frontier: FrontierForm::Whole(hub.frontier().unwrap()) };
    session.receive(Message::Hello(hello)).unwrap();
    restored.after_hello(realm.hub(), &session).unwrap();
    let refused = restored.record_top_up(std::slice::from_ref(&line), PaymentMethod::Cash, None).unwrap_err();
    assert!(matches!(refused, NodeError::FetchingOwnLog { held: 1, peer_holds: 3, holder: "the hub" }), "{refused:?}");
    assert!(refused.to_string().contains("holds its log up to #1 but the hub holds #3"), "{refused}");

    // Fetched back, it records, with the next receipt number.
    assert!(restored.ingest(&own[1..]).unwrap().iter().all(Result::is_ok));
    let receipt = restored.record_top_up(std::slice::from_ref(&line), PaymentMethod::Cash, None).unwrap();
    assert_eq!(receipt.receipt_number, 4);
    assert_eq!(restored.own_log_hold().unwrap(), None);
}

/// Receipt numbers stay unique per cash point across its keys: a device
/// enrolled in place of another starts above the highest receipt the hub
/// holds of it, also when the one it replaces recorded nothing itself
/// (a replacement of a replacement).
#[test]
fn a_replacement_of_a_replacement_still_starts_above_the_first_devices_receipts() {
    let (mut hub, consumers) = hub_with_directory(65, 2);
    let realm = hub.realm();
    let mut first = Device::new(key(65, 6));
    hub.enrol(first.author(), Role::CashPoint, &label("Edicola"), limits("400")).unwrap();
    let wallet = WalletKey { consumer: consumers[0].id, service: consumers[0].services[0].clone() };
    let ops: Vec<SignedOp> = (0..4).map(|_| first.top_up(&realm, vec![(wallet.clone(), twelve_fifty())])).collect();
    deliver(&mut hub, &ops);

    let (second, third) = (key(65, 7).author(), key(65, 8).author());
    let secret = hub.create_replacement_token(&label("Edicola 2"), limits("400"), first.author()).unwrap();
    hub.redeem_enrolment_token(&secret, second).unwrap();
    assert_eq!(hub.receipt_base_of(&second).unwrap(), Some(4));
    let revoked = hub.store_mut().read().unwrap().author(&first.author()).unwrap().unwrap().revoked_after;
    assert_eq!(revoked, Some(Seq(4)), "the replaced device is revoked after what the hub held of it");

    let secret = hub.create_replacement_token(&label("Edicola 3"), limits("400"), second).unwrap();
    hub.redeem_enrolment_token(&secret, third).unwrap();
    assert_eq!(hub.receipt_base_of(&third).unwrap(), Some(4));
    let unknown = hub.create_replacement_token(&label("Edicola 4"), limits("400"), key(65, 9).author());
    assert!(matches!(unknown, Err(NodeError::UnknownDevice(_))), "{unknown:?}");
}
