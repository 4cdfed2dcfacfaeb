use super::*;
use crate::op::{Body, DeviceKey, Operation, SignedOp};
use crate::{Hlc, Label};
use std::collections::{BTreeMap, BTreeSet};

/// A store in memory: each author's chain, and operations kept as
/// evidence of a fork (signed by the author, not on its chain here).
#[derive(Default)]
struct Memory(BTreeMap<AuthorId, Vec<SignedOp>>, Vec<SignedOp>);

impl Memory {
    fn clone_memory(&self) -> Memory {
        Memory(self.0.clone(), self.1.clone())
    }

    fn frontier(&self) -> Frontier {
        Frontier(
            self.0
                .iter()
                .filter_map(|(a, ops)| ops.last().map(|o| (*a, FrontierEntry { seq: o.op.seq, head: o.id })))
                .collect(),
        )
    }

    fn held(&self, id: &OpId) -> bool {
        self.0.values().flatten().chain(&self.1).any(|o| o.id == *id)
    }

    /// Stores `bytes`; true if it was kept as evidence of a fork.
    fn add(&mut self, bytes: &[u8]) -> bool {
        let op = SignedOp::decode(bytes).expect("valid");
        if self.held(&op.id) {
            return false;
        }
        let chain = self.0.entry(op.op.author).or_default();
        let head = chain.last().map_or(OpId::NONE, |o| o.id);
        if op.op.seq.0 == chain.len() as u64 + 1 && op.op.prev == head {
            chain.push(op);
            return false;
        }
        // On another branch: at a seq held, right after the head, or
        // continuing evidence already held.
        let continues = self.1.iter().any(|e| e.id == op.op.prev);
        if op.op.seq.0 <= chain.len() as u64 + 1 || continues {
            self.1.push(op);
            return true;
        }
        false
    }

    /// Every operation of `author` held, on any branch.
    fn all_of(&self, author: &AuthorId) -> BTreeSet<OpId> {
        self.0
            .get(author)
            .into_iter()
            .flatten()
            .chain(self.1.iter().filter(|o| o.op.author == *author))
            .map(|o| o.id)
            .collect()
    }
}

impl OpSource for Memory {
    type Error = std::convert::Infallible;
    fn chain(
        &mut self,
        author: &AuthorId,
        from: Seq,
        upto: Seq,
        max_ops: usize,
        _max_bytes: usize,
    ) -> Result<Vec<ChainOp>, Self::Error> {
        Ok(self
            .0
            .get(author)
            .map(|chain| {
                chain
                    .iter()
                    .filter(|o| o.op.seq >= from && o.op.seq <= upto)
                    .take(max_ops)
                    .map(|o| ChainOp { seq: o.op.seq, id: o.id, bytes: o.to_bytes() })
                    .collect()
            })
            .unwrap_or_default())
    }

    fn all_from(&mut self, author: &AuthorId, from: Seq, max_ops: usize) -> Result<Vec<ChainOp>, Self::Error> {
        let mut all: Vec<&SignedOp> = self
            .0
            .get(author)
            .into_iter()
            .flatten()
            .chain(self.1.iter().filter(|o| o.op.author == *author))
            .filter(|o| o.op.seq >= from)
            .collect();
        all.sort_by_key(|o| o.op.seq);
        let mut out: Vec<ChainOp> = Vec::new();
        for o in all {
            if out.len() >= max_ops && out.last().is_some_and(|l| l.seq != o.op.seq) {
                break;
            }
            out.push(ChainOp { seq: o.op.seq, id: o.id, bytes: o.to_bytes() });
        }
        Ok(out)
    }

    fn holds(&mut self, id: &OpId) -> Result<bool, Self::Error> {
        Ok(self.held(id))
    }
}

fn chain(realm: &RealmId, key: &DeviceKey, n: u64) -> Vec<Vec<u8>> {
    let mut prev = OpId::NONE;
    (1..=n)
        .map(|seq| {
            let signed = Operation {
                author: key.author(),
                seq: Seq(seq),
                prev,
                hlc: Hlc::from_parts(seq, 0),
                hub_seen: Seq(0),
                body: Body::Genesis { realm_name: Label::parse("x").expect("label") },
            }
            .sign(realm, key);
            prev = signed.id;
            signed.to_bytes()
        })
        .collect()
}

