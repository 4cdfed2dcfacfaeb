//! The `saldo` binary as an operator and an administrator use it: real
//! processes on a real data directory.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use saldo_node::store::Store;
use saldo_sync::OpId;

mod common;
use common::{SALDO, ok, saldo};
#[path = "cli/reports.rs"]
mod reports;

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

#[test]
fn an_amount_with_three_decimals_is_refused_and_changes_nothing() {
    let (realm, pan, _) = top_up_setup();
    check_top_up_refused(
        &realm,
        &pan,
        "12.345",
        &[],
        "\"12.345\" has more than two decimals: amounts are in euro and cents",
    );
}

#[test]
fn a_zero_amount_is_refused_and_changes_nothing() {
    let (realm, pan, _) = top_up_setup();
    check_top_up_refused(&realm, &pan, "0", &[], "the amount must be greater than zero");
}

#[test]
fn a_negative_amount_is_refused_and_changes_nothing() {
    let (realm, pan, _) = top_up_setup();
    check_top_up_refused(&realm, &pan, "-5", &[], "\"-5\" is negative: amounts are positive");
}

#[test]
fn an_amount_with_an_exponent_is_refused_and_changes_nothing() {
    let (realm, pan, _) = top_up_setup();
    check_top_up_refused(&realm, &pan, "1e3", &[], "\"1e3\" uses an exponent: write the amount in plain digits");
}

#[test]
fn an_amount_over_the_limit_is_refused_and_changes_nothing() {
    let (realm, pan, _) = top_up_setup();
    check_top_up_refused(&realm, &pan, "5000.01", &[], "5000.01 is over the limit of 5000.00 EUR for one operation");
    check_top_up_refused(&realm, &pan, "12,3,4", &[], "is not an amount");
}

#[test]
fn an_invalid_pan_is_refused_and_changes_nothing() {
    let (realm, pan, _) = top_up_setup();
    let mut wrong_check = pan.clone().into_bytes();
    let last = wrong_check.len() - 1;
    wrong_check[last] = if wrong_check[last] == b'9' { b'0' } else { wrong_check[last] + 1 };
    let wrong_check = String::from_utf8(wrong_check).unwrap();
    check_top_up_refused(&realm, &wrong_check, "5", &[], "the PAN's last digit does not match (check digit should be");
    check_top_up_refused(&realm, "12AB5678", "5", &[], "the PAN contains 'A': a PAN has only digits");
    check_top_up_refused(&realm, "1234567", "5", &[], "the PAN has 7 digits: a PAN has 8 to 19 digits");
}

#[test]
fn an_unknown_consumer_is_refused_and_changes_nothing() {
    let (realm, _, _) = top_up_setup();
    // A well-formed PAN that nobody has.
    check_top_up_refused(&realm, "4111111111111111", "5", &[], "no consumer has PAN 4111111111111111");
}

#[test]
fn a_service_the_consumer_is_not_enrolled_in_is_refused_and_changes_nothing() {
    let (realm, pan, multi) = top_up_setup();
    check_top_up_refused(&realm, &pan, "5", &["--service", "piscina"], "is not enrolled in the service 'piscina'");
    check_top_up_refused(&realm, &multi, "5", &[], "say which service (with --service)");
    let args = ["topup", "--data", realm.data(), "--pan", &pan, "--amount", "5", "--method", "cheque"];
    check_refused(&realm, &args, "\"cheque\" is not a payment method");
}

#[test]
fn a_top_up_prints_its_receipt_and_the_balance_shows_it() {
    let realm = realm(40);
    let ((pan, service), _) = realm.consumers();
    let d = realm.data();
    let receipt: serde_json::Value = serde_json::from_str(&ok(&[
        "topup",
        "--data",
        d,
        "--pan",
        &pan,
        "--amount",
        "12,50",
        "--method",
        "debit-card",
        "--operator",
        "Giulia",
        "--json",
    ]))
    .unwrap();
    assert_eq!(receipt["total"], "12.50");
    assert_eq!(receipt["lines"][0]["service"], service.as_str());
    assert_eq!(receipt["lines"][0]["balance_after"], "12.50");
    assert_eq!(receipt["provisional"], false);
    assert_eq!(receipt["receipt_number"], 1);
    assert!(receipt["lines"][0]["pan_masked"].as_str().unwrap().ends_with(&pan[pan.len() - 4..]));
    let text = ok(&["topup", "--data", d, "--pan", &pan, "--amount", "7.50", "--method", "cash"]);
    assert!(text.contains("RICEVUTA / RECEIPT no. 2"), "{text}");
    assert!(text.contains("20.00 EUR"), "{text}");
    let balance: serde_json::Value =
        serde_json::from_str(&ok(&["balance", "--data", d, "--pan", &pan, "--json"])).unwrap();
    assert_eq!(balance["wallets"][0]["confirmed"], "20.00");
    assert_eq!(balance["wallets"][0]["movements"].as_array().unwrap().len(), 2);
    let verify = ok(&["log", "verify", "--data", d]);
    assert!(verify.contains("every signature, chain link and balance verifies"), "{verify}");
}

