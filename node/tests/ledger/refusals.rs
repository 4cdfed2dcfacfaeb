//! Refusals that change nothing: a forged or misattributed signature, an
//! unknown author, another realm, a device beyond its role, a gap, a
//! duplicate, the hub's own operations that break the rules; and what is
//! kept instead of refused: forks and equivocations as evidence, up to a
//! bound.

use saldo_node::node::NodeError;
use saldo_node::state::{Applied, IngestError};
use saldo_sync::{
    Amount, AuthorId, Balance, Body, FlagReason, OpId, Operation, PaymentMethod, RealmId, ReceiptNo, Role, Seq,
    SignedOp, TopUp, TopUpLine, Transfer, Verdict,
};

use super::{Device, assert_refused, deliver, key, label, limits, reason_of, setup, twelve_fifty, verdict_of};

#[test]
fn a_forged_signature_is_refused_and_changes_nothing() {
    let mut s = setup();
    let realm = s.hub.realm();
    let wallet = s.wallet(0);
    let op = s.cash_point.top_up(&realm, vec![(wallet, twelve_fifty())]);
    let mut bytes = op.to_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    let before = s.dump();
    let results = s.hub.ingest(&[bytes]).unwrap();
    assert!(matches!(&results[0], Err(IngestError::Signature(_))), "{results:?}");
    assert!(results[0].as_ref().unwrap_err().to_string().contains("does not verify"));
    assert_eq!(s.dump(), before);
}

#[test]
fn an_operation_signed_by_someone_else_is_refused_and_changes_nothing() {
    let mut s = setup();
    let realm = s.hub.realm();
    let wallet = s.wallet(0);
    // A valid signature, but by another key claiming to be the cash point.
    let mut impostor = Device::new(key(7, 66));
    let op = impostor.top_up(&realm, vec![(wallet, twelve_fifty())]);
    let forged = Operation { author: s.cash_point.author(), ..op.op.clone() };
    let signed_by_impostor = forged.encode();
    let mut bytes = signed_by_impostor;
    bytes.extend_from_slice(&op.to_bytes()[op.to_bytes().len() - 64..]);
    let before = s.dump();
    let results = s.hub.ingest(&[bytes]).unwrap();
    assert!(matches!(&results[0], Err(IngestError::Signature(_))), "{results:?}");
    assert_eq!(s.dump(), before);
}

/// An operation that does not link to its author's head was signed after
/// another operation at the head's seq: the device forked (restored from an
/// older copy, cloned). It is real money, so it is kept as evidence and
/// flagged for review, never refused, and the device is frozen.
#[test]
fn an_operation_that_does_not_link_to_its_authors_head_is_kept_as_evidence_of_a_fork() {
    let mut s = setup();
    let realm = s.hub.realm();
    let (w0, w1) = (s.wallet(0), s.wallet(1));
    let first = s.cash_point.top_up(&realm, vec![(w0, twelve_fifty())]);
    deliver(&mut s.hub, &[first]);
    s.cash_point.head = OpId([3; 32]);
    let other_branch = s.cash_point.top_up(&realm, vec![(w1.clone(), twelve_fifty())]);
    let after = s.cash_point.top_up(&realm, vec![(w1.clone(), twelve_fifty())]);
    let results = deliver(&mut s.hub, &[other_branch.clone(), after.clone()]);
    assert!(results.iter().all(|r| matches!(r, Ok(Applied::Equivocation { .. }))), "{results:?}");
    for op in [&other_branch, &after] {
        match verdict_of(&mut s.hub, &op.id) {
            Some(Verdict::Flagged { reason: FlagReason::FrozenAuthor, detail }) => {
                assert!(detail.as_str().contains("second branch"), "{detail:?}")
            }
            other => panic!("{other:?}"),
        }
    }
    let frozen = s.hub.store_mut().read().unwrap().author(&s.cash_point.author()).unwrap().unwrap().frozen_at;
    assert_eq!(frozen, Some(Seq(2)));
    assert_eq!(s.hub.wallet(&w1.consumer, &w1.service).unwrap().confirmed, Balance::parse("0").unwrap());
    // An operation further on whose predecessor is not held is still a gap.
    s.cash_point.head = OpId([4; 32]);
    s.cash_point.seq += 5;
    let gap = s.cash_point.top_up(&realm, vec![(w1, twelve_fifty())]);
    assert_refused(&mut s, &[gap], |e| matches!(e, IngestError::ChainGap { .. }));
}

#[test]
fn an_unknown_author_is_refused_and_changes_nothing() {
    let mut s = setup();
    let realm = s.hub.realm();
    let wallet = s.wallet(0);
    let mut stranger = Device::new(key(7, 77));
    let op = stranger.top_up(&realm, vec![(wallet, twelve_fifty())]);
    assert_refused(&mut s, &[op], |e| matches!(e, IngestError::UnknownAuthor { .. }));
}

#[test]
fn an_operation_of_another_realm_is_refused_and_changes_nothing() {
    let mut s = setup();
    let wallet = s.wallet(0);
    let op = s.cash_point.top_up(&RealmId([5; 32]), vec![(wallet, twelve_fifty())]);
    assert_refused(&mut s, &[op], |e| matches!(e, IngestError::Signature(_)));
}