/// Runs a session between two memories until neither has anything to send.
fn run(a: &mut Memory, pa: SharePolicy, b: &mut Memory, pb: SharePolicy, realm: RealmId) -> (usize, usize) {
    let mut sa = Session::new(realm, pa, a.frontier());
    let sb = Session::new(realm, pb, b.frontier());
    let hello = sa.hello();
    drive(a, sa, b, sb, hello)
}

/// Delivers `first` (A's hello) and every message after it, each
/// through its encoding, until neither side has anything to send:
/// (one-way flights, bytes).
fn drive(a: &mut Memory, mut sa: Session, b: &mut Memory, mut sb: Session, first: Message) -> (usize, usize) {
    let mut to_b = vec![first];
    let mut to_a: Vec<Message> = Vec::new();
    let mut round_trips = 0;
    let mut bytes = 0;
    while !(to_a.is_empty() && to_b.is_empty()) {
        round_trips += 1;
        for m in std::mem::take(&mut to_b) {
            bytes += m.encode().len();
            if let Incoming::Ops(ops) = sb.receive(Message::decode(&m.encode()).expect("decodes")).expect("ok") {
                for o in &ops {
                    if b.add(o) {
                        sb.fork_seen(crate::op::peek(o).expect("valid").0);
                    }
                }
                sb.local_changed(b.frontier());
            }
        }
        for m in std::mem::take(&mut to_a) {
            bytes += m.encode().len();
            if let Incoming::Ops(ops) = sa.receive(Message::decode(&m.encode()).expect("decodes")).expect("ok") {
                for o in &ops {
                    if a.add(o) {
                        sa.fork_seen(crate::op::peek(o).expect("valid").0);
                    }
                }
                sa.local_changed(a.frontier());
            }
        }
        while let Some(m) = sa.next_message(a).expect("memory") {
            to_b.push(m);
        }
        while let Some(m) = sb.next_message(b).expect("memory") {
            to_a.push(m);
        }
    }
    assert!(sa.caught_up() && sb.caught_up());
    (round_trips, bytes)
}

#[test]
fn two_sides_exchange_what_each_lacks_and_no_more() {
    let hub = DeviceKey::from_secret_bytes(&[1; 32]);
    let realm = RealmId(hub.author().0);
    let (c1, c2) = (DeviceKey::from_secret_bytes(&[2; 32]), DeviceKey::from_secret_bytes(&[3; 32]));
    let (hub_ops, c1_ops, c2_ops) = (chain(&realm, &hub, 5000), chain(&realm, &c1, 30), chain(&realm, &c2, 40));
    let mut a = Memory::default();
    let mut b = Memory::default();
    hub_ops.iter().for_each(|o| {
        a.add(o);
    });
    hub_ops[..100].iter().for_each(|o| {
        b.add(o);
    });
    c1_ops.iter().for_each(|o| {
        a.add(o);
    });
    c1_ops[..10].iter().for_each(|o| {
        b.add(o);
    });
    c2_ops.iter().for_each(|o| {
        b.add(o);
    });
    let (round_trips, _) = run(&mut a, SharePolicy::Everything, &mut b, SharePolicy::Everything, realm);
    assert_eq!(a.frontier(), b.frontier());
    assert_eq!(a.0[&hub.author()].len(), 5000);
    // A's hello; B's answer with its operations; A's operations; the last Done.
    assert!(round_trips <= 4, "{round_trips} one-way flights");
    // Nothing more to say once caught up: one whole frontier, an empty answer.
    let (round_trips, bytes) = run(&mut a, SharePolicy::Everything, &mut b, SharePolicy::Everything, realm);
    assert!(round_trips <= 4, "{round_trips} one-way flights");
    assert!(bytes < 400, "{bytes} bytes when nothing differs");
}

