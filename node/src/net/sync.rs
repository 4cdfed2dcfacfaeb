//! The `saldo/sync/1` protocol: accepting and dialing peers, one reconcile session per connection, refusals,
//! length-prefixed frames.

use super::endpoint::{PeerAddr, bind_endpoint, endpoint_addr};
use super::status::Shared;
use super::{RETRY_MAX, now_ms};
use crate::service::peers::{Applied, IngestError};
use anyhow::{Result, anyhow, bail};
use iroh::Endpoint;
use iroh::endpoint::{Connection, RecvStream, SendStream, VarInt};
use iroh::protocol::{AcceptError, ProtocolHandler};
use saldo_sync::AuthorId;
use saldo_sync::reconcile::{ALPN, Incoming, MESSAGE_BYTES_MAX, Message, Session};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Most operations a sync session hands the node in one call (about a fifth
/// of a second of its time on two cores).
const OPS_PER_CALL_MAX: usize = 10_000;

/// The close code of a refusal that may change: a device not enrolled, as
/// far as this node knows (its enrolment may not have arrived here yet).
/// The dialer tries again later.
const REFUSED: u32 = 403;

/// The close code of a refusal that never changes: the peer belongs to
/// another realm. The dialer stops.
const REFUSED_OTHER_REALM: u32 = 409;

/// Longest a node waits for the hello of a device it refuses, to tell it
/// whether the realms differ.
const REFUSED_HELLO_WAIT: Duration = Duration::from_secs(5);

/// Why a peer would not sync with this node, as it said when it closed the
/// connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// For now: the peer may accept later (an enrolment on its way).
    #[error("the peer refused to sync: {0}")]
    ForNow(String),
    /// For good: nodes of different realms never sync.
    #[error("the peer refused to sync for good, the realms differ: {0}")]
    OtherRealm(String),
}

impl Refusal {
    /// Whether dialing the peer again can never help.
    pub fn is_final(&self) -> bool {
        matches!(self, Refusal::OtherRealm(_))
    }
}

/// Why the peer closed `conn`, if it refused this node.
pub fn refusal(conn: &Connection) -> Option<Refusal> {
    let Some(iroh::endpoint::ConnectionError::ApplicationClosed(close)) = conn.close_reason() else {
        return None;
    };
    let reason = String::from_utf8_lossy(&close.reason).into_owned();
    if close.error_code == VarInt::from_u32(REFUSED) {
        Some(Refusal::ForNow(reason))
    } else if close.error_code == VarInt::from_u32(REFUSED_OTHER_REALM) {
        Some(Refusal::OtherRealm(reason))
    } else {
        None
    }
}

/// Why a node of the realm `dialing` and one of `dialed` never sync.
fn other_realm_reason(dialing: &saldo_sync::RealmId, dialed: &saldo_sync::RealmId) -> String {
    format!(
        "the dialing node belongs to the realm {} and the node dialed to the realm {}: nodes of different realms never sync (check the address)",
        dialing.short(),
        dialed.short()
    )
}

/// The realm a dialing peer names in its hello (it sends the hello first).
async fn hello_realm(conn: &Connection) -> Option<saldo_sync::RealmId> {
    let read = async {
        let (_send, mut recv) = conn.accept_bi().await.ok()?;
        match read_frame(&mut recv).await.ok()? {
            Message::Hello(hello) => Some(hello.realm),
            _ => None,
        }
    };
    tokio::time::timeout(REFUSED_HELLO_WAIT, read).await.ok().flatten()
}

/// Keeps a session with `peer`: dials, syncs while the connection lasts,
/// and dials again after a pause that doubles up to [`RETRY_MAX`].
pub(super) async fn keep_dialing(endpoint: Endpoint, shared: Shared, peer: PeerAddr) {
    let mut pause = Duration::from_millis(250);
    loop {
        let outcome = dial(&endpoint, &shared, peer).await;
        let reason = match &outcome {
            Ok(()) => "the connection closed".to_string(),
            Err(e) => format!("{e:#}"),
        };
        let refused_for_good =
            outcome.as_ref().err().and_then(|e| e.downcast_ref::<Refusal>()).filter(|r| r.is_final());
        shared.peer(&peer.id, |p| {
            p.online = false;
            p.last_error = Some(reason.clone());
            p.refused = refused_for_good.map(ToString::to_string);
        });
        if refused_for_good.is_some() {
            tracing::warn!("sync with {peer}: {reason}; not dialing it again");
            return;
        }
        tracing::info!("sync with {peer}: {reason}; again in {:.1} s", pause.as_secs_f64());
        let wake = shared.service.sync_wake();
        tokio::select! {
            () = tokio::time::sleep(pause) => pause = (pause * 2).min(RETRY_MAX),
            // Asked to sync now: dial at once, and soon again if that fails.
            () = wake.notified() => pause = Duration::from_millis(250),
        }
        if outcome.is_ok() {
            pause = Duration::from_millis(250);
        }
    }
}

