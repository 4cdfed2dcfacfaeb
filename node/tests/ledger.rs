//! The ledger at the boundary of a node: operations in, state out.
//! Real SQLite (in memory), real signatures, real Automerge; nothing mocked.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use saldo_node::directory::ServiceRecord;
use saldo_node::node::{Node, NodeError, TopUpRequestLine};
use saldo_node::state::{Applied, IngestError};
use saldo_node::store::Store;
use saldo_node::{Clock, generate, import};
use saldo_sync::{
    Amount, AuthorId, Balance, Body, ConsumerId, DeviceKey, DuePayment, FlagReason, Hlc, Label, OfflineLimits, OpId,
    Operation, PaymentMethod, RealmId, ReceiptNo, ReceiptRange, Role, Seq, ServiceCharge, ServiceId, SignedOp, TopUp,
    TopUpLine, Transfer, Verdict, WalletKey,
};

/// A clock that moves one millisecond per reading: deterministic runs.
#[derive(Debug, Default)]
struct StepClock(AtomicU64);

impl Clock for StepClock {
    fn now_ms(&self) -> u64 {
        1_790_000_000_000 + self.0.fetch_add(1, Ordering::SeqCst)
    }
}

fn key(seed: u64, n: u8) -> DeviceKey {
    let bytes = blake3::derive_key("saldo test key", format!("{seed}/{n}").as_bytes());
    DeviceKey::from_secret_bytes(&bytes)
}

fn label(text: &str) -> Label {
    Label::parse(text).unwrap()
}

fn service(name: &str) -> ServiceId {
    ServiceId::parse(name).unwrap()
}

/// A device outside the hub signing its own log.
struct Device {
    key: DeviceKey,
    seq: u64,
    head: OpId,
    prev_of_head: OpId,
    receipts: u64,
    top_ups: Vec<OpId>,
    /// How far ahead of its first operation the device's clock has moved.
    later_ms: u64,
    /// How much of the hub's log the device says it holds: the genesis,
    /// unless a test says more.
    hub_seen: Seq,
}

impl Device {
    fn new(key: DeviceKey) -> Device {
        Device {
            key,
            seq: 0,
            head: OpId::NONE,
            prev_of_head: OpId::NONE,
            receipts: 0,
            top_ups: Vec::new(),
            later_ms: 0,
            hub_seen: Seq(1),
        }
    }

    fn author(&self) -> AuthorId {
        self.key.author()
    }

    fn sign(&mut self, realm: &RealmId, body: Body) -> SignedOp {
        self.seq += 1;
        let op = Operation {
            author: self.author(),
            seq: Seq(self.seq),
            prev: self.head,
            hlc: Hlc::from_parts(1_790_000_000_000 + self.later_ms + self.seq, 0),
            hub_seen: self.hub_seen,
            body,
        }
        .sign(realm, &self.key);
        self.prev_of_head = self.head;
        self.head = op.id;
        op
    }

    /// A second, different operation at the sequence number of the last one.
    fn fork(&self, realm: &RealmId, body: Body) -> SignedOp {
        Operation {
            author: self.author(),
            seq: Seq(self.seq),
            prev: self.prev_of_head,
            hlc: Hlc::from_parts(1_790_000_000_000 + self.seq, 7),
            hub_seen: self.hub_seen,
            body,
        }
        .sign(realm, &self.key)
    }

    fn top_up(&mut self, realm: &RealmId, lines: Vec<(WalletKey, Amount)>) -> SignedOp {
        self.receipts += 1;
        let op = self.sign(
            realm,
            Body::TopUp(TopUp {
                receipt: ReceiptNo(self.receipts),
                lines: lines.into_iter().map(|(wallet, amount)| TopUpLine { wallet, amount }).collect(),
                method: PaymentMethod::Cash,
                operator: None,
            }),
        );
        self.top_ups.push(op.id);
        op
    }
}

struct Consumer {
    id: ConsumerId,
    services: Vec<ServiceId>,
}

