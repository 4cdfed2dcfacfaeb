//! Reconciliation: how two nodes bring each other up to date, as a state
//! machine with no I/O. A transport (iroh QUIC, the simulator, a bundle file)
//! carries [`Message`]s; the store behind [`OpSource`] hands out operations.
//!
//! ```text
//!   initiator A                               responder B
//!   Hello { realm, frontier_A (whole) }  ──►
//!                                        ◄──  Hello { realm, where B differs from frontier_A }
//!                                        ◄──  Ops [what A lacks, chain order] … Done
//!   Ops [what B lacks, chain order] … Done ──►
//!   (the session may stay open: new operations on either side are
//!    pushed as further Ops as soon as the side learns of them)
//! ```
//!
//! The initiator sends its whole frontier; the responder answers with only
//! the entries where it differs, from which the initiator rebuilds the
//! responder's frontier: one round trip, one whole frontier on the wire, then
//! a stream of operations proportional to the difference. Operations go in
//! chain order per author, the hub's log first (it enrols the authors of the
//! rest), in batches bounded in count and bytes; the receiver verifies each
//! before storing it, so an interrupted session loses nothing and the next
//! one resumes from the receiver's new frontier.
//!
//! **Forks.** A device restored from an older copy of itself (or cloned)
//! signs a second branch of its log. A side sees it when the peer's head at
//! some seq is not its own operation there (whoever holds more checks the
//! other's head), or when an operation it stores does not link to its chain.
//! It then sends a [`Message::ForkProbe`]: its chain's ids at its head and
//! at exponentially spaced seqs below. The peer finds the highest of them it
//! shares (the branches part after it), sends every operation of that author
//! it holds from there, and asks for the same back ([`Message::ForkFrom`]):
//! both branches reach both sides, which keep the one they did not have
//! first as evidence. A side that holds evidence lists, after the hello,
//! the ids it holds from the fork on ([`Message::Forks`]), so a peer that
//! lacks any of them asks for them: a neighbour carries a fork to the hub.
//! What a side sends is
//! its [`SharePolicy`]: the hub gives a cash point the hub's log and the cash
//! point's own, not other devices' histories; everyone else hands over
//! everything, so a cash point can carry a neighbour's operations to the hub
//! (store and forward).

use std::collections::VecDeque;

use crate::frontier::{Difference, Frontier, FrontierEntry};
use crate::ids::{AuthorId, OpId, RealmId, Seq};
use crate::op;

mod wire;
pub use wire::{
    ALPN, AuthorRef, BATCH_BYTES_TARGET, BATCH_OPS_MAX, Change, FORK_ANSWERS_PER_SESSION_MAX, FORK_PROBE_IDS_MAX,
    FORK_SUMMARIES_MAX, FORK_SUMMARY_IDS_MAX, FRONTIER_AUTHORS_MAX, ForkSummary, FrontierForm, Hello,
    MESSAGE_BYTES_MAX, Message, PROTOCOL_VERSION, WireError, frontier_hash,
};
use wire::{apply_changes, changes};

/// Why a session ended early.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SyncError {
    #[error("the peer speaks sync protocol version {0}; this node speaks {PROTOCOL_VERSION}: update the older one")]
    Version(u16),
    #[error("the peer belongs to another realm ({0:?}): it cannot sync with this one")]
    OtherRealm(RealmId),
    #[error("the peer sent {0} before its hello")]
    Unexpected(&'static str),
    #[error("the peer answered a hello this side never sent")]
    UnaskedAnswer,
    #[error("the peer's frontier names an author its base does not have")]
    BadChanges,
    #[error("the peer refused to sync: {0}")]
    Refused(String),
}

/// One operation of an author's chain, as a store hands it out.
#[derive(Debug, Clone)]
pub struct ChainOp {
    pub seq: Seq,
    pub id: OpId,
    pub bytes: Vec<u8>,
}

/// Where a session reads the operations it sends.
pub trait OpSource {
    type Error;
    /// `author`'s chain operations from `from` to `upto` (inclusive), in
    /// order: at most `max_ops`, stopping once `max_bytes` is reached (but
    /// at least one if any is held).
    fn chain(
        &mut self,
        author: &AuthorId,
        from: Seq,
        upto: Seq,
        max_ops: usize,
        max_bytes: usize,
    ) -> Result<Vec<ChainOp>, Self::Error>;

