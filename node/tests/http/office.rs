//! The hub's office: families listed, opened and imported with each
//! refused row named, services' tariffs and floors, cash points enrolled,
//! limited, given allowances and revoked, flagged operations that arrive in
//! a bundle reviewed and bundles sent back, and operators managed.

use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use saldo_node::{Node, generate};
use saldo_sync::{Amount, AuthorId, Balance, DeviceKey, OfflineLimits, Role};
use serde_json::{Value, json};

use super::{Answer, Client, PASSWORD, Realm, family, label, top_up_body};

impl Client {
    async fn put(&self, path: &str, body: &Value) -> Answer {
        self.call(Method::PUT, path, body, &[]).await
    }

    async fn patch(&self, path: &str, body: &Value) -> Answer {
        self.call(Method::PATCH, path, body, &[]).await
    }

    /// A body that is not JSON (a CSV file, a bundle), with its content type.
    async fn post_bytes(&self, path: &str, content_type: &str, bytes: Vec<u8>) -> Answer {
        let request = self.request(Method::POST, path).header(header::CONTENT_TYPE, content_type);
        self.send(request.body(Body::from(bytes)).unwrap()).await
    }
}

/// Asserts a 400 naming `field`, and that the node wrote nothing.
async fn refused(client: &Client, answer: Answer, field: &str, before: &[String]) {
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{field}: {}", answer.text());
    let error = answer.json();
    assert_eq!(error["field"], field, "{error}");
    assert!(!error["message"].as_str().unwrap().is_empty());
    assert_eq!(client.dump().await, before, "a refused request ({field}) wrote nothing");
}

