//! The HTTP API through its real router over real SQLite nodes: every
//! route's success path, every role's refusals (the routes read from the
//! OpenAPI document, so a route added without a role check fails here),
//! CSRF, the login rate limit, bad input answered 4xx naming the field with
//! nothing written, and idempotent top-ups.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use saldo_node::http::router;
use saldo_node::node::Password;
use saldo_node::service::Service;
use saldo_node::{Node, generate, import};
use saldo_sync::{
    Amount, AuthorId, Balance, DeviceKey, Label, OfflineLimits, OperatorLogin, OperatorRole, PersonName, Role,
};
use serde_json::{Value, json};
use tower::ServiceExt as _;

mod common;
#[path = "http/outbox.rs"]
mod outbox;
#[path = "http/reports.rs"]
mod reports;

/// A realm on disk: the hub with 30 generated children and its operators,
/// and one cash point holding the hub's log, with its cashier.
struct Realm {
    _tmp: tempfile::TempDir,
    hub_dir: PathBuf,
    cash_point_dir: PathBuf,
}

const PASSWORD: &str = "correct horse battery";

fn label(text: &str) -> Label {
    Label::parse(text).unwrap()
}

fn add_operator(node: &mut Node, login: &str, role: OperatorRole, cash_point: Option<AuthorId>) {
    node.add_operator(
        &OperatorLogin::parse(login).unwrap(),
        &PersonName::parse("Anna Bianchi").unwrap(),
        role,
        cash_point,
        &Password::parse(PASSWORD).unwrap(),
    )
    .unwrap();
}

impl Realm {
    fn new() -> Realm {
        let tmp = tempfile::tempdir().unwrap();
        let hub_dir = tmp.path().join("hub");
        let cash_point_dir = tmp.path().join("cash-point");
        let mut hub = Node::init_realm(&hub_dir, &label("Comune di Prova")).unwrap();
        let mut csv = Vec::new();
        generate::write_csv(&mut csv, 30, 7).unwrap();
        let report = import::import_csv(&mut hub, csv.as_slice(), &|_, _| {}).unwrap();
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        let key = DeviceKey::generate();
        let cash_point = key.author();
        let limits = OfflineLimits {
            per_operation: Amount::parse("500").unwrap(),
            unconfirmed_total: Balance::parse("5000").unwrap(),
            offline_secs_max: 86_400,
        };
        hub.enrol(cash_point, Role::CashPoint, &label("Edicola Centrale"), limits).unwrap();
        add_operator(&mut hub, "admin.a", OperatorRole::Administrator, None);
        add_operator(&mut hub, "clerk.c", OperatorRole::Clerk, None);
        add_operator(&mut hub, "cashier.k", OperatorRole::Cashier, Some(cash_point));
        let mut device = Node::join(&cash_point_dir, hub.realm(), key).unwrap();
        // What the hub shares with a device: its own log (not the contacts key's).
        let hub_log: Vec<Vec<u8>> = hub.operations_of(&hub.realm().hub()).unwrap();
        for result in device.ingest(&hub_log).unwrap() {
            result.unwrap();
        }
        Realm { _tmp: tmp, hub_dir, cash_point_dir }
    }

    fn hub(&self) -> Client {
        Client::new(&self.hub_dir)
    }

    fn cash_point(&self) -> Client {
        Client::new(&self.cash_point_dir)
    }
}

/// One browser: the router of one node, its session cookie and CSRF token.
struct Client {
    app: Router,
    service: Service,
    cookie: Option<String>,
    csrf: Option<String>,
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Client {
    fn new(dir: &Path) -> Client {
        let service = Service::open(dir).unwrap();
        Client { app: router(service.clone(), false), service, cookie: None, csrf: None }
    }

    /// Another browser on the same node (the same running process).
    fn another_browser(&self) -> Client {
        Client { app: self.app.clone(), service: self.service.clone(), cookie: None, csrf: None }
    }

    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        if headers.get(header::CONTENT_TYPE).is_some_and(|t| t.as_bytes().starts_with(b"text/event-stream")) {
            // An event stream never ends: its first event is enough here.
            let mut body = response.into_body().into_data_stream();
            let first = tokio_stream::StreamExt::next(&mut body).await.unwrap().unwrap().to_vec();
            return Answer { status, headers, body: first };
        }
        let body = axum::body::to_bytes(response.into_body(), 16 << 20).await.unwrap().to_vec();
        Answer { status, headers, body }
    }

    fn request(&self, method: Method, path: &str) -> axum::http::request::Builder {
        let mut builder = Request::builder().method(method).uri(format!("/api/v1{path}"));
        if let Some(cookie) = &self.cookie {
            builder = builder.header(header::COOKIE, cookie);
        }
        if let Some(csrf) = &self.csrf {
            builder = builder.header("x-csrf-token", csrf);
        }
        builder
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(self.request(Method::GET, path).body(Body::empty()).unwrap()).await
    }

    async fn call(&self, method: Method, path: &str, body: &Value, headers: &[(&str, &str)]) -> Answer {
        let mut builder = self.request(method, path).header(header::CONTENT_TYPE, "application/json");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        self.send(builder.body(Body::from(body.to_string())).unwrap()).await
    }

    async fn post(&self, path: &str, body: &Value) -> Answer {
        self.call(Method::POST, path, body, &[]).await
    }

    async fn log_in(&mut self, login: &str) -> Value {
        let answer = self.post("/session", &json!({"login": login, "password": PASSWORD})).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        let cookie = answer.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap().to_string();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
        self.cookie = Some(cookie.split(';').next().unwrap().to_string());
        let me = answer.json();
        self.csrf = Some(me["csrf_token"].as_str().unwrap().to_string());
        me
    }

    /// Everything the node's database holds: to show that a refusal wrote nothing.
    async fn dump(&self) -> Vec<String> {
        self.service.dump().await.unwrap()
    }
}

/// Two children of one family with a canteen wallet, and a child of another.
async fn family(client: &Client) -> (Value, Value, Value) {
    for prefix in ["ro", "ma", "ri", "co", "ga", "fe", "ba", "be", "gi", "de", "sa", "pa", "mo", "ca", "lo", "bi"] {
        let found = client.get(&format!("/consumers?q={prefix}&limit=50")).await.json();
        for c in found["consumers"].as_array().unwrap() {
            let detail = client.get(&format!("/consumers/{}", c["consumer"].as_str().unwrap())).await.json();
            if let Some(sibling) = detail["siblings"].as_array().unwrap().first() {
                let sibling = client.get(&format!("/consumers/{}", sibling["consumer"].as_str().unwrap())).await.json();
                let family = detail["summary"]["family"].clone();
                let other = found["consumers"].as_array().unwrap().iter().find(|o| o["family"] != family).cloned();
                if let Some(other) = other
                    && !detail["wallets"].as_array().unwrap().is_empty()
                    && !sibling["wallets"].as_array().unwrap().is_empty()
                {
                    return (detail, sibling, other);
                }
            }
        }
    }
    panic!("the generated realm has no family with two children");
}