    /// The id of `author`'s chain operation at `seq`, if held.
    fn chain_id(&mut self, author: &AuthorId, seq: Seq) -> Result<Option<OpId>, Self::Error> {
        Ok(self.chain(author, seq, seq, 1, usize::MAX)?.into_iter().next().filter(|op| op.seq == seq).map(|op| op.id))
    }

    /// Every operation of `author` held with a seq from `from` on, on any
    /// branch (chain and evidence), by seq: at most `max_ops` (never
    /// splitting the operations of one seq, so a caller goes on from the
    /// last seq + 1).
    fn all_from(&mut self, author: &AuthorId, from: Seq, max_ops: usize) -> Result<Vec<ChainOp>, Self::Error>;

    /// Whether the operation `id` is held, on any branch.
    fn holds(&mut self, id: &OpId) -> Result<bool, Self::Error>;
}

/// Which authors' operations a side hands to its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharePolicy {
    /// Everything held (cash points to anyone, anyone to the hub).
    Everything,
    /// The hub to a device: the hub's log and the device's own.
    HubTo { hub: AuthorId, peer: AuthorId },
}

impl SharePolicy {
    /// What a node sends to `peer`, given who it is.
    pub fn for_peer(realm: &RealmId, me: Option<AuthorId>, peer: AuthorId) -> SharePolicy {
        let hub = realm.hub();
        if me == Some(hub) && peer != hub { SharePolicy::HubTo { hub, peer } } else { SharePolicy::Everything }
    }

    pub fn shares(&self, author: &AuthorId) -> bool {
        match self {
            SharePolicy::Everything => true,
            SharePolicy::HubTo { hub, peer } => author == hub || author == peer,
        }
    }
}

/// Counters of one session, for status and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    pub ops_sent: u64,
    pub ops_received: u64,
    pub messages_sent: u64,
    pub messages_received: u64,
}

/// What a received message asks of the caller.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// The peer's hello: there may now be operations to send.
    Hello,
    /// Operations to verify and store (in the order given).
    Ops(Vec<Vec<u8>>),
    /// The peer has sent everything this side lacked as of its hello.
    PeerDone,
    /// A fork probe, request or summary: this side answers it with its next messages.
    Fork,
}

/// One side of a sync session.
#[derive(Debug)]
pub struct Session {
    realm: RealmId,
    policy: SharePolicy,
    local: Frontier,
    /// What the peer holds, as far as this side knows: its hello, plus what
    /// was sent to it and received from it since.
    peer: Option<Frontier>,
    /// Runs of operations to send: (author, next seq, last seq).
    plan: VecDeque<(AuthorId, Seq, Seq)>,
    /// Authors where the peer is behind, with the head it named: whether
    /// this side's operation at that seq is the same is checked next.
    fork_checks: VecDeque<(AuthorId, FrontierEntry)>,
    /// Authors seen forked in this session: probed once, and their
    /// operations go as fork runs, not chain runs.
    forked: std::collections::BTreeSet<AuthorId>,
    /// Probes to send.
    probes_due: VecDeque<AuthorId>,
    /// The peer's probes and summaries to answer.
    probes_received: VecDeque<(AuthorId, Vec<(Seq, OpId)>)>,
    summaries_received: VecDeque<ForkSummary>,
    /// Operations to send from a fork on: (author, next seq).
    fork_runs: VecDeque<(AuthorId, Seq)>,
    /// Per forked author, the highest seq its fork runs went up to: what the
    /// author records later goes the same way.
    fork_sent: std::collections::BTreeMap<AuthorId, Seq>,
    fork_answers: usize,
    /// What this side holds of forked authors, told after the hello and
    /// again when it changes.
    forks_local: Vec<ForkSummary>,
    forks_told: Vec<ForkSummary>,
    forks_sent: bool,
    /// The frontier this side's hello carried (the initiator's), the base of
    /// the answer.
    hello_sent: Option<Frontier>,
    /// A hello arrived that this side has not answered yet.
    answer_due: bool,
    /// The responder lacked the base of the initiator's hello.
    need_whole_due: bool,
    /// The initiator must send its whole frontier again.
    whole_due: bool,
    /// The responder: the initiator's frontiers as received in the last
    /// sessions (the bases a `Since` hello may name).
    remembered: Vec<Frontier>,
    /// The peer's frontier as its hello said (what it holds moves on as
    /// operations are sent; this is the base the next session may name).
    hello_received: Option<Frontier>,
    done_sent: bool,
    peer_done: bool,
    stats: SessionStats,
}