#[test]
fn the_hub_gives_a_device_its_own_log_and_the_hubs_only() {
    let hub = DeviceKey::from_secret_bytes(&[1; 32]);
    let realm = RealmId(hub.author().0);
    let (c1, c2) = (DeviceKey::from_secret_bytes(&[2; 32]), DeviceKey::from_secret_bytes(&[3; 32]));
    let mut h = Memory::default();
    let mut device = Memory::default();
    for ops in [chain(&realm, &hub, 10), chain(&realm, &c1, 5), chain(&realm, &c2, 7)] {
        ops.iter().for_each(|o| {
            h.add(o);
        });
    }
    let policy = SharePolicy::for_peer(&realm, Some(hub.author()), c1.author());
    run(&mut h, policy, &mut device, SharePolicy::Everything, realm);
    assert_eq!(device.0.len(), 2);
    assert!(!device.0.contains_key(&c2.author()));
    // A device carries a neighbour's operations to the hub.
    let mut neighbour = Memory::default();
    let c3 = DeviceKey::from_secret_bytes(&[4; 32]);
    chain(&realm, &c3, 3).iter().for_each(|o| {
        neighbour.add(o);
    });
    run(&mut neighbour, SharePolicy::Everything, &mut device, SharePolicy::Everything, realm);
    run(&mut device, SharePolicy::Everything, &mut h, policy, realm);
    assert_eq!(h.0[&c3.author()].len(), 3);
}

/// `n` operations of `key` after `base` (whose last is the fork point),
/// told apart from any other branch by `branch`.
fn branch(realm: &RealmId, key: &DeviceKey, base: &[Vec<u8>], n: u64, branch: u64) -> Vec<Vec<u8>> {
    let mut prev = base.last().map_or(OpId::NONE, |b| SignedOp::decode(b).expect("valid").id);
    let first = base.len() as u64 + 1;
    (first..first + n)
        .map(|seq| {
            let signed = Operation {
                author: key.author(),
                seq: Seq(seq),
                prev,
                hlc: Hlc::from_parts(seq + 1000 * branch, 0),
                hub_seen: Seq(0),
                body: Body::Genesis { realm_name: Label::parse("x").expect("label") },
            }
            .sign(realm, key);
            prev = signed.id;
            signed.to_bytes()
        })
        .collect()
}

/// A device restored from an older copy signs a second branch: whether
/// that branch is shorter, as long or longer than the one the other
/// side holds, and whoever began the session, both sides end up with
/// every operation of both branches, so the hub can review them all.
#[test]
fn both_branches_of_a_fork_reach_both_sides_whatever_their_lengths() {
    let hub = DeviceKey::from_secret_bytes(&[1; 32]);
    let realm = RealmId(hub.author().0);
    let device = DeviceKey::from_secret_bytes(&[2; 32]);
    let hub_log = chain(&realm, &hub, 3);
    let common = chain(&realm, &device, 40);
    for (first_len, second_len) in [(10u64, 3u64), (5, 5), (2, 9), (1, 1), (30, 1)] {
        for hub_begins in [true, false] {
            let first = branch(&realm, &device, &common, first_len, 1);
            let second = branch(&realm, &device, &common, second_len, 2);
            let mut at_hub = Memory::default();
            let mut at_device = Memory::default();
            for op in hub_log.iter().chain(&common) {
                at_hub.add(op);
                at_device.add(op);
            }
            first.iter().for_each(|o| assert!(!at_hub.add(o)));
            second.iter().for_each(|o| assert!(!at_device.add(o)));
            let to_device = SharePolicy::for_peer(&realm, Some(hub.author()), device.author());
            let (flights, _) = if hub_begins {
                let mut s = Session::new(realm, to_device, at_hub.frontier());
                let hello = s.hello();
                let d = Session::new(realm, SharePolicy::Everything, at_device.frontier());
                drive(&mut at_hub, s, &mut at_device, d, hello)
            } else {
                let mut d = Session::new(realm, SharePolicy::Everything, at_device.frontier());
                let hello = d.hello();
                let s = Session::new(realm, to_device, at_hub.frontier());
                drive(&mut at_device, d, &mut at_hub, s, hello)
            };
            let all: BTreeSet<OpId> =
                common.iter().chain(&first).chain(&second).map(|o| SignedOp::decode(o).expect("valid").id).collect();
            let case = format!("{first_len} vs {second_len}, hub begins: {hub_begins}");
            assert_eq!(at_hub.all_of(&device.author()), all, "{case}");
            assert_eq!(at_device.all_of(&device.author()), all, "{case}");
            assert!(flights <= 8, "{case}: {flights} flights");
        }
    }
}