fn top_up_body(lines: &[(&Value, &str)]) -> Value {
    let lines: Vec<Value> = lines
        .iter()
        .map(|(consumer, amount)| {
            let id = consumer["summary"]["consumer"].as_str().or(consumer["consumer"].as_str()).unwrap();
            let service = consumer["wallets"][0]["service"].as_str().unwrap_or("mensa");
            json!({"consumer": id, "service": service, "amount": amount})
        })
        .collect();
    json!({"lines": lines, "method": "cash"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cashier_tops_up_two_siblings_on_one_receipt_once_however_often_the_request_is_sent() {
    let realm = Realm::new();
    let mut cash_point = realm.cash_point();
    let me = cash_point.log_in("cashier.k").await;
    assert_eq!(me["role"], "cashier");
    assert_eq!(me["node"], "cash_point");
    assert_eq!(me["cash_point"], "Edicola Centrale");
    assert_eq!(cash_point.get("/session").await.json()["login"], "cashier.k");
    let (first, second, _) = family(&cash_point).await;
    let body = top_up_body(&[(&first, "20,00".replace(',', ".").as_str()), (&second, "15.00")]);
    let key = [("idempotency-key", "3f1c2d9e-8a7b-4c6d-9e0f-112233445566")];
    let answer = cash_point.call(Method::POST, "/topups", &body, &key).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let receipt = answer.json();
    assert_eq!(receipt["realm"], "Comune di Prova", "a cash point's receipt names its realm");
    assert_eq!(receipt["cash_point"], "Edicola Centrale");
    assert_eq!(receipt["operator"], "Anna Bianchi");
    assert_eq!(receipt["total"], "35.00");
    assert_eq!(receipt["provisional"], true);
    assert_eq!(receipt["lines"].as_array().unwrap().len(), 2);
    assert!(receipt["verification_url"].as_str().unwrap().contains("/v/"));
    let before = cash_point.dump().await;
    // The Wi-Fi dropped before the answer came: the till sends it again.
    let again = cash_point.call(Method::POST, "/topups", &body, &key).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text());
    assert_eq!(again.json()["operation"], receipt["operation"]);
    assert_eq!(again.json()["receipt_number"], receipt["receipt_number"]);
    assert_eq!(cash_point.dump().await, before, "a retried request records nothing");
    // The same key for another request is refused.
    let other = top_up_body(&[(&first, "1.00")]);
    let clash = cash_point.call(Method::POST, "/topups", &other, &key).await;
    assert_eq!(clash.status, StatusCode::CONFLICT, "{}", clash.text());
    assert_eq!(cash_point.dump().await, before);
    // The receipt reads back, as JSON, text and HTML.
    let op = receipt["operation"].as_str().unwrap();
    assert_eq!(cash_point.get(&format!("/receipts/{op}")).await.json(), receipt);
    let text = cash_point.get(&format!("/receipts/{op}?format=text&width=32")).await;
    assert_eq!(text.status, StatusCode::OK);
    assert!(text.text().lines().all(|l| l.chars().count() <= 32), "{}", text.text());
    assert!(text.text().contains("35,00"), "{}", text.text());
    let html = cash_point.get(&format!("/receipts/{op}?format=html&paper=80mm")).await;
    assert!(html.text().contains("<svg"), "the HTML receipt carries its QR code");
    // The balances show it, provisional.
    let detail = cash_point.get(&format!("/consumers/{}", first["summary"]["consumer"].as_str().unwrap())).await.json();
    let wallet = &detail["wallets"][0];
    assert_ne!(wallet["provisional"], wallet["confirmed"]);
    assert_eq!(wallet["movements"][0]["status"], "provisional");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_answered_4xx_naming_the_field_and_writes_nothing() {
    let realm = Realm::new();
    let mut cash_point = realm.cash_point();
    cash_point.log_in("cashier.k").await;
    let (first, second, other) = family(&cash_point).await;
    let before = cash_point.dump().await;
    let key = [("idempotency-key", "a-key-for-bad-requests")];
    let consumer = first["summary"]["consumer"].as_str().unwrap();
    let line = |amount: Value| json!({"lines": [{"consumer": consumer, "service": first["wallets"][0]["service"], "amount": amount}], "method": "cash"});
    for (amount, what) in [
        (json!("12.345"), "two decimals"),
        (json!("-5"), "amount"),
        (json!("0"), "amount"),
        (json!("1e3"), "amount"),
        (json!(12.5), "amount"),
    ] {
        let answer = cash_point.call(Method::POST, "/topups", &line(amount.clone()), &key).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{amount}: {}", answer.text());
        let error = answer.json();
        assert_eq!(error["kind"], "invalid_input");
        assert_eq!(error["field"], "lines[0].amount", "{amount}: {error}");
        assert!(!error["message"].as_str().unwrap().is_empty(), "{what}");
    }
    // Malformed JSON, wrong types, unknown consumer, another family on the receipt.
    let raw = cash_point
        .send(
            cash_point
                .request(Method::POST, "/topups")
                .header(header::CONTENT_TYPE, "application/json")
                .header("idempotency-key", "a-key-for-bad-requests")
                .body(Body::from("{\"lines\": [}"))
                .unwrap(),
        )
        .await;
    assert_eq!(raw.status, StatusCode::BAD_REQUEST);
    assert!(raw.json()["message"].as_str().unwrap().contains("not valid JSON"), "{}", raw.text());
    let wrong_type = cash_point.call(Method::POST, "/topups", &json!({"lines": "all", "method": "cash"}), &key).await;
    assert_eq!(wrong_type.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong_type.json()["field"], "lines");
    let unknown = json!({"lines": [{"consumer": "00112233445566778899aabbccddeeff", "service": "mensa", "amount": "5"}], "method": "cash"});
    let answer = cash_point.call(Method::POST, "/topups", &unknown, &key).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    assert_eq!(answer.json()["field"], "lines[0].consumer");
    let mixed = top_up_body(&[(&first, "5"), (&other, "5")]);
    let answer = cash_point.call(Method::POST, "/topups", &mixed, &key).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    assert_eq!(answer.json()["field"], "lines[1].consumer");
    assert!(answer.json()["message"].as_str().unwrap().contains("family"), "{}", answer.text());
    // No idempotency key, an unknown PAN searched, an oversized body.
    let no_key = cash_point.post("/topups", &top_up_body(&[(&second, "5")])).await;
    assert_eq!(no_key.status, StatusCode::BAD_REQUEST);
    assert_eq!(no_key.json()["field"], "Idempotency-Key");
    let pan = cash_point.get("/consumers?q=4111111111111111").await;
    assert_eq!(pan.status, StatusCode::OK);
    assert_eq!(pan.json()["consumers"].as_array().unwrap().len(), 0);
    let bad_pan = cash_point.get("/consumers?q=4111111111111112").await;
    assert_eq!(bad_pan.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_pan.json()["field"], "q");
    let huge = json!({"lines": [], "method": "x".repeat(5 << 20)});
    let answer = cash_point.call(Method::POST, "/topups", &huge, &key).await;
    assert!(answer.status.is_client_error(), "{}", answer.status);
    assert_eq!(cash_point.dump().await, before, "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_need_their_csrf_token_and_logins_are_rate_limited() {
    let realm = Realm::new();
    let mut hub = realm.hub();
    hub.log_in("clerk.c").await;
    let (first, _, _) = family(&hub).await;
    let body = top_up_body(&[(&first, "5")]);
    let csrf = hub.csrf.take();
    let answer = hub.call(Method::POST, "/topups", &body, &[("idempotency-key", "csrf-test-key-1")]).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.text());
    assert!(answer.json()["message"].as_str().unwrap().contains("x-csrf-token"), "{}", answer.text());
    hub.csrf = Some("not the token".into());
    let answer = hub.call(Method::POST, "/topups", &body, &[("idempotency-key", "csrf-test-key-2")]).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    hub.csrf = csrf;
    let answer = hub.call(Method::POST, "/topups", &body, &[("idempotency-key", "csrf-test-key-3")]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    // Logged out, the cookie opens nothing.
    let answer = hub.send(hub.request(Method::DELETE, "/session").body(Body::empty()).unwrap()).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert_eq!(hub.get("/session").await.status, StatusCode::UNAUTHORIZED);
    // Wrong passwords on one account: refused, then too many.
    let fresh = realm.hub();
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(fresh.post("/session", &json!({"login": "admin.a", "password": "wrong password"})).await.status);
    }
    assert!(statuses[..5].iter().all(|s| *s == StatusCode::UNAUTHORIZED), "{statuses:?}");
    assert_eq!(statuses[6], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    // A cashier does not log in at the hub; a clerk's account is not at the cash point.
    let answer = realm.hub().post("/session", &json!({"login": "cashier.k", "password": PASSWORD})).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.text());
    let answer = realm.cash_point().post("/session", &json!({"login": "clerk.c", "password": PASSWORD})).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.text());
}

/// What an operation of the OpenAPI document allows: its method, path and
/// the roles of its security scopes (none: public).
fn operations(doc: &Value) -> Vec<(Method, String, Vec<String>)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let roles: Vec<String> = operation["security"]
                .as_array()
                .map(|s| {
                    s.iter()
                        .flat_map(|r| r["session"].as_array().cloned().unwrap_or_default())
                        .map(|r| r.as_str().unwrap().to_string())
                        .collect()
                })
                .unwrap_or_default();
            out.push((method, path.clone(), roles));
        }
    }
    out
}

