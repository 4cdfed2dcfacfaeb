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

#[path = "http/access.rs"]
mod access;
#[path = "http/office.rs"]
mod office;
#[path = "http/outbox.rs"]
mod outbox;
#[path = "http/payments.rs"]
mod payments;
#[path = "http/reports.rs"]
mod reports;
#[path = "http/top_ups.rs"]
mod top_ups;

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
        self.log_in_with(login, PASSWORD).await
    }

    async fn log_in_with(&mut self, login: &str, password: &str) -> Value {
        let answer = self.post("/session", &json!({"login": login, "password": password})).await;
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
