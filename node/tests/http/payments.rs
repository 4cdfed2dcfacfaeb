//! Money beyond top-ups: dues paid, reversals (the same day, at the cash
//! point that recorded the top-up), the day's close and its remittance,
//! and the office's transfers between siblings and refunds.

use axum::http::{Method, StatusCode};
use saldo_node::Node;
use saldo_sync::Balance;
use serde_json::{Value, json};

use super::{Client, Realm, family, hub_ingests, top_up_body};

fn wallet_of(consumer: &Value) -> Value {
    let id = consumer["summary"]["consumer"].as_str().or(consumer["consumer"].as_str()).unwrap();
    json!({"consumer": id, "service": consumer["wallets"][0]["service"]})
}

async fn confirmed(client: &Client, consumer: &Value) -> String {
    let id = consumer["summary"]["consumer"].as_str().unwrap();
    let detail = client.get(&format!("/consumers/{id}")).await.json();
    let service = &consumer["wallets"][0]["service"];
    let wallet = detail["wallets"].as_array().unwrap().iter().find(|w| w["service"] == *service).unwrap().clone();
    wallet["confirmed"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cashier_takes_a_due_reverses_a_top_up_closes_the_day_and_remits_its_cash_and_the_hub_agrees() {
    let realm = Realm::new();
    let mut cash_point = realm.cash_point();
    cash_point.log_in("cashier.k").await;
    let (first, second, _) = family(&cash_point).await;
    let key = |k: &str| [("idempotency-key", format!("money-test-{k}"))];
    let post = async |client: &Client, path: &str, body: &Value, k: &str| {
        let headers = key(k);
        client.call(Method::POST, path, body, &[(headers[0].0, headers[0].1.as_str())]).await
    };
    // A top-up in cash, then a due paid by debit card.
    let kept = post(&cash_point, "/topups", &top_up_body(&[(&first, "20.00")]), "topup-kept").await.json();
    let due =
        json!({"due": "Scuolabus T1 2026", "wallet": wallet_of(&second), "amount": "120.00", "method": "debit_card"});
    let answer = post(&cash_point, "/due-payments", &due, "due-1").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let paid = answer.json();
    assert_eq!(paid["kind"], "due_payment");
    assert_eq!(paid["due"], "Scuolabus T1 2026");
    assert_eq!(paid["total"], "120.00");
    assert_eq!(paid["method"], "debit_card");
    assert_eq!(paid["operator"], "Anna Bianchi");
    assert_eq!(paid["provisional"], true);
    assert_eq!(paid["receipt_number"].as_u64(), kept["receipt_number"].as_u64().map(|n| n + 1));
    let before = cash_point.dump().await;
    assert_eq!(
        post(&cash_point, "/due-payments", &due, "due-1").await.json(),
        paid,
        "a retry answers the same receipt"
    );
    assert_eq!(cash_point.dump().await, before, "and records nothing");
    let twice = post(&cash_point, "/due-payments", &due, "due-2").await;
    assert_eq!(twice.status, StatusCode::BAD_REQUEST, "{}", twice.text());
    assert_eq!(twice.json()["field"], "due");
    assert!(twice.json()["message"].as_str().unwrap().contains("paid already"), "{}", twice.text());
    for (bad, field) in [
        (json!({"due": "T1", "wallet": wallet_of(&second), "amount": "12.345", "method": "cash"}), "amount"),
        (json!({"due": "T1", "wallet": wallet_of(&second), "amount": "5", "method": "other"}), "method"),
        (
            json!({"due": "T1", "wallet": {"consumer": "00112233445566778899aabbccddeeff", "service": "mensa"}, "amount": "5", "method": "cash"}),
            "wallet.consumer",
        ),
    ] {
        let answer = post(&cash_point, "/due-payments", &bad, "due-bad").await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}: {}", answer.text());
        assert_eq!(answer.json()["field"], field, "{bad}: {}", answer.text());
    }
    assert_eq!(cash_point.dump().await, before, "bad requests write nothing");
    // A top-up reversed the same day: the reversal's receipt, and the
    // reversed receipt naming it.
    let undone = post(&cash_point, "/topups", &top_up_body(&[(&second, "10.00")]), "topup-undone").await.json();
    let reversal = json!({"operation": undone["operation"], "reason": "wrong child"});
    let answer = post(&cash_point, "/reversals", &reversal, "reversal-1").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let storno = answer.json();
    assert_eq!(storno["kind"], "reversal");
    assert_eq!(storno["reverses"]["operation"], undone["operation"]);
    assert_eq!(storno["receipt_number"], undone["receipt_number"]);
    assert_eq!(storno["reason"], "wrong child");
    assert_eq!(storno["total"], "10.00");
    let before = cash_point.dump().await;
    assert_eq!(post(&cash_point, "/reversals", &reversal, "reversal-1").await.json(), storno);
    assert_eq!(cash_point.dump().await, before);
    let reread = cash_point.get(&format!("/receipts/{}", undone["operation"].as_str().unwrap())).await.json();
    assert_eq!(reread["reversed_by"]["operation"], storno["operation"]);
    let text = cash_point.get(&format!("/receipts/{}?format=text", storno["operation"].as_str().unwrap())).await;
    assert_eq!(text.status, StatusCode::OK, "{}", text.text());
    for (body, refusal) in
        [(reversal.clone(), "reversed already"), (json!({"operation": paid["operation"], "reason": "no"}), "refund")]
    {
        let answer = post(&cash_point, "/reversals", &body, "reversal-2").await;
        assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.text());
        assert!(answer.json()["message"].as_str().unwrap().contains(refusal), "{}", answer.text());
    }
    assert_eq!(cash_point.dump().await, before);
    // The day, read before it is closed, then closed: two receipts count
    // (the reversed one does not), per method, and the reversal.
    let preview = cash_point.get("/daily-close").await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.text());
    let preview = preview.json();
    assert_eq!(preview["operation"], Value::Null);
    assert_eq!(preview["count"], 2);
    assert_eq!(preview["total"], "140.00");
    assert_eq!(preview["first_receipt"], kept["receipt_number"]);
    assert_eq!(preview["last_receipt"], undone["receipt_number"]);
    assert_eq!(preview["reversals"], 1);
    assert_eq!(preview["reversals_total"], "10.00");
    let methods = preview["per_method"].as_array().unwrap();
    assert!(methods.contains(&json!({"method": "cash", "count": 1, "total": "20.00"})), "{methods:?}");
    assert!(methods.contains(&json!({"method": "debit_card", "count": 1, "total": "120.00"})), "{methods:?}");
    assert_eq!(cash_point.dump().await, before, "reading the day records nothing");
    let early = post(&cash_point, "/remittances", &json!({"amount": "20.00", "reference": "CRO 1"}), "remit-1").await;
    assert_eq!(early.status, StatusCode::CONFLICT, "{}", early.text());
    assert!(early.json()["message"].as_str().unwrap().contains("close the day first"), "{}", early.text());
    for (query, what) in
        [("?day=20991231", "still to come"), ("?day=2026", "YYYYMMDD"), ("?day=20260231", "no such day")]
    {
        let answer = post(&cash_point, &format!("/daily-close{query}"), &json!({}), "close-bad").await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{query}: {}", answer.text());
        assert_eq!(answer.json()["field"], "day");
        assert!(answer.json()["message"].as_str().unwrap().contains(what), "{query}: {}", answer.text());
    }
    assert_eq!(cash_point.dump().await, before);
    let answer = post(&cash_point, "/daily-close", &json!({}), "close-1").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let close = answer.json();
    assert!(close["operation"].is_string());
    let mut expected = preview.clone();
    expected["operation"] = close["operation"].clone();
    assert_eq!(close, expected, "the close records what the preview showed");
    let before = cash_point.dump().await;
    assert_eq!(post(&cash_point, "/daily-close", &json!({}), "close-1").await.json(), close);
    assert_eq!(cash_point.get(&format!("/daily-close?day={}", close["day"])).await.json(), close);
    let again = post(&cash_point, "/daily-close", &json!({}), "close-2").await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text());
    assert!(again.json()["message"].as_str().unwrap().contains("closed already"), "{}", again.text());
    // After the close, no reversal of the day's top-ups.
    let late =
        post(&cash_point, "/reversals", &json!({"operation": kept["operation"], "reason": "late"}), "reversal-3").await;
    assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.text());
    assert!(late.json()["message"].as_str().unwrap().contains("closed"), "{}", late.text());
    // The remittance hands over the cash of the closed day, to the cent.
    let wrong = post(&cash_point, "/remittances", &json!({"amount": "25.00", "reference": "CRO 1"}), "remit-1").await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.text());
    assert_eq!(wrong.json()["field"], "amount");
    assert!(wrong.json()["message"].as_str().unwrap().contains("20.00"), "{}", wrong.text());
    assert_eq!(cash_point.dump().await, before);
    let remit = json!({"amount": "20.00", "reference": "CRO 1"});
    let answer = post(&cash_point, "/remittances", &remit, "remit-2").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let remitted = answer.json();
    assert_eq!(remitted["first_receipt"], kept["receipt_number"]);
    assert_eq!(remitted["last_receipt"], undone["receipt_number"]);
    assert_eq!(remitted["amount"], "20.00");
    assert_eq!(remitted["reference"], "CRO 1");
    let before = cash_point.dump().await;
    assert_eq!(post(&cash_point, "/remittances", &remit, "remit-2").await.json(), remitted);
    assert_eq!(cash_point.dump().await, before);
    let nothing = post(&cash_point, "/remittances", &remit, "remit-3").await;
    assert_eq!(nothing.status, StatusCode::CONFLICT, "{}", nothing.text());
    // The hub, given the cash point's log, accepts all of it: the close's
    // and the remittance's figures are the ones it counts.
    drop(cash_point);
    let flagged = hub_ingests(&realm);
    assert!(flagged.is_empty(), "the hub flagged: {flagged:?}");
}

