//! A running node on the network: its iroh QUIC endpoint (ALPN
//! `saldo/sync/1`, the endpoint id *is* the device key), sync sessions with
//! the hub and static peers, reconnects with capped backoff, and the status
//! file `saldo status` reads.
//!
//! The [`Node`] (SQLite) lives on one thread of its own; network tasks send it
//! closures through a [`NodeHandle`]. Each connection carries one session of
//! [`saldo_sync::reconcile`]: a reader task receives and ingests, a writer
//! task sends what the session has to say; both stay up, so operations
//! recorded on either side (by this process or by a CLI command on the same
//! data directory) are pushed within a fraction of a second.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use iroh::endpoint::{Connection, RecvStream, SendStream, VarInt, presets};
use iroh::protocol::{AcceptError, ProtocolHandler, Router};
use iroh::{Endpoint, EndpointAddr, SecretKey};
use saldo_sync::reconcile::{ALPN, Incoming, MESSAGE_BYTES_MAX, Message, Session};
use saldo_sync::{AuthorId, Frontier};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use crate::node::{Node, NodeError, TransactionBound};
use crate::state::{Applied, IngestError};

/// How long between two attempts to reach a peer, at most.
pub const RETRY_MAX: Duration = Duration::from_secs(10);
/// How often the data directory is checked for operations recorded by
/// other processes (a `saldo topup` while the node runs).
const LOCAL_POLL: Duration = Duration::from_millis(200);
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
/// A QUIC endpoint with the device's key as its identity, bound to `bind`
/// only, with no relay and no address lookup (a device adds mDNS to it when
/// LAN discovery is on).
async fn bind_endpoint(key: &saldo_sync::DeviceKey, alpn: &[u8], bind: SocketAddr) -> Result<Endpoint> {
    Endpoint::builder(presets::Minimal)
        .secret_key(SecretKey::from_bytes(&key.secret_bytes()))
        .alpns(vec![alpn.to_vec()])
        .clear_ip_transports()
        .bind_addr(bind)
        .map_err(|e| anyhow!("cannot listen on {bind}: {e}"))?
        .bind()
        .await
        .with_context(|| format!("cannot listen on {bind}"))
}

/// Where iroh dials `peer`.
fn endpoint_addr(peer: PeerAddr) -> Result<EndpointAddr> {
    let id = iroh::PublicKey::from_bytes(&peer.id.0)
        .map_err(|e| anyhow!("{} is not a valid node id: {e}", peer.id.to_hex()))?;
    Ok(EndpointAddr::new(id).with_ip_addr(peer.addr))
}

/// The ALPN a new device uses once, to present its enrolment token.
pub const JOIN_ALPN: &[u8] = b"saldo/join/1";
const TOKEN_PREFIX: &str = "saldo-join-1:";

/// What `saldo enroll` prints and `saldo cashpoint --join` takes: the realm,
/// where its hub listens, and a one-time secret the hub stored the hash of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolmentToken {
    pub realm: saldo_sync::RealmId,
    pub hub: Vec<PeerAddr>,
    pub secret: [u8; 32],
}

impl EnrolmentToken {
    pub fn encode(&self) -> String {
        format!("{TOKEN_PREFIX}{}", hex::encode(postcard::to_stdvec(self).expect("encoding to a Vec")))
    }

    pub fn decode(text: &str) -> Result<EnrolmentToken> {
        let hex_part = text.trim().strip_prefix(TOKEN_PREFIX).ok_or_else(|| {
            anyhow!("this is not an enrolment token (it starts with {TOKEN_PREFIX}): copy it whole from `saldo enroll`")
        })?;
        let bytes = hex::decode(hex_part)
            .map_err(|_| anyhow!("the enrolment token is damaged: copy it whole from `saldo enroll`"))?;
        postcard::from_bytes(&bytes)
            .map_err(|_| anyhow!("the enrolment token is damaged: copy it whole from `saldo enroll`"))
    }
}

/// What the hub answers a device it enrolled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// The cash point's name.
    pub name: String,
    /// When it replaces another device: the highest receipt number the hub
    /// held of that one; its own receipts start above.
    pub receipts_after: Option<u64>,
}