impl Session {
    pub fn new(realm: RealmId, policy: SharePolicy, local: Frontier) -> Session {
        Session {
            realm,
            policy,
            local,
            peer: None,
            plan: VecDeque::new(),
            fork_checks: VecDeque::new(),
            forked: std::collections::BTreeSet::new(),
            probes_due: VecDeque::new(),
            probes_received: VecDeque::new(),
            summaries_received: VecDeque::new(),
            fork_runs: VecDeque::new(),
            fork_sent: std::collections::BTreeMap::new(),
            fork_answers: 0,
            forks_local: Vec::new(),
            forks_told: Vec::new(),
            forks_sent: false,
            hello_sent: None,
            answer_due: false,
            need_whole_due: false,
            whole_due: false,
            remembered: Vec::new(),
            hello_received: None,
            done_sent: false,
            peer_done: false,
            stats: SessionStats::default(),
        }
    }

    /// What this side holds of forked authors (see [`ForkSummary`]): told
    /// to the peer once after the hello, as far as the policy shares them.
    pub fn with_forks(mut self, forks: Vec<ForkSummary>) -> Session {
        self.forks_changed(forks);
        self
    }

    /// This side now holds `forks` of forked authors (evidence arrived,
    /// perhaps from another peer): the peer is told again if it changed.
    pub fn forks_changed(&mut self, forks: Vec<ForkSummary>) {
        if forks != self.forks_told {
            self.forks_told = forks.clone();
            self.forks_local = forks;
            self.forks_sent = false;
        }
    }

    /// Storing what the peer sent showed that `author` forked (an operation
    /// kept as evidence): the peer is probed for the rest of its branch.
    pub fn fork_seen(&mut self, author: AuthorId) {
        if self.forked.insert(author) {
            self.probes_due.push_back(author);
            self.plan.retain(|(a, _, _)| *a != author);
        }
    }

    /// The initiator's first message, its whole frontier. The responder
    /// sends nothing until this arrives; its answer is its first
    /// [`Session::next_message`].
    pub fn hello(&mut self) -> Message {
        self.stats.messages_sent += 1;
        self.hello_sent = Some(self.local.clone());
        Message::Hello(Hello {
            version: PROTOCOL_VERSION,
            realm: self.realm,
            frontier: FrontierForm::Whole(self.local.clone()),
        })
    }

    /// The initiator's first message to a peer it sent `base` to last time:
    /// only what changed since. If the peer no longer holds that base it
    /// asks for the whole frontier, which costs one more round trip.
    pub fn hello_since(&mut self, base: &Frontier) -> Message {
        self.stats.messages_sent += 1;
        self.hello_sent = Some(self.local.clone());
        let changes = changes(base, &self.local, |_, _| true);
        Message::Hello(Hello {
            version: PROTOCOL_VERSION,
            realm: self.realm,
            frontier: FrontierForm::Since { base: frontier_hash(base), changes },
        })
    }

    /// The frontier this side's hello carried, to remember as the base of
    /// the next session with this peer.
    pub fn hello_sent(&self) -> Option<&Frontier> {
        self.hello_sent.as_ref()
    }

    /// The responder: a frontier this peer sent in an earlier session (the
    /// last one, and the one before if the peer may not have heard the
    /// answer to the last). A `Since` hello may name any of them.
    pub fn remember(&mut self, peer_frontier: Frontier) {
        self.remembered.push(peer_frontier);
    }

