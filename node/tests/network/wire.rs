//! What a device sends over the wire, as the test writes it: forged,
//! replayed and equivocating operations, and broken frames.

use std::path::Path;
use std::time::Duration;

use saldo_node::net::{PeerAddr, connect_raw, read_frame, write_frame};
use saldo_node::store::Store;
use saldo_sync::reconcile::{FrontierForm, Hello, Message, PROTOCOL_VERSION};
use saldo_sync::{
    Amount, AuthorId, Body, ConsumerId, DeviceKey, Frontier, Hlc, OpId, Operation, PaymentMethod, RealmId, ReceiptNo,
    Seq, ServiceId, TopUp, TopUpLine, WalletKey,
};
use serde_json::Value;

use super::common::ok;

use super::{confirmed, enroll, hub, json, some_consumer, status, wait_until};

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
        .filter(|line| !line.starts_with("outbox:") && !line.starts_with("receipts_due_groups:"))
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
