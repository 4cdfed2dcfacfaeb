//! `saldo-bench http`: the operators' HTTP API under load, each figure beside
//! the same work called in process on the service layer, in the same run.
//!
//! (1) At a cash point, 50 concurrent keep-alive clients post top-ups (one
//! wallet each, a new Idempotency-Key each): top-ups per second, and the
//! time from request to durable response (p50/p99; target p99 <= 20 ms).
//! (2) At the hub of the 1,000,000-consumer realm, searches while a
//! 1,000,000-operation catch-up is ingested into the same node through its
//! writer in calls of 10,000 operations, as a sync session does (target
//! search p99 <= 20 ms).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use saldo_node::node::{Node, Password};
use saldo_node::service::Service;
use saldo_sync::{Amount, Balance, DeviceKey, OfflineLimits, OperatorLogin, OperatorRole, PersonName, Role, Seq};
use serde_json::{Value, json};

use super::{ArrivalTime, Options, enrolled_cash_points, hub_with_wallets, label, ms, percentile, signed_arrival};

const CLIENTS: usize = 50;
const PASSWORD: &str = "benchmark password";

/// One keep-alive connection to the API, logged in.
struct Client {
    send: SendRequest<Full<Bytes>>,
    cookie: String,
    csrf: String,
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (send, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(send)
}

async fn request(
    send: &mut SendRequest<Full<Bytes>>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Result<(u16, hyper::HeaderMap, Bytes)> {
    let mut builder = hyper::Request::builder().method(method).uri(format!("/api/v1{path}")).header("host", "bench");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let body = match body {
        Some(value) => {
            builder = builder.header("content-type", "application/json");
            Full::new(Bytes::from(value.to_string()))
        }
        None => Full::new(Bytes::new()),
    };
    send.ready().await?;
    let response = send.send_request(builder.body(body)?).await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, headers, bytes))
}

async fn log_in(addr: SocketAddr, login: &str) -> Result<(String, String)> {
    let mut send = connect(addr).await?;
    let (status, headers, body) =
        request(&mut send, "POST", "/session", &[], Some(&json!({"login": login, "password": PASSWORD}))).await?;
    anyhow::ensure!(status == 200, "log-in answered {status}: {}", String::from_utf8_lossy(&body));
    let cookie = headers.get("set-cookie").context("a session cookie")?.to_str()?;
    let cookie = cookie.split(';').next().unwrap_or_default().to_string();
    let me: Value = serde_json::from_slice(&body)?;
    Ok((cookie, me["csrf_token"].as_str().context("a CSRF token")?.to_string()))
}

/// Serves `service`'s API on 127.0.0.1 until the runtime stops.
async fn serve(service: Service) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = saldo_node::http::router(service, false).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

fn add_operator(
    node: &mut Node,
    login: &str,
    role: OperatorRole,
    cash_point: Option<saldo_sync::AuthorId>,
) -> Result<()> {
    let login = OperatorLogin::parse(login)?;
    if node.operator(&login)?.is_none() {
        node.add_operator(&login, &PersonName::parse("Bench Mark")?, role, cash_point, &Password::parse(PASSWORD)?)
            .map_err(|e| anyhow!("{e}"))?;
    }
    Ok(())
}

fn report(what: &str, mut latencies: Vec<Duration>, elapsed: Duration, target: &str) {
    latencies.sort();
    println!(
        "    {what:<34} {:>7.0}/s   p50 {:>6.2} ms   p99 {:>6.2} ms   max {:>7.2} ms   ({} requests; {target})",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        ms(percentile(&latencies, 50)),
        ms(percentile(&latencies, 99)),
        ms(*latencies.last().unwrap_or(&Duration::ZERO)),
        latencies.len()
    );
}

pub fn http(options: &Options) -> Result<()> {
    top_ups(options)?;
    if options.skip_search {
        return Ok(());
    }
    search_during_catch_up(options)
}

