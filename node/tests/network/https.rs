//! The HTTP API over HTTPS with a configured certificate, and plain HTTP
//! kept on loopback.

use std::sync::Arc;

use super::common::saldo;

use super::{http_of, json, spawn};

/// HTTPS with a configured certificate: the API answers over TLS (a client
/// that trusts the certificate logs in, its cookie marked Secure, with the
/// one-time password `realm init` printed, and chooses its own); plain
/// HTTP beyond loopback is refused as the node starts, saying what to do.
#[test]
fn the_api_is_served_over_https_with_a_configured_certificate_and_plain_http_stays_on_loopback() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let dir = tmp.join("hub");
    let data = dir.to_str().unwrap();
    let realm = json(&["realm", "init", "--data", data, "--name", "Comune di Prova", "--json"]);
    let password = realm["administrator"]["one_time_password"].as_str().unwrap().to_string();
    let refused = saldo(&["hub", "--data", data, "--p2p", "127.0.0.1:0", "--http", "0.0.0.0:0"]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("--tls-cert") && message.contains("127.0.0.1"), "{message}");

    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (tmp.join("cert.pem"), tmp.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let hub = spawn(
        &[
            "hub",
            "--data",
            data,
            "--p2p",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &tmp.join("hub.log"),
    );
    let url = http_of(&dir, &hub);
    assert!(url.starts_with("https://"), "{url}");
    let port = url.rsplit(':').next().unwrap();
    let roots = vec![ureq::tls::Certificate::from_der(certified.cert.der()).to_owned()];
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots))).build())
        .build()
        .into();
    let base = format!("https://localhost:{port}");
    let mut health = agent.get(format!("{base}/healthz")).call().unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(health.body_mut().read_to_string().unwrap(), "ok\n");
    let answer = agent
        .post(format!("{base}/api/v1/session"))
        .send_json(serde_json::json!({"login": "admin", "password": password}))
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let cookie = answer.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(cookie.contains("Secure") && cookie.contains("HttpOnly"), "{cookie}");
    // The first administrator's password was printed once: they choose their own before anything else.
    let me: serde_json::Value = answer.into_body().read_json().unwrap();
    assert_eq!(me["must_change_password"], true, "{me}");
    let session = cookie.split(';').next().unwrap();
    let csrf = me["csrf_token"].as_str().unwrap();
    let status = agent.get(format!("{base}/api/v1/status")).header("cookie", session).call().unwrap();
    assert_eq!(status.status().as_u16(), 403);
    let mut changed = agent
        .post(format!("{base}/api/v1/session/password"))
        .header("cookie", session)
        .header("x-csrf-token", csrf)
        .send_json(serde_json::json!({"current_password": password, "new_password": "una parola tutta mia"}))
        .unwrap();
    assert_eq!(changed.status().as_u16(), 200, "{}", changed.body_mut().read_to_string().unwrap());
    let status = agent.get(format!("{base}/api/v1/status")).header("cookie", session).call().unwrap();
    assert_eq!(status.status().as_u16(), 200);
    // Plain HTTP to the TLS port gets no answer from the API.
    assert!(agent.get(format!("http://127.0.0.1:{port}/healthz")).call().is_err());
}
