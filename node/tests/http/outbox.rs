//! The outbox through the real HTTP router and the `saldo` binary, over a
//! real hub on disk: hub staff list messages (filtered by state, paged),
//! open one, retry one given up (not one sent), and send a receipt again
//! on the channels they name, each refusal saying what to fix; services
//! take reminder thresholds.

use crate::common;

use std::path::{Path, PathBuf};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use saldo_node::http::router;
use saldo_node::node::{Password, TopUpRequestLine};
use saldo_node::service::Service;
use saldo_node::{Node, generate, import};
use saldo_sync::{Label, OpId, OperatorLogin, OperatorRole, PaymentMethod, PersonName};
use serde_json::{Value, json};
use tower::ServiceExt as _;

const PASSWORD: &str = "correct horse battery";

fn label(text: &str) -> Label {
    Label::parse(text).unwrap()
}

/// A hub on disk with generated families (the generator gives most an
/// e-mail and a phone), an administrator, and four top-ups, each queuing
/// one message per contact given: the first is marked given up, the
/// second sent, as the sender would.
struct Hub {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    top_ups: Vec<OpId>,
}

fn hub() -> Hub {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hub");
    let mut node = Node::init_realm(&dir, &label("Comune di Prova")).unwrap();
    let mut csv = Vec::new();
    generate::write_csv(&mut csv, 20, 5).unwrap();
    import::import_csv(&mut node, csv.as_slice(), &|_, _| {}).unwrap();
    node.add_operator(
        &OperatorLogin::parse("admin.a").unwrap(),
        &PersonName::parse("Anna Bianchi").unwrap(),
        OperatorRole::Administrator,
        None,
        &Password::parse(PASSWORD).unwrap(),
    )
    .unwrap();
    let wallets: Vec<(saldo_sync::ConsumerId, saldo_sync::ServiceId)> = {
        let tx = node.store_mut().read().unwrap();
        let mut found = Vec::new();
        for view in node_consumers(&tx) {
            found.push(view);
        }
        found
    };
    let mut top_ups = Vec::new();
    for (consumer, service) in wallets {
        let line = TopUpRequestLine { consumer, service, amount: saldo_sync::Amount::parse("10").unwrap() };
        let receipt = node.record_top_up(&[line], PaymentMethod::Cash, None).unwrap();
        let op = OpId::from_hex(&receipt.verification_code).unwrap();
        // (The service's writer turns receipts due into messages after the commit.)
        node.expand_receipts_due(u32::MAX).unwrap();
        let tx = node.store_mut().read().unwrap();
        let queued = tx.outbox_messages(None, None, 100).unwrap().iter().filter(|m| m.about == op.0).count();
        drop(tx);
        if queued == 2 {
            top_ups.push(op);
        }
        if top_ups.len() == 4 {
            break;
        }
    }
    assert_eq!(top_ups.len(), 4, "the generator gives families both contacts");
    drop(node);
    // What the sender records (its own tests cover how): message 1 given
    // up, message 2 sent.
    let db = rusqlite::Connection::open(dir.join(saldo_node::node::DATABASE_FILE)).unwrap();
    db.execute(
        "UPDATE outbox SET state = 'given-up', attempts = 8, last_error = 'connection refused' WHERE id = 1",
        [],
    )
    .unwrap();
    db.execute("UPDATE outbox SET state = 'sent', attempts = 1, sent_ms = queued_ms WHERE id = 2", []).unwrap();
    Hub { _tmp: tmp, dir, top_ups }
}

/// Wallets of families with both an e-mail and a phone, from the store.
fn node_consumers(tx: &saldo_node::store::Tx<'_>) -> Vec<(saldo_sync::ConsumerId, saldo_sync::ServiceId)> {
    let mut out = Vec::new();
    for wallet in tx.consumers_by_key_prefix("", 200).unwrap() {
        let Some(contacts) = tx.contact_record(&wallet.family).unwrap() else { continue };
        if contacts.email.is_none() || contacts.phone.is_none() {
            continue;
        }
        if let Some(service) = tx.consumer_services(&wallet.consumer).unwrap().first() {
            out.push((wallet.consumer, service.clone()));
        }
    }
    out
}

struct Client {
    app: Router,
    cookie: Option<String>,
    csrf: Option<String>,
}

struct Answer {
    status: StatusCode,
    body: Value,
}

