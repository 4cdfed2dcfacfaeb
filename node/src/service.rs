//! The service layer: one cloneable, async handle over a running node that
//! every front end calls (the CLI, the HTTP API, the sync transport, the
//! mobile shim), and nothing below it.
//!
//! - One writer: the node's thread ([`NodeHandle`]), front ends' jobs first.
//! - Reads on connections of their own (`readers`): a search or a balance
//!   never waits behind an ingest call.
//! - Status and balance changes published as a `watch` and a `broadcast`
//!   ([`Service::subscribe`]); `status.json` only mirrors the status.
//! - One error type, [`ServiceError`], with a kind and a message for people.

mod accounts;
mod bundles;
mod counter;
mod delivery;
mod error;
mod hub;
mod lookup;
mod money;
pub(crate) mod operators;
mod outbox;
pub mod peers;
mod readers;
mod reports;
mod status;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use saldo_sync::{AuthorId, RealmId};
use tokio::sync::broadcast;

pub use bundles::{Bundle, FrontierFileBytes};
pub use error::{ErrorKind, Result, ServiceError};
pub use writer::{NodeHandle, WriterDone};

use crate::node::{Node, NodeError};
use readers::Readers;

/// What does not change while a node runs.
#[derive(Debug, Clone)]
pub struct About {
    pub realm: RealmId,
    pub realm_name: String,
    /// This device (the hub's key is the realm's id).
    pub me: AuthorId,
    pub is_hub: bool,
    pub data_dir: Option<PathBuf>,
}

/// A logged-in operator, as the service layer checks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub login: String,
    pub name: String,
    pub role: saldo_api::session::OperatorRole,
    /// The cash point a cashier is bound to, and its name.
    pub cash_point: Option<AuthorId>,
    pub cash_point_name: Option<String>,
    /// Logged in with a one-time password, at the hub (where it can be
    /// replaced): nothing else is allowed until it is.
    pub must_change_password: bool,
}

/// The handle every front end holds.
#[derive(Debug, Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    about: About,
    node: NodeHandle,
    readers: Readers,
    /// Addresses and peers, kept by the sync transport.
    net: status::NetState,
    /// Where receipts' verification links point: the hub's public address.
    verify_base: RwLock<String>,
    /// Top-ups waiting to be recorded together.
    top_ups: std::sync::Mutex<counter::PendingTopUps>,
    /// Sessions' accounts found enabled lately (see `operator_still_allowed`).
    allowed: std::sync::Mutex<operators::AllowedLately>,
}

impl Service {
    /// Opens the node in `dir` and starts its writer thread.
    pub fn open(dir: &Path) -> Result<Service> {
        let node = Node::open(dir)?;
        Service::start(node, Some(dir.to_path_buf()))
    }

    /// Starts the service over `node`; `dir` is its data directory (reads
    /// open connections of their own there), `None` for a node in memory.
    pub fn start(mut node: Node, dir: Option<PathBuf>) -> Result<Service> {
        let about = About {
            realm: node.realm(),
            realm_name: node.realm_name().to_string(),
            me: node.author().ok_or(NodeError::NoKey)?,
            is_hub: node.is_hub(),
            data_dir: dir.clone(),
        };
        let verify_base = RwLock::new(node.meta_text(crate::node::META_PUBLIC_URL)?.unwrap_or_default());
        // A node opened exclusively (on a full disk) is read by its writer:
        // no other connection could open the database.
        let readers = Readers::new(dir.filter(|_| !node.store().is_exclusive()));
        let node = NodeHandle::spawn(node)?;
        let net = status::NetState::default();
        let top_ups = std::sync::Mutex::default();
        let allowed = std::sync::Mutex::default();
        Ok(Service { inner: Arc::new(Inner { about, node, readers, net, verify_base, top_ups, allowed }) })
    }

    /// Where receipts' verification links point (the hub's public URL).
    pub fn verify_base(&self) -> String {
        self.inner.verify_base.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Sets the hub's public URL that receipts' verification links use,
    /// and keeps it for the next start.
    pub async fn set_public_url(&self, url: String) -> Result<()> {
        *self.inner.verify_base.write().unwrap_or_else(std::sync::PoisonError::into_inner) = url.clone();
        self.write(move |node| Ok(node.set_meta_text(crate::node::META_PUBLIC_URL, &url)?)).await
    }

    /// Says when the node's thread has ended, once every handle of this
    /// service is gone: what a process waits for before it exits.
    pub fn writer_done(&self) -> WriterDone {
        self.inner.node.done.clone()
    }

    pub fn about(&self) -> &About {
        &self.inner.about
    }

    /// The writer, for the sync transport (crate-internal: front ends call
    /// the service's methods).
    pub(crate) fn node(&self) -> &NodeHandle {
        &self.inner.node
    }

    /// The writer thread itself, for benchmarks that measure the node
    /// below the service layer. No front end uses it.
    pub fn writer(&self) -> &NodeHandle {
        &self.inner.node
    }

    /// Runs `f` on the writer thread, before bulk work still queued.
    pub(crate) async fn write<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Node) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        self.inner.node.call_urgent(f).await
    }

    /// Runs `f` on a read connection (the last committed state), off the
    /// async threads; on the writer for a node in memory.
    pub(crate) async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Node) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        if !self.inner.readers.available() {
            return self.inner.node.call_urgent(f).await;
        }
        let permit = self.inner.readers.permits.acquire().await;
        let inner = self.inner.clone();
        let read = tokio::task::spawn_blocking(move || inner.readers.with(f))
            .await
            .map_err(|e| ServiceError::internal(format!("a read stopped: {e}")))?;
        drop(permit);
        read?
    }

    /// Balance changes of this node's wallets, as they happen.
    pub fn wallet_changes(&self) -> broadcast::Receiver<writer::WalletsMoved> {
        self.inner.node.wallets.subscribe()
    }
}

impl Service {
    /// Every row of every table of the node's database, in a stable order:
    /// what tests compare to show that a refused request wrote nothing.
    ///
    /// Taken by the writer once the work it does after commits is done
    /// (receipts due at the hub turned into messages): the same state
    /// dumps the same, whenever it is taken.
    pub async fn dump(&self) -> Result<Vec<String>> {
        self.inner
            .node
            .call(|node| {
                while node.expand_receipts_due(crate::outbox::queue::EXPAND_BATCH)? > 0 {}
                Ok(node.store().dump().map_err(NodeError::from)?)
            })
            .await
    }
}
