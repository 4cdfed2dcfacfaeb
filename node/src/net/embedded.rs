//! A node's network side for a front end that runs the node in its own
//! process (the mobile shim): joining a realm from an enrolment token, and
//! the sync transport started and stopped as a task.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use saldo_api::ErrorKind;
use saldo_sync::{AuthorId, DeviceKey, RealmId};

use super::join::{EnrolmentToken, HubRefused, Joined, redeem};
use super::{NetConfig, PeerAddr, run_service};
use crate::node::Node;
use crate::service::{Result, Service, ServiceError};

/// A cash point just created from an enrolment token by [`join_realm`].
#[derive(Debug)]
pub struct NewCashPoint {
    pub node: Node,
    pub realm: RealmId,
    /// This device's id.
    pub me: AuthorId,
    /// What the hub answered: the cash point's name, where its receipts start.
    pub joined: Joined,
}

/// Creates a cash point in `dir` from an enrolment token: a new key, the hub
/// enrols it (dialled from `bind`'s address), then the node is created with
/// the hub's addresses. If the hub refuses or cannot be reached, nothing is
/// left in `dir`.
pub async fn join_realm(dir: &Path, token: &str, bind: SocketAddr) -> Result<NewCashPoint> {
    let token = EnrolmentToken::decode(token).map_err(|e| ServiceError::invalid("token", e.to_string()))?;
    let key = DeviceKey::generate();
    let me = key.author();
    let existed = dir.exists();
    let node = Node::join(dir, token.realm, DeviceKey::from_secret_bytes(&key.secret_bytes()))?;
    let joined = match redeem(&token, &key, SocketAddr::new(bind.ip(), 0)).await {
        Ok(joined) => joined,
        Err(e) => {
            drop(node);
            forget_node(dir, existed);
            let message = format!("could not join the realm; nothing was created: {e:#}");
            return Err(match e.downcast_ref::<HubRefused>() {
                Some(_) => ServiceError::invalid("token", message),
                None => ServiceError::new(ErrorKind::Unavailable, message),
            });
        }
    };
    let mut node = node;
    let hub: Vec<String> = token.hub.iter().map(ToString::to_string).collect();
    node.set_addresses(crate::node::META_HUB_ADDRESSES, &hub)?;
    if let Some(after) = joined.receipts_after {
        node.set_receipts_after(after)?;
    }
    if let Some(url) = &joined.public_url {
        node.set_meta_text(crate::node::META_PUBLIC_URL, url)?;
    }
    Ok(NewCashPoint { node, realm: token.realm, me, joined })
}

/// Removes what [`Node::join`] created in `dir` (all of `dir` if it did not exist).
fn forget_node(dir: &Path, existed: bool) {
    if existed {
        for file in [crate::node::DATABASE_FILE, crate::node::KEY_FILE] {
            let _ = std::fs::remove_file(dir.join(file));
        }
        for suffix in ["-wal", "-shm", crate::writers::WAITING_FILE_SUFFIX] {
            let _ = std::fs::remove_file(dir.join(format!("{}{suffix}", crate::node::DATABASE_FILE)));
        }
    } else {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The sync transport of a node running in this process, as a task on the
/// current tokio runtime: [`SyncTask::stop`] ends its sessions and closes its
/// endpoint.
#[derive(Debug)]
pub struct SyncTask {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl SyncTask {
    /// Starts syncing `service`'s node (data in `dir`) with the peers of
    /// `config` and the hub at the addresses the node keeps.
    pub async fn start(service: Service, dir: PathBuf, mut config: NetConfig) -> Result<SyncTask> {
        let hub = service.read(|node| Ok(node.addresses(crate::node::META_HUB_ADDRESSES)?)).await?;
        for address in hub {
            let peer: PeerAddr = address.parse().map_err(|e| {
                ServiceError::internal(format!("the hub's address {address:?} kept by this node is damaged: {e}"))
            })?;
            config.peers.push(peer);
        }
        config.peers.sort();
        config.peers.dedup();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let status = service.run_status();
        let mut task = tokio::spawn(async move {
            run_service(service, &dir, config, async move {
                let _ = stopped.await;
            })
            .await
        });
        // Started once its endpoint listens; one that cannot bind says why.
        loop {
            if !status.lock().unwrap_or_else(std::sync::PoisonError::into_inner).addresses.is_empty() {
                return Ok(SyncTask { stop, task });
            }
            if task.is_finished() {
                let why = match (&mut task).await {
                    Ok(Ok(())) => "it stopped".to_string(),
                    Ok(Err(e)) => format!("{e:#}"),
                    Err(e) => e.to_string(),
                };
                return Err(ServiceError::new(
                    ErrorKind::Unavailable,
                    format!("the sync endpoint did not start: {why}"),
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Ends the sessions, closes the endpoint and waits until it is done.
    pub async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ServiceError::internal(format!("the sync transport stopped: {e:#}"))),
            Err(e) => Err(ServiceError::internal(format!("the sync transport stopped: {e}"))),
        }
    }
}
