//! The commands themselves: each explains itself, the demo, a bad
//! configuration file or a database of another format refused at start,
//! errors that say nothing twice, closed pipes, and a log file without
//! colour codes.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::common::{SALDO, ok, saldo};
use super::{check_refused, realm, top_up_setup};

#[test]
fn every_command_explains_itself() {
    for args in [
        vec!["--help"],
        vec!["realm", "init", "--help"],
        vec!["families", "import", "--help"],
        vec!["search", "--help"],
        vec!["topup", "--help"],
        vec!["balance", "--help"],
        vec!["log", "verify", "--help"],
        vec!["review", "list", "--help"],
        vec!["review", "accept", "--help"],
        vec!["services", "set", "--help"],
        vec!["generate", "--help"],
        vec!["demo", "--help"],
    ] {
        let out = ok(&args);
        assert!(out.contains("Usage: saldo"), "{args:?}: {out}");
    }
    let missing = saldo(&["balance", "--data", "/nonexistent/saldo", "--pan", "4111111111111111"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("holds no Saldo node"));
}

#[test]
fn the_demo_builds_a_realm_once_and_says_what_to_try() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let first = ok(&["demo", "--data", dir.to_str().unwrap(), "--consumers", "60", "--no-network"]);
    assert!(first.contains("just created") && first.contains("60 consumers"), "{first}");
    assert!(first.contains("topup --data"), "{first}");
    let second = ok(&["demo", "--data", dir.to_str().unwrap(), "--no-network"]);
    assert!(second.contains("already there") && second.contains("60 consumers"), "{second}");
    assert!(ok(&["log", "verify", "--data", dir.join("hub").to_str().unwrap()]).contains("verifies"));
}

/// A configuration file with a mistake stops the node before it starts,
/// saying which file and what is wrong.
#[test]
fn a_bad_configuration_file_is_refused_with_what_to_fix() {
    let realm = realm(5);
    let config = realm.dir.join("saldo.toml");
    for (text, expected) in [
        ("peers = [\"nonsense\"]\n", "is not a peer address: write ID@IP:PORT"),
        ("p2p = \"localhost\"\n", "p2p"),
        ("colour = \"blue\"\n", "unknown field `colour`"),
        ("lan = \"no\"\n", "lan"),
    ] {
        std::fs::write(&config, text).unwrap();
        let out = saldo(&["hub", "--data", realm.data()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text}");
        assert!(
            stderr.contains("saldo.toml is not a valid configuration") && stderr.contains(expected),
            "{text}: {stderr}"
        );
    }
}

/// A data directory written by a saldo of another operation format is
/// refused when it is opened, saying what to do, and nothing is written.
#[test]
fn a_database_of_another_operation_format_is_refused_at_open() {
    let realm = realm(7);
    {
        let conn = rusqlite::Connection::open(realm.dir.join("saldo.db")).unwrap();
        conn.execute("UPDATE ops SET bytes = CAST(X'01' || substr(bytes, 2) AS BLOB)", []).unwrap();
    }
    for command in ["status", "log"] {
        let args: Vec<&str> = match command {
            "log" => vec!["log", "verify", "--data", realm.data()],
            _ => vec![command, "--data", realm.data()],
        };
        check_refused(&realm, &args, "holds operations in format 1, and this saldo reads format 2");
    }
}

/// `saldo search … | head -1` and the like: a command whose reader goes
/// away ends quietly, as a process killed by SIGPIPE would, without a panic.
#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    let realm = realm(30);
    let d = realm.data();
    for args in [
        vec!["search", "--data", d, "ro", "--limit", "50"],
        vec!["search", "--data", d, "ro", "--json"],
        vec!["services", "list", "--data", d, "--json"],
        vec!["status", "--data", d],
        vec!["log", "verify", "--data", d],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(SALDO).args(&args).env_remove("SALDO_DATA").stdout(writer).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "saldo {args:?}: {stderr}");
        assert!(stderr.is_empty(), "saldo {args:?} said {stderr:?}");
    }
}

/// Words said twice in a row ("refused: refused:", "X: X") in a message.
fn doubled_words(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| c.is_whitespace())
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_string())
        .filter(|w| !w.is_empty())
        .collect();
    for n in 1..=6 {
        for i in 0..words.len().saturating_sub(2 * n - 1) {
            if words[i..i + n] == words[i + n..i + 2 * n] && !words[i].chars().all(|c| c.is_ascii_digit()) {
                return Some(words[i..i + 2 * n].join(" "));
            }
        }
    }
    None
}