/// The line of the join answer that carries [`Joined::receipts_after`]
/// (names are labels, which hold no line breaks).
const RECEIPTS_AFTER_LINE: &str = "\nreceipts-after:";

impl Joined {
    fn parse(answer: &str) -> Option<Joined> {
        let rest = answer.strip_prefix("ok:")?;
        match rest.split_once(RECEIPTS_AFTER_LINE) {
            Some((name, after)) => {
                Some(Joined { name: name.to_string(), receipts_after: Some(after.trim().parse().ok()?) })
            }
            None => Some(Joined { name: rest.to_string(), receipts_after: None }),
        }
    }

    fn encode(&self) -> String {
        match self.receipts_after {
            Some(after) => format!("ok:{}{RECEIPTS_AFTER_LINE}{after}", self.name),
            None => format!("ok:{}", self.name),
        }
    }
}

/// Presents `token` to the hub with the device's new `key`; on success the
/// hub has enrolled the key as a cash point, whose name it returns.
pub async fn redeem(token: &EnrolmentToken, key: &saldo_sync::DeviceKey, bind: SocketAddr) -> Result<Joined> {
    let endpoint = bind_endpoint(key, JOIN_ALPN, bind).await?;
    let mut last_error = anyhow!("the token names no hub address");
    for hub in &token.hub {
        let address = endpoint_addr(*hub)?;
        let attempt = async {
            let conn = endpoint.connect(address, JOIN_ALPN).await?;
            let (mut send, mut recv) = conn.open_bi().await?;
            send.write_all(&token.secret).await?;
            send.finish()?;
            let answer = recv.read_to_end(1024).await.map_err(|e| match refusal(&conn) {
                Some(refusal) => anyhow::Error::new(refusal),
                None => anyhow!("{e}"),
            })?;
            conn.close(VarInt::from_u32(0), b"joined");
            let answer = String::from_utf8_lossy(&answer).into_owned();
            match Joined::parse(&answer) {
                Some(joined) => Ok(joined),
                // The hub's answer is a refusal that says so already.
                None => Err(anyhow!("the hub refused: {}", answer.strip_prefix("refused: ").unwrap_or(&answer))),
            }
        };
        match tokio::time::timeout(Duration::from_secs(10), attempt).await {
            Ok(Ok(joined)) => {
                endpoint.close().await;
                return Ok(joined);
            }
            Ok(Err(e)) => last_error = e,
            Err(_) => last_error = anyhow!("no answer from the hub at {}", hub.addr),
        }
    }
    endpoint.close().await;
    Err(last_error)
}

#[derive(Debug, Clone)]
struct Join {
    shared: Shared,
}

impl ProtocolHandler for Join {
    async fn accept(&self, conn: Connection) -> std::result::Result<(), AcceptError> {
        let device = AuthorId(*conn.remote_id().as_bytes());
        let (mut send, mut recv) = conn.accept_bi().await?;
        let secret = recv.read_to_end(64).await.map_err(AcceptError::from_err)?;
        let answer = match <[u8; 32]>::try_from(secret.as_slice()) {
            Ok(secret) => self.shared.handle.call(move |node| node.redeem_enrolment_token(&secret, device)).await,
            Err(_) => Err(NodeError::Refused("a malformed enrolment request".into())),
        };
        let reply = match answer {
            Ok(name) => {
                tracing::info!("enrolled {} as cash point {name:?}", device.to_hex());
                let _ = self.shared.handle.refresh_frontier().await;
                match self.shared.handle.call(move |node| node.receipt_base_of(&device)).await {
                    Ok(receipts_after) => Joined { name, receipts_after }.encode(),
                    // Enrolled, but its first receipt number unknown: the
                    // device must not guess it (it would reuse the replaced
                    // one's numbers); a new token is needed.
                    Err(e) => {
                        tracing::warn!("enrolled {} but cannot read its first receipt number: {e}", device.to_hex());
                        format!(
                            "enrolled, but the hub could not read this cash point's first receipt number ({e}): ask the hub for a new token"
                        )
                    }
                }
            }
            Err(e) => {
                tracing::warn!("refused to enrol {}: {e}", device.to_hex());
                e.to_string()
            }
        };
        send.write_all(reply.as_bytes()).await.map_err(AcceptError::from_err)?;
        send.finish()?;
        let _ = tokio::time::timeout(Duration::from_secs(5), conn.closed()).await;
        Ok(())
    }
}

