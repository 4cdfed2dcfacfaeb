//! What the hub flags for review and never drops: top-ups of a revoked
//! device, what breaks the hub's rules or a device's offline limits,
//! receipts out of order; and its decisions split to fit.

use std::sync::Arc;

use saldo_node::node::Node;
use saldo_node::state::Applied;
use saldo_node::store::Store;
use saldo_sync::{
    Amount, Balance, Body, ConsumerId, FlagReason, OfflineLimits, ReceiptNo, ReceiptRange, Role, Seq, SignedOp,
    Verdict, WalletKey,
};

use super::{
    Device, StepClock, deliver, hub_with_directory, key, label, limits, reason_of, service, setup, twelve_fifty,
    verdict_of,
};

#[test]
fn a_top_up_from_a_revoked_device_is_kept_flagged_and_counts_only_after_review() {
    let mut s = setup();
    let realm = s.hub.realm();
    let w = s.wallet(0);
    let before_revocation = s.cash_point.top_up(&realm, vec![(w.clone(), twelve_fifty())]);
    deliver(&mut s.hub, std::slice::from_ref(&before_revocation));
    s.hub.revoke(s.cash_point.author(), &label("terminal stolen")).unwrap();
    let after = s.cash_point.top_up(&realm, vec![(w.clone(), Amount::parse("30").unwrap())]);
    let results = deliver(&mut s.hub, std::slice::from_ref(&after));
    assert!(matches!(results[0], Ok(Applied::New)), "kept, not refused: {results:?}");
    assert_eq!(verdict_of(&mut s.hub, &before_revocation.id), Some(Verdict::Accepted));
    assert_eq!(reason_of(&mut s.hub, &after.id), Some(FlagReason::RevokedAuthor));
    assert_eq!(s.hub.wallet(&w.consumer, &w.service).unwrap().confirmed, Balance::parse("12.50").unwrap());
    let flagged = s.hub.flagged(10).unwrap();
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0].op, after.id);
    s.hub.review(&after.id, true, &label("Ufficio scuola"), &label("cash handed over")).unwrap();
    assert_eq!(s.hub.wallet(&w.consumer, &w.service).unwrap().confirmed, Balance::parse("42.50").unwrap());
    assert!(s.hub.flagged(10).unwrap().is_empty());
    assert!(s.hub.verify_log().unwrap().ok());
}

#[test]
fn the_hub_flags_what_breaks_its_rules_and_never_drops_it() {
    let mut s = setup();
    let realm = s.hub.realm();
    let w = s.wallet(0);
    let not_enrolled = WalletKey { consumer: w.consumer, service: service("piscina") };
    let unknown = WalletKey { consumer: ConsumerId([9; 16]), service: service("mensa") };
    let over = s.cash_point.top_up(&realm, vec![(w.clone(), Amount::parse("250").unwrap())]);
    let wrong_service = s.cash_point.top_up(&realm, vec![(not_enrolled, twelve_fifty())]);
    let nobody = s.cash_point.top_up(&realm, vec![(unknown, twelve_fifty())]);
    let good = s.cash_point.top_up(&realm, vec![(w.clone(), twelve_fifty())]);
    let reversal = s.cash_point.sign(&realm, Body::Reversal { target: good.id, reason: label("typo") });
    let again = s.cash_point.sign(&realm, Body::Reversal { target: good.id, reason: label("typo") });
    let results = deliver(
        &mut s.hub,
        &[over.clone(), wrong_service.clone(), nobody.clone(), good.clone(), reversal.clone(), again.clone()],
    );
    assert!(results.iter().all(|r| matches!(r, Ok(Applied::New))));
    assert_eq!(reason_of(&mut s.hub, &over.id), Some(FlagReason::OverOperationLimit));
    assert_eq!(reason_of(&mut s.hub, &wrong_service.id), Some(FlagReason::NotEnrolledInService));
    assert_eq!(reason_of(&mut s.hub, &nobody.id), Some(FlagReason::UnknownConsumer));
    assert_eq!(verdict_of(&mut s.hub, &good.id), Some(Verdict::Accepted));
    assert_eq!(verdict_of(&mut s.hub, &reversal.id), Some(Verdict::Accepted));
    assert_eq!(reason_of(&mut s.hub, &again.id), Some(FlagReason::ReversalNotAllowed));
    assert_eq!(
        s.hub.wallet(&w.consumer, &w.service).unwrap().confirmed,
        Balance::ZERO,
        "the reversed top-up no longer counts"
    );
    assert_eq!(s.hub.flagged(10).unwrap().len(), 4);
}

