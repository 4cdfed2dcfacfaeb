//! The ledger at the boundary of a node: operations in, state out.
//! Real SQLite (in memory), real signatures, real Automerge; nothing mocked.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use saldo_node::directory::ServiceRecord;
use saldo_node::node::Node;
use saldo_node::state::{Applied, IngestError};
use saldo_node::store::Store;
use saldo_node::{Clock, generate, import};
use saldo_sync::{
    Amount, AuthorId, Balance, Body, ConsumerId, DeviceKey, FlagReason, Hlc, Label, OfflineLimits, OpId, Operation,
    PaymentMethod, RealmId, ReceiptNo, Role, Seq, ServiceId, SignedOp, TopUp, TopUpLine, Verdict, WalletKey,
};

#[path = "ledger/allowances.rs"]
mod allowances;
#[path = "ledger/arrival_orders.rs"]
mod arrival_orders;
#[path = "ledger/flags.rs"]
mod flags;
#[path = "ledger/imports.rs"]
mod imports;
#[path = "ledger/offline.rs"]
mod offline;
#[path = "ledger/operators.rs"]
mod operators;
#[path = "ledger/outbox.rs"]
mod outbox;
#[path = "ledger/refusals.rs"]
mod refusals;
#[path = "ledger/reports.rs"]
mod reports;

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