/// A peer to sync with: its id (the device key) and a socket address;
/// written `ID@IP:PORT`, in configuration files too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PeerAddr {
    pub id: AuthorId,
    pub addr: SocketAddr,
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id.to_hex(), self.addr)
    }
}

impl Serialize for PeerAddr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PeerAddr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<PeerAddr, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(|e: anyhow::Error| serde::de::Error::custom(format!("{e:#}")))
    }
}

impl FromStr for PeerAddr {
    type Err = anyhow::Error;
    fn from_str(text: &str) -> Result<PeerAddr> {
        let (id, addr) = text
            .split_once('@')
            .ok_or_else(|| anyhow!("{text:?} is not a peer address: write ID@IP:PORT, as `saldo status` prints it"))?;
        let id = AuthorId::from_hex(id)
            .map_err(|e| anyhow!("{id:?} is not a node id (64 hex digits, as `saldo status` prints it): {e}"))?;
        let addr = addr.parse().map_err(|e| anyhow!("{addr:?} is not IP:PORT: {e}"))?;
        Ok(PeerAddr { id, addr })
    }
}

/// Where a node listens and whom it dials.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// The socket the endpoint binds (`--p2p`).
    pub bind: SocketAddr,
    /// Peers to keep a session with: the hub (for a device) and `--peer`s.
    pub peers: Vec<PeerAddr>,
    /// Look for other Saldo nodes on the local network (mDNS) and sync with
    /// the devices of this realm found there. Never on a loopback address,
    /// which no other machine can reach (tests bind 127.0.0.1).
    pub lan: bool,
}

/// The mDNS service Saldo nodes advertise: `_saldo._udp.local`.
const MDNS_SERVICE: &str = "saldo";

/// Whether a node found on the LAN should be dialled: a device of this
/// realm (enrolled, or the hub), not this node, not one dialled already;
/// and of two devices that find each other, only the one with the smaller
/// id dials, so they hold one session, not two.
pub fn should_dial_lan_peer(me: AuthorId, found: AuthorId, in_realm: bool, dialled: bool) -> bool {
    found != me && in_realm && !dialled && me < found
}

/// The address to dial of a node found on the LAN: IPv4 first (what shop
/// networks route), never loopback.
fn lan_address<'a>(addrs: impl Iterator<Item = &'a SocketAddr>) -> Option<SocketAddr> {
    let mut usable: Vec<SocketAddr> = addrs.filter(|a| !a.ip().is_loopback()).copied().collect();
    usable.sort_by_key(|a| !a.is_ipv4());
    usable.first().copied()
}

/// Dials the devices of this realm that mDNS finds on the LAN, and stops
/// dialling those that leave it.
async fn discover_lan_peers(
    mdns: iroh_mdns_address_lookup::MdnsAddressLookup,
    endpoint: Endpoint,
    shared: Shared,
    me: AuthorId,
    configured: std::collections::HashSet<AuthorId>,
) {
    use iroh_mdns_address_lookup::DiscoveryEvent;
    use tokio_stream::StreamExt as _;
    let mut events = mdns.subscribe().await;
    let mut dialling: HashMap<AuthorId, tokio::task::AbortHandle> = HashMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    while let Some(event) = events.next().await {
        while tasks.try_join_next().is_some() {}
        match event {
            DiscoveryEvent::Discovered { endpoint_info, .. } => {
                let found = AuthorId(*endpoint_info.endpoint_id.as_bytes());
                let Some(addr) = lan_address(endpoint_info.data.ip_addrs()) else { continue };
                let in_realm = shared.handle.call(move |node| node.may_sync_with(&found).is_ok()).await;
                let dialled = configured.contains(&found) || dialling.contains_key(&found);
                if should_dial_lan_peer(me, found, in_realm, dialled) {
                    let peer = PeerAddr { id: found, addr };
                    tracing::info!("found {peer} on the LAN: syncing with it");
                    shared.peer(&found, |p| p.found_on_lan = true);
                    let handle = tasks.spawn(keep_dialing(endpoint.clone(), shared.clone(), peer));
                    dialling.insert(found, handle);
                }
            }
            DiscoveryEvent::Expired { endpoint_id } => {
                if let Some(handle) = dialling.remove(&AuthorId(*endpoint_id.as_bytes())) {
                    handle.abort();
                }
            }
            _ => {}
        }
    }
}