impl Client {
    async fn new(dir: &Path) -> Client {
        let service = Service::open(dir).unwrap();
        let mut client = Client { app: router(service, false), cookie: None, csrf: None };
        let answer =
            client.call(Method::POST, "/session", Some(json!({"login": "admin.a", "password": PASSWORD}))).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        client.csrf = Some(answer.body["csrf_token"].as_str().unwrap().to_string());
        client
    }

    async fn call(&mut self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut builder = Request::builder().method(method).uri(format!("/api/v1{path}"));
        if let Some(cookie) = &self.cookie {
            builder = builder.header(header::COOKIE, cookie);
        }
        if let Some(csrf) = &self.csrf {
            builder = builder.header("x-csrf-token", csrf);
        }
        let request = match body {
            Some(body) => {
                builder.header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_string())).unwrap()
            }
            None => builder.body(Body::empty()).unwrap(),
        };
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        if let Some(cookie) = response.headers().get(header::SET_COOKIE) {
            self.cookie = Some(cookie.to_str().unwrap().split(';').next().unwrap().to_string());
        }
        let bytes = axum::body::to_bytes(response.into_body(), 16 << 20).await.unwrap();
        let body =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        Answer { status, body }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_staff_list_open_retry_and_resend_messages_and_are_told_what_to_fix() {
    let hub = hub();
    let mut client = Client::new(&hub.dir).await;

    let all = client.call(Method::GET, "/outbox", None).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(all.body["messages"].as_array().unwrap().len(), 8, "{}", all.body);
    assert_eq!(all.body["counts"], json!({"queued": 6, "failing": 0, "sent": 1, "given_up": 1}));
    assert_eq!(all.body["messages"][0]["id"], 8, "newest first");

    let page = client.call(Method::GET, "/outbox?limit=3", None).await.body;
    assert_eq!(page["messages"].as_array().unwrap().len(), 3);
    let next = page["next_before"].as_i64().unwrap();
    let rest = client.call(Method::GET, &format!("/outbox?limit=10&before={next}"), None).await.body;
    assert_eq!(rest["messages"].as_array().unwrap().len(), 5);
    assert!(rest["next_before"].is_null());

    let given_up = client.call(Method::GET, "/outbox?state=given_up", None).await.body;
    assert_eq!(given_up["messages"].as_array().unwrap().len(), 1);
    assert_eq!(given_up["messages"][0]["last_error"], "connection refused");
    let bad_state = client.call(Method::GET, "/outbox?state=lost", None).await;
    assert_eq!((bad_state.status, bad_state.body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("state")));
    let bad_limit = client.call(Method::GET, "/outbox?limit=501", None).await;
    assert_eq!(bad_limit.body["field"], "limit");

    let one = client.call(Method::GET, "/outbox/1", None).await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.body["about"], hex::encode(hub.top_ups[0].0));
    assert!(one.body["body_text"].as_str().unwrap().contains("10,00 €"), "{}", one.body);
    let missing = client.call(Method::GET, "/outbox/999", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body["message"].as_str().unwrap().contains("outbox list"), "{}", missing.body);
    let not_a_number = client.call(Method::GET, "/outbox/abc", None).await;
    assert_eq!((not_a_number.status, not_a_number.body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("id")));

    let retried = client.call(Method::POST, "/outbox/1/retry", Some(json!({}))).await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    assert_eq!(retried.body["state"], "queued");
    let sent = client.call(Method::POST, "/outbox/2/retry", Some(json!({}))).await;
    assert_eq!(sent.status, StatusCode::CONFLICT);
    assert!(sent.body["message"].as_str().unwrap().contains("resend"), "says how to send it again: {}", sent.body);
    let queued = client.call(Method::POST, "/outbox/3/retry", Some(json!({}))).await;
    assert_eq!(queued.status, StatusCode::CONFLICT);

    let op = hub.top_ups[1].to_hex();
    let resent =
        client.call(Method::POST, &format!("/receipts/{op}/resend"), Some(json!({"channels": ["email"]}))).await;
    assert_eq!(resent.status, StatusCode::OK, "{}", resent.body);
    let first = resent.body["queued"][0].clone();
    assert_eq!((first["purpose"].as_str(), first["channel"].as_str()), (Some("resend"), Some("email")));
    let again =
        client.call(Method::POST, &format!("/receipts/{op}/resend"), Some(json!({"channels": ["email", "sms"]}))).await;
    assert_eq!(again.body["queued"].as_array().unwrap().len(), 2, "{}", again.body);
    assert_ne!(again.body["queued"][0]["reference"], first["reference"], "each resend has a reference of its own");
    let none = client.call(Method::POST, &format!("/receipts/{op}/resend"), Some(json!({"channels": []}))).await;
    assert_eq!((none.status, none.body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("channels")));
    let unknown = client
        .call(Method::POST, &format!("/receipts/{}/resend", "ab".repeat(32)), Some(json!({"channels": ["sms"]})))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);

    let service = client
        .call(Method::PUT, "/services/mensa", Some(json!({"name": "Mensa", "tariff": "4.50", "reminders": [0, 3, -3]})))
        .await;
    assert_eq!(service.status, StatusCode::OK, "{}", service.body);
    assert_eq!(service.body["reminders"], json!([3, 0, -3]));
    let too_far = client.call(Method::PUT, "/services/mensa", Some(json!({"name": "Mensa", "reminders": [500]}))).await;
    assert_eq!((too_far.status, too_far.body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("reminders")));
    let families = client.call(Method::GET, "/families?limit=50", None).await.body;
    let id = families["families"][0]["id"].as_str().unwrap().to_string();
    let contacts =
        json!({"email": "genitore@example.org", "phone": "+39 333 1234567", "notify": "sms", "language": "en"});
    let changed = client.call(Method::PUT, &format!("/families/{id}/contacts"), Some(contacts)).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(
        (&changed.body["payer"]["email"], &changed.body["payer"]["notify"], &changed.body["payer"]["language"]),
        (&json!("genitore@example.org"), &json!("sms"), &json!("en"))
    );
    let reread = client.call(Method::GET, &format!("/families/{id}"), None).await.body;
    assert_eq!(reread["payer"]["notify"], "sms");
    let bad = client
        .call(
            Method::PUT,
            &format!("/families/{id}/contacts"),
            Some(json!({"email": "not an address", "notify": "sms"})),
        )
        .await;
    assert_eq!((bad.status, bad.body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("email")), "{}", bad.body);
    let bad_choice =
        client.call(Method::PUT, &format!("/families/{id}/contacts"), Some(json!({"notify": "pigeon"}))).await;
    assert_eq!(bad_choice.status, StatusCode::BAD_REQUEST, "{}", bad_choice.body);
    assert_eq!(
        client.call(Method::GET, &format!("/families/{id}"), None).await.body["payer"]["notify"],
        "sms",
        "nothing half-written"
    );
    let nobody = client.call(Method::PUT, &format!("/families/{}/contacts", "ab".repeat(16)), Some(json!({}))).await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND, "{}", nobody.body);

    let listed = client.call(Method::GET, "/services", None).await.body;
    let mensa = listed["services"].as_array().unwrap().iter().find(|s| s["id"] == "mensa").unwrap().clone();
    assert_eq!(mensa["reminders"], json!([3, 0, -3]));
}

