//! A node run inside another program's process (what the mobile shim does):
//! joining a realm with `net::join_realm`, syncing with `net::SyncTask`,
//! stopped and started again, and `Service::sync_now`. Everything on 127.0.0.1,
//! in this process.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use saldo_api::ErrorKind;
use saldo_api::cash_points::{EnrolmentTokenRequest, Limits};
use saldo_node::net::{NetConfig, SyncTask, join_realm};
use saldo_node::node::Node;
use saldo_node::service::Service;
use saldo_sync::{Amount, Balance, Label};

fn local() -> NetConfig {
    NetConfig { bind: "127.0.0.1:0".parse().unwrap(), peers: Vec::new(), lan: false }
}

async fn wait_until<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < Duration::from_secs(60), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn hub_sync(hub: &Service, dir: &Path, bind: SocketAddr) -> SyncTask {
    let sync = SyncTask::start(hub.clone(), dir.to_path_buf(), NetConfig { bind, ..local() }).await.unwrap();
    wait_until("the hub to listen", || async { !hub.listen_addresses().await.unwrap().is_empty() }).await;
    sync
}

async fn token(hub: &Service, name: &str) -> String {
    let limits = Limits {
        per_operation: Amount::parse("500.00").unwrap(),
        unconfirmed_total: Balance::parse("5000.00").unwrap(),
        offline_hours: 72,
    };
    let request = EnrolmentTokenRequest { name: Label::parse(name).unwrap(), limits, replaces: None };
    hub.enrolment_token(request).await.unwrap().token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_in_this_process_joins_syncs_stops_and_syncs_again_when_the_hub_is_back() {
    let tmp = tempfile::tempdir().unwrap();
    let hub_dir = tmp.path().join("hub");
    let hub_node = Node::init_realm(&hub_dir, &Label::parse("Comune di Prova").unwrap()).unwrap();
    let hub = Service::start(hub_node, Some(hub_dir.clone())).unwrap();
    let hub_task = hub_sync(&hub, &hub_dir, "127.0.0.1:0".parse().unwrap()).await;
    let hub_address: SocketAddr = hub.listen_addresses().await.unwrap()[0].rsplit_once('@').unwrap().1.parse().unwrap();

    // A damaged token: refused before anything is created.
    let dir = tmp.path().join("cassa");
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let error = join_realm(&dir, "saldo-join-1:zz", bind).await.unwrap_err();
    assert_eq!((error.kind, error.field.as_deref()), (ErrorKind::InvalidInput, Some("token")), "{error:?}");
    assert!(error.message.contains("copy it whole"), "{}", error.message);
    assert!(!dir.exists());

    let token = token(&hub, "Edicola").await;
    let new = join_realm(&dir, &token, bind).await.unwrap();
    assert_eq!(new.realm, hub.realm());
    assert_eq!(new.joined.name, "Edicola");
    let me = new.me;

    // The same token again, elsewhere: the hub refuses it, and nothing is left.
    let other = tmp.path().join("altra");
    let error = join_realm(&other, &token, bind).await.unwrap_err();
    assert_eq!((error.kind, error.field.as_deref()), (ErrorKind::InvalidInput, Some("token")), "{error:?}");
    assert!(error.message.contains("the hub refused"), "{}", error.message);
    assert!(!other.exists());
    // Nor can a node be joined over one there already.
    let error = join_realm(&dir, &self::token(&hub, "Edicola Due").await, bind).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Conflict, "{error:?}");

    let cash_point = Service::start(new.node, Some(dir.clone())).unwrap();
    assert_eq!(cash_point.about().me, me);
    // Where the hub listens already: the transport says it cannot start.
    let taken = NetConfig { bind: hub_address, ..local() };
    let error = SyncTask::start(cash_point.clone(), dir.clone(), taken).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Unavailable, "{error:?}");
    assert!(error.message.starts_with("the sync endpoint did not start: "), "{}", error.message);
    let cash_task = SyncTask::start(cash_point.clone(), dir.clone(), local()).await.unwrap();
    wait_until("the hub online", || async { cash_point.status().await.unwrap().online }).await;

    // The hub stops: the cash point sees it offline.
    hub_task.stop().await.unwrap();
    wait_until("the hub offline", || async { !cash_point.status().await.unwrap().online }).await;

    // The hub is back where it was; asked to sync now, the cash point reaches it.
    let hub_task = hub_sync(&hub, &hub_dir, hub_address).await;
    cash_point.sync_now().await.unwrap();
    wait_until("the hub online again", || async { cash_point.status().await.unwrap().online }).await;
    assert!(cash_point.status().await.unwrap().last_hub_contact_ms.is_some());

    cash_task.stop().await.unwrap();
    hub_task.stop().await.unwrap();
    drop(cash_point);
    // Stopped cleanly: the node opens again.
    Service::open(&dir).unwrap();
}