type Job = Box<dyn FnOnce(&mut Node) + Send>;

/// Access to the node's thread from async tasks.
#[derive(Clone)]
pub struct NodeHandle {
    jobs: std::sync::mpsc::Sender<Job>,
    /// The node's frontier, updated after every change this process makes
    /// and when a poll sees another process's.
    frontier: watch::Sender<Frontier>,
    /// What the node holds of forked authors, updated with the frontier.
    forks: watch::Sender<Vec<saldo_sync::reconcile::ForkSummary>>,
}

impl fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NodeHandle")
    }
}

impl NodeHandle {
    /// Moves `node` to a thread of its own.
    pub fn spawn(mut node: Node) -> Result<NodeHandle> {
        let frontier = watch::Sender::new(node.frontier()?);
        let forks = watch::Sender::new(node.fork_summaries()?);
        let (jobs, receive) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new().name("saldo-node".into()).spawn(move || {
            while let Ok(job) = receive.recv() {
                job(&mut node);
            }
        })?;
        Ok(NodeHandle { jobs, frontier, forks })
    }

    /// Runs `f` on the node's thread.
    pub async fn call<R: Send + 'static>(&self, f: impl FnOnce(&mut Node) -> R + Send + 'static) -> R {
        let (send, receive) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |node| {
            let _ = send.send(f(node));
        });
        self.jobs.send(job).expect("the node thread outlives its handles");
        receive.await.expect("the node thread answers every job")
    }

    /// Re-reads the frontier and what is held of forked authors, and tells
    /// the sessions if either moved.
    pub async fn refresh_frontier(&self) -> Result<()> {
        let (frontier, forks) =
            self.call(|node| Ok::<_, NodeError>((node.frontier()?, node.fork_summaries()?))).await?;
        self.frontier.send_if_modified(|current| {
            let changed = *current != frontier;
            *current = frontier;
            changed
        });
        self.forks.send_if_modified(|current| {
            let changed = *current != forks;
            *current = forks;
            changed
        });
        Ok(())
    }
}

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
struct Shared {
    handle: NodeHandle,
    realm: saldo_sync::RealmId,
    status: Arc<Mutex<RunStatus>>,
}

