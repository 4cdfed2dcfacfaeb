//! Deterministic simulation of a realm: a hub and four cash points, each a
//! real node on its own SQLite file, syncing over a simulated network that
//! drops, duplicates and reorders messages, partitions links, crashes and
//! restarts nodes, and skews their clocks; all driven by one seed.
//!
//! Cash points are also restored from an older copy of their data directory
//! (a backup taken at an earlier crash): what they record then forks their
//! log, behind, level with or ahead of what the hub holds, online or not.
//!
//! At quiescence every seed checks: the nodes agree on everything they
//! replicate; no acknowledged operation is lost (but those a restore
//! overwrote before they left the device); every one is counted exactly
//! once or flagged at the hub with its reason; the hub's balances equal its
//! accepted operations; every flagged operation has a reason.
//!
//! `SALDO_SIM_SEEDS=N` runs N seeds (1,000 by default); `SALDO_SIM_SEED=S`
//! replays one. A failing seed prints the command that replays it.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use saldo_node::directory::ServiceRecord;
use saldo_node::node::{Node, TopUpRequestLine};
use saldo_node::{Clock, generate, import};
use saldo_sync::reconcile::{Incoming, Message, Session};
use saldo_sync::{
    Amount, AuthorId, Balance, ConsumerId, DeviceKey, Label, OfflineLimits, OpId, PaymentMethod, Role, ServiceId,
};

const CASH_POINTS: usize = 4;
/// The school device's index (after the hub and the cash points).
const SCHOOL: usize = CASH_POINTS + 1;
const STEPS: usize = 160;

/// Simulated time, shared; each node reads it through its own skew.
#[derive(Debug)]
struct SimClock {
    now: Arc<AtomicU64>,
    skew_ms: AtomicI64,
}

impl Clock for SimClock {
    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::SeqCst).saturating_add_signed(self.skew_ms.load(Ordering::SeqCst))
    }
}

struct SimNode {
    author: AuthorId,
    dir: PathBuf,
    clock: Arc<SimClock>,
    node: Option<Node>,
    /// A copy of the data directory taken at a crash, to restore from.
    snapshot: Option<PathBuf>,
    /// The snapshot was taken at the crash the node is down from.
    fresh_snapshot: bool,
}

/// An open connection between two nodes: one session per side and the
/// messages in flight each way.
struct Link {
    ends: [usize; 2],
    sessions: [Session; 2],
    /// `in_flight[k]`: messages travelling to `ends[k]`.
    in_flight: [VecDeque<Message>; 2],
}

struct Sim {
    rng: fastrand::Rng,
    nodes: Vec<SimNode>,
    links: Vec<Link>,
    cut: BTreeSet<(usize, usize)>,
    /// Every operation a node acknowledged (recorded durably), by author.
    acknowledged: Vec<(AuthorId, OpId)>,
    consumers: Vec<(ConsumerId, ServiceId)>,
    log: Vec<String>,
    stats: Stats,
    steps: usize,
    /// A working cash point is backed up at the first step and restored
    /// from that copy at the second, in about half the seeds.
    restore_episode: Option<(usize, usize, usize)>,
}

/// What a run exercised, so that a run that exercised nothing fails.
#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    acknowledged: u64,
    /// Charges the school device recorded within its allowances.
    charges: u64,
    /// Operations a cash point stored that another cash point authored.
    carried: u64,
    flagged: u64,
    crashes: u64,
    broken_links: u64,
    /// Money a device refused at the counter: over its unconfirmed total,
    /// or too long after the newest news from the hub.
    refused_by_limits: u64,
    heartbeats: u64,
    /// Cash points restored from an older copy of themselves, and devices
    /// whose log forked (as the hub found at the end).
    restores: u64,
    forks: u64,
    /// Operations a restore overwrote before any other node held them.
    lost_with_the_disk: u64,
}

fn label(text: &str) -> Label {
    Label::parse(text).expect("a valid label")
}

fn scratch_root() -> PathBuf {
    // tmpfs where there is one: the same SQLite, without waiting for a disk.
    let shm = Path::new("/dev/shm");
    if shm.is_dir() && tempfile::tempdir_in(shm).is_ok() { shm.to_path_buf() } else { std::env::temp_dir() }
}

