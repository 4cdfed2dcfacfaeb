//! What the delivery tests share: a real SMTP server (Python's aiosmtpd,
//! installed under `target/` by `scripts/smtp-venv`), a real SMS gateway
//! (axum on 127.0.0.1), and a hub run as its own process.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::common::SALDO;
pub use super::common::{Running, wait_until};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("an address").port()
}

/// The Python with aiosmtpd: `SALDO_TEST_PYTHON`, else the project's venv.
fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("SALDO_TEST_PYTHON") {
        return PathBuf::from(python);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/smtp-venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run scripts/smtp-venv (it installs aiosmtpd, the SMTP server these tests deliver to)",
        venv.display()
    );
    venv
}

/// An SMTP server on 127.0.0.1:`port` that keeps what it receives in a Maildir.
pub struct Smtp {
    pub port: u16,
    pub maildir: PathBuf,
    process: Option<Running>,
}

impl Smtp {
    pub fn new(port: u16, maildir: PathBuf) -> Smtp {
        Smtp { port, maildir, process: None }
    }

    pub fn start(&mut self) {
        assert!(self.process.is_none(), "started twice");
        let child = Command::new(python())
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{}", self.port)])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&self.maildir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd starts");
        self.process = Some(Running(child));
        let port = self.port;
        wait_until("the SMTP server to listen", || std::net::TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ()));
    }

    pub fn stop(&mut self) {
        self.process = None;
    }

    /// Every message received: its headers (lower-case names) and whole text.
    pub fn messages(&self) -> Vec<(BTreeMap<String, String>, String)> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else { return Vec::new() };
        let mut out = Vec::new();
        for entry in entries {
            let text = std::fs::read_to_string(entry.expect("an entry").path()).expect("a message");
            let mut headers = BTreeMap::new();
            let mut last: Option<String> = None;
            for line in text.lines().take_while(|l| !l.is_empty()) {
                if line.starts_with([' ', '\t']) {
                    if let Some(name) = &last {
                        headers.entry(name.clone()).and_modify(|v: &mut String| v.push_str(line.trim_start()));
                    }
                } else if let Some((name, value)) = line.split_once(':') {
                    let name = name.trim().to_ascii_lowercase();
                    headers.insert(name.clone(), value.trim().to_string());
                    last = Some(name);
                }
            }
            out.push((headers, text));
        }
        out
    }

    pub fn message_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> =
            self.messages().into_iter().filter_map(|(h, _)| h.get("message-id").cloned()).collect();
        ids.sort();
        ids
    }
}

/// A hub's data directory with a realm, and its `saldo.toml`.
pub fn hub_dir(tmp: &Path, config: &str) -> PathBuf {
    let dir = tmp.join("hub");
    super::common::ok(&["realm", "init", "--data", dir.to_str().unwrap(), "--name", "Comune di Prova"]);
    std::fs::write(dir.join("saldo.toml"), config).expect("saldo.toml written");
    dir
}

pub fn spawn_hub(dir: &Path, log: &Path) -> Running {
    spawn_node(&["hub", "--data", dir.to_str().unwrap()], log)
}

/// The hub's database, as a test reads it (and queues in it before the
/// hub's own queueing of receipts is merged).
pub fn db(dir: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(dir.join(saldo_node::node::DATABASE_FILE)).expect("the hub's database");
    conn.busy_timeout(Duration::from_secs(30)).expect("busy timeout");
    conn
}

/// Queues a message as the hub's outbox holds them; returns its reference.
pub fn queue(dir: &Path, n: u32, channel: &str, recipient: &str) -> String {
    let reference = format!("<test-{n}.receipt.{channel}@saldo.test>");
    let now = saldo_node::delivery::now_ms() as i64;
    db(dir)
        .execute(
            "INSERT INTO outbox (about, purpose, channel, recipient, language, subject, body_text, body_html,
                                 reference, recorded_ms, queued_ms, state, next_attempt_ms)
             VALUES (?1, 'receipt', ?2, ?3, 'it', ?4, ?5, ?6, ?7, ?8, ?8, 'queued', ?8)",
            rusqlite::params![
                n.to_be_bytes().to_vec(),
                channel,
                recipient,
                format!("Ricevuta n. {n}"),
                format!("Ricarica n. {n} di 20,00 € per Nicolò D'Angelo; saldo 35,50 €"),
                Some(format!("<p>Ricarica n. {n} di <b>20,00 €</b></p>")),
                reference,
                now,
            ],
        )
        .expect("queued");
    reference
}

