//! The iroh endpoint: binding it with the device key, a peer's address, the network configuration.

use anyhow::{Context as _, Result, anyhow};
use iroh::endpoint::presets;
use iroh::{Endpoint, EndpointAddr, SecretKey};
use saldo_sync::AuthorId;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

/// How long a connection stays up without hearing from the peer.
pub const PEER_GONE_AFTER: std::time::Duration = std::time::Duration::from_secs(6);
/// How often a quiet connection says it is alive (well within [`PEER_GONE_AFTER`]).
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_millis(1500);

/// A QUIC endpoint with the device's key as its identity, bound to `bind`
/// only, with no relay and no address lookup (a device adds mDNS to it when
/// LAN discovery is on).
///
/// A peer that vanishes (its machine off, its network down) is known gone
/// within [`PEER_GONE_AFTER`]: the operators' page says offline at once,
/// and the node dials again as soon as it can (QUIC's default was 30 s).
pub(super) async fn bind_endpoint(key: &saldo_sync::DeviceKey, alpn: &[u8], bind: SocketAddr) -> Result<Endpoint> {
    let transport = iroh::endpoint::QuicTransportConfig::builder()
        .max_idle_timeout(Some(PEER_GONE_AFTER.try_into().map_err(|e| anyhow!("idle timeout: {e}"))?))
        .keep_alive_interval(KEEP_ALIVE)
        .build();
    Endpoint::builder(presets::Minimal)
        .transport_config(transport)
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
pub(super) fn endpoint_addr(peer: PeerAddr) -> Result<EndpointAddr> {
    let id = iroh::PublicKey::from_bytes(&peer.id.0)
        .map_err(|e| anyhow!("{} is not a valid node id: {e}", peer.id.to_hex()))?;
    Ok(EndpointAddr::new(id).with_ip_addr(peer.addr))
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