/// Copies a data directory (its node is down, so its files are consistent).
fn copy_dir(from: &Path, to: &Path) {
    if to.exists() {
        std::fs::remove_dir_all(to).expect("remove the older copy");
    }
    std::fs::create_dir_all(to).expect("create");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

/// Every operation of `author` a node holds, on any branch.
fn held_of(node: &mut Node, author: AuthorId) -> BTreeSet<OpId> {
    let tx = node.store_mut().read().expect("read");
    tx.all_from(&author, saldo_sync::Seq(1), usize::MAX / 2).expect("operations").into_iter().map(|op| op.id).collect()
}

impl Sim {
    fn new(seed: u64, root: &Path) -> Sim {
        let mut rng = fastrand::Rng::with_seed(seed);
        let now = Arc::new(AtomicU64::new(1_790_000_000_000));
        let clock = |rng: &mut fastrand::Rng| {
            Arc::new(SimClock { now: now.clone(), skew_ms: AtomicI64::new(rng.i64(-7_200_000..7_200_000)) })
        };
        let hub_clock = clock(&mut rng);
        let hub_dir = root.join("hub");
        let key = |n: u8| {
            DeviceKey::from_secret_bytes(&blake3::derive_key("sim key", &[seed.to_le_bytes(), [n; 8]].concat()))
        };
        let mut hub =
            Node::init_realm_with(&hub_dir, &label("Comune di Simulazione"), key(0), key(1), hub_clock.clone())
                .expect("hub");
        let mut csv = Vec::new();
        generate::write_csv(&mut csv, 12, seed).expect("generate");
        let report = import::import_csv(&mut hub, csv.as_slice(), &|_, _| {}).expect("import");
        assert!(report.rejected.is_empty());
        hub.put_service(&ServiceRecord {
            id: ServiceId::parse("mensa").expect("id"),
            name: label("Mensa"),
            floor: Balance::parse("-20").expect("floor"),
            tariff: None,
            reminders: Vec::new(),
        })
        .expect("service");
        let mut consumers = Vec::new();
        for line in String::from_utf8(csv).expect("utf-8").lines().skip(1) {
            let code = line.split(',').nth(5).expect("a fiscal code column");
            for view in hub.search(code, 5).expect("search") {
                let id = ConsumerId::from_hex(&view.consumer).expect("id");
                for service in &view.services {
                    consumers.push((id, ServiceId::parse(service).expect("service")));
                }
            }
        }
        consumers.sort();
        consumers.dedup();
        let realm = hub.realm();
        let mut nodes = vec![SimNode {
            author: realm.hub(),
            dir: hub_dir,
            clock: hub_clock,
            node: Some(hub),
            snapshot: None,
            fresh_snapshot: false,
        }];
        for i in 0..CASH_POINTS {
            let key = key(2 + i as u8);
            let author = key.author();
            // Tight limits on some: refusals at the counter, and the hub's
            // own check of them, get exercised.
            let limits = OfflineLimits {
                per_operation: Amount::parse(if i == 0 { "40" } else { "200" }).expect("limit"),
                unconfirmed_total: Balance::parse(if i == 1 { "150" } else { "5000" }).expect("total"),
                offline_secs_max: if i == 2 { 2 * 3600 } else { 86_400 },
            };
            nodes[0]
                .node
                .as_mut()
                .expect("hub up")
                .enrol(author, Role::CashPoint, &label(&format!("Esercente {i}")), limits)
                .expect("enrol");
            let dir = root.join(format!("cash-point-{i}"));
            let clock = clock(&mut rng);
            let node = Node::join(&dir, realm, key).expect("join").with_clock(clock.clone());
            nodes.push(SimNode { author, dir, clock, node: Some(node), snapshot: None, fresh_snapshot: false });
        }
        // A school canteen's device charging meals, offline too, within the
        // allowances the hub reserves for it.
        let school_key = key(2 + CASH_POINTS as u8);
        let school = school_key.author();
        let limits = OfflineLimits {
            per_operation: Amount::parse("50").expect("limit"),
            unconfirmed_total: Balance::parse("5000").expect("total"),
            offline_secs_max: 86_400,
        };
        nodes[0]
            .node
            .as_mut()
            .expect("hub up")
            .enrol(school, Role::SchoolDevice, &label("Mensa"), limits)
            .expect("enrol");
        let dir = root.join("school");
        let clock = clock(&mut rng);
        let node = Node::join(&dir, realm, school_key).expect("join").with_clock(clock.clone());
        nodes.push(SimNode { author: school, dir, clock, node: Some(node), snapshot: None, fresh_snapshot: false });
        Sim {
            rng,
            nodes,
            links: Vec::new(),
            cut: BTreeSet::new(),
            acknowledged: Vec::new(),
            consumers,
            log: Vec::new(),
            stats: Stats::default(),
            steps: 0,
            restore_episode: None,
        }
    }

    fn node(&mut self, i: usize) -> &mut Node {
        self.nodes[i].node.as_mut().expect("the node is up")
    }

    fn up(&self, i: usize) -> bool {
        self.nodes[i].node.is_some()
    }

    fn linked(&self, a: usize, b: usize) -> bool {
        self.links.iter().any(|l| l.ends.contains(&a) && l.ends.contains(&b))
    }

    fn drop_links_of(&mut self, i: usize) {
        self.links.retain(|l| !l.ends.contains(&i));
    }

    fn connect(&mut self, a: usize, b: usize) {
        let (pa, pb) = (self.nodes[a].author, self.nodes[b].author);
        // `a` begins (with only what changed since it last synced with `b`,
        // if it did); `b` answers once the hello arrives.
        let (sa, hello) = self.node(a).initiate(pb).expect("session");
        let sb = self.node(b).respond(pa).expect("session");
        let hellos = [VecDeque::new(), VecDeque::from([hello])];
        self.links.push(Link { ends: [a, b], sessions: [sa, sb], in_flight: hellos });
        self.log.push(format!("connect {a} {b}"));
    }

    /// Queues every message side `k` of link `l` has to send.
    fn pump(&mut self, l: usize, k: usize) {
        let end = self.links[l].ends[k];
        let node = self.nodes[end].node.as_mut().expect("a linked node is up");
        let link = &mut self.links[l];
        while let Some(message) = link.sessions[k].next_message(node).expect("reading operations") {
            link.in_flight[1 - k].push_back(message);
        }
    }

    /// A node's frontier moved: every link it is on pushes what changed.
    fn changed(&mut self, i: usize) {
        let frontier = self.node(i).frontier().expect("frontier");
        let forks = self.node(i).fork_summaries().expect("forks");
        for l in 0..self.links.len() {
            if let Some(k) = self.links[l].ends.iter().position(|e| *e == i) {
                self.links[l].sessions[k].forks_changed(forks.clone());
                self.links[l].sessions[k].local_changed(frontier.clone());
                self.pump(l, k);
            }
        }
    }

    /// Delivers one message on link `l`, with the network's faults when `faulty`.
    fn deliver(&mut self, l: usize, faulty: bool) {
        let candidates: Vec<usize> = (0..2).filter(|k| !self.links[l].in_flight[*k].is_empty()).collect();
        let Some(&k) = candidates.get(self.rng.usize(..candidates.len().max(1))) else {
            return;
        };
        let queue = &mut self.links[l].in_flight[k];
        let roll = self.rng.u8(..100);
        let message = if faulty && roll < 3 {
            // The connection breaks: both sides forget the session.
            self.log.push(format!("link {:?} broke", self.links[l].ends));
            self.stats.broken_links += 1;
            self.links.remove(l);
            return;
        } else if faulty && roll < 8 && queue.len() > 1 && queue.iter().take(2).all(|m| matches!(m, Message::Ops(_))) {
            // Batches overtake each other (as operations relayed along
            // different paths do); a session's hello still comes first.
            queue.remove(1).expect("in range")
        } else {
            queue.pop_front().expect("not empty")
        };
        if faulty && roll >= 95 {
            queue.push_front(message.clone());
        }
        let end = self.links[l].ends[k];
        let wire = Message::decode(&message.encode()).expect("a message decodes as it was encoded");
        match self.links[l].sessions[k].receive(wire) {
            Ok(Incoming::Ops(ops)) => {
                let results = self.node(end).ingest(&ops).expect("storage");
                if end != 0 {
                    let own = [self.nodes[0].author, self.nodes[end].author];
                    self.stats.carried += ops
                        .iter()
                        .zip(&results)
                        .filter(|(op, r)| {
                            matches!(r, Ok(saldo_node::state::Applied::New))
                                && saldo_sync::op::peek(op).is_some_and(|(author, _, _)| !own.contains(&author))
                        })
                        .count() as u64;
                }
                for (op, result) in ops.iter().zip(results) {
                    if let Err(e) = &result
                        && !e.is_retryable()
                    {
                        panic!("node {end} refused an operation a peer forwarded: {e}");
                    }
                    if let Ok(saldo_node::state::Applied::Equivocation { .. }) = result
                        && let Some((author, _, _)) = saldo_sync::op::peek(op)
                    {
                        // The rest of both branches goes both ways.
                        self.links[l].sessions[k].fork_seen(author);
                    }
                }
                self.changed(end);
            }
            Ok(Incoming::Hello) => {
                let peer = self.nodes[self.links[l].ends[1 - k]].author;
                let session = &self.links[l].sessions[k];
                self.nodes[end].node.as_mut().expect("up").after_hello(peer, session).expect("remember");
                self.pump(l, k);
            }
            Ok(_) => self.pump(l, k),
            Err(e) => panic!("a session failed: {e}"),
        }
    }

    fn record_top_up(&mut self, i: usize) {
        let (consumer, service) = self.consumers[self.rng.usize(..self.consumers.len())].clone();
        let amount = Amount::from_minor(self.rng.i64(100..=6_000)).expect("amount");
        let line = TopUpRequestLine { consumer, service, amount };
        match self.node(i).record_top_up(&[line], PaymentMethod::Cash, None) {
            Ok(receipt) => {
                let id = OpId::from_hex(&receipt.verification_code).expect("id");
                self.acknowledged.push((self.nodes[i].author, id));
                self.stats.acknowledged += 1;
                self.changed(i);
            }
            // Not enrolled yet, the consumer not known here yet, or beyond
            // the device's offline limits: refused, nothing recorded.
            Err(e) => {
                let text = e.to_string();
                if text.contains("news from the hub") || text.contains("await the hub's confirmation") {
                    self.stats.refused_by_limits += 1;
                }
                self.log.push(format!("node {i} refused a top-up: {text}"));
            }
        }
    }

    fn record_charge(&mut self, i: usize) {
        // Mostly where the device has an allowance; sometimes anywhere (refused).
        let allowances = self.node(i).allowances().expect("allowances");
        let (consumer, service) = match allowances.get(self.rng.usize(..allowances.len().max(1))) {
            Some((wallet, _)) if self.rng.u8(..10) < 8 => (wallet.consumer, wallet.service.clone()),
            _ => self.consumers[self.rng.usize(..self.consumers.len())].clone(),
        };
        let amount = Amount::from_minor(self.rng.i64(100..=600)).expect("amount");
        let reference = label(&format!("pasto-{}", self.log.len()));
        let wallet = saldo_sync::WalletKey { consumer, service };
        match self.node(i).record_service_charge(wallet, amount, &reference) {
            Ok(op) => {
                self.acknowledged.push((self.nodes[i].author, op.id));
                self.stats.charges += 1;
                self.changed(i);
            }
            // No allowance (left) on that wallet here: refused at the counter.
            Err(e) => self.log.push(format!("node {i} refused a charge: {e}")),
        }
    }

    fn step(&mut self) {
        self.steps += 1;
        if let Some((backup_at, restore_at, i)) = self.restore_episode {
            if self.steps == backup_at {
                self.back_up_working(i);
            } else if self.steps == restore_at && self.nodes[i].snapshot.is_some() {
                if self.up(i) {
                    self.log.push(format!("crash {i}"));
                    self.drop_links_of(i);
                    self.nodes[i].node = None;
                }
                self.restore(i);
                self.log.push(format!("restart {i}"));
                let node = Node::open(&self.nodes[i].dir).expect("a restored node opens");
                self.nodes[i].node = Some(node.with_clock(self.nodes[i].clock.clone()));
                // The counter goes on before the node meets anyone.
                for _ in 0..self.rng.usize(1..4) {
                    self.record_top_up(i);
                }
                return;
            }
        }
        self.nodes[0].clock.now.fetch_add(self.rng.u64(1..60_000), Ordering::SeqCst);
        if self.up(0) && self.node(0).heartbeat_if_quiet().expect("heartbeat") {
            self.stats.heartbeats += 1;
            self.changed(0);
        }
        let n = self.nodes.len();
        match self.rng.u8(..100) {
            0..30 => {
                let i = self.rng.usize(..n);
                if self.up(i) && i == SCHOOL {
                    self.record_charge(i);
                } else if self.up(i) {
                    self.record_top_up(i);
                }
            }
            30..40 => {
                let (a, b) = (self.rng.usize(..n), self.rng.usize(..n));
                let pair = (a.min(b), a.max(b));
                if a != b && self.up(a) && self.up(b) && !self.linked(a, b) && !self.cut.contains(&pair) {
                    self.connect(a, b);
                }
            }
            40..80 => {
                for _ in 0..4 {
                    if !self.links.is_empty() {
                        let l = self.rng.usize(..self.links.len());
                        self.deliver(l, true);
                    }
                }
            }
            80..85 => {
                let i = self.rng.usize(..n);
                if self.up(i) {
                    // Backups worth restoring are of a cash point at work (it holds the directory).
                    let working =
                        (1..=CASH_POINTS).contains(&i) && self.node(i).directory_counts().expect("counts").0 > 0;
                    self.log.push(format!("crash {i}"));
                    self.stats.crashes += 1;
                    self.drop_links_of(i);
                    self.nodes[i].node = None;
                    if working && self.nodes[i].snapshot.is_none() && self.rng.bool() {
                        // A backup, taken while the node is down; restored
                        // (if ever) at a later restart.
                        let snapshot = self.nodes[i].dir.with_extension("snapshot");
                        copy_dir(&self.nodes[i].dir, &snapshot);
                        self.nodes[i].snapshot = Some(snapshot);
                        self.log.push(format!("backup {i}"));
                        // Half the time the node comes straight back (a nightly backup).
                        if self.rng.bool() {
                            let node = Node::open(&self.nodes[i].dir).expect("a crashed node reopens");
                            self.nodes[i].node = Some(node.with_clock(self.nodes[i].clock.clone()));
                        } else {
                            self.nodes[i].fresh_snapshot = true;
                        }
                    }
                }
            }
            85..91 => {
                let i = self.rng.usize(..n);
                if !self.up(i) {
                    let restored =
                        self.nodes[i].snapshot.is_some() && !self.nodes[i].fresh_snapshot && self.rng.u8(..4) != 0;
                    if restored {
                        self.restore(i);
                    }
                    self.nodes[i].fresh_snapshot = false;
                    self.log.push(format!("restart {i}"));
                    let node = Node::open(&self.nodes[i].dir).expect("a crashed node reopens");
                    self.nodes[i].node = Some(node.with_clock(self.nodes[i].clock.clone()));
                    if restored {
                        // The counter goes on before the node meets anyone.
                        for _ in 0..self.rng.usize(1..4) {
                            self.record_top_up(i);
                        }
                    }
                }
            }
            91..94 => {
                let (a, b) = (self.rng.usize(..n), self.rng.usize(..n));
                if a != b {
                    let pair = (a.min(b), a.max(b));
                    self.log.push(format!("partition {pair:?}"));
                    self.cut.insert(pair);
                    self.links.retain(|l| !(l.ends.contains(&a) && l.ends.contains(&b)));
                }
            }
            94..96 => {
                self.cut.clear();
                self.log.push("heal".into());
            }
            96 => {
                let i = 1 + self.rng.usize(..CASH_POINTS);
                self.nodes[i].clock.skew_ms.store(self.rng.i64(-86_400_000..86_400_000), Ordering::SeqCst);
            }
            _ => self.hub_acts(),
        }
    }

    /// Cash point `i` syncs with the hub (so it has the directory and
    /// records), then is stopped for a backup of its data directory.
    fn back_up_working(&mut self, i: usize) {
        if !self.up(0) || !self.up(i) || self.nodes[i].snapshot.is_some() {
            return;
        }
        self.links.retain(|l| !(l.ends.contains(&0) && l.ends.contains(&i)));
        self.connect(i, 0);
        let l = self.links.len() - 1;
        for _ in 0..10_000 {
            if self.links[l].in_flight.iter().all(VecDeque::is_empty) {
                break;
            }
            self.deliver(l, false);
        }
        self.log.push(format!("crash {i}"));
        self.drop_links_of(i);
        self.nodes[i].node = None;
        let snapshot = self.nodes[i].dir.with_extension("snapshot");
        copy_dir(&self.nodes[i].dir, &snapshot);
        self.nodes[i].snapshot = Some(snapshot);
        self.log.push(format!("backup {i}"));
        let node = Node::open(&self.nodes[i].dir).expect("reopens after the backup");
        self.nodes[i].node = Some(node.with_clock(self.nodes[i].clock.clone()));
    }

    /// Cash point `i` (down) is restored from its older copy. What it
    /// acknowledged since and no other node holds is gone with the disk:
    /// no system could count it. The rest must reach the hub.
    fn restore(&mut self, i: usize) {
        let snapshot = self.nodes[i].snapshot.clone().expect("a snapshot");
        let author = self.nodes[i].author;
        let mut kept = held_of(&mut Node::open(&snapshot).expect("the copy opens"), author);
        for j in (0..self.nodes.len()).filter(|j| *j != i) {
            // A node that is down still holds what it stored.
            kept.extend(match self.nodes[j].node.as_mut() {
                Some(node) => held_of(node, author),
                None => held_of(&mut Node::open(&self.nodes[j].dir).expect("opens"), author),
            });
        }
        let before = self.acknowledged.len();
        self.acknowledged.retain(|(a, id)| *a != author || kept.contains(id));
        self.stats.lost_with_the_disk += (before - self.acknowledged.len()) as u64;
        std::fs::remove_dir_all(&self.nodes[i].dir).expect("remove");
        copy_dir(&snapshot, &self.nodes[i].dir);
        std::fs::remove_dir_all(&snapshot).expect("remove the copy");
        self.nodes[i].snapshot = None;
        self.stats.restores += 1;
        self.log.push(format!("restore {i}"));
    }

    /// The hub's operator reviews a flagged operation, or (once in a while)
    /// revokes the last cash point, which goes on recording unaware.
    fn hub_acts(&mut self) {
        if !self.up(0) {
            return;
        }
        if self.rng.bool() {
            // An allowance for the canteen on a wallet, as much as the hub can reserve.
            let (consumer, service) = self.consumers[self.rng.usize(..self.consumers.len())].clone();
            let amount = Amount::from_minor(self.rng.i64(100..=2_000)).expect("amount");
            let school = self.nodes[SCHOOL].author;
            match self.node(0).grant_escrow(school, saldo_sync::WalletKey { consumer, service }, amount) {
                Ok(_) => {
                    self.log.push("grant".into());
                    self.changed(0);
                }
                Err(e) => self.log.push(format!("no grant: {e}")),
            }
            return;
        }
        let accept = self.rng.bool();
        // The operator reviews top-ups; a charge beyond an allowance stays flagged.
        let flagged: Vec<_> =
            self.node(0).flagged(10_000).expect("flagged").into_iter().filter(|f| f.kind != "service-charge").collect();
        if let Some(first) = flagged.first() {
            self.log.push(format!("review {accept}"));
            self.node(0).review(&first.op, accept, &label("Ufficio"), &label("verificato")).expect("review");
            self.changed(0);
        } else if self.rng.u8(..4) == 0 {
            let device = self.nodes[CASH_POINTS].author;
            let revoked = self.node(0).store_mut().read().expect("read").author(&device).expect("author");
            if revoked.is_some_and(|a| a.revoked_after.is_none()) {
                self.log.push("revoke".into());
                self.node(0).revoke(device, &label("smarrito")).expect("revoke");
                self.changed(0);
            }
        }
    }

    /// Heals everything, restarts every node and connects each cash point
    /// to the hub; delivers without faults until nothing is in flight. Then
    /// every cash point records one more top-up on the open sessions: it
    /// must reach the hub, and the hub's verdict come back, by being pushed.
    fn quiesce(&mut self) {
        self.cut.clear();
        self.links.clear();
        for i in 0..self.nodes.len() {
            if !self.up(i) {
                let node = Node::open(&self.nodes[i].dir).expect("reopens");
                self.nodes[i].node = Some(node.with_clock(self.nodes[i].clock.clone()));
            }
        }
        for i in 1..self.nodes.len() {
            self.connect(0, i);
        }
        self.settle();
        assert!(self.links.iter().all(|l| l.sessions.iter().all(Session::caught_up)), "a session is not caught up");
        let before = self.acknowledged.len();
        for i in 1..self.nodes.len() {
            self.record_top_up(i);
        }
        self.settle();
        for k in before..self.acknowledged.len() {
            let (author, id) = self.acknowledged[k];
            let held = self.node(0).store_mut().read().expect("read").has_op(&id).expect("has_op");
            assert!(held, "a top-up of {author:?} recorded online was not pushed to the hub");
        }
    }

    /// Delivers every message in flight, without faults.
    fn settle(&mut self) {
        for round in 0.. {
            assert!(round < 100_000, "the sessions never fall silent");
            let Some(l) = self.links.iter().position(|l| l.in_flight.iter().any(|q| !q.is_empty())) else {
                break;
            };
            self.deliver(l, false);
        }
    }

    fn check(&mut self) {
        let hub_author = self.nodes[0].author;
        let hub_frontier = self.node(0).frontier().expect("frontier");
        // Agreement: each cash point holds exactly the hub's log and its own, as the hub does.
        for i in 1..self.nodes.len() {
            let own = self.nodes[i].author;
            let frontier = self.node(i).frontier().expect("frontier");
            let forked =
                self.node(0).store_mut().read().expect("read").author(&own).expect("author").and_then(|a| a.frozen_at);
            if forked.is_some() {
                // Each side's chain is the branch it had first; both hold both.
                self.stats.forks += 1;
                let here = held_of(self.node(i), own);
                let there = held_of(self.node(0), own);
                if here != there {
                    for j in [i, 0] {
                        let tx = self.nodes[j].node.as_mut().unwrap().store_mut().read().unwrap();
                        let ops = tx.all_from(&own, saldo_sync::Seq(1), 1000).unwrap();
                        eprintln!(
                            "node {j} holds of the forked log: {:?}",
                            ops.iter().map(|o| (o.seq.0, o.id)).collect::<Vec<_>>()
                        );
                        eprintln!(
                            "node {j} head and fork: {:?}",
                            tx.author(&own).unwrap().map(|a| (a.head_seq, a.frozen_at))
                        );
                    }
                }
                assert_eq!(here, there, "node {i} and the hub hold different operations of its forked log");
                assert_eq!(
                    frontier.get(&hub_author),
                    hub_frontier.get(&hub_author),
                    "node {i} and the hub differ on the hub's log"
                );
            } else {
                for author in [hub_author, own] {
                    assert_eq!(
                        frontier.get(&author),
                        hub_frontier.get(&author),
                        "node {i} and the hub differ on {author:?}"
                    );
                }
            }
            // Verdicts on its own operations agree with the hub's.
            for (author, id) in self.acknowledged.clone() {
                if author == own {
                    let here = self
                        .node(i)
                        .store_mut()
                        .read()
                        .expect("read")
                        .verdict(&id)
                        .expect("verdict")
                        .map(|v| v.verdict);
                    let there = self
                        .node(0)
                        .store_mut()
                        .read()
                        .expect("read")
                        .verdict(&id)
                        .expect("verdict")
                        .map(|v| v.verdict);
                    assert_eq!(here, there, "node {i} and the hub disagree on the verdict of {id:?}");
                    assert!(there.is_some(), "the hub has not judged {id:?}");
                }
            }
        }
        // Nothing acknowledged is lost: each is counted, or flagged at the
        // hub with its reason (awaiting review, or reviewed).
        for (author, id) in self.acknowledged.clone() {
            let tx = self.node(0).store_mut().read().expect("read");
            assert!(
                tx.has_op(&id).expect("has_op"),
                "operation {id:?} acknowledged by {author:?} never reached the hub"
            );
            if author != hub_author {
                match tx.verdict(&id).expect("verdict").map(|v| v.verdict) {
                    Some(saldo_sync::Verdict::Flagged { detail, .. }) => {
                        assert!(!detail.as_str().is_empty(), "{id:?} flagged without a reason")
                    }
                    Some(_) => {}
                    None => panic!("the hub holds {id:?} of {author:?} without a verdict"),
                }
            }
        }
        // Balances equal the accepted operations; every chain and signature holds.
        for i in 0..self.nodes.len() {
            let report = self.node(i).verify_log().expect("verify");
            assert!(report.ok(), "node {i} does not verify: {:?}", report.problems);
        }
        // The hub's balances, from an independent model: every acknowledged
        // top-up whose verdict counts, line by line.
        let mut model: std::collections::BTreeMap<(ConsumerId, ServiceId), i64> = Default::default();
        for (author, id) in self.acknowledged.clone() {
            let tx = self.node(0).store_mut().read().expect("read");
            // The hub's own top-ups count by being recorded.
            let counts = match tx.verdict(&id).expect("verdict") {
                Some(v) => v.verdict.counts(),
                None => author == hub_author,
            };
            if counts {
                let bytes = tx.op_bytes(&id).expect("bytes").expect("held");
                match saldo_sync::SignedOp::decode(&bytes).expect("decodes").op.body {
                    saldo_sync::Body::TopUp(top_up) => {
                        for line in top_up.lines {
                            *model.entry((line.wallet.consumer, line.wallet.service)).or_default() +=
                                line.amount.minor();
                        }
                    }
                    saldo_sync::Body::ServiceCharge(charge) => {
                        *model.entry((charge.wallet.consumer, charge.wallet.service)).or_default() -=
                            charge.amount.minor();
                    }
                    _ => {}
                }
            }
        }
        for (consumer, service) in self.consumers.clone() {
            let wallet = self.node(0).wallet(&consumer, &service).expect("wallet");
            let expected = model.get(&(consumer, service.clone())).copied().unwrap_or(0);
            assert_eq!(wallet.confirmed.minor(), expected, "the hub's balance of {consumer:?}/{service}");
        }
        // Each cash point shows the hub's confirmed balances (its own
        // operations and the hub's checkpoints of the rest), with nothing
        // awaiting the hub.
        for i in 1..self.nodes.len() {
            for (consumer, service) in self.consumers.clone() {
                let here = self.node(i).wallet(&consumer, &service).expect("wallet");
                let hub = self.node(0).wallet(&consumer, &service).expect("wallet");
                assert_eq!(here.confirmed, hub.confirmed, "node {i} shows another balance of {consumer:?}/{service}");
                assert_eq!(here.provisional, here.confirmed, "node {i} still awaits the hub on {consumer:?}/{service}");
            }
        }
        // No debit within an allowance overdrew a wallet: every wallet is at
        // or above its floor (-20.00 for the canteen, 0 for the rest).
        for (consumer, service) in self.consumers.clone() {
            let wallet = self.node(0).wallet(&consumer, &service).expect("wallet");
            let floor = if service.as_str() == "mensa" { -2_000 } else { 0 };
            assert!(
                wallet.confirmed.minor() >= floor,
                "{consumer:?}/{service} went below its floor: {}",
                wallet.confirmed
            );
        }
        // Every flagged operation says why. A device refuses at the counter
        // what its offline limits forbid, by the same measure as the hub's:
        // the hub never has to flag one of these devices for them.
        for flagged in self.node(0).flagged(10_000).expect("flagged") {
            self.stats.flagged += 1;
            assert!(!flagged.reason.is_empty(), "{:?} is flagged without a reason", flagged.op);
            assert!(
                !["offline_too_long", "over_unconfirmed_limit"].contains(&flagged.reason.as_str()),
                "the hub flagged what a device should have refused: {flagged:?}"
            );
        }
    }
}

fn run_seed(seed: u64, verbose: bool) -> Stats {
    let root = tempfile::tempdir_in(scratch_root()).expect("scratch directory");
    let mut sim = Sim::new(seed, root.path());
    if sim.rng.bool() {
        let backup_at = sim.rng.usize(20..80);
        let restore_at = sim.rng.usize(backup_at + 10..STEPS - 10);
        sim.restore_episode = Some((backup_at, restore_at, 1 + sim.rng.usize(..CASH_POINTS)));
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for _ in 0..STEPS {
            sim.step();
        }
        sim.quiesce();
        sim.check();
    }));
    if verbose {
        eprintln!("seed {seed}: {}", sim.log.join("; "));
    }
    if let Err(panic) = outcome {
        eprintln!("seed {seed} failed after: {}", sim.log.join("; "));
        eprintln!("replay: SALDO_SIM_SEED={seed} cargo test -p saldo-tests --test simulation");
        std::panic::resume_unwind(panic);
    }
    sim.stats
}