/// A path of the document with its parameters filled by something of the right shape.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    for part in path.split('/') {
        if !out.is_empty() || !part.is_empty() {
            out.push('/');
        }
        if part.starts_with('{') {
            out.push_str(&"ab".repeat(32));
        } else {
            out.push_str(part);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_of_the_openapi_document_checks_the_role_of_whoever_calls_it() {
    let realm = Realm::new();
    let hub = realm.hub();
    let doc = hub.get("/openapi.json").await.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "OpenAPI 3.1");
    let operations = operations(&doc);
    assert!(operations.len() >= 8, "{operations:?}");
    let mut sessions = Vec::new();
    for (login, role, at_hub) in
        [("admin.a", "administrator", true), ("clerk.c", "clerk", true), ("cashier.k", "cashier", false)]
    {
        let mut client = if at_hub { realm.hub() } else { realm.cash_point() };
        client.log_in(login).await;
        sessions.push((role, client));
    }
    let anonymous = realm.hub();
    for (method, path, roles) in &operations {
        if roles.is_empty() {
            continue; // public: the verification of receipts
        }
        let uri = concrete(path);
        let answer = anonymous.call(method.clone(), &uri, &json!({}), &[("idempotency-key", "role-check-key")]).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{method} {path} without a session: {}", answer.text());
        for (role, client) in &sessions {
            if path == "/session" && *method == Method::DELETE {
                continue; // would end the session the next routes use
            }
            let answer = client.call(method.clone(), &uri, &json!({}), &[("idempotency-key", "role-check-key")]).await;
            if roles.iter().any(|r| r == role) {
                assert!(
                    answer.status != StatusCode::FORBIDDEN && answer.status != StatusCode::UNAUTHORIZED,
                    "{method} {path} refused {role}, which the document allows: {}",
                    answer.text()
                );
            } else {
                assert_eq!(answer.status, StatusCode::FORBIDDEN, "{method} {path} let {role} in: {}", answer.text());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_route_and_the_public_verification_says_genuine() {
    let realm = Realm::new();
    let mut hub = realm.hub();
    hub.log_in("clerk.c").await;
    let doc = hub.get("/openapi.json").await.json();
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    for expected in [
        "/session",
        "/consumers",
        "/consumers/{consumer}",
        "/topups",
        "/receipts/{operation}",
        "/status",
        "/events",
        "/verify/{code}",
        "/families",
        "/families/{family}",
        "/families/import",
        "/services",
        "/services/{service}",
        "/cash-points",
        "/cash-points/tokens",
        "/cash-points/{device}/limits",
        "/cash-points/{device}/escrow",
        "/cash-points/{device}/revoke",
        "/flagged",
        "/flagged/{operation}/review",
        "/bundle",
        "/bundles",
        "/bundles/export",
        "/operators",
        "/operators/{login}",
    ] {
        assert!(paths.iter().any(|p| *p == expected), "{expected} is not in the document: {paths:?}");
    }
    let (first, _, _) = family(&hub).await;
    let receipt = hub
        .call(Method::POST, "/topups", &top_up_body(&[(&first, "7.50")]), &[("idempotency-key", "verify-test-key")])
        .await
        .json();
    let code = receipt["verification_code"].as_str().unwrap();
    assert!(code.len() <= 24, "short: {code}");
    let public = realm.hub();
    let verification = public.get(&format!("/verify/{code}")).await.json();
    assert_eq!(verification["genuine"], true);
    assert_eq!(verification["state"], "accepted", "the hub records and accepts its own top-up");
    assert_eq!(verification["total"], "7.50");
    assert!(verification.get("consumer").is_none(), "nothing personal");
    let forged = public.get(&format!("/verify/{}", "0".repeat(code.len()))).await.json();
    assert_eq!(forged["genuine"], false);
    let status = hub.get("/status").await.json();
    assert_eq!(status["node"], "hub");
    assert_eq!(status["realm_name"], "Comune di Prova");
    assert_eq!(status["online"], true);
    for path in ["/healthz", "/readyz", "/metrics"] {
        let answer = hub.send(Request::builder().uri(path).body(Body::empty()).unwrap()).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
    }
    let metrics = hub.send(Request::builder().uri("/metrics").body(Body::empty()).unwrap()).await.text();
    assert!(metrics.contains("saldo_http_requests"), "{metrics}");
}

/// The operations a node's own key signed, read with the node stopped.
fn own_log(dir: &Path) -> Vec<Vec<u8>> {
    let mut node = Node::open(dir).unwrap();
    let me = node.author().unwrap();
    node.operations_of(&me).unwrap()
}

/// Brings a cash point's log to the hub (as a sync would) and returns what
/// the hub flagged.
fn hub_ingests(realm: &Realm) -> Vec<String> {
    let log = own_log(&realm.cash_point_dir);
    let mut hub = Node::open(&realm.hub_dir).unwrap();
    for result in hub.ingest(&log).unwrap() {
        result.unwrap();
    }
    hub.flagged(100).unwrap().into_iter().map(|f| format!("{} {}: {}", f.kind, f.reason, f.detail)).collect()
}

fn wallet_of(consumer: &Value) -> Value {
    let id = consumer["summary"]["consumer"].as_str().or(consumer["consumer"].as_str()).unwrap();
    json!({"consumer": id, "service": consumer["wallets"][0]["service"]})
}

async fn confirmed(client: &Client, consumer: &Value) -> String {
    let id = consumer["summary"]["consumer"].as_str().unwrap();
    let detail = client.get(&format!("/consumers/{id}")).await.json();
    let service = &consumer["wallets"][0]["service"];
    let wallet = detail["wallets"].as_array().unwrap().iter().find(|w| w["service"] == *service).unwrap().clone();
    wallet["confirmed"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cashier_takes_a_due_reverses_a_top_up_closes_the_day_and_remits_its_cash_and_the_hub_agrees() {
    let realm = Realm::new();
    let mut cash_point = realm.cash_point();
    cash_point.log_in("cashier.k").await;
    let (first, second, _) = family(&cash_point).await;
    let key = |k: &str| [("idempotency-key", format!("money-test-{k}"))];
    let post = async |client: &Client, path: &str, body: &Value, k: &str| {
        let headers = key(k);
        client.call(Method::POST, path, body, &[(headers[0].0, headers[0].1.as_str())]).await
    };
    // A top-up in cash, then a due paid by debit card.
    let kept = post(&cash_point, "/topups", &top_up_body(&[(&first, "20.00")]), "topup-kept").await.json();
    let due =
        json!({"due": "Scuolabus T1 2026", "wallet": wallet_of(&second), "amount": "120.00", "method": "debit_card"});
    let answer = post(&cash_point, "/due-payments", &due, "due-1").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let paid = answer.json();
    assert_eq!(paid["kind"], "due_payment");
    assert_eq!(paid["due"], "Scuolabus T1 2026");
    assert_eq!(paid["total"], "120.00");
    assert_eq!(paid["method"], "debit_card");
    assert_eq!(paid["operator"], "Anna Bianchi");
    assert_eq!(paid["provisional"], true);
    assert_eq!(paid["receipt_number"].as_u64(), kept["receipt_number"].as_u64().map(|n| n + 1));
    let before = cash_point.dump().await;
    assert_eq!(
        post(&cash_point, "/due-payments", &due, "due-1").await.json(),
        paid,
        "a retry answers the same receipt"
    );
    assert_eq!(cash_point.dump().await, before, "and records nothing");
    let twice = post(&cash_point, "/due-payments", &due, "due-2").await;
    assert_eq!(twice.status, StatusCode::BAD_REQUEST, "{}", twice.text());
    assert_eq!(twice.json()["field"], "due");
    assert!(twice.json()["message"].as_str().unwrap().contains("paid already"), "{}", twice.text());
    for (bad, field) in [
        (json!({"due": "T1", "wallet": wallet_of(&second), "amount": "12.345", "method": "cash"}), "amount"),
        (json!({"due": "T1", "wallet": wallet_of(&second), "amount": "5", "method": "other"}), "method"),
        (
            json!({"due": "T1", "wallet": {"consumer": "00112233445566778899aabbccddeeff", "service": "mensa"}, "amount": "5", "method": "cash"}),
            "wallet.consumer",
        ),
    ] {
        let answer = post(&cash_point, "/due-payments", &bad, "due-bad").await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}: {}", answer.text());
        assert_eq!(answer.json()["field"], field, "{bad}: {}", answer.text());
    }
    assert_eq!(cash_point.dump().await, before, "bad requests write nothing");
    // A top-up reversed the same day: the reversal's receipt, and the
    // reversed receipt naming it.
    let undone = post(&cash_point, "/topups", &top_up_body(&[(&second, "10.00")]), "topup-undone").await.json();
    let reversal = json!({"operation": undone["operation"], "reason": "wrong child"});
    let answer = post(&cash_point, "/reversals", &reversal, "reversal-1").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let storno = answer.json();
    assert_eq!(storno["kind"], "reversal");
    assert_eq!(storno["reverses"]["operation"], undone["operation"]);
    assert_eq!(storno["receipt_number"], undone["receipt_number"]);
    assert_eq!(storno["reason"], "wrong child");
    assert_eq!(storno["total"], "10.00");
    let before = cash_point.dump().await;
    assert_eq!(post(&cash_point, "/reversals", &reversal, "reversal-1").await.json(), storno);
    assert_eq!(cash_point.dump().await, before);
    let reread = cash_point.get(&format!("/receipts/{}", undone["operation"].as_str().unwrap())).await.json();
    assert_eq!(reread["reversed_by"]["operation"], storno["operation"]);
    let text = cash_point.get(&format!("/receipts/{}?format=text", storno["operation"].as_str().unwrap())).await;
    assert_eq!(text.status, StatusCode::OK, "{}", text.text());
    for (body, refusal) in
        [(reversal.clone(), "reversed already"), (json!({"operation": paid["operation"], "reason": "no"}), "refund")]
    {
        let answer = post(&cash_point, "/reversals", &body, "reversal-2").await;
        assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.text());
        assert!(answer.json()["message"].as_str().unwrap().contains(refusal), "{}", answer.text());
    }
    assert_eq!(cash_point.dump().await, before);
    // The day, read before it is closed, then closed: two receipts count
    // (the reversed one does not), per method, and the reversal.
    let preview = cash_point.get("/daily-close").await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.text());
    let preview = preview.json();
    assert_eq!(preview["operation"], Value::Null);
    assert_eq!(preview["count"], 2);
    assert_eq!(preview["total"], "140.00");
    assert_eq!(preview["first_receipt"], kept["receipt_number"]);
    assert_eq!(preview["last_receipt"], undone["receipt_number"]);
    assert_eq!(preview["reversals"], 1);
    assert_eq!(preview["reversals_total"], "10.00");
    let methods = preview["per_method"].as_array().unwrap();
    assert!(methods.contains(&json!({"method": "cash", "count": 1, "total": "20.00"})), "{methods:?}");
    assert!(methods.contains(&json!({"method": "debit_card", "count": 1, "total": "120.00"})), "{methods:?}");
    assert_eq!(cash_point.dump().await, before, "reading the day records nothing");
    let early = post(&cash_point, "/remittances", &json!({"amount": "20.00", "reference": "CRO 1"}), "remit-1").await;
    assert_eq!(early.status, StatusCode::CONFLICT, "{}", early.text());
    assert!(early.json()["message"].as_str().unwrap().contains("close the day first"), "{}", early.text());
    for (query, what) in
        [("?day=20991231", "still to come"), ("?day=2026", "YYYYMMDD"), ("?day=20260231", "no such day")]
    {
        let answer = post(&cash_point, &format!("/daily-close{query}"), &json!({}), "close-bad").await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{query}: {}", answer.text());
        assert_eq!(answer.json()["field"], "day");
        assert!(answer.json()["message"].as_str().unwrap().contains(what), "{query}: {}", answer.text());
    }
    assert_eq!(cash_point.dump().await, before);
    let answer = post(&cash_point, "/daily-close", &json!({}), "close-1").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let close = answer.json();
    assert!(close["operation"].is_string());
    let mut expected = preview.clone();
    expected["operation"] = close["operation"].clone();
    assert_eq!(close, expected, "the close records what the preview showed");
    let before = cash_point.dump().await;
    assert_eq!(post(&cash_point, "/daily-close", &json!({}), "close-1").await.json(), close);
    assert_eq!(cash_point.get(&format!("/daily-close?day={}", close["day"])).await.json(), close);
    let again = post(&cash_point, "/daily-close", &json!({}), "close-2").await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text());
    assert!(again.json()["message"].as_str().unwrap().contains("closed already"), "{}", again.text());
    // After the close, no reversal of the day's top-ups.
    let late =
        post(&cash_point, "/reversals", &json!({"operation": kept["operation"], "reason": "late"}), "reversal-3").await;
    assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.text());
    assert!(late.json()["message"].as_str().unwrap().contains("closed"), "{}", late.text());
    // The remittance hands over the cash of the closed day, to the cent.
    let wrong = post(&cash_point, "/remittances", &json!({"amount": "25.00", "reference": "CRO 1"}), "remit-1").await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.text());
    assert_eq!(wrong.json()["field"], "amount");
    assert!(wrong.json()["message"].as_str().unwrap().contains("20.00"), "{}", wrong.text());
    assert_eq!(cash_point.dump().await, before);
    let remit = json!({"amount": "20.00", "reference": "CRO 1"});
    let answer = post(&cash_point, "/remittances", &remit, "remit-2").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let remitted = answer.json();
    assert_eq!(remitted["first_receipt"], kept["receipt_number"]);
    assert_eq!(remitted["last_receipt"], undone["receipt_number"]);
    assert_eq!(remitted["amount"], "20.00");
    assert_eq!(remitted["reference"], "CRO 1");
    let before = cash_point.dump().await;
    assert_eq!(post(&cash_point, "/remittances", &remit, "remit-2").await.json(), remitted);
    assert_eq!(cash_point.dump().await, before);
    let nothing = post(&cash_point, "/remittances", &remit, "remit-3").await;
    assert_eq!(nothing.status, StatusCode::CONFLICT, "{}", nothing.text());
    // The hub, given the cash point's log, accepts all of it: the close's
    // and the remittance's figures are the ones it counts.
    drop(cash_point);
    let flagged = hub_ingests(&realm);
    assert!(flagged.is_empty(), "the hub flagged: {flagged:?}");
}

