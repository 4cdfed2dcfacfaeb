//! Peers: sync sessions, frontier files and bundles, fork summaries, what a peer was sent and holds,
//! enrolment tokens, addresses.

use super::record::check_limits;
use super::{Node, NodeError, PendingEnrolment, Result, TransactionBound, token_key};
use crate::state::Applied;
use saldo_sync::bundle::{BundleBody, FrontierFile};
use saldo_sync::reconcile::{ChainOp, ForkSummary, OpSource, Session, SharePolicy};
use saldo_sync::{AuthorId, Body, DeviceKey, Frontier, FrontierEntry, Label, OfflineLimits, OpId, Role, Seq};

/// Meta keys: the frontier this node last sent a peer, and last received from one.
const SENT_TO: &str = "frontier_sent_to";

const RECEIVED_FROM: &str = "frontier_received_from";

/// The one received before: the peer may not have heard the answer to the
/// last hello, and then names this one as its base.
const RECEIVED_BEFORE_FROM: &str = "frontier_received_before_from";

/// Who a verified frontier file says lacks what, as this node knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontierHolder {
    pub holder: AuthorId,
    /// The device's enrolled name (`None` for the hub).
    pub name: Option<String>,
    pub role: Role,
    /// When the holder wrote the file, by its clock.
    pub created_ms: u64,
    pub frontier: Frontier,
}

/// What importing a bundle did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BundleReport {
    pub exporter: String,
    pub operations: usize,
    pub new: usize,
    pub duplicates: usize,
    pub equivocations: usize,
    /// Operations refused, each with its reason; nothing else changed for them.
    pub refused: Vec<String>,
}

