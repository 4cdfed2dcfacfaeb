//! What the tests that run the `saldo` binary share.

use std::process::{Command, Output};

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