/// A clock a fixed time in the past.
#[derive(Debug)]
struct Behind(u64);

impl saldo_node::node::Clock for Behind {
    fn now_ms(&self) -> u64 {
        saldo_node::node::wall_now_ms() - self.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reversal_is_refused_for_yesterdays_top_up_and_for_another_cash_points() {
    let realm = Realm::new();
    let mut cash_point = realm.cash_point();
    cash_point.log_in("cashier.k").await;
    let (first, _, _) = family(&cash_point).await;
    // Yesterday (26 hours ago), the cash point recorded a top-up.
    let request: saldo_api::payments::TopUpRequest = serde_json::from_value(top_up_body(&[(&first, "8.00")])).unwrap();
    let yesterday = {
        let mut node =
            Node::open(&realm.cash_point_dir).unwrap().with_clock(std::sync::Arc::new(Behind(26 * 3_600_000)));
        node.record_top_up_request(&request, None, None, "").unwrap()
    };
    let before = cash_point.dump().await;
    let body = json!({"operation": yesterday.operation.to_hex(), "reason": "wrong amount"});
    let answer = cash_point.call(Method::POST, "/reversals", &body, &[("idempotency-key", "old-key-1")]).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.text());
    let message = answer.json()["message"].as_str().unwrap().to_string();
    assert!(message.contains("only the day it was recorded") && message.contains("refund"), "{message}");
    assert_eq!(cash_point.dump().await, before, "nothing written");
    // Today's top-up at the cash point reaches the hub; the office cannot reverse it.
    let today = cash_point
        .call(Method::POST, "/topups", &top_up_body(&[(&first, "9.00")]), &[("idempotency-key", "today-key-1")])
        .await
        .json();
    drop(cash_point);
    assert!(hub_ingests(&realm).is_empty());
    let mut hub = realm.hub();
    hub.log_in("clerk.c").await;
    let before = hub.dump().await;
    let body = json!({"operation": today["operation"], "reason": "asked by the family"});
    let answer = hub.call(Method::POST, "/reversals", &body, &[("idempotency-key", "office-1")]).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.text());
    let message = answer.json()["message"].as_str().unwrap().to_string();
    assert!(message.contains("Edicola Centrale") && message.contains("refund"), "{message}");
    let unknown = json!({"operation": "ab".repeat(32), "reason": "x"});
    let answer = hub.call(Method::POST, "/reversals", &unknown, &[("idempotency-key", "office-2")]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    assert_eq!(answer.json()["field"], "operation");
    assert_eq!(hub.dump().await, before, "nothing written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_office_transfers_between_siblings_and_refunds_a_family_never_across_families() {
    let realm = Realm::new();
    let mut hub = realm.hub();
    hub.log_in("clerk.c").await;
    let (first, second, other) = family(&hub).await;
    let top_up = hub
        .call(Method::POST, "/topups", &top_up_body(&[(&first, "30.00")]), &[("idempotency-key", "office-t-1")])
        .await;
    assert_eq!(top_up.status, StatusCode::OK, "{}", top_up.text());
    let cents = |text: String| Balance::parse(&text).unwrap().minor();
    let (first_before, second_before) = (cents(confirmed(&hub, &first).await), cents(confirmed(&hub, &second).await));
    let transfer = json!({"from": wallet_of(&first), "to": wallet_of(&second), "amount": "10.00", "reason": "sibling"});
    let answer = hub.call(Method::POST, "/transfers", &transfer, &[("idempotency-key", "office-tr-1")]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let recorded = answer.json();
    assert!(recorded["operation"].is_string());
    let before = hub.dump().await;
    assert_eq!(
        hub.call(Method::POST, "/transfers", &transfer, &[("idempotency-key", "office-tr-1")]).await.json(),
        recorded
    );
    assert_eq!(hub.dump().await, before, "a retry records nothing");
    assert_eq!(cents(confirmed(&hub, &first).await), first_before - 1_000);
    assert_eq!(cents(confirmed(&hub, &second).await), second_before + 1_000);
    // Refused, writing nothing: another family, more than the wallet holds,
    // the same wallet, a bad amount.
    let across = json!({"from": wallet_of(&first), "to": wallet_of(&other), "amount": "1.00", "reason": "x"});
    let answer = hub.call(Method::POST, "/transfers", &across, &[("idempotency-key", "office-tr-2")]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    assert_eq!(answer.json()["field"], "to.consumer");
    assert!(answer.json()["message"].as_str().unwrap().contains("family"), "{}", answer.text());
    let too_much = json!({"from": wallet_of(&first), "to": wallet_of(&second), "amount": "4000.00", "reason": "x"});
    let answer = hub.call(Method::POST, "/transfers", &too_much, &[("idempotency-key", "office-tr-3")]).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.text());
    assert!(answer.json()["message"].as_str().unwrap().contains("holds"), "{}", answer.text());
    let itself = json!({"from": wallet_of(&first), "to": wallet_of(&first), "amount": "1.00", "reason": "x"});
    let answer = hub.call(Method::POST, "/transfers", &itself, &[("idempotency-key", "office-tr-4")]).await;
    assert_eq!(answer.json()["field"], "to", "{}", answer.text());
    let cents_bad = json!({"from": wallet_of(&first), "to": wallet_of(&second), "amount": "1.005", "reason": "x"});
    let answer = hub.call(Method::POST, "/transfers", &cents_bad, &[("idempotency-key", "office-tr-5")]).await;
    assert_eq!(answer.json()["field"], "amount", "{}", answer.text());
    assert_eq!(hub.dump().await, before, "refusals write nothing");
    // A refund hands money back, once however often it is sent.
    let refund = json!({"wallet": wallet_of(&second), "amount": "5.00", "method": "cash", "reason": "moved away"});
    let answer = hub.call(Method::POST, "/refunds", &refund, &[("idempotency-key", "office-rf-1")]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let refunded = answer.json();
    let before = hub.dump().await;
    assert_eq!(
        hub.call(Method::POST, "/refunds", &refund, &[("idempotency-key", "office-rf-1")]).await.json(),
        refunded
    );
    assert_eq!(hub.dump().await, before);
    assert_eq!(cents(confirmed(&hub, &second).await), second_before + 500);
    let too_much = json!({"wallet": wallet_of(&second), "amount": "4000.00", "method": "cash", "reason": "x"});
    let answer = hub.call(Method::POST, "/refunds", &too_much, &[("idempotency-key", "office-rf-2")]).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.text());
    let other_method = json!({"wallet": wallet_of(&second), "amount": "1.00", "method": "other", "reason": "x"});
    let answer = hub.call(Method::POST, "/refunds", &other_method, &[("idempotency-key", "office-rf-3")]).await;
    assert_eq!(answer.json()["field"], "method", "{}", answer.text());
    // The office neither closes a cash point's day nor remits its cash.
    for path in ["/daily-close", "/remittances"] {
        let answer = hub.call(Method::POST, path, &json!({}), &[("idempotency-key", "close-at-hub")]).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{path}: {}", answer.text());
    }
    assert_eq!(hub.dump().await, before, "refusals write nothing");
}

// ---- the hub's office --------------------------------------------------------

impl Client {
    async fn put(&self, path: &str, body: &Value) -> Answer {
        self.call(Method::PUT, path, body, &[]).await
    }

    async fn patch(&self, path: &str, body: &Value) -> Answer {
        self.call(Method::PATCH, path, body, &[]).await
    }

    /// A body that is not JSON (a CSV file, a bundle), with its content type.
    async fn post_bytes(&self, path: &str, content_type: &str, bytes: Vec<u8>) -> Answer {
        let request = self.request(Method::POST, path).header(header::CONTENT_TYPE, content_type);
        self.send(request.body(Body::from(bytes)).unwrap()).await
    }
}

/// Asserts a 400 naming `field`, and that the node wrote nothing.
async fn refused(client: &Client, answer: Answer, field: &str, before: &[String]) {
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{field}: {}", answer.text());
    let error = answer.json();
    assert_eq!(error["field"], field, "{error}");
    assert!(!error["message"].as_str().unwrap().is_empty());
    assert_eq!(client.dump().await, before, "a refused request ({field}) wrote nothing");
}

/// A generated CSV of one child (seed 99, a family the realm does not have)
/// and two bad rows after it: a wrong codice fiscale, a wrong e-mail.
fn csv_with_two_bad_rows() -> (Vec<u8>, String) {
    let mut csv = Vec::new();
    generate::write_csv(&mut csv, 1, 99).unwrap();
    let text = String::from_utf8(csv).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().to_string();
    let row = lines.next().unwrap().to_string();
    let separator = if header.contains(';') { ';' } else { ',' };
    let columns: Vec<&str> = header.split(separator).collect();
    let cells: Vec<&str> = row.split(separator).collect();
    let with = |column: &str, value: &str| {
        let at = columns.iter().position(|c| *c == column).unwrap();
        let mut cells = cells.clone();
        cells[at] = value;
        cells.join(&separator.to_string())
    };
    let surname = cells[columns.iter().position(|c| *c == "consumer_surname").unwrap()].to_string();
    let body = format!(
        "{header}\n{row}\n{}\n{}\n",
        with("consumer_fiscal_code", "RSSMRA85T10A562X"),
        with("email", "not an address")
    );
    (body.into_bytes(), surname)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_office_lists_and_opens_families_imports_a_csv_naming_each_refused_row_and_sets_services() {
    let realm = Realm::new();
    let mut hub = realm.hub();
    hub.log_in("clerk.c").await;
    // A page of families, then the family of a child found by name.
    let page = hub.get("/families?limit=5").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let page = page.json();
    assert_eq!(page["families"].as_array().unwrap().len(), 5);
    let total = page["total"].as_u64().unwrap();
    assert!(total >= 10, "{page}");
    let rest = hub.get("/families?limit=500&offset=5").await.json();
    assert_eq!(rest["families"].as_array().unwrap().len() as u64, total - 5);
    let (first, second, _) = family(&hub).await;
    let surname = first["summary"]["surname"].as_str().unwrap();
    let found = hub.get(&format!("/families?q={}", &surname[..3].to_lowercase())).await.json();
    let family_id = first["summary"]["family"].as_str().unwrap();
    assert!(found["families"].as_array().unwrap().iter().any(|f| f["id"] == family_id), "{found}");
    let detail = hub.get(&format!("/families/{family_id}")).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.text());
    let detail = detail.json();
    let children: Vec<&Value> = detail["consumers"].as_array().unwrap().iter().map(|c| &c["consumer"]).collect();
    assert!(children.contains(&&first["summary"]["consumer"]) && children.contains(&&second["summary"]["consumer"]));
    assert!(detail["payer"]["fiscal_code"].as_str().unwrap().len() == 16, "{detail}");
    assert!(detail["payer"].get("email").is_some(), "the hub shows the payer's contacts: {detail}");
    // Bad requests: named, nothing written.
    let before = hub.dump().await;
    refused(&hub, hub.get("/families?limit=0").await, "limit", &before).await;
    refused(&hub, hub.get("/families?q=x").await, "q", &before).await;
    refused(&hub, hub.get("/families?q=rossi&offset=5").await, "offset", &before).await;
    refused(&hub, hub.get("/families/not-an-id").await, "family", &before).await;
    let unknown = hub.get(&format!("/families/{}", "0".repeat(32))).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text());

    // The import: the good row goes in, each bad row is named.
    let (csv, new_surname) = csv_with_two_bad_rows();
    refused(&hub, hub.post_bytes("/families/import", "application/json", csv.clone()).await, "Content-Type", &before)
        .await;
    let no_column = b"payer_fiscal_code;payer_surname\nRSSMRA85T10A562S;Rossi\n".to_vec();
    refused(&hub, hub.post_bytes("/families/import", "text/csv", no_column).await, "payer_name", &before).await;
    refused(&hub, hub.post_bytes("/families/import", "text/csv", Vec::new()).await, "body", &before).await;
    let answer = hub.post_bytes("/families/import", "text/csv; charset=utf-8", csv).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let report = answer.json();
    assert_eq!(report["rows"], 3, "{report}");
    assert_eq!(report["accepted_rows"], 1, "{report}");
    assert_eq!(report["families"], 1, "{report}");
    let refused_rows = report["refused"].as_array().unwrap();
    assert_eq!(refused_rows.len(), 2, "{report}");
    assert_eq!(
        (refused_rows[0]["line"].as_u64(), refused_rows[0]["field"].as_str()),
        (Some(3), Some("consumer_fiscal_code"))
    );
    assert_eq!((refused_rows[1]["line"].as_u64(), refused_rows[1]["field"].as_str()), (Some(4), Some("email")));
    assert!(refused_rows[1]["message"].as_str().unwrap().contains("not an address"), "{report}");
    let found = hub.get(&format!("/consumers?q={new_surname}")).await.json();
    assert!(!found["consumers"].as_array().unwrap().is_empty(), "the good row went in");
    assert_eq!(hub.get("/families?limit=1").await.json()["total"].as_u64(), Some(total + 1));

    // Services: everyone reads them, the office sets tariffs and floors.
    let services = hub.get("/services").await.json();
    let service = services["services"][0].clone();
    let id = service["id"].as_str().unwrap().to_string();
    let name = service["name"].as_str().unwrap().to_string();
    let mut cash_point = realm.cash_point();
    cash_point.log_in("cashier.k").await;
    assert_eq!(
        cash_point.get("/services").await.json()["services"].as_array().unwrap().len(),
        services["services"].as_array().unwrap().len()
    );
    let answer = hub.put(&format!("/services/{id}"), &json!({"name": name, "floor": "-20.00", "tariff": "4.50"})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["floor"], "-20.00");
    assert_eq!(answer.json()["tariff"], "4.50");
    let listed = hub.get("/services").await.json();
    let listed = listed["services"].as_array().unwrap().iter().find(|s| s["id"] == id.as_str()).unwrap().clone();
    assert_eq!((listed["floor"].as_str(), listed["tariff"].as_str()), (Some("-20.00"), Some("4.50")));
    let before = hub.dump().await;
    refused(&hub, hub.put(&format!("/services/{id}"), &json!({"name": name, "floor": "5.00"})).await, "floor", &before)
        .await;
    refused(
        &hub,
        hub.put(&format!("/services/{id}"), &json!({"name": name, "tariff": "4.555"})).await,
        "tariff",
        &before,
    )
    .await;
    refused(&hub, hub.put(&format!("/services/{id}"), &json!({"name": "Piscina"})).await, "name", &before).await;
    refused(&hub, hub.put("/services/Not%20An%20Id", &json!({"name": name})).await, "service", &before).await;
    let answer = hub.put(&format!("/services/{id}"), &json!({"name": name, "remove_tariff": true})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert!(answer.json()["tariff"].is_null(), "{}", answer.text());
}

/// The hub's address, as `saldo hub` records it once it runs on the network.
fn hub_has_run(realm: &Realm) -> AuthorId {
    let mut hub = Node::open(&realm.hub_dir).unwrap();
    let id = hub.realm().hub();
    hub.set_addresses(saldo_node::node::META_LISTEN, &[format!("{}@127.0.0.1:4433", id.to_hex())]).unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_enrol_limit_grant_and_revoke_cash_points() {
    let realm = Realm::new();
    // A school device, which charges meals against allowances.
    let school = DeviceKey::generate().author();
    {
        let mut node = Node::open(&realm.hub_dir).unwrap();
        let limits = OfflineLimits {
            per_operation: Amount::parse("50").unwrap(),
            unconfirmed_total: Balance::parse("500").unwrap(),
            offline_secs_max: 86_400,
        };
        node.enrol(school, Role::SchoolDevice, &label("Scuola Verdi"), limits).unwrap();
    }
    let hub_id = hub_has_run(&realm);
    let mut hub = realm.hub();
    hub.log_in("admin.a").await;
    let list = hub.get("/cash-points").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text());
    let list = list.json();
    let devices = list["cash_points"].as_array().unwrap();
    let edicola = devices.iter().find(|d| d["name"] == "Edicola Centrale").unwrap().clone();
    assert_eq!(edicola["role"], "cash_point");
    assert_eq!(edicola["limits"]["per_operation"], "500.00");
    assert_eq!(edicola["limits"]["offline_hours"], 24);
    assert!(edicola["revoked"].is_null());
    assert!(devices.iter().any(|d| d["role"] == "school_device"));
    let device = edicola["device"].as_str().unwrap().to_string();
    let mut clerk = realm.hub();
    clerk.log_in("clerk.c").await;
    assert_eq!(clerk.get("/cash-points").await.json(), list, "the office sees the cash points too");

    // An enrolment token that `saldo cashpoint --join` takes.
    let limits = json!({"per_operation": "200.00", "unconfirmed_total": "2000.00", "offline_hours": 72});
    let answer = hub.post("/cash-points/tokens", &json!({"name": "Farmacia Nuova", "limits": limits})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let token = answer.json()["token"].as_str().unwrap().to_string();
    let decoded = saldo_node::net::EnrolmentToken::decode(&token).unwrap();
    assert_eq!(decoded.realm.hub(), hub_id);
    assert_eq!(decoded.hub.len(), 1);
    let before = hub.dump().await;
    let zero = json!({"name": "Farmacia", "limits": {"per_operation": "200.00", "unconfirmed_total": "0.00", "offline_hours": 72}});
    refused(&hub, hub.post("/cash-points/tokens", &zero).await, "limits.unconfirmed_total", &before).await;
    refused(&hub, hub.post("/cash-points/tokens", &json!({"name": "Farmacia"})).await, "limits", &before).await;

    // Limits.
    let answer = hub.put(&format!("/cash-points/{device}/limits"), &json!({"offline_hours": 48})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["offline_hours"], 48);
    assert_eq!(answer.json()["per_operation"], "500.00");
    let before = hub.dump().await;
    refused(&hub, hub.put(&format!("/cash-points/{device}/limits"), &json!({})).await, "per_operation", &before).await;
    refused(
        &hub,
        hub.put(&format!("/cash-points/{device}/limits"), &json!({"offline_hours": 0})).await,
        "offline_hours",
        &before,
    )
    .await;
    refused(&hub, hub.put("/cash-points/xyz/limits", &json!({"offline_hours": 5})).await, "device", &before).await;
    let unknown = hub.put(&format!("/cash-points/{}/limits", "cd".repeat(32)), &json!({"offline_hours": 5})).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text());
    assert_eq!(hub.dump().await, before);

    // An allowance for the school device on a wallet with money on it.
    let (first, _, _) = family(&hub).await;
    let topped = hub
        .call(Method::POST, "/topups", &top_up_body(&[(&first, "30.00")]), &[("idempotency-key", "escrow-test-topup")])
        .await;
    assert_eq!(topped.status, StatusCode::OK, "{}", topped.text());
    let wallet = json!({"consumer": first["summary"]["consumer"], "service": first["wallets"][0]["service"]});
    let answer = hub
        .post(&format!("/cash-points/{}/escrow", school.to_hex()), &json!({"wallet": wallet, "amount": "10.00"}))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["amount"], "10.00");
    let before = hub.dump().await;
    let too_much = hub
        .post(&format!("/cash-points/{}/escrow", school.to_hex()), &json!({"wallet": wallet, "amount": "1000.00"}))
        .await;
    assert_eq!(too_much.status, StatusCode::CONFLICT, "{}", too_much.text());
    let no_wallet = json!({"consumer": first["summary"]["consumer"], "service": "piscina"});
    refused(
        &hub,
        hub.post(&format!("/cash-points/{}/escrow", school.to_hex()), &json!({"wallet": no_wallet, "amount": "1.00"}))
            .await,
        "wallet",
        &before,
    )
    .await;
    refused(
        &hub,
        hub.post(&format!("/cash-points/{}/escrow", school.to_hex()), &json!({"wallet": wallet, "amount": "-1"})).await,
        "amount",
        &before,
    )
    .await;

    // Revocation.
    refused(&hub, hub.post(&format!("/cash-points/{device}/revoke"), &json!({})).await, "reason", &before).await;
    let answer = hub.post(&format!("/cash-points/{device}/revoke"), &json!({"reason": "shop closed"})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["device"], device.as_str());
    let list = hub.get("/cash-points").await.json();
    let edicola =
        list["cash_points"].as_array().unwrap().iter().find(|d| d["device"] == device.as_str()).unwrap().clone();
    assert_eq!(edicola["revoked"]["last_seq_seen"], 0, "{edicola}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flagged_operations_arrive_in_a_bundle_and_are_reviewed_and_bundles_go_back() {
    let realm = Realm::new();
    let mut hub = realm.hub();
    hub.log_in("clerk.c").await;
    let mut admin = realm.hub();
    admin.log_in("admin.a").await;
    let device = admin.get("/cash-points").await.json()["cash_points"][0]["device"].as_str().unwrap().to_string();
    // The hub revokes the cash point, which does not know it yet and records a top-up.
    let answer = admin.post(&format!("/cash-points/{device}/revoke"), &json!({"reason": "lost terminal"})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let receipt = {
        let mut cash_point = realm.cash_point();
        cash_point.log_in("cashier.k").await;
        let (first, _, _) = family(&cash_point).await;
        let answer = cash_point
            .call(
                Method::POST,
                "/topups",
                &top_up_body(&[(&first, "12.00")]),
                &[("idempotency-key", "bundle-test-topup")],
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        answer.json()
    };
    let (bundle, _) = Node::open(&realm.cash_point_dir).unwrap().export_bundle(None).unwrap();
    assert!(hub.get("/flagged").await.json()["operations"].as_array().unwrap().is_empty());

    // Up: the cash point's bundle.
    let before = hub.dump().await;
    refused(
        &hub,
        hub.post_bytes("/bundles", "application/octet-stream", b"not a bundle".to_vec()).await,
        "body",
        &before,
    )
    .await;
    let answer = hub.post_bytes("/bundles", "application/octet-stream", bundle).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let report = answer.json();
    assert_eq!(report["exporter"], device.as_str());
    assert!(report["new"].as_u64().unwrap() >= 1, "{report}");
    assert!(report["refused"].as_array().unwrap().is_empty(), "{report}");
    let flagged = hub.get("/flagged").await.json();
    let operations = flagged["operations"].as_array().unwrap();
    assert_eq!(operations.len(), 1, "{flagged}");
    let operation = &operations[0];
    assert_eq!(operation["operation"], receipt["operation"]);
    assert_eq!(operation["reason"], "revoked_author");
    assert_eq!(operation["kind"], "top-up");
    assert_eq!(operation["amount"], "12.00");
    assert_eq!(operation["author_name"], "Edicola Centrale");
    assert!(!operation["detail"].as_str().unwrap().is_empty());

    // The review: a rejection says why; an acceptance counts it.
    let op = operation["operation"].as_str().unwrap();
    let before = hub.dump().await;
    refused(&hub, hub.post(&format!("/flagged/{op}/review"), &json!({"accept": false})).await, "note", &before).await;
    refused(&hub, hub.post(&format!("/flagged/{op}/review"), &json!({"accept": "yes"})).await, "accept", &before).await;
    refused(&hub, hub.post("/flagged/nope/review", &json!({"accept": true})).await, "operation", &before).await;
    let unknown = hub.post(&format!("/flagged/{}/review", "ef".repeat(32)), &json!({"accept": true})).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text());
    let answer = hub.post(&format!("/flagged/{op}/review"), &json!({"accept": true, "note": "cash handed in"})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["accepted"], true);
    assert!(hub.get("/flagged").await.json()["operations"].as_array().unwrap().is_empty());
    let again = hub.post(&format!("/flagged/{op}/review"), &json!({"accept": true, "note": "twice"})).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text());

    // Down: a bundle for the device, and one for what its frontier file lacks.
    let answer = hub.get(&format!("/bundle?device={device}")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.headers[header::CONTENT_TYPE], "application/octet-stream");
    let mut cash_point = Node::open(&realm.cash_point_dir).unwrap();
    let imported = cash_point.import_bundle(&answer.body).unwrap();
    assert!(imported.new >= 2, "the revocation and the decision reach the device: {imported:?}");
    let (_, frontier) = cash_point.frontier_file().unwrap();
    let answer = hub.post_bytes("/bundles/export", "application/octet-stream", frontier).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(cash_point.import_bundle(&answer.body).unwrap().new, 0, "it lacks nothing now");
    let before = hub.dump().await;
    refused(&hub, hub.get("/bundle?device=xyz").await, "device", &before).await;
    refused(&hub, hub.get("/bundle").await, "device", &before).await;
    refused(
        &hub,
        hub.post_bytes("/bundles/export", "application/octet-stream", b"junk".to_vec()).await,
        "body",
        &before,
    )
    .await;
    let unknown = hub.get(&format!("/bundle?device={}", "cd".repeat(32))).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text());
    // A bundle may be larger than any other body; a frontier file may not.
    let large = vec![7u8; saldo_node::http::BODY_BYTES_MAX + 1];
    let answer = hub.post_bytes("/bundles", "application/octet-stream", large.clone()).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    assert!(!answer.json()["message"].as_str().unwrap().contains("MiB"), "read whole, then refused: {}", answer.text());
    let answer = hub.post_bytes("/bundles/export", "application/octet-stream", large).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    assert!(answer.json()["message"].as_str().unwrap().contains("MiB"), "{}", answer.text());
    assert_eq!(hub.dump().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_manage_operators_and_disabling_one_ends_their_sessions() {
    let realm = Realm::new();
    let mut admin = realm.hub();
    admin.log_in("admin.a").await;
    let list = admin.get("/operators").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text());
    let list = list.json();
    let logins: Vec<&str> =
        list["operators"].as_array().unwrap().iter().map(|o| o["login"].as_str().unwrap()).collect();
    assert!(logins.contains(&"admin.a") && logins.contains(&"clerk.c") && logins.contains(&"cashier.k"), "{list}");
    let cashier = list["operators"].as_array().unwrap().iter().find(|o| o["login"] == "cashier.k").unwrap();
    assert_eq!(cashier["cash_point_name"], "Edicola Centrale");

    let create = json!({"login": "Nuovo.Clerk", "name": "Luca Verdi", "role": "clerk", "password": PASSWORD});
    let answer = admin.post("/operators", &create).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["login"], "nuovo.clerk");
    assert_eq!(answer.json()["disabled"], false);
    assert_eq!(answer.json()["must_change_password"], false);
    assert!(answer.json().get("one_time_password").is_none(), "{}", answer.text());
    // Without a password the node generates a one-time password, shown once.
    let generated =
        admin.post("/operators", &json!({"login": "ufficio.due", "name": "Ada Neri", "role": "clerk"})).await;
    assert_eq!(generated.status, StatusCode::OK, "{}", generated.text());
    assert_eq!(generated.json()["must_change_password"], true);
    let one_time = generated.json()["one_time_password"].as_str().unwrap().to_string();
    assert!(one_time.len() >= 10, "{one_time}");
    let listed = admin.get("/operators").await.json();
    let listed = listed["operators"].as_array().unwrap().iter().find(|o| o["login"] == "ufficio.due").unwrap().clone();
    assert!(listed.get("one_time_password").is_none() && listed["must_change_password"] == true, "{listed}");
    let reset = admin.patch("/operators/ufficio.due", &json!({"one_time_password": true})).await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.text());
    assert!(reset.json()["one_time_password"].as_str().is_some_and(|p| p != one_time), "{}", reset.text());
    let both = admin.patch("/operators/ufficio.due", &json!({"one_time_password": true, "password": PASSWORD})).await;
    assert_eq!(both.json()["field"], "one_time_password", "{}", both.text());
    let before = admin.dump().await;
    let taken = admin.post("/operators", &create).await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.text());
    assert_eq!(admin.dump().await, before);
    let cashier = json!({"login": "cassa.due", "name": "Luca Verdi", "role": "cashier", "password": PASSWORD});
    refused(&admin, admin.post("/operators", &cashier).await, "cash_point", &before).await;
    let short = json!({"login": "altro.clerk", "name": "Luca Verdi", "role": "clerk", "password": "short"});
    refused(&admin, admin.post("/operators", &short).await, "password", &before).await;
    let bad_login = json!({"login": "1x", "name": "Luca Verdi", "role": "clerk", "password": PASSWORD});
    refused(&admin, admin.post("/operators", &bad_login).await, "login", &before).await;