    /// Whether this side answers hellos (it did not send one).
    pub fn is_responder(&self) -> bool {
        self.hello_sent.is_none()
    }

    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// Both sides have sent everything the other lacked as of the hellos.
    pub fn caught_up(&self) -> bool {
        self.done_sent && self.peer_done
    }

    /// What the peer holds, as far as this side knows.
    pub fn peer_frontier(&self) -> Option<&Frontier> {
        self.peer.as_ref()
    }

    /// The frontier the peer's hello carried (whole, or rebuilt from the
    /// base it named): what a responder remembers as the next base.
    pub fn hello_received(&self) -> Option<&Frontier> {
        self.hello_received.as_ref()
    }

    pub fn receive(&mut self, message: Message) -> Result<Incoming, SyncError> {
        self.stats.messages_received += 1;
        match message {
            Message::Hello(hello) => {
                if hello.version != PROTOCOL_VERSION {
                    return Err(SyncError::Version(hello.version));
                }
                if hello.realm != self.realm {
                    return Err(SyncError::OtherRealm(hello.realm));
                }
                let frontier = match hello.frontier {
                    FrontierForm::Answer(changes) => {
                        let base = self.hello_sent.as_ref().ok_or(SyncError::UnaskedAnswer)?;
                        apply_changes(base, changes).ok_or(SyncError::BadChanges)?
                    }
                    // A whole frontier: answer it, unless this side sent
                    // its own whole frontier already (both sides began).
                    FrontierForm::Whole(frontier) => {
                        self.answer_due = self.hello_sent.is_none();
                        frontier
                    }
                    FrontierForm::Since { base, changes } => {
                        let known = self.remembered.iter().find(|r| frontier_hash(r) == base);
                        match known.and_then(|base| apply_changes(base, changes)) {
                            Some(frontier) => {
                                self.answer_due = self.hello_sent.is_none();
                                frontier
                            }
                            None => {
                                self.need_whole_due = true;
                                return Ok(Incoming::Hello);
                            }
                        }
                    }
                };
                self.hello_received = Some(frontier.clone());
                self.peer = Some(frontier);
                self.replan();
                Ok(Incoming::Hello)
            }
            Message::Refused(reason) => Err(SyncError::Refused(reason)),
            Message::NeedWhole => {
                if self.hello_sent.is_none() {
                    return Err(SyncError::Unexpected("a request for a whole frontier"));
                }
                self.whole_due = true;
                Ok(Incoming::Hello)
            }
            Message::Ops(_) | Message::Done if self.peer.is_none() => {
                Err(SyncError::Unexpected(if matches!(message, Message::Done) { "done" } else { "operations" }))
            }
            Message::Ops(ops) => {
                self.stats.ops_received += ops.len() as u64;
                let peer = self.peer.as_mut().expect("checked above");
                for bytes in &ops {
                    if let Some((author, seq, id)) = op::peek(bytes) {
                        note_held(peer, author, seq, id);
                    }
                }
                Ok(Incoming::Ops(ops))
            }
            Message::Done => {
                self.peer_done = true;
                Ok(Incoming::PeerDone)
            }
            Message::ForkProbe { author, ids } => {
                self.probes_received.push_back((author, ids));
                Ok(Incoming::Fork)
            }
            Message::ForkFrom { author, from } => {
                if self.policy.shares(&author) && self.fork_answers < FORK_ANSWERS_PER_SESSION_MAX {
                    self.fork_answers += 1;
                    self.fork_runs.push_back((author, from.max(Seq::FIRST)));
                }
                Ok(Incoming::Fork)
            }
            Message::Forks(summaries) => {
                self.summaries_received.extend(summaries);
                Ok(Incoming::Fork)
            }
        }
    }

    /// This side's frontier moved (it stored or recorded operations): what
    /// the peer lacks of it is sent next, which is how new operations are
    /// pushed while a session stays open.
    pub fn local_changed(&mut self, local: Frontier) {
        self.local = local;
        if self.peer.is_some() {
            self.replan();
        }
    }