/// A clock a fixed time in the past.
#[derive(Debug)]
struct Behind(u64);

impl saldo_node::node::Clock for Behind {
    fn now_ms(&self) -> u64 {
        saldo_node::node::wall_now_ms() - self.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reversal_is_refused_for_yesterdays_top_up_and_for_another_cash_points() {
    let realm = Realm::new();
    let mut cash_point = realm.cash_point();
    cash_point.log_in("cashier.k").await;
    let (first, _, _) = family(&cash_point).await;
    // Yesterday (26 hours ago), the cash point recorded a top-up.
    let request: saldo_api::payments::TopUpRequest = serde_json::from_value(top_up_body(&[(&first, "8.00")])).unwrap();
    let yesterday = {
        let mut node =
            Node::open(&realm.cash_point_dir).unwrap().with_clock(std::sync::Arc::new(Behind(26 * 3_600_000)));
        node.record_top_up_request(&request, None, None, "").unwrap()
    };
    let before = cash_point.dump().await;
    let body = json!({"operation": yesterday.operation.to_hex(), "reason": "wrong amount"});
    let answer = cash_point.call(Method::POST, "/reversals", &body, &[("idempotency-key", "old-key-1")]).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.text());
    let message = answer.json()["message"].as_str().unwrap().to_string();
    assert!(message.contains("only the day it was recorded") && message.contains("refund"), "{message}");
    assert_eq!(cash_point.dump().await, before, "nothing written");
    // Today's top-up at the cash point reaches the hub; the office cannot reverse it.
    let today = cash_point
        .call(Method::POST, "/topups", &top_up_body(&[(&first, "9.00")]), &[("idempotency-key", "today-key-1")])
        .await
        .json();
    drop(cash_point);
    assert!(hub_ingests(&realm).is_empty());
    let mut hub = realm.hub();
    hub.log_in("clerk.c").await;
    let before = hub.dump().await;
    let body = json!({"operation": today["operation"], "reason": "asked by the family"});
    let answer = hub.call(Method::POST, "/reversals", &body, &[("idempotency-key", "office-1")]).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.text());
    let message = answer.json()["message"].as_str().unwrap().to_string();
    assert!(message.contains("Edicola Centrale") && message.contains("refund"), "{message}");
    let unknown = json!({"operation": "ab".repeat(32), "reason": "x"});
    let answer = hub.call(Method::POST, "/reversals", &unknown, &[("idempotency-key", "office-2")]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    assert_eq!(answer.json()["field"], "operation");
    assert_eq!(hub.dump().await, before, "nothing written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_office_transfers_between_siblings_and_refunds_a_family_never_across_families() {
    let realm = Realm::new();
    let mut hub = realm.hub();
    hub.log_in("clerk.c").await;
    let (first, second, other) = family(&hub).await;
    let top_up = hub
        .call(Method::POST, "/topups", &top_up_body(&[(&first, "30.00")]), &[("idempotency-key", "office-t-1")])
        .await;
    assert_eq!(top_up.status, StatusCode::OK, "{}", top_up.text());
    let cents = |text: String| Balance::parse(&text).unwrap().minor();
    let (first_before, second_before) = (cents(confirmed(&hub, &first).await), cents(confirmed(&hub, &second).await));
    let transfer = json!({"from": wallet_of(&first), "to": wallet_of(&second), "amount": "10.00", "reason": "sibling"});
    let answer = hub.call(Method::POST, "/transfers", &transfer, &[("idempotency-key", "office-tr-1")]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let recorded = answer.json();
    assert!(recorded["operation"].is_string());
    let before = hub.dump().await;
    assert_eq!(
        hub.call(Method::POST, "/transfers", &transfer, &[("idempotency-key", "office-tr-1")]).await.json(),
        recorded
    );
    assert_eq!(hub.dump().await, before, "a retry records nothing");
    assert_eq!(cents(confirmed(&hub, &first).await), first_before - 1_000);
    assert_eq!(cents(confirmed(&hub, &second).await), second_before + 1_000);
    // Refused, writing nothing: another family, more than the wallet holds,
    // the same wallet, a bad amount.
    let across = json!({"from": wallet_of(&first), "to": wallet_of(&other), "amount": "1.00", "reason": "x"});
    let answer = hub.call(Method::POST, "/transfers", &across, &[("idempotency-key", "office-tr-2")]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    assert_eq!(answer.json()["field"], "to.consumer");
    assert!(answer.json()["message"].as_str().unwrap().contains("family"), "{}", answer.text());
    let too_much = json!({"from": wallet_of(&first), "to": wallet_of(&second), "amount": "4000.00", "reason": "x"});
    let answer = hub.call(Method::POST, "/transfers", &too_much, &[("idempotency-key", "office-tr-3")]).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.text());
    assert!(answer.json()["message"].as_str().unwrap().contains("holds"), "{}", answer.text());
    let itself = json!({"from": wallet_of(&first), "to": wallet_of(&first), "amount": "1.00", "reason": "x"});
    let answer = hub.call(Method::POST, "/transfers", &itself, &[("idempotency-key", "office-tr-4")]).await;
    assert_eq!(answer.json()["field"], "to", "{}", answer.text());
    let cents_bad = json!({"from": wallet_of(&first), "to": wallet_of(&second), "amount": "1.005", "reason": "x"});
    let answer = hub.call(Method::POST, "/transfers", &cents_bad, &[("idempotency-key", "office-tr-5")]).await;
    assert_eq!(answer.json()["field"], "amount", "{}", answer.text());
    assert_eq!(hub.dump().await, before, "refusals write nothing");
    // A refund hands money back, once however often it is sent.
    let refund = json!({"wallet": wallet_of(&second), "amount": "5.00", "method": "cash", "reason": "moved away"});
    let answer = hub.call(Method::POST, "/refunds", &refund, &[("idempotency-key", "office-rf-1")]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let refunded = answer.json();
    let before = hub.dump().await;
    assert_eq!(
        hub.call(Method::POST, "/refunds", &refund, &[("idempotency-key", "office-rf-1")]).await.json(),
        refunded
    );
    assert_eq!(hub.dump().await, before);
    assert_eq!(cents(confirmed(&hub, &second).await), second_before + 500);
    let too_much = json!({"wallet": wallet_of(&second), "amount": "4000.00", "method": "cash", "reason": "x"});
    let answer = hub.call(Method::POST, "/refunds", &too_much, &[("idempotency-key", "office-rf-2")]).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.text());
    let other_method = json!({"wallet": wallet_of(&second), "amount": "1.00", "method": "other", "reason": "x"});
    let answer = hub.call(Method::POST, "/refunds", &other_method, &[("idempotency-key", "office-rf-3")]).await;
    assert_eq!(answer.json()["field"], "method", "{}", answer.text());
    // The office neither closes a cash point's day nor remits its cash.
    for path in ["/daily-close", "/remittances"] {
        let answer = hub.call(Method::POST, path, &json!({}), &[("idempotency-key", "close-at-hub")]).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{path}: {}", answer.text());
    }
    assert_eq!(hub.dump().await, before, "refusals write nothing");
}