#[test]
fn search_finds_by_pan_codice_fiscale_and_name_without_case_or_accents() {
    let realm = realm(1000);
    let d = realm.data();
    let json = |query: &str| -> Vec<serde_json::Value> {
        serde_json::from_str::<serde_json::Value>(&ok(&["search", "--data", d, query, "--limit", "50", "--json"]))
            .unwrap()["consumers"]
            .as_array()
            .unwrap()
            .clone()
    };
    // "dangelo" finds "D'Angelo": apostrophes and case do not matter.
    let with_apostrophe =
        json("da").into_iter().find(|c| c["surname"].as_str().unwrap().contains('\'')).expect("a D'… surname");
    let surname = with_apostrophe["surname"].as_str().unwrap().to_string();
    let typed: String = surname.to_lowercase().chars().filter(|c| c.is_alphanumeric()).collect();
    let found = json(&typed);
    assert!(!found.is_empty() && found.iter().all(|c| c["surname"] == surname.as_str()), "{typed}: {found:?}");
    // "nicolo" finds "Nicolò": accents do not matter.
    let nicolo = json("NICOLO");
    assert!(nicolo.iter().any(|c| c["name"] == "Nicolò" || c["surname"] == "Nicolò"), "{nicolo:?}");
    let someone = &found[0];
    let by_pan = json(someone["pan"].as_str().unwrap());
    assert_eq!(by_pan.len(), 1);
    assert_eq!(by_pan[0]["consumer"], someone["consumer"]);
    let by_code = json(&someone["fiscal_code"].as_str().unwrap().to_lowercase());
    assert_eq!(by_code[0]["consumer"], someone["consumer"]);
    let full = json(&format!("{} {}", someone["surname"].as_str().unwrap(), someone["name"].as_str().unwrap()));
    assert!(full.iter().any(|c| c["consumer"] == someone["consumer"]));
    let out = saldo(&["search", "--data", d, "x"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("type at least 2 letters"));
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

const HEADER: &str = "payer_fiscal_code;payer_surname;payer_name;email;phone;consumer_fiscal_code;consumer_surname;consumer_name;pan;school;class;services";

#[test]
fn an_invalid_codice_fiscale_or_a_malformed_row_is_reported_by_line_and_changes_nothing() {
    let realm = realm(20);
    let d = realm.data();
    let file = realm.dir.join("bad.csv");
    write(
        &file,
        &format!(
            "{HEADER}\nRSSMRA85T10A562S;Rossi;Mario;m@example.com;+39 333 1234567;MRTMTT25D09F205A;Moretti;Matteo;;Rodari;3B;Mensa\n\
             RSSMRA85T10A562S;Rossi;Mario;not-an-email;;MRTMTT25D09F205Z;Moretti;Matteo;;Rodari;3B;Mensa\n\
             RSSMRA85T10A562S;Rossi;Mario;;;MRTMTT25D09F205Z;Moretti;Matteo;4111111111111112;Rodari;3B;Mensa\n\
             RSSMRA85T10A562S;Rossi;Mario;;;MRTMTT25D09F205Z;Moretti;\"Matteo;;Rodari;3B;Mensa\n"
        ),
    );
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.extend_from_slice(b"RSSMRA85T10A562S;Rossi;Mario;;;MRTMTT25D09F205Z;Moretti;Matt\xffeo;;Rodari;3B;Mensa\n");
    std::fs::write(&file, bytes).unwrap();
    let before = dump(&realm.dir);
    let out = ok(&["families", "import", "--data", d, file.to_str().unwrap()]);
    assert!(out.contains("line 2: consumer_fiscal_code \"MRTMTT25D09F205A\": the codice fiscale's check character is 'A' but should be 'Z'"), "{out}");
    assert!(out.contains("line 3: email \"not-an-email\" has no '@'"), "{out}");
    assert!(out.contains("line 4: pan \"4111111111111112\": the PAN's last digit does not match"), "{out}");
    assert!(out.contains("line 5: a quote opened on this line is never closed"), "{out}");
    assert!(out.contains("0 imported, 4 rejected"), "{out}");
    assert_eq!(dump(&realm.dir), before);
}

#[test]
fn good_rows_go_in_bad_rows_are_reported_and_a_reimport_changes_nothing() {
    let realm = realm(20);
    let d = realm.data();
    let file = realm.dir.join("mixed.csv");
    write(
        &file,
        &format!(
            "\u{feff}{HEADER};notes\n\
             RSSMRA85T10A562S;Rossi;Mario;m@example.com;+39 333 1234567;MRTMTT25D09F205Z;Moretti;Matteo;;Scuola primaria Rodari;3B;Mensa;ignored\n\
             RSSMRA85T10A562S;Rossi;Mario;;;MRTMTT25D09F205Z;Moretti;Matteo;;Rodari;3B;Mensa;a duplicate\n\
             RSSMRA85T10A562S;Rossi;Mario;;;MRTMTT25D09F205Z;Moretti;Matteo;;Rodari;3B;;no services\n"
        ),
    );
    let out = ok(&["families", "import", "--data", d, file.to_str().unwrap()]);
    assert!(out.contains("line 3: consumer MRTMTT25D09F205Z already appears on line 2"), "{out}");
    assert!(out.contains("line 4: services is empty"), "{out}");
    assert!(out.contains("3 rows read: 1 imported, 2 rejected"), "{out}");
    let found: serde_json::Value =
        serde_json::from_str(&ok(&["search", "--data", d, "MRTMTT25D09F205Z", "--json"])).unwrap();
    let found = &found["consumers"];
    assert_eq!(found[0]["name"], "Matteo");
    assert_eq!(found[0]["class"], "3B");
    // The payer's codice fiscale (a parent's CRS/CNS card) finds the children too.
    let by_payer: serde_json::Value =
        serde_json::from_str(&ok(&["search", "--data", d, "RSSMRA85T10A562S", "--json"])).unwrap();
    assert_eq!(by_payer["consumers"][0]["consumer"], found[0]["consumer"]);
    // Contact data went to the family's contacts document, kept at the hub.
    {
        let mut store = Store::open(&realm.dir.join("saldo.db")).unwrap();
        let tx = store.read().unwrap();
        let payer = saldo_sync::CodiceFiscale::parse("RSSMRA85T10A562S").unwrap();
        let contacts = tx.contacts(&saldo_sync::FamilyId::derive(&payer)).unwrap();
        assert_eq!(contacts, Some((Some("m@example.com".to_string()), Some("+39 333 1234567".to_string()))));
    }
    let before = dump(&realm.dir);
    let again = ok(&["families", "import", "--data", d, file.to_str().unwrap()]);
    assert!(again.contains("0 directory changes written"), "{again}");
    assert_eq!(dump(&realm.dir), before, "re-importing the same file changed the database");
}

#[test]
fn services_keep_their_floor_and_tariff() {
    let realm = realm(5);
    let d = realm.data();
    let listed = ok(&["services", "list", "--data", d]);
    assert!(listed.contains("mensa") && listed.contains("floor     0.00 EUR"), "{listed}");
    let set: serde_json::Value = serde_json::from_str(&ok(&[
        "services", "set", "--data", d, "--name", "Mensa", "--floor", "-50", "--tariff", "4,50", "--json",
    ]))
    .unwrap();
    assert_eq!((set["floor"].as_str(), set["tariff"].as_str()), (Some("-50.00"), Some("4.50")));
    let again: serde_json::Value =
        serde_json::from_str(&ok(&["services", "set", "--data", d, "--name", "Mensa", "--tariff", "5", "--json"]))
            .unwrap();
    assert_eq!(
        (again["floor"].as_str(), again["tariff"].as_str()),
        (Some("-50.00"), Some("5.00")),
        "an unnamed field is kept"
    );
    check_refused(
        &realm,
        &["services", "set", "--data", d, "--name", "Mensa", "--floor", "10"],
        "zero or negative, like -20.00 (with --floor)",
    );
    check_refused(
        &realm,
        &["services", "set", "--data", d, "--name", "Mensa", "--tariff", "4.555"],
        "more than two decimals",
    );
    assert!(ok(&["log", "verify", "--data", d]).contains("verifies"));
}

#[test]
fn a_file_without_the_needed_columns_is_refused_whole() {
    let realm = realm(5);
    let file = realm.dir.join("columns.csv");
    write(&file, "surname,name\nRossi,Mario\n");
    check_refused(
        &realm,
        &["families", "import", "--data", realm.data(), file.to_str().unwrap()],
        "the header has no column \"payer_fiscal_code\"",
    );
}

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

/// The hub's status counts no operation of its own as unconfirmed: the
/// hub's top-ups need no verdict.
#[test]
fn the_hubs_own_top_ups_are_not_unconfirmed() {
    let (realm, pan, _) = top_up_setup();
    ok(&["topup", "--data", realm.data(), "--pan", &pan, "--amount", "10", "--method", "cash"]);
    let status: serde_json::Value = serde_json::from_str(&ok(&["status", "--data", realm.data(), "--json"])).unwrap();
    assert_eq!(
        (status["unconfirmed_operations"].as_u64(), status["unconfirmed_total"].as_str()),
        (Some(0), Some("0.00"))
    );
}

/// A clock stopped at a given time.
#[derive(Debug)]
struct StoppedClock(u64);

impl saldo_node::Clock for StoppedClock {
    fn now_ms(&self) -> u64 {
        self.0
    }
}

/// A cash point that imports a week-old bundle of the hub says its last
/// contact with the hub was a week ago (the time of the newest operation of
/// the hub it holds), not "just now".
#[test]
fn a_week_old_bundle_from_the_hub_is_no_contact_now() {
    let tmp = tempfile::tempdir().unwrap();
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let week_ago_ms = now_ms - 7 * 86_400_000;
    let (hub_dir, cp_dir) = (tmp.path().join("hub"), tmp.path().join("edicola"));
    let mut hub = saldo_node::node::Node::init_realm_with(
        &hub_dir,
        &saldo_sync::Label::parse("Comune di Prova").unwrap(),
        saldo_sync::DeviceKey::generate(),
        saldo_sync::DeviceKey::generate(),
        std::sync::Arc::new(StoppedClock(week_ago_ms)),
    )
    .unwrap();
    let key = saldo_sync::DeviceKey::generate();
    hub.enrol(
        key.author(),
        saldo_sync::Role::CashPoint,
        &saldo_sync::Label::parse("Edicola").unwrap(),
        saldo_sync::OfflineLimits::default_for_cash_point(),
    )
    .unwrap();
    let mut cash_point = saldo_node::node::Node::join(&cp_dir, hub.realm(), key).unwrap();
    let (bundle, _) = hub.export_bundle(Some(&cash_point.frontier_file().unwrap().1)).unwrap();
    drop((hub, cash_point));
    let file = tmp.path().join("week-old.bundle");
    std::fs::write(&file, bundle).unwrap();

    ok(&["bundle", "import", "--data", cp_dir.to_str().unwrap(), file.to_str().unwrap()]);
    let status: serde_json::Value =
        serde_json::from_str(&ok(&["status", "--data", cp_dir.to_str().unwrap(), "--json"])).unwrap();
    let contact_ms = status["last_hub_contact_ms"].as_u64().expect("a contact with the hub");
    assert!(
        contact_ms.abs_diff(week_ago_ms) < 60_000,
        "last contact {} ms ago, the hub's newest operation is a week old",
        now_ms.saturating_sub(contact_ms)
    );
}

/// An offline cash point and the hub exchange operations on files only: the
/// directory goes out, top-ups come back, decisions go out again; importing
/// twice changes nothing and an altered bundle is refused whole.
#[test]
fn bundles_carry_a_cash_points_top_ups_to_the_hub_and_its_decisions_back() {
    let (hub, pan, _) = top_up_setup();
    let tmp = hub._tmp.path();
    let cp_dir = tmp.join("farmacia");
    let key = enrol_cash_point(&hub, "Farmacia Comunale");
    let realm_id = saldo_node::node::Node::open(&hub.dir).unwrap().realm();
    saldo_node::node::Node::join(&cp_dir, realm_id, key).unwrap();
    let cp = Realm { _tmp: tempfile::tempdir().unwrap(), dir: cp_dir };
    let file = |name: &str| tmp.join(name).to_str().unwrap().to_string();
    let json = |text: String| -> serde_json::Value { serde_json::from_str(&text).unwrap() };

    // The hub's log (directory, enrolment) goes to the cash point.
    ok(&["bundle", "frontier", "--data", cp.data(), "--out", &file("cp.frontier")]);
    ok(&["bundle", "export", "--data", hub.data(), "--out", &file("to-cp.bundle"), "--for", &file("cp.frontier")]);
    let report = json(ok(&["bundle", "import", "--data", cp.data(), &file("to-cp.bundle"), "--json"]));
    assert!(report["new"].as_u64().unwrap() > 20 && report["new"] == report["operations"], "{report}");
    assert_eq!(report["refused"].as_array().unwrap().len(), 0, "{report}");

    // Offline, the cash point records a top-up: provisional.
    let receipt =
        json(ok(&["topup", "--data", cp.data(), "--pan", &pan, "--amount", "12.50", "--method", "cash", "--json"]));
    assert_eq!(receipt["provisional"], true);

    // Its operations go to the hub: only what the hub lacks.
    ok(&["bundle", "frontier", "--data", hub.data(), "--out", &file("hub.frontier")]);
    let exported = json(ok(&[
        "bundle",
        "export",
        "--data",
        cp.data(),
        "--out",
        &file("to-hub.bundle"),
        "--for",
        &file("hub.frontier"),
        "--json",
    ]));
    assert_eq!(exported["operations"], 1);

    // Altered anywhere, the bundle is refused whole, and the hub is unchanged.
    let mut bytes = std::fs::read(file("to-hub.bundle")).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(file("tampered.bundle"), &bytes).unwrap();
    check_refused(&hub, &["bundle", "import", "--data", hub.data(), &file("tampered.bundle")], "altered or damaged");
    check_refused(&hub, &["bundle", "import", "--data", hub.data(), &file("hub.frontier")], "not a Saldo bundle");

    let report = json(ok(&["bundle", "import", "--data", hub.data(), &file("to-hub.bundle"), "--json"]));
    assert_eq!((report["new"].as_u64(), report["duplicates"].as_u64()), (Some(1), Some(0)), "{report}");
    let before = dump(&hub.dir);
    let report = json(ok(&["bundle", "import", "--data", hub.data(), &file("to-hub.bundle"), "--json"]));
    assert_eq!((report["new"].as_u64(), report["duplicates"].as_u64()), (Some(0), Some(1)), "{report}");
    assert_eq!(dump(&hub.dir), before, "importing a bundle twice changed the hub");

    // The hub accepted it; its decision goes back and the cash point's balance is confirmed.
    let balance = |realm: &Realm| json(ok(&["balance", "--data", realm.data(), "--pan", &pan, "--json"]));
    assert_eq!(balance(&hub)["wallets"][0]["confirmed"], "12.50");
    ok(&["bundle", "frontier", "--data", cp.data(), "--out", &file("cp2.frontier")]);
    ok(&["bundle", "export", "--data", hub.data(), "--out", &file("to-cp2.bundle"), "--for", &file("cp2.frontier")]);
    assert_eq!(balance(&cp)["wallets"][0]["confirmed"], "0.00");
    ok(&["bundle", "import", "--data", cp.data(), &file("to-cp2.bundle")]);
    assert_eq!(balance(&cp)["wallets"][0]["confirmed"], "12.50");
    ok(&["log", "verify", "--data", cp.data()]);
    ok(&["log", "verify", "--data", hub.data()]);
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

/// The hub changes a device's offline limits: what is given changes, the
/// rest stays; a request that changes nothing, or names no device of the
/// realm, is refused and writes nothing.
#[test]
fn the_hub_changes_a_devices_offline_limits() {
    let realm = realm(6);
    let device = enrol_cash_point(&realm, "Edicola").author().to_hex();
    let out = ok(&["limits", "--data", realm.data(), "--device", &device, "--per-operation", "20", "--json"]);
    let limits: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(limits["per_operation"], "20.00", "{limits}");
    assert_eq!(limits["unconfirmed_total"], "5000.00", "{limits}");
    assert_eq!(limits["offline_hours"], 168, "{limits}");
    let out = ok(&["limits", "--data", realm.data(), "--device", &device, "--offline-hours", "48"]);
    assert!(out.contains("20.00 EUR per operation") && out.contains("48 h"), "{out}");

    check_refused(&realm, &["limits", "--data", realm.data(), "--device", &device], "say which limit to change");
    check_refused(
        &realm,
        &["limits", "--data", realm.data(), "--device", &"ab".repeat(32), "--per-operation", "5"],
        "is enrolled in this realm",
    );
    check_refused(
        &realm,
        &["limits", "--data", realm.data(), "--device", &device, "--unconfirmed-total=-1"],
        "the unconfirmed total must be above zero",
    );
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

/// An allowance for a device the realm does not know is refused, and
/// nothing changes.
#[test]
fn an_allowance_for_an_unknown_device_is_refused() {
    let (realm, pan, _) = top_up_setup();
    let stranger = "ab".repeat(32);
    check_refused(
        &realm,
        &["escrow", "--data", realm.data(), "--device", &stranger, "--pan", &pan, "--amount", "5"],
        "is enrolled in this realm",
    );
    check_refused(
        &realm,
        &["escrow", "--data", realm.data(), "--device", "12", "--pan", &pan, "--amount", "5"],
        "is not a device id",
    );
}

/// An operator whose cash point's log forked (it was restored from an older
/// copy while offline, or cloned) is told what happened and how to go on, by
/// `saldo topup` and `saldo status`, and the cash point records nothing more.
#[test]
fn a_cash_point_whose_log_forked_refuses_to_record_and_says_how_to_go_on() {
    let (hub, pan, _) = top_up_setup();
    let cp_dir = hub._tmp.path().join("farmacia");
    let key = enrol_cash_point(&hub, "Farmacia Comunale");
    let realm_id = saldo_node::node::Node::open(&hub.dir).unwrap().realm();
    saldo_node::node::Node::join(&cp_dir, realm_id, key).unwrap();
    let cp = Realm { _tmp: tempfile::tempdir().unwrap(), dir: cp_dir };
    let file = |name: &str| hub._tmp.path().join(name).to_str().unwrap().to_string();
    ok(&["bundle", "frontier", "--data", cp.data(), "--out", &file("cp.frontier")]);
    ok(&["bundle", "export", "--data", hub.data(), "--out", &file("to-cp.bundle"), "--for", &file("cp.frontier")]);
    ok(&["bundle", "import", "--data", cp.data(), &file("to-cp.bundle")]);
    let top_up = ["topup", "--data", cp.data(), "--pan", &pan, "--amount", "4.00", "--method", "cash"];
    ok(&top_up);
    ok(&top_up);

    // A copy of it signs another operation #2 with the same key, and the two meet.
    let key = std::fs::read(cp.dir.join("device.key")).unwrap();
    let key = saldo_sync::DeviceKey::from_secret_bytes(&key.try_into().unwrap());
    let mut node = saldo_node::node::Node::open(&cp.dir).unwrap();
    let ops: Vec<saldo_sync::SignedOp> =
        node.all_operations().unwrap().iter().map(|b| saldo_sync::SignedOp::decode(b).unwrap()).collect();
    let second = ops.iter().find(|o| o.op.author == key.author() && o.op.seq == saldo_sync::Seq(2)).unwrap();
    let saldo_sync::Body::TopUp(mut other) = second.op.body.clone() else { panic!("a top-up") };
    other.lines[0].amount = saldo_sync::Amount::parse("40.00").unwrap();
    let fork =
        saldo_sync::Operation { body: saldo_sync::Body::TopUp(other), ..second.op.clone() }.sign(&realm_id, &key);
    let applied = node.ingest(&[fork.to_bytes()]).unwrap();
    assert!(matches!(applied[0], Ok(saldo_node::state::Applied::Equivocation { .. })), "{applied:?}");
    drop(node);

    let id = key.author().to_hex();
    for expected in [
        "this cash point's log forked at #2",
        "restored from an older copy of its data directory, or cloned",
        "reaches the hub for review",
        &format!("saldo enroll --name NAME --replaces {id}"),
        "saldo cashpoint --data NEWDIR --join TOKEN",
    ] {
        check_top_up_refused(&cp, &pan, "1.00", &[], expected);
    }
    let status = ok(&["status", "--data", cp.data()]);
    assert!(status.contains("recording:   held: this cash point's log forked at #2"), "{status}");
    assert!(status.contains(&format!("--replaces {id}")), "{status}");
}

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

/// A cash point created offline beside `hub` (enrolled by the hub, joined
/// with its key), holding the hub's log as a bundle brought it.
fn offline_cash_point(hub: &Realm, name: &str) -> (Realm, saldo_sync::DeviceKey) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cash-point");
    let key = enrol_cash_point(hub, name);
    let realm_id = saldo_node::node::Node::open(&hub.dir).unwrap().realm();
    let same_key = saldo_sync::DeviceKey::from_secret_bytes(&key.secret_bytes());
    saldo_node::node::Node::join(&dir, realm_id, same_key).unwrap();
    let cp = Realm { _tmp: tmp, dir };
    let (frontier, bundle) = (cp.file("frontier"), cp.file("from-hub.bundle"));
    ok(&["bundle", "frontier", "--data", cp.data(), "--out", &frontier]);
    ok(&["bundle", "export", "--data", hub.data(), "--out", &bundle, "--for", &frontier]);
    ok(&["bundle", "import", "--data", cp.data(), &bundle]);
    (cp, key)
}

impl Realm {
    /// A path for a file of this test, beside the data directory.
    fn file(&self, name: &str) -> String {
        self.dir.parent().unwrap().join(name).to_str().unwrap().to_string()
    }
}

/// The hub's contact-data key (its second key, whose log never leaves the hub).
fn contacts_author(hub: &Realm) -> saldo_sync::AuthorId {
    let mut store = Store::open(&hub.dir.join("saldo.db")).unwrap();
    let authors = store.read().unwrap().authors().unwrap();
    authors.into_iter().find(|a| a.role == saldo_sync::Role::HubContacts).unwrap().author
}

/// The authors of the operations in a bundle file, with how many of each.
fn bundle_authors(hub: &Realm, path: &str) -> std::collections::BTreeMap<saldo_sync::AuthorId, usize> {
    let realm_id = saldo_node::node::Node::open(&hub.dir).unwrap().realm();
    let body = saldo_sync::bundle::BundleBody::open(&std::fs::read(path).unwrap(), &realm_id).unwrap();
    let mut authors = std::collections::BTreeMap::new();
    for op in &body.ops {
        *authors.entry(saldo_sync::op::peek(op).unwrap().0).or_insert(0) += 1;
    }
    authors
}

fn contacts_rows(dir: &Path) -> usize {
    dump(dir).iter().filter(|line| line.starts_with("contacts:")).count()
}

/// What a parent relies on: their e-mail and phone stay at the town hall. A
/// cash point's frontier file whose holder was overwritten with the realm id
/// (the hub's key, which may receive everything) is refused; the hub exports
/// nothing and its contact data stays there.
#[test]
fn a_frontier_file_edited_to_name_the_hub_as_holder_is_refused() {
    let (hub, _, _) = top_up_setup();
    assert!(contacts_rows(&hub.dir) > 0, "the generated families have e-mails and phones");
    let (cp, key) = offline_cash_point(&hub, "Edicola Manomessa");
    let realm_id = saldo_node::node::Node::open(&hub.dir).unwrap().realm();
    ok(&["bundle", "frontier", "--data", cp.data(), "--out", &cp.file("cp.frontier")]);
    let mut bytes = std::fs::read(cp.file("cp.frontier")).unwrap();
    let at = bytes.windows(32).position(|w| w == key.author().0).expect("the holder is in the file");
    bytes[at..at + 32].copy_from_slice(&realm_id.0);
    std::fs::write(cp.file("edited.frontier"), &bytes).unwrap();

    let out = cp.file("leak.bundle");
    let args = ["bundle", "export", "--data", hub.data(), "--out", &out, "--for", &cp.file("edited.frontier")];
    check_refused(&hub, &args, "signature does not match its contents: it was altered or damaged");
    check_refused(&hub, &args, "write a new one with `saldo bundle frontier`");
    assert!(!Path::new(&out).exists(), "a bundle was written");
}

/// A frontier file of the old format carries no signature, so anyone could
/// have written its holder: the hub refuses it and says how to make a new one.
#[test]
fn an_unsigned_frontier_file_of_the_old_format_is_refused_with_what_to_do() {
    let (hub, _, _) = top_up_setup();
    let (cp, key) = offline_cash_point(&hub, "Edicola Vecchia");
    let mut node = saldo_node::node::Node::open(&cp.dir).unwrap();
    let mut old = b"SALDO-FRONTIER-1\n".to_vec();
    old.extend(postcard::to_stdvec(&(node.realm(), key.author(), node.frontier().unwrap())).unwrap());
    std::fs::write(cp.file("old.frontier"), &old).unwrap();

    let out = cp.file("old.bundle");
    let args = ["bundle", "export", "--data", hub.data(), "--out", &out, "--for", &cp.file("old.frontier")];
    check_refused(&hub, &args, "old, unsigned format");
    check_refused(&hub, &args, "write a new one with `saldo bundle frontier` on the node that will import the bundle");
    assert!(!Path::new(&out).exists(), "a bundle was written");
}

/// A frontier file from another realm's node is refused, whether it says so
/// or its realm was rewritten to this one's (then its signature fails).
#[test]
fn another_realms_frontier_file_is_refused_even_with_its_realm_rewritten() {
    let (hub, _, _) = top_up_setup();
    let other = realm(5);
    let realm_id = saldo_node::node::Node::open(&hub.dir).unwrap().realm();
    let other_id = saldo_node::node::Node::open(&other.dir).unwrap().realm();
    ok(&["bundle", "frontier", "--data", other.data(), "--out", &hub.file("other.frontier")]);
    let out = hub.file("other.bundle");
    let args = ["bundle", "export", "--data", hub.data(), "--out", &out, "--for", &hub.file("other.frontier")];
    check_refused(&hub, &args, "the frontier file belongs to another realm");
    check_refused(&hub, &args, "write one with `saldo bundle frontier` on a node of this realm");

    let mut bytes = std::fs::read(hub.file("other.frontier")).unwrap();
    let at = bytes.windows(32).position(|w| w == other_id.0).expect("the realm is in the file");
    bytes[at..at + 32].copy_from_slice(&realm_id.0);
    std::fs::write(hub.file("rewritten.frontier"), &bytes).unwrap();
    let args = ["bundle", "export", "--data", hub.data(), "--out", &out, "--for", &hub.file("rewritten.frontier")];
    check_refused(&hub, &args, "signature does not match its contents");
    assert!(!Path::new(&out).exists(), "a bundle was written");
}

/// A frontier file is not a secret: copied and used by someone else, it
/// yields only what its holder may receive anyway (the hub's log and the
/// holder's own), never contact data or other devices' operations; the
/// hub's operator sees whom the bundle is for and when the file was written.
#[test]
fn a_replayed_frontier_file_yields_only_what_its_holder_may_receive() {
    let (hub, pan, _) = top_up_setup();
    let (a, a_key) = offline_cash_point(&hub, "Farmacia A");
    let (c, c_key) = offline_cash_point(&hub, "Edicola C");
    // A and C record a top-up each, which reach the hub by bundle.
    for cp in [&a, &c] {
        ok(&["topup", "--data", cp.data(), "--pan", &pan, "--amount", "5.00", "--method", "cash"]);
        ok(&["bundle", "frontier", "--data", hub.data(), "--out", &hub.file("hub.frontier")]);
        let bundle = cp.file("to-hub.bundle");
        ok(&["bundle", "export", "--data", cp.data(), "--out", &bundle, "--for", &hub.file("hub.frontier")]);
        ok(&["bundle", "import", "--data", hub.data(), &bundle]);
    }
    // Someone else takes A's frontier file (an old one, from before its top-up).
    let replayed = a.file("frontier");
    let out = hub.file("replayed.bundle");
    let exported: serde_json::Value = serde_json::from_str(&ok(&[
        "bundle",
        "export",
        "--data",
        hub.data(),
        "--out",
        &out,
        "--for",
        &replayed,
        "--json",
    ]))
    .unwrap();
    assert_eq!(exported["recipient"]["device"], a_key.author().to_hex(), "{exported}");
    assert_eq!(exported["recipient"]["name"], "Farmacia A", "{exported}");
    assert!(exported["recipient"]["frontier_written_ms"].as_u64().unwrap() > 1_700_000_000_000, "{exported}");

    let realm_id = saldo_node::node::Node::open(&hub.dir).unwrap().realm();
    let authors = bundle_authors(&hub, &out);
    assert_eq!(authors.get(&a_key.author()), Some(&1), "A's own top-up: {authors:?}");
    assert!(authors.contains_key(&realm_id.hub()), "{authors:?}");
    assert_eq!(authors.len(), 2, "only the hub's log and A's: {authors:?}");
    assert!(!authors.contains_key(&contacts_author(&hub)) && !authors.contains_key(&c_key.author()));

    // Imported by a third cash point, it brings no contact data.
    let (b, _) = offline_cash_point(&hub, "Bar B");
    ok(&["bundle", "import", "--data", b.data(), &out]);
    assert_eq!(contacts_rows(&b.dir), 0);
}

/// Contact data never enters a cash point, whoever brings it: the hub's
/// backup (a bundle of everything, for the hub itself) imported at a cash
/// point stores the rest and refuses each operation of contact data, saying
/// why; the cash point's contacts table stays empty.
#[test]
fn a_cash_point_refuses_the_contact_data_of_a_hub_backup_imported_there() {
    let (hub, _, _) = top_up_setup();
    let (cp, _) = offline_cash_point(&hub, "Tabaccheria");
    let backup = hub.file("backup.bundle");
    let said = ok(&["bundle", "export", "--data", hub.data(), "--out", &backup]);
    assert!(said.contains("contact data included: a backup for the hub only"), "{said}");
    let contacts_ops = bundle_authors(&hub, &backup)[&contacts_author(&hub)];
    assert!(contacts_ops > 10, "the backup carries the contact data");

    let report: serde_json::Value =
        serde_json::from_str(&ok(&["bundle", "import", "--data", cp.data(), &backup, "--json"])).unwrap();
    let refused = report["refused"].as_array().unwrap();
    assert_eq!(refused.len(), contacts_ops, "{report}");
    for reason in refused {
        // The contacts key also writes the accounts of the hub's administrators and clerks.
        let reason = reason.as_str().unwrap();
        assert!(reason.contains("contact data") || reason.contains("hub's operators (role administrator"), "{reason}");
        assert!(reason.contains("which only the hub keeps"), "{reason}");
    }
    assert_eq!(contacts_rows(&cp.dir), 0, "contact data was stored at the cash point");
    let mut store = Store::open(&cp.dir.join("saldo.db")).unwrap();
    let held = store.read().unwrap().author(&contacts_author(&hub)).unwrap().unwrap().head_seq;
    assert_eq!(held, saldo_sync::Seq(0), "operations of the contacts key were stored");
    ok(&["log", "verify", "--data", cp.data()]);
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

/// A charge of a school device beyond its allowance, flagged at the hub of
/// `realm`: (the charge's id, the consumer's PAN). The wallet holds nothing,
/// its floor is -50.00; an allowance of 20.00 was charged whole, and the
/// flagged charge of 35.00 would take the wallet to -55.00.
fn flagged_charge_below_floor(realm: &Realm) -> (String, String) {
    use saldo_sync::{Amount, Balance, Body, Hlc, Label, Operation, Role, Seq, ServiceCharge, WalletKey};
    let ((pan, _), _) = realm.consumers();
    let mut hub = saldo_node::node::Node::open(&realm.dir).unwrap();
    let (consumer, service) = hub.resolve_wallet(&saldo_sync::Pan::parse(&pan).unwrap(), None).unwrap();
    let record = hub.services().unwrap().into_iter().find(|s| s.id == service).unwrap();
    hub.set_service(&record.name, Some(Balance::parse("-50").unwrap()), None).unwrap();
    let device = saldo_sync::DeviceKey::generate();
    let limits = saldo_sync::OfflineLimits::default_for_cash_point();
    hub.enrol(device.author(), Role::SchoolDevice, &Label::parse("Mensa Rodari").unwrap(), limits).unwrap();
    let wallet = WalletKey { consumer: consumer.consumer, service };
    hub.grant_escrow(device.author(), wallet.clone(), Amount::parse("20").unwrap()).unwrap();
    let hub_seen = {
        let author = hub.author().unwrap();
        let tx = hub.store_mut().read().unwrap();
        tx.author(&author).unwrap().unwrap().head_seq
    };
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let mut prev = OpId::NONE;
    let mut ops = Vec::new();
    for (seq, (reference, amount)) in [("pasto-1", "20"), ("pasto-2", "35")].into_iter().enumerate() {
        let op = Operation {
            author: device.author(),
            seq: Seq(seq as u64 + 1),
            prev,
            hlc: Hlc::from_parts(now_ms + seq as u64, 0),
            hub_seen,
            body: Body::ServiceCharge(ServiceCharge {
                reference: Label::parse(reference).unwrap(),
                wallet: wallet.clone(),
                amount: Amount::parse(amount).unwrap(),
            }),
        }
        .sign(&hub.realm(), &device);
        prev = op.id;
        ops.push(op);
    }
    let results = hub.ingest(&ops.iter().map(saldo_sync::SignedOp::to_bytes).collect::<Vec<_>>()).unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    (ops[1].id.to_hex(), pan)
}

/// An operator accepting in review a charge beyond an allowance is told that
/// the wallet goes below its floor and by how much, and must confirm it a
/// second time; until then nothing is recorded and the command fails.
#[test]
fn review_accept_says_how_far_below_its_floor_a_charge_takes_the_wallet() {
    let realm = realm(12);
    let (charge, pan) = flagged_charge_below_floor(&realm);
    let d = realm.data();
    let listed = ok(&["review", "list", "--data", d]);
    assert!(listed.contains(&charge) && listed.contains("over_escrow"), "{listed}");
    let accept = ["review", "accept", "--data", d, &charge, "--operator", "Ufficio", "--note", "paid at the desk"];
    check_refused(&realm, &accept, "wallet to -55.00 EUR, 5.00 EUR below its floor of -50.00 EUR");
    check_refused(&realm, &accept, "confirm that it goes below the floor (with --confirm-below-floor)");
    let out = ok(&[&accept[..], &["--confirm-below-floor"]].concat());
    assert!(out.contains(&format!("accepted {charge}")) && out.contains("5.00 EUR below its floor"), "{out}");
    let balance: serde_json::Value =
        serde_json::from_str(&ok(&["balance", "--data", d, "--pan", &pan, "--json"])).unwrap();
    assert_eq!(balance["wallets"][0]["confirmed"], "-55.00", "{balance}");
    assert!(ok(&["review", "list", "--data", d]).contains("nothing awaits review"));
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

/// Line numbers in an import's report are the lines an editor shows, with
/// Excel's CRLF line ends and with a quoted cell over several lines; a bad
/// cell is quoted in short.
#[test]
fn an_import_reports_the_lines_an_editor_shows_and_quotes_bad_cells_in_short() {
    let realm = realm(3);
    let d = realm.data();
    let long_code = "X".repeat(5_000);
    let code =
        |first15: &str| format!("{first15}{}", saldo_sync::CodiceFiscale::check_character(first15.as_bytes()) as char);
    let (giulia, luca) = (code("MRTGLI27E45F205"), code("MRTLCU29A01F205"));
    let rows = [
        HEADER.to_string(),
        // Line 2: good.
        "RSSMRA85T10A562S;Rossi;Mario;;;MRTMTT25D09F205Z;Moretti;Matteo;;Rodari;3B;Mensa".to_string(),
        // Lines 3-4: one row whose school cell spans two lines.
        format!("RSSMRA85T10A562S;Rossi;Mario;;;{giulia};Moretti;Giulia;;\"Rodari\r\nplesso nord\";1A;Mensa"),
        // Line 5: a codice fiscale of 5,000 characters.
        format!("RSSMRA85T10A562S;Rossi;Mario;;;{long_code};Moretti;Luca;;Rodari;3B;Mensa"),
        // Line 6: a bad PAN.
        format!("RSSMRA85T10A562S;Rossi;Mario;;;{luca};Moretti;Luca;4111111111111112;Rodari;3B;Mensa"),
    ];
    let file = realm.dir.join("excel.csv");
    write(&file, &format!("{}\r\n", rows.join("\r\n")));
    let out = ok(&["families", "import", "--data", d, file.to_str().unwrap()]);
    assert!(out.contains("line 3: column school spans several lines"), "{out}");
    let line5 = out.lines().find(|l| l.starts_with("line 5: ")).unwrap_or_else(|| panic!("no line 5 in {out}"));
    assert!(line5.contains(&format!("\"{}…\"", "X".repeat(40))), "{line5}");
    assert!(line5.len() < 300, "{} characters: {line5}", line5.len());
    assert!(out.contains("line 6: pan \"4111111111111112\""), "{out}");
    assert!(out.contains("4 rows read: 1 imported, 3 rejected"), "{out}");
}

/// A UTF-16 file (Excel's "Unicode text") is refused saying what it is and
/// how to save it; a tab-separated file imports like a CSV one.
#[test]
fn a_utf16_file_is_named_as_such_and_a_tab_separated_one_imports() {
    let realm = realm(3);
    let d = realm.data();
    let text = format!(
        "{}\r\nRSSMRA85T10A562S\tRossi\tMario\t\t\tMRTMTT25D09F205Z\tMoretti\tMatteo\t\tRodari\t3B\tMensa\r\n",
        HEADER.replace(';', "\t")
    );
    let tabs = realm.dir.join("tabs.txt");
    write(&tabs, &text);
    let out = ok(&["families", "import", "--data", d, tabs.to_str().unwrap()]);
    assert!(out.contains("1 rows read: 1 imported, 0 rejected"), "{out}");
    for (name, bom, little_endian) in
        [("le-bom", true, true), ("be-bom", true, false), ("le", false, true), ("be", false, false)]
    {
        let mut bytes: Vec<u8> = match (bom, little_endian) {
            (true, true) => vec![0xFF, 0xFE],
            (true, false) => vec![0xFE, 0xFF],
            _ => Vec::new(),
        };
        for unit in text.encode_utf16() {
            bytes.extend(if little_endian { unit.to_le_bytes() } else { unit.to_be_bytes() });
        }
        let file = realm.dir.join(format!("{name}.txt"));
        std::fs::write(&file, bytes).unwrap();
        check_refused(
            &realm,
            &["families", "import", "--data", d, file.to_str().unwrap()],
            "the file is UTF-16 (as Excel's \"Unicode text\" writes it): save it as \"CSV UTF-8\"",
        );
    }
}

/// A limit of zero is refused where it would stop all work, saying why and
/// what to do instead; nothing is written.
#[test]
fn limits_of_zero_are_refused_with_what_they_would_mean() {
    let realm = realm(6);
    let d = realm.data();
    let device = enrol_cash_point(&realm, "Edicola").author().to_hex();
    for (flag, value, message) in [
        ("--per-operation", "0", "--per-operation: the amount must be greater than zero"),
        ("--unconfirmed-total", "0", "the unconfirmed total must be above zero"),
        ("--offline-hours", "0", "0 is not in 1..="),
    ] {
        check_refused(&realm, &["limits", "--data", d, "--device", &device, flag, value], message);
        check_refused(&realm, &["enroll", "--data", d, "--name", "Farmacia", flag, value], message);
    }
    check_refused(&realm, &["search", "--data", d, "ro", "--limit", "0"], "0 is not in 1..=50");
    check_refused(&realm, &["search", "--data", d, "ro", "--limit", "51"], "51 is not in 1..=50");
    let csv = realm.dir.join("none.csv");
    let out = saldo(&["generate", "--consumers", "0", "--out", csv.to_str().unwrap()]);
    assert!(!out.status.success() && !csv.exists());
    assert!(String::from_utf8_lossy(&out.stderr).contains("0 is not in 1..=1000000"));
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

/// Runs `saldo` with `stdin` piped to it.
fn saldo_with_stdin(args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write as _;
    let mut child = Command::new(SALDO)
        .args(args)
        .env_remove("SALDO_DATA")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn operators(dir: &str) -> Vec<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(&ok(&["operator", "list", "--data", dir, "--json"]))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// What an administrator relies on: a new realm's first administrator with
/// a one-time password that works; accounts added, listed, given a new
/// password, disabled and enabled from the command line; passwords read
/// from standard input, never from the command line; bad input refused
/// with what to fix, and nothing written.
#[test]
fn operators_are_added_listed_given_passwords_disabled_and_enabled_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hub");
    let data = dir.to_str().unwrap();
    let init: serde_json::Value =
        serde_json::from_str(&ok(&["realm", "init", "--data", data, "--name", "Comune di Prova", "--json"])).unwrap();
    assert_eq!(init["administrator"]["login"], "admin");
    let admin_password = init["administrator"]["one_time_password"].as_str().unwrap().to_string();
    assert!(admin_password.len() >= 10);
    let check_login = |login: &str, password: &str| {
        let mut node = saldo_node::node::Node::open(&dir).unwrap();
        node.authenticate(login, password).map(|row| row.account.must_change_password).map_err(|e| e.to_string())
    };
    assert_eq!(check_login("admin", &admin_password), Ok(true), "the first administrator's one-time password works");
    let text = String::from_utf8(
        saldo(&["realm", "init", "--data", tmp.path().join("other").to_str().unwrap(), "--name", "Altro"]).stdout,
    )
    .unwrap();
    assert!(text.contains("first administrator: login admin, one-time password "), "{text}");

    // A clerk with a password of their own, through standard input.
    let out = saldo_with_stdin(
        &[
            "operator",
            "add",
            "--data",
            data,
            "--login",
            "anna.b",
            "--name",
            "Anna Bianchi",
            "--role",
            "clerk",
            "--password-stdin",
        ],
        "anna's secret\n",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8(out.stdout).unwrap();
    assert!(said.contains("added clerk anna.b (Anna Bianchi) at hub"), "{said}");
    assert!(!said.contains("one-time"), "no one-time password when the operator chose one: {said}");
    assert_eq!(check_login("anna.b", "anna's secret"), Ok(false));

    // One with a generated one-time password, printed once.
    let added: serde_json::Value = serde_json::from_str(&ok(&[
        "operator",
        "add",
        "--data",
        data,
        "--login",
        "luca",
        "--name",
        "Luca Verdi",
        "--role",
        "administrator",
        "--json",
    ]))
    .unwrap();
    let one_time = added["one_time_password"].as_str().unwrap().to_string();
    assert_eq!(added["must_change_password"], true);
    assert_eq!(check_login("luca", &one_time), Ok(true));

    let list = operators(data);
    let logins: Vec<&str> = list.iter().map(|o| o["login"].as_str().unwrap()).collect();
    assert_eq!(logins, ["admin", "anna.b", "luca"]);
    assert!(list.iter().all(|o| o.get("one_time_password").is_none() && o.get("password_hash").is_none()));
    let table = ok(&["operator", "list", "--data", data]);
    assert!(table.contains("anna.b") && table.contains("Anna Bianchi") && table.contains("clerk"), "{table}");

    // A new password; the old one stops working.
    let out = saldo_with_stdin(
        &["operator", "passwd", "--data", data, "--login", "luca", "--password-stdin"],
        "luca's own password",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(check_login("luca", "luca's own password"), Ok(false));
    assert_eq!(check_login("luca", &one_time), Err("wrong login or password".into()));

    // Disabled, then enabled again.
    let said = ok(&["operator", "disable", "--data", data, "--login", "anna.b"]);
    assert!(said.contains("disabled clerk anna.b"), "{said}");
    assert_eq!(operators(data)[1]["disabled"], true);
    assert!(check_login("anna.b", "anna's secret").unwrap_err().contains("disabled"));
    ok(&["operator", "enable", "--data", data, "--login", "anna.b"]);
    assert_eq!(check_login("anna.b", "anna's secret"), Ok(false));

    // Refusals say what to fix and write nothing.
    let realm = Realm { _tmp: tmp, dir: dir.clone() };
    let add = |login: &'static str, role: &'static str| {
        vec!["operator", "add", "--data", data, "--login", login, "--name", "Someone", "--role", role]
    };
    check_refused(&realm, &add("anna.b", "clerk"), "the login anna.b is taken");
    check_refused(&realm, &add("anna b", "clerk"), "--login \"anna b\"");
    check_refused(&realm, &add("1anna", "clerk"), "must begin with a letter");
    check_refused(&realm, &add("ANNA.B", "clerk"), "the login anna.b is taken");
    check_refused(&realm, &add("ab", "clerk"), "2 characters long: use 3 to 32");
    check_refused(&realm, &add("mario", "cashier"), "--cash-point");
    check_refused(&realm, &add("mario", "boss"), "administrator, clerk or cashier");
    let mut with_cash_point = add("mario", "cashier");
    with_cash_point.extend(["--cash-point", "Nowhere"]);
    check_refused(&realm, &with_cash_point, "no cash point Nowhere is enrolled");
    check_refused(
        &realm,
        &["operator", "disable", "--data", data, "--login", "nobody"],
        "no operator has the login nobody",
    );
    let before = dump(&dir);
    for (stdin, message) in [("short\n", "at least 10 characters"), ("", "held no password")] {
        let out = saldo_with_stdin(
            &[
                "operator",
                "add",
                "--data",
                data,
                "--login",
                "mario",
                "--name",
                "Mario",
                "--role",
                "clerk",
                "--password-stdin",
            ],
            stdin,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(message), "{stderr}");
    }
    assert_eq!(dump(&dir), before);
    // A password is never an argument.
    let out = saldo(&[
        "operator",
        "add",
        "--data",
        data,
        "--login",
        "mario",
        "--name",
        "M",
        "--role",
        "clerk",
        "--password",
        "0123456789",
    ]);
    assert!(!out.status.success());
}

/// A cashier is added at the hub for a cash point named as enrolled.
#[test]
fn a_cashier_is_added_for_a_cash_point_named_as_enrolled() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hub");
    let data = dir.to_str().unwrap();
    ok(&["realm", "init", "--data", data, "--name", "Comune di Prova"]);
    let realm = Realm { _tmp: tmp, dir: dir.clone() };
    let key = enrol_cash_point(&realm, "Farmacia Comunale");
    let added: serde_json::Value = serde_json::from_str(&ok(&[
        "operator",
        "add",
        "--data",
        data,
        "--login",
        "mario",
        "--name",
        "Mario Rossi",
        "--role",
        "cashier",
        "--cash-point",
        "farmacia comunale",
        "--json",
    ]))
    .unwrap();
    assert_eq!(added["cash_point"], key.author().to_hex());
    assert_eq!(added["cash_point_name"], "Farmacia Comunale");
    let table = ok(&["operator", "list", "--data", data]);
    assert!(table.contains("mario") && table.contains("Farmacia Comunale"), "{table}");
    let mut by_id =
        vec!["operator", "add", "--data", data, "--login", "giulia", "--name", "Giulia", "--role", "cashier"];
    let id = key.author().to_hex();
    by_id.extend(["--cash-point", &id]);
    ok(&by_id);
    let mut admin =
        vec!["operator", "add", "--data", data, "--login", "capo", "--name", "Capo", "--role", "administrator"];
    admin.extend(["--cash-point", &id]);
    check_refused(&realm, &admin, "leave out --cash-point");
}