    fn replan(&mut self) {
        let peer = self.peer.as_ref().expect("replan runs after the hello");
        self.plan.clear();
        self.fork_checks.clear();
        let hub = self.realm.hub();
        let mut runs = Vec::new();
        for difference in self.local.ahead_of(peer) {
            match difference {
                Difference::Behind { author, .. } | Difference::Fork { author, .. }
                    if self.forked.contains(&author) => {}
                Difference::Behind { author, after, upto } => {
                    // Whether the peer's head is ours there is checked whatever
                    // the policy shares: a fork found is a branch to ask for.
                    if let Some(theirs) = peer.get(&author).filter(|e| e.seq > Seq(0) && e.head != OpId::NONE) {
                        self.fork_checks.push_back((author, theirs));
                    }
                    if self.policy.shares(&author) {
                        runs.push((author, after.next(), upto));
                    }
                }
                Difference::Fork { author, .. } => {
                    self.forked.insert(author);
                    self.probes_due.push_back(author);
                }
            }
        }
        // What a forked author records after its fork runs went follows them.
        for (author, sent) in &self.fork_sent {
            let head = self.local.get(author).map_or(Seq(0), |e| e.seq);
            if head > *sent && !self.fork_runs.iter().any(|(a, _)| a == author) {
                self.fork_runs.push_back((*author, sent.next()));
            }
        }
        // The hub's log first: it enrols the authors of everything else.
        runs.sort_by_key(|(author, _, _)| *author != hub);
        self.plan.extend(runs);
    }

    /// The next message to send, if any: operations the peer lacks, then
    /// `Done` once. `None` means nothing to send until something changes.
    pub fn next_message<S: OpSource>(&mut self, source: &mut S) -> Result<Option<Message>, S::Error> {
        if self.need_whole_due {
            self.need_whole_due = false;
            self.stats.messages_sent += 1;
            return Ok(Some(Message::NeedWhole));
        }
        if self.whole_due {
            self.whole_due = false;
            return Ok(Some(self.hello()));
        }
        let Some(peer) = self.peer.as_mut() else {
            return Ok(None);
        };
        if self.answer_due {
            self.answer_due = false;
            self.stats.messages_sent += 1;
            // A head is needed where the initiator holds as much or more:
            // there it checks whether this side's head is its own operation
            // (a fork shows), even of an author it does not share with this
            // side (the hub, of a device a neighbour carries). Where it holds
            // less, this side checks the initiator's heads, which it has.
            let answer = changes(peer, &self.local, |theirs, ours| theirs.is_some_and(|t| t.seq >= ours.seq));
            return Ok(Some(Message::Hello(Hello {
                version: PROTOCOL_VERSION,
                realm: self.realm,
                frontier: FrontierForm::Answer(answer),
            })));
        }
        if let Some(message) = self.next_fork_message(source)? {
            self.stats.messages_sent += 1;
            return Ok(Some(message));
        }
        let peer = self.peer.as_mut().expect("checked above");
        let mut batch = Vec::new();
        let mut bytes = 0usize;
        while let Some((author, from)) = self.fork_runs.front().copied() {
            if batch.len() >= BATCH_OPS_MAX || bytes >= BATCH_BYTES_TARGET {
                break;
            }
            let ops = source.all_from(&author, from, (BATCH_OPS_MAX - batch.len()).min(256))?;
            match ops.last() {
                Some(last) => self.fork_runs.front_mut().expect("checked above").1 = last.seq.next(),
                None => {
                    self.fork_runs.pop_front();
                    let sent = self.fork_sent.entry(author).or_insert(Seq(0));
                    *sent = (*sent).max(Seq(from.0.saturating_sub(1)));
                }
            }
            for op in ops {
                bytes += op.bytes.len();
                batch.push(op.bytes);
            }
        }
        while let Some((author, from, upto)) = self.plan.front().copied() {
            if batch.len() >= BATCH_OPS_MAX || bytes >= BATCH_BYTES_TARGET {
                break;
            }
            let ops = source.chain(&author, from, upto, BATCH_OPS_MAX - batch.len(), BATCH_BYTES_TARGET - bytes)?;
            let Some(last) = ops.last() else {
                // Not held after all (the frontier moved back?): skip the run.
                self.plan.pop_front();
                continue;
            };
            let next = last.seq.next();
            note_held(peer, author, last.seq, last.id);
            if next > upto {
                self.plan.pop_front();
            } else if let Some(front) = self.plan.front_mut() {
                front.1 = next;
            }
            for op in ops {
                bytes += op.bytes.len();
                batch.push(op.bytes);
            }
        }
        if !batch.is_empty() {
            self.stats.ops_sent += batch.len() as u64;
            self.stats.messages_sent += 1;
            return Ok(Some(Message::Ops(batch)));
        }
        if !self.done_sent {
            self.done_sent = true;
            self.stats.messages_sent += 1;
            return Ok(Some(Message::Done));
        }
        Ok(None)
    }
}