/// (1) Top-ups at a cash point: over HTTP from 50 clients, and in process.
fn top_ups(options: &Options) -> Result<()> {
    let total = options.ops.unwrap_or(10_000);
    let dir = options.work.join("http");
    let _ = std::fs::remove_dir_all(&dir);
    let (mut hub, wallets) = hub_with_wallets(&dir.join("hub"), 2_000, 21)?;
    let key = DeviceKey::generate();
    let cash_point = key.author();
    let limits = OfflineLimits {
        per_operation: Amount::parse("500")?,
        unconfirmed_total: Balance::parse("100000000")?,
        offline_secs_max: 86_400,
    };
    hub.enrol(cash_point, Role::CashPoint, &label("Edicola"), limits)?;
    add_operator(&mut hub, "cassa", OperatorRole::Cashier, Some(cash_point))?;
    let cp_dir = dir.join("cash-point");
    let mut node = Node::join(&cp_dir, hub.realm(), key)?;
    let hub_log = hub.operations_of(&hub.realm().hub())?;
    for result in node.ingest(&hub_log)? {
        result?;
    }
    drop(node);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let service = Service::open(&cp_dir)?;
        let addr = serve(service.clone()).await?;
        let (cookie, csrf) = log_in(addr, "cassa").await?;
        let mut clients = Vec::new();
        for _ in 0..CLIENTS {
            clients.push(Client { send: connect(addr).await?, cookie: cookie.clone(), csrf: csrf.clone() });
        }
        let shared_wallets = Arc::new(wallets.clone());
        let line = move |i: usize| {
            let wallet = &shared_wallets[i.wrapping_mul(7919) % shared_wallets.len()];
            json!({"lines": [{"consumer": wallet.consumer, "service": wallet.service, "amount": "5.00"}], "method": "cash"})
        };
        println!("(1) top-ups at a cash point, {CLIENTS} concurrent clients, {total} top-ups each way:");
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for mut client in clients {
            let (next, line) = (next.clone(), line.clone());
            tasks.spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return anyhow::Ok(latencies);
                    }
                    let key = format!("bench-top-up-{i:08}");
                    let headers =
                        [("cookie", client.cookie.as_str()), ("x-csrf-token", client.csrf.as_str()), ("idempotency-key", &key)];
                    let sent = Instant::now();
                    let (status, _, body) = request(&mut client.send, "POST", "/topups", &headers, Some(&line(i))).await?;
                    latencies.push(sent.elapsed());
                    anyhow::ensure!(status == 200, "a top-up answered {status}: {}", String::from_utf8_lossy(&body));
                }
            });
        }
        let mut latencies = Vec::new();
        while let Some(done) = tasks.join_next().await {
            latencies.extend(done??);
        }
        report("over HTTP (request to durable answer)", latencies, started.elapsed(), "target p99 <= 20 ms");
        // The same in process: the service layer, 50 callers at once.
        let operator = saldo_node::service::Operator {
            login: "cassa".into(),
            name: "Bench Mark".into(),
            role: saldo_api::session::OperatorRole::Cashier,
            cash_point: Some(cash_point),
            cash_point_name: Some("Edicola".into()),
            must_change_password: false,
        };
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..CLIENTS {
            let (next, service, operator, wallets) = (next.clone(), service.clone(), operator.clone(), wallets.clone());
            tasks.spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return anyhow::Ok(latencies);
                    }
                    let wallet = &wallets[i.wrapping_mul(7919) % wallets.len()];
                    let request = saldo_api::payments::TopUpRequest {
                        lines: vec![saldo_api::payments::TopUpLineRequest {
                            consumer: wallet.consumer,
                            service: wallet.service.clone(),
                            amount: Amount::parse("5")?,
                        }],
                        method: saldo_api::payments::PaymentMethodApi::Cash,
                    };
                    let sent = Instant::now();
                    service.top_up(&operator, request, Some(format!("in-process-{i:08}"))).await?;
                    latencies.push(sent.elapsed());
                }
            });
        }
        let mut latencies = Vec::new();
        while let Some(done) = tasks.join_next().await {
            latencies.extend(done??);
        }
        report("in process (the service layer)", latencies, started.elapsed(), "the same work without HTTP");
        anyhow::Ok(())
    })
}

