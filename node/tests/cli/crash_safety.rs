//! What an operator relies on when something goes wrong: top-ups killed at
//! random moments, a large bundle imported beside a top-up or killed
//! half-way, and a full disk.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use saldo_node::store::Store;
use saldo_sync::OpId;

use super::common::{SALDO, ok, saldo};
use super::{Realm, realm, top_up_setup};

/// What an operator relies on when the power goes: every top-up whose receipt
/// was printed is still there after a crash, and the database is intact.
/// A loop of real `saldo topup` processes is killed with SIGKILL at random
/// moments, at least 20 times, and restarted each time.
#[test]
fn top_ups_survive_being_killed_at_random_moments() {
    let realm = realm(20);
    let ((pan, service), _) = realm.consumers();
    let mut rng =
        fastrand::Rng::with_seed(std::env::var("SALDO_KILL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(2026));
    let mut acknowledged: Vec<String> = Vec::new();
    let kills = 24;
    for round in 0..kills {
        let script = format!(
            "while :; do \"$SALDO\" topup --data '{}' --pan {pan} --service {service} --amount 1 --method cash || exit 1; done",
            realm.data()
        );
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&script)
            .env("SALDO", SALDO)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|line| line.strip_prefix("Verification code: ").map(str::to_string))
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_millis(rng.u64(30..400)));
        let status = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status().unwrap();
        assert!(status.success());
        child.wait().unwrap();
        let acked = reader.join().unwrap();
        acknowledged.extend(acked);
        // Restart: the database opens, is intact, holds every acknowledged top-up.
        let store = Store::open(&realm.dir.join("saldo.db")).unwrap();
        assert_eq!(store.integrity_check().unwrap(), "ok", "round {round}");
        drop(store);
        let mut store = Store::open(&realm.dir.join("saldo.db")).unwrap();
        let tx = store.read().unwrap();
        for code in &acknowledged {
            let prefix = hex::decode(code).unwrap();
            let held = tx.money_ops_with_prefix(&prefix).unwrap();
            assert_eq!(held.len(), 1, "round {round}: acknowledged top-up {code} lost");
            assert!(tx.op_bytes(&held[0]).unwrap().is_some(), "round {round}: acknowledged top-up {code} lost");
        }
        drop(tx);
        let verify = ok(&["log", "verify", "--data", realm.data()]);
        assert!(verify.contains("every signature, chain link and balance verifies"), "round {round}: {verify}");
    }
    eprintln!("{kills} kills, {} acknowledged top-ups, all present", acknowledged.len());
    assert!(acknowledged.len() >= kills, "the loop recorded too few top-ups to mean anything: {}", acknowledged.len());
    let balance: serde_json::Value =
        serde_json::from_str(&ok(&["balance", "--data", realm.data(), "--pan", &pan, "--json"])).unwrap();
    let confirmed = balance["wallets"][0]["confirmed"].as_str().unwrap().to_string();
    let cents: i64 = confirmed.replace('.', "").parse().unwrap();
    assert!(
        cents >= acknowledged.len() as i64 * 100,
        "balance {confirmed} is below the {} acknowledged top-ups",
        acknowledged.len()
    );
}

