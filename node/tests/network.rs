//! Real `saldo` processes syncing over iroh QUIC on 127.0.0.1: a hub and two
//! cash points, one cut from the hub by a UDP relay the test controls; and
//! forged, replayed and equivocating operations sent over the wire.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use saldo_node::net::{PeerAddr, connect_raw, read_frame, write_frame};
use saldo_node::store::Store;
use saldo_sync::reconcile::{FrontierForm, Hello, Message, PROTOCOL_VERSION};
use saldo_sync::{
    Amount, AuthorId, Body, ConsumerId, DeviceKey, Frontier, Hlc, OpId, Operation, PaymentMethod, RealmId, ReceiptNo,
    Seq, ServiceId, TopUp, TopUpLine, WalletKey,
};
use serde_json::Value;

mod common;
use common::{SALDO, ok, saldo};

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&ok(args)).unwrap()
}

/// A running node, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str], log: &Path) -> Running {
    let log = std::fs::File::create(log).unwrap();
    Running(
        Command::new(SALDO)
            .args(args)
            .env_remove("SALDO_DATA")
            .env("SALDO_LOG", "saldo_node=debug")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn status(dir: &Path) -> Value {
    json(&["status", "--data", dir.to_str().unwrap(), "--json"])
}

fn address(dir: &Path) -> String {
    wait_until("the node to listen", || status(dir)["addresses"][0].as_str().map(str::to_string))
}

/// A hub with 30 generated consumers, running on 127.0.0.1.
fn hub(tmp: &Path) -> (PathBuf, Running, String) {
    let dir = tmp.join("hub");
    let data = dir.to_str().unwrap();
    ok(&["realm", "init", "--data", data, "--name", "Comune di Prova"]);
    let csv = tmp.join("families.csv");
    ok(&["generate", "--consumers", "30", "--out", csv.to_str().unwrap(), "--seed", "11"]);
    ok(&["families", "import", "--data", data, csv.to_str().unwrap()]);
    let running = spawn(&["hub", "--data", data, "--p2p", "127.0.0.1:0"], &tmp.join("hub.log"));
    let address = address(&dir);
    (dir, running, address)
}

fn enroll(hub: &Path, name: &str) -> String {
    json(&["enroll", "--data", hub.to_str().unwrap(), "--name", name, "--json"])["token"].as_str().unwrap().to_string()
}

/// A consumer with one service, as a cash point's directory shows it: (PAN, service).
fn some_consumer(dir: &Path) -> Option<(String, String)> {
    for prefix in ["ro", "ma", "ri", "co", "ga", "fe", "ba", "be", "gi", "de", "sa", "pa", "mo", "ca", "lo"] {
        // Not there yet while the node is being created.
        let out = saldo(&["search", "--data", dir.to_str().unwrap(), prefix, "--json"]);
        let found: Value = serde_json::from_slice(&out.stdout).ok()?;
        if let Some(c) = found.as_array()?.iter().find(|c| c["services"].as_array().is_some_and(|s| s.len() == 1)) {
            return Some((c["pan"].as_str()?.to_string(), c["services"][0].as_str()?.to_string()));
        }
    }
    None
}

fn confirmed(dir: &Path, pan: &str) -> (String, String) {
    let balance = json(&["balance", "--data", dir.to_str().unwrap(), "--pan", pan, "--json"]);
    let wallet = &balance["wallets"][0];
    (wallet["confirmed"].as_str().unwrap().to_string(), wallet["provisional"].as_str().unwrap().to_string())
}

/// A UDP relay between a cash point and the hub that the test can cut.
struct Relay {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Relay {
    fn new(upstream: SocketAddr) -> Relay {
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        let back = UdpSocket::bind("127.0.0.1:0").unwrap();
        back.connect(upstream).unwrap();
        for socket in [&front, &back] {
            socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        }
        let addr = front.local_addr().unwrap();
        let (cut, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let client: Arc<std::sync::Mutex<Option<SocketAddr>>> = Arc::default();
        let (front, back) = (Arc::new(front), Arc::new(back));
        {
            let (front, back, cut, stop, client) =
                (front.clone(), back.clone(), cut.clone(), stop.clone(), client.clone());
            std::thread::spawn(move || {
                let mut buffer = [0u8; 65_536];
                while !stop.load(Ordering::SeqCst) {
                    if let Ok((n, from)) = front.recv_from(&mut buffer) {
                        *client.lock().unwrap() = Some(from);
                        if !cut.load(Ordering::SeqCst) {
                            let _ = back.send(&buffer[..n]);
                        }
                    }
                }
            });
        }
        {
            let (cut, stop) = (cut.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buffer = [0u8; 65_536];
                while !stop.load(Ordering::SeqCst) {
                    if let Ok(n) = back.recv(&mut buffer) {
                        let to = *client.lock().unwrap();
                        if let (Some(to), false) = (to, cut.load(Ordering::SeqCst)) {
                            let _ = front.send_to(&buffer[..n], to);
                        }
                    }
                }
            });
        }
        Relay { addr, cut, stop }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_cash_point_cut_from_the_hub_reaches_it_through_a_neighbour_and_converges() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let (hub_dir, _hub, hub_address) = hub(tmp);
    let hub_peer: PeerAddr = hub_address.parse().unwrap();
    let (a_dir, b_dir) = (tmp.join("edicola"), tmp.join("farmacia"));
    let (a, b) = (a_dir.to_str().unwrap(), b_dir.to_str().unwrap());

    // Both cash points join through the hub and receive its directory.
    let (token_a, token_b) = (enroll(&hub_dir, "Edicola A"), enroll(&hub_dir, "Farmacia B"));
    let joined = spawn(&["cashpoint", "--data", a, "--p2p", "127.0.0.1:0", "--join", &token_a], &tmp.join("a0.log"));
    let (pan, service) = wait_until("A's directory", || some_consumer(&a_dir));
    drop(joined);
    let _b = spawn(&["cashpoint", "--data", b, "--p2p", "127.0.0.1:0", "--join", &token_b], &tmp.join("b.log"));
    wait_until("B's directory", || some_consumer(&b_dir));
    let b_address = address(&b_dir);
    // (A catch-up commits in short transactions: the directory can be there before the enrolment.)
    wait_until("B's enrolment", || Some(()).filter(|()| status(&b_dir)["role"] == "cash point"));

    // A reaches the hub only through the relay, and B directly.
    let relay = Relay::new(hub_peer.addr);
    let through_relay = format!("{}@{}", hub_peer.id.to_hex(), relay.addr);
    // (B as a static peer in A's configuration file, as a shop would set it up.)
    std::fs::write(a_dir.join("saldo.toml"), format!("p2p = \"127.0.0.1:0\"\npeers = [\"{b_address}\"]\n")).unwrap();
    let _a = spawn(&["cashpoint", "--data", a, "--hub", &through_relay], &tmp.join("a.log"));
    wait_until("A online with the hub", || status(&a_dir)["hub_online"].as_bool().filter(|online| *online));

    // Cut: A records top-ups; its receipts say provisional.
    relay.cut.store(true, Ordering::SeqCst);
    let mut total = 0i64;
    for (i, amount) in ["12.50", "7.25", "30.00"].iter().enumerate() {
        let receipt = json(&[
            "topup",
            "--data",
            a,
            "--pan",
            &pan,
            "--amount",
            amount,
            "--method",
            "cash",
            "--service",
            &service,
            "--json",
        ]);
        assert_eq!(receipt["provisional"], true, "top-up {i}: {receipt}");
        total += Amount::parse(amount).unwrap().minor();
    }
    let total = format!("{}.{:02}", total / 100, total % 100);
    assert_eq!(confirmed(&a_dir, &pan).1, total, "A's provisional balance counts its own top-ups");

    // B carries A's operations to the hub, which accepts them.
    wait_until("the hub to hold A's top-ups", || Some(()).filter(|()| confirmed(&hub_dir, &pan).0 == total));
    let received_from = |dir: &Path| -> u64 {
        let id = status(dir)["id"].clone();
        let peers = status(&hub_dir)["peers"].clone();
        peers.as_array().unwrap().iter().find(|p| p["id"] == id).map_or(0, |p| p["ops_received"].as_u64().unwrap())
    };
    // (status.json is rewritten twice a second)
    wait_until("the hub's status to show A's top-ups came from B", || Some(()).filter(|()| received_from(&b_dir) == 3));
    assert_eq!(received_from(&a_dir), 0, "nothing reached the hub from A while it was cut");

    // A comes back: everything converges, A's balance is confirmed.
    relay.cut.store(false, Ordering::SeqCst);
    wait_until("A's balance confirmed", || {
        let s = status(&a_dir);
        Some(()).filter(|()| confirmed(&a_dir, &pan).0 == total && s["unconfirmed_operations"] == 0)
    });
    wait_until("B to hold the hub's decisions", || Some(()).filter(|()| confirmed(&b_dir, &pan).0 == total));
    for dir in [&hub_dir, &a_dir, &b_dir] {
        ok(&["log", "verify", "--data", dir.to_str().unwrap()]);
    }
}

fn top_up(realm: &RealmId, key: &DeviceKey, seq: u64, prev: OpId, wallet: &WalletKey, amount: &str) -> Vec<u8> {
    Operation {
        author: key.author(),
        seq: Seq(seq),
        prev,
        hlc: Hlc::from_parts(1_790_000_000_000 + seq, 0),
        // Holding the hub's genesis, written after this clock's time.
        hub_seen: Seq(1),
        body: Body::TopUp(TopUp {
            receipt: ReceiptNo(seq),
            lines: vec![TopUpLine { wallet: wallet.clone(), amount: Amount::parse(amount).unwrap() }],
            method: PaymentMethod::Cash,
            operator: None,
        }),
    }
    .sign(realm, key)
    .to_bytes()
}

/// Reads messages until the peer's `Done`.
async fn until_done(recv: &mut iroh::endpoint::RecvStream) -> anyhow::Result<()> {
    loop {
        if read_frame(recv).await? == Message::Done {
            return Ok(());
        }
    }
}

/// The hub's database, without what a session notes about its peer (the
/// frontier it sent, for the next session to send only what changed).
fn hub_state(dir: &Path) -> Vec<String> {
    let dump = Store::open(&dir.join("saldo.db")).unwrap().dump().unwrap();
    dump.into_iter()
        .filter(|line| !line.contains("frontier_received_from:") && !line.contains("frontier_received_before_from:"))
        .collect()
}

#[test]
fn forged_replayed_and_equivocating_operations_over_the_wire_are_refused_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let (hub_dir, _hub, hub_address) = hub(tmp);
    let hub_peer: PeerAddr = hub_address.parse().unwrap();
    let realm = RealmId(hub_peer.id.0);
    let runtime = tokio::runtime::Runtime::new().unwrap();

    // A device that is not enrolled cannot sync.
    let stranger = DeviceKey::generate();
    let refusal = runtime.block_on(async {
        let mut raw = connect_raw(&stranger, hub_peer).await?;
        let hello = Message::Hello(Hello {
            version: PROTOCOL_VERSION,
            realm,
            frontier: FrontierForm::Whole(Frontier::default()),
        });
        write_frame(&mut raw.send, &hello).await?;
        let read = read_frame(&mut raw.recv).await.map(|_| ());
        read.map_err(|e| match saldo_node::net::refusal_reason(&raw.conn) {
            Some(reason) => anyhow::anyhow!("refused: {reason}"),
            None => e,
        })
    });
    let refusal = format!("{:#}", refusal.expect_err("a stranger is refused"));
    assert!(refusal.contains("not enrolled"), "{refusal}");

    // An enrolled device, whose key this test holds, misbehaves.
    let token = saldo_node::net::EnrolmentToken::decode(&enroll(&hub_dir, "Cassa Manomessa")).unwrap();
    let device = DeviceKey::generate();
    runtime.block_on(saldo_node::net::redeem(&token, &device, "127.0.0.1:0".parse().unwrap())).unwrap();
    let (pan, service) = wait_until("the directory", || some_consumer(&hub_dir));
    let consumer = json(&["search", "--data", hub_dir.to_str().unwrap(), &pan, "--json"])[0]["consumer"]
        .as_str()
        .map(|c| ConsumerId::from_hex(c).unwrap())
        .unwrap();
    let wallet = WalletKey { consumer, service: ServiceId::parse(&service).unwrap() };
    let good = top_up(&realm, &device, 1, OpId::NONE, &wallet, "10.00");
    let mut forged = top_up(&realm, &device, 1, OpId::NONE, &wallet, "99.00");
    let last = forged.len() - 1;
    forged[last] ^= 0x40;
    let twin = top_up(&realm, &device, 1, OpId::NONE, &wallet, "20.00");

    let device_status = |hub: &Path| -> Value {
        let peers = status(hub)["peers"].clone();
        peers.as_array().unwrap().iter().find(|p| p["id"] == device.author().to_hex()).cloned().unwrap_or(Value::Null)
    };
    let send = |ops: Vec<Vec<u8>>| {
        runtime
            .block_on(async {
                let mut raw = connect_raw(&device, hub_peer).await?;
                let hello = Message::Hello(Hello {
                    version: PROTOCOL_VERSION,
                    realm,
                    frontier: FrontierForm::Whole(Frontier::default()),
                });
                write_frame(&mut raw.send, &hello).await?;
                until_done(&mut raw.recv).await?;
                write_frame(&mut raw.send, &Message::Ops(ops)).await?;
                write_frame(&mut raw.send, &Message::Done).await?;
                // Whatever the hub answers (its decisions), then leave.
                let _ = tokio::time::timeout(Duration::from_millis(500), read_frame(&mut raw.recv)).await;
                raw.conn.close(0u32.into(), b"bye");
                raw.endpoint.close().await;
                anyhow::Ok(())
            })
            .unwrap();
    };

    // Forged: refused, reported, nothing changes.
    let before = hub_state(&hub_dir);
    send(vec![forged]);
    wait_until("the refusal to be reported", || Some(()).filter(|()| device_status(&hub_dir)["ops_refused"] == 1));
    assert!(
        device_status(&hub_dir)["last_error"].as_str().unwrap().contains("signature"),
        "{}",
        device_status(&hub_dir)
    );
    assert_eq!(hub_state(&hub_dir), before, "a forged operation changed the hub");

    // Genuine: stored and accepted. Replayed: nothing changes.
    send(vec![good.clone()]);
    wait_until("the top-up to count", || Some(()).filter(|()| confirmed(&hub_dir, &pan).0 == "10.00"));
    let before = hub_state(&hub_dir);
    send(vec![good]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(hub_state(&hub_dir), before, "a replayed operation changed the hub");

    // Equivocating: kept as evidence, the device frozen, the balance unchanged.
    send(vec![twin]);
    wait_until("the equivocation to be recorded", || {
        let tx_count = Store::open(&hub_dir.join("saldo.db")).unwrap().read().unwrap().equivocation_count().unwrap();
        Some(()).filter(|()| tx_count == 1)
    });
    let frozen = Store::open(&hub_dir.join("saldo.db"))
        .unwrap()
        .read()
        .unwrap()
        .author(&AuthorId(device.author().0))
        .unwrap()
        .unwrap()
        .frozen_at;
    assert_eq!(frozen, Some(Seq(1)));
    assert_eq!(confirmed(&hub_dir, &pan).0, "10.00");

    // Revoked, the device still syncs: what it recorded must reach the hub.
    ok(&["revoke", "--data", hub_dir.to_str().unwrap(), "--device", &device.author().to_hex()]);
    send(Vec::new());
    ok(&["log", "verify", "--data", hub_dir.to_str().unwrap()]);
}

/// The README's run command: the demo runs a hub and two cash points that
/// sync, and stops them all on SIGTERM.
#[test]
fn the_demo_runs_a_hub_and_two_cash_points_that_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let mut demo = spawn(&["demo", "--data", dir.to_str().unwrap(), "--consumers", "40"], &tmp.path().join("demo.log"));
    let (edicola, farmacia, hub) = (dir.join("edicola"), dir.join("farmacia"), dir.join("hub"));
    for cash_point in [&edicola, &farmacia] {
        wait_until("a demo cash point online with the hub", || {
            let s = saldo(&["status", "--data", cash_point.to_str().unwrap(), "--json"]);
            let s: Value = serde_json::from_slice(&s.stdout).ok()?;
            Some(()).filter(|()| s["hub_online"] == true && s["role"] == "cash point")
        });
    }
    let (pan, service) = wait_until("the edicola's directory", || some_consumer(&edicola));
    let before = confirmed(&hub, &pan).0;
    ok(&[
        "topup",
        "--data",
        edicola.to_str().unwrap(),
        "--pan",
        &pan,
        "--amount",
        "3.00",
        "--method",
        "cash",
        "--service",
        &service,
    ]);
    wait_until("the top-up at the hub", || Some(()).filter(|()| confirmed(&hub, &pan).0 != before));
    assert!(Command::new("kill").arg(demo.0.id().to_string()).status().unwrap().success());
    let exit = demo.0.wait().unwrap();
    assert!(exit.success(), "the demo exits cleanly on SIGTERM: {exit}");
    // Its nodes stopped with it.
    for node in [&hub, &edicola, &farmacia] {
        wait_until("a demo node to stop", || Some(()).filter(|()| !node.join("status.json").exists()));
    }
}

/// A cash point set to sync with a node of another realm (a wrong address
/// in its configuration) is told for good that the realms differ: its
/// status shows that peer as refused, with the reason, and it stops dialing
/// it, while it keeps syncing with its own hub.
#[test]
fn a_device_that_reaches_another_realms_node_is_refused_for_good_and_stops_dialing_it() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let (hub_dir, _hub, _) = hub(tmp);
    let other_dir = tmp.join("altro-comune");
    ok(&["realm", "init", "--data", other_dir.to_str().unwrap(), "--name", "Altro Comune"]);
    let other_log = tmp.join("other.log");
    let _other = spawn(&["hub", "--data", other_dir.to_str().unwrap(), "--p2p", "127.0.0.1:0"], &other_log);
    let other_address = address(&other_dir);
    let other_id = other_address.split('@').next().unwrap().to_string();

    let a_dir = tmp.join("edicola");
    let a = a_dir.to_str().unwrap();
    let token = enroll(&hub_dir, "Edicola");
    let _a = spawn(
        &["cashpoint", "--data", a, "--p2p", "127.0.0.1:0", "--join", &token, "--peer", &other_address],
        &tmp.join("a.log"),
    );
    let refused = wait_until("the other realm's node refused for good in A's status", || {
        let s: Value = serde_json::from_slice(&saldo(&["status", "--data", a, "--json"]).stdout).ok()?;
        let peer = s["peers"].as_array()?.iter().find(|p| p["id"] == other_id.as_str())?.clone();
        peer["refused"].as_str().map(str::to_string)
    });
    assert!(refused.contains("the realms differ"), "{refused}");
    let text = ok(&["status", "--data", a]);
    assert!(text.contains("refused for good") && text.contains("the realms differ"), "{text}");
    wait_until("A online with its own hub", || status(&a_dir)["hub_online"].as_bool().filter(|online| *online));

    let refusals = || std::fs::read_to_string(&other_log).unwrap().matches("refused a sync from").count();
    let seen = refusals();
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!((seen, refusals()), (1, 1), "A dialed the other realm's node again after its refusal");
}