    // The new clerk works, until disabled: their open session ends at once
    // on the node that disabled them, and within a second where another
    // process holds the session (accounts found enabled are taken as such
    // for a second).
    let mut clerk = admin.another_browser();
    clerk.log_in("nuovo.clerk").await;
    assert_eq!(clerk.get("/flagged").await.status, StatusCode::OK);
    let mut elsewhere = realm.hub();
    elsewhere.log_in("nuovo.clerk").await;
    assert_eq!(elsewhere.get("/flagged").await.status, StatusCode::OK);
    refused(&admin, admin.patch("/operators/nuovo.clerk", &json!({})).await, "password", &before).await;
    refused(&admin, admin.patch("/operators/nuovo.clerk", &json!({"password": "short"})).await, "password", &before)
        .await;
    refused(&admin, admin.patch("/operators/x", &json!({"disabled": true})).await, "login", &before).await;
    let unknown = admin.patch("/operators/nessuno", &json!({"disabled": true})).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text());
    assert_eq!(admin.dump().await, before);
    let answer = admin.patch("/operators/nuovo.clerk", &json!({"disabled": true})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["disabled"], true);
    assert_eq!(clerk.get("/flagged").await.status, StatusCode::UNAUTHORIZED);
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert_eq!(elsewhere.get("/flagged").await.status, StatusCode::UNAUTHORIZED);
    let again = realm.hub().post("/session", &json!({"login": "nuovo.clerk", "password": PASSWORD})).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "{}", again.text());
    // Enabled again with a new password.
    let answer =
        admin.patch("/operators/nuovo.clerk", &json!({"disabled": false, "password": "a new password of mine"})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let old = realm.hub().post("/session", &json!({"login": "nuovo.clerk", "password": PASSWORD})).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    let new =
        realm.hub().post("/session", &json!({"login": "nuovo.clerk", "password": "a new password of mine"})).await;
    assert_eq!(new.status, StatusCode::OK, "{}", new.text());
}