/// A neighbour that holds evidence of a fork the hub has not seen (the
/// hub holds the longer branch, so their frontiers agree) tells it,
/// and the hub asks for what it lacks.
#[test]
fn a_neighbour_carries_a_fork_the_hub_cannot_see_from_frontiers() {
    let hub = DeviceKey::from_secret_bytes(&[1; 32]);
    let realm = RealmId(hub.author().0);
    let (device, neighbour) = (DeviceKey::from_secret_bytes(&[2; 32]), DeviceKey::from_secret_bytes(&[3; 32]));
    let common = chain(&realm, &device, 5);
    let first = branch(&realm, &device, &common, 5, 1);
    let second = branch(&realm, &device, &common, 2, 2);
    let mut at_hub = Memory::default();
    let mut at_neighbour = Memory::default();
    for op in common.iter().chain(&first) {
        at_hub.add(op);
    }
    for op in common.iter().chain(&first[..4]) {
        at_neighbour.add(op);
    }
    second.iter().for_each(|o| assert!(at_neighbour.add(o), "evidence at the neighbour"));
    let summary = ForkSummary {
        author: device.author(),
        from: Seq(6),
        ids: at_neighbour.all_of(&device.author()).into_iter().collect(),
    };
    let mut n = Session::new(realm, SharePolicy::Everything, at_neighbour.frontier()).with_forks(vec![summary]);
    let hello = n.hello();
    let h =
        Session::new(realm, SharePolicy::for_peer(&realm, Some(hub.author()), neighbour.author()), at_hub.frontier());
    drive(&mut at_neighbour, n, &mut at_hub, h, hello);
    for op in &second {
        assert!(at_hub.held(&SignedOp::decode(op).expect("valid").id));
    }
}

/// A fork probe lists the head and seqs spaced by powers of two below
/// it, so a fork far back costs a few dozen ids, not the whole chain.
#[test]
fn a_fork_probe_names_a_few_dozen_seqs_however_long_the_chain() {
    let hub = DeviceKey::from_secret_bytes(&[1; 32]);
    let realm = RealmId(hub.author().0);
    let device = DeviceKey::from_secret_bytes(&[2; 32]);
    let mut a = Memory::default();
    chain(&realm, &device, 3000).iter().for_each(|o| {
        a.add(o);
    });
    let mut session = Session::new(realm, SharePolicy::Everything, a.frontier());
    session.fork_seen(device.author());
    let mut theirs = Frontier::default();
    theirs.0.insert(device.author(), FrontierEntry { seq: Seq(1), head: OpId::NONE });
    session
        .receive(Message::Hello(Hello { version: PROTOCOL_VERSION, realm, frontier: FrontierForm::Whole(theirs) }))
        .expect("hello");
    let mut probe = None;
    while let Some(m) = session.next_message(&mut a).expect("memory") {
        if let Message::ForkProbe { ids, .. } = m {
            probe = Some(ids);
        }
    }
    let ids = probe.expect("a probe");
    let seqs: Vec<u64> = ids.iter().map(|(s, _)| s.0).collect();
    assert_eq!(&seqs[..5], &[3000, 2999, 2998, 2996, 2992]);
    assert!(seqs.len() <= 14, "{seqs:?}");
    assert!(Message::decode(&Message::ForkProbe { author: device.author(), ids }.encode()).is_ok());
    let big = Message::ForkProbe { author: device.author(), ids: vec![(Seq(1), OpId::NONE); FORK_PROBE_IDS_MAX + 1] };
    assert_eq!(Message::decode(&big.encode()), Err(WireError::ProbeTooLarge(FORK_PROBE_IDS_MAX + 1)));
}

