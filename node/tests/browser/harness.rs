//! Nodes, chromedriver and a browser session for the browser tests.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

pub use super::common::{Running, http_of, wait_until};
use super::common::{ok, saldo, saldo_with_stdin, spawn_logged};

pub fn spawn(args: &[&str], log: &Path) -> Running {
    spawn_logged(args, log, "saldo_node=info")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn status(dir: &Path) -> Option<Value> {
    serde_json::from_slice(&saldo(&["status", "--data", dir.to_str()?, "--json"]).stdout).ok()
}

pub const CASHIER: &str = "cassa.rossa";
pub const CASHIER_PASSWORD: &str = "cassa rossa password";
pub const CLERK: &str = "ufficio.scuole";
pub const CLERK_PASSWORD: &str = "ufficio scuole password";

/// A hub with 60 generated consumers (seed 3 has the Rossi family: Rebecca
/// and her brother Giovanni, both on the canteen) and a cash point,
/// "Edicola", with its cashier; both running on 127.0.0.1.
pub struct Realm {
    pub tmp: tempfile::TempDir,
    pub hub_dir: PathBuf,
    pub hub: Option<Running>,
    pub hub_p2p: String,
    pub _cp_dir: PathBuf,
    pub _cash_point: Running,
    pub cp_http: String,
    pub hub_http: String,
}

impl Realm {
    pub fn new() -> Realm {
        let tmp = tempfile::tempdir().unwrap();
        let hub_dir = tmp.path().join("hub");
        let data = hub_dir.to_str().unwrap().to_owned();
        ok(&["realm", "init", "--data", &data, "--name", "Comune di Prova"]);
        let csv = tmp.path().join("families.csv");
        ok(&["generate", "--consumers", "60", "--out", csv.to_str().unwrap(), "--seed", "3"]);
        ok(&["families", "import", "--data", &data, csv.to_str().unwrap()]);
        let hub = spawn(
            &["hub", "--data", &data, "--p2p", "127.0.0.1:0", "--http", "127.0.0.1:0"],
            &tmp.path().join("hub.log"),
        );
        let hub_p2p =
            wait_until("the hub to listen", || status(&hub_dir)?["addresses"][0].as_str().map(str::to_string));
        let hub_http = http_of(&hub_dir, &hub);
        let token: Value =
            serde_json::from_str(&ok(&["enroll", "--data", &data, "--name", "Edicola", "--json"])).unwrap();
        let cp_dir = tmp.path().join("edicola");
        let cash_point = spawn(
            &[
                "cashpoint",
                "--data",
                cp_dir.to_str().unwrap(),
                "--p2p",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
                "--join",
                token["token"].as_str().unwrap(),
            ],
            &tmp.path().join("edicola.log"),
        );
        wait_until("the cash point's enrolment", || (status(&cp_dir)?["device_name"] != "").then_some(()));
        add_operator(&data, CASHIER, CASHIER_PASSWORD, "cashier", Some("Edicola"));
        add_operator(&data, CLERK, CLERK_PASSWORD, "clerk", None);
        let cp_http = http_of(&cp_dir, &cash_point);
        // Waited for without logging in: every login counts against the
        // account's limit (five at once), and the test logs in after this.
        wait_until("the cashier's account at the cash point", || {
            let list = saldo(&["operator", "list", "--data", cp_dir.to_str()?, "--json"]);
            let list: Value = serde_json::from_slice(&list.stdout).ok()?;
            list.as_array()?.iter().any(|o| o["login"] == CASHIER).then_some(())
        });
        let api = Api::log_in(&cp_http, CASHIER, CASHIER_PASSWORD).expect("the cashier logs in at the cash point");
        wait_until("the Rossi family at the cash point", || {
            (api.get("/consumers?q=rossi")["consumers"].as_array()?.len() == 2).then_some(())
        });
        Realm { tmp, hub_dir, hub: Some(hub), hub_p2p, _cp_dir: cp_dir, _cash_point: cash_point, cp_http, hub_http }
    }

    pub fn stop_hub(&mut self) {
        self.hub = None;
    }

    /// Runs the hub again where it ran (the same p2p address).
    pub fn start_hub(&mut self) {
        let port = self.hub_p2p.rsplit(':').next().unwrap().to_owned();
        let hub = spawn(
            &[
                "hub",
                "--data",
                self.hub_dir.to_str().unwrap(),
                "--p2p",
                &format!("127.0.0.1:{port}"),
                "--http",
                "127.0.0.1:0",
            ],
            &self.tmp.path().join("hub-again.log"),
        );
        self.hub_http = http_of(&self.hub_dir, &hub);
        self.hub = Some(hub);
    }
}

pub fn add_operator(data: &str, login: &str, password: &str, role: &str, cash_point: Option<&str>) {
    let mut args = vec!["operator", "add", "--data", data, "--login", login, "--name", login, "--role", role];
    args.extend(cash_point.map(|c| ["--cash-point", c]).into_iter().flatten());
    args.push("--password-stdin");
    let out = saldo_with_stdin(&args, &format!("{password}\n"));
    assert!(out.status.success(), "operator add {login}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The node's API as a script sees it, to check what the page did.
pub struct Api {
    agent: ureq::Agent,
    base: String,
    cookie: String,
}

impl Api {
    pub fn log_in(base: &str, login: &str, password: &str) -> Result<Api, u16> {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let answer = agent
            .post(format!("{base}/api/v1/session"))
            .send_json(json!({"login": login, "password": password}))
            .map_err(|_| 0u16)?;
        let status = answer.status().as_u16();
        let cookie = answer.headers().get("set-cookie").and_then(|c| c.to_str().ok()).map(str::to_string);
        match cookie {
            Some(cookie) if status == 200 => {
                Ok(Api { agent, base: base.to_string(), cookie: cookie.split(';').next().unwrap().to_string() })
            }
            _ => Err(status),
        }
    }

    pub fn get(&self, path: &str) -> Value {
        let mut answer =
            self.agent.get(format!("{}/api/v1{path}", self.base)).header("cookie", &self.cookie).call().unwrap();
        assert_eq!(answer.status().as_u16(), 200, "GET {path}");
        answer.body_mut().read_json().unwrap()
    }

    /// Each Rossi child's canteen balance, (confirmed, provisional), by name.
    pub fn rossi_canteen(&self) -> Vec<(String, String, String)> {
        let found = self.get("/consumers?q=rossi");
        let mut out = Vec::new();
        for c in found["consumers"].as_array().unwrap() {
            let name = format!("{} {}", c["surname"].as_str().unwrap(), c["name"].as_str().unwrap());
            let wallet = c["wallets"].as_array().unwrap().iter().find(|w| w["service"] == "mensa");
            let (confirmed, provisional) = wallet.map_or(("0.00".into(), "0.00".into()), |w| {
                (w["confirmed"].as_str().unwrap().to_owned(), w["provisional"].as_str().unwrap().to_owned())
            });
            out.push((name, confirmed, provisional));
        }
        out.sort();
        out
    }
}

/// Headless Chromium through chromedriver, with a fresh profile.
pub struct Browser {
    pub client: Client,
    _driver: Running,
    _profile: tempfile::TempDir,
    /// Enter presses sent so far.
    pub enters: usize,
}

impl Browser {
    pub async fn start() -> Browser {
        let port = free_port();
        let driver_log = std::fs::File::create(std::env::temp_dir().join(format!("chromedriver-{port}.log"))).unwrap();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(driver_log.try_clone().unwrap())
            .stderr(driver_log)
            .spawn()
            .map(Running)
            .unwrap_or_else(|e| panic!("chromedriver does not run ({e}): run scripts/browser-setup"));
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--no-first-run".into(),
            "--disable-quic".into(),
            "--window-size=1280,900".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), json!({"binary": "/usr/bin/chromium", "args": args}));
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector).capabilities(caps.clone()).connect(&url).await {
                Ok(client) => break client,
                Err(e) if started.elapsed() > Duration::from_secs(30) => panic!("no browser session: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        Browser { client, _driver: driver, _profile: profile, enters: 0 }
    }

    /// Evaluates `script` (a function body) in the page.
    pub async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Waits until `script` returns something truthy; returns it.
    pub async fn wait_js(&self, what: &str, script: &str) -> Value {
        let started = Instant::now();
        loop {
            let value = self.client.execute(script, vec![]).await.unwrap_or(Value::Null);
            if !matches!(&value, Value::Null | Value::Bool(false)) && value != json!("") && value != json!(0) {
                return value;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let body = self.js("return document.body.innerText").await;
                panic!("timed out waiting for {what}; the page says:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Types `keys` into the element that has the focus (as a person or a
    /// card reader would), counting the Enter presses.
    pub async fn type_keys(&mut self, keys: &str) {
        self.enters += keys.chars().filter(|&c| c == char::from(Key::Enter)).count();
        let focused = self.client.active_element().await.unwrap();
        focused.send_keys(keys).await.unwrap();
    }

    /// The id of the element that has the focus.
    pub async fn focused_id(&self) -> String {
        self.js("return document.activeElement ? document.activeElement.id : ''")
            .await
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// Saves a screenshot as `target/screenshots/{name}.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        let dir = workspace().join("target").join("screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// axe-core's serious and critical violations on the page, described.
    pub async fn accessibility_violations(&self) -> Vec<String> {
        let axe = workspace().join("target/browser/node_modules/axe-core/axe.min.js");
        let source = std::fs::read_to_string(&axe)
            .unwrap_or_else(|e| panic!("{}: {e}: run scripts/browser-setup", axe.display()));
        self.client.execute(&source, vec![]).await.unwrap();
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations.map(v =>
                   ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))));",
                vec![],
            )
            .await
            .unwrap();
        result
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .map(|v| format!("{} ({}): {} at {}", v["id"], v["impact"], v["help"], v["nodes"]))
            .collect()
    }
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub const ENTER: Key = Key::Enter;
pub const DOWN: Key = Key::Down;
pub const UP: Key = Key::Up;
pub const ESCAPE: Key = Key::Escape;

/// One key, as text for [`Browser::type_keys`].
pub fn key(k: Key) -> String {
    char::from(k).to_string()
}