impl Node {
    /// Per author: the highest contiguous seq held and the id there.
    pub fn frontier(&mut self) -> Result<Frontier> {
        let tx = self.store.read()?;
        Ok(Frontier(
            tx.authors()?
                .into_iter()
                .filter_map(|a| a.head_id.map(|head| (a.author, FrontierEntry { seq: a.head_seq, head })))
                .collect(),
        ))
    }
    /// What this node hands to `peer` when they sync.
    pub fn share_policy(&self, peer: AuthorId) -> SharePolicy {
        SharePolicy::for_peer(&self.me.ctx.realm, self.me.ctx.own, peer)
    }
    /// What this node holds, for another node to export a bundle of what it
    /// lacks: the file, and its bytes signed by this node's key.
    pub fn frontier_file(&mut self) -> Result<(FrontierFile, Vec<u8>)> {
        let frontier = self.frontier()?;
        let key = self.me.key.as_ref().ok_or(NodeError::NoKey)?;
        let file = FrontierFile {
            realm: self.me.ctx.realm,
            holder: key.author(),
            created_ms: self.me.clock.now_ms(),
            frontier,
        };
        let bytes = file.seal(key);
        Ok((file, bytes))
    }
    /// Opens a frontier file for [`Node::export_bundle`]: signed by its
    /// holder, of this realm, and the holder is the hub or a device this node
    /// knows as enrolled (revoked or frozen devices too: they still deliver
    /// what they recorded). What the bundle shares is decided by that
    /// holder's role, never by the file alone.
    pub fn open_frontier_file(&mut self, bytes: &[u8]) -> Result<FrontierHolder> {
        let realm = self.me.ctx.realm;
        let file = FrontierFile::open(bytes, &realm).map_err(|e| NodeError::Refused(e.to_string()))?;
        let (name, role) = if file.holder == realm.hub() {
            (None, Role::Hub)
        } else {
            let is_hub = self.is_hub();
            let row = self.store.read()?.author(&file.holder)?;
            match row {
                Some(row) if matches!(row.role, Role::CashPoint | Role::SchoolDevice) => (Some(row.name), row.role),
                Some(row) => {
                    return Err(NodeError::Refused(format!(
                        "the frontier file is signed by the hub's {} key, which receives no bundles: write it with `saldo bundle frontier` on the node that will import the bundle",
                        row.role.name()
                    )));
                }
                None => {
                    return Err(NodeError::Refused(format!(
                        "the frontier file is signed by {}, a device this node does not know as enrolled in the realm: write it with `saldo bundle frontier` on an enrolled device{}",
                        file.holder.to_hex(),
                        if is_hub { "" } else { ", or bring this node the hub's operations first" }
                    )));
                }
            }
        };
        Ok(FrontierHolder { holder: file.holder, name, role, created_ms: file.created_ms, frontier: file.frontier })
    }
    /// A signed bundle of the operations the holder of the frontier file
    /// `lacking` lacks (what this node would send it in a sync session: from
    /// the hub to a device, only the hub's log and the device's own), or of
    /// every operation held. On the hub, a bundle of everything, or for the
    /// hub's own frontier, is the hub's backup: it alone carries contact data.
    pub fn export_bundle(&mut self, lacking: Option<&[u8]>) -> Result<(Vec<u8>, usize)> {
        let (policy, theirs) = match lacking {
            Some(bytes) => {
                let holder = self.open_frontier_file(bytes)?;
                (self.share_policy(holder.holder), holder.frontier)
            }
            None => (SharePolicy::Everything, Frontier::default()),
        };
        self.export_bundle_with(policy, theirs)
    }
    /// A signed bundle of what this node would send `device` in a sync
    /// session, for a device that holds nothing yet (or whose frontier file
    /// is not at hand): it imports what it lacks and skips the rest.
    pub fn export_bundle_for(&mut self, device: AuthorId) -> Result<(Vec<u8>, usize)> {
        self.export_bundle_with(self.share_policy(device), Frontier::default())
    }
    fn export_bundle_with(&mut self, policy: SharePolicy, theirs: Frontier) -> Result<(Vec<u8>, usize)> {
        // From a hub, a bundle is contact with the hub: it carries a recent
        // operation of the hub, a heartbeat if the hub has been quiet.
        self.heartbeat_if_quiet()?;
        let realm = self.me.ctx.realm;
        let mut session = Session::new(realm, policy, self.frontier()?);
        session
            .receive(saldo_sync::reconcile::Message::Hello(saldo_sync::reconcile::Hello {
                version: saldo_sync::reconcile::PROTOCOL_VERSION,
                realm,
                frontier: saldo_sync::reconcile::FrontierForm::Whole(theirs.clone()),
            }))
            .map_err(|e| NodeError::Refused(e.to_string()))?;
        let mut ops = Vec::new();
        while let Some(message) = session.next_message(self)? {
            if let saldo_sync::reconcile::Message::Ops(batch) = message {
                ops.extend(batch);
            }
        }
        self.add_forked_logs(&mut ops, policy, &theirs)?;
        let key = self.me.key.as_ref().ok_or(NodeError::NoKey)?;
        let count = ops.len();
        let body = BundleBody { realm, exporter: key.author(), created_ms: self.me.clock.now_ms(), ops };
        Ok((body.seal(key), count))
    }
    /// A bundle cannot ask back for the rest of a fork, as a sync session
    /// does: it carries every operation (both branches) of the authors whose
    /// log forked as far as either side can tell: those this node holds
    /// evidence on, those whose head in `theirs` is not this node's
    /// operation there, and this node's own log when `theirs` holds more of
    /// it than this node does (it was restored from an older copy).
    fn add_forked_logs(&mut self, ops: &mut Vec<Vec<u8>>, policy: SharePolicy, theirs: &Frontier) -> Result<()> {
        let mut authors: std::collections::BTreeSet<AuthorId> =
            self.fork_summaries()?.into_iter().map(|s| s.author).collect();
        let ours = self.frontier()?;
        for (author, their) in &theirs.0 {
            let mine = ours.get(author).map_or(Seq(0), |e| e.seq);
            let differs = their.seq <= mine
                && their.head != OpId::NONE
                && self.store.read()?.chain_op_at(author, their.seq)?.is_some_and(|id| id != their.head);
            let restored = Some(*author) == self.me.ctx.own && their.seq > mine;
            if differs || restored {
                authors.insert(*author);
            }
        }
        let mut held: std::collections::HashSet<OpId> =
            ops.iter().filter_map(|bytes| saldo_sync::op::peek(bytes).map(|(_, _, id)| id)).collect();
        for author in authors.into_iter().filter(|a| policy.shares(a)) {
            let mut from = Seq::FIRST;
            loop {
                let page = self.store.read()?.all_from(&author, from, 4096)?;
                let Some(last) = page.last().map(|op| op.seq) else { break };
                for op in page {
                    if held.insert(op.id) {
                        ops.push(op.bytes);
                    }
                }
                from = last.next();
            }
        }
        Ok(())
    }
    /// Imports a bundle: refused whole if its signature does not match its
    /// contents or it belongs to another realm; otherwise each operation is
    /// verified and stored like one received from a peer.
    pub fn import_bundle(&mut self, bytes: &[u8]) -> Result<BundleReport> {
        let body = BundleBody::open(bytes, &self.me.ctx.realm).map_err(|e| NodeError::Refused(e.to_string()))?;
        let known = body.exporter == self.me.ctx.realm.hub() || self.store.read()?.author(&body.exporter)?.is_some();
        if !known {
            return Err(NodeError::Refused(format!(
                "the bundle was exported by {}, a device this node does not know: import the hub's operations first",
                body.exporter.to_hex()
            )));
        }
        let mut report =
            BundleReport { exporter: body.exporter.to_hex(), operations: body.ops.len(), ..BundleReport::default() };
        for (result, bytes) in self.ingest_within(&body.ops, TransactionBound::SHORT)?.into_iter().zip(&body.ops) {
            match result {
                Ok(Applied::New) => report.new += 1,
                Ok(Applied::Duplicate) => report.duplicates += 1,
                Ok(Applied::Equivocation { .. }) => report.equivocations += 1,
                Err(e) => {
                    let what = saldo_sync::op::peek(bytes)
                        .map_or("an undecodable operation".to_string(), |(author, seq, _)| {
                            format!("operation #{} of {}", seq.0, author.to_hex())
                        });
                    report.refused.push(format!("{what}: {e}"));
                }
            }
        }
        Ok(report)
    }
    /// A sync session with `peer`, from this node's current frontier and
    /// what it holds of forked authors.
    pub fn session(&mut self, peer: AuthorId) -> Result<Session> {
        let forks = self.fork_summaries()?;
        Ok(Session::new(self.me.ctx.realm, self.share_policy(peer), self.frontier()?).with_forks(forks))
    }
    /// What this node holds of authors whose log forked (evidence held),
    /// as a sync session tells its peer.
    pub fn fork_summaries(&mut self) -> Result<Vec<ForkSummary>> {
        let tx = self.store.read()?;
        Ok(tx
            .fork_summaries(saldo_sync::reconcile::FORK_SUMMARY_IDS_MAX)?
            .into_iter()
            .take(saldo_sync::reconcile::FORK_SUMMARIES_MAX)
            .map(|(author, from, ids)| ForkSummary { author, from, ids })
            .collect())
    }
    /// A session this node begins with `peer`, and its hello: only what
    /// changed since the last frontier that peer confirmed it received, if
    /// any.
    pub fn initiate(&mut self, peer: AuthorId) -> Result<(Session, saldo_sync::reconcile::Message)> {
        let mut session = self.session(peer)?;
        let hello = match self.peer_frontier(SENT_TO, &peer)? {
            Some(base) => session.hello_since(&base),
            None => session.hello(),
        };
        Ok((session, hello))
    }
    /// A session this node answers, knowing what `peer` sent in the last
    /// sessions.
    pub fn respond(&mut self, peer: AuthorId) -> Result<Session> {
        let mut session = self.session(peer)?;
        for which in [RECEIVED_FROM, RECEIVED_BEFORE_FROM] {
            if let Some(remembered) = self.peer_frontier(which, &peer)? {
                session.remember(remembered);
            }
        }
        Ok(session)
    }
    /// After a hello arrived. A responder remembers the peer's frontier as
    /// the base of the next session's changes, and keeps the one before (the
    /// peer may not hear this answer, and then names the older base). An
    /// initiator remembers the frontier it sent once the answer shows the
    /// peer received it (not when it asks for the whole frontier).
    pub fn after_hello(&mut self, peer: AuthorId, session: &Session) -> Result<()> {
        if session.is_responder() {
            if let Some(theirs) = session.hello_received() {
                let theirs = theirs.clone();
                if let Some(before) = self.peer_frontier(RECEIVED_FROM, &peer)?
                    && before != theirs
                {
                    self.remember_peer_frontier(RECEIVED_BEFORE_FROM, &peer, &before)?;
                }
                self.remember_peer_frontier(RECEIVED_FROM, &peer, &theirs)?;
            }
        } else if session.peer_frontier().is_some()
            && let Some(sent) = session.hello_sent()
        {
            let sent = sent.clone();
            self.remember_peer_frontier(SENT_TO, &peer, &sent)?;
        }
        if let Some((held, theirs)) = self.note_peer_holds_own_log(peer, session)? {
            tracing::warn!(
                "{} holds this device's log up to #{}, this copy up to #{} (restored from an older copy?): fetching {} own operations back before recording",
                peer.to_hex(),
                theirs.0,
                held.0,
                theirs.0 - held.0
            );
        }
        Ok(())
    }
    /// Forgets the frontiers sent to and received from `peer`: the next
    /// session with it exchanges whole frontiers, as a first one does.
    pub fn forget_peer(&mut self, peer: &AuthorId) -> Result<()> {
        let tx = self.store.write()?;
        for which in [SENT_TO, RECEIVED_FROM, RECEIVED_BEFORE_FROM] {
            tx.delete_meta(&format!("{which}:{}", peer.to_hex()))?;
        }
        self.me.commit(tx)?;
        Ok(())
    }
    pub(super) fn peer_frontier(&mut self, which: &str, peer: &AuthorId) -> Result<Option<Frontier>> {
        let tx = self.store.read()?;
        Ok(tx.meta(&format!("{which}:{}", peer.to_hex()))?.and_then(|b| postcard::from_bytes(&b).ok()))
    }
    fn remember_peer_frontier(&mut self, which: &str, peer: &AuthorId, frontier: &Frontier) -> Result<()> {
        let tx = self.store.write()?;
        tx.set_meta(&format!("{which}:{}", peer.to_hex()), &postcard::to_stdvec(frontier).expect("encoding to a Vec"))?;
        self.me.commit(tx)?;
        Ok(())
    }
    /// Whether `peer` may sync with this node: the hub, or a device this
    /// node knows to be enrolled in the realm. A revoked device still may:
    /// what it recorded is real money and must reach the hub, which flags
    /// what came after the revocation.
    pub fn may_sync_with(&mut self, peer: &AuthorId) -> std::result::Result<(), String> {
        if *peer == self.me.ctx.realm.hub() {
            return Ok(());
        }
        let row = self.store.read().and_then(|tx| tx.author(peer)).map_err(|e| format!("storage failure: {e}"))?;
        match row {
            None if self.is_hub() => Err("not enrolled in this realm".into()),
            None => {
                Err("not enrolled in this realm, as far as this node knows (it may need to sync with the hub)".into())
            }
            Some(row) if row.role == Role::HubContacts => Err("the hub's contacts key does not sync".into()),
            Some(_) => Ok(()),
        }
    }
    /// Creates a one-time enrolment token (hub only): a device that presents
    /// it on the join protocol is enrolled as a cash point named `name` with
    /// `limits`. Only the token's hash is stored.
    pub fn create_enrolment_token(&mut self, name: &Label, limits: OfflineLimits) -> Result<[u8; 32]> {
        self.me.hub_key("create enrolment tokens")?;
        check_limits(&limits)?;
        // A fresh key's secret bytes: 32 bytes from the operating system's random source.
        let secret = DeviceKey::generate().secret_bytes();
        let pending = PendingEnrolment { name: name.clone(), limits, created_ms: self.me.clock.now_ms() };
        let tx = self.store.write()?;
        tx.set_meta(&token_key(&secret), &postcard::to_stdvec(&pending).expect("encoding to a Vec"))?;
        self.me.commit(tx)?;
        Ok(secret)
    }
    /// Enrols `device` with the enrolment token `secret`, which is used up.
    pub fn redeem_enrolment_token(&mut self, secret: &[u8; 32], device: AuthorId) -> Result<String> {
        self.me.hub_key("enrol devices")?;
        let key = token_key(secret);
        let pending: PendingEnrolment = {
            let tx = self.store.read()?;
            let bytes = tx.meta(&key)?.ok_or_else(|| {
                NodeError::Refused(
                    "this enrolment token is unknown or was used already: ask the hub for a new one".into(),
                )
            })?;
            postcard::from_bytes(&bytes).map_err(|_| NodeError::Refused("this enrolment token is damaged".into()))?
        };
        if self.store.read()?.author(&device)?.is_some() {
            return Err(NodeError::Refused(format!("device {} is enrolled already", device.to_hex())));
        }
        let key_to_delete = key.clone();
        let signer = self.me.key.as_ref().ok_or(NodeError::NoKey)?;
        let mut tx = self.store.write()?;
        self.me.settle_replacement(&tx, &key_to_delete, &device)?;
        tx.delete_meta(&key_to_delete)?;
        self.me.author(
            &mut tx,
            signer,
            Body::Enrol { device, role: Role::CashPoint, name: pending.name.clone(), limits: pending.limits },
        )?;
        self.me.commit(tx)?;
        Ok(pending.name.to_string())
    }
    /// Remembers where this node listens (for enrolment tokens) or where its hub is.
    pub fn set_addresses(&mut self, which: &str, addresses: &[String]) -> Result<()> {
        let tx = self.store.write()?;
        tx.set_meta(which, addresses.join(" ").as_bytes())?;
        self.me.commit(tx)?;
        Ok(())
    }
    pub fn addresses(&mut self, which: &str) -> Result<Vec<String>> {
        let tx = self.store.read()?;
        Ok(tx
            .meta(which)?
            .map(|b| String::from_utf8_lossy(&b).split_whitespace().map(str::to_string).collect())
            .unwrap_or_default())
    }
    /// When the hub was last in contact (milliseconds since the epoch), if
    /// ever: the time of the newest operation of the hub held here, however
    /// it came (a sync, a bundle of any age). The hub writes a heartbeat when
    /// it is quiet, so a device in touch holds a recent one. The offline
    /// limits count from the same time.
    pub fn last_hub_contact_ms(&mut self) -> Result<Option<u64>> {
        let hub = self.me.ctx.realm.hub();
        let tx = self.store.read()?;
        let head = tx.author(&hub)?.map_or(Seq(0), |a| a.head_seq);
        Ok(tx.op_wall_ms(&hub, head)?)
    }
}

/// A node hands out its operations to sync sessions.
impl OpSource for Node {
    type Error = NodeError;

    fn chain(
        &mut self,
        author: &AuthorId,
        from: Seq,
        upto: Seq,
        max_ops: usize,
        max_bytes: usize,
    ) -> Result<Vec<ChainOp>> {
        Ok(self.store.read()?.chain_range(author, from, upto, max_ops, max_bytes)?)
    }

    fn chain_id(&mut self, author: &AuthorId, seq: Seq) -> Result<Option<OpId>> {
        Ok(self.store.read()?.chain_op_at(author, seq)?)
    }

    fn all_from(&mut self, author: &AuthorId, from: Seq, max_ops: usize) -> Result<Vec<ChainOp>> {
        Ok(self.store.read()?.all_from(author, from, max_ops)?)
    }

    fn holds(&mut self, id: &OpId) -> Result<bool> {
        Ok(self.store.read()?.has_op(id)?)
    }
}
