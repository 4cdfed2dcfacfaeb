//! `saldo topup`, `saldo balance` and `saldo search` at the counter: bad
//! amounts, PANs and services refused with nothing written, a receipt and
//! the balance that shows it, and a search that minds neither case nor
//! accents.

use super::common::{ok, saldo};
use super::{check_refused, check_top_up_refused, realm, top_up_setup};

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
    // Each command queued its receipt for the family before it exited:
    // nothing left due for the next process to find.
    let db = rusqlite::Connection::open(realm.dir.join("saldo.db")).unwrap();
    let count = |sql: &str| db.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(count("SELECT COUNT(*) FROM receipts_due_groups"), 0);
    assert_eq!(count("SELECT COUNT(*) FROM outbox WHERE purpose = 'receipt'"), 4, "two receipts, e-mail and SMS each");
    drop(db);
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
