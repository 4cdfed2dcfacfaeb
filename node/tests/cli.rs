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
            list.extend(found.as_array().unwrap().iter().cloned());
        }
        let services = |c: &serde_json::Value| -> Vec<String> {
            c["services"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
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
    check_top_up_refused(&realm, &multi, "5", &[], "say which one with --service");
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
    assert!(receipt["pan_masked"].as_str().unwrap().ends_with(&pan[pan.len() - 4..]));
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
            .unwrap()
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
    assert_eq!(found[0]["name"], "Matteo");
    assert_eq!(found[0]["class"], "3B");
    // The payer's codice fiscale (a parent's CRS/CNS card) finds the children too.
    let by_payer: serde_json::Value =
        serde_json::from_str(&ok(&["search", "--data", d, "RSSMRA85T10A562S", "--json"])).unwrap();
    assert_eq!(by_payer[0]["consumer"], found[0]["consumer"]);
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
        "a floor is zero or below zero",
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
    let mut acknowledged: Vec<OpId> = Vec::new();
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
                .filter_map(|line| line.strip_prefix("Verification code: ").map(|code| OpId::from_hex(code).unwrap()))
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
        for id in &acknowledged {
            assert!(tx.op_bytes(id).unwrap().is_some(), "round {round}: acknowledged top-up {id} lost");
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
    let id = OpId::from_hex(receipt["verification_code"].as_str().unwrap()).unwrap();
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
    let (bundle, _) = hub.export_bundle(Some(&cash_point.frontier_file().unwrap())).unwrap();
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
        "the unconfirmed total must be zero or more",
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
