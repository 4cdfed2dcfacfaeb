//! `sync-protocol`, `sync-latency` and `sync-catch-up`: the sync protocol's
//! bytes and round trips, and two nodes over iroh on 127.0.0.1.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use saldo_node::node::Node;
use saldo_sync::{
    Amount, Balance, Body, ConsumerId, DeviceKey, Hlc, OfflineLimits, OpId, Operation, PaymentMethod, ReceiptNo, Role,
    Seq, TopUp, TopUpLine, WalletKey,
};

use super::{
    ArrivalTime, Options, enrolled_cash_points, expand_all_receipts, hub_with_wallets, label, ms, peak_rss_kib,
    percentile, signed_arrival,
};

/// The sync protocol's cost when two nodes share 1,000 authors' logs of
/// 1,000 operations each and one lacks the last operation of 100 authors:
/// frontiers from the full logs, and the 100 missing operations real and
/// signed. Messages as encoded for the wire; the transport adds its framing.
pub(super) fn sync_protocol() -> Result<()> {
    use saldo_sync::reconcile::{ChainOp, Incoming, Message, OpSource, Session, SharePolicy};
    use saldo_sync::{Frontier, FrontierEntry};
    const AUTHORS: u32 = 1_000;
    const PER_AUTHOR: u64 = 1_000;
    const MISSING: u32 = 100;
    let hub = DeviceKey::from_secret_bytes(&[1; 32]);
    let realm = saldo_sync::RealmId(hub.author().0);
    let keys: Vec<DeviceKey> = (0..AUTHORS)
        .map(|i| DeviceKey::from_secret_bytes(&blake3::derive_key("bench author", &i.to_le_bytes())))
        .collect();
    // The operations only A holds: each author's last.
    let mut extra: std::collections::BTreeMap<saldo_sync::AuthorId, ChainOp> = Default::default();
    let mut full = Frontier::default();
    let mut behind = Frontier::default();
    for (i, key) in keys.iter().enumerate() {
        let prev = OpId(blake3::derive_key("bench prev", &(i as u32).to_le_bytes()));
        let last = Operation {
            author: key.author(),
            seq: Seq(PER_AUTHOR),
            prev,
            hlc: Hlc::from_parts(1_790_000_000_000, 0),
            hub_seen: Seq(0),
            body: Body::TopUp(TopUp {
                receipt: ReceiptNo(PER_AUTHOR),
                lines: vec![TopUpLine {
                    wallet: WalletKey {
                        consumer: ConsumerId([i as u8; 16]),
                        service: saldo_sync::ServiceId::parse("mensa")?,
                    },
                    amount: Amount::parse("12.50")?,
                }],
                method: PaymentMethod::Cash,
                operator: None,
            }),
        }
        .sign(&realm, key);
        full.0.insert(key.author(), FrontierEntry { seq: Seq(PER_AUTHOR), head: last.id });
        if (i as u32) < MISSING {
            behind.0.insert(key.author(), FrontierEntry { seq: Seq(PER_AUTHOR - 1), head: prev });
            extra.insert(key.author(), ChainOp { seq: last.op.seq, id: last.id, bytes: last.to_bytes() });
        } else {
            behind.0.insert(key.author(), FrontierEntry { seq: Seq(PER_AUTHOR), head: last.id });
        }
    }
    struct Held<'a>(&'a std::collections::BTreeMap<saldo_sync::AuthorId, ChainOp>);
    impl OpSource for Held<'_> {
        type Error = std::convert::Infallible;
        fn chain(
            &mut self,
            author: &saldo_sync::AuthorId,
            from: Seq,
            upto: Seq,
            _: usize,
            _: usize,
        ) -> Result<Vec<ChainOp>, Self::Error> {
            Ok(self.0.get(author).filter(|op| op.seq >= from && op.seq <= upto).cloned().into_iter().collect())
        }
        fn all_from(
            &mut self,
            author: &saldo_sync::AuthorId,
            from: Seq,
            max_ops: usize,
        ) -> Result<Vec<ChainOp>, Self::Error> {
            self.chain(author, from, Seq(u64::MAX), max_ops, usize::MAX)
        }
        fn holds(&mut self, id: &saldo_sync::OpId) -> Result<bool, Self::Error> {
            Ok(self.0.values().any(|op| op.id == *id))
        }
    }
    let missing_bytes: usize = extra.values().map(|op| op.bytes.len()).sum();
    // One session: `holder` has the missing operations; `initiator_holds`
    // says which side begins; `since` is the frontier the initiator sent
    // last time, which the responder remembers.
    let run = |initiator_holds: bool, since: Option<&Frontier>| -> Result<(usize, usize)> {
        let (first, second) = if initiator_holds { (&full, &behind) } else { (&behind, &full) };
        let mut a = Session::new(realm, SharePolicy::Everything, first.clone());
        let mut b = Session::new(realm, SharePolicy::Everything, second.clone());
        let hello = match since {
            Some(base) => {
                b.remember(base.clone());
                a.hello_since(base)
            }
            None => a.hello(),
        };
        let (mut to_b, mut to_a): (Vec<Message>, Vec<Message>) = (vec![hello], Vec::new());
        let (mut flights, mut bytes, mut received) = (0usize, 0usize, 0usize);
        // The one-way flight in which the last operation arrived.
        let mut complete_at = 0usize;
        let (mut source_a, mut source_b) = (Held(&extra), Held(&extra));
        while !(to_a.is_empty() && to_b.is_empty()) {
            flights += 1;
            for message in std::mem::take(&mut to_b) {
                let wire = message.encode();
                bytes += wire.len();
                if let Incoming::Ops(ops) = b.receive(Message::decode(&wire)?)? {
                    received += ops.len();
                    complete_at = flights;
                }
            }
            for message in std::mem::take(&mut to_a) {
                let wire = message.encode();
                bytes += wire.len();
                if let Incoming::Ops(ops) = a.receive(Message::decode(&wire)?)? {
                    received += ops.len();
                    complete_at = flights;
                }
            }
            while let Some(m) = a.next_message(&mut source_a)? {
                to_b.push(m);
            }
            while let Some(m) = b.next_message(&mut source_b)? {
                to_a.push(m);
            }
        }
        anyhow::ensure!(received == MISSING as usize, "received {received} operations");
        Ok((complete_at, bytes))
    };
    let target = 80 * AUTHORS as usize + 2 * missing_bytes;
    let again_target = missing_bytes * 5 / 4 + 2048;
    println!(
        "sync protocol, {AUTHORS} authors x {PER_AUTHOR} operations, {MISSING} missing ({missing_bytes} bytes of operations):"
    );
    for initiator_holds in [true, false] {
        let who = if initiator_holds { "the initiator" } else { "the responder" };
        let (flights, bytes) = run(initiator_holds, None)?;
        println!(
            "  first sync, {who} holds them: all there after {flights} one-way flights ({} round trips; target <= 2), \
             {bytes} bytes (target <= {target}: 80/author + 2 x missing)",
            flights.div_ceil(2)
        );
    }
    // Synced before: the initiator's frontier then was the one before the
    // 100 operations (if it holds them) or its frontier now (if it lacks them).
    for initiator_holds in [true, false] {
        let who = if initiator_holds { "the initiator" } else { "the responder" };
        let (flights, bytes) = run(initiator_holds, Some(&behind))?;
        println!(
            "  synced before, {who} holds them: all there after {flights} one-way flights ({} round trips), \
             {bytes} bytes (target <= {again_target}: 1.25 x missing + 2 KB)",
            flights.div_ceil(2)
        );
    }
    Ok(())
}

