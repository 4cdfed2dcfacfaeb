//! `saldo report`: the municipality's accounts from a data directory, as
//! text, JSON, CSV (no cell a spreadsheet would run) and the printable
//! attestation of one payer's year.

use chrono::Datelike as _;

use super::common::{ok, saldo};
use super::{dump, realm_from_rows};

/// A cell a spreadsheet would run as a formula.
fn runs_as_formula(cell: &str) -> bool {
    matches!(cell.chars().next(), Some('=' | '+' | '-' | '@' | '\t' | '\r'))
}

fn cells(csv_text: &str) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(csv_text.as_bytes());
    reader.records().map(|r| r.unwrap().iter().map(str::to_string).collect()).collect()
}

#[test]
fn reports_neutralise_imported_cells_a_spreadsheet_would_run_and_add_up_a_payers_year() {
    // A family whose imported names and school would run as formulas.
    let realm = realm_from_rows(|row| {
        row[6] = "-Rossi".to_string();
        row[9] = "=HYPERLINK(\"http://example.com\",\"x\")".to_string();
        row[11] = "Mensa".to_string();
    });
    let d = realm.data();
    let (pan, payer) = (realm.first_row[8].clone(), realm.first_row[0].clone());
    for (amount, method, operator) in [("12,50", "debit-card", "@Giulia"), ("7.50", "cash", "Anna")] {
        ok(&["topup", "--data", d, "--pan", &pan, "--amount", amount, "--method", method, "--operator", operator]);
    }
    let year = chrono::Local::now().year().to_string();
    let before = dump(&realm.dir);

    let close = ok(&["report", "daily-close", "--data", d, "--csv"]);
    let rows = cells(&close);
    assert_eq!(rows[0][3], "operator");
    assert!(rows.iter().any(|r| r[3] == "'@Giulia"), "{close}");
    let total = rows.iter().find(|r| r[3] == "*").unwrap();
    assert_eq!((total[4].as_str(), total[5].as_str()), ("2", "20.00"), "{close}");
    assert_eq!((total[6].as_str(), total[7].as_str()), ("1", "7.50"), "cash apart: {close}");
    assert_eq!((total[8].as_str(), total[9].as_str()), ("1", "12.50"), "debit card apart: {close}");

    let yearly = ok(&["report", "yearly", "--data", d, "--year", &year, "--csv"]);
    let rows = cells(&yearly);
    let child = rows.iter().find(|r| r[1] == payer).unwrap_or_else(|| panic!("{yearly}"));
    assert_eq!(child[5], "'-Rossi");
    assert!(child[7].starts_with("'=HYPERLINK"), "{yearly}");
    assert_eq!((child[10].as_str(), child[12].as_str()), ("12.50", "7.50"), "traceable, then cash: {yearly}");
    for report in [&close, &yearly] {
        for row in cells(report) {
            assert!(!row.iter().any(|c| runs_as_formula(c)), "a cell would run as a formula: {row:?}");
        }
    }

    let json: serde_json::Value =
        serde_json::from_str(&ok(&["report", "yearly", "--data", d, "--year", &year, "--payer", &payer, "--json"]))
            .unwrap();
    assert_eq!(json["payers"].as_array().unwrap().len(), 1);
    assert_eq!(json["payers"][0]["traceable"], "12.50");
    assert_eq!(json["payers"][0]["cash"], "7.50");
    let html = ok(&["report", "yearly", "--data", d, "--year", &year, "--payer", &payer, "--html"]);
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains(&payer) && html.contains("800,00"), "{html}");
    assert!(html.contains("12,50 €") && !html.contains("<Rossi"), "{html}");

    let remittances: serde_json::Value =
        serde_json::from_str(&ok(&["report", "remittances", "--data", d, "--json"])).unwrap();
    assert_eq!(remittances["cash_points"][0]["collected_cash"]["total"], "7.50");
    assert_eq!(remittances["cash_points"][0]["owed"], "7.50");
    let movements = ok(&["report", "movements", "--data", d, "--csv"]);
    let rows = cells(&movements);
    assert_eq!(rows.len(), 2, "{movements}");
    assert_eq!((rows[1][1].as_str(), rows[1][4].as_str(), rows[1][5].as_str()), ("mensa", "2", "20.00"));
    let text = ok(&["report", "daily-close", "--data", d]);
    assert!(text.contains("2 receipts, 20.00 EUR"), "{text}");
    assert_eq!(dump(&realm.dir), before, "reports record nothing");

    for (args, message) in [
        (vec!["report", "daily-close", "--data", d, "--day", "2026"], "YYYYMMDD"),
        (vec!["report", "yearly", "--data", d, "--html"], "--payer"),
        (vec!["report", "movements", "--data", d, "--from", "20261110", "--to", "20261101"], "before"),
    ] {
        let out = saldo(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(message), "saldo {args:?} said {stderr:?}");
    }
}
