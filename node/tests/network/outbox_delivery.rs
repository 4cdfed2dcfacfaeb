//! The hub's outbox reaches real servers: an SMTP server (aiosmtpd) and an
//! HTTP SMS gateway on 127.0.0.1, with the hub run as its own process,
//! stopped, killed and restarted.

use super::{common, delivery};

use std::collections::{BTreeMap, BTreeSet};

use delivery::{Smtp, count_in_state, free_port, gateway, hub_dir, queue, spawn_hub, state, wait_until};

const FAST_RETRIES: &str = "[outbox]\nretry_first_ms = 200\nretry_max_ms = 800\npoll_ms = 100\n";

fn email_config(port: u16) -> String {
    format!(
        "[email]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"plain\"\nfrom = \"Comune di Prova <servizi@comune.test>\"\ntimeout_ms = 2000\n{FAST_RETRIES}"
    )
}

#[test]
fn a_receipt_queued_while_the_smtp_server_is_down_is_retried_and_arrives_once_when_it_is_back() {
    let tmp = tempfile::tempdir().unwrap();
    let mut smtp = Smtp::new(free_port(), tmp.path().join("maildir"));
    let dir = hub_dir(tmp.path(), &email_config(smtp.port));
    let _hub = spawn_hub(&dir, &tmp.path().join("hub.log"));
    let reference = queue(&dir, 1, "email", "famiglia.rossi@example.org");

    let (_, _, error) = wait_until("a failed attempt", || {
        let s = state(&dir, &reference);
        (s.0 == "failing" && s.1 >= 2).then_some(s)
    });
    let error = error.expect("the last error is kept");
    assert!(error.contains(&format!("127.0.0.1:{}", smtp.port)), "the error names the server: {error}");
    // The hub's status says how each channel fares.
    let email = |dir: &std::path::Path| {
        let status = delivery::status(dir)?;
        status["delivery"].as_array()?.iter().find(|c| c["channel"] == "email").cloned()
    };
    let failing = wait_until("the status to show e-mail failing", || email(&dir).filter(|c| c["failed"] != 0));
    assert_eq!((failing["configured"].as_bool(), failing["sent"].as_u64()), (Some(true), Some(0)), "{failing}");
    assert!(failing["last_error"].as_str().is_some_and(|e| e.contains("127.0.0.1")), "{failing}");
    let sms = delivery::status(&dir).unwrap()["delivery"][1].clone();
    assert_eq!((sms["channel"].as_str(), sms["configured"].as_bool()), (Some("sms"), Some(false)), "{sms}");

    smtp.start();
    wait_until("the receipt to be sent", || (state(&dir, &reference).0 == "sent").then_some(()));
    let (state_now, _, last_error) = state(&dir, &reference);
    assert_eq!((state_now.as_str(), last_error), ("sent", None));
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1, "delivered once");
    let (headers, text) = &messages[0];
    assert_eq!(headers["message-id"], reference);
    assert_eq!(headers["to"], "famiglia.rossi@example.org");
    assert!(headers["from"].contains("servizi@comune.test"), "{headers:?}");
    assert!(headers["content-type"].starts_with("multipart/alternative"), "plain text and HTML: {headers:?}");
    assert!(text.contains("text/plain") && text.contains("text/html"), "{text}");
    let delivered = wait_until("the status to show e-mail delivering", || email(&dir).filter(|c| c["sent"] == 1));
    assert!(delivered["last_error"].is_null(), "{delivered}");
    // Nothing more once sent, however long the hub runs.
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert_eq!(smtp.messages().len(), 1);
}

#[test]
fn a_hub_killed_while_sending_resends_after_restart_only_with_the_same_message_ids_and_loses_none() {
    let tmp = tempfile::tempdir().unwrap();
    let mut smtp = Smtp::new(free_port(), tmp.path().join("maildir"));
    smtp.start();
    let dir = hub_dir(tmp.path(), &email_config(smtp.port));
    // Queued while the hub is down: it delivers them when it starts.
    let references: BTreeSet<String> =
        (0..300).map(|n| queue(&dir, n, "email", &format!("genitore{n}@example.org"))).collect();
    let log = tmp.path().join("hub.log");
    let hub = spawn_hub(&dir, &log);
    wait_until("the first deliveries", || (smtp.messages().len() >= 5).then_some(()));
    drop(hub); // SIGKILL, in the middle of the run
    let sent_before_restart = count_in_state(&dir, "sent");
    assert!(sent_before_restart < 300, "the kill came too late to test anything ({sent_before_restart} sent)");
    let _hub = spawn_hub(&dir, &log);
    wait_until("every message sent", || (count_in_state(&dir, "sent") == 300).then_some(()));

    let ids = smtp.message_ids();
    let distinct: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(distinct, references, "every message arrived, each with its own Message-ID");
    // Only what was accepted and not yet recorded when the hub died is sent
    // twice, and it carries the same Message-ID (one batch at most).
    let duplicates = ids.len() - distinct.len();
    assert!(duplicates <= 256, "{duplicates} duplicates");
    println!("{duplicates} sent twice after the kill (same Message-ID)");
}