#[test]
fn wrong_realm_version_or_order_is_refused() {
    let realm = RealmId([1; 32]);
    let mut session = Session::new(realm, SharePolicy::Everything, Frontier::default());
    assert_eq!(session.receive(Message::Done), Err(SyncError::Unexpected("done")));
    let hello =
        |version, realm| Message::Hello(Hello { version, realm, frontier: FrontierForm::Whole(Frontier::default()) });
    assert_eq!(session.receive(hello(1, realm)), Err(SyncError::Version(1)));
    assert_eq!(
        session.receive(hello(PROTOCOL_VERSION, RealmId([2; 32]))),
        Err(SyncError::OtherRealm(RealmId([2; 32])))
    );
    assert!(Message::decode(&[9, 9, 9]).is_err());
    let answer = Message::Hello(Hello { version: PROTOCOL_VERSION, realm, frontier: FrontierForm::Answer(Vec::new()) });
    assert_eq!(session.receive(answer), Err(SyncError::UnaskedAnswer));
    let big = Message::Ops(vec![vec![0; 8]; BATCH_OPS_MAX + 1]).encode();
    assert_eq!(Message::decode(&big), Err(WireError::BatchTooLarge(BATCH_OPS_MAX + 1)));
}

/// The base a responder remembers is the frontier the hello carried, not
/// what the peer holds once operations went to it (a node may take its
/// snapshot of the session only after it sent them).
#[test]
fn a_responder_remembers_the_hello_not_what_it_sent_since() {
    let hub = DeviceKey::from_secret_bytes(&[1; 32]);
    let realm = RealmId(hub.author().0);
    let key = DeviceKey::from_secret_bytes(&[7; 32]);
    let a = Memory::default();
    let mut b = Memory::default();
    for op in chain(&realm, &key, 3) {
        b.add(&op);
    }
    let mut sa = Session::new(realm, SharePolicy::Everything, a.frontier());
    let mut sb = Session::new(realm, SharePolicy::Everything, b.frontier());
    sb.receive(sa.hello()).expect("hello");
    while sb.next_message(&mut b).expect("memory").is_some() {}
    assert_eq!(sb.hello_received(), Some(&a.frontier()));
    assert_eq!(sb.peer_frontier(), Some(&b.frontier()), "B counts what it sent as held by A");
}

#[test]
fn peers_that_synced_before_send_only_what_moved_and_fall_back_to_whole_frontiers() {
    let hub = DeviceKey::from_secret_bytes(&[1; 32]);
    let realm = RealmId(hub.author().0);
    let keys: Vec<DeviceKey> = (0..200u8).map(|i| DeviceKey::from_secret_bytes(&[i.wrapping_add(10); 32])).collect();
    let mut a = Memory::default();
    let mut b = Memory::default();
    for key in &keys {
        for op in chain(&realm, key, 3) {
            a.add(&op);
            b.add(&op);
        }
    }
    // What A sent B last time, and B remembers.
    let base = a.frontier();
    // A moves on for 5 authors.
    for key in &keys[..5] {
        let more = chain(&realm, key, 4);
        a.add(&more[3]);
    }
    let exchange = |a: &mut Memory, b: &mut Memory, remembered: Vec<Frontier>| {
        let mut sa = Session::new(realm, SharePolicy::Everything, a.frontier());
        let mut sb = Session::new(realm, SharePolicy::Everything, b.frontier());
        for r in remembered {
            sb.remember(r);
        }
        let hello = sa.hello_since(&base);
        let (flights, bytes) = drive(a, sa, b, sb, hello);
        assert_eq!(a.frontier(), b.frontier());
        (bytes, flights)
    };
    let missing: usize = keys[..5].iter().map(|k| chain(&realm, k, 4)[3].len()).sum();
    // B remembers the base: a few hundred bytes beyond the operations.
    let (bytes, _) = exchange(&mut a.clone_memory(), &mut b.clone_memory(), vec![base.clone()]);
    assert!(bytes < missing + 600, "{bytes} bytes for {missing} bytes of operations");
    // B received a later hello whose answer A never heard: A still names
    // the older base, which B keeps too.
    let (bytes, _) = exchange(&mut a.clone_memory(), &mut b.clone_memory(), vec![a.frontier(), base.clone()]);
    assert!(bytes < missing + 600, "{bytes} bytes for {missing} bytes of operations");
    // B forgot it: it asks for the whole frontier, and they still converge.
    let (bytes, flights) = exchange(&mut a, &mut b, Vec::new());
    assert!(bytes > 200 * 60, "{bytes} bytes: the whole frontier went");
    assert!(flights <= 5, "{flights} flights");
}