impl Session {
    /// The next message about forks, if any: this side's summary once, the
    /// checks of the peer's heads, probes, answers to the peer's probes and
    /// summaries.
    fn next_fork_message<S: OpSource>(&mut self, source: &mut S) -> Result<Option<Message>, S::Error> {
        if !self.forks_sent {
            self.forks_sent = true;
            let shared: Vec<ForkSummary> = std::mem::take(&mut self.forks_local)
                .into_iter()
                .filter(|s| self.policy.shares(&s.author))
                .take(FORK_SUMMARIES_MAX)
                .map(|mut s| {
                    s.ids.truncate(FORK_SUMMARY_IDS_MAX);
                    s
                })
                .collect();
            if !shared.is_empty() {
                return Ok(Some(Message::Forks(shared)));
            }
        }
        while let Some((author, theirs)) = self.fork_checks.pop_front() {
            if self.forked.contains(&author) {
                continue;
            }
            if source.chain_id(&author, theirs.seq)?.is_some_and(|ours| ours != theirs.head) {
                self.forked.insert(author);
                self.probes_due.push_back(author);
                self.plan.retain(|(a, _, _)| *a != author);
            }
        }
        if let Some(author) = self.probes_due.pop_front() {
            let head = self.local.get(&author).map_or(Seq(0), |e| e.seq);
            // The head, then seqs 1, 2, 4, 8, ... below it.
            let mut ids = Vec::new();
            let mut offset = 0u64;
            while let Some(seq) = head.0.checked_sub(offset).filter(|s| *s >= 1) {
                if let Some(id) = source.chain_id(&author, Seq(seq))? {
                    ids.push((Seq(seq), id));
                }
                if ids.len() >= FORK_PROBE_IDS_MAX {
                    break;
                }
                offset = if offset == 0 { 1 } else { offset.saturating_mul(2) };
            }
            // With nothing of the author's chain held, the peer sends all it has.
            return Ok(Some(Message::ForkProbe { author, ids }));
        }
        if self.fork_answers >= FORK_ANSWERS_PER_SESSION_MAX {
            self.probes_received.clear();
        }
        if let Some((author, ids)) = self.probes_received.pop_front() {
            self.fork_answers += 1;
            // The highest seq both chains share: the branches part after it.
            let mut shared = Seq(0);
            for (seq, id) in ids {
                if source.chain_id(&author, seq)? == Some(id) {
                    shared = seq;
                    break;
                }
            }
            let from = shared.next();
            if self.policy.shares(&author) {
                self.fork_runs.push_back((author, from));
            }
            self.forked.insert(author);
            self.plan.retain(|(a, _, _)| *a != author);
            return Ok(Some(Message::ForkFrom { author, from }));
        }
        while let Some(summary) = self.summaries_received.pop_front() {
            let mut lacking = false;
            for id in &summary.ids {
                if !source.holds(id)? {
                    lacking = true;
                    break;
                }
            }
            if lacking {
                self.forked.insert(summary.author);
                return Ok(Some(Message::ForkFrom { author: summary.author, from: summary.from }));
            }
        }
        Ok(None)
    }
}

/// Records that the peer holds `author`'s chain up to `seq` (when that
/// extends what it was known to hold contiguously).
fn note_held(peer: &mut Frontier, author: AuthorId, seq: Seq, id: OpId) {
    let known = peer.0.get(&author).map_or(Seq(0), |e| e.seq);
    if seq > known {
        peer.0.insert(author, FrontierEntry { seq, head: id });
    }
}

#[cfg(test)]
mod tests;