pub(super) async fn dial(endpoint: &Endpoint, shared: &Shared, peer: PeerAddr) -> Result<()> {
    let connecting = endpoint.connect(endpoint_addr(peer)?, ALPN);
    let conn = tokio::time::timeout(Duration::from_secs(5), connecting)
        .await
        .map_err(|_| anyhow!("no answer from {}", peer.addr))?
        .map_err(|e| anyhow!("cannot connect to {}: {e}", peer.addr))?;
    shared.peer(&peer.id, |p| p.addr = Some(peer.addr.to_string()));
    run_session(shared, conn, true).await
}

#[derive(Debug, Clone)]
pub(super) struct Accept {
    pub(super) shared: Shared,
}

impl ProtocolHandler for Accept {
    async fn accept(&self, conn: Connection) -> std::result::Result<(), AcceptError> {
        let peer = AuthorId(*conn.remote_id().as_bytes());
        let allowed = self.shared.service.may_sync_with(peer).await;
        if let Err(reason) = allowed {
            // A node of another realm hears so, and stops dialing this one.
            let (code, reason) = match hello_realm(&conn).await {
                Some(theirs) if theirs != self.shared.realm => {
                    (REFUSED_OTHER_REALM, other_realm_reason(&theirs, &self.shared.realm))
                }
                _ => (REFUSED, reason),
            };
            tracing::warn!("refused a sync from {}: {reason}", peer.to_hex());
            conn.close(VarInt::from_u32(code), reason.as_bytes());
            return Ok(());
        }
        if let Err(e) = run_session(&self.shared, conn, false).await {
            tracing::info!("sync with {}: {e:#}", peer.to_hex());
            self.shared.peer(&peer, |p| {
                p.online = false;
                p.last_error = Some(format!("{e:#}"));
            });
        }
        Ok(())
    }
}

