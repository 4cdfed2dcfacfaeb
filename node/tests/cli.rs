//! The `saldo` binary as an operator and an administrator use it: real
//! processes on a real data directory.

use std::path::{Path, PathBuf};

use saldo_node::store::Store;

mod common;
use common::{ok, saldo};
#[path = "cli/bundles.rs"]
mod bundles;
#[path = "cli/commands.rs"]
mod commands;
#[path = "cli/contacts_privacy.rs"]
mod contacts_privacy;
#[path = "cli/crash_safety.rs"]
mod crash_safety;
#[path = "cli/files.rs"]
mod files;
#[path = "cli/floors_and_limits.rs"]
mod floors_and_limits;
#[path = "cli/imports.rs"]
mod imports;
#[path = "cli/operators.rs"]
mod operators;
#[path = "cli/reports.rs"]
mod reports;
#[path = "cli/top_ups.rs"]
mod top_ups;

fn dump(dir: &Path) -> Vec<String> {
    Store::open(&dir.join("saldo.db")).unwrap().dump().unwrap()
}

struct Realm {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Realm {
    fn data(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    /// A consumer with exactly one service, and one with several: (pan, service).
    fn consumers(&self) -> ((String, String), (String, Vec<String>)) {
        let mut list: Vec<serde_json::Value> = Vec::new();
        for prefix in
            ["ro", "ma", "ri", "co", "ga", "fe", "ba", "be", "gi", "de", "sa", "pa", "mo", "ca", "lo", "me", "vi"]
        {
            let found: serde_json::Value =
                serde_json::from_str(&ok(&["search", "--data", self.data(), prefix, "--limit", "50", "--json"]))
                    .unwrap();
            list.extend(found["consumers"].as_array().unwrap().iter().cloned());
        }
        let services = |c: &serde_json::Value| -> Vec<String> {
            c["wallets"].as_array().unwrap().iter().map(|w| w["service"].as_str().unwrap().to_string()).collect()
        };
        let one = list.iter().find(|c| services(c).len() == 1).expect("someone with one service");
        let many = list.iter().find(|c| services(c).len() > 1).expect("someone with several services");
        (
            (one["pan"].as_str().unwrap().to_string(), services(one)[0].clone()),
            (many["pan"].as_str().unwrap().to_string(), services(many)),
        )
    }
}

fn realm(consumers: u64) -> Realm {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hub");
    ok(&["realm", "init", "--data", dir.to_str().unwrap(), "--name", "Comune di Prova"]);
    let csv = tmp.path().join("families.csv");
    ok(&["generate", "--consumers", &consumers.to_string(), "--out", csv.to_str().unwrap(), "--seed", "5"]);
    ok(&["families", "import", "--data", dir.to_str().unwrap(), csv.to_str().unwrap()]);
    Realm { _tmp: tmp, dir }
}

/// A realm from a generated file of 3 consumers whose first row `edit` changes.
struct EditedRealm {
    realm: Realm,
    first_row: Vec<String>,
}

impl std::ops::Deref for EditedRealm {
    type Target = Realm;
    fn deref(&self) -> &Realm {
        &self.realm
    }
}

fn realm_from_rows(edit: impl FnOnce(&mut Vec<String>)) -> EditedRealm {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hub");
    ok(&["realm", "init", "--data", dir.to_str().unwrap(), "--name", "Comune di Prova"]);
    let mut csv = Vec::new();
    saldo_node::generate::write_csv(&mut csv, 3, 5).unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_slice());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
    let mut rows: Vec<Vec<String>> =
        reader.records().map(|r| r.unwrap().iter().map(str::to_string).collect()).collect();
    edit(&mut rows[0]);
    let file = tmp.path().join("families.csv");
    let mut writer = csv::Writer::from_path(&file).unwrap();
    writer.write_record(&header).unwrap();
    for row in &rows {
        writer.write_record(row).unwrap();
    }
    writer.flush().unwrap();
    ok(&["families", "import", "--data", dir.to_str().unwrap(), file.to_str().unwrap()]);
    EditedRealm { realm: Realm { _tmp: tmp, dir }, first_row: rows.swap_remove(0) }
}

/// Runs a command that must fail, and checks its message and that the data
/// directory is exactly as before.
fn check_refused(realm: &Realm, args: &[&str], expected_message: &str) {
    let before = dump(&realm.dir);
    let out = saldo(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "saldo {args:?} should fail");
    assert!(stderr.contains(expected_message), "saldo {args:?} said {stderr:?}, expected {expected_message:?}");
    assert_eq!(dump(&realm.dir), before, "saldo {args:?} changed the database");
}

/// Enrols a new cash point named `name` in `realm` (as the hub, with the
/// default limits); returns its key.
fn enrol_cash_point(realm: &Realm, name: &str) -> saldo_sync::DeviceKey {
    let mut node = saldo_node::node::Node::open(&realm.dir).unwrap();
    let key = saldo_sync::DeviceKey::generate();
    node.enrol(
        key.author(),
        saldo_sync::Role::CashPoint,
        &saldo_sync::Label::parse(name).unwrap(),
        saldo_sync::OfflineLimits::default_for_cash_point(),
    )
    .unwrap();
    key
}

/// A realm, a consumer with one wallet and one with several: (realm, pan, multi-wallet pan).
fn top_up_setup() -> (Realm, String, String) {
    let realm = realm(40);
    let ((pan, _), (multi, _)) = realm.consumers();
    (realm, pan, multi)
}

/// `saldo topup` with `amount` and `extra` arguments is refused with `message`
/// and leaves the database as it was.
fn check_top_up_refused(realm: &Realm, pan: &str, amount: &str, extra: &[&str], message: &str) {
    let mut args = vec!["topup", "--data", realm.data(), "--pan", pan, "--amount", amount, "--method", "cash"];
    args.extend_from_slice(extra);
    check_refused(realm, &args, message);
}

impl Realm {
    /// A path for a file of this test, beside the data directory.
    fn file(&self, name: &str) -> String {
        self.dir.parent().unwrap().join(name).to_str().unwrap().to_string()
    }
}