/// A generated CSV of one child (seed 99, a family the realm does not have)
/// and two bad rows after it: a wrong codice fiscale, a wrong e-mail.
fn csv_with_two_bad_rows() -> (Vec<u8>, String) {
    let mut csv = Vec::new();
    generate::write_csv(&mut csv, 1, 99).unwrap();
    let text = String::from_utf8(csv).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().to_string();
    let row = lines.next().unwrap().to_string();
    let separator = if header.contains(';') { ';' } else { ',' };
    let columns: Vec<&str> = header.split(separator).collect();
    let cells: Vec<&str> = row.split(separator).collect();
    let with = |column: &str, value: &str| {
        let at = columns.iter().position(|c| *c == column).unwrap();
        let mut cells = cells.clone();
        cells[at] = value;
        cells.join(&separator.to_string())
    };
    let surname = cells[columns.iter().position(|c| *c == "consumer_surname").unwrap()].to_string();
    let body = format!(
        "{header}\n{row}\n{}\n{}\n",
        with("consumer_fiscal_code", "RSSMRA85T10A562X"),
        with("email", "not an address")
    );
    (body.into_bytes(), surname)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_office_lists_and_opens_families_imports_a_csv_naming_each_refused_row_and_sets_services() {
    let realm = Realm::new();
    let mut hub = realm.hub();
    hub.log_in("clerk.c").await;
    // A page of families, then the family of a child found by name.
    let page = hub.get("/families?limit=5").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let page = page.json();
    assert_eq!(page["families"].as_array().unwrap().len(), 5);
    let total = page["total"].as_u64().unwrap();
    assert!(total >= 10, "{page}");
    let rest = hub.get("/families?limit=500&offset=5").await.json();
    assert_eq!(rest["families"].as_array().unwrap().len() as u64, total - 5);
    let (first, second, _) = family(&hub).await;
    let surname = first["summary"]["surname"].as_str().unwrap();
    let found = hub.get(&format!("/families?q={}", &surname[..3].to_lowercase())).await.json();
    let family_id = first["summary"]["family"].as_str().unwrap();
    assert!(found["families"].as_array().unwrap().iter().any(|f| f["id"] == family_id), "{found}");
    let detail = hub.get(&format!("/families/{family_id}")).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.text());
    let detail = detail.json();
    let children: Vec<&Value> = detail["consumers"].as_array().unwrap().iter().map(|c| &c["consumer"]).collect();
    assert!(children.contains(&&first["summary"]["consumer"]) && children.contains(&&second["summary"]["consumer"]));
    assert!(detail["payer"]["fiscal_code"].as_str().unwrap().len() == 16, "{detail}");
    assert!(detail["payer"].get("email").is_some(), "the hub shows the payer's contacts: {detail}");
    // Bad requests: named, nothing written.
    let before = hub.dump().await;
    refused(&hub, hub.get("/families?limit=0").await, "limit", &before).await;
    refused(&hub, hub.get("/families?q=x").await, "q", &before).await;
    refused(&hub, hub.get("/families?q=rossi&offset=5").await, "offset", &before).await;
    refused(&hub, hub.get("/families/not-an-id").await, "family", &before).await;
    let unknown = hub.get(&format!("/families/{}", "0".repeat(32))).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text());

    // The import: the good row goes in, each bad row is named.
    let (csv, new_surname) = csv_with_two_bad_rows();
    refused(&hub, hub.post_bytes("/families/import", "application/json", csv.clone()).await, "Content-Type", &before)
        .await;
    let no_column = b"payer_fiscal_code;payer_surname\nRSSMRA85T10A562S;Rossi\n".to_vec();
    refused(&hub, hub.post_bytes("/families/import", "text/csv", no_column).await, "payer_name", &before).await;
    refused(&hub, hub.post_bytes("/families/import", "text/csv", Vec::new()).await, "body", &before).await;
    let answer = hub.post_bytes("/families/import", "text/csv; charset=utf-8", csv).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let report = answer.json();
    assert_eq!(report["rows"], 3, "{report}");
    assert_eq!(report["accepted_rows"], 1, "{report}");
    assert_eq!(report["families"], 1, "{report}");
    let refused_rows = report["refused"].as_array().unwrap();
    assert_eq!(refused_rows.len(), 2, "{report}");
    assert_eq!(
        (refused_rows[0]["line"].as_u64(), refused_rows[0]["field"].as_str()),
        (Some(3), Some("consumer_fiscal_code"))
    );
    assert_eq!((refused_rows[1]["line"].as_u64(), refused_rows[1]["field"].as_str()), (Some(4), Some("email")));
    assert!(refused_rows[1]["message"].as_str().unwrap().contains("not an address"), "{report}");
    let found = hub.get(&format!("/consumers?q={new_surname}")).await.json();
    assert!(!found["consumers"].as_array().unwrap().is_empty(), "the good row went in");
    assert_eq!(hub.get("/families?limit=1").await.json()["total"].as_u64(), Some(total + 1));

    // Services: everyone reads them, the office sets tariffs and floors.
    let services = hub.get("/services").await.json();
    let service = services["services"][0].clone();
    let id = service["id"].as_str().unwrap().to_string();
    let name = service["name"].as_str().unwrap().to_string();
    let mut cash_point = realm.cash_point();
    cash_point.log_in("cashier.k").await;
    assert_eq!(
        cash_point.get("/services").await.json()["services"].as_array().unwrap().len(),
        services["services"].as_array().unwrap().len()
    );
    let answer = hub.put(&format!("/services/{id}"), &json!({"name": name, "floor": "-20.00", "tariff": "4.50"})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["floor"], "-20.00");
    assert_eq!(answer.json()["tariff"], "4.50");
    let listed = hub.get("/services").await.json();
    let listed = listed["services"].as_array().unwrap().iter().find(|s| s["id"] == id.as_str()).unwrap().clone();
    assert_eq!((listed["floor"].as_str(), listed["tariff"].as_str()), (Some("-20.00"), Some("4.50")));
    let before = hub.dump().await;
    refused(&hub, hub.put(&format!("/services/{id}"), &json!({"name": name, "floor": "5.00"})).await, "floor", &before)
        .await;
    refused(
        &hub,
        hub.put(&format!("/services/{id}"), &json!({"name": name, "tariff": "4.555"})).await,
        "tariff",
        &before,
    )
    .await;
    refused(&hub, hub.put(&format!("/services/{id}"), &json!({"name": "Piscina"})).await, "name", &before).await;
    refused(&hub, hub.put("/services/Not%20An%20Id", &json!({"name": name})).await, "service", &before).await;
    let answer = hub.put(&format!("/services/{id}"), &json!({"name": name, "remove_tariff": true})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert!(answer.json()["tariff"].is_null(), "{}", answer.text());
}

