//! The files beside a data directory: `saldo restore` unpacks only a
//! backup, and `--out` never replaces what is not a regular file.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::common::{SALDO, ok, saldo};
use super::{dump, realm};

/// `saldo restore` unpacks only what a data directory holds: a file with
/// anything else, or without the database and the key, is refused, and
/// nothing is created.
#[test]
fn a_restore_refuses_a_file_that_is_not_a_backup_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = |name: &str, entries: &[(&str, &[u8])]| -> PathBuf {
        let path = tmp.path().join(name);
        let mut builder = tar::Builder::new(std::fs::File::create(&path).unwrap());
        for (entry, bytes) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o600);
            header.set_cksum();
            builder.append_data(&mut header, entry, *bytes).unwrap();
        }
        builder.finish().unwrap();
        path
    };
    let cases = [
        (archive("extra.backup", &[("saldo.db", b""), ("device.key", &[7; 32]), ("run.sh", b"rm -rf /")]), "run.sh"),
        (archive("keyless.backup", &[("saldo.db", b"")]), "it holds no device.key"),
        (archive("twice.backup", &[("device.key", &[7; 32]), ("device.key", &[8; 32])]), "device.key twice"),
        (tmp.path().join("families.csv"), "not a Saldo backup"),
    ];
    std::fs::write(tmp.path().join("families.csv"), "surname,name\n").unwrap();
    for (file, expected) in cases {
        let target = tmp.path().join("restored");
        let out = saldo(&["restore", "--from", file.to_str().unwrap(), "--data", target.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(expected), "{}: {stderr}", file.display());
        assert!(!target.exists(), "a refused restore created {}", target.display());
    }
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 4, "nothing else is left beside the target: {left:?}");
}

/// Runs `saldo` and gives it 30 s: a command that blocks (on a named pipe
/// nobody reads) fails instead of hanging the suite.
fn saldo_within_30_s(args: &[&str]) -> std::process::Output {
    let mut child = Command::new(SALDO)
        .args(args)
        .env_remove("SALDO_DATA")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("saldo {args:?} blocked for 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A character device to write to, as the test may: one of its own made
/// with mknod where it can (as root), so that `/dev/null` is never put at
/// risk; otherwise `/dev/null` itself, which a user cannot replace anyway.
fn a_character_device(dir: &Path) -> PathBuf {
    let own = dir.join("null-device");
    let made = Command::new("mknod").arg(&own).args(["c", "1", "3"]).stderr(Stdio::null()).status();
    if made.is_ok_and(|s| s.success()) { own } else { PathBuf::from("/dev/null") }
}

/// What an operator relies on: `--out` writes a file where asked and never
/// replaces something else. A named pipe, a symbolic link (whose target
/// would be detached), a directory and a device are each refused with what
/// to do instead, and left exactly as they were, by every command that
/// writes with `--out`.
#[test]
fn out_refuses_a_named_pipe_a_symlink_a_directory_and_a_device_and_leaves_them_as_they_were() {
    use std::os::unix::fs::FileTypeExt as _;
    let hub = realm(5);
    let tmp = hub.dir.parent().unwrap().to_path_buf();
    let fifo = tmp.join("pipe");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let target = tmp.join("real.bin");
    std::fs::write(&target, b"keep me").unwrap();
    let link = tmp.join("link.bin");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let directory = tmp.join("a-directory");
    std::fs::create_dir(&directory).unwrap();
    let device = a_character_device(&tmp);
    ok(&["bundle", "frontier", "--data", hub.data(), "--out", &hub.file("hub.frontier")]);

    for (out, says) in [
        (&fifo, "is a named pipe (FIFO), not a regular file"),
        (&link, "is a symbolic link"),
        (&directory, "is a directory"),
        (&device, "is a character device, not a regular file"),
    ] {
        let out_text = out.to_str().unwrap();
        for args in [
            vec!["bundle", "export", "--data", hub.data(), "--out", out_text],
            vec!["bundle", "export", "--data", hub.data(), "--out", out_text, "--for", &hub.file("hub.frontier")],
            vec!["bundle", "frontier", "--data", hub.data(), "--out", out_text],
            vec!["generate", "--consumers", "3", "--out", out_text],
        ] {
            let before = dump(&hub.dir);
            let result = saldo_within_30_s(&args);
            let stderr = String::from_utf8_lossy(&result.stderr);
            assert!(!result.status.success(), "saldo {args:?} wrote to {out_text}");
            assert!(stderr.contains(says), "saldo {args:?} said {stderr:?}, expected {says:?}");
            assert_eq!(dump(&hub.dir), before, "saldo {args:?} changed the database");
        }
    }
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
    assert!(std::fs::symlink_metadata(&directory).unwrap().is_dir());
    assert_eq!(std::fs::read_dir(&directory).unwrap().count(), 0);
    assert!(std::fs::symlink_metadata(&device).unwrap().file_type().is_char_device());
    assert!(std::fs::symlink_metadata("/dev/null").unwrap().file_type().is_char_device());
    // Nothing half-written was left beside them.
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // A regular file is replaced whole, and a symlink's real path works.
    let csv = target.to_str().unwrap();
    ok(&["generate", "--consumers", "3", "--out", csv]);
    assert!(std::fs::read_to_string(&target).unwrap().lines().count() > 1);
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
}
