//! A running node on the network: its iroh QUIC endpoint (ALPN
//! `saldo/sync/1`, the endpoint id *is* the device key), sync sessions with
//! the hub and static peers, reconnects with capped backoff, and the status
//! file `saldo status` reads.
//!
//! The transport runs over the [`Service`]: its writer thread (the
//! [`NodeHandle`]) stores what sessions receive, and the addresses and peers
//! it keeps here are the service's status, which `status.json` mirrors. Each connection carries one session of
//! [`saldo_sync::reconcile`]: a reader task receives and ingests, a writer
//! task sends what the session has to say; both stay up, so operations
//! recorded on either side (by this process or by a CLI command on the same
//! data directory) are pushed within a fraction of a second.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Result, anyhow};
use iroh::protocol::Router;
use saldo_sync::reconcile::ALPN;

use crate::node::Node;
use crate::service::Service;

mod embedded;
mod endpoint;
mod join;
mod lan;
mod status;
mod sync;

pub use crate::service::NodeHandle;
pub use embedded::{NewCashPoint, SyncTask, join_realm};
use endpoint::bind_endpoint;
pub use endpoint::{NetConfig, PeerAddr};
use join::Join;
pub use join::{EnrolmentToken, JOIN_ALPN, Joined, redeem};
pub use lan::should_dial_lan_peer;
use lan::{MDNS_SERVICE, discover_lan_peers};
pub use status::{PeerStatus, RunStatus, STATUS_FILE};
use status::{Shared, write_status};
pub(crate) use sync::say;
use sync::{Accept, keep_dialing};
pub use sync::{RawConnection, Refusal, connect_raw, read_frame, refusal, refusal_reason, write_frame};

/// How long between two attempts to reach a peer, at most.
pub const RETRY_MAX: Duration = Duration::from_secs(10);
/// How often the data directory is checked for operations recorded by
/// other processes (a `saldo topup` while the node runs).
const LOCAL_POLL: Duration = Duration::from_millis(200);

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
    let service = Service::start(node, Some(dir.to_path_buf()))?;
    run_service(service, dir, config, shutdown).await
}

/// [`run`] for a node already started as a service (the HTTP API and
/// benchmarks use the same service while the node syncs).
pub async fn run_service(
    service: Service,
    dir: &Path,
    config: NetConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let key = service.device_key().await?;
    // Before anything else, so that a top-up typed right after the start
    // waits until the hub or a peer said how much of this device's log it holds.
    service.begin_own_log_check().await?;
    let me = key.author();
    let realm = service.realm();
    let realm_hub = realm.hub();
    let endpoint = bind_endpoint(&key, ALPN, config.bind).await?;
    // Bound to every interface, the endpoint's own address lists them.
    let sockets: Vec<SocketAddr> = if config.bind.ip().is_unspecified() {
        endpoint.addr().ip_addrs().copied().collect()
    } else {
        endpoint.bound_sockets()
    };
    let addresses: Vec<String> = sockets.iter().map(|addr| PeerAddr { id: me, addr: *addr }.to_string()).collect();
    let status = service.run_status();
    {
        let mut status = status.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        status.pid = std::process::id();
        status.id = me.to_hex();
        status.addresses = addresses.clone();
    }
    let shared = Shared { service: service.clone(), realm, status: status.clone() };
    for address in &addresses {
        say(format_args!("sync: listening as {address}"));
    }
    let mut router = Router::builder(endpoint.clone()).accept(ALPN, Accept { shared: shared.clone() });
    if me == realm_hub {
        router = router.accept(JOIN_ALPN, Join { shared: shared.clone() });
        service.set_listen_addresses(addresses.clone()).await?;
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
    let poll = service.clone();
    tasks.spawn(async move {
        loop {
            tokio::time::sleep(LOCAL_POLL).await;
            if let Err(e) = poll.refresh_frontier().await {
                tracing::warn!("cannot read the frontier: {e}");
            }
        }
    });
    if me == realm_hub {
        let heartbeat = service.clone();
        tasks.spawn(async move {
            loop {
                // Pushed to the devices by the frontier poll above.
                if let Err(e) = heartbeat.heartbeat_if_quiet().await {
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

#[cfg(test)]
mod tests {
    use super::lan::lan_address;
    use super::*;
    use saldo_sync::AuthorId;

    fn id(byte: u8) -> AuthorId {
        AuthorId([byte; 32])
    }

    #[test]
    fn a_join_answer_carries_the_first_receipt_number_of_a_replacement_and_refusals_stay_refusals() {
        for joined in [
            Joined { name: "Edicola: la nuova".into(), receipts_after: None, public_url: None },
            Joined { name: "Edicola".into(), receipts_after: Some(41), public_url: None },
            Joined {
                name: "Edicola".into(),
                receipts_after: Some(41),
                public_url: Some("https://saldo.comune.example".into()),
            },
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