/// The hub's address, as `saldo hub` records it once it runs on the network.
fn hub_has_run(realm: &Realm) -> AuthorId {
    let mut hub = Node::open(&realm.hub_dir).unwrap();
    let id = hub.realm().hub();
    hub.set_addresses(saldo_node::node::META_LISTEN, &[format!("{}@127.0.0.1:4433", id.to_hex())]).unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_enrol_limit_grant_and_revoke_cash_points() {
    let realm = Realm::new();
    // A school device, which charges meals against allowances.
    let school = DeviceKey::generate().author();
    {
        let mut node = Node::open(&realm.hub_dir).unwrap();
        let limits = OfflineLimits {
            per_operation: Amount::parse("50").unwrap(),
            unconfirmed_total: Balance::parse("500").unwrap(),
            offline_secs_max: 86_400,
        };
        node.enrol(school, Role::SchoolDevice, &label("Scuola Verdi"), limits).unwrap();
    }
    let hub_id = hub_has_run(&realm);
    let mut hub = realm.hub();
    hub.log_in("admin.a").await;
    let list = hub.get("/cash-points").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text());
    let list = list.json();
    let devices = list["cash_points"].as_array().unwrap();
    let edicola = devices.iter().find(|d| d["name"] == "Edicola Centrale").unwrap().clone();
    assert_eq!(edicola["role"], "cash_point");
    assert_eq!(edicola["limits"]["per_operation"], "500.00");
    assert_eq!(edicola["limits"]["offline_hours"], 24);
    assert!(edicola["revoked"].is_null());
    assert!(devices.iter().any(|d| d["role"] == "school_device"));
    let device = edicola["device"].as_str().unwrap().to_string();
    let mut clerk = realm.hub();
    clerk.log_in("clerk.c").await;
    assert_eq!(clerk.get("/cash-points").await.json(), list, "the office sees the cash points too");

    // An enrolment token that `saldo cashpoint --join` takes.
    let limits = json!({"per_operation": "200.00", "unconfirmed_total": "2000.00", "offline_hours": 72});
    let answer = hub.post("/cash-points/tokens", &json!({"name": "Farmacia Nuova", "limits": limits})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let token = answer.json()["token"].as_str().unwrap().to_string();
    let decoded = saldo_node::net::EnrolmentToken::decode(&token).unwrap();
    assert_eq!(decoded.realm.hub(), hub_id);
    assert_eq!(decoded.hub.len(), 1);
    let before = hub.dump().await;
    let zero = json!({"name": "Farmacia", "limits": {"per_operation": "200.00", "unconfirmed_total": "0.00", "offline_hours": 72}});
    refused(&hub, hub.post("/cash-points/tokens", &zero).await, "limits.unconfirmed_total", &before).await;
    refused(&hub, hub.post("/cash-points/tokens", &json!({"name": "Farmacia"})).await, "limits", &before).await;

    // Limits.
    let answer = hub.put(&format!("/cash-points/{device}/limits"), &json!({"offline_hours": 48})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["offline_hours"], 48);
    assert_eq!(answer.json()["per_operation"], "500.00");
    let before = hub.dump().await;
    refused(&hub, hub.put(&format!("/cash-points/{device}/limits"), &json!({})).await, "per_operation", &before).await;
    refused(
        &hub,
        hub.put(&format!("/cash-points/{device}/limits"), &json!({"offline_hours": 0})).await,
        "offline_hours",
        &before,
    )
    .await;
    refused(&hub, hub.put("/cash-points/xyz/limits", &json!({"offline_hours": 5})).await, "device", &before).await;
    let unknown = hub.put(&format!("/cash-points/{}/limits", "cd".repeat(32)), &json!({"offline_hours": 5})).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text());
    assert_eq!(hub.dump().await, before);

    // An allowance for the school device on a wallet with money on it.
    let (first, _, _) = family(&hub).await;
    let topped = hub
        .call(Method::POST, "/topups", &top_up_body(&[(&first, "30.00")]), &[("idempotency-key", "escrow-test-topup")])
        .await;
    assert_eq!(topped.status, StatusCode::OK, "{}", topped.text());
    let wallet = json!({"consumer": first["summary"]["consumer"], "service": first["wallets"][0]["service"]});
    let answer = hub
        .post(&format!("/cash-points/{}/escrow", school.to_hex()), &json!({"wallet": wallet, "amount": "10.00"}))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["amount"], "10.00");
    let before = hub.dump().await;
    let too_much = hub
        .post(&format!("/cash-points/{}/escrow", school.to_hex()), &json!({"wallet": wallet, "amount": "1000.00"}))
        .await;
    assert_eq!(too_much.status, StatusCode::CONFLICT, "{}", too_much.text());
    let no_wallet = json!({"consumer": first["summary"]["consumer"], "service": "piscina"});
    refused(
        &hub,
        hub.post(&format!("/cash-points/{}/escrow", school.to_hex()), &json!({"wallet": no_wallet, "amount": "1.00"}))
            .await,
        "wallet",
        &before,
    )
    .await;
    refused(
        &hub,
        hub.post(&format!("/cash-points/{}/escrow", school.to_hex()), &json!({"wallet": wallet, "amount": "-1"})).await,
        "amount",
        &before,
    )
    .await;

    // Revocation.
    refused(&hub, hub.post(&format!("/cash-points/{device}/revoke"), &json!({})).await, "reason", &before).await;
    let answer = hub.post(&format!("/cash-points/{device}/revoke"), &json!({"reason": "shop closed"})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["device"], device.as_str());
    let list = hub.get("/cash-points").await.json();
    let edicola =
        list["cash_points"].as_array().unwrap().iter().find(|d| d["device"] == device.as_str()).unwrap().clone();
    assert_eq!(edicola["revoked"]["last_seq_seen"], 0, "{edicola}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flagged_operations_arrive_in_a_bundle_and_are_reviewed_and_bundles_go_back() {
    let realm = Realm::new();
    let mut hub = realm.hub();
    hub.log_in("clerk.c").await;
    let mut admin = realm.hub();
    admin.log_in("admin.a").await;
    let device = admin.get("/cash-points").await.json()["cash_points"][0]["device"].as_str().unwrap().to_string();
    // The hub revokes the cash point, which does not know it yet and records a top-up.
    let answer = admin.post(&format!("/cash-points/{device}/revoke"), &json!({"reason": "lost terminal"})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let receipt = {
        let mut cash_point = realm.cash_point();
        cash_point.log_in("cashier.k").await;
        let (first, _, _) = family(&cash_point).await;
        let answer = cash_point
            .call(
                Method::POST,
                "/topups",
                &top_up_body(&[(&first, "12.00")]),
                &[("idempotency-key", "bundle-test-topup")],
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        answer.json()
    };
    let (bundle, _) = Node::open(&realm.cash_point_dir).unwrap().export_bundle(None).unwrap();
    assert!(hub.get("/flagged").await.json()["operations"].as_array().unwrap().is_empty());

    // Up: the cash point's bundle.
    let before = hub.dump().await;
    refused(
        &hub,
        hub.post_bytes("/bundles", "application/octet-stream", b"not a bundle".to_vec()).await,
        "body",
        &before,
    )
    .await;
    let answer = hub.post_bytes("/bundles", "application/octet-stream", bundle).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let report = answer.json();
    assert_eq!(report["exporter"], device.as_str());
    assert!(report["new"].as_u64().unwrap() >= 1, "{report}");
    assert!(report["refused"].as_array().unwrap().is_empty(), "{report}");
    let flagged = hub.get("/flagged").await.json();
    let operations = flagged["operations"].as_array().unwrap();
    assert_eq!(operations.len(), 1, "{flagged}");
    let operation = &operations[0];
    assert_eq!(operation["operation"], receipt["operation"]);
    assert_eq!(operation["reason"], "revoked_author");
    assert_eq!(operation["kind"], "top-up");
    assert_eq!(operation["amount"], "12.00");
    assert_eq!(operation["author_name"], "Edicola Centrale");
    assert!(!operation["detail"].as_str().unwrap().is_empty());

    // The review: a rejection says why; an acceptance counts it.
    let op = operation["operation"].as_str().unwrap();
    let before = hub.dump().await;
    refused(&hub, hub.post(&format!("/flagged/{op}/review"), &json!({"accept": false})).await, "note", &before).await;
    refused(&hub, hub.post(&format!("/flagged/{op}/review"), &json!({"accept": "yes"})).await, "accept", &before).await;
    refused(&hub, hub.post("/flagged/nope/review", &json!({"accept": true})).await, "operation", &before).await;
    let unknown = hub.post(&format!("/flagged/{}/review", "ef".repeat(32)), &json!({"accept": true})).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text());
    let answer = hub.post(&format!("/flagged/{op}/review"), &json!({"accept": true, "note": "cash handed in"})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["accepted"], true);
    assert!(hub.get("/flagged").await.json()["operations"].as_array().unwrap().is_empty());
    let again = hub.post(&format!("/flagged/{op}/review"), &json!({"accept": true, "note": "twice"})).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text());

    // Down: a bundle for the device, and one for what its frontier file lacks.
    let answer = hub.get(&format!("/bundle?device={device}")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.headers[header::CONTENT_TYPE], "application/octet-stream");
    let mut cash_point = Node::open(&realm.cash_point_dir).unwrap();
    let imported = cash_point.import_bundle(&answer.body).unwrap();
    assert!(imported.new >= 2, "the revocation and the decision reach the device: {imported:?}");
    let (_, frontier) = cash_point.frontier_file().unwrap();
    let answer = hub.post_bytes("/bundles/export", "application/octet-stream", frontier).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(cash_point.import_bundle(&answer.body).unwrap().new, 0, "it lacks nothing now");
    let before = hub.dump().await;
    refused(&hub, hub.get("/bundle?device=xyz").await, "device", &before).await;
    refused(&hub, hub.get("/bundle").await, "device", &before).await;
    refused(
        &hub,
        hub.post_bytes("/bundles/export", "application/octet-stream", b"junk".to_vec()).await,
        "body",
        &before,
    )
    .await;
    let unknown = hub.get(&format!("/bundle?device={}", "cd".repeat(32))).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text());
    // A bundle may be larger than any other body; a frontier file may not.
    let large = vec![7u8; saldo_node::http::BODY_BYTES_MAX + 1];
    let answer = hub.post_bytes("/bundles", "application/octet-stream", large.clone()).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    assert!(!answer.json()["message"].as_str().unwrap().contains("MiB"), "read whole, then refused: {}", answer.text());
    let answer = hub.post_bytes("/bundles/export", "application/octet-stream", large).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    assert!(answer.json()["message"].as_str().unwrap().contains("MiB"), "{}", answer.text());
    assert_eq!(hub.dump().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_manage_operators_and_disabling_one_ends_their_sessions() {
    let realm = Realm::new();
    let mut admin = realm.hub();
    admin.log_in("admin.a").await;
    let list = admin.get("/operators").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text());
    let list = list.json();
    let logins: Vec<&str> =
        list["operators"].as_array().unwrap().iter().map(|o| o["login"].as_str().unwrap()).collect();
    assert!(logins.contains(&"admin.a") && logins.contains(&"clerk.c") && logins.contains(&"cashier.k"), "{list}");
    let cashier = list["operators"].as_array().unwrap().iter().find(|o| o["login"] == "cashier.k").unwrap();
    assert_eq!(cashier["cash_point_name"], "Edicola Centrale");

    let create = json!({"login": "Nuovo.Clerk", "name": "Luca Verdi", "role": "clerk", "password": PASSWORD});
    let answer = admin.post("/operators", &create).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["login"], "nuovo.clerk");
    assert_eq!(answer.json()["disabled"], false);
    assert_eq!(answer.json()["must_change_password"], false);
    assert!(answer.json().get("one_time_password").is_none(), "{}", answer.text());
    // Without a password the node generates a one-time password, shown once.
    let generated =
        admin.post("/operators", &json!({"login": "ufficio.due", "name": "Ada Neri", "role": "clerk"})).await;
    assert_eq!(generated.status, StatusCode::OK, "{}", generated.text());
    assert_eq!(generated.json()["must_change_password"], true);
    let one_time = generated.json()["one_time_password"].as_str().unwrap().to_string();
    assert!(one_time.len() >= 10, "{one_time}");
    let listed = admin.get("/operators").await.json();
    let listed = listed["operators"].as_array().unwrap().iter().find(|o| o["login"] == "ufficio.due").unwrap().clone();
    assert!(listed.get("one_time_password").is_none() && listed["must_change_password"] == true, "{listed}");
    let reset = admin.patch("/operators/ufficio.due", &json!({"one_time_password": true})).await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.text());
    assert!(reset.json()["one_time_password"].as_str().is_some_and(|p| p != one_time), "{}", reset.text());
    let both = admin.patch("/operators/ufficio.due", &json!({"one_time_password": true, "password": PASSWORD})).await;
    assert_eq!(both.json()["field"], "one_time_password", "{}", both.text());
    let before = admin.dump().await;
    let taken = admin.post("/operators", &create).await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.text());
    assert_eq!(admin.dump().await, before);
    let cashier = json!({"login": "cassa.due", "name": "Luca Verdi", "role": "cashier", "password": PASSWORD});
    refused(&admin, admin.post("/operators", &cashier).await, "cash_point", &before).await;
    let short = json!({"login": "altro.clerk", "name": "Luca Verdi", "role": "clerk", "password": "short"});
    refused(&admin, admin.post("/operators", &short).await, "password", &before).await;
    let bad_login = json!({"login": "1x", "name": "Luca Verdi", "role": "clerk", "password": PASSWORD});
    refused(&admin, admin.post("/operators", &bad_login).await, "login", &before).await;

    // The new clerk works, until disabled: their open session ends at once
    // on the node that disabled them, and within a second where another
    // process holds the session (accounts found enabled are taken as such
    // for a second).
    let mut clerk = admin.another_browser();
    clerk.log_in("nuovo.clerk").await;
    assert_eq!(clerk.get("/flagged").await.status, StatusCode::OK);
    let mut elsewhere = realm.hub();
    elsewhere.log_in("nuovo.clerk").await;
    assert_eq!(elsewhere.get("/flagged").await.status, StatusCode::OK);
    refused(&admin, admin.patch("/operators/nuovo.clerk", &json!({})).await, "password", &before).await;
    refused(&admin, admin.patch("/operators/nuovo.clerk", &json!({"password": "short"})).await, "password", &before)
        .await;
    refused(&admin, admin.patch("/operators/x", &json!({"disabled": true})).await, "login", &before).await;
    let unknown = admin.patch("/operators/nessuno", &json!({"disabled": true})).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text());
    assert_eq!(admin.dump().await, before);
    let answer = admin.patch("/operators/nuovo.clerk", &json!({"disabled": true})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["disabled"], true);
    assert_eq!(clerk.get("/flagged").await.status, StatusCode::UNAUTHORIZED);
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert_eq!(elsewhere.get("/flagged").await.status, StatusCode::UNAUTHORIZED);
    let again = realm.hub().post("/session", &json!({"login": "nuovo.clerk", "password": PASSWORD})).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "{}", again.text());
    // Enabled again with a new password.
    let answer =
        admin.patch("/operators/nuovo.clerk", &json!({"disabled": false, "password": "a new password of mine"})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let old = realm.hub().post("/session", &json!({"login": "nuovo.clerk", "password": PASSWORD})).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    let new =
        realm.hub().post("/session", &json!({"login": "nuovo.clerk", "password": "a new password of mine"})).await;
    assert_eq!(new.status, StatusCode::OK, "{}", new.text());
}