/// A device that records beyond its offline limits anyway (its software
/// altered, its clock turned back) is flagged by the hub, never dropped: the
/// hub checks each operation against what the device held of the hub's log
/// when it recorded: the verdicts in it, and how recent it was.
#[test]
fn the_hub_flags_what_a_device_recorded_beyond_its_offline_limits() {
    let (mut hub, consumers) = hub_with_directory(61, 2);
    let realm = hub.realm();
    let mut device = Device::new(key(61, 6));
    let limits = OfflineLimits {
        per_operation: Amount::parse("40").unwrap(),
        unconfirmed_total: Balance::parse("100").unwrap(),
        offline_secs_max: 3600,
    };
    hub.enrol(device.author(), Role::CashPoint, &label("Edicola"), limits).unwrap();
    let w = WalletKey { consumer: consumers[0].id, service: consumers[0].services[0].clone() };
    let forty = Amount::parse("40").unwrap();
    let hub_head = |hub: &mut Node| hub.store_mut().read().unwrap().author(&realm.hub()).unwrap().unwrap().head_seq;
    device.hub_seen = hub_head(&mut hub);

    // Three top-ups of 40 EUR without a verdict in between: 80 EUR await
    // the hub's verdict when the third is recorded, 120 EUR with it.
    let ops: Vec<SignedOp> = (0..3).map(|_| device.top_up(&realm, vec![(w.clone(), forty)])).collect();
    assert!(deliver(&mut hub, &ops).iter().all(|r| matches!(r, Ok(Applied::New))));
    assert_eq!(verdict_of(&mut hub, &ops[1].id), Some(Verdict::Accepted));
    assert_eq!(reason_of(&mut hub, &ops[2].id), Some(FlagReason::OverUnconfirmedLimit));
    // Holding the hub's verdicts, the device has room again.
    device.hub_seen = hub_head(&mut hub);
    let after = device.top_up(&realm, vec![(w.clone(), forty)]);
    // A day's close is over the per-operation limit and bound by none.
    let close = device.sign(
        &realm,
        Body::DailyClose {
            day: 20_260_922,
            receipts: Some(ReceiptRange { first: ReceiptNo(1), last: ReceiptNo(4) }),
            count: 3,
            total: Balance::parse("120").unwrap(),
        },
    );
    // Two hours after the newest hub operation it holds.
    device.later_ms = 2 * 3600 * 1000;
    let late = device.top_up(&realm, vec![(w.clone(), forty)]);
    // Saying it holds hub operations the hub has not written.
    device.later_ms = 0;
    device.hub_seen = Seq(device.hub_seen.0 + 100);
    let claim = device.top_up(&realm, vec![(w.clone(), forty)]);
    let results = deliver(&mut hub, &[after.clone(), close.clone(), late.clone(), claim.clone()]);
    assert!(results.iter().all(|r| matches!(r, Ok(Applied::New))), "{results:?}");
    assert_eq!(verdict_of(&mut hub, &after.id), Some(Verdict::Accepted));
    assert_eq!(verdict_of(&mut hub, &close.id), Some(Verdict::Accepted));
    assert_eq!(reason_of(&mut hub, &late.id), Some(FlagReason::OfflineTooLong));
    assert_eq!(reason_of(&mut hub, &claim.id), Some(FlagReason::OfflineTooLong));
    let flagged = hub.flagged(10).unwrap();
    assert_eq!(flagged.len(), 3);
    assert!(
        flagged.iter().any(|f| f.detail.contains("1 h 59 min after the newest hub operation the device held")),
        "{flagged:?}"
    );
    // Kept, and counted only as the hub decided: 3 × 40 EUR accepted.
    assert_eq!(hub.wallet(&w.consumer, &w.service).unwrap().confirmed, Balance::parse("120").unwrap());
}