/// One session over one connection, until it breaks.
async fn run_session(shared: &Shared, conn: Connection, initiator: bool) -> Result<()> {
    let peer = AuthorId(*conn.remote_id().as_bytes());
    let (session, hello) = shared.service.open_session(peer, initiator).await?;
    let session = Arc::new(Mutex::new(session));
    // What the connection cost up to now is its handshake; the session's
    // bytes on the wire are counted from here.
    let up = conn.stats();
    let wire = async {
        loop {
            let now = conn.stats();
            shared.peer(&peer, |p| {
                p.handshake_bytes = up.udp_tx.bytes + up.udp_rx.bytes;
                p.wire_sent_bytes = now.udp_tx.bytes - up.udp_tx.bytes;
                p.wire_received_bytes = now.udp_rx.bytes - up.udp_rx.bytes;
            });
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let (mut send, recv) = match hello {
        Some(hello) => {
            let (mut send, recv) = conn.open_bi().await?;
            write_frame(&mut send, &hello).await?;
            (send, recv)
        }
        None => conn.accept_bi().await.map_err(|e| refused_or(&conn, e.into()))?,
    };
    shared.peer(&peer, |p| {
        p.online = true;
        p.last_error = None;
        p.last_contact_ms = Some(now_ms());
    });
    let wake = Arc::new(Notify::new());
    let reader = read_loop(shared.clone(), peer, session.clone(), recv, wake.clone());
    let writer = async {
        let mut frontier = shared.service.frontier_changes();
        let mut forks = shared.service.fork_changes();
        loop {
            let batch = shared.service.next_messages(session.clone(), 4).await?;
            if batch.is_empty() {
                tokio::select! {
                    () = wake.notified() => {}
                    changed = frontier.changed() => {
                        changed.map_err(|_| anyhow!("the node stopped"))?;
                        let current = frontier.borrow_and_update().clone();
                        lock(&session).local_changed(current);
                    }
                    changed = forks.changed() => {
                        changed.map_err(|_| anyhow!("the node stopped"))?;
                        let current = forks.borrow_and_update().clone();
                        lock(&session).forks_changed(current);
                    }
                }
                continue;
            }
            let mut sent = 0u64;
            for message in &batch {
                if let Message::Ops(ops) = message {
                    sent += ops.len() as u64;
                }
                write_frame(&mut send, message).await?;
            }
            // Sent is not heard: only what comes from the peer is contact.
            shared.peer(&peer, |p| p.ops_sent += sent);
        }
        #[allow(unreachable_code)]
        Ok::<(), anyhow::Error>(())
    };
    let outcome = tokio::select! {
        r = reader => r,
        r = writer => r,
        () = wire => unreachable!("counting bytes never ends"),
    };
    if !initiator
        && let Err(e) = &outcome
        && let Some(Refusal::OtherRealm(reason)) = e.downcast_ref::<Refusal>()
    {
        // The peer's hello named another realm (a device this node knows,
        // of another realm): it hears so, and stops dialing this one.
        conn.close(VarInt::from_u32(REFUSED_OTHER_REALM), reason.as_bytes());
        return outcome;
    }
    // (What the peer said when it closed is read before this side closes.)
    let outcome = outcome.map_err(|e| refused_or(&conn, e));
    conn.close(VarInt::from_u32(0), b"session over");
    outcome
}

/// Why the peer closed `conn`, if it refused this node.
pub fn refusal_reason(conn: &Connection) -> Option<String> {
    refusal(conn).map(|r| match r {
        Refusal::ForNow(reason) | Refusal::OtherRealm(reason) => reason,
    })
}

/// Tells the operator on standard output; a running node goes on when no
/// one reads it any more (`saldo hub | head -1`), where `println!` panicked.
pub(crate) fn say(line: fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// The peer's refusal, if it closed `conn` refusing this node; else `error`.
fn refused_or(conn: &Connection, error: anyhow::Error) -> anyhow::Error {
    match refusal(conn) {
        Some(refusal) => anyhow::Error::new(refusal),
        None => error,
    }
}

fn lock(session: &Mutex<Session>) -> std::sync::MutexGuard<'_, Session> {
    session.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn read_loop(
    shared: Shared,
    peer: AuthorId,
    session: Arc<Mutex<Session>>,
    mut recv: RecvStream,
    wake: Arc<Notify>,
) -> Result<()> {
    // Frames are read while the node stores the ones before; operations
    // already waiting are stored together (fewer, larger transactions), up
    // to OPS_PER_CALL_MAX so that other work of the node (a top-up at the
    // counter, a web page) never waits long behind a catch-up.
    let (frames, mut queued) = tokio::sync::mpsc::channel::<Result<Message>>(8);
    let reader = tokio::spawn(async move {
        loop {
            let frame = read_frame(&mut recv).await;
            let failed = frame.is_err();
            if frames.send(frame).await.is_err() || failed {
                return;
            }
        }
    });
    let _stop_reading = AbortOnDrop(reader);
    let responder = lock(&session).is_responder();
    let mut next: Option<Message> = None;
    loop {
        let message = match next.take() {
            Some(message) => message,
            None => queued.recv().await.ok_or_else(|| anyhow!("the connection closed"))??,
        };
        let mut incoming = lock(&session).receive(message).map_err(|e| session_error(&shared.realm, responder, e))?;
        if let Incoming::Ops(ops) = &mut incoming {
            while ops.len() < OPS_PER_CALL_MAX {
                match queued.try_recv() {
                    Ok(Ok(Message::Ops(more))) => match lock(&session).receive(Message::Ops(more)) {
                        Ok(Incoming::Ops(more)) => ops.extend(more),
                        Ok(_) => {}
                        Err(e) => return Err(session_error(&shared.realm, responder, e)),
                    },
                    Ok(other) => {
                        next = Some(other?);
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        match incoming {
            Incoming::Ops(ops) => {
                let count = ops.len() as u64;
                // One transaction per call (at most OPS_PER_CALL_MAX operations).
                let (ops, results) = shared.service.ingest_from_peer(ops).await?;
                let mut refused = 0u64;
                for (bytes, result) in ops.iter().zip(&results) {
                    if let Err(e) = result {
                        report_refusal(&shared, peer, bytes, e);
                        refused += u64::from(!e.is_retryable());
                    }
                    if let Ok(Applied::Equivocation { seq }) = result
                        && let Some((author, _, _)) = saldo_sync::op::peek(bytes)
                    {
                        tracing::warn!(
                            "fork: {} sent operation #{} of {}, on another branch of its log than the one held; kept as evidence, the author is frozen",
                            peer.to_hex(),
                            seq.0,
                            author.to_hex()
                        );
                        // The rest of that branch, and ours, go both ways.
                        lock(&session).fork_seen(author);
                    }
                }
                shared.peer(&peer, |p| {
                    p.ops_received += count;
                    p.ops_refused += refused;
                    p.last_contact_ms = Some(now_ms());
                });
                shared.service.refresh_frontier().await?;
            }
            Incoming::Hello => {
                shared.service.after_hello(peer, session.clone()).await?;
            }
            Incoming::PeerDone | Incoming::Fork => {}
        }
        wake.notify_one();
    }
}

/// Why a session ended on the peer's message: for good if the peer's
/// hello names another realm.
fn session_error(
    ours: &saldo_sync::RealmId,
    responder: bool,
    error: saldo_sync::reconcile::SyncError,
) -> anyhow::Error {
    match error {
        saldo_sync::reconcile::SyncError::OtherRealm(theirs) => {
            let reason = if responder { other_realm_reason(&theirs, ours) } else { other_realm_reason(ours, &theirs) };
            anyhow::Error::new(Refusal::OtherRealm(reason))
        }
        other => anyhow!("{other}"),
    }
}

/// Stops a task when dropped (a session's frame reader, with its session).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn report_refusal(shared: &Shared, peer: AuthorId, bytes: &[u8], error: &IngestError) {
    let what = saldo_sync::op::peek(bytes).map_or("an undecodable operation".to_string(), |(author, seq, _)| {
        format!("operation #{} of {}", seq.0, author.to_hex())
    });
    if error.is_retryable() {
        tracing::debug!("from {}: {what} not stored yet: {error}", peer.to_hex());
    } else {
        tracing::warn!("from {}: refused {what}: {error}", peer.to_hex());
        shared.peer(&peer, |p| p.last_error = Some(format!("refused {what}: {error}")));
    }
}

/// A sync connection opened by hand, for tools and tests that speak the
/// protocol themselves (the test that sends forged operations over the wire).
#[derive(Debug)]
pub struct RawConnection {
    pub endpoint: Endpoint,
    pub conn: Connection,
    pub send: SendStream,
    pub recv: RecvStream,
}

/// Dials `peer` on the sync protocol as the device `key`, from 127.0.0.1.
pub async fn connect_raw(key: &saldo_sync::DeviceKey, peer: PeerAddr) -> Result<RawConnection> {
    let endpoint = bind_endpoint(key, ALPN, SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let conn = endpoint.connect(endpoint_addr(peer)?, ALPN).await?;
    let (send, recv) = conn.open_bi().await?;
    Ok(RawConnection { endpoint, conn, send, recv })
}

/// Writes one length-prefixed message.
pub async fn write_frame(send: &mut SendStream, message: &Message) -> Result<()> {
    let bytes = message.encode();
    send.write_all(&(bytes.len() as u32).to_be_bytes()).await?;
    send.write_all(&bytes).await?;
    Ok(())
}

/// Reads one length-prefixed message (bounded). A message over the limit,
/// cut short or that does not decode is an error that ends the session (the
/// caller closes the connection): what came before it in the session was
/// handled, nothing of it is.
pub async fn read_frame(recv: &mut RecvStream) -> Result<Message> {
    let mut length = [0u8; 4];
    recv.read_exact(&mut length).await.map_err(|e| anyhow!("{e}"))?;
    let length = u32::from_be_bytes(length) as usize;
    if length > MESSAGE_BYTES_MAX {
        bail!("the peer sent a message of {length} bytes, over the limit of {MESSAGE_BYTES_MAX}");
    }
    let mut bytes = vec![0u8; length];
    recv.read_exact(&mut bytes)
        .await
        .map_err(|e| anyhow!("the peer's message of {length} bytes was cut short ({e})"))?;
    Message::decode(&bytes).map_err(|e| anyhow!("the peer's message is refused: {e}"))
}
