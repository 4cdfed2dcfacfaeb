//! What a running node tells `saldo status`: its peers, written to `status.json`.

use super::endpoint::PeerAddr;
use super::now_ms;
use anyhow::Result;
use saldo_sync::AuthorId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What a running node knows of one peer, for `saldo status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PeerStatus {
    pub id: String,
    pub addr: Option<String>,
    pub online: bool,
    pub last_contact_ms: Option<u64>,
    pub last_error: Option<String>,
    pub ops_sent: u64,
    pub ops_received: u64,
    pub ops_refused: u64,
    /// UDP bytes of the current (or last) connection with the peer, once
    /// it was up: what a session costs on the wire, handshake apart.
    #[serde(default)]
    pub wire_sent_bytes: u64,
    #[serde(default)]
    pub wire_received_bytes: u64,
    /// UDP bytes of that connection's handshake, both ways.
    #[serde(default)]
    pub handshake_bytes: u64,
    /// Found on the local network by mDNS, not configured.
    #[serde(default)]
    pub found_on_lan: bool,
    /// The peer refused this node for good (another realm), and why: it is
    /// not dialed again.
    #[serde(default)]
    pub refused: Option<String>,
}

/// Written to `status.json` in the data directory while the node runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunStatus {
    pub pid: u32,
    pub updated_ms: u64,
    pub id: String,
    /// What `--peer` takes to reach this node.
    pub addresses: Vec<String>,
    pub peers: BTreeMap<String, PeerStatus>,
    /// Where the operators' HTTP API listens (`http://127.0.0.1:8400`).
    #[serde(default)]
    pub http: Option<String>,
    /// At the hub: how each channel of the outbox has fared (kept by the sender).
    #[serde(default)]
    pub delivery: Vec<saldo_api::status::ChannelState>,
}

pub const STATUS_FILE: &str = "status.json";

impl RunStatus {
    /// What the node running on `dir` wrote, if it is running: the file is
    /// rewritten twice a second, so one older than 3 s was left by a node
    /// that stopped without removing it.
    pub fn read(dir: &Path) -> Option<RunStatus> {
        let status: RunStatus = serde_json::from_slice(&std::fs::read(dir.join(STATUS_FILE)).ok()?).ok()?;
        (now_ms().saturating_sub(status.updated_ms) < 3_000).then_some(status)
    }

    /// The first address the node listens on (what `--peer` takes).
    pub fn address(&self) -> Option<PeerAddr> {
        self.addresses.first()?.parse().ok()
    }
}

#[derive(Debug, Clone)]
pub(super) struct Shared {
    pub(super) service: crate::service::Service,
    pub(super) realm: saldo_sync::RealmId,
    pub(super) status: Arc<Mutex<RunStatus>>,
}

impl Shared {
    pub(super) fn peer(&self, id: &AuthorId, edit: impl FnOnce(&mut PeerStatus)) {
        let mut status = self.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry =
            status.peers.entry(id.to_hex()).or_insert_with(|| PeerStatus { id: id.to_hex(), ..Default::default() });
        edit(entry);
    }
}

pub(super) fn write_status(path: &PathBuf, status: &RunStatus) -> Result<()> {
    let temp = path.with_extension("json.tmp");
    std::fs::write(&temp, serde_json::to_vec_pretty(status)?)?;
    std::fs::rename(&temp, path)?;
    Ok(())
}