#[test]
fn an_sms_goes_to_the_gateway_with_the_text_and_reference_after_the_gateway_s_failures() {
    let tmp = tempfile::tempdir().unwrap();
    let (address, received, _runtime) = gateway(2);
    let config = format!(
        "[sms]\nurl = \"http://{address}/send\"\nheaders = {{ Authorization = \"Bearer {{token}}\" }}\n\
         body = '{{\"to\": \"{{to}}\", \"text\": \"{{text}}\", \"ref\": \"{{reference}}\"}}'\n\
         success_contains = '\"ok\"'\n{FAST_RETRIES}"
    );
    let dir = hub_dir(tmp.path(), &config);
    let log = tmp.path().join("hub.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let _hub = delivery::Running(
        std::process::Command::new(common::SALDO)
            .args(["hub", "--data", dir.to_str().unwrap(), "--p2p", "127.0.0.1:0", "--http", "127.0.0.1:0", "--no-lan"])
            .env_remove("SALDO_DATA")
            .env("SALDO_SMS_TOKEN", "gateway-secret")
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap(),
    );
    let reference = queue(&dir, 7, "sms", "+393331234567");
    wait_until("the SMS to be sent", || (state(&dir, &reference).0 == "sent").then_some(()));
    let (_, attempts, _) = state(&dir, &reference);
    assert_eq!(attempts, 3, "two 503s, then accepted");
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 3);
    let (headers, body) = &received[2];
    assert_eq!(headers["authorization"], "Bearer gateway-secret");
    assert_eq!(headers["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["to"], "+393331234567");
    assert_eq!(body["ref"], reference);
    assert_eq!(body["text"], "Ricarica n. 7 di 20,00 € per Nicolò D'Angelo; saldo 35,50 €");
}

#[test]
fn bad_outbox_settings_stop_the_hub_at_start_naming_the_key_and_what_to_write() {
    let cases = [
        ("[email]\nhost = \"smtp.example\"\n", "[email] from", "missing"),
        ("[email]\nhost = \"smtp.example\"\nfrom = \"not an address\"\n", "[email] from", "not an e-mail address"),
        (
            "[email]\nhost = \"smtp.example\"\nsecurity = \"plain\"\nusername = \"u\"\npassword = \"p\"\nfrom = \"a@b.example\"\n",
            "[email] security",
            "unencrypted",
        ),
        (
            "[sms]\nurl = \"http://127.0.0.1:9/send\"\nbody = '{\"to\": \"{to}\", \"text\": \"{txt}\"}'\n",
            "[sms] body",
            "{txt}",
        ),
        (
            "[sms]\nurl = \"http://127.0.0.1:9/send\"\nbody = '{\"to\": {to}, \"text\": \"{text}\"}'\n",
            "[sms] body",
            "not JSON",
        ),
        ("[outbox]\nretry_first_ms = 0\n", "[outbox] retry_first_ms", "at least"),
        ("[email]\nhots = \"x\"\n", "hots", "unknown field"),
    ];
    for (n, (config, key, says)) in cases.iter().enumerate() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = hub_dir(tmp.path(), config);
        let out =
            common::saldo(&["hub", "--data", dir.to_str().unwrap(), "--p2p", "127.0.0.1:0", "--http", "127.0.0.1:0"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "case {n}: the hub started with {config:?}");
        assert!(
            stderr.contains(key) && stderr.contains(says),
            "case {n}: {stderr:?} should name {key:?} and say {says:?}"
        );
        assert!(stderr.contains("saldo.toml"), "case {n}: names the file: {stderr}");
    }
}

#[test]
fn an_unreachable_smtp_server_is_reported_when_the_hub_starts_and_never_blocks_a_top_up() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let dir = hub_dir(tmp.path(), &email_config(port));
    let csv = tmp.path().join("families.csv");
    common::ok(&["generate", "--consumers", "5", "--out", csv.to_str().unwrap(), "--seed", "3"]);
    common::ok(&["families", "import", "--data", dir.to_str().unwrap(), csv.to_str().unwrap()]);
    let log = tmp.path().join("hub.log");
    let _hub = spawn_hub(&dir, &log);
    let reference = queue(&dir, 1, "email", "famiglia@example.org");
    wait_until("the hub to report the SMTP server", || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains(&format!("SMTP 127.0.0.1:{port}")).then_some(())
    });
    wait_until("a failed attempt", || (state(&dir, &reference).0 == "failing").then_some(()));
    // A top-up at the hub is recorded while the outbox keeps failing.
    let (pan, _) = delivery::some_consumer(&dir);
    let started = std::time::Instant::now();
    common::ok(&["topup", "--data", dir.to_str().unwrap(), "--pan", &pan, "--amount", "5.00", "--method", "cash"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "the top-up waited {:?}", started.elapsed());
}