/// A one-time password (an account created without one) lets its operator
/// do nothing at the hub but see who they are, log out and choose their
/// own password; choosing it ends their other sessions. A cash point, which
/// cannot write accounts, sends them to the hub.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_time_password_allows_nothing_but_choosing_ones_own() {
    let realm = Realm::new();
    let mut admin = realm.hub();
    admin.log_in("admin.a").await;
    let created = admin.post("/operators", &json!({"login": "ufficio.tre", "name": "Ada Neri", "role": "clerk"})).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text());
    let one_time = created.json()["one_time_password"].as_str().unwrap().to_string();

    let mut clerk = admin.another_browser();
    let me = clerk.log_in_with("ufficio.tre", &one_time).await;
    assert_eq!(me["must_change_password"], true, "{me}");
    let mut elsewhere = admin.another_browser();
    elsewhere.log_in_with("ufficio.tre", &one_time).await;
    for path in ["/consumers?q=rossi", "/status", "/events", "/families"] {
        let refused = clerk.get(path).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}: {}", refused.text());
        assert!(refused.json()["message"].as_str().unwrap().contains("one-time password"), "{}", refused.text());
    }
    assert_eq!(clerk.get("/session").await.status, StatusCode::OK);

    let before = admin.dump().await;
    let short = json!({"current_password": one_time, "new_password": "corta"});
    refused(&admin, clerk.post("/session/password", &short).await, "new_password", &before).await;
    let wrong = json!({"current_password": "non la mia password", "new_password": "una parola tutta mia"});
    refused(&admin, clerk.post("/session/password", &wrong).await, "current_password", &before).await;
    let unchanged = json!({"current_password": one_time, "new_password": one_time});
    refused(&admin, clerk.post("/session/password", &unchanged).await, "new_password", &before).await;

    let chosen = json!({"current_password": one_time, "new_password": "una parola tutta mia"});
    let changed = clerk.post("/session/password", &chosen).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());
    assert_eq!(changed.json()["must_change_password"], false, "{}", changed.text());
    assert_eq!(clerk.get("/consumers?q=rossi").await.status, StatusCode::OK, "the same session goes on");
    assert_eq!(elsewhere.get("/session").await.status, StatusCode::UNAUTHORIZED, "the other session ended");
    let listed = admin.get("/operators").await.json();
    let listed = listed["operators"].as_array().unwrap().iter().find(|o| o["login"] == "ufficio.tre").unwrap().clone();
    assert_eq!(listed["must_change_password"], false, "{listed}");
    let mut again = admin.another_browser();
    let me = again.log_in_with("ufficio.tre", "una parola tutta mia").await;
    assert_eq!(me["must_change_password"], false, "{me}");

    // A cash point keeps no accounts of its own to change.
    let mut cashier = realm.cash_point();
    cashier.log_in("cashier.k").await;
    let before = cashier.dump().await;
    let change = json!({"current_password": PASSWORD, "new_password": "una parola tutta mia"});
    let answer = cashier.post("/session/password", &change).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.text());
    assert!(answer.json()["message"].as_str().unwrap().contains("hub"), "{}", answer.text());
    assert_eq!(cashier.dump().await, before);
}