/// A hub and a cash point on 127.0.0.1 over iroh: each top-up at the cash
/// point, until the hub holds its decision, and until the cash point does.
pub(super) fn sync_latency(options: &Options) -> Result<()> {
    use saldo_node::net::{NetConfig, NodeHandle, PeerAddr, RunStatus, run_service};
    use saldo_node::service::Service;
    let samples = if options.queries == 2_000 { 200 } else { options.queries };
    let dir = options.work.join("latency");
    let _ = std::fs::remove_dir_all(&dir);
    let (hub_dir, cp_dir) = (dir.join("hub"), dir.join("cash-point"));
    let (mut hub, wallets) = hub_with_wallets(&hub_dir, 200, 4)?;
    let key = DeviceKey::generate();
    let limits = OfflineLimits {
        per_operation: Amount::parse("500")?,
        unconfirmed_total: Balance::parse("1000000")?,
        offline_secs_max: 86_400,
    };
    hub.enrol(key.author(), Role::CashPoint, &label("Edicola"), limits)?;
    let cash_point = Node::join(&cp_dir, hub.realm(), key)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (to_hub, to_cash_point) = runtime.block_on(async {
        let (hub_service, cp_service) =
            (Service::start(hub, Some(hub_dir.clone()))?, Service::start(cash_point, Some(cp_dir.clone()))?);
        let (hub, cash_point) = (hub_service.writer().clone(), cp_service.writer().clone());
        let stop = std::sync::Arc::new(tokio::sync::Notify::new());
        let bind: std::net::SocketAddr = "127.0.0.1:0".parse()?;
        let (h, s, d) = (hub_service.clone(), stop.clone(), hub_dir.clone());
        let hub_task = tokio::spawn(async move {
            run_service(h, &d, NetConfig { bind, peers: vec![], lan: false }, async move { s.notified().await }).await
        });
        let hub_address: PeerAddr = loop {
            if let Some(address) = RunStatus::read(&hub_dir).and_then(|s| s.address()) {
                break address;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let (c, s, d) = (cp_service.clone(), stop.clone(), cp_dir.clone());
        let cp_task =
            tokio::spawn(async move {
                run_service(c, &d, NetConfig { bind, peers: vec![hub_address], lan: false }, async move {
                    s.notified().await
                })
                .await
            });
        while cash_point.call(|n| n.directory_counts().map_err(anyhow::Error::from)).await?.0 < 200 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut rng = fastrand::Rng::with_seed(3);
        let (mut to_hub, mut to_cash_point) = (Vec::new(), Vec::new());
        for _ in 0..samples {
            let WalletKey { consumer, service } = wallets[rng.usize(..wallets.len())].clone();
            let line = saldo_node::node::TopUpRequestLine { consumer, service, amount: Amount::parse("5")? };
            let started = Instant::now();
            let receipt = cash_point
                .call(move |n| n.record_top_up(&[line], PaymentMethod::Cash, None).map_err(anyhow::Error::from))
                .await?;
            cash_point.refresh_frontier().await?;
            let id = OpId::from_hex(&receipt.verification_code)?;
            let judged = |handle: NodeHandle| async move {
                loop {
                    let verdict = handle.call(move |n| n.store_mut().read().and_then(|tx| tx.verdict(&id))).await?;
                    if verdict.is_some() {
                        return anyhow::Ok(());
                    }
                    tokio::time::sleep(Duration::from_micros(500)).await;
                }
            };
            judged(hub.clone()).await?;
            to_hub.push(started.elapsed());
            judged(cash_point.clone()).await?;
            to_cash_point.push(started.elapsed());
            tokio::time::sleep(Duration::from_millis(rng.u64(0..20))).await;
        }
        stop.notify_waiters();
        let _ = tokio::time::timeout(Duration::from_secs(5), async { (hub_task.await, cp_task.await) }).await;
        anyhow::Ok((to_hub, to_cash_point))
    })?;
    for (what, mut times) in [("the hub's decision", to_hub), ("the decision back at the cash point", to_cash_point)] {
        times.sort();
        println!(
            "online top-up at a cash point to {what}, over iroh on 127.0.0.1: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} top-ups; target p99 <= 1000 ms)",
            ms(percentile(&times, 50)),
            ms(percentile(&times, 99)),
            ms(percentile(&times, 100)),
            times.len()
        );
    }
    Ok(())
}

/// Catch-up over iroh on 127.0.0.1 from nodes holding 1,000,000 operations
/// of 1,000 cash points: (1) a fresh cash point joining the hub, which gives
/// it what a device needs (the hub's log), and (2) a fresh cash point
/// dialing a neighbour that carries all 1,000,000 (store and forward), which
/// gives it everything, each verified before it is stored.
pub(super) fn sync_catch_up(options: &Options) -> Result<()> {
    use saldo_node::net::{NetConfig, PeerAddr, RunStatus, run_service};
    use saldo_node::service::Service;
    const AUTHORS: usize = 1_000;
    let total = options.ops.unwrap_or(1_000_000);
    let per_author = total / AUTHORS;
    let dir = options.work.join("catch-up");
    let _ = std::fs::remove_dir_all(&dir);
    let started = Instant::now();
    let (mut hub, wallets) = hub_with_wallets(&dir.join("hub"), 2_000, 8)?;
    let realm = hub.realm();
    let limits = OfflineLimits {
        per_operation: Amount::parse("500")?,
        unconfirmed_total: Balance::parse("100000000")?,
        offline_secs_max: 86_400,
    };
    let keys = enrolled_cash_points(&mut hub, AUTHORS, "bench catch-up", limits)?;
    // Each cash point's log, signed on all cores, holding the hub's log as it
    // is now; then interleaved as they would arrive.
    let hub_seen = hub.store_mut().read()?.author(&realm.hub())?.map_or(Seq(0), |a| a.head_seq);
    let arrival = signed_arrival(&realm, &keys, hub_seen, &wallets, per_author, ArrivalTime::ONE_DAY);
    for batch in arrival.chunks(10_000) {
        for result in hub.ingest(batch)? {
            result?;
        }
    }
    // The neighbour: a cash point that holds (carries) all of it.
    let carrier_key = DeviceKey::generate();
    hub.enrol(carrier_key.author(), Role::CashPoint, &label("Vicino"), limits)?;
    let mut carrier = Node::join(&dir.join("carrier"), realm, carrier_key)?;
    let hub_log = hub.all_operations()?;
    let hub_author = realm.hub();
    let own_log: Vec<Vec<u8>> =
        hub_log.into_iter().filter(|b| saldo_sync::op::peek(b).is_some_and(|(a, _, _)| a == hub_author)).collect();
    carrier.ingest(&own_log)?;
    for batch in arrival.chunks(10_000) {
        carrier.ingest(batch)?;
    }
    drop(arrival);
    let fresh: Vec<(DeviceKey, &str)> = vec![(DeviceKey::generate(), "fresh-a"), (DeviceKey::generate(), "fresh-b")];
    for (key, name) in &fresh {
        hub.enrol(key.author(), Role::CashPoint, &label(name), limits)?;
    }
    // The carrier learns of the fresh devices' enrolments too.
    let hub_log: Vec<Vec<u8>> = hub
        .all_operations()?
        .into_iter()
        .filter(|b| saldo_sync::op::peek(b).is_some_and(|(a, _, _)| a == hub_author))
        .collect();
    carrier.ingest(&hub_log)?;
    let hub_ops = hub.frontier()?.get(&hub_author).map_or(0, |e| e.seq.0);
    let held = carrier.frontier()?.0.values().map(|e| e.seq.0).sum::<u64>();
    println!(
        "built in {:.0} s: a hub holding {} operations ({hub_ops} of them its own log), a neighbour carrying {held}",
        started.elapsed().as_secs_f64(),
        hub.store_mut().read()?.op_count()?,
    );
    // The hub's receipts due for those top-ups become the outbox's messages
    // now, before anything is timed: its writer does that as soon as it is
    // idle, and here, where every node shares this process and two cores, it
    // would otherwise run beside the catch-ups of another node.
    let drained_at = Instant::now();
    let receipts = expand_all_receipts(&mut hub)?;
    hub.checkpoint_when_idle()?;
    println!(
        "the hub turned its {receipts} receipts due into the outbox's messages first, in {:.0} s",
        drained_at.elapsed().as_secs_f64()
    );

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let stop = std::sync::Arc::new(tokio::sync::Notify::new());
        let bind: std::net::SocketAddr = "127.0.0.1:0".parse()?;
        let mut serving = Vec::new();
        let mut addresses = Vec::new();
        for (node, name) in [(hub, "hub"), (carrier, "carrier")] {
            let service = Service::start(node, Some(dir.join(name)))?;
            let handle = service.writer().clone();
            let (h, s, d) = (service, stop.clone(), dir.join(name));
            serving.push(tokio::spawn(async move {
                run_service(h, &d, NetConfig { bind, peers: vec![], lan: false }, async move { s.notified().await }).await
            }));
            let address: PeerAddr = loop {
                if let Some(address) = RunStatus::read(&dir.join(name)).and_then(|s| s.address()) {
                    break address;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            addresses.push((handle, address));
        }
        let carrier_at = addresses[1].clone();
        let mut fresh_b = None;
        for ((key, name), (source, address)) in fresh.into_iter().zip(addresses) {
            let target = source.call(|n| n.frontier().map_err(anyhow::Error::from)).await?;
            let node = Node::join(&dir.join(name), realm, key)?;
            let service = Service::start(node, Some(dir.join(name)))?;
            let handle = service.writer().clone();
            let started = Instant::now();
            let own_stop = std::sync::Arc::new(tokio::sync::Notify::new());
            let (h, s, o, d) = (service, stop.clone(), own_stop.clone(), dir.join(name));
            let task = tokio::spawn(async move {
                let config = NetConfig { bind, peers: vec![address], lan: false };
                run_service(h, &d, config, async move { tokio::select! { () = s.notified() => {}, () = o.notified() => {} } })
                    .await
            });
            // Done when it holds everything the source shares with it.
            let expected: u64 = if name == "fresh-a" {
                target.get(&hub_author).map_or(0, |e| e.seq.0)
            } else {
                target.0.values().map(|e| e.seq.0).sum()
            };
            let got = loop {
                let frontier = handle.call(|n| n.frontier().map_err(anyhow::Error::from)).await?;
                let got: u64 = frontier.0.values().map(|e| e.seq.0).sum();
                if got >= expected {
                    break got;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            let seconds = started.elapsed().as_secs_f64();
            let what = if name == "fresh-a" {
                "a fresh cash point from the hub (the hub's log: what a device needs)"
            } else {
                "a fresh cash point from a neighbour carrying everything"
            };
            println!(
                "catch-up of {what}: {got} operations in {seconds:.1} s, {:.0} operations/s (target for 1,000,000: <= 20 s)",
                got as f64 / seconds
            );
            match name {
                "fresh-b" => fresh_b = Some((handle, own_stop, task)),
                _ => serving.push(task),
            }
        }

        // Reconnect: the fresh cash point and its neighbour now share every
        // operation; it goes offline, 100 cash points record one top-up each
        // at the neighbour, and it comes back. Bytes counted by QUIC on the
        // connection once it is up (as the protocol benchmark counts them).
        let (carrier, carrier_address) = carrier_at;
        let (mut handle, mut own_stop, mut task) = fresh_b.context("the second fresh cash point")?;
        let mut next = 0usize;
        for remembered in [false, true] {
            own_stop.notify_one();
            task.await??;
            drop(handle);
            let heads = carrier.call(|n| n.frontier().map_err(anyhow::Error::from)).await?;
            let hub_seen = heads.get(&hub_author).map_or(Seq(0), |e| e.seq);
            let missing: Vec<Vec<u8>> = keys[next..next + 100]
                .iter()
                .map(|key| {
                    let head = heads.get(&key.author()).expect("every cash point recorded");
                    Operation {
                        author: key.author(),
                        seq: head.seq.next(),
                        prev: head.head,
                        hlc: Hlc::from_parts(1_790_000_000_000 + head.seq.0 + 1, 0),
                        hub_seen,
                        body: Body::TopUp(TopUp {
                            receipt: ReceiptNo(head.seq.0 + 1),
                            lines: vec![TopUpLine { wallet: wallets[next % wallets.len()].clone(), amount: Amount::parse("12.50").expect("amount") }],
                            method: PaymentMethod::Cash,
                            operator: None,
                        }),
                    }
                    .sign(&realm, key)
                    .to_bytes()
                })
                .collect();
            next += 100;
            let missing_bytes: usize = missing.iter().map(Vec::len).sum();
            carrier.call(move |n| n.ingest(&missing).map_err(anyhow::Error::from)).await?;
            let mut node = Node::open(&dir.join("fresh-b"))?;
            if !remembered {
                node.forget_peer(&carrier_address.id)?;
            }
            let before: u64 = node.frontier()?.0.values().map(|e| e.seq.0).sum();
            let authors = node.frontier()?.0.len();
            let service = Service::start(node, Some(dir.join("fresh-b")))?;
            handle = service.writer().clone();
            own_stop = std::sync::Arc::new(tokio::sync::Notify::new());
            let started = Instant::now();
            let (h, s, o, d) = (service, stop.clone(), own_stop.clone(), dir.join("fresh-b"));
            task = tokio::spawn(async move {
                let config = NetConfig { bind, peers: vec![carrier_address], lan: false };
                run_service(h, &d, config, async move { tokio::select! { () = s.notified() => {}, () = o.notified() => {} } })
                    .await
            });
            loop {
                let frontier = handle.call(|n| n.frontier().map_err(anyhow::Error::from)).await?;
                if frontier.0.values().map(|e| e.seq.0).sum::<u64>() >= before + 100 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let seconds = started.elapsed().as_secs_f64();
            // The byte counts are refreshed every 200 ms.
            tokio::time::sleep(Duration::from_millis(600)).await;
            let status = RunStatus::read(&dir.join("fresh-b")).context("the cash point's status")?;
            let peer = status.peers.get(&carrier_address.id.to_hex()).context("the session with the neighbour")?;
            let wire = peer.wire_sent_bytes + peer.wire_received_bytes;
            let (what, target) = if remembered {
                ("synced before, remembering the frontiers", missing_bytes * 5 / 4 + 2_048)
            } else {
                ("first sync, whole frontiers", 80 * authors + 2 * missing_bytes)
            };
            println!(
                "reconnect on the wire, {what}: {authors} authors, 100 operations missing ({missing_bytes} bytes): {wire} bytes once the connection was up ({} out, {} in; the handshake {} more), {seconds:.2} s (target <= {target})",
                peer.wire_sent_bytes, peer.wire_received_bytes, peer.handshake_bytes
            );
        }
        serving.push(task);
        stop.notify_waiters();
        anyhow::Ok(())
    })?;
    println!("(e) peak resident memory: {} MiB", peak_rss_kib() / 1024);
    Ok(())
}
