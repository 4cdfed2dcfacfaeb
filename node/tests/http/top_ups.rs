//! Top-ups at a cash point through its API: one receipt for two siblings,
//! recorded once however often the request is sent, and bad input
//! answered 4xx naming the field, with nothing written.

use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use serde_json::{Value, json};

use super::{Realm, family, top_up_body};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cashier_tops_up_two_siblings_on_one_receipt_once_however_often_the_request_is_sent() {
    let realm = Realm::new();
    let mut cash_point = realm.cash_point();
    let me = cash_point.log_in("cashier.k").await;
    assert_eq!(me["role"], "cashier");
    assert_eq!(me["node"], "cash_point");
    assert_eq!(me["cash_point"], "Edicola Centrale");
    assert_eq!(cash_point.get("/session").await.json()["login"], "cashier.k");
    let (first, second, _) = family(&cash_point).await;
    let body = top_up_body(&[(&first, "20,00".replace(',', ".").as_str()), (&second, "15.00")]);
    let key = [("idempotency-key", "3f1c2d9e-8a7b-4c6d-9e0f-112233445566")];
    let answer = cash_point.call(Method::POST, "/topups", &body, &key).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let receipt = answer.json();
    assert_eq!(receipt["realm"], "Comune di Prova", "a cash point's receipt names its realm");
    assert_eq!(receipt["cash_point"], "Edicola Centrale");
    assert_eq!(receipt["operator"], "Anna Bianchi");
    assert_eq!(receipt["total"], "35.00");
    assert_eq!(receipt["provisional"], true);
    assert_eq!(receipt["lines"].as_array().unwrap().len(), 2);
    assert!(receipt["verification_url"].as_str().unwrap().contains("/v/"));
    let before = cash_point.dump().await;
    // The Wi-Fi dropped before the answer came: the till sends it again.
    let again = cash_point.call(Method::POST, "/topups", &body, &key).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text());
    assert_eq!(again.json()["operation"], receipt["operation"]);
    assert_eq!(again.json()["receipt_number"], receipt["receipt_number"]);
    assert_eq!(cash_point.dump().await, before, "a retried request records nothing");
    // The same key for another request is refused.
    let other = top_up_body(&[(&first, "1.00")]);
    let clash = cash_point.call(Method::POST, "/topups", &other, &key).await;
    assert_eq!(clash.status, StatusCode::CONFLICT, "{}", clash.text());
    assert_eq!(cash_point.dump().await, before);
    // The receipt reads back, as JSON, text and HTML.
    let op = receipt["operation"].as_str().unwrap();
    assert_eq!(cash_point.get(&format!("/receipts/{op}")).await.json(), receipt);
    let text = cash_point.get(&format!("/receipts/{op}?format=text&width=32")).await;
    assert_eq!(text.status, StatusCode::OK);
    assert!(text.text().lines().all(|l| l.chars().count() <= 32), "{}", text.text());
    assert!(text.text().contains("35,00"), "{}", text.text());
    let html = cash_point.get(&format!("/receipts/{op}?format=html&paper=80mm")).await;
    assert!(html.text().contains("<svg"), "the HTML receipt carries its QR code");
    // The balances show it, provisional.
    let detail = cash_point.get(&format!("/consumers/{}", first["summary"]["consumer"].as_str().unwrap())).await.json();
    let wallet = &detail["wallets"][0];
    assert_ne!(wallet["provisional"], wallet["confirmed"]);
    assert_eq!(wallet["movements"][0]["status"], "provisional");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_answered_4xx_naming_the_field_and_writes_nothing() {
    let realm = Realm::new();
    let mut cash_point = realm.cash_point();
    cash_point.log_in("cashier.k").await;
    let (first, second, other) = family(&cash_point).await;
    let before = cash_point.dump().await;
    let key = [("idempotency-key", "a-key-for-bad-requests")];
    let consumer = first["summary"]["consumer"].as_str().unwrap();
    let line = |amount: Value| json!({"lines": [{"consumer": consumer, "service": first["wallets"][0]["service"], "amount": amount}], "method": "cash"});
    for (amount, what) in [
        (json!("12.345"), "two decimals"),
        (json!("-5"), "amount"),
        (json!("0"), "amount"),
        (json!("1e3"), "amount"),
        (json!(12.5), "amount"),
    ] {
        let answer = cash_point.call(Method::POST, "/topups", &line(amount.clone()), &key).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{amount}: {}", answer.text());
        let error = answer.json();
        assert_eq!(error["kind"], "invalid_input");
        assert_eq!(error["field"], "lines[0].amount", "{amount}: {error}");
        assert!(!error["message"].as_str().unwrap().is_empty(), "{what}");
    }
    // Malformed JSON, wrong types, unknown consumer, another family on the receipt.
    let raw = cash_point
        .send(
            cash_point
                .request(Method::POST, "/topups")
                .header(header::CONTENT_TYPE, "application/json")
                .header("idempotency-key", "a-key-for-bad-requests")
                .body(Body::from("{\"lines\": [}"))
                .unwrap(),
        )
        .await;
    assert_eq!(raw.status, StatusCode::BAD_REQUEST);
    assert!(raw.json()["message"].as_str().unwrap().contains("not valid JSON"), "{}", raw.text());
    let wrong_type = cash_point.call(Method::POST, "/topups", &json!({"lines": "all", "method": "cash"}), &key).await;
    assert_eq!(wrong_type.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong_type.json()["field"], "lines");
    let unknown = json!({"lines": [{"consumer": "00112233445566778899aabbccddeeff", "service": "mensa", "amount": "5"}], "method": "cash"});
    let answer = cash_point.call(Method::POST, "/topups", &unknown, &key).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    assert_eq!(answer.json()["field"], "lines[0].consumer");
    let mixed = top_up_body(&[(&first, "5"), (&other, "5")]);
    let answer = cash_point.call(Method::POST, "/topups", &mixed, &key).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    assert_eq!(answer.json()["field"], "lines[1].consumer");
    assert!(answer.json()["message"].as_str().unwrap().contains("family"), "{}", answer.text());
    // No idempotency key, an unknown PAN searched, an oversized body.
    let no_key = cash_point.post("/topups", &top_up_body(&[(&second, "5")])).await;
    assert_eq!(no_key.status, StatusCode::BAD_REQUEST);
    assert_eq!(no_key.json()["field"], "Idempotency-Key");
    let pan = cash_point.get("/consumers?q=4111111111111111").await;
    assert_eq!(pan.status, StatusCode::OK);
    assert_eq!(pan.json()["consumers"].as_array().unwrap().len(), 0);
    let bad_pan = cash_point.get("/consumers?q=4111111111111112").await;
    assert_eq!(bad_pan.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_pan.json()["field"], "q");
    let huge = json!({"lines": [], "method": "x".repeat(5 << 20)});
    let answer = cash_point.call(Method::POST, "/topups", &huge, &key).await;
    assert!(answer.status.is_client_error(), "{}", answer.status);
    assert_eq!(cash_point.dump().await, before, "nothing was written");
}
