//! What the sync transport (`net`) asks of the node: its identity, who may
//! sync with it, sessions of the sync protocol, operations from peers,
//! enrolment over the network, the hub's heartbeat. The transport holds a
//! [`Service`] like every other front end and calls only these.
//!
//! A peer's work runs on the writer's bulk queue: a counter's top-up goes
//! before any catch-up call still waiting.

use std::sync::{Arc, Mutex, PoisonError};

use saldo_sync::reconcile::{ForkSummary, Message, Session};
use saldo_sync::{AuthorId, DeviceKey, Frontier, RealmId};
use tokio::sync::watch;

pub use crate::state::{Applied, IngestError};

use super::{Result, Service, ServiceError};
use crate::node::{NodeError, TransactionBound};

/// A sync session, shared by the tasks that read and write its connection.
pub type SharedSession = Arc<Mutex<Session>>;

/// What one call of operations from a peer did: each operation with what
/// became of it, in the order sent.
pub type Ingested = (Vec<Vec<u8>>, Vec<std::result::Result<Applied, IngestError>>);

fn lock(session: &Mutex<Session>) -> std::sync::MutexGuard<'_, Session> {
    session.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Service {
    /// The realm this node belongs to.
    pub fn realm(&self) -> RealmId {
        self.inner.about.realm
    }

    /// The node's device key: the identity its endpoint answers with.
    pub async fn device_key(&self) -> Result<DeviceKey> {
        self.inner.node.call(|node| node.device_key()).await.ok_or_else(|| ServiceError::from(NodeError::NoKey))
    }

    /// Holds recording until a peer says how much of this device's own log
    /// it holds (a device restored from an older copy fetches it back first).
    pub async fn begin_own_log_check(&self) -> Result<()> {
        Ok(self.inner.node.call(|node| node.begin_own_log_check()).await?)
    }

    /// Remembers the addresses the hub's endpoint listens on (enrolment
    /// tokens carry them).
    pub async fn set_listen_addresses(&self, addresses: Vec<String>) -> Result<()> {
        Ok(self.inner.node.call(move |node| node.set_addresses(crate::node::META_LISTEN, &addresses)).await?)
    }

    /// Re-reads the frontier and the forks held, telling the sessions if
    /// either moved (another process may have written).
    pub async fn refresh_frontier(&self) -> Result<()> {
        Ok(self.inner.node.refresh_frontier().await?)
    }

    /// The frontier as it moves.
    pub fn frontier_changes(&self) -> watch::Receiver<Frontier> {
        self.inner.node.frontier.subscribe()
    }

    /// What is held of forked authors, as it changes.
    pub fn fork_changes(&self) -> watch::Receiver<Vec<ForkSummary>> {
        self.inner.node.forks.subscribe()
    }

    /// On the hub: writes a heartbeat if its log has been quiet (devices
    /// measure their time offline by the newest operation of the hub).
    pub async fn heartbeat_if_quiet(&self) -> Result<bool> {
        Ok(self.inner.node.call(|node| node.heartbeat_if_quiet()).await?)
    }

    /// Whether `peer` may sync with this node; `Err` says why not.
    pub async fn may_sync_with(&self, peer: AuthorId) -> std::result::Result<(), String> {
        self.inner.node.call(move |node| node.may_sync_with(&peer)).await
    }

    /// Starts a sync session with `peer`: as the initiator, with the hello
    /// to send first.
    pub async fn open_session(&self, peer: AuthorId, initiator: bool) -> Result<(Session, Option<Message>)> {
        if initiator {
            let (session, hello) = self.inner.node.call(move |node| node.initiate(peer)).await?;
            Ok((session, Some(hello)))
        } else {
            Ok((self.inner.node.call(move |node| node.respond(peer)).await?, None))
        }
    }

    /// The session's next messages to send, at most `max`.
    pub async fn next_messages(&self, session: SharedSession, max: usize) -> Result<Vec<Message>> {
        Ok(self
            .inner
            .node
            .call(move |node| -> std::result::Result<Vec<Message>, NodeError> {
                let mut session = lock(&session);
                let mut out = Vec::new();
                while out.len() < max {
                    match session.next_message(node)? {
                        Some(message) => out.push(message),
                        None => break,
                    }
                }
                Ok(out)
            })
            .await?)
    }

    /// Operations a peer sent, in one transaction (at most a call of the
    /// session, about a quarter of a second), letting waiting writers in
    /// before it: measured with `saldo-bench sync-catch-up`, 40 ms
    /// transactions made a catch-up of a million operations a quarter
    /// slower (33 s, 23 s this way).
    pub async fn ingest_from_peer(&self, ops: Vec<Vec<u8>>) -> Result<Ingested> {
        Ok(self
            .inner
            .node
            .call(move |node| node.ingest_within(&ops, TransactionBound::LARGE).map(|results| (ops, results)))
            .await?)
    }

    /// What the node does once a peer's hello arrived (a device learns how
    /// much of its own log the peer holds).
    pub async fn after_hello(&self, peer: AuthorId, session: SharedSession) -> Result<()> {
        Ok(self.inner.node.call(move |node| node.after_hello(peer, &lock(&session))).await?)
    }

    /// On the hub: enrols `device` with the token whose secret it sent;
    /// returns the name it was enrolled under.
    pub async fn redeem_enrolment_token(&self, secret: [u8; 32], device: AuthorId) -> Result<String> {
        Ok(self.inner.node.call(move |node| node.redeem_enrolment_token(&secret, device)).await?)
    }

    /// The receipt number `device`'s receipts start above, when it was
    /// enrolled in place of another device.
    pub async fn receipt_base_of(&self, device: AuthorId) -> Result<Option<u64>> {
        Ok(self.inner.node.call(move |node| node.receipt_base_of(&device)).await?)
    }

    /// The hub's public address, if one is set (a joining device learns it).
    pub async fn public_url(&self) -> Option<String> {
        self.inner
            .node
            .call(|node| node.meta_text(crate::node::META_PUBLIC_URL))
            .await
            .ok()
            .flatten()
            .filter(|u| !u.is_empty())
    }
}
