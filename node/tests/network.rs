//! Real `saldo` processes syncing over iroh QUIC on 127.0.0.1: a hub and two
//! cash points, one cut from the hub by a UDP relay the test controls; and
//! forged, replayed and equivocating operations sent over the wire; and the
//! hub's outbox delivering to real servers (`network/outbox_delivery.rs`).

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

mod common;
use common::{http_of, ok, saldo, spawn_logged};

/// The hub's outbox against a real SMTP server and SMS gateway on 127.0.0.1.
#[path = "network/delivery.rs"]
mod delivery;
#[path = "network/outbox_delivery.rs"]
mod outbox_delivery;
use delivery::{Running, wait_until};
/// A node run inside another program's process (the mobile shim's way).
#[path = "network/embedded.rs"]
mod embedded;

#[path = "network/cashiers.rs"]
mod cashiers;
#[path = "network/https.rs"]
mod https;
#[path = "network/restored_cash_points.rs"]
mod restored_cash_points;
#[path = "network/syncing.rs"]
mod syncing;
#[path = "network/wire.rs"]
mod wire;

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&ok(args)).unwrap()
}

fn spawn(args: &[&str], log: &Path) -> Running {
    // Nodes of tests running side by side each take a free port for their API.
    let mut args = args.to_vec();
    if matches!(args.first(), Some(&"hub" | &"cashpoint")) && !args.contains(&"--http") {
        args.extend(["--http", "127.0.0.1:0"]);
    }
    spawn_logged(&args, log, "saldo_node=debug")
}

fn status(dir: &Path) -> Value {
    json(&["status", "--data", dir.to_str().unwrap(), "--json"])
}

/// Whether the node running on `dir` is the process `node` (not one that
/// stopped, whose status file is still fresh).
fn runs_as(dir: &Path, node: &Running) -> bool {
    let written: Option<Value> =
        std::fs::read(dir.join("status.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
    written.is_some_and(|s| s["pid"].as_u64() == Some(u64::from(node.0.id())))
}

fn address(dir: &Path) -> String {
    wait_until("the node to listen", || status(dir)["addresses"][0].as_str().map(str::to_string))
}

/// A hub with 30 generated consumers, running on 127.0.0.1.
fn hub(tmp: &Path) -> (PathBuf, Running, String) {
    let dir = tmp.join("hub");
    let data = dir.to_str().unwrap();
    ok(&["realm", "init", "--data", data, "--name", "Comune di Prova"]);
    let csv = tmp.join("families.csv");
    ok(&["generate", "--consumers", "30", "--out", csv.to_str().unwrap(), "--seed", "11"]);
    ok(&["families", "import", "--data", data, csv.to_str().unwrap()]);
    let running = spawn(&["hub", "--data", data, "--p2p", "127.0.0.1:0"], &tmp.join("hub.log"));
    let address = address(&dir);
    (dir, running, address)
}

fn enroll(hub: &Path, name: &str) -> String {
    json(&["enroll", "--data", hub.to_str().unwrap(), "--name", name, "--json"])["token"].as_str().unwrap().to_string()
}

/// A consumer with one service, as a cash point's directory shows it: (PAN, service).
fn some_consumer(dir: &Path) -> Option<(String, String)> {
    for prefix in ["ro", "ma", "ri", "co", "ga", "fe", "ba", "be", "gi", "de", "sa", "pa", "mo", "ca", "lo"] {
        // Not there yet while the node is being created.
        let out = saldo(&["search", "--data", dir.to_str().unwrap(), prefix, "--json"]);
        let found: Value = serde_json::from_slice(&out.stdout).ok()?;
        if let Some(c) =
            found["consumers"].as_array()?.iter().find(|c| c["wallets"].as_array().is_some_and(|w| w.len() == 1))
        {
            return Some((c["pan"].as_str()?.to_string(), c["wallets"][0]["service"].as_str()?.to_string()));
        }
    }
    None
}

fn confirmed(dir: &Path, pan: &str) -> (String, String) {
    let balance = json(&["balance", "--data", dir.to_str().unwrap(), "--pan", pan, "--json"]);
    let wallet = &balance["wallets"][0];
    (wallet["confirmed"].as_str().unwrap().to_string(), wallet["provisional"].as_str().unwrap().to_string())
}

/// A UDP relay between a cash point and the hub that the test can cut.
struct Relay {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Relay {
    fn new(upstream: SocketAddr) -> Relay {
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        let back = UdpSocket::bind("127.0.0.1:0").unwrap();
        back.connect(upstream).unwrap();
        for socket in [&front, &back] {
            socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        }
        let addr = front.local_addr().unwrap();
        let (cut, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let client: Arc<std::sync::Mutex<Option<SocketAddr>>> = Arc::default();
        let (front, back) = (Arc::new(front), Arc::new(back));
        {
            let (front, back, cut, stop, client) =
                (front.clone(), back.clone(), cut.clone(), stop.clone(), client.clone());
            std::thread::spawn(move || {
                let mut buffer = [0u8; 65_536];
                while !stop.load(Ordering::SeqCst) {
                    if let Ok((n, from)) = front.recv_from(&mut buffer) {
                        *client.lock().unwrap() = Some(from);
                        if !cut.load(Ordering::SeqCst) {
                            let _ = back.send(&buffer[..n]);
                        }
                    }
                }
            });
        }
        {
            let (cut, stop) = (cut.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buffer = [0u8; 65_536];
                while !stop.load(Ordering::SeqCst) {
                    if let Ok(n) = back.recv(&mut buffer) {
                        let to = *client.lock().unwrap();
                        if let (Some(to), false) = (to, cut.load(Ordering::SeqCst)) {
                            let _ = front.send_to(&buffer[..n], to);
                        }
                    }
                }
            });
        }
        Relay { addr, cut, stop }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