#[test]
fn saldo_outbox_lists_filters_and_retries_from_the_command_line() {
    let hub = hub();
    let data = hub.dir.to_str().unwrap();
    let listed = common::ok(&["outbox", "list", "--data", data]);
    assert!(listed.contains("queued 6  failing 0  sent 1  given up 1"), "{listed}");
    let given_up = common::ok(&["outbox", "list", "--data", data, "--state", "given-up", "--json"]);
    let given_up: Value = serde_json::from_str(&given_up).unwrap();
    assert_eq!(given_up["messages"].as_array().unwrap().len(), 1);
    let retried = common::ok(&["outbox", "retry", "--data", data, "1"]);
    assert!(retried.contains("queued again"), "{retried}");
    let refused = common::saldo(&["outbox", "retry", "--data", data, "2"]);
    assert!(!refused.status.success());
    let error = String::from_utf8_lossy(&refused.stderr);
    assert!(error.contains("sent already"), "{error}");
    let unknown = common::saldo(&["outbox", "list", "--data", data, "--state", "lost"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("queued, failing, sent or given-up"));
    let set =
        common::ok(&["services", "set", "--data", data, "--name", "Mensa", "--tariff", "5", "--reminders", "3,0,-3"]);
    assert!(set.contains("reminders at 3,0,-3 left"), "{set}");
}