/// A hub with a small directory: `consumers` children from the generator,
/// the canteen with a floor of -20.00 EUR.
fn hub_with_directory(seed: u64, consumers: u64) -> (Node, Vec<Consumer>) {
    let mut hub = Node::create_hub(
        Store::open_in_memory().unwrap(),
        key(seed, 0),
        key(seed, 1),
        &label("Comune di Prova"),
        Arc::new(StepClock::default()),
    )
    .unwrap();
    let mut csv = Vec::new();
    generate::write_csv(&mut csv, consumers, seed).unwrap();
    let report = import::import_csv(&mut hub, csv.as_slice(), &|_, _| {}).unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    hub.put_service(&ServiceRecord {
        id: service("mensa"),
        name: label("Mensa"),
        floor: Balance::parse("-20").unwrap(),
        tariff: Some(Amount::parse("4.50").unwrap()),
        reminders: Vec::new(),
    })
    .unwrap();
    let text = String::from_utf8(csv).unwrap();
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let code = line.split(',').nth(5).unwrap();
        let found = hub.search(code, 5).unwrap();
        let view = found.iter().find(|c| c.fiscal_code == code).unwrap();
        out.push(Consumer {
            id: ConsumerId::from_hex(&view.consumer).unwrap(),
            services: view.services.iter().map(|s| service(s)).collect(),
        });
    }
    (hub, out)
}

fn limits(per_operation: &str) -> OfflineLimits {
    OfflineLimits {
        per_operation: Amount::parse(per_operation).unwrap(),
        unconfirmed_total: Balance::parse("10000").unwrap(),
        offline_secs_max: 3600,
    }
}

fn deliver(node: &mut Node, ops: &[SignedOp]) -> Vec<Result<Applied, IngestError>> {
    let bytes: Vec<Vec<u8>> = ops.iter().map(SignedOp::to_bytes).collect();
    node.ingest(&bytes).unwrap()
}

fn verdict_of(node: &mut Node, id: &OpId) -> Option<Verdict> {
    let tx = node.store_mut().read().unwrap();
    tx.verdict(id).unwrap().map(|v| v.verdict)
}

fn reason_of(node: &mut Node, id: &OpId) -> Option<FlagReason> {
    match verdict_of(node, id) {
        Some(Verdict::Flagged { reason, .. }) => Some(reason),
        _ => None,
    }
}