/// Seeds that once failed: a restored cash point's branch carried by a
/// neighbour to a hub that began the session and did not share that device's
/// log with the neighbour (the fork showed only through the answer's heads).
#[test]
fn seeds_that_once_failed_converge() {
    for seed in [651, 824] {
        run_seed(seed, false);
    }
}

#[test]
fn a_realm_converges_under_a_faulty_network() {
    if let Some(seed) = std::env::var("SALDO_SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        eprintln!("seed {seed}: {:?}", run_seed(seed, true));
        return;
    }
    let seeds: u64 = std::env::var("SALDO_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let totals = std::sync::Mutex::new(Stats::default());
    std::thread::scope(|scope| {
        for t in 0..threads {
            let totals = &totals;
            scope.spawn(move || {
                for seed in (t..seeds).step_by(threads as usize) {
                    let stats = run_seed(seed, false);
                    let mut totals = totals.lock().expect("not poisoned");
                    totals.acknowledged += stats.acknowledged;
                    totals.charges += stats.charges;
                    totals.carried += stats.carried;
                    totals.flagged += stats.flagged;
                    totals.crashes += stats.crashes;
                    totals.broken_links += stats.broken_links;
                    totals.refused_by_limits += stats.refused_by_limits;
                    totals.heartbeats += stats.heartbeats;
                    totals.restores += stats.restores;
                    totals.forks += stats.forks;
                    totals.lost_with_the_disk += stats.lost_with_the_disk;
                }
            });
        }
    });
    let totals = totals.into_inner().expect("not poisoned");
    eprintln!("{seeds} seeds: {totals:?}");
    // The runs must have exercised what they check.
    assert!(totals.acknowledged >= seeds * 5, "{totals:?}");
    assert!(
        totals.carried > 0
            && totals.flagged > 0
            && totals.crashes > 0
            && totals.broken_links > 0
            && totals.charges > 0
            && totals.refused_by_limits > 0
            && totals.heartbeats > 0
            && totals.restores > 0
            && totals.forks > 0,
        "{totals:?}"
    );
}