impl Shared {
    fn peer(&self, id: &AuthorId, edit: impl FnOnce(&mut PeerStatus)) {
        let mut status = self.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry =
            status.peers.entry(id.to_hex()).or_insert_with(|| PeerStatus { id: id.to_hex(), ..Default::default() });
        edit(entry);
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A node serving and dialing its peers until `shutdown` resolves.
pub async fn run(
    node: Node,
    dir: &Path,
    config: NetConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let handle = NodeHandle::spawn(node)?;
    run_handle(handle, dir, config, shutdown).await
}

/// [`run`] for a node already on its thread (benchmarks record through the
/// same handle while the node syncs).
pub async fn run_handle(
    handle: NodeHandle,
    dir: &Path,
    config: NetConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let key = handle.call(|node| node.device_key()).await.ok_or(NodeError::NoKey)?;
    // Before anything else, so that a top-up typed right after the start
    // waits until the hub or a peer said how much of this device's log it holds.
    handle.call(|node| node.begin_own_log_check()).await?;
    let me = key.author();
    let realm = handle.call(|node| node.realm()).await;
    let realm_hub = realm.hub();
    let endpoint = bind_endpoint(&key, ALPN, config.bind).await?;
    // Bound to every interface, the endpoint's own address lists them.
    let sockets: Vec<SocketAddr> = if config.bind.ip().is_unspecified() {
        endpoint.addr().ip_addrs().copied().collect()
    } else {
        endpoint.bound_sockets()
    };
    let addresses: Vec<String> = sockets.iter().map(|addr| PeerAddr { id: me, addr: *addr }.to_string()).collect();
    let status = Arc::new(Mutex::new(RunStatus {
        pid: std::process::id(),
        id: me.to_hex(),
        addresses: addresses.clone(),
        ..RunStatus::default()
    }));
    let shared = Shared { handle: handle.clone(), realm, status: status.clone() };
    for address in &addresses {
        say(format_args!("sync: listening as {address}"));
    }
    let mut router = Router::builder(endpoint.clone()).accept(ALPN, Accept { shared: shared.clone() });
    if me == realm_hub {
        router = router.accept(JOIN_ALPN, Join { shared: shared.clone() });
        let listen = addresses.clone();
        handle.call(move |node| node.set_addresses(crate::node::META_LISTEN, &listen)).await?;
    }
    let router = router.spawn();
    let mut tasks = tokio::task::JoinSet::new();
    for peer in config.peers.iter().copied().filter(|p| p.id != me) {
        let (endpoint, shared) = (endpoint.clone(), shared.clone());
        tasks.spawn(async move { keep_dialing(endpoint, shared, peer).await });
    }
    if config.lan && me != realm_hub && !config.bind.ip().is_loopback() {
        match iroh_mdns_address_lookup::MdnsAddressLookup::builder().service_name(MDNS_SERVICE).build(endpoint.id()) {
            Ok(mdns) => {
                endpoint.address_lookup().map_err(|e| anyhow!("LAN discovery: {e}"))?.add(mdns.clone());
                say(format_args!("sync: looking for the realm's other devices on the local network (mDNS)"));
                let configured = config.peers.iter().map(|p| p.id).collect();
                let (endpoint, shared) = (endpoint.clone(), shared.clone());
                tasks.spawn(async move { discover_lan_peers(mdns, endpoint, shared, me, configured).await });
            }
            Err(e) => say(format_args!("sync: no LAN discovery ({e}); static peers and the hub only")),
        }
    }
    let poll_handle = handle.clone();
    tasks.spawn(async move {
        loop {
            tokio::time::sleep(LOCAL_POLL).await;
            if let Err(e) = poll_handle.refresh_frontier().await {
                tracing::warn!("cannot read the frontier: {e}");
            }
        }
    });
    if me == realm_hub {
        let heartbeat_handle = handle.clone();
        tasks.spawn(async move {
            loop {
                // Pushed to the devices by the frontier poll above.
                if let Err(e) = heartbeat_handle.call(|node| node.heartbeat_if_quiet()).await {
                    tracing::warn!("cannot write the hub's heartbeat: {e}");
                }
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
        });
    }
    let status_path = dir.join(STATUS_FILE);
    tasks.spawn(async move {
        loop {
            let snapshot = {
                let mut s = status.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                s.updated_ms = now_ms();
                s.clone()
            };
            if let Err(e) = write_status(&status_path, &snapshot) {
                tracing::warn!("cannot write {}: {e}", status_path.display());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    shutdown.await;
    tasks.shutdown().await;
    router.shutdown().await.map_err(|e| anyhow!("stopping the endpoint: {e}"))?;
    let _ = std::fs::remove_file(dir.join(STATUS_FILE));
    Ok(())
}

fn write_status(path: &PathBuf, status: &RunStatus) -> Result<()> {
    let temp = path.with_extension("json.tmp");
    std::fs::write(&temp, serde_json::to_vec_pretty(status)?)?;
    std::fs::rename(&temp, path)?;
    Ok(())
}

/// Keeps a session with `peer`: dials, syncs while the connection lasts,
/// and dials again after a pause that doubles up to [`RETRY_MAX`].
async fn keep_dialing(endpoint: Endpoint, shared: Shared, peer: PeerAddr) {
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
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(RETRY_MAX);
        if outcome.is_ok() {
            pause = Duration::from_millis(250);
        }
    }
}

async fn dial(endpoint: &Endpoint, shared: &Shared, peer: PeerAddr) -> Result<()> {
    let connecting = endpoint.connect(endpoint_addr(peer)?, ALPN);
    let conn = tokio::time::timeout(Duration::from_secs(5), connecting)
        .await
        .map_err(|_| anyhow!("no answer from {}", peer.addr))?
        .map_err(|e| anyhow!("cannot connect to {}: {e}", peer.addr))?;
    shared.peer(&peer.id, |p| p.addr = Some(peer.addr.to_string()));
    run_session(shared, conn, true).await
}

#[derive(Debug, Clone)]
struct Accept {
    shared: Shared,
}

impl ProtocolHandler for Accept {
    async fn accept(&self, conn: Connection) -> std::result::Result<(), AcceptError> {
        let peer = AuthorId(*conn.remote_id().as_bytes());
        let allowed = self.shared.handle.call(move |node| node.may_sync_with(&peer)).await;
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
    let (session, hello) = if initiator {
        let (session, hello) = shared.handle.call(move |node| node.initiate(peer)).await?;
        (session, Some(hello))
    } else {
        (shared.handle.call(move |node| node.respond(peer)).await?, None)
    };
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
        let mut frontier = shared.handle.frontier.subscribe();
        let mut forks = shared.handle.forks.subscribe();
        loop {
            let batch = {
                let session = session.clone();
                shared
                    .handle
                    .call(move |node| -> Result<Vec<Message>, NodeError> {
                        let mut session = lock(&session);
                        let mut out = Vec::new();
                        while out.len() < 4 {
                            match session.next_message(node)? {
                                Some(message) => out.push(message),
                                None => break,
                            }
                        }
                        Ok(out)
                    })
                    .await?
            };
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
            shared.peer(&peer, |p| {
                p.ops_sent += sent;
                p.last_contact_ms = Some(now_ms());
            });
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
fn say(line: fmt::Arguments<'_>) {
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
                let results = shared
                    .handle
                    // One transaction per call (at most OPS_PER_CALL_MAX operations,
                    // about a quarter of a second), letting waiting writers in
                    // before each: measured with `saldo-bench sync-catch-up`,
                    // 40 ms transactions made a catch-up of a million
                    // operations a quarter slower (33 s, 23 s this way).
                    .call(move |node| node.ingest_within(&ops, TransactionBound::LARGE).map(|r| (ops, r)))
                    .await?;
                let (ops, results) = results;
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
                shared.handle.refresh_frontier().await?;
            }
            Incoming::Hello => {
                let snapshot = session.clone();
                shared.handle.call(move |node| node.after_hello(peer, &lock(&snapshot))).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn id(byte: u8) -> AuthorId {
        AuthorId([byte; 32])
    }

    #[test]
    fn a_join_answer_carries_the_first_receipt_number_of_a_replacement_and_refusals_stay_refusals() {
        for joined in [
            Joined { name: "Edicola: la nuova".into(), receipts_after: None },
            Joined { name: "Edicola".into(), receipts_after: Some(41) },
        ] {
            assert_eq!(Joined::parse(&joined.encode()), Some(joined));
        }
        assert_eq!(Joined::parse("this enrolment token is unknown"), None);
        assert_eq!(Joined::parse("ok:Edicola\nreceipts-after:many"), None, "a damaged number is not guessed");
    }

    #[test]
    fn of_two_devices_that_find_each_other_on_the_lan_only_one_dials() {
        let (a, b) = (id(1), id(2));
        assert!(should_dial_lan_peer(a, b, true, false));
        assert!(!should_dial_lan_peer(b, a, true, false), "the larger id waits to be dialled");
        assert!(!should_dial_lan_peer(a, a, true, false), "never itself");
        assert!(!should_dial_lan_peer(a, b, false, false), "never a node of another realm, or not enrolled");
        assert!(!should_dial_lan_peer(a, b, true, true), "never twice");
    }

    #[test]
    fn a_lan_peer_is_dialled_on_ipv4_never_on_loopback() {
        let addrs: Vec<SocketAddr> =
            ["127.0.0.1:7400", "[fe80::1]:7400", "192.168.1.20:7400"].iter().map(|a| a.parse().unwrap()).collect();
        assert_eq!(lan_address(addrs.iter()), Some("192.168.1.20:7400".parse().unwrap()));
        assert_eq!(lan_address(addrs[..2].iter()), Some("[fe80::1]:7400".parse().unwrap()));
        assert_eq!(lan_address(addrs[..1].iter()), None);
    }
}