/// A realm history built at random from `seed`: a hub, two cash points and a
/// school device recording top-ups, reversals, charges, due payments and
/// daily closes, delivered to the hub in random interleavings; the hub's own
/// top-ups, transfers, a revocation, reviews, and sometimes an equivocation.
/// Returns the hub and every operation it holds.
fn build_history(seed: u64) -> (Node, Vec<Vec<u8>>) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let (mut hub, consumers) = hub_with_directory(seed, 8);
    let realm = hub.realm();
    let mut devices = [Device::new(key(seed, 2)), Device::new(key(seed, 3)), Device::new(key(seed, 4))];
    for (i, device) in devices.iter().enumerate() {
        let role = if i < 2 { Role::CashPoint } else { Role::SchoolDevice };
        hub.enrol(device.author(), role, &label(&format!("device {i}")), limits("100")).unwrap();
    }
    let mut queues: Vec<VecDeque<SignedOp>> = vec![VecDeque::new(); devices.len()];
    let mut revoked = false;
    let mut references = 0u32;
    let wallet = |rng: &mut fastrand::Rng, enrolled_only: bool| -> WalletKey {
        let consumer = &consumers[rng.usize(..consumers.len())];
        let service = if enrolled_only || rng.u8(..10) > 0 {
            consumer.services[rng.usize(..consumer.services.len())].clone()
        } else {
            service("trasporto")
        };
        WalletKey { consumer: consumer.id, service }
    };
    let amount = |rng: &mut fastrand::Rng, max_cents: i64| Amount::from_minor(rng.i64(1..=max_cents)).unwrap();
    let deliver_some = |hub: &mut Node, queues: &mut Vec<VecDeque<SignedOp>>, rng: &mut fastrand::Rng, all: bool| {
        let mut batch = Vec::new();
        loop {
            let open: Vec<usize> = (0..queues.len()).filter(|i| !queues[*i].is_empty()).collect();
            if open.is_empty() || (!all && rng.u8(..4) == 0) {
                break;
            }
            let q = open[rng.usize(..open.len())];
            batch.push(queues[q].pop_front().unwrap());
        }
        for result in deliver(hub, &batch) {
            assert!(matches!(result, Ok(Applied::New | Applied::Equivocation { .. })), "{result:?}");
        }
    };
    for _ in 0..rng.usize(20..60) {
        match rng.u8(..100) {
            0..40 => {
                let d = rng.usize(..2);
                let first = wallet(&mut rng, false);
                let mut lines = vec![(first.clone(), amount(&mut rng, 12_000))];
                if rng.bool() {
                    let second = wallet(&mut rng, true);
                    if second != first {
                        lines.push((second, amount(&mut rng, 3_000)));
                    }
                }
                let op = devices[d].top_up(&realm, lines);
                queues[d].push_back(op);
            }
            40..50 => {
                let d = rng.usize(..2);
                if let Some(target) = devices[d].top_ups.get(rng.usize(..devices[d].top_ups.len().max(1))).copied() {
                    let op = devices[d].sign(&realm, Body::Reversal { target, reason: label("wrong amount") });
                    queues[d].push_back(op);
                }
            }
            50..65 => {
                references += 1;
                let reference = if rng.u8(..20) == 0 { "meal-1".to_string() } else { format!("meal-{references}") };
                let op = devices[2].sign(
                    &realm,
                    Body::ServiceCharge(ServiceCharge {
                        reference: label(&reference),
                        wallet: wallet(&mut rng, true),
                        amount: amount(&mut rng, 1_500),
                    }),
                );
                queues[2].push_back(op);
            }
            65..75 => {
                let w = wallet(&mut rng, true);
                let line =
                    TopUpRequestLine { consumer: w.consumer, service: w.service, amount: amount(&mut rng, 5_000) };
                hub.record_top_up(&[line], PaymentMethod::DebitCard, None).unwrap();
            }
            75..80 => {
                let (from, to) = (wallet(&mut rng, true), wallet(&mut rng, true));
                if from != to {
                    let body =
                        Body::Transfer(Transfer { from, to, amount: amount(&mut rng, 2_000), note: label("sibling") });
                    match hub.record(body) {
                        Ok(_) | Err(NodeError::Refused(_)) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            80..85 => deliver_some(&mut hub, &mut queues, &mut rng, false),
            85..88 if !revoked => {
                revoked = true;
                hub.revoke(devices[1].author(), &label("terminal stolen")).unwrap();
            }
            88..93 => {
                if let Some(flagged) = hub.flagged(100).unwrap().first().cloned() {
                    hub.review(&flagged.op, rng.bool(), &label("Ufficio scuola"), &label("checked")).unwrap();
                }
            }
            93..96 => {
                let d = rng.usize(..2);
                devices[d].receipts += 1;
                let receipt = ReceiptNo(devices[d].receipts);
                let due = if rng.bool() { "bus-2026-q1" } else { "bus-2026-q2" };
                let op = devices[d].sign(
                    &realm,
                    Body::DuePayment(DuePayment {
                        due: label(due),
                        receipt,
                        wallet: wallet(&mut rng, true),
                        amount: amount(&mut rng, 9_000),
                        method: PaymentMethod::Cash,
                        operator: None,
                    }),
                );
                queues[d].push_back(op);
            }
            _ => {
                let d = rng.usize(..2);
                let count = devices[d].receipts;
                if count > 0 {
                    let receipts = Some(ReceiptRange { first: ReceiptNo(1), last: ReceiptNo(count) });
                    let op = devices[d].sign(
                        &realm,
                        Body::DailyClose {
                            day: 20_261_127,
                            receipts,
                            count: count as u32,
                            total: Balance::parse("10").unwrap(),
                        },
                    );
                    queues[d].push_back(op);
                }
            }
        }
    }
    if rng.bool() && devices[0].seq > 0 {
        let w = wallet(&mut rng, true);
        let fork = devices[0].fork(
            &realm,
            Body::TopUp(TopUp {
                receipt: ReceiptNo(999),
                lines: vec![TopUpLine { wallet: w, amount: amount(&mut rng, 5_000) }],
                method: PaymentMethod::Cash,
                operator: None,
            }),
        );
        queues[0].push_back(fork);
    }
    deliver_some(&mut hub, &mut queues, &mut rng, true);
    if let Some(flagged) = hub.flagged(100).unwrap().last().cloned() {
        hub.review(&flagged.op, true, &label("Ufficio scuola"), &label("cash counted")).unwrap();
    }
    let ops = hub.all_operations().unwrap();
    (hub, ops)
}

/// Stored, or refused by a device because only the hub keeps it (contact data).
fn kept_by_a_device(result: &Result<Applied, IngestError>) -> bool {
    matches!(result, Ok(_) | Err(IngestError::HubOnly))
}

/// Delivers `ops` to a fresh replica in a random order with random
/// duplicates and batch sizes; operations refused only because a
/// predecessor has not arrived are delivered again, as sync does.
fn replay(realm: RealmId, own: Option<DeviceKey>, ops: &[Vec<u8>], rng: &mut fastrand::Rng) -> Node {
    let device = own.as_ref().is_some_and(|key| key.author() != realm.hub());
    let mut replica =
        Node::replica(Store::open_in_memory().unwrap(), realm, own, Arc::new(StepClock::default())).unwrap();
    let mut pending: Vec<Vec<u8>> = ops.to_vec();
    for _ in 0..rng.usize(..ops.len().max(1)) {
        pending.push(ops[rng.usize(..ops.len())].clone());
    }
    while !pending.is_empty() {
        rng.shuffle(&mut pending);
        let mut retry = Vec::new();
        let mut progress = false;
        let mut rest = pending.as_slice();
        while !rest.is_empty() {
            let (batch, tail) = rest.split_at(rng.usize(1..=rest.len()));
            rest = tail;
            for (bytes, result) in batch.iter().zip(replica.ingest(batch).unwrap()) {
                match result {
                    Ok(Applied::New | Applied::Equivocation { .. }) => progress = true,
                    Ok(Applied::Duplicate) => {}
                    Err(e) if e.is_retryable() => retry.push(bytes.clone()),
                    Err(IngestError::HubOnly) if device => {}
                    Err(e) => panic!("a valid operation was refused: {e}"),
                }
            }
        }
        assert!(progress || retry.is_empty(), "delivery made no progress with {} operations left", retry.len());
        pending = retry;
    }
    replica
}

/// An independent model of the balances, computed straight from the set of
/// operations: an operation counts when the hub recorded it, or when the
/// hub's latest verdict on it accepts it, unless a counted reversal targets it.
fn model_balances(realm: RealmId, ops: &[Vec<u8>]) -> Vec<String> {
    use std::collections::{BTreeMap, HashMap};
    let decoded: Vec<SignedOp> = ops.iter().map(|b| SignedOp::decode(b).unwrap()).collect();
    let mut verdicts: HashMap<OpId, (Seq, bool)> = HashMap::new();
    for op in &decoded {
        if let Body::Decisions(decisions) = &op.op.body {
            for d in decisions {
                let entry = verdicts.entry(d.target).or_insert((op.op.seq, d.verdict.counts()));
                if op.op.seq >= entry.0 {
                    *entry = (op.op.seq, d.verdict.counts());
                }
            }
        }
    }
    let accepted = |op: &SignedOp| op.op.author == realm.hub() || verdicts.get(&op.id).is_some_and(|v| v.1);
    let reversed: Vec<OpId> = decoded
        .iter()
        .filter(|op| accepted(op))
        .filter_map(|op| match op.op.body {
            Body::Reversal { target, .. } => Some(target),
            _ => None,
        })
        .collect();
    let mut balances: BTreeMap<(ConsumerId, ServiceId), i64> = BTreeMap::new();
    for op in decoded.iter().filter(|op| accepted(op) && !reversed.contains(&op.id)) {
        for (wallet, delta) in op.op.body.wallet_deltas() {
            *balances.entry((wallet.consumer, wallet.service)).or_default() += delta;
        }
    }
    balances
        .into_iter()
        .filter(|(_, v)| *v != 0)
        .map(|((c, s), v)| format!("wallet {} {} {}", c.to_hex(), s, Balance::from_minor(v).unwrap()))
        .collect()
}

fn wallet_lines(digest: &[String]) -> Vec<String> {
    digest.iter().filter(|l| l.starts_with("wallet ")).cloned().collect()
}

/// What `any_arrival_order_gives_the_same_state` checks for one seed.
fn check_arrival_orders(seed: u64) {
    let (mut hub, ops) = build_history(seed);
    let hub_state = hub.state_digest().unwrap();
    assert_eq!(wallet_lines(&hub_state), model_balances(hub.realm(), &ops));
    let report = hub.verify_log().unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed);
    // A key-less replica holds and counts everything, as the hub does.
    let mut replica = replay(hub.realm(), None, &ops, &mut rng);
    assert_eq!(&replica.state_digest().unwrap(), &hub_state);
    let report = replica.verify_log().unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    // A cash point's node counts its own operations and the hub's, takes
    // the rest from the hub's checkpoints, and keeps the verdicts on its
    // own operations only: the same balances, a subset of the verdicts.
    let mut device = replay(hub.realm(), Some(key(seed, 2)), &ops, &mut rng);
    let device_state = device.state_digest().unwrap();
    let not_verdicts = |d: &[String]| d.iter().filter(|l| !l.starts_with("verdict ")).cloned().collect::<Vec<_>>();
    let (d, h) = (not_verdicts(&device_state), not_verdicts(&hub_state));
    if d != h {
        let only_d: Vec<_> = d.iter().filter(|l| !h.contains(l)).collect();
        let only_h: Vec<_> = h.iter().filter(|l| !d.contains(l)).collect();
        panic!("the device differs from the hub: device has {only_d:?}, hub has {only_h:?}");
    }
    for line in device_state.iter().filter(|l| l.starts_with("verdict ")) {
        assert!(hub_state.contains(line), "the device's {} is not the hub's", line);
    }
    let report = device.verify_log().unwrap();
    assert!(report.ok(), "{:?}", report.problems);
}

/// Seeds that once failed, replayed on every run.
#[test]
fn arrival_orders_of_seeds_that_once_failed() {
    // Devices that got their own operations back after the hub's verdicts and
    // checkpoints (as a reinstalled one does): a reversal, then a top-up
    // flagged, reversed and accepted in review, counted twice.
    check_arrival_orders(14_280_958_086_337_859_635);
    check_arrival_orders(14_010_039_554_258_873_996);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any arrival order of the same operations, the hub's decisions included
    /// and with any duplicates, gives the same balances, verdicts, frozen and
    /// revoked devices and directory, and the balances add up.
    #[test]
    fn any_arrival_order_gives_the_same_state(seed in any::<u64>()) {
        check_arrival_orders(seed);
    }

    /// For the same arrival order the hub writes the same decisions: its
    /// whole log is byte-for-byte the same.
    #[test]
    fn the_hubs_decisions_are_deterministic(seed in any::<u64>()) {
        let (_, first) = build_history(seed);
        let (_, second) = build_history(seed);
        prop_assert_eq!(first, second);
    }
}

/// The ledger's central invariant, on a larger history: the sum of all
/// balances is accepted credits minus accepted debits, on the hub and on a
/// replica; `log verify` recomputes every balance from the log.
#[test]
fn balances_add_up_to_credits_minus_debits() {
    let (mut hub, ops) = build_history(42);
    let tx = hub.store_mut().read().unwrap();
    let (credits, debits) = tx.counted_credits_and_debits().unwrap();
    assert_eq!(tx.wallet_balance_sum().unwrap(), credits - debits);
    assert!(credits > 0);
    drop(tx);
    let mut replica = replay(hub.realm(), None, &ops, &mut fastrand::Rng::with_seed(1));
    let tx = replica.store_mut().read().unwrap();
    assert_eq!(tx.wallet_balance_sum().unwrap(), credits - debits);
}

// ---- refusals that change nothing ------------------------------------------

struct Setup {
    hub: Node,
    consumers: Vec<Consumer>,
    cash_point: Device,
}

fn setup() -> Setup {
    let (mut hub, consumers) = hub_with_directory(7, 4);
    let cash_point = Device::new(key(7, 9));
    hub.enrol(cash_point.author(), Role::CashPoint, &label("Farmacia Comunale"), limits("200")).unwrap();
    Setup { hub, consumers, cash_point }
}

impl Setup {
    fn wallet(&self, i: usize) -> WalletKey {
        WalletKey { consumer: self.consumers[i].id, service: self.consumers[i].services[0].clone() }
    }

    fn dump(&self) -> Vec<String> {
        self.hub.store().dump().unwrap()
    }
}

fn twelve_fifty() -> Amount {
    Amount::parse("12.50").unwrap()
}

/// Refuses `ops` as the hub and checks the database is exactly as before.
fn assert_refused(setup: &mut Setup, ops: &[SignedOp], check: impl Fn(&IngestError) -> bool) {
    let before = setup.dump();
    let results = deliver(&mut setup.hub, ops);
    let last = results.last().unwrap();
    match last {
        Err(e) => assert!(check(e), "unexpected error: {e}"),
        Ok(applied) => panic!("expected a refusal, got {applied:?}"),
    }
    assert!(last.as_ref().unwrap_err().to_string().len() > 20, "the error says what is wrong");
    assert_eq!(setup.dump(), before, "a refused operation changed the database");
}

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
fn the_hub_refuses_its_own_operations_that_break_the_rules() {
    let mut s = setup();
    let (from, to) = (s.wallet(0), s.wallet(1));
    let before = s.dump();
    let refused = s.hub.record(Body::Transfer(Transfer { from, to, amount: twelve_fifty(), note: label("siblings") }));
    assert!(matches!(&refused, Err(NodeError::Refused(why)) if why.contains("does not cover")), "{refused:?}");
    assert_eq!(s.dump(), before);
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

/// An import that fills the disk says the disk is full and exactly what it
/// wrote before; what it wrote is whole families, reads go on working, and
/// importing the file again once there is space writes the rest.
#[test]
fn an_import_that_fills_the_disk_says_so_and_what_it_wrote() {
    let new_hub = || {
        Node::create_hub(
            Store::open_in_memory().unwrap(),
            key(63, 0),
            key(63, 1),
            &label("Comune di Prova"),
            Arc::new(StepClock::default()),
        )
        .unwrap()
    };
    let mut csv = Vec::new();
    generate::write_csv(&mut csv, 2_400, 63).unwrap();
    // The same import on the same keys and clock writes the same pages: measure it once.
    let (pages_before, pages_after, families) = {
        let mut hub = new_hub();
        let before = hub.store().page_count().unwrap();
        let report = import::import_csv(&mut hub, csv.as_slice(), &|_, _| {}).unwrap();
        (before, hub.store().page_count().unwrap(), report.families)
    };
    assert!(families > 1_200, "{families} families: too few for two transactions");
    let first_share = import::FAMILIES_PER_TRANSACTION as u64 * 100 / families;
    // Room for the first transaction and not for the whole import.
    let cap = pages_before + (pages_after - pages_before) * (first_share + (100 - first_share) / 2) / 100;
    let mut hub = new_hub();
    hub.store().limit_pages(cap).unwrap();
    let error = import::import_csv(&mut hub, csv.as_slice(), &|_, _| {}).unwrap_err();
    let (written, rows) = match &error {
        import::ImportError::Stopped { families, rows, .. } => (*families, *rows),
        other => panic!("expected an import stopped after its first transaction: {other}"),
    };
    // Transactions end at FAMILIES_PER_TRANSACTION or sooner (a time bound,
    // a waiting writer): whole ones were written, not all.
    assert!(written > 0 && written < families, "{written} of {families} families written");
    let error = anyhow::Error::from(error);
    assert!(error.chain().any(saldo_node::node::is_disk_full), "{error:#}");
    let message = saldo_node::cli::render_error(&error, Some(std::path::Path::new("/srv/saldo")));
    assert!(
        message.contains(&format!("the import stopped after writing {written} families ({rows} rows)")),
        "{message}"
    );
    assert!(message.ends_with("\nthe disk holding /srv/saldo is full: free space and try again"), "{message}");
    assert!(!message.contains("full: database or disk is full: database or disk is full"), "{message}");

    // Reads need no space.
    let (consumers, in_families) = hub.directory_counts().unwrap();
    assert_eq!((consumers, in_families), (rows, written));
    let found = hub.search("ro", 5).unwrap();
    assert!(!found.is_empty());
    hub.balance(&saldo_sync::Pan::parse(&found[0].pan).unwrap()).unwrap();
    hub.unconfirmed().unwrap();
    hub.flagged(10).unwrap();
    assert!(hub.verify_log().unwrap().ok());

    // With space again, the same file writes the rest.
    hub.store().limit_pages(u32::MAX as u64).unwrap();
    let report = import::import_csv(&mut hub, csv.as_slice(), &|_, _| {}).unwrap();
    assert_eq!(report.families, families);
    assert_eq!(hub.directory_counts().unwrap().1, families);
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

// ---- operators' accounts ------------------------------------------------------

fn login(text: &str) -> saldo_sync::OperatorLogin {
    saldo_sync::OperatorLogin::parse(text).unwrap()
}

fn person(text: &str) -> saldo_sync::PersonName {
    saldo_sync::PersonName::parse(text).unwrap()
}

fn password(text: &str) -> saldo_node::node::Password {
    saldo_node::node::Password::parse(text).unwrap()
}

/// A cash point's node (its own key) holding what the hub's log and the
/// contacts key's log would bring it: it refuses what only the hub keeps.
fn cash_point_replica(hub: &mut Node, key: &DeviceKey) -> Node {
    let mut node = Node::replica(
        Store::open_in_memory().unwrap(),
        hub.realm(),
        Some(DeviceKey::from_secret_bytes(&key.secret_bytes())),
        Arc::new(StepClock::default()),
    )
    .unwrap();
    catch_up(&mut node, hub);
    node
}

fn catch_up(device: &mut Node, hub: &mut Node) {
    let results = device.ingest(&hub.all_operations().unwrap()).unwrap();
    for result in &results {
        assert!(
            matches!(
                result,
                Ok(_)
                    | Err(IngestError::HubOnly)
                    | Err(IngestError::HubOnlyAccount(_))
                    | Err(IngestError::ChainGap { .. })
            ),
            "{result:?}"
        );
    }
}

fn refused_login(node: &mut Node, who: &str, pass: &str) -> saldo_node::node::AuthError {
    node.authenticate(who, pass).map(|row| row.account.login).expect_err("the login is refused")
}

/// What a cashier relies on at the counter: their account, made at the hub,
/// reaches their cash point with the hub's log, and logs them in there
/// with the hub out of reach; other cash points' cashiers and the hub's
/// administrators and clerks are not there at all; once disabled at the
/// hub, the account stops working at the cash point when it syncs.
#[test]
fn a_cashier_logs_in_at_their_cash_point_only_and_a_disabled_account_stops_working_there_once_synced() {
    use saldo_node::node::AuthError;
    use saldo_sync::OperatorRole;
    let mut s = setup();
    let other = key(7, 10);
    s.hub.enrol(other.author(), Role::CashPoint, &label("Edicola"), limits("200")).unwrap();
    let here = Some(s.cash_point.author());
    let add = |hub: &mut Node, who: &str, role, cash_point| {
        hub.add_operator(&login(who), &person(who), role, cash_point, &password(&format!("{who} password"))).unwrap()
    };
    let admin = add(&mut s.hub, "admin", OperatorRole::Administrator, None);
    add(&mut s.hub, "anna", OperatorRole::Clerk, None);
    let mario = add(&mut s.hub, "mario", OperatorRole::Cashier, here);
    add(&mut s.hub, "luigi", OperatorRole::Cashier, Some(other.author()));
    assert_ne!(admin.author, s.hub.realm().hub(), "administrators' accounts are not in the hub's log");
    assert_eq!(mario.author, s.hub.realm().hub(), "cashiers' accounts are in the hub's log");
    assert!(!mario.account.must_change_password, "a password the operator chose is theirs");

    let key_here = DeviceKey::from_secret_bytes(&key(7, 9).secret_bytes());
    let mut device = cash_point_replica(&mut s.hub, &key_here);
    let held: Vec<String> = device.operators().unwrap().iter().map(|r| r.account.login.to_string()).collect();
    assert_eq!(held, ["mario"], "a cash point holds its own cashiers' accounts and nobody else's");
    let kept_operator_ops: Vec<saldo_sync::OperatorAccount> = device
        .all_operations()
        .unwrap()
        .iter()
        .filter_map(|bytes| match SignedOp::decode(bytes).unwrap().op.body {
            Body::Operator(account) => Some(account),
            _ => None,
        })
        .collect();
    assert!(
        kept_operator_ops.iter().all(|a| a.role == OperatorRole::Cashier),
        "no administrator's or clerk's account (not even its hash) is stored at a cash point"
    );

    // The hub is out of reach from here on: the device has what it has.
    let row = device.authenticate("mario", "mario password").unwrap();
    assert_eq!(row.account.name.as_str(), "mario");
    assert!(matches!(refused_login(&mut device, "mario", "wrong password"), AuthError::WrongCredentials));
    assert!(matches!(refused_login(&mut device, "nobody", "mario password"), AuthError::WrongCredentials));
    assert!(matches!(refused_login(&mut device, "NOT A LOGIN", "x"), AuthError::WrongCredentials));
    assert!(matches!(refused_login(&mut device, "luigi", "luigi password"), AuthError::WrongCredentials));
    assert!(matches!(refused_login(&mut device, "admin", "admin password"), AuthError::WrongCredentials));
    assert_eq!(AuthError::WrongCredentials.to_string(), "wrong login or password");

    // At the hub: its administrators and clerks; cashiers log in at their cash point.
    assert!(s.hub.authenticate("admin", "admin password").is_ok());
    assert!(s.hub.authenticate("anna", "anna password").is_ok());
    assert!(matches!(refused_login(&mut s.hub, "mario", "mario password"), AuthError::CashierAtHub(_)));
    assert!(matches!(refused_login(&mut s.hub, "mario", "wrong password"), AuthError::WrongCredentials));

    s.hub.set_operator_disabled(&login("mario"), true).unwrap();
    assert!(device.authenticate("mario", "mario password").is_ok(), "not synced yet: the cash point cannot know");
    catch_up(&mut device, &mut s.hub);
    let refusal = refused_login(&mut device, "mario", "mario password");
    assert!(matches!(refusal, AuthError::Disabled(_)), "{refusal}");
    assert!(refusal.to_string().contains("disabled"), "{refusal}");
    assert!(matches!(refused_login(&mut device, "mario", "wrong password"), AuthError::WrongCredentials));

    // Enabled again with a new password: the old one stops working.
    s.hub.set_operator_disabled(&login("mario"), false).unwrap();
    let one_time = saldo_node::node::Password::generate();
    assert!(s.hub.set_operator_password(&login("mario"), &one_time).unwrap().account.must_change_password);
    catch_up(&mut device, &mut s.hub);
    assert!(matches!(refused_login(&mut device, "mario", "mario password"), AuthError::WrongCredentials));
    let row = device.authenticate("mario", one_time.as_str()).unwrap();
    assert!(row.account.must_change_password, "a one-time password is to be replaced at the first login");
}

/// Only the hub writes operators' accounts: a cash point that signs one
/// (to let someone log in at it) is refused, saying why, and nothing changes.
#[test]
fn a_cash_point_cannot_record_an_operator_account() {
    let mut s = setup();
    let realm = s.hub.realm();
    let account = saldo_sync::OperatorAccount {
        login: login("intruder"),
        name: person("Intruder"),
        role: saldo_sync::OperatorRole::Cashier,
        cash_point: Some(s.cash_point.author()),
        password_hash: label("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2g"),
        must_change_password: false,
        disabled: false,
    };
    let op = s.cash_point.sign(&realm, Body::Operator(account.clone()));
    assert_refused(&mut s, &[op], |e| {
        matches!(e, IngestError::AccountNotAllowed { .. }) && e.to_string().contains("only the hub records")
    });
    let mut admin = account;
    admin.role = saldo_sync::OperatorRole::Administrator;
    admin.cash_point = None;
    let mut other = Device::new(key(7, 9));
    let op = other.sign(&realm, Body::Operator(admin));
    assert_refused(&mut s, &[op], |e| matches!(e, IngestError::AccountNotAllowed { .. }));
    assert!(s.hub.operators().unwrap().is_empty());
}

/// Bad input for an account is refused with what to fix, and writes nothing.
#[test]
fn an_account_with_a_short_password_a_taken_login_or_the_wrong_place_is_refused_and_changes_nothing() {
    use saldo_node::node::{OperatorError, Password};
    use saldo_sync::OperatorRole;
    let mut s = setup();
    let cash_point = Some(s.cash_point.author());
    s.hub
        .add_operator(&login("mario"), &person("Mario"), OperatorRole::Cashier, cash_point, &password("long enough"))
        .unwrap();
    let before = s.dump();
    let short = Password::parse("123456789").unwrap_err();
    assert!(matches!(short, OperatorError::PasswordTooShort { length: 9 }), "{short}");
    assert!(short.to_string().contains("at least 10"), "{short}");
    assert!(Password::parse(&"x".repeat(129)).is_err());
    assert!(Password::parse("0123456789").is_ok());
    let hub = Some(s.hub.realm().hub());
    let mut add = |who: &str, role, cash_point| {
        s.hub.add_operator(&login(who), &person("Someone"), role, cash_point, &password("long enough")).unwrap_err()
    };
    assert!(matches!(add("mario", OperatorRole::Clerk, None), OperatorError::LoginTaken(_)));
    assert!(matches!(add("anna", OperatorRole::Cashier, None), OperatorError::CashPointNeeded));
    assert!(matches!(add("anna", OperatorRole::Clerk, cash_point), OperatorError::CashPointOfHubRole("clerk")));
    assert!(matches!(add("anna", OperatorRole::Cashier, hub), OperatorError::NotACashPoint { .. }));
    assert!(matches!(add("anna", OperatorRole::Cashier, Some(AuthorId([3; 32]))), OperatorError::UnknownCashPoint(_)));
    s.hub.revoke(s.cash_point.author(), &label("closed")).unwrap();
    let before_revoked = s.dump();
    let revoked = s
        .hub
        .add_operator(&login("anna"), &person("Anna"), OperatorRole::Cashier, cash_point, &password("long enough"))
        .unwrap_err();
    assert!(matches!(revoked, OperatorError::RevokedCashPoint(_)), "{revoked}");
    assert_eq!(s.dump(), before_revoked, "refused accounts wrote nothing");
    assert_ne!(before, before_revoked);
    assert!(matches!(
        s.hub.set_operator_password(&login("nobody"), &password("long enough")).unwrap_err(),
        OperatorError::UnknownLogin(_)
    ));
    // A device creates no accounts.
    let mut device = cash_point_replica(&mut s.hub, &key(7, 9));
    let refused = device
        .add_operator(&login("anna"), &person("Anna"), OperatorRole::Clerk, None, &password("long enough"))
        .unwrap_err();
    assert!(refused.to_string().contains("only the hub"), "{refused}");
}
