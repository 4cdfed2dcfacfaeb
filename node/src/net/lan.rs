//! Peers on the local network, found over mDNS.

use super::endpoint::PeerAddr;
use super::status::Shared;
use super::sync::keep_dialing;
use iroh::Endpoint;
use saldo_sync::AuthorId;
use std::collections::HashMap;
use std::net::SocketAddr;

/// The mDNS service Saldo nodes advertise: `_saldo._udp.local`.
pub(super) const MDNS_SERVICE: &str = "saldo";

/// Whether a node found on the LAN should be dialled: a device of this
/// realm (enrolled, or the hub), not this node, not one dialled already;
/// and of two devices that find each other, only the one with the smaller
/// id dials, so they hold one session, not two.
pub fn should_dial_lan_peer(me: AuthorId, found: AuthorId, in_realm: bool, dialled: bool) -> bool {
    found != me && in_realm && !dialled && me < found
}

/// The address to dial of a node found on the LAN: IPv4 first (what shop
/// networks route), never loopback.
pub(super) fn lan_address<'a>(addrs: impl Iterator<Item = &'a SocketAddr>) -> Option<SocketAddr> {
    let mut usable: Vec<SocketAddr> = addrs.filter(|a| !a.ip().is_loopback()).copied().collect();
    usable.sort_by_key(|a| !a.is_ipv4());
    usable.first().copied()
}

/// Dials the devices of this realm that mDNS finds on the LAN, and stops
/// dialling those that leave it.
pub(super) async fn discover_lan_peers(
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
                let in_realm = shared.service.may_sync_with(found).await.is_ok();
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