/// A revoked device delivers more flagged top-ups at once than one decision
/// operation can carry with their reasons: the hub splits its decisions by
/// size as well as by count, and a replica agrees with every verdict.
#[test]
fn many_flagged_verdicts_are_split_into_decisions_that_fit() {
    let (mut hub, consumers) = hub_with_directory(51, 3);
    let realm = hub.realm();
    let mut device = Device::new(key(51, 6));
    hub.enrol(device.author(), Role::CashPoint, &label("Cassa smarrita"), limits("100")).unwrap();
    hub.revoke(device.author(), &label("smarrita")).unwrap();
    let w = WalletKey { consumer: consumers[0].id, service: consumers[0].services[0].clone() };
    let ops: Vec<SignedOp> = (0..2_000).map(|_| device.top_up(&realm, vec![(w.clone(), twelve_fifty())])).collect();
    assert!(deliver(&mut hub, &ops).iter().all(Result::is_ok));
    assert_eq!(hub.flagged(10_000).unwrap().len(), 2_000);
    let all = hub.all_operations().unwrap();
    let decisions = all
        .iter()
        .filter_map(|b| match SignedOp::decode(b).unwrap().op.body {
            Body::Decisions(d) => Some(d.len()),
            _ => None,
        })
        .collect::<Vec<_>>();
    assert!(decisions.len() >= 3 && decisions.iter().all(|n| *n < 1024), "{decisions:?}");
    let mut replica =
        Node::replica(Store::open_in_memory().unwrap(), realm, None, Arc::new(StepClock::default())).unwrap();
    let mut pending = all;
    while !pending.is_empty() {
        let results = replica.ingest(&pending).unwrap();
        let retry: Vec<Vec<u8>> = pending
            .into_iter()
            .zip(results)
            .filter_map(|(op, r)| match r {
                Err(e) if e.is_retryable() => Some(op),
                Err(e) => panic!("{e}"),
                Ok(_) => None,
            })
            .collect();
        pending = retry;
    }
    assert_eq!(replica.state_digest().unwrap(), hub.state_digest().unwrap());
}

/// A device numbers its receipts in the order of its log: a receipt used
/// already, or lower than one it used, is flagged and does not count.
#[test]
fn a_receipt_not_above_the_devices_last_one_is_flagged() {
    let mut s = setup();
    let realm = s.hub.realm();
    let w = s.wallet(0);
    let first = s.cash_point.top_up(&realm, vec![(w.clone(), twelve_fifty())]);
    s.cash_point.receipts += 3;
    let fifth = s.cash_point.top_up(&realm, vec![(w.clone(), twelve_fifty())]);
    s.cash_point.receipts = 0;
    let reused = s.cash_point.top_up(&realm, vec![(w.clone(), twelve_fifty())]);
    s.cash_point.receipts = 2;
    let out_of_order = s.cash_point.top_up(&realm, vec![(w.clone(), twelve_fifty())]);
    s.cash_point.receipts = 5;
    let sixth = s.cash_point.top_up(&realm, vec![(w.clone(), twelve_fifty())]);
    let results =
        deliver(&mut s.hub, &[first.clone(), fifth.clone(), reused.clone(), out_of_order.clone(), sixth.clone()]);
    assert!(results.iter().all(|r| matches!(r, Ok(Applied::New))));
    for accepted in [&first, &fifth, &sixth] {
        assert_eq!(verdict_of(&mut s.hub, &accepted.id), Some(Verdict::Accepted));
    }
    assert_eq!(reason_of(&mut s.hub, &reused.id), Some(FlagReason::DuplicateReceipt), "receipt 1 again");
    assert_eq!(reason_of(&mut s.hub, &out_of_order.id), Some(FlagReason::DuplicateReceipt), "receipt 3 after 5");
    assert_eq!(s.hub.wallet(&w.consumer, &w.service).unwrap().confirmed, Balance::parse("37.50").unwrap());
}
