//! What the tests that run the `saldo` binary share.

use std::process::{Child, Command, Output};
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