#[test]
fn a_top_up_at_the_hub_reaches_the_family_once_by_e_mail_and_sms_with_the_child_amount_and_balance() {
    let tmp = tempfile::tempdir().unwrap();
    let mut smtp = Smtp::new(free_port(), tmp.path().join("maildir"));
    smtp.start();
    let (address, received, _runtime) = gateway(0);
    let config = format!(
        "{}[sms]\nurl = \"http://{address}/send\"\nbody = 'to={{to}}&text={{text}}&ref={{reference}}'\nencoding = \"form\"\n",
        email_config(smtp.port)
    );
    let dir = hub_dir(tmp.path(), &config);
    let csv = tmp.path().join("families.csv");
    common::ok(&["generate", "--consumers", "5", "--out", csv.to_str().unwrap(), "--seed", "5"]);
    common::ok(&["families", "import", "--data", dir.to_str().unwrap(), csv.to_str().unwrap()]);
    let _hub = spawn_hub(&dir, &tmp.path().join("hub.log"));
    let (pan, consumer) = delivery::some_consumer(&dir);
    common::ok(&["topup", "--data", dir.to_str().unwrap(), "--pan", &pan, "--amount", "12.50", "--method", "cash"]);
    common::ok(&["topup", "--data", dir.to_str().unwrap(), "--pan", &pan, "--amount", "7.00", "--method", "cash"]);

    wait_until("two e-mails and two SMS", || {
        (smtp.messages().len() >= 2 && received.lock().unwrap().len() >= 2).then_some(())
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut messages = smtp.messages();
    assert_eq!(messages.len(), 2, "one e-mail per top-up");
    messages.sort_by_key(|(h, _)| h["subject"].clone());
    let texts: Vec<String> = messages.iter().map(|(_, raw)| delivery::plain_text(raw)).collect();
    let child = consumer["name"].as_str().unwrap().to_string();
    let surname = consumer["surname"].as_str().unwrap();
    let both = texts.join("\n----\n");
    for needed in [child.as_str(), surname, "12,50 €", "7,00 €", "Saldo dopo: 12,50 €", "Saldo dopo: 19,50 €"] {
        assert!(both.contains(needed), "{needed:?} missing from the e-mails: {both}");
    }
    let references: BTreeSet<String> = delivery::db(&dir)
        .prepare("SELECT reference FROM outbox WHERE channel = 'email' AND state = 'sent'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(smtp.message_ids().into_iter().collect::<BTreeSet<_>>(), references);
    let sms = received.lock().unwrap().clone();
    assert_eq!(sms.len(), 2, "one SMS per top-up");
    let bodies: Vec<BTreeMap<String, String>> =
        sms.iter().map(|(_, body)| form_urlencoded::parse(body.as_bytes()).into_owned().collect()).collect();
    assert!(bodies.iter().any(|b| b["text"].contains("12,50")), "{bodies:?}");
    assert!(bodies.iter().all(|b| b["to"].starts_with("+39") && b["ref"].len() > 8), "{bodies:?}");
}

#[test]
fn a_top_up_recorded_at_an_offline_cash_point_is_delivered_once_the_cash_point_syncs() {
    let tmp = tempfile::tempdir().unwrap();
    let mut smtp = Smtp::new(free_port(), tmp.path().join("maildir"));
    smtp.start();
    let dir = hub_dir(tmp.path(), &email_config(smtp.port));
    let hub_data = dir.to_str().unwrap();
    let csv = tmp.path().join("families.csv");
    common::ok(&["generate", "--consumers", "5", "--out", csv.to_str().unwrap(), "--seed", "9"]);
    common::ok(&["families", "import", "--data", hub_data, csv.to_str().unwrap()]);
    let _hub = delivery::spawn_node(&["hub", "--data", hub_data], &tmp.path().join("hub.log"));
    wait_until("the hub to listen", || delivery::status(&dir)?["addresses"][0].as_str().map(str::to_string));
    let token: serde_json::Value =
        serde_json::from_str(&common::ok(&["enroll", "--data", hub_data, "--name", "Edicola", "--json"])).unwrap();
    let cp = tmp.path().join("edicola");
    let cp_data = cp.to_str().unwrap();
    let cp_log = tmp.path().join("edicola.log");
    let cash_point =
        delivery::spawn_node(&["cashpoint", "--data", cp_data, "--join", token["token"].as_str().unwrap()], &cp_log);
    let (pan, consumer) = wait_until("the directory at the cash point", || delivery::try_some_consumer(&cp));
    // The cash point goes offline and records a top-up.
    drop(cash_point);
    common::ok(&["topup", "--data", cp_data, "--pan", &pan, "--amount", "9.50", "--method", "cash"]);
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert!(smtp.messages().is_empty(), "nothing is sent before the hub holds the top-up");
    // Back online: it syncs, the hub queues the receipt, the sender delivers it.
    let _cash_point = delivery::spawn_node(&["cashpoint", "--data", cp_data], &cp_log);
    wait_until("the receipt by e-mail", || (!smtp.messages().is_empty()).then_some(()));
    std::thread::sleep(std::time::Duration::from_millis(800));
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1, "delivered once");
    let text = delivery::plain_text(&messages[0].1);
    for needed in [consumer["name"].as_str().unwrap(), consumer["surname"].as_str().unwrap(), "9,50 €", "Edicola"] {
        assert!(text.contains(needed), "{needed:?} missing: {text}");
    }
}
