//! A cashier's account made at the hub, at the cash point: it logs in
//! there with the hub stopped, records offline over the cash point's HTTP
//! API and sees the balances confirmed once the hub is back, and stops
//! working once disabled and synced.

use std::path::Path;
use std::time::{Duration, Instant};

use saldo_sync::Body;
use serde_json::Value;

use super::common::{ok, ok_with_stdin, saldo};

use super::{enroll, http_of, hub, json, spawn, status, wait_until};

/// Runs `saldo`, which must succeed, with `stdin` piped to it.
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