/// (state, attempts, last_error) of the message with `reference`.
pub fn state(dir: &Path, reference: &str) -> (String, i64, Option<String>) {
    db(dir)
        .query_row("SELECT state, attempts, last_error FROM outbox WHERE reference = ?1", [reference], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .expect("the message is held")
}

pub fn count_in_state(dir: &Path, state: &str) -> i64 {
    db(dir).query_row("SELECT COUNT(*) FROM outbox WHERE state = ?1", [state], |r| r.get(0)).expect("a count")
}

/// What a gateway received: (headers, body).
pub type Received = Arc<Mutex<Vec<(BTreeMap<String, String>, String)>>>;

/// An SMS gateway on 127.0.0.1 that fails its first `failures` requests
/// with 503, then answers 200 `{"status":"ok"}`.
pub fn gateway(failures: usize) -> (SocketAddr, Received, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let received: Received = Arc::default();
    let seen = received.clone();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("a port");
    let address = listener.local_addr().expect("an address");
    let app = axum::Router::new().route(
        "/send",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let mut seen = seen.lock().expect("lock");
                let headers =
                    headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string())).collect();
                seen.push((headers, body));
                if seen.len() <= failures {
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, "busy".to_string())
                } else {
                    (axum::http::StatusCode::OK, r#"{"status":"ok"}"#.to_string())
                }
            }
        }),
    );
    runtime.spawn(async move { axum::serve(listener, app).await });
    (address, received, runtime)
}

/// The plain-text part of a delivered message, decoded (Python's email package).
pub fn plain_text(raw: &str) -> String {
    let out = Command::new(python())
        .args([
            "-c",
            "import email, email.policy, sys\n\
             m = email.message_from_string(sys.stdin.read(), policy=email.policy.default)\n\
             print(m.get_body(('plain',)).get_content())",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(raw.as_bytes())?;
            child.wait_with_output()
        })
        .expect("python decodes the message");
    assert!(out.status.success(), "the message is not MIME Python can read");
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// A consumer with one service at the node in `dir`: (PAN, the consumer as searched).
pub fn some_consumer(dir: &Path) -> (String, serde_json::Value) {
    try_some_consumer(dir).expect("a consumer with one service")
}

pub fn try_some_consumer(dir: &Path) -> Option<(String, serde_json::Value)> {
    ["ro", "ma", "ri", "co", "ga", "fe", "ba", "be", "gi", "de", "sa", "pa", "mo", "ca", "lo"].iter().find_map(
        |prefix| {
            let out = super::common::saldo(&["search", "--data", dir.to_str().unwrap(), prefix, "--json"]);
            let found: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            let one = found["consumers"]
                .as_array()?
                .iter()
                .find(|c| c["wallets"].as_array().is_some_and(|w| w.len() == 1))?;
            Some((one["pan"].as_str()?.to_string(), one.clone()))
        },
    )
}

pub fn spawn_node(args: &[&str], log: &Path) -> Running {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("a log file");
    let child = Command::new(SALDO)
        .args(args)
        .args(["--p2p", "127.0.0.1:0", "--http", "127.0.0.1:0", "--no-lan"])
        .env_remove("SALDO_DATA")
        .env("SALDO_LOG", "saldo_node=debug")
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .expect("saldo starts");
    Running(child)
}

pub fn status(dir: &Path) -> Option<serde_json::Value> {
    let out = super::common::saldo(&["status", "--data", dir.to_str().unwrap(), "--json"]);
    serde_json::from_slice(&out.stdout).ok()
}
