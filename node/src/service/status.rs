//! What a node says about itself, and what it pushes to an open page: the
//! status whenever it changes, and every balance change.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use saldo_api::session::NodeKind;
use saldo_api::status::{BalanceChanged, Event, PeerState, Status};
use saldo_sync::AuthorId;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::{Result, Service};
use crate::net::{PeerStatus, RunStatus};

/// How often the status is looked at for changes while someone listens
/// (the page itself never polls: it is pushed what changed).
const STATUS_LOOK: Duration = Duration::from_millis(500);
/// Events queued for one slow listener before it is told to reload.
const EVENTS_QUEUED_MAX: usize = 1024;

/// What the network side of a running node knows: its addresses and peers.
#[derive(Debug, Default)]
pub(crate) struct NetState {
    pub(crate) run: Arc<Mutex<RunStatus>>,
    /// Wakes the transport's dialers waiting to try a peer again ([`Service::sync_now`]).
    pub(crate) wake: Arc<tokio::sync::Notify>,
}

impl NetState {
    pub(crate) fn snapshot(&self) -> RunStatus {
        self.run.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

impl Service {
    /// The addresses and peers the sync transport keeps (what `status.json`
    /// mirrors, and part of [`Service::status`]).
    pub(crate) fn run_status(&self) -> Arc<Mutex<RunStatus>> {
        self.inner.net.run.clone()
    }

    /// What wakes the sync transport's dialers before their pause ends.
    pub(crate) fn sync_wake(&self) -> Arc<tokio::sync::Notify> {
        self.inner.net.wake.clone()
    }

    /// Syncs now: every peer not reached is dialled again at once instead
    /// of after its pause (the network came back, the operator asks), and
    /// the sessions open are told of what this node recorded meanwhile.
    pub async fn sync_now(&self) -> Result<()> {
        self.inner.net.wake.notify_waiters();
        self.refresh_frontier().await
    }
}

fn peer_state(peer: &PeerStatus, hub: AuthorId) -> PeerState {
    let id = AuthorId::from_hex(&peer.id).unwrap_or(AuthorId([0; 32]));
    PeerState {
        hub: id == hub,
        id,
        name: None,
        addr: peer.addr.clone(),
        online: peer.online,
        last_contact_ms: peer.last_contact_ms,
        last_error: peer.last_error.clone(),
        ops_sent: peer.ops_sent,
        ops_received: peer.ops_received,
        ops_refused: peer.ops_refused,
        wire_sent_bytes: peer.wire_sent_bytes,
        wire_received_bytes: peer.wire_received_bytes,
        handshake_bytes: peer.handshake_bytes,
        found_on_lan: peer.found_on_lan,
        refused: peer.refused.clone(),
    }
}

impl Service {
    /// The node's status now.
    pub async fn status(&self) -> Result<Status> {
        let about = self.about().clone();
        let facts = self
            .read(move |node| {
                let (count, total) = node.unconfirmed()?;
                let hold = node.own_log_hold()?.map(|h| h.describe(&about.me));
                let forked = match node.own_log_hold()? {
                    Some(h @ crate::node::OwnLogHold::Forked { .. }) => Some(h.describe(&about.me)),
                    _ => None,
                };
                Ok((
                    count,
                    total,
                    hold,
                    forked,
                    node.last_hub_contact_ms()?,
                    node.own_device_name()?,
                    node.realm_display_name()?,
                ))
            })
            .await?;
        let (
            unconfirmed_operations,
            unconfirmed_total,
            recording_held,
            forked,
            last_hub_contact_ms,
            device_name,
            realm_name,
        ) = facts;
        let hub = self.about().realm.hub();
        let run = self.inner.net.snapshot();
        let peers: Vec<PeerState> = run.peers.values().map(|p| peer_state(p, hub)).collect();
        let is_hub = self.about().is_hub;
        Ok(Status {
            node: if is_hub { NodeKind::Hub } else { NodeKind::CashPoint },
            realm: self.about().realm,
            realm_name,
            device: Some(self.about().me),
            device_name,
            online: is_hub || peers.iter().any(|p| p.hub && p.online),
            addresses: run.addresses.clone(),
            peers,
            unconfirmed_operations,
            unconfirmed_total,
            last_hub_contact_ms,
            hub_behind: None,
            recording_held: recording_held.filter(|_| forked.is_none()),
            forked,
            at_ms: crate::node::wall_now_ms(),
            delivery: run.delivery.clone(),
        })
    }

    /// Events for one listener: the status first and whenever it changes,
    /// then every balance change; `None` when the listener fell behind
    /// and should reload what it shows.
    pub async fn events(&self) -> Result<ReceiverStream<Option<Event>>> {
        let first = self.status().await?;
        let (send, receive) = mpsc::channel(EVENTS_QUEUED_MAX);
        let mut wallets = self.wallet_changes();
        let service = self.clone();
        tokio::spawn(async move {
            let same = |a: &Status, b: &Status| Status { at_ms: 0, ..a.clone() } == Status { at_ms: 0, ..b.clone() };
            let mut last = first.clone();
            if send.send(Some(Event::Status(Box::new(first)))).await.is_err() {
                return;
            }
            let mut look = tokio::time::interval(STATUS_LOOK);
            loop {
                tokio::select! {
                    _ = look.tick() => {
                        let Ok(now) = service.status().await else { continue };
                        if !same(&now, &last) {
                            last = now.clone();
                            if send.send(Some(Event::Status(Box::new(now)))).await.is_err() {
                                return;
                            }
                        }
                    }
                    moved = wallets.recv() => {
                        let events: Vec<Option<Event>> = match moved {
                            Ok(moved) if !moved.overflowed => moved.wallets.iter().map(|w| Some(Event::Balance(BalanceChanged {
                                consumer: w.consumer,
                                service: w.service.clone(),
                                confirmed: w.confirmed,
                                provisional: w.provisional,
                            }))).collect(),
                            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => vec![None],
                            Err(broadcast::error::RecvError::Closed) => return,
                        };
                        for event in events {
                            if send.send(event).await.is_err() {
                                return;
                            }
                        }
                    }
                    () = send.closed() => return,
                }
            }
        });
        Ok(ReceiverStream::new(receive))
    }

    /// Ready to serve: the node answers a read.
    pub async fn ready(&self) -> Result<()> {
        self.read(|node| Ok(node.realm())).await.map(|_| ())
    }

    /// The node's own gauges, as Prometheus text lines.
    pub async fn metrics_text(&self) -> Result<String> {
        let status = self.status().await?;
        Ok(format!(
            "# TYPE saldo_unconfirmed_operations gauge\n# HELP saldo_unconfirmed_operations Operations recorded here that the hub has not confirmed.\nsaldo_unconfirmed_operations {}\n# TYPE saldo_hub_online gauge\n# HELP saldo_hub_online Whether the hub is reachable (1) or not (0).\nsaldo_hub_online {}\n",
            status.unconfirmed_operations,
            u8::from(status.online)
        ))
    }
}