/// (2) Searches at the hub of the 1,000,000-consumer realm while a catch-up
/// of 1,000,000 operations is ingested into it.
fn search_during_catch_up(options: &Options) -> Result<()> {
    // The realm `foundation` builds (and keeps) under the work directory.
    super::foundation::search_latency(&Options { queries: 10, ..options.clone() })?;
    let dir = options.work.join(format!("realm-{}", options.consumers));
    let csv_path = options.work.join(format!("families-{}.csv", options.consumers));
    let samples = super::foundation::sample_queries(&csv_path, options.queries)?;
    let queries: Vec<String> = samples.pans.into_iter().chain(samples.codes).chain(samples.prefixes).collect();
    // A copy, so the realm kept for other runs does not grow.
    let copy = options.work.join("http-catch-up");
    let _ = std::fs::remove_dir_all(&copy);
    std::fs::create_dir_all(&copy)?;
    Node::open(&dir)?.store().copy_into(&copy.join("saldo.db"))?;
    for file in [saldo_node::node::KEY_FILE, saldo_node::node::CONTACTS_KEY_FILE] {
        if dir.join(file).exists() {
            std::fs::copy(dir.join(file), copy.join(file))?;
        }
    }
    let mut hub = Node::open(&copy)?;
    add_operator(&mut hub, "ufficio", OperatorRole::Clerk, None)?;
    const AUTHORS: usize = 1_000;
    let total = options.ops.unwrap_or(1_000_000);
    let per_author = total / AUTHORS;
    let limits = OfflineLimits {
        per_operation: Amount::parse("500")?,
        unconfirmed_total: Balance::parse("100000000")?,
        offline_secs_max: 86_400,
    };
    let keys = enrolled_cash_points(&mut hub, AUTHORS, "bench http catch-up", limits)?;
    let realm = hub.realm();
    let hub_seen = hub.store_mut().read()?.author(&realm.hub())?.map_or(Seq(0), |a| a.head_seq);
    let wallets: Vec<saldo_sync::WalletKey> = {
        let tx = hub.store_mut().read()?;
        let mut out = Vec::new();
        for query in queries.iter().take(2_000) {
            if let Ok(pan) = saldo_sync::Pan::parse(query)
                && let Some(row) = tx.consumer_by_pan(&pan)?
                && let Some(service) = tx.consumer_services(&row.consumer)?.into_iter().next()
            {
                out.push(saldo_sync::WalletKey { consumer: row.consumer, service });
            }
        }
        out
    };
    anyhow::ensure!(!wallets.is_empty(), "no wallet found for the catch-up's top-ups");
    eprintln!("    signing {total} operations of {AUTHORS} cash points");
    let arrival = signed_arrival(&realm, &keys, hub_seen, &wallets, per_author, ArrivalTime::ONE_DAY);
    drop(hub);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let service = Service::open(&copy)?;
        let addr = serve(service.clone()).await?;
        let (cookie, _) = log_in(addr, "ufficio").await?;
        let writer = service.writer().clone();
        let started = Instant::now();
        let ingest = tokio::spawn(async move {
            for call in arrival.chunks(10_000) {
                let call = call.to_vec();
                writer
                    .call(move |node| {
                        node.ingest_within(&call, saldo_node::node::TransactionBound::LARGE)
                            .map(drop)
                            .map_err(|e| e.to_string())
                    })
                    .await
                    .map_err(|e| anyhow!("{e}"))?;
            }
            anyhow::Ok(())
        });
        let mut client = connect(addr).await?;
        let (mut over_http, mut in_process) = (Vec::new(), Vec::new());
        let mut i = 0usize;
        while !ingest.is_finished() {
            let query = &queries[i % queries.len()];
            i += 1;
            let path = format!("/consumers?q={}&limit=20", query.replace(' ', "%20"));
            let sent = Instant::now();
            let (status, _, body) = request(&mut client, "GET", &path, &[("cookie", cookie.as_str())], None).await?;
            over_http.push(sent.elapsed());
            anyhow::ensure!(status == 200, "a search answered {status}: {}", String::from_utf8_lossy(&body));
            let params = saldo_api::consumers::SearchParams { q: query.clone(), limit: Some(20) };
            let sent = Instant::now();
            service.search(params).await?;
            in_process.push(sent.elapsed());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        ingest.await??;
        let took = started.elapsed();
        println!(
            "(2) search at the hub of {} consumers while {total} operations are ingested ({:.0} operations/s, {:.1} s):",
            options.consumers,
            total as f64 / took.as_secs_f64(),
            took.as_secs_f64()
        );
        report("search over HTTP", over_http, took, "target p99 <= 20 ms");
        report("search in process (the service layer)", in_process, took, "the same queries");
        anyhow::Ok(())
    })?;
    let _ = std::fs::remove_dir_all(&copy);
    Ok(())
}
