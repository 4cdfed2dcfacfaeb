//! `GET /reports/*` through the real router: a cashier reads their own
//! cash point's day (provisional) and nothing else; the hub's staff read
//! every report once the cash point's log reached the hub, as JSON, CSV
//! and, for one payer's year, printable HTML; bad input is answered 400
//! naming the field. (Each route's role refusals: the OpenAPI-driven test.)

use axum::http::{StatusCode, header};
use chrono::Datelike as _;
use serde_json::{Value, json};

use super::{Client, Realm, family, hub_ingests, top_up_body};

async fn top_up(client: &Client, body: &Value, key: &str) -> Value {
    let answer = client.call(axum::http::Method::POST, "/topups", body, &[("idempotency-key", key)]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    answer.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cashier_reads_their_own_day_and_the_office_reads_every_report_once_the_hub_has_it() {
    let realm = Realm::new();
    let mut cash_point = realm.cash_point();
    let me = cash_point.log_in("cashier.k").await;
    let (first, _, other) = family(&cash_point).await;
    top_up(&cash_point, &top_up_body(&[(&first, "20.00")]), "report-topup-1").await;
    let mut card = top_up_body(&[(&other, "15.00")]);
    card["method"] = json!("debit_card");
    top_up(&cash_point, &card, "report-topup-2").await;

    let answer = cash_point.get("/reports/daily-close").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let own = answer.json();
    assert_eq!(own["provisional"], true);
    let days = own["cash_points"].as_array().unwrap();
    assert_eq!(days.len(), 1, "{own}");
    assert_eq!(days[0]["cash_point_name"], me["cash_point"]);
    assert_eq!(days[0]["receipts"], json!({"count": 2, "total": "35.00"}));
    assert_eq!(days[0]["pending"]["awaiting_verdict"]["count"], 0, "its own operations count here");
    let hub_id = realm.hub().service.about().me.to_hex();
    let answer = cash_point.get(&format!("/reports/daily-close?cash_point={hub_id}")).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.text());
    assert!(answer.json()["message"].as_str().unwrap().contains("own cash point"), "{}", answer.text());
    let csv = cash_point.get("/reports/daily-close?format=csv").await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.text());
    assert!(csv.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/csv"));
    assert!(csv.text().starts_with("day,cash_point,cash_point_name,operator,"), "{}", csv.text());
    let day = own["day"].as_u64().unwrap();
    drop(cash_point);

    assert!(hub_ingests(&realm).is_empty());
    let mut hub = realm.hub();
    hub.log_in("clerk.c").await;
    let close = hub.get(&format!("/reports/daily-close?day={day}")).await.json();
    assert_eq!(close["provisional"], false);
    let day_at_hub =
        close["cash_points"].as_array().unwrap().iter().find(|c| c["cash_point_name"] == me["cash_point"]).unwrap();
    assert_eq!(day_at_hub["receipts"], days[0]["receipts"]);
    assert_eq!(day_at_hub["per_method"], days[0]["per_method"]);
    let remittances = hub.get(&format!("/reports/remittances?from={day}&to={day}")).await.json();
    let statement = &remittances["cash_points"][0];
    assert_eq!(statement["collected_cash"]["total"], "20.00");
    assert_eq!(statement["collected_cards"]["total"], "15.00");
    assert_eq!(statement["owed"], "20.00");
    let movements = hub.get(&format!("/reports/movements?from={day}&to={day}")).await.json();
    let moved: i64 = movements["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["top_ups"]["total"].as_str().unwrap().replace('.', "").parse::<i64>().unwrap())
        .sum();
    assert_eq!(moved, 3_500);
    let year = chrono::Local::now().year();
    let yearly = hub.get(&format!("/reports/yearly?year={year}")).await.json();
    let payers = yearly["payers"].as_array().unwrap();
    assert_eq!(payers.len(), 2, "two families paid: {yearly}");
    let traceable: Vec<&Value> = payers.iter().map(|p| &p["traceable"]).collect();
    assert!(traceable.contains(&&json!("15.00")) && traceable.contains(&&json!("0.00")), "{yearly}");
    let payer = payers.iter().find(|p| p["cash"] == "20.00").unwrap()["payer_fiscal_code"].as_str().unwrap();
    let html = hub.get(&format!("/reports/yearly?year={year}&payer={payer}&format=html")).await;
    assert_eq!(html.status, StatusCode::OK, "{}", html.text());
    assert!(html.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    assert!(html.text().contains(payer) && html.text().contains("contanti"), "{}", html.text());
    let csv = hub.get(&format!("/reports/yearly?year={year}&format=csv")).await;
    assert_eq!(csv.text().lines().count(), 3, "a header and one line per child and service: {}", csv.text());

    for (query, field) in [
        ("/reports/daily-close?day=2026", "day"),
        ("/reports/daily-close?cash_point=xyz", "cash_point"),
        ("/reports/movements?from=20261110&to=20261101", "to"),
        ("/reports/remittances?from=20250101&to=20261231", "from"),
        ("/reports/yearly?format=html", "payer"),
        ("/reports/yearly?payer=NOTACODE", "payer"),
        ("/reports/movements?format=pdf", "query"),
    ] {
        let answer = hub.get(query).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{query}: {}", answer.text());
        assert_eq!(answer.json()["field"], field, "{query}: {}", answer.text());
    }
}

/// What the web UI's client generator relies on: each report's document
/// lists its JSON schema and its CSV (and HTML) forms under 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_each_reports_json_and_csv() {
    let realm = Realm::new();
    let doc = realm.hub().get("/openapi.json").await.json();
    for (path, schema) in [
        ("/reports/daily-close", "DailyCloseReport"),
        ("/reports/remittances", "RemittanceReport"),
        ("/reports/yearly", "YearlyReport"),
        ("/reports/movements", "MovementsReport"),
    ] {
        let content = &doc["paths"][path]["get"]["responses"]["200"]["content"];
        let json = content["application/json"]["schema"]["$ref"].as_str().unwrap_or_default();
        assert!(json.ends_with(schema), "{path}: {content}");
        assert_eq!(content["text/csv"]["schema"]["type"], "string", "{path}: {content}");
    }
    let yearly = &doc["paths"]["/reports/yearly"]["get"]["responses"]["200"]["content"];
    assert_eq!(yearly["text/html"]["schema"]["type"], "string", "{yearly}");
}
