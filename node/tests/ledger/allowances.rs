//! School devices' allowances and reviews below the floor: debits within
//! what the hub reserved, and an acceptance in review that takes a wallet
//! below its floor, now or once devices charge what is reserved, needs a
//! second confirmation.

use saldo_node::node::{NodeError, TopUpRequestLine};
use saldo_sync::{Amount, Balance, Body, FlagReason, PaymentMethod, Role, ServiceCharge, SignedOp, Verdict, WalletKey};

use super::{Device, deliver, hub_with_directory, key, label, limits, reason_of, service, verdict_of};

/// A school device debits a wallet within the allowance the hub reserved for
/// it, offline included; beyond it the hub flags the charge. The hub reserves
/// no more than the balance above the floor, so two devices that cannot see
/// each other never overdraw a wallet.
#[test]
fn debits_fit_the_allowance_the_hub_reserved() {
    let (mut hub, consumers) = hub_with_directory(61, 4);
    let realm = hub.realm();
    let mensa = service("mensa");
    let consumer = consumers.iter().find(|c| c.services.contains(&mensa)).expect("someone eats at the canteen");
    let w = WalletKey { consumer: consumer.id, service: mensa.clone() };
    let (mut canteen, mut bus) = (Device::new(key(61, 7)), Device::new(key(61, 8)));
    for (device, name) in [(&canteen, "Mensa Collodi"), (&bus, "Mensa Rodari")] {
        hub.enrol(device.author(), Role::SchoolDevice, &label(name), limits("100")).unwrap();
    }
    let charge = |device: &mut Device, reference: &str, amount: &str| {
        device.sign(
            &realm,
            Body::ServiceCharge(ServiceCharge {
                reference: label(reference),
                wallet: w.clone(),
                amount: Amount::parse(amount).unwrap(),
            }),
        )
    };
    // No allowance yet: a charge is flagged, not counted.
    let first = charge(&mut canteen, "pasto-1", "4.50");
    deliver(&mut hub, std::slice::from_ref(&first));
    assert_eq!(reason_of(&mut hub, &first.id), Some(FlagReason::OverEscrow));
    // The wallet holds 20.00 and its floor is -20.00: 40.00 can be reserved.
    hub.record_top_up(
        &[TopUpRequestLine { consumer: consumer.id, service: mensa.clone(), amount: Amount::parse("20").unwrap() }],
        PaymentMethod::Cash,
        None,
    )
    .unwrap();
    hub.grant_escrow(canteen.author(), w.clone(), Amount::parse("25").unwrap()).unwrap();
    let refused = hub.grant_escrow(bus.author(), w.clone(), Amount::parse("15.01").unwrap()).unwrap_err().to_string();
    assert!(refused.contains("only 15.00 EUR of this wallet can still be reserved"), "{refused}");
    hub.grant_escrow(bus.author(), w.clone(), Amount::parse("15").unwrap()).unwrap();
    // Both record offline, each within its allowance; the hub accepts.
    let canteen_ops: Vec<SignedOp> = (0..5).map(|i| charge(&mut canteen, &format!("c{i}"), "5")).collect();
    let bus_ops: Vec<SignedOp> = (0..3).map(|i| charge(&mut bus, &format!("b{i}"), "5")).collect();
    assert!(deliver(&mut hub, &bus_ops).iter().all(Result::is_ok));
    assert!(deliver(&mut hub, &canteen_ops).iter().all(Result::is_ok));
    for op in canteen_ops.iter().chain(&bus_ops) {
        assert_eq!(verdict_of(&mut hub, &op.id), Some(Verdict::Accepted));
    }
    // One more is beyond the canteen's allowance: flagged; the wallet stays above its floor.
    let extra = charge(&mut canteen, "c5", "0.50");
    deliver(&mut hub, std::slice::from_ref(&extra));
    assert_eq!(reason_of(&mut hub, &extra.id), Some(FlagReason::OverEscrow));
    let wallet = hub.wallet(&w.consumer, &w.service).unwrap();
    assert_eq!(wallet.confirmed, Balance::parse("-20").unwrap());
    // Nothing left to reserve, and a cash point gets no allowance at all.
    let none = hub.grant_escrow(bus.author(), w.clone(), Amount::parse("0.01").unwrap()).unwrap_err().to_string();
    assert!(none.contains("only 0.00 EUR"), "{none}");
    let cash_point = key(61, 9).author();
    hub.enrol(cash_point, Role::CashPoint, &label("Edicola"), limits("100")).unwrap();
    let wrong = hub.grant_escrow(cash_point, w.clone(), Amount::parse("1").unwrap()).unwrap_err().to_string();
    assert!(wrong.contains("only school devices get allowances"), "{wrong}");
    assert!(hub.verify_log().unwrap().ok());
}