/// A cash point newly enrolled at `realm`'s hub, with limits that let
/// every top-up through, and a bundle of `count` top-ups it recorded, as it
/// would carry them to the hub: (the bundle file, the cash point).
fn bundle_of_top_ups(realm: &Realm, count: u64) -> (PathBuf, saldo_sync::AuthorId) {
    use saldo_sync::{Amount, Balance, Body, Hlc, Operation, PaymentMethod, ReceiptNo, TopUp, TopUpLine, WalletKey};
    let ((pan, _), _) = realm.consumers();
    let mut hub = saldo_node::node::Node::open(&realm.dir).unwrap();
    let key = saldo_sync::DeviceKey::generate();
    let limits = saldo_sync::OfflineLimits {
        per_operation: Amount::parse("5000").unwrap(),
        unconfirmed_total: Balance::parse("100000000").unwrap(),
        offline_secs_max: 10 * 365 * 86_400,
    };
    hub.enrol(key.author(), saldo_sync::Role::CashPoint, &saldo_sync::Label::parse("Sportello").unwrap(), limits)
        .unwrap();
    let (consumer, service) = hub.resolve_wallet(&saldo_sync::Pan::parse(&pan).unwrap(), None).unwrap();
    let wallet = WalletKey { consumer: consumer.consumer, service };
    let realm_id = hub.realm();
    let hub_seen = hub.store_mut().read().unwrap().author(&realm_id.hub()).unwrap().unwrap().head_seq;
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let mut prev = OpId::NONE;
    let ops: Vec<Vec<u8>> = (1..=count)
        .map(|seq| {
            let op = Operation {
                author: key.author(),
                seq: saldo_sync::Seq(seq),
                prev,
                hlc: Hlc::from_parts(now_ms - 60_000 - count + seq, 0),
                hub_seen,
                body: Body::TopUp(TopUp {
                    receipt: ReceiptNo(seq),
                    lines: vec![TopUpLine { wallet: wallet.clone(), amount: Amount::parse("1").unwrap() }],
                    method: PaymentMethod::Cash,
                    operator: None,
                }),
            }
            .sign(&realm_id, &key);
            prev = op.id;
            op.to_bytes()
        })
        .collect();
    let body = saldo_sync::bundle::BundleBody { realm: realm_id, exporter: key.author(), created_ms: now_ms, ops };
    let file = realm._tmp.path().join("sportello.bundle");
    std::fs::write(&file, body.seal(&key)).unwrap();
    (file, key.author())
}

/// How many operations of `author` the database in `dir` holds, in its chain.
fn held_of(dir: &Path, author: &saldo_sync::AuthorId) -> u64 {
    let mut store = Store::open(&dir.join("saldo.db")).unwrap();
    let tx = store.read().unwrap();
    tx.author(author).unwrap().map_or(0, |a| a.head_seq.0)
}

