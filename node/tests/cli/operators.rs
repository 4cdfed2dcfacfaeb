//! `saldo operator` and the first administrator of `saldo realm init`:
//! accounts added, listed, given passwords (from standard input only),
//! disabled and enabled; a cashier for a cash point named as enrolled.

use super::common::{ok, saldo, saldo_with_stdin};
use super::{Realm, check_refused, dump, enrol_cash_point};

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