/// An operator who accepts in review a charge beyond a device's allowance is
/// told that it takes the wallet below its floor, and by how much; without a
/// second, explicit confirmation nothing is recorded.
#[test]
fn accepting_a_charge_below_the_floor_in_review_needs_a_second_confirmation() {
    let (mut hub, consumers) = hub_with_directory(62, 4);
    let realm = hub.realm();
    let mensa = service("mensa");
    let consumer = consumers.iter().find(|c| c.services.contains(&mensa)).expect("someone eats at the canteen");
    let w = WalletKey { consumer: consumer.id, service: mensa.clone() };
    let mut canteen = Device::new(key(62, 7));
    hub.enrol(canteen.author(), Role::SchoolDevice, &label("Mensa Collodi"), limits("100")).unwrap();
    let mut charge = |reference: &str, amount: &str| {
        canteen.sign(
            &realm,
            Body::ServiceCharge(ServiceCharge {
                reference: label(reference),
                wallet: w.clone(),
                amount: Amount::parse(amount).unwrap(),
            }),
        )
    };
    // The allowance covers the wallet down to its floor of -20.00; the next charge is beyond it.
    hub.grant_escrow(key(62, 7).author(), w.clone(), Amount::parse("20").unwrap()).unwrap();
    let within = charge("pasto-1", "20");
    let beyond = charge("pasto-2", "12");
    let small = charge("pasto-3", "1");
    assert!(deliver(&mut hub, &[within.clone(), beyond.clone(), small.clone()]).iter().all(Result::is_ok));
    assert_eq!(verdict_of(&mut hub, &within.id), Some(Verdict::Accepted));
    assert_eq!(reason_of(&mut hub, &beyond.id), Some(FlagReason::OverEscrow));
    let name = {
        let tx = hub.store_mut().read().unwrap();
        let row = tx.consumer(&consumer.id).unwrap().unwrap();
        format!("{} {}", row.surname, row.name)
    };

    let before = hub.store().dump().unwrap();
    let refused = hub
        .review_checked(&beyond.id, true, &label("Ufficio scuola"), &label("the family will pay"), false)
        .unwrap_err();
    assert!(matches!(refused, NodeError::BelowFloorInReview { .. }), "{refused}");
    let message = refused.to_string();
    let expected = format!(
        "accepting this service charge takes {name}'s mensa wallet to -32.00 EUR, 12.00 EUR below its floor of -20.00 EUR"
    );
    assert!(message.contains(&expected), "{message}");
    assert!(message.contains("to accept it all the same, confirm"), "{message}");
    assert!(!message.contains("--"), "the node names no flag of the command line: {message}");
    assert_eq!(hub.store().dump().unwrap(), before, "a refused review recorded something");
    assert_eq!(reason_of(&mut hub, &beyond.id), Some(FlagReason::OverEscrow));

    // Rejecting takes nothing from the wallet: no confirmation needed.
    let (_, below) = hub.review_checked(&small.id, false, &label("Ufficio scuola"), &label("no meal"), false).unwrap();
    assert!(below.is_empty());
    assert!(matches!(verdict_of(&mut hub, &small.id), Some(Verdict::ReviewRejected { .. })));

    let (_, below) =
        hub.review_checked(&beyond.id, true, &label("Ufficio scuola"), &label("the family will pay"), true).unwrap();
    assert_eq!(below.len(), 1);
    assert_eq!(below[0].short, Balance::parse("12").unwrap());
    assert!(matches!(verdict_of(&mut hub, &beyond.id), Some(Verdict::ReviewAccepted { .. })));
    assert_eq!(hub.wallet(&w.consumer, &w.service).unwrap().confirmed, Balance::parse("-32").unwrap());
    let again = hub.review_checked(&beyond.id, true, &label("Ufficio scuola"), &label("twice"), true).unwrap_err();
    assert!(matches!(again, NodeError::NotFlagged(_)), "{again}");
    assert!(hub.verify_log().unwrap().ok());
}

/// Accepting in review a charge that leaves the wallet above its floor, but
/// not once devices charge what is reserved for them, also needs the second
/// confirmation: the allowances the hub granted stay good (invariant 10).
#[test]
fn accepting_in_review_counts_what_devices_may_still_charge() {
    let (mut hub, consumers) = hub_with_directory(64, 4);
    let realm = hub.realm();
    let mensa = service("mensa");
    let consumer = consumers.iter().find(|c| c.services.contains(&mensa)).expect("someone eats at the canteen");
    let w = WalletKey { consumer: consumer.id, service: mensa.clone() };
    let (canteen, mut bus) = (Device::new(key(64, 7)), Device::new(key(64, 8)));
    for (device, name) in [(&canteen, "Mensa Collodi"), (&bus, "Mensa Rodari")] {
        hub.enrol(device.author(), Role::SchoolDevice, &label(name), limits("100")).unwrap();
    }
    hub.record_top_up(
        &[TopUpRequestLine { consumer: consumer.id, service: mensa.clone(), amount: Amount::parse("30").unwrap() }],
        PaymentMethod::Cash,
        None,
    )
    .unwrap();
    hub.grant_escrow(canteen.author(), w.clone(), Amount::parse("20").unwrap()).unwrap();
    // The other canteen has no allowance: its charge is flagged.
    let charge = bus.sign(
        &realm,
        Body::ServiceCharge(ServiceCharge {
            reference: label("pasto-1"),
            wallet: w.clone(),
            amount: Amount::parse("35").unwrap(),
        }),
    );
    deliver(&mut hub, std::slice::from_ref(&charge));
    assert_eq!(reason_of(&mut hub, &charge.id), Some(FlagReason::OverEscrow));
    let message =
        hub.review_checked(&charge.id, true, &label("Ufficio scuola"), &label("paid"), false).unwrap_err().to_string();
    assert!(
        message.contains("mensa wallet to -5.00 EUR, and devices may still charge the 20.00 EUR reserved for them there: 5.00 EUR below its floor of -20.00 EUR"),
        "{message}"
    );
}
