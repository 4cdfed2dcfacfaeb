//! What the tests that run the `saldo` binary share.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const SALDO: &str = env!("CARGO_BIN_EXE_saldo");

/// Runs `saldo` with `args` (never the caller's SALDO_DATA).
pub fn saldo(args: &[&str]) -> Output {
    Command::new(SALDO).args(args).env_remove("SALDO_DATA").output().expect("saldo runs")
}

/// Runs `saldo`, which must succeed; its standard output.
pub fn ok(args: &[&str]) -> String {
    let out = saldo(args);
    assert!(out.status.success(), "saldo {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Runs `saldo` with `stdin` piped to it (a password, typed).
#[allow(dead_code)] // (not every test binary types into a command)
pub fn saldo_with_stdin(args: &[&str], stdin: &str) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(SALDO)
        .args(args)
        .env_remove("SALDO_DATA")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("saldo starts");
    child.stdin.take().expect("a piped stdin").write_all(stdin.as_bytes()).expect("saldo reads its input");
    child.wait_with_output().expect("saldo ends")
}

/// [`saldo_with_stdin`], which must succeed; its standard output.
#[allow(dead_code)] // (not every test binary types into a command)
pub fn ok_with_stdin(args: &[&str], stdin: &str) -> String {
    let out = saldo_with_stdin(args, stdin);
    assert!(out.status.success(), "saldo {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// A `saldo` process (or a driver), killed (SIGKILL) when dropped.
#[allow(dead_code)] // (not every test binary runs processes)
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What `f` finds, once it finds it; fails the test after a minute.
#[allow(dead_code)] // (not every test binary waits)
pub fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts `saldo` with `args`, logging at `level` (`SALDO_LOG`) into the
/// file `log` with its output; killed when dropped.
#[allow(dead_code)] // (not every test binary runs processes)
pub fn spawn_logged(args: &[&str], log: &Path, level: &str) -> Running {
    let log = std::fs::File::create(log).expect("a log file");
    Running(
        Command::new(SALDO)
            .args(args)
            .env_remove("SALDO_DATA")
            .env("SALDO_LOG", level)
            .stdout(log.try_clone().expect("the log file, twice"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("saldo starts"),
    )
}

/// The HTTP base URL of `node`, running on `dir`, once it listens (as its
/// status file says, written by that very process).
#[allow(dead_code)] // (not every test binary runs processes)
pub fn http_of(dir: &Path, node: &Running) -> String {
    wait_until("the node's HTTP API", || {
        let written: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("status.json")).ok()?).ok()?;
        (written["pid"].as_u64() == Some(u64::from(node.0.id()))).then_some(())?;
        Some(written["http"].as_str()?.to_string())
    })
}