/// An operator reads each word of an error once: no "refused: refused:",
/// no cause repeated after the message that already quotes it.
#[test]
fn error_messages_say_nothing_twice() {
    assert_eq!(doubled_words("refused: refused: no"), Some("refused refused".into()));
    assert_eq!(
        doubled_words("cannot use x: gone: cannot use x: gone"),
        Some("cannot use x gone cannot use x gone".into())
    );
    let (realm, pan, _) = top_up_setup();
    let d = realm.data();
    let missing = realm._tmp.path().join("missing");
    let garbage = realm._tmp.path().join("garbage.bundle");
    std::fs::write(&garbage, b"not a bundle at all").unwrap();
    let not_a_db = realm._tmp.path().join("not-a-db");
    std::fs::create_dir_all(&not_a_db).unwrap();
    std::fs::write(not_a_db.join("saldo.db"), b"this is not a database, not at all").unwrap();
    std::fs::write(not_a_db.join("device.key"), [7u8; 32]).unwrap();
    let stranger = "ab".repeat(32);
    let cases: Vec<Vec<&str>> = vec![
        vec!["status", "--data", missing.to_str().unwrap()],
        vec!["status", "--data", not_a_db.to_str().unwrap()],
        vec!["bundle", "import", "--data", d, garbage.to_str().unwrap()],
        vec!["bundle", "import", "--data", d, missing.to_str().unwrap()],
        vec!["families", "import", "--data", d, missing.to_str().unwrap()],
        vec!["topup", "--data", d, "--pan", &pan, "--amount", "0", "--method", "cash"],
        vec!["revoke", "--data", d, "--device", &stranger],
        vec!["limits", "--data", d, "--device", &stranger, "--per-operation", "5"],
        vec!["review", "accept", "--data", d, &stranger, "--operator", "x", "--note", "y"],
        vec!["bundle", "export", "--data", d, "--out", "/nonexistent/dir/b.bundle"],
        vec!["services", "set", "--data", d, "--name", "Mensa", "--floor", "10"],
    ];
    for args in cases {
        let out = saldo(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "saldo {args:?} should fail");
        assert_eq!(doubled_words(&stderr), None, "saldo {args:?} said {stderr:?}");
    }
}

/// Waits up to `secs` seconds for `what` to hold.
fn wait_for(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !check() {
        assert!(start.elapsed() < Duration::from_secs(secs), "waited {secs} s for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A node's log written to a file carries no terminal colour codes.
#[test]
fn a_log_written_to_a_file_has_no_colour_codes() {
    let realm = realm(3);
    let log_path = realm._tmp.path().join("hub.log");
    let log = std::fs::File::create(&log_path).unwrap();
    // A peer that is not there: the hub logs its attempts to reach it.
    let absent = format!("{}@127.0.0.1:9", saldo_sync::DeviceKey::generate().author().to_hex());
    let mut hub = Command::new(SALDO)
        .args([
            "hub",
            "--data",
            realm.data(),
            "--p2p",
            "127.0.0.1:0",
            "--no-lan",
            "--http",
            "127.0.0.1:0",
            "--peer",
            &absent,
        ])
        .env_remove("SALDO_DATA")
        .env("SALDO_LOG", "saldo_node=debug")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    wait_for(60, "the hub to log", || std::fs::read_to_string(&log_path).is_ok_and(|t| t.contains("INFO")));
    hub.kill().unwrap();
    hub.wait().unwrap();
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(!text.contains('\u{1b}'), "colour codes in the log: {text:?}");
}

/// `saldo hub | head -1`: a running node whose output no one reads any more
/// goes on running (it panicked at its next line of output).
#[test]
fn a_node_whose_output_is_closed_keeps_running() {
    let realm = realm(3);
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut hub = Command::new(SALDO)
        .args(["hub", "--data", realm.data(), "--p2p", "127.0.0.1:0", "--no-lan", "--http", "127.0.0.1:0"])
        .env_remove("SALDO_DATA")
        .stdout(writer)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(30, "the hub to run", || realm.dir.join("status.json").exists() || hub.try_wait().unwrap().is_some());
    std::thread::sleep(Duration::from_millis(500));
    let stopped = hub.try_wait().unwrap();
    hub.kill().unwrap();
    hub.wait().unwrap();
    assert_eq!(stopped, None, "the hub stopped");
}