#[test]
fn a_cash_point_may_not_enrol_devices_or_edit_the_directory() {
    let mut s = setup();
    let realm = s.hub.realm();
    let op = s.cash_point.sign(
        &realm,
        Body::Enrol { device: AuthorId([1; 32]), role: Role::CashPoint, name: label("rogue"), limits: limits("1") },
    );
    assert_refused(&mut s, &[op], |e| matches!(e, IngestError::NotAllowed { .. }));
}

#[test]
fn a_gap_in_a_log_is_refused_until_the_missing_operation_arrives() {
    let mut s = setup();
    let realm = s.hub.realm();
    let w = s.wallet(0);
    let first = s.cash_point.top_up(&realm, vec![(w.clone(), twelve_fifty())]);
    let second = s.cash_point.top_up(&realm, vec![(w.clone(), twelve_fifty())]);
    assert_refused(&mut s, std::slice::from_ref(&second), |e| {
        matches!(e, IngestError::ChainGap { expected: Seq(1), got: Seq(2), .. })
    });
    let results = deliver(&mut s.hub, &[first, second]);
    assert!(results.iter().all(|r| matches!(r, Ok(Applied::New))));
    assert_eq!(s.hub.wallet(&w.consumer, &w.service).unwrap().confirmed, Balance::parse("25").unwrap());
}

#[test]
fn a_duplicate_changes_nothing() {
    let mut s = setup();
    let realm = s.hub.realm();
    let w = s.wallet(0);
    let op = s.cash_point.top_up(&realm, vec![(w, twelve_fifty())]);
    deliver(&mut s.hub, std::slice::from_ref(&op));
    let before = s.dump();
    assert!(matches!(deliver(&mut s.hub, &[op])[0], Ok(Applied::Duplicate)));
    assert_eq!(s.dump(), before);
}

#[test]
fn an_equivocation_keeps_both_operations_as_evidence_and_freezes_the_author() {
    let mut s = setup();
    let realm = s.hub.realm();
    let (w0, w1) = (s.wallet(0), s.wallet(1));
    let original = s.cash_point.top_up(&realm, vec![(w0.clone(), twelve_fifty())]);
    let fork = s.cash_point.fork(
        &realm,
        Body::TopUp(TopUp {
            receipt: ReceiptNo(1),
            lines: vec![TopUpLine { wallet: w1.clone(), amount: twelve_fifty() }],
            method: PaymentMethod::Cash,
            operator: None,
        }),
    );
    deliver(&mut s.hub, std::slice::from_ref(&original));
    let results = deliver(&mut s.hub, std::slice::from_ref(&fork));
    assert!(matches!(results[0], Ok(Applied::Equivocation { seq: Seq(1) })), "{results:?}");
    {
        let tx = s.hub.store_mut().read().unwrap();
        assert!(tx.op_bytes(&original.id).unwrap().is_some());
        assert!(tx.op_bytes(&fork.id).unwrap().is_some(), "the second operation is kept as evidence");
        assert_eq!(tx.equivocation_count().unwrap(), 1);
        assert_eq!(tx.author(&s.cash_point.author()).unwrap().unwrap().frozen_at, Some(Seq(1)));
    }
    assert_eq!(verdict_of(&mut s.hub, &original.id), Some(Verdict::Accepted));
    assert_eq!(reason_of(&mut s.hub, &fork.id), Some(FlagReason::FrozenAuthor));
    assert_eq!(s.hub.wallet(&w1.consumer, &w1.service).unwrap().confirmed, Balance::ZERO, "the fork does not count");
    // Everything the frozen device records later is flagged for review.
    let later = s.cash_point.top_up(&realm, vec![(w0.clone(), twelve_fifty())]);
    assert!(deliver(&mut s.hub, std::slice::from_ref(&later))[0].is_ok());
    assert_eq!(reason_of(&mut s.hub, &later.id), Some(FlagReason::FrozenAuthor));
    assert!(s.hub.verify_log().unwrap().ok());
}

#[test]
fn evidence_of_equivocation_is_kept_up_to_a_bound() {
    let mut s = setup();
    let realm = s.hub.realm();
    let w = s.wallet(0);
    let original = s.cash_point.top_up(&realm, vec![(w.clone(), twelve_fifty())]);
    deliver(&mut s.hub, &[original]);
    let fork = |n: i64| {
        s.cash_point.fork(
            &realm,
            Body::TopUp(TopUp {
                receipt: ReceiptNo(1),
                lines: vec![TopUpLine { wallet: w.clone(), amount: Amount::from_minor(n).unwrap() }],
                method: PaymentMethod::Cash,
                operator: None,
            }),
        )
    };
    let forks: Vec<SignedOp> = (1..=saldo_node::state::EVIDENCE_PER_AUTHOR_MAX as i64).map(fork).collect();
    let one_more = fork(123_456);
    assert!(deliver(&mut s.hub, &forks).iter().all(|r| matches!(r, Ok(Applied::Equivocation { .. }))));
    assert_refused(&mut s, &[one_more], |e| matches!(e, IngestError::EvidenceFull { .. }));
}

#[test]
fn the_hub_refuses_its_own_operations_that_break_the_rules() {
    let mut s = setup();
    let (from, to) = (s.wallet(0), s.wallet(1));
    let before = s.dump();
    let refused = s.hub.record(Body::Transfer(Transfer { from, to, amount: twelve_fifty(), note: label("siblings") }));
    assert!(matches!(&refused, Err(NodeError::Refused(why)) if why.contains("does not cover")), "{refused:?}");
    assert_eq!(s.dump(), before);
}