/// `saldo bundle import` of `file` into `realm`, running.
fn spawn_import(realm: &Realm, file: &Path) -> std::process::Child {
    Command::new(SALDO)
        .args(["bundle", "import", "--data", realm.data(), file.to_str().unwrap(), "--json"])
        .env_remove("SALDO_DATA")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the import into `dir` has committed some of `author`'s
/// operations, and returns how many.
fn wait_for_first_commit(dir: &Path, author: &saldo_sync::AuthorId, import: &mut std::process::Child) -> u64 {
    let started = std::time::Instant::now();
    loop {
        let held = held_of(dir, author);
        if held > 0 {
            return held;
        }
        assert!(import.try_wait().unwrap().is_none(), "the import ended before anything of it was seen committed");
        assert!(started.elapsed() < Duration::from_secs(60), "the import committed nothing in a minute");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// An operator recording a top-up while another process imports a large
/// bundle on the same data directory gets the receipt at once: the import
/// commits in short transactions and lets the top-up through between two of
/// them. Both complete, and everything is stored.
#[test]
fn a_top_up_goes_through_while_another_process_imports_a_large_bundle() {
    let (realm, pan, _) = top_up_setup();
    let count = 20_000;
    let (file, cash_point) = bundle_of_top_ups(&realm, count);
    let mut import = spawn_import(&realm, &file);
    wait_for_first_commit(&realm.dir, &cash_point, &mut import);

    let started = std::time::Instant::now();
    let out =
        saldo(&["topup", "--data", realm.data(), "--pan", &pan, "--amount", "2.50", "--method", "cash", "--json"]);
    let waited = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the top-up failed after {waited:?}: {stderr}");
    let held_then = held_of(&realm.dir, &cash_point);
    assert!(held_then < count, "the top-up went through only once the import was over ({waited:?})");

    let imported = import.wait_with_output().unwrap();
    assert!(imported.status.success(), "the import failed: {}", String::from_utf8_lossy(&imported.stderr));
    let report: serde_json::Value = serde_json::from_slice(&imported.stdout).unwrap();
    assert_eq!(report["new"], count, "{report}");
    assert_eq!(report["refused"].as_array().unwrap().len(), 0, "{report}");
    let receipt: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = OpId::from_hex(receipt["operation"].as_str().unwrap()).unwrap();
    let mut store = Store::open(&realm.dir.join("saldo.db")).unwrap();
    assert!(store.read().unwrap().op_bytes(&id).unwrap().is_some(), "the top-up is not stored");
    drop(store);
    assert_eq!(held_of(&realm.dir, &cash_point), count);
    let verify = ok(&["log", "verify", "--data", realm.data()]);
    assert!(verify.contains("every signature, chain link and balance verifies"), "{verify}");
    eprintln!("the top-up took {waited:?}, with {held_then} of {count} operations imported");
}

/// An import that fails half-way (here: killed) leaves whole transactions
/// only, each operation with its effects and the hub's verdicts, and
/// importing the same bundle again stores the rest.
#[test]
fn a_killed_import_leaves_whole_transactions_and_importing_again_completes_it() {
    let realm = realm(20);
    let count = 20_000;
    let (file, cash_point) = bundle_of_top_ups(&realm, count);
    let mut import = spawn_import(&realm, &file);
    wait_for_first_commit(&realm.dir, &cash_point, &mut import);
    import.kill().unwrap();
    import.wait().unwrap();

    let held = held_of(&realm.dir, &cash_point);
    assert!(0 < held && held < count, "killed with {held} of {count} operations stored");
    let store = Store::open(&realm.dir.join("saldo.db")).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    drop(store);
    let verify = ok(&["log", "verify", "--data", realm.data()]);
    assert!(verify.contains("every signature, chain link and balance verifies"), "{verify}");

    let report: serde_json::Value =
        serde_json::from_str(&ok(&["bundle", "import", "--data", realm.data(), file.to_str().unwrap(), "--json"]))
            .unwrap();
    assert_eq!((report["new"].as_u64(), report["duplicates"].as_u64()), (Some(count - held), Some(held)), "{report}");
    assert_eq!(report["refused"].as_array().unwrap().len(), 0, "{report}");
    assert_eq!(held_of(&realm.dir, &cash_point), count);
    let verify = ok(&["log", "verify", "--data", realm.data()]);
    assert!(verify.contains("every signature, chain link and balance verifies"), "{verify}");
}

/// Unmounts a file system the test mounted, however the test ends.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// On a full disk a command that writes says the disk is full, naming the
/// data directory, and writes nothing; reads (search, balance, status, the
/// review list) go on working, also when no node holds the database open;
/// with space again, writing works. Runs on a
/// small tmpfs, so only where this test may mount one (as root); elsewhere
/// the library test `an_import_that_fills_the_disk_says_so_and_what_it_wrote`
/// covers the full disk through SQLite's page limit.
#[test]
fn a_full_disk_is_named_and_reads_still_work() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = tmp.path().join("disk");
    std::fs::create_dir_all(&disk).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
        .arg(&disk)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("cannot mount a tmpfs here: the full disk is tested through SQLite's page limit only");
        return;
    }
    let _unmount = Mounted(disk.clone());
    let dir = disk.join("hub");
    let d = dir.to_str().unwrap();
    let csv = tmp.path().join("families.csv");
    ok(&["realm", "init", "--data", d, "--name", "Comune di Prova"]);
    ok(&["generate", "--consumers", "40", "--out", csv.to_str().unwrap(), "--seed", "5"]);
    ok(&["families", "import", "--data", d, csv.to_str().unwrap()]);
    let realm = Realm { _tmp: tempfile::tempdir().unwrap(), dir: dir.clone() };
    let ((pan, _), _) = realm.consumers();
    // No process holds the database open: SQLite would have to make its
    // shared-memory file, on a disk with no room for it.
    assert!(!dir.join("saldo.db-shm").exists());
    let filler = disk.join("filler");
    {
        use std::io::Write as _;
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        let _ = file.sync_all();
    }
    let topup = ["topup", "--data", d, "--pan", &pan, "--amount", "10", "--method", "cash"];
    let out = saldo(&topup);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a top-up on a full disk succeeded");
    assert!(stderr.contains(&format!("the disk holding {d} is full: free space and try again")), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(ok(&["search", "--data", d, "ro"]).contains("PAN"));
    assert!(ok(&["balance", "--data", d, "--pan", &pan]).contains("PAN"));
    assert!(ok(&["status", "--data", d]).contains("role:"));
    ok(&["review", "list", "--data", d]);
    std::fs::remove_file(&filler).unwrap();
    assert!(ok(&topup).contains("RICEVUTA"));
    ok(&["log", "verify", "--data", d]);
}
