//! Real `saldo` processes syncing over iroh QUIC on 127.0.0.1: a hub and two
//! cash points, one cut from the hub by a UDP relay the test controls; and
//! forged, replayed and equivocating operations sent over the wire; and the
//! hub's outbox delivering to real servers (`network/outbox_delivery.rs`).

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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

/// The hub's outbox against a real SMTP server and SMS gateway on 127.0.0.1.
#[path = "network/delivery.rs"]
mod delivery;
#[path = "network/outbox_delivery.rs"]
mod outbox_delivery;
use delivery::{Running, wait_until};
/// A node run inside another program's process (the mobile shim's way).
#[path = "network/embedded.rs"]
mod embedded;

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&ok(args)).unwrap()
}

fn spawn(args: &[&str], log: &Path) -> Running {
    let log = std::fs::File::create(log).unwrap();
    // Nodes of tests running side by side each take a free port for their API.
    let mut args = args.to_vec();
    if matches!(args.first(), Some(&"hub" | &"cashpoint")) && !args.contains(&"--http") {
        args.extend(["--http", "127.0.0.1:0"]);
    }
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

fn status(dir: &Path) -> Value {
    json(&["status", "--data", dir.to_str().unwrap(), "--json"])
}

/// Whether the node running on `dir` is the process `node` (not one that
/// stopped, whose status file is still fresh).
fn runs_as(dir: &Path, node: &Running) -> bool {
    let written: Option<Value> =
        std::fs::read(dir.join("status.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
    written.is_some_and(|s| s["pid"].as_u64() == Some(u64::from(node.0.id())))
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
        if let Some(c) =
            found["consumers"].as_array()?.iter().find(|c| c["wallets"].as_array().is_some_and(|w| w.len() == 1))
        {
            return Some((c["pan"].as_str()?.to_string(), c["wallets"][0]["service"].as_str()?.to_string()));
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
    wait_until("B's enrolment", || Some(()).filter(|()| status(&b_dir)["device_name"] != ""));

    // A reaches the hub only through the relay, and B directly.
    let relay = Relay::new(hub_peer.addr);
    let through_relay = format!("{}@{}", hub_peer.id.to_hex(), relay.addr);
    // (B as a static peer in A's configuration file, as a shop would set it up.)
    std::fs::write(a_dir.join("saldo.toml"), format!("p2p = \"127.0.0.1:0\"\npeers = [\"{b_address}\"]\n")).unwrap();
    let a_node = spawn(&["cashpoint", "--data", a, "--hub", &through_relay], &tmp.join("a.log"));
    wait_until("A online with the hub", || status(&a_dir)["online"].as_bool().filter(|online| *online));

    // Cut: A records top-ups; its receipts say provisional. (Once the hub
    // or B has answered A's hello: a node just started holds recording
    // until it knows how much of its own log they hold.)
    relay.cut.store(true, Ordering::SeqCst);
    // A connection through the relay learns the hub's own address (iroh's
    // NAT traversal advertises it inside the encrypted connection) and may
    // open a direct path beside the relay's, which the cut cannot stop on
    // loopback. A cash point restarted while cut knows only the relay.
    drop(a_node);
    let a_node = spawn(&["cashpoint", "--data", a, "--hub", &through_relay], &tmp.join("a-cut.log"));
    wait_until("A to know what its peers hold of its log", || {
        Some(()).filter(|()| runs_as(&a_dir, &a_node) && status(&a_dir)["recording_held"].is_null())
    });
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
        let id = status(dir)["device"].clone();
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
/// frontier it sent, for the next session to send only what changed), and
/// without the messages to families, which the hub's writer and sender keep
/// working on after the commit (receipts due turned into messages, attempts).
fn hub_state(dir: &Path) -> Vec<String> {
    let dump = Store::open(&dir.join("saldo.db")).unwrap().dump().unwrap();
    dump.into_iter()
        .filter(|line| !line.contains("frontier_received_from:") && !line.contains("frontier_received_before_from:"))
        .filter(|line| !line.starts_with("outbox:") && !line.starts_with("receipts_due:"))
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
        if read.is_err() {
            // The stream can end before the close that says why arrives.
            let _ = tokio::time::timeout(Duration::from_secs(5), raw.conn.closed()).await;
        }
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
    let consumer = json(&["search", "--data", hub_dir.to_str().unwrap(), &pan, "--json"])["consumers"][0]["consumer"]
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

/// What a hub operator relies on: a device that sends broken sync frames
/// (a length over the limit, a message cut short, bytes that are no message)
/// only ends its own session. The hub closes the connection, says why in its
/// log and its status, stores nothing of it, and syncs normally with the
/// device afterwards (its own log and the hub's, never the contact data).
#[test]
fn broken_frames_from_an_enrolled_device_end_its_session_store_nothing_and_the_next_sync_works() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let (hub_dir, _hub, hub_address) = hub(tmp);
    let hub_peer: PeerAddr = hub_address.parse().unwrap();
    let realm = RealmId(hub_peer.id.0);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let token = saldo_node::net::EnrolmentToken::decode(&enroll(&hub_dir, "Cassa Rotta")).unwrap();
    let device = DeviceKey::generate();
    runtime.block_on(saldo_node::net::redeem(&token, &device, "127.0.0.1:0".parse().unwrap())).unwrap();
    let hello = || {
        Message::Hello(Hello { version: PROTOCOL_VERSION, realm, frontier: FrontierForm::Whole(Frontier::default()) })
    };
    let device_status = || -> Value {
        let peers = status(&hub_dir)["peers"].clone();
        peers.as_array().unwrap().iter().find(|p| p["id"] == device.author().to_hex()).cloned().unwrap_or(Value::Null)
    };

    // Sends `bytes` as they are (after a hello and the hub's answer if
    // `after_hello`), ends the stream if `finish`, and waits for the hub to
    // close the connection.
    let send_broken = |after_hello: bool, bytes: Vec<u8>, finish: bool| {
        runtime
            .block_on(async {
                let mut raw = connect_raw(&device, hub_peer).await?;
                if after_hello {
                    write_frame(&mut raw.send, &hello()).await?;
                    until_done(&mut raw.recv).await?;
                }
                raw.send.write_all(&bytes).await?;
                if finish {
                    raw.send.finish()?;
                }
                let closed = tokio::time::timeout(Duration::from_secs(20), raw.conn.closed()).await;
                raw.endpoint.close().await;
                anyhow::ensure!(closed.is_ok(), "the hub kept the session open for 20 s");
                anyhow::Ok(())
            })
            .unwrap();
    };
    let over_limit = (saldo_sync::reconcile::MESSAGE_BYTES_MAX as u32 + 1).to_be_bytes().to_vec();
    let mut cut_short = 1000u32.to_be_bytes().to_vec();
    cut_short.extend_from_slice(&[0u8; 10]);
    let mut garbage = 16u32.to_be_bytes().to_vec();
    garbage.extend_from_slice(&[0xff; 16]);
    for (after_hello, bytes, finish, reason) in [
        (false, over_limit.clone(), false, "over the limit of 4194304"),
        (true, over_limit, false, "over the limit of 4194304"),
        (false, cut_short.clone(), true, "the peer's message of 1000 bytes was cut short"),
        (true, cut_short, true, "the peer's message of 1000 bytes was cut short"),
        (false, garbage.clone(), false, "the peer's message is refused: a malformed sync message"),
        (true, garbage, false, "the peer's message is refused: a malformed sync message"),
    ] {
        let said = || std::fs::read_to_string(tmp.join("hub.log")).unwrap().matches(reason).count();
        let (before, said_before) = (hub_state(&hub_dir), said());
        send_broken(after_hello, bytes, finish);
        wait_until("the hub's log to say why it ended the session", || Some(()).filter(|()| said() > said_before));
        wait_until("the hub's status to say why", || {
            let error = device_status()["last_error"].as_str().map(str::to_string)?;
            Some(()).filter(|()| error.contains(reason))
        });
        assert_eq!(hub_state(&hub_dir), before, "a broken frame changed the hub ({reason})");
    }

    // Then a normal session: the hub's log comes, the contact data does not,
    // and the device's top-up is stored.
    let (pan, service) = wait_until("the directory", || some_consumer(&hub_dir));
    let consumer = json(&["search", "--data", hub_dir.to_str().unwrap(), &pan, "--json"])["consumers"][0]["consumer"]
        .as_str()
        .map(|c| ConsumerId::from_hex(c).unwrap())
        .unwrap();
    let wallet = WalletKey { consumer, service: ServiceId::parse(&service).unwrap() };
    let good = top_up(&realm, &device, 1, OpId::NONE, &wallet, "10.00");
    let received = runtime
        .block_on(async {
            let mut raw = connect_raw(&device, hub_peer).await?;
            write_frame(&mut raw.send, &hello()).await?;
            let mut received = Vec::new();
            loop {
                match read_frame(&mut raw.recv).await? {
                    Message::Ops(ops) => received.extend(ops),
                    Message::Done => break,
                    _ => {}
                }
            }
            write_frame(&mut raw.send, &Message::Ops(vec![good])).await?;
            write_frame(&mut raw.send, &Message::Done).await?;
            let _ = tokio::time::timeout(Duration::from_millis(500), read_frame(&mut raw.recv)).await;
            raw.conn.close(0u32.into(), b"bye");
            raw.endpoint.close().await;
            anyhow::Ok(received)
        })
        .unwrap();
    wait_until("the top-up to count", || Some(()).filter(|()| confirmed(&hub_dir, &pan).0 == "10.00"));
    let contacts = {
        let mut store = Store::open(&hub_dir.join("saldo.db")).unwrap();
        let authors = store.read().unwrap().authors().unwrap();
        authors.into_iter().find(|a| a.role == saldo_sync::Role::HubContacts).unwrap()
    };
    assert!(contacts.head_seq.0 > 10, "the hub holds contact data");
    let authors: std::collections::BTreeSet<AuthorId> =
        received.iter().map(|op| saldo_sync::op::peek(op).unwrap().0).collect();
    assert_eq!(authors, [realm.hub()].into_iter().collect(), "a device receives the hub's log only");
    assert!(!authors.contains(&contacts.author));
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
            Some(()).filter(|()| s["online"] == true && s["device_name"] != "")
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
    // The logins it prints work: each cash point's cashier there, the
    // administrator and the clerk at the hub.
    let printed = std::fs::read_to_string(tmp.path().join("demo.log")).unwrap();
    for (dir, login) in [(&edicola, "edicola"), (&farmacia, "farmacia"), (&hub, "admin"), (&hub, "ufficio")] {
        let password = format!("saldo-demo-{login}");
        assert!(printed.lines().any(|l| l.contains(login) && l.contains(&password)), "{login} in {printed}");
        wait_until("the demo login to work", || {
            let mut node = saldo_node::node::Node::open(dir).ok()?;
            node.authenticate(login, &password).ok()
        });
    }
    assert!(Command::new("kill").arg(demo.0.id().to_string()).status().unwrap().success());
    let exit = demo.0.wait().unwrap();
    assert!(exit.success(), "the demo exits cleanly on SIGTERM: {exit}");
    // Its nodes stopped with it.
    for node in [&hub, &edicola, &farmacia] {
        wait_until("a demo node to stop", || Some(()).filter(|()| !node.join("status.json").exists()));
    }
}

/// How a restored cash point's log reaches the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carrier {
    /// It syncs with the hub itself.
    Direct,
    /// It cannot reach the hub; a neighbour it syncs with can.
    Neighbour,
    /// A bundle file, made for the hub's frontier file.
    Bundle,
}

// ---- restored and replaced cash points ----------------------------------

/// `saldo topup` of 5.00 on `pan` at the cash point in `dir`, as it ran.
fn try_top_up(dir: &Path, pan: &str) -> std::process::Output {
    saldo(&["topup", "--data", dir.to_str().unwrap(), "--pan", pan, "--amount", "5.00", "--method", "cash", "--json"])
}

fn top_up_ok(dir: &Path, pan: &str) -> Value {
    let out = try_top_up(dir, pan);
    assert!(out.status.success(), "topup at {}: {}", dir.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Waits until everything the cash point in `dir` recorded has the hub's verdict (so the hub holds it).
fn wait_confirmed(dir: &Path) {
    wait_until("the hub's verdicts at the cash point", || {
        Some(()).filter(|()| status(dir)["unconfirmed_operations"].as_u64() == Some(0))
    });
}

/// A copy of a stopped node's data directory, as a disk image or a file copy makes it.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "status.json" {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// Consumers with one service, as a node's directory shows them: (PAN, service).
fn consumers(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for prefix in ["ro", "ma", "ri", "co", "ga", "fe", "ba", "be", "gi", "de", "sa", "pa", "mo", "ca", "lo"] {
        // Nothing while the node is being created.
        let searched = saldo(&["search", "--data", dir.to_str().unwrap(), prefix, "--json"]);
        let Ok(found) = serde_json::from_slice::<Value>(&searched.stdout) else { return Vec::new() };
        for c in found["consumers"].as_array().into_iter().flatten() {
            if c["wallets"].as_array().is_some_and(|w| w.len() == 1) {
                out.push((
                    c["pan"].as_str().unwrap().to_string(),
                    c["wallets"][0]["service"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Records a top-up of `amount` at the cash point `dir` (running or not): its
/// receipt. While a node that just started checks its log with the hub, the
/// counter is asked to try again in a moment, as an operator would.
fn record(dir: &Path, (pan, service): &(String, String), amount: &str) -> Value {
    let args = [
        "topup",
        "--data",
        dir.to_str().unwrap(),
        "--pan",
        pan,
        "--amount",
        amount,
        "--method",
        "cash",
        "--service",
        service,
        "--json",
    ];
    wait_until("a top-up recorded", || {
        let out = saldo(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() || stderr.contains("try again"), "saldo {args:?}: {stderr}");
        out.status.success().then(|| serde_json::from_slice(&out.stdout).unwrap())
    })
}

fn unconfirmed(dir: &Path) -> u64 {
    status(dir)["unconfirmed_operations"].as_u64().unwrap_or(u64::MAX)
}

/// A cash point is restored from a copy of itself taken after `before`
/// top-ups reached the hub; `lost_later` more had reached the hub since. It
/// records `on_branch` top-ups offline (a second branch of its log, its
/// receipt numbers used again), then `carrier` brings its log to the hub.
/// Every top-up of both branches is at the hub, the ones of the branch it
/// had second in review with their receipt numbers, each accepted exactly
/// once: nothing stranded, nothing counted twice.
fn restored_cash_point_strands_nothing(
    tmp: &Path,
    hub_dir: &Path,
    name: &str,
    consumer: &(String, String),
    (lost_later, on_branch): (usize, usize),
    carrier: Carrier,
    neighbour: Option<&str>,
) {
    let dir = tmp.join(name);
    let data = dir.to_str().unwrap();
    let log = |step: &str| tmp.join(format!("{name}-{step}.log"));
    let joined =
        spawn(&["cashpoint", "--data", data, "--p2p", "127.0.0.1:0", "--join", &enroll(hub_dir, name)], &log("join"));
    wait_until("the cash point's directory", || Some(()).filter(|()| !consumers(&dir).is_empty()));
    let hub_balance = |dir: &Path| confirmed(dir, &consumer.0).0;
    let cents = |text: &str| saldo_sync::Balance::parse(text).unwrap().minor();
    let start = cents(&hub_balance(hub_dir));
    let mut expected = start;
    for amount in ["10.00", "11.00"] {
        record(&dir, consumer, amount);
        expected += cents(amount);
    }
    wait_until("the first top-ups confirmed", || Some(()).filter(|()| unconfirmed(&dir) == 0));
    drop(joined);
    let copy = tmp.join(format!("{name}-copy"));
    copy_dir(&dir, &copy);

    // After the copy: more top-ups reach the hub (real cash, printed receipts).
    let online = spawn(&["cashpoint", "--data", data, "--p2p", "127.0.0.1:0"], &log("online"));
    for i in 0..lost_later {
        let amount = format!("{}.00", 20 + i);
        record(&dir, consumer, &amount);
        expected += cents(&amount);
    }
    wait_until("the later top-ups confirmed", || Some(()).filter(|()| unconfirmed(&dir) == 0));
    drop(online);
    assert_eq!(cents(&hub_balance(hub_dir)), expected, "{name}: the hub counts what reached it");

    // The disk is restored from the copy; offline, the counter goes on.
    std::fs::remove_dir_all(&dir).unwrap();
    copy_dir(&copy, &dir);
    let mut branch = Vec::new();
    for i in 0..on_branch {
        let amount = format!("{}.50", 30 + i);
        let receipt = record(&dir, consumer, &amount);
        branch.push((
            receipt["operation"].as_str().unwrap().to_string(),
            receipt["receipt_number"].as_u64().unwrap(),
            amount,
        ));
    }
    let hub_id = status(hub_dir)["device"].as_str().unwrap().to_string();

    let _running = match carrier {
        Carrier::Direct => Some(spawn(&["cashpoint", "--data", data, "--p2p", "127.0.0.1:0"], &log("restored"))),
        Carrier::Neighbour => {
            // The hub is out of reach (nothing listens there); the neighbour is not.
            let nowhere = format!("{hub_id}@127.0.0.1:9");
            Some(spawn(
                &["cashpoint", "--data", data, "--p2p", "127.0.0.1:0", "--hub", &nowhere, "--peer", neighbour.unwrap()],
                &log("restored"),
            ))
        }
        Carrier::Bundle => {
            let frontier = tmp.join(format!("{name}-hub.frontier"));
            let bundle = tmp.join(format!("{name}.bundle"));
            ok(&["bundle", "frontier", "--data", hub_dir.to_str().unwrap(), "--out", frontier.to_str().unwrap()]);
            ok(&[
                "bundle",
                "export",
                "--data",
                data,
                "--for",
                frontier.to_str().unwrap(),
                "--out",
                bundle.to_str().unwrap(),
            ]);
            ok(&["bundle", "import", "--data", hub_dir.to_str().unwrap(), bundle.to_str().unwrap()]);
            None
        }
    };

    // Every top-up of the second branch awaits review at the hub, saying why and which receipt.
    let flagged = wait_until("the second branch in review at the hub", || {
        let list = json(&["review", "list", "--data", hub_dir.to_str().unwrap(), "--json"]);
        let found: Vec<Value> = list["operations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| branch.iter().any(|(id, _, _)| f["operation"] == id.as_str()))
            .cloned()
            .collect();
        Some(found).filter(|f| f.len() == on_branch)
    });
    for (id, receipt, _) in &branch {
        let f = flagged.iter().find(|f| f["operation"] == id.as_str()).unwrap();
        assert_eq!(f["reason"], "frozen_author", "{name}: {f}");
        let detail = f["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("receipt {receipt},")) && detail.contains("second branch"),
            "{name}: {detail}"
        );
    }
    let verify = json(&["log", "verify", "--data", hub_dir.to_str().unwrap(), "--json"]);
    assert!(verify["equivocations"].as_u64().unwrap() >= on_branch as u64, "{name}: {verify}");
    assert_eq!(cents(&hub_balance(hub_dir)), expected, "{name}: nothing of the second branch counts before review");
    if carrier == Carrier::Direct {
        // The restored device learns of the fork too: it holds the hub's branch as evidence.
        wait_until("the device to hold the other branch", || {
            let v = json(&["log", "verify", "--data", data, "--json"]);
            Some(()).filter(|()| v["equivocations"].as_u64().unwrap() >= lost_later.min(on_branch) as u64)
        });
    }

    // The hub's operator accepts each once: it counts once, and a second accept is refused.
    for (id, _, amount) in &branch {
        let accept = [
            "review",
            "accept",
            "--data",
            hub_dir.to_str().unwrap(),
            id,
            "--operator",
            "Ufficio",
            "--note",
            "contanti incassati",
        ];
        ok(&accept);
        expected += cents(amount);
        assert!(!saldo(&accept).status.success(), "{name}: a second accept of {id}");
    }
    assert_eq!(cents(&hub_balance(hub_dir)), expected, "{name}: each accepted top-up counts once");
    ok(&["log", "verify", "--data", hub_dir.to_str().unwrap()]);
}

#[test]
fn a_cash_point_restored_from_an_older_copy_strands_no_money_whether_behind_level_or_ahead_of_the_hub() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let (hub_dir, _hub, _) = hub(tmp);
    let people = consumers(&hub_dir);
    for (i, (case, lengths)) in [("behind", (3, 1)), ("level", (2, 2)), ("ahead", (1, 3))].into_iter().enumerate() {
        restored_cash_point_strands_nothing(
            tmp,
            &hub_dir,
            &format!("direct-{case}"),
            &people[i],
            lengths,
            Carrier::Direct,
            None,
        );
    }
}

#[test]
fn a_restored_cash_point_s_second_branch_reaches_the_hub_through_a_neighbour_or_a_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let (hub_dir, _hub, _) = hub(tmp);
    let people = consumers(&hub_dir);
    let neighbour_dir = tmp.join("neighbour");
    let _neighbour = spawn(
        &[
            "cashpoint",
            "--data",
            neighbour_dir.to_str().unwrap(),
            "--p2p",
            "127.0.0.1:0",
            "--join",
            &enroll(&hub_dir, "Vicino"),
        ],
        &tmp.join("neighbour.log"),
    );
    wait_until("the neighbour's directory", || Some(()).filter(|()| !consumers(&neighbour_dir).is_empty()));
    let neighbour = address(&neighbour_dir);
    for (i, (case, lengths)) in [("behind", (3, 1)), ("level", (2, 2)), ("ahead", (1, 3))].into_iter().enumerate() {
        restored_cash_point_strands_nothing(
            tmp,
            &hub_dir,
            &format!("bundle-{case}"),
            &people[i],
            lengths,
            Carrier::Bundle,
            None,
        );
        restored_cash_point_strands_nothing(
            tmp,
            &hub_dir,
            &format!("neighbour-{case}"),
            &people[3 + i],
            lengths,
            Carrier::Neighbour,
            Some(&neighbour),
        );
    }
}

/// The cash point's own top-ups its data directory holds, in log order: their ids.
fn own_top_ups(dir: &Path) -> Vec<String> {
    let mut node = saldo_node::node::Node::open(dir).unwrap();
    let me = node.author().unwrap();
    let mut ops: Vec<saldo_sync::SignedOp> = node
        .all_operations()
        .unwrap()
        .iter()
        .map(|bytes| saldo_sync::SignedOp::decode(bytes).unwrap())
        .filter(|op| op.op.author == me && matches!(op.op.body, Body::TopUp(_)))
        .collect();
    ops.sort_by_key(|op| op.op.seq);
    ops.iter().map(|op| op.id.to_hex()).collect()
}

/// A shop restores its cash point from an older copy of its data directory
/// and types a top-up as soon as it runs: the cash point first fetches back
/// what it recorded after the copy, its receipt numbers continue, and the
/// hub sees no fork.
#[test]
fn a_cash_point_restored_from_an_older_copy_fetches_its_log_back_before_recording_and_never_forks() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let (hub_dir, _hub, hub_address) = hub(tmp);
    let (a_dir, old_dir) = (tmp.join("edicola"), tmp.join("edicola-copy"));
    let a = a_dir.to_str().unwrap();
    let token = enroll(&hub_dir, "Edicola A");
    let running = spawn(&["cashpoint", "--data", a, "--p2p", "127.0.0.1:0", "--join", &token], &tmp.join("a0.log"));
    let (pan, _) = wait_until("A's directory", || some_consumer(&a_dir));
    for expected in 1..=2 {
        assert_eq!(top_up_ok(&a_dir, &pan)["receipt_number"], expected);
    }
    wait_confirmed(&a_dir);
    drop(running);
    // (Killed, it left its status file, which would say it runs for 3 s more.)
    let _ = std::fs::remove_file(a_dir.join("status.json"));
    copy_dir(&a_dir, &old_dir);

    // Three more top-ups online after the copy: the hub holds them.
    let running = spawn(&["cashpoint", "--data", a, "--p2p", "127.0.0.1:0"], &tmp.join("a1.log"));
    wait_until("A to check its log with the hub", || {
        let s = status(&a_dir);
        Some(()).filter(|()| !s["addresses"][0].is_null() && s["recording_held"].is_null())
    });
    for expected in 3..=5 {
        assert_eq!(top_up_ok(&a_dir, &pan)["receipt_number"], expected);
    }
    wait_confirmed(&a_dir);
    drop(running);

    // The old copy is started in its place, with the hub slow to answer
    // (behind a relay, cut for now), and a top-up is typed at once.
    let relay = Relay::new(hub_address.parse::<PeerAddr>().unwrap().addr);
    relay.cut.store(true, Ordering::SeqCst);
    let through_relay = format!("{}@{}", hub_address.parse::<PeerAddr>().unwrap().id.to_hex(), relay.addr);
    let _restored = spawn(
        &["cashpoint", "--data", old_dir.to_str().unwrap(), "--p2p", "127.0.0.1:0", "--hub", &through_relay],
        &tmp.join("a2.log"),
    );
    wait_until("the restored cash point to run", || Some(()).filter(|()| !status(&old_dir)["addresses"][0].is_null()));
    let held = try_top_up(&old_dir, &pan);
    assert!(String::from_utf8_lossy(&held.stderr).contains("is checking its log with the hub"), "{held:?}");
    let own_log = status(&old_dir)["recording_held"].as_str().unwrap_or_default().to_string();
    assert!(own_log.starts_with("checking this device's log with the hub"), "{own_log}");
    relay.cut.store(false, Ordering::SeqCst);
    let mut refusals = 0;
    let receipt = wait_until("a top-up at the restored cash point", || {
        let out = try_top_up(&old_dir, &pan);
        if out.status.success() {
            return Some(serde_json::from_slice::<Value>(&out.stdout).unwrap());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("it is fetching them back") || stderr.contains("is checking its log with the hub"),
            "{stderr}"
        );
        refusals += 1;
        None
    });
    assert_eq!(receipt["receipt_number"], 6, "the receipt numbers continue after the fetched ones");
    assert_eq!(own_top_ups(&old_dir).len(), 6, "the restored copy holds its whole log");
    wait_confirmed(&old_dir);
    assert_eq!(status(&old_dir)["recording_held"], Value::Null);

    // The hub saw no fork: nothing frozen, nothing in review.
    let verify = json(&["log", "verify", "--data", hub_dir.to_str().unwrap(), "--json"]);
    assert_eq!(verify["equivocations"], 0, "{verify}");
    let review = json(&["review", "list", "--data", hub_dir.to_str().unwrap(), "--json"]);
    assert_eq!(review["operations"].as_array().map(Vec::len), Some(0), "{review}");
    println!("refused {refusals} times before the log was back");
}

/// A shop backs its cash point up while it runs and records: the backup
/// restores to a node whose log verifies and holds what was acknowledged
/// before the backup began (and nothing that was never acknowledged).
#[test]
fn a_backup_taken_while_the_cash_point_runs_and_records_restores_what_was_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let (hub_dir, _hub, _) = hub(tmp);
    let a_dir = tmp.join("edicola");
    let a = a_dir.to_str().unwrap();
    let token = enroll(&hub_dir, "Edicola A");
    let _running = spawn(&["cashpoint", "--data", a, "--p2p", "127.0.0.1:0", "--join", &token], &tmp.join("a.log"));
    let (pan, _) = wait_until("A's directory", || some_consumer(&a_dir));
    std::fs::write(a_dir.join("saldo.toml"), "lan = false\n").unwrap();

    let acknowledged: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    for _ in 0..3 {
        acknowledged.lock().unwrap().push(top_up_ok(&a_dir, &pan)["operation"].as_str().unwrap().into());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let recorder = {
        let (acknowledged, stop, a_dir, pan) = (acknowledged.clone(), stop.clone(), a_dir.clone(), pan.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let code = top_up_ok(&a_dir, &pan)["operation"].as_str().unwrap().to_string();
                acknowledged.lock().unwrap().push(code);
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let before = acknowledged.lock().unwrap().len();
    let file = tmp.join("edicola.backup");
    let out = ok(&["backup", "--data", a, "--out", file.to_str().unwrap()]);
    assert!(out.contains("secret key"), "{out}");
    stop.store(true, Ordering::SeqCst);
    recorder.join().unwrap();
    let acknowledged = acknowledged.lock().unwrap().clone();

    // A backup never replaces a file, and a restore never fills a directory in use.
    let again = saldo(&["backup", "--data", a, "--out", file.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"), "{again:?}");
    let into_used = saldo(&["restore", "--from", file.to_str().unwrap(), "--data", a]);
    assert!(String::from_utf8_lossy(&into_used.stderr).contains("is not empty"), "{into_used:?}");

    let restored = tmp.join("restored");
    let out = ok(&["restore", "--from", file.to_str().unwrap(), "--data", restored.to_str().unwrap()]);
    assert!(out.contains("saldo cashpoint --data"), "{out}");
    ok(&["log", "verify", "--data", restored.to_str().unwrap()]);
    assert_eq!(std::fs::read(restored.join("device.key")).unwrap(), std::fs::read(a_dir.join("device.key")).unwrap());
    assert_eq!(std::fs::read_to_string(restored.join("saldo.toml")).unwrap(), "lan = false\n");
    let held = own_top_ups(&restored);
    assert!(held.len() >= before, "{} top-ups were acknowledged before the backup, it holds {}", before, held.len());
    assert_eq!(held[..], acknowledged[..held.len()], "the backup holds a prefix of what was acknowledged");

    // Restored, it records nothing before its node has run and asked the hub.
    let refused = try_top_up(&restored, &pan);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("was restored from a backup"), "{refused:?}");
}

/// A cash point enrolled in place of another (one whose log forked) goes on
/// with the receipt numbers after the highest the hub holds of the old one,
/// forks included: a shop's receipt numbers stay unique across its keys.
#[test]
fn a_cash_point_enrolled_in_place_of_another_continues_its_receipt_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let (hub_dir, _hub, hub_address) = hub(tmp);
    let realm = RealmId(hub_address.parse::<PeerAddr>().unwrap().id.0);
    let (a_dir, b_dir) = (tmp.join("edicola"), tmp.join("edicola-nuova"));
    let token = enroll(&hub_dir, "Edicola A");
    let running = spawn(
        &["cashpoint", "--data", a_dir.to_str().unwrap(), "--p2p", "127.0.0.1:0", "--join", &token],
        &tmp.join("a.log"),
    );
    let (pan, service) = wait_until("A's directory", || some_consumer(&a_dir));
    for _ in 0..3 {
        top_up_ok(&a_dir, &pan);
    }
    wait_confirmed(&a_dir);
    drop(running);

    // The hub also holds a fork of A: another operation #3, receipt no. 9.
    let a_key = DeviceKey::from_secret_bytes(&std::fs::read(a_dir.join("device.key")).unwrap().try_into().unwrap());
    let consumer = ConsumerId::from_hex(
        json(&["search", "--data", hub_dir.to_str().unwrap(), &pan, "--json"])["consumers"][0]["consumer"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let wallet = WalletKey { consumer, service: ServiceId::parse(&service).unwrap() };
    let fork = Operation {
        author: a_key.author(),
        seq: Seq(3),
        prev: OpId::NONE,
        hlc: Hlc::from_parts(1_790_000_000_000, 0),
        hub_seen: Seq(1),
        body: Body::TopUp(TopUp {
            receipt: ReceiptNo(9),
            lines: vec![TopUpLine { wallet, amount: Amount::parse("1.00").unwrap() }],
            method: PaymentMethod::Cash,
            operator: None,
        }),
    }
    .sign(&realm, &a_key)
    .to_bytes();
    let results = saldo_node::node::Node::open(&hub_dir).unwrap().ingest(&[fork]).unwrap();
    assert!(matches!(results[0], Ok(saldo_node::state::Applied::Equivocation { .. })), "{results:?}");

    let hub_data = hub_dir.to_str().unwrap();
    let unknown = saldo(&["enroll", "--data", hub_data, "--name", "X", "--replaces", &"ab".repeat(32)]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no device"), "{unknown:?}");
    let a_id = a_key.author().to_hex();
    let token =
        json(&["enroll", "--data", hub_data, "--name", "Edicola A (nuova)", "--replaces", &a_id, "--json"])["token"]
            .as_str()
            .unwrap()
            .to_string();
    let joined = spawn(
        &["cashpoint", "--data", b_dir.to_str().unwrap(), "--p2p", "127.0.0.1:0", "--join", &token],
        &tmp.join("b.log"),
    );
    wait_until("B's directory", || some_consumer(&b_dir));
    let receipt = top_up_ok(&b_dir, &pan);
    assert_eq!(receipt["receipt_number"], 10, "after the highest receipt the hub held of A, its fork included");
    wait_confirmed(&b_dir);
    drop(joined);

    // The old device is revoked; the new one's top-up is not taken for a duplicate receipt.
    let b_id = status(&b_dir)["device"].as_str().unwrap().to_string();
    let review = json(&["review", "list", "--data", hub_data, "--json"]);
    assert!(review["operations"].as_array().unwrap().iter().all(|f| f["author"] != b_id.as_str()), "{review}");
    let a_row = saldo_node::store::Store::open(&hub_dir.join("saldo.db"))
        .unwrap()
        .read()
        .unwrap()
        .author(&a_key.author())
        .unwrap()
        .unwrap();
    assert!(a_row.revoked_after.is_some(), "the replaced device is revoked");
}

/// A token used a second time is refused, and the cash point says why in
/// plain words, once ("the hub refused: …", not "refused: refused:"), and
/// leaves nothing behind.
#[test]
fn a_used_enrolment_token_is_refused_saying_so_once() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let (hub_dir, _hub, _) = hub(tmp);
    let token = enroll(&hub_dir, "Edicola");
    let (a_dir, b_dir) = (tmp.join("edicola"), tmp.join("copia"));
    let joined = spawn(
        &["cashpoint", "--data", a_dir.to_str().unwrap(), "--p2p", "127.0.0.1:0", "--join", &token],
        &tmp.join("a.log"),
    );
    wait_until("A's directory", || some_consumer(&a_dir));
    drop(joined);
    let out = saldo(&["cashpoint", "--data", b_dir.to_str().unwrap(), "--p2p", "127.0.0.1:0", "--join", &token]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("could not join the realm; nothing was created: the hub refused: this enrolment token is unknown or was used already"),
        "{stderr}"
    );
    assert!(!stderr.contains("refused: refused"), "{stderr}");
    assert!(!b_dir.exists(), "a refused join left {}", b_dir.display());
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
    wait_until("A online with its own hub", || status(&a_dir)["online"].as_bool().filter(|online| *online));

    let refusals = || std::fs::read_to_string(&other_log).unwrap().matches("refused a sync from").count();
    let seen = refusals();
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!((seen, refusals()), (1, 1), "A dialed the other realm's node again after its refusal");
}

/// Runs `saldo`, which must succeed, with `stdin` piped to it.
fn ok_with_stdin(args: &[&str], stdin: &str) -> String {
    use std::io::Write as _;
    let mut child = Command::new(SALDO)
        .args(args)
        .env_remove("SALDO_DATA")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "saldo {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn log_in(dir: &Path, login: &str, password: &str) -> Result<saldo_node::store::operators::OperatorRow, String> {
    let mut node = saldo_node::node::Node::open(dir).map_err(|e| e.to_string())?;
    node.authenticate(login, password).map_err(|e| e.to_string())
}

/// What a shop relies on: its cashier's account, made at the hub, reaches
/// the cash point over a real sync and logs the cashier in there while
/// the hub is stopped; disabled at the hub, it stops working at the cash
/// point once the two have synced again. The hub's administrators' and
/// clerks' accounts never reach the cash point.
#[test]
fn a_cashier_account_made_at_the_hub_works_at_the_cash_point_offline_and_stops_once_disabled_and_synced() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let (hub_dir, hub_node, hub_address) = hub(tmp);
    let hub_data = hub_dir.to_str().unwrap();
    let cp_dir = tmp.join("edicola");
    let token = enroll(&hub_dir, "Edicola");
    let _cash_point = spawn(
        &["cashpoint", "--data", cp_dir.to_str().unwrap(), "--p2p", "127.0.0.1:0", "--join", &token],
        &tmp.join("edicola.log"),
    );
    wait_until("the cash point's enrolment", || {
        // (No node there yet while it joins.)
        let s: Value = serde_json::from_slice(&saldo(&["status", "--data", cp_dir.to_str()?, "--json"]).stdout).ok()?;
        Some(()).filter(|()| s["device_name"] != "")
    });

    let add = |login: &str, role: &str, cash_point: Option<&str>| {
        let mut args = vec!["operator", "add", "--data", hub_data, "--login", login, "--name", login, "--role", role];
        args.extend(cash_point.map(|c| ["--cash-point", c]).into_iter().flatten());
        args.push("--password-stdin");
        ok_with_stdin(&args, &format!("{login} password\n"));
    };
    add("anna", "clerk", None);
    add("mario", "cashier", Some("Edicola"));
    let held = || -> Vec<String> {
        let list = json(&["operator", "list", "--data", cp_dir.to_str().unwrap(), "--json"]);
        list.as_array().unwrap().iter().map(|o| o["login"].as_str().unwrap().to_string()).collect()
    };
    wait_until("the cashier's account at the cash point", || Some(()).filter(|()| held() == ["mario"]));

    // Nothing of the hub's administrators and clerks is stored there, not even in the log.
    let mut node = saldo_node::node::Node::open(&cp_dir).unwrap();
    for bytes in node.all_operations().unwrap() {
        if let Body::Operator(account) = saldo_sync::SignedOp::decode(&bytes).unwrap().op.body {
            assert_eq!(account.role, saldo_sync::OperatorRole::Cashier, "{account:?} reached the cash point");
        }
    }
    drop(node);
    assert!(log_in(&cp_dir, "anna", "anna password").is_err());
    assert!(log_in(&cp_dir, "admin", "whatever it was").is_err());

    // The hub stops: the cashier logs in at the cash point all the same.
    drop(hub_node);
    let row = log_in(&cp_dir, "mario", "mario password").unwrap();
    assert_eq!(row.account.cash_point.map(|c| c.to_hex()), status(&cp_dir)["device"].as_str().map(str::to_string));
    assert_eq!(log_in(&cp_dir, "mario", "not mario's password").unwrap_err(), "wrong login or password");
    assert_eq!(log_in(&cp_dir, "maria", "mario password").unwrap_err(), "wrong login or password");

    // Disabled at the hub (stopped, from the command line), then the hub
    // runs again where it ran: once they have synced, the login fails.
    ok(&["operator", "disable", "--data", hub_data, "--login", "mario"]);
    assert!(log_in(&cp_dir, "mario", "mario password").is_ok(), "the cash point cannot know yet");
    let port = hub_address.rsplit(':').next().unwrap();
    let _hub_again =
        spawn(&["hub", "--data", hub_data, "--p2p", &format!("127.0.0.1:{port}")], &tmp.join("hub-again.log"));
    let refusal =
        wait_until("the disabled account to reach the cash point", || log_in(&cp_dir, "mario", "mario password").err());
    assert!(refusal.contains("disabled"), "{refusal}");
}

/// A browser of one node's HTTP API: its session cookie and CSRF token.
struct Browser {
    agent: ureq::Agent,
    base: String,
    cookie: String,
    csrf: String,
}

fn http_of(dir: &Path, node: &Running) -> String {
    wait_until("the node's HTTP API", || {
        let written: Value = serde_json::from_slice(&std::fs::read(dir.join("status.json")).ok()?).ok()?;
        (written["pid"].as_u64() == Some(u64::from(node.0.id()))).then_some(())?;
        Some(written["http"].as_str()?.to_string())
    })
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

impl Browser {
    fn log_in(base: &str, login: &str, password: &str) -> Result<Browser, (u16, Value)> {
        let agent = agent();
        let mut answer = agent
            .post(format!("{base}/api/v1/session"))
            .send_json(serde_json::json!({"login": login, "password": password}))
            .unwrap();
        let status = answer.status().as_u16();
        let cookie = answer.headers().get("set-cookie").and_then(|c| c.to_str().ok()).map(str::to_string);
        let body: Value = answer.body_mut().read_json().unwrap();
        match cookie {
            Some(cookie) if status == 200 => Ok(Browser {
                agent,
                base: base.to_string(),
                cookie: cookie.split(';').next().unwrap().to_string(),
                csrf: body["csrf_token"].as_str().unwrap().to_string(),
            }),
            _ => Err((status, body)),
        }
    }

    fn get(&self, path: &str) -> Value {
        let mut answer =
            self.agent.get(format!("{}/api/v1{path}", self.base)).header("cookie", &self.cookie).call().unwrap();
        assert_eq!(answer.status().as_u16(), 200, "GET {path}");
        answer.body_mut().read_json().unwrap()
    }

    fn post(&self, path: &str, body: &Value, key: &str) -> (u16, Value) {
        let mut answer = self
            .agent
            .post(format!("{}/api/v1{path}", self.base))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf)
            .header("idempotency-key", key)
            .send_json(body)
            .unwrap();
        (answer.status().as_u16(), answer.body_mut().read_json().unwrap())
    }

    /// The node's event stream, read on a thread: each event's data.
    fn events(&self) -> std::sync::mpsc::Receiver<Value> {
        use std::io::BufRead as _;
        let answer =
            self.agent.get(format!("{}/api/v1/events", self.base)).header("cookie", &self.cookie).call().unwrap();
        assert_eq!(answer.status().as_u16(), 200);
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let reader = std::io::BufReader::new(answer.into_body().into_reader());
            for line in reader.lines() {
                let Ok(line) = line else { return };
                if let Some(data) = line.strip_prefix("data:")
                    && let Ok(event) = serde_json::from_str::<Value>(data.trim())
                    && send.send(event).is_err()
                {
                    return;
                }
            }
        });
        receive
    }
}

/// What a cash point is for, through its HTTP API: a cashier logs in while
/// the hub is stopped and records one receipt for two siblings, marked
/// provisional; the hub starts again and the open event stream reports both
/// balances confirmed; the hub's public verification says genuine and
/// accepted; a cashier disabled at the hub can no longer log in at the cash
/// point once it has synced.
#[test]
fn a_cashier_records_offline_over_http_and_sees_both_balances_confirmed_once_the_hub_is_back() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let (hub_dir, hub_node, hub_address) = hub(tmp);
    let hub_data = hub_dir.to_str().unwrap();
    let cp_dir = tmp.join("edicola");
    let token = enroll(&hub_dir, "Edicola");
    let cash_point = spawn(
        &["cashpoint", "--data", cp_dir.to_str().unwrap(), "--p2p", "127.0.0.1:0", "--join", &token],
        &tmp.join("edicola.log"),
    );
    wait_until("the cash point's enrolment", || {
        let s: Value = serde_json::from_slice(&saldo(&["status", "--data", cp_dir.to_str()?, "--json"]).stdout).ok()?;
        Some(()).filter(|()| s["device_name"] != "")
    });
    ok_with_stdin(
        &[
            "operator",
            "add",
            "--data",
            hub_data,
            "--login",
            "mario",
            "--name",
            "Mario Verdi",
            "--role",
            "cashier",
            "--cash-point",
            "Edicola",
            "--password-stdin",
        ],
        "mario's password\n",
    );
    let cp_http = http_of(&cp_dir, &cash_point);
    // Waited for without logging in: every login counts against the account's limit.
    wait_until("the cashier's account at the cash point", || {
        let list = json(&["operator", "list", "--data", cp_dir.to_str().unwrap(), "--json"]);
        list.as_array().unwrap().iter().any(|o| o["login"] == "mario").then_some(())
    });

    // The hub stops; the cashier logs in and tops up two siblings on one receipt.
    drop(hub_node);
    let cashier = Browser::log_in(&cp_http, "mario", "mario's password").unwrap();
    let mut siblings = None;
    'search: for prefix in ["ro", "ma", "ri", "co", "ga", "fe", "ba", "be", "gi", "de", "sa", "pa", "mo", "ca", "lo"] {
        for found in cashier.get(&format!("/consumers?q={prefix}&limit=50"))["consumers"].as_array().unwrap() {
            let detail = cashier.get(&format!("/consumers/{}", found["consumer"].as_str().unwrap()));
            if let Some(sibling) = detail["siblings"].as_array().unwrap().first() {
                let sibling = cashier.get(&format!("/consumers/{}", sibling["consumer"].as_str().unwrap()));
                if !detail["wallets"].as_array().unwrap().is_empty()
                    && !sibling["wallets"].as_array().unwrap().is_empty()
                {
                    siblings = Some((detail, sibling));
                    break 'search;
                }
            }
        }
    }
    let (first, second) = siblings.expect("a family with two children");
    let line = |c: &Value, amount: &str| serde_json::json!({"consumer": c["summary"]["consumer"], "service": c["wallets"][0]["service"], "amount": amount});
    let events = cashier.events();
    let (status, receipt) = cashier.post(
        "/topups",
        &serde_json::json!({"lines": [line(&first, "20.00"), line(&second, "15.00")], "method": "cash"}),
        "offline-receipt-1",
    );
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["provisional"], true, "the hub has not seen it: {receipt}");
    assert_eq!(receipt["lines"].as_array().unwrap().len(), 2);
    assert_eq!(receipt["operator"], "Mario Verdi");

    // The hub runs again where it ran: both balances turn confirmed on the open stream.
    let port = hub_address.rsplit(':').next().unwrap();
    let restarted_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let hub_node =
        spawn(&["hub", "--data", hub_data, "--p2p", &format!("127.0.0.1:{port}")], &tmp.join("hub-again.log"));
    let wallets: Vec<(Value, Value)> = [&first, &second]
        .iter()
        .map(|c| (c["summary"]["consumer"].clone(), c["wallets"][0]["service"].clone()))
        .collect();
    let hub_ready = {
        let hub_http = http_of(&hub_dir, &hub_node);
        (Instant::now(), hub_http)
    };
    let mut confirmed = std::collections::HashSet::new();
    let (mut online_at, mut confirmed_at) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(60);
    while online_at.is_none() || confirmed_at.is_none() {
        let event = events.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("events");
        match event["type"].as_str() {
            // The cash point has heard from the hub that runs again.
            Some("status")
                if event["peers"].as_array().unwrap().iter().any(|p| {
                    p["hub"] == true && p["online"] == true && p["last_contact_ms"].as_u64() >= Some(restarted_ms)
                }) =>
            {
                online_at.get_or_insert_with(Instant::now);
            }
            Some("balance") => {
                let key = (event["consumer"].clone(), event["service"].clone());
                if wallets.contains(&key) && event["confirmed"] == event["provisional"] {
                    confirmed.insert(key.0.to_string());
                    if confirmed.len() == 2 {
                        confirmed_at.get_or_insert_with(Instant::now);
                    }
                }
            }
            _ => {}
        }
    }
    let (online_at, confirmed_at) = (online_at.unwrap(), confirmed_at.unwrap());
    let took = confirmed_at.saturating_duration_since(online_at);
    eprintln!(
        "both balances confirmed {} ms after the cash point was back in contact with the hub ({} ms after the restarted hub listened)",
        took.as_millis(),
        confirmed_at.saturating_duration_since(hub_ready.0).as_millis()
    );
    assert!(took <= Duration::from_secs(2), "took {took:?}");
    let after = cashier.get(&format!("/receipts/{}", receipt["operation"].as_str().unwrap()));
    assert_eq!(after["provisional"], false, "{after}");

    // The hub's public verification: genuine and accepted, nothing personal.
    let hub_http = hub_ready.1;
    let code = receipt["verification_code"].as_str().unwrap();
    let mut answer = agent().get(format!("{hub_http}/api/v1/verify/{code}")).call().unwrap();
    let verification: Value = answer.body_mut().read_json().unwrap();
    assert_eq!(verification["genuine"], true, "{verification}");
    assert_eq!(verification["state"], "accepted", "{verification}");
    assert_eq!(verification["cash_point"], "Edicola");
    assert!(!verification.to_string().contains(first["summary"]["surname"].as_str().unwrap()));

    // Disabled at the hub: refused at the cash point once it has synced.
    ok(&["operator", "disable", "--data", hub_data, "--login", "mario"]);
    wait_until("the disabled account to reach the cash point", || {
        let list = json(&["operator", "list", "--data", cp_dir.to_str().unwrap(), "--json"]);
        let mario = list.as_array()?.iter().find(|o| o["login"] == "mario")?.clone();
        (mario["disabled"] == true).then_some(())
    });
    let (status, refusal) = Browser::log_in(&cp_http, "mario", "mario's password").err().expect("refused");
    assert_eq!(status, 401, "{refusal}");
    assert!(refusal["message"].as_str().unwrap().contains("disabled"), "{refusal}");
    // Its open session ends too.
    let mut answer =
        cashier.agent.get(format!("{cp_http}/api/v1/session")).header("cookie", &cashier.cookie).call().unwrap();
    assert_eq!(answer.status().as_u16(), 401, "{}", answer.body_mut().read_to_string().unwrap());
}

/// HTTPS with a configured certificate: the API answers over TLS (a client
/// that trusts the certificate logs in, its cookie marked Secure); plain
/// HTTP beyond loopback is refused as the node starts, saying what to do.
#[test]
fn the_api_is_served_over_https_with_a_configured_certificate_and_plain_http_stays_on_loopback() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let dir = tmp.join("hub");
    let data = dir.to_str().unwrap();
    let realm = json(&["realm", "init", "--data", data, "--name", "Comune di Prova", "--json"]);
    let password = realm["administrator"]["one_time_password"].as_str().unwrap().to_string();
    let refused = saldo(&["hub", "--data", data, "--p2p", "127.0.0.1:0", "--http", "0.0.0.0:0"]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("--tls-cert") && message.contains("127.0.0.1"), "{message}");

    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (tmp.join("cert.pem"), tmp.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let hub = spawn(
        &[
            "hub",
            "--data",
            data,
            "--p2p",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &tmp.join("hub.log"),
    );
    let url = http_of(&dir, &hub);
    assert!(url.starts_with("https://"), "{url}");
    let port = url.rsplit(':').next().unwrap();
    let roots = vec![ureq::tls::Certificate::from_der(certified.cert.der()).to_owned()];
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots))).build())
        .build()
        .into();
    let base = format!("https://localhost:{port}");
    let mut health = agent.get(format!("{base}/healthz")).call().unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(health.body_mut().read_to_string().unwrap(), "ok\n");
    let answer = agent
        .post(format!("{base}/api/v1/session"))
        .send_json(serde_json::json!({"login": "admin", "password": password}))
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let cookie = answer.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(cookie.contains("Secure") && cookie.contains("HttpOnly"), "{cookie}");
    // Plain HTTP to the TLS port gets no answer from the API.
    assert!(agent.get(format!("http://127.0.0.1:{port}/healthz")).call().is_err());
}
