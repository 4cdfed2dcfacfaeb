//! Who may call what: sessions and their CSRF token, the login rate
//! limit, every route of the OpenAPI document checking the role of its
//! caller, and the document itself with the public verification.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use super::{PASSWORD, Realm, family, top_up_body};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_need_their_csrf_token_and_logins_are_rate_limited() {
    let realm = Realm::new();
    let mut hub = realm.hub();
    hub.log_in("clerk.c").await;
    let (first, _, _) = family(&hub).await;
    let body = top_up_body(&[(&first, "5")]);
    let csrf = hub.csrf.take();
    let answer = hub.call(Method::POST, "/topups", &body, &[("idempotency-key", "csrf-test-key-1")]).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.text());
    assert!(answer.json()["message"].as_str().unwrap().contains("x-csrf-token"), "{}", answer.text());
    hub.csrf = Some("not the token".into());
    let answer = hub.call(Method::POST, "/topups", &body, &[("idempotency-key", "csrf-test-key-2")]).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    hub.csrf = csrf;
    let answer = hub.call(Method::POST, "/topups", &body, &[("idempotency-key", "csrf-test-key-3")]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    // Logged out, the cookie opens nothing.
    let answer = hub.send(hub.request(Method::DELETE, "/session").body(Body::empty()).unwrap()).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert_eq!(hub.get("/session").await.status, StatusCode::UNAUTHORIZED);
    // Wrong passwords on one account: refused, then too many.
    let fresh = realm.hub();
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(fresh.post("/session", &json!({"login": "admin.a", "password": "wrong password"})).await.status);
    }
    assert!(statuses[..5].iter().all(|s| *s == StatusCode::UNAUTHORIZED), "{statuses:?}");
    assert_eq!(statuses[6], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    // A cashier does not log in at the hub; a clerk's account is not at the cash point.
    let answer = realm.hub().post("/session", &json!({"login": "cashier.k", "password": PASSWORD})).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.text());
    let answer = realm.cash_point().post("/session", &json!({"login": "clerk.c", "password": PASSWORD})).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.text());
}

/// What an operation of the OpenAPI document allows: its method, path and
/// the roles of its security scopes (none: public).
fn operations(doc: &Value) -> Vec<(Method, String, Vec<String>)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let roles: Vec<String> = operation["security"]
                .as_array()
                .map(|s| {
                    s.iter()
                        .flat_map(|r| r["session"].as_array().cloned().unwrap_or_default())
                        .map(|r| r.as_str().unwrap().to_string())
                        .collect()
                })
                .unwrap_or_default();
            out.push((method, path.clone(), roles));
        }
    }
    out
}

/// A path of the document with its parameters filled by something of the right shape.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    for part in path.split('/') {
        if !out.is_empty() || !part.is_empty() {
            out.push('/');
        }
        if part.starts_with('{') {
            out.push_str(&"ab".repeat(32));
        } else {
            out.push_str(part);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_of_the_openapi_document_checks_the_role_of_whoever_calls_it() {
    let realm = Realm::new();
    let hub = realm.hub();
    let doc = hub.get("/openapi.json").await.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "OpenAPI 3.1");
    let operations = operations(&doc);
    assert!(operations.len() >= 8, "{operations:?}");
    let mut sessions = Vec::new();
    for (login, role, at_hub) in
        [("admin.a", "administrator", true), ("clerk.c", "clerk", true), ("cashier.k", "cashier", false)]
    {
        let mut client = if at_hub { realm.hub() } else { realm.cash_point() };
        client.log_in(login).await;
        sessions.push((role, client));
    }
    let anonymous = realm.hub();
    for (method, path, roles) in &operations {
        if roles.is_empty() {
            continue; // public: the verification of receipts
        }
        let uri = concrete(path);
        let answer = anonymous.call(method.clone(), &uri, &json!({}), &[("idempotency-key", "role-check-key")]).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{method} {path} without a session: {}", answer.text());
        for (role, client) in &sessions {
            if path == "/session" && *method == Method::DELETE {
                continue; // would end the session the next routes use
            }
            let answer = client.call(method.clone(), &uri, &json!({}), &[("idempotency-key", "role-check-key")]).await;
            if roles.iter().any(|r| r == role) {
                assert!(
                    answer.status != StatusCode::FORBIDDEN && answer.status != StatusCode::UNAUTHORIZED,
                    "{method} {path} refused {role}, which the document allows: {}",
                    answer.text()
                );
            } else {
                assert_eq!(answer.status, StatusCode::FORBIDDEN, "{method} {path} let {role} in: {}", answer.text());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_route_and_the_public_verification_says_genuine() {
    let realm = Realm::new();
    let mut hub = realm.hub();
    hub.log_in("clerk.c").await;
    let doc = hub.get("/openapi.json").await.json();
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    for expected in [
        "/session",
        "/consumers",
        "/consumers/{consumer}",
        "/topups",
        "/receipts/{operation}",
        "/status",
        "/events",
        "/verify/{code}",
        "/families",
        "/families/{family}",
        "/families/import",
        "/services",
        "/services/{service}",
        "/cash-points",
        "/cash-points/tokens",
        "/cash-points/{device}/limits",
        "/cash-points/{device}/escrow",
        "/cash-points/{device}/revoke",
        "/flagged",
        "/flagged/{operation}/review",
        "/bundle",
        "/bundles",
        "/bundles/export",
        "/operators",
        "/operators/{login}",
    ] {
        assert!(paths.iter().any(|p| *p == expected), "{expected} is not in the document: {paths:?}");
    }
    let (first, _, _) = family(&hub).await;
    let receipt = hub
        .call(Method::POST, "/topups", &top_up_body(&[(&first, "7.50")]), &[("idempotency-key", "verify-test-key")])
        .await
        .json();
    let code = receipt["verification_code"].as_str().unwrap();
    assert!(code.len() <= 24, "short: {code}");
    let public = realm.hub();
    let verification = public.get(&format!("/verify/{code}")).await.json();
    assert_eq!(verification["genuine"], true);
    assert_eq!(verification["state"], "accepted", "the hub records and accepts its own top-up");
    assert_eq!(verification["total"], "7.50");
    assert!(verification.get("consumer").is_none(), "nothing personal");
    let forged = public.get(&format!("/verify/{}", "0".repeat(code.len()))).await.json();
    assert_eq!(forged["genuine"], false);
    let status = hub.get("/status").await.json();
    assert_eq!(status["node"], "hub");
    assert_eq!(status["realm_name"], "Comune di Prova");
    assert_eq!(status["online"], true);
    for path in ["/healthz", "/readyz", "/metrics"] {
        let answer = hub.send(Request::builder().uri(path).body(Body::empty()).unwrap()).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
    }
    let metrics = hub.send(Request::builder().uri("/metrics").body(Body::empty()).unwrap()).await.text();
    assert!(metrics.contains("saldo_http_requests"), "{metrics}");
}
