//! Operators' accounts in the ledger: a cashier's account reaches their
//! cash point only, works there offline and stops once disabled and
//! synced; only the hub records accounts; bad input is refused.

use std::sync::Arc;

use saldo_node::node::Node;
use saldo_node::state::IngestError;
use saldo_node::store::Store;
use saldo_sync::{AuthorId, Body, DeviceKey, Role, SignedOp};

use super::{Device, StepClock, assert_refused, catch_up, key, label, limits, setup};

fn login(text: &str) -> saldo_sync::OperatorLogin {
    saldo_sync::OperatorLogin::parse(text).unwrap()
}

fn person(text: &str) -> saldo_sync::PersonName {
    saldo_sync::PersonName::parse(text).unwrap()
}

fn password(text: &str) -> saldo_node::node::Password {
    saldo_node::node::Password::parse(text).unwrap()
}

/// A cash point's node (its own key) holding what the hub's log and the
/// contacts key's log would bring it: it refuses what only the hub keeps.
fn cash_point_replica(hub: &mut Node, key: &DeviceKey) -> Node {
    let mut node = Node::replica(
        Store::open_in_memory().unwrap(),
        hub.realm(),
        Some(DeviceKey::from_secret_bytes(&key.secret_bytes())),
        Arc::new(StepClock::default()),
    )
    .unwrap();
    catch_up(&mut node, hub);
    node
}

fn refused_login(node: &mut Node, who: &str, pass: &str) -> saldo_node::node::AuthError {
    node.authenticate(who, pass).map(|row| row.account.login).expect_err("the login is refused")
}

/// What a cashier relies on at the counter: their account, made at the hub,
/// reaches their cash point with the hub's log, and logs them in there
/// with the hub out of reach; other cash points' cashiers and the hub's
/// administrators and clerks are not there at all; once disabled at the
/// hub, the account stops working at the cash point when it syncs.
#[test]
fn a_cashier_logs_in_at_their_cash_point_only_and_a_disabled_account_stops_working_there_once_synced() {
    use saldo_node::node::AuthError;
    use saldo_sync::OperatorRole;
    let mut s = setup();
    let other = key(7, 10);
    s.hub.enrol(other.author(), Role::CashPoint, &label("Edicola"), limits("200")).unwrap();
    let here = Some(s.cash_point.author());
    let add = |hub: &mut Node, who: &str, role, cash_point| {
        hub.add_operator(&login(who), &person(who), role, cash_point, &password(&format!("{who} password"))).unwrap()
    };
    let admin = add(&mut s.hub, "admin", OperatorRole::Administrator, None);
    add(&mut s.hub, "anna", OperatorRole::Clerk, None);
    let mario = add(&mut s.hub, "mario", OperatorRole::Cashier, here);
    add(&mut s.hub, "luigi", OperatorRole::Cashier, Some(other.author()));
    assert_ne!(admin.author, s.hub.realm().hub(), "administrators' accounts are not in the hub's log");
    assert_eq!(mario.author, s.hub.realm().hub(), "cashiers' accounts are in the hub's log");
    assert!(!mario.account.must_change_password, "a password the operator chose is theirs");

    let key_here = DeviceKey::from_secret_bytes(&key(7, 9).secret_bytes());
    let mut device = cash_point_replica(&mut s.hub, &key_here);
    let held: Vec<String> = device.operators().unwrap().iter().map(|r| r.account.login.to_string()).collect();
    assert_eq!(held, ["mario"], "a cash point holds its own cashiers' accounts and nobody else's");
    let kept_operator_ops: Vec<saldo_sync::OperatorAccount> = device
        .all_operations()
        .unwrap()
        .iter()
        .filter_map(|bytes| match SignedOp::decode(bytes).unwrap().op.body {
            Body::Operator(account) => Some(account),
            _ => None,
        })
        .collect();
    assert!(
        kept_operator_ops.iter().all(|a| a.role == OperatorRole::Cashier),
        "no administrator's or clerk's account (not even its hash) is stored at a cash point"
    );

    // The hub is out of reach from here on: the device has what it has.
    let row = device.authenticate("mario", "mario password").unwrap();
    assert_eq!(row.account.name.as_str(), "mario");
    assert!(matches!(refused_login(&mut device, "mario", "wrong password"), AuthError::WrongCredentials));
    assert!(matches!(refused_login(&mut device, "nobody", "mario password"), AuthError::WrongCredentials));
    assert!(matches!(refused_login(&mut device, "NOT A LOGIN", "x"), AuthError::WrongCredentials));
    assert!(matches!(refused_login(&mut device, "luigi", "luigi password"), AuthError::WrongCredentials));
    assert!(matches!(refused_login(&mut device, "admin", "admin password"), AuthError::WrongCredentials));
    assert_eq!(AuthError::WrongCredentials.to_string(), "wrong login or password");

    // At the hub: its administrators and clerks; cashiers log in at their cash point.
    assert!(s.hub.authenticate("admin", "admin password").is_ok());
    assert!(s.hub.authenticate("anna", "anna password").is_ok());
    assert!(matches!(refused_login(&mut s.hub, "mario", "mario password"), AuthError::CashierAtHub(_)));
    assert!(matches!(refused_login(&mut s.hub, "mario", "wrong password"), AuthError::WrongCredentials));

    s.hub.set_operator_disabled(&login("mario"), true).unwrap();
    assert!(device.authenticate("mario", "mario password").is_ok(), "not synced yet: the cash point cannot know");
    catch_up(&mut device, &mut s.hub);
    let refusal = refused_login(&mut device, "mario", "mario password");
    assert!(matches!(refusal, AuthError::Disabled(_)), "{refusal}");
    assert!(refusal.to_string().contains("disabled"), "{refusal}");
    assert!(matches!(refused_login(&mut device, "mario", "wrong password"), AuthError::WrongCredentials));

    // Enabled again with a new password: the old one stops working.
    s.hub.set_operator_disabled(&login("mario"), false).unwrap();
    let one_time = saldo_node::node::Password::generate();
    assert!(s.hub.set_operator_password(&login("mario"), &one_time).unwrap().account.must_change_password);
    catch_up(&mut device, &mut s.hub);
    assert!(matches!(refused_login(&mut device, "mario", "mario password"), AuthError::WrongCredentials));
    let row = device.authenticate("mario", one_time.as_str()).unwrap();
    assert!(row.account.must_change_password, "a one-time password is to be replaced at the first login");
}

/// Only the hub writes operators' accounts: a cash point that signs one
/// (to let someone log in at it) is refused, saying why, and nothing changes.
#[test]
fn a_cash_point_cannot_record_an_operator_account() {
    let mut s = setup();
    let realm = s.hub.realm();
    let account = saldo_sync::OperatorAccount {
        login: login("intruder"),
        name: person("Intruder"),
        role: saldo_sync::OperatorRole::Cashier,
        cash_point: Some(s.cash_point.author()),
        password_hash: label("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2g"),
        must_change_password: false,
        disabled: false,
    };
    let op = s.cash_point.sign(&realm, Body::Operator(account.clone()));
    assert_refused(&mut s, &[op], |e| {
        matches!(e, IngestError::AccountNotAllowed { .. }) && e.to_string().contains("only the hub records")
    });
    let mut admin = account;
    admin.role = saldo_sync::OperatorRole::Administrator;
    admin.cash_point = None;
    let mut other = Device::new(key(7, 9));
    let op = other.sign(&realm, Body::Operator(admin));
    assert_refused(&mut s, &[op], |e| matches!(e, IngestError::AccountNotAllowed { .. }));
    assert!(s.hub.operators().unwrap().is_empty());
}

/// Bad input for an account is refused with what to fix, and writes nothing.
#[test]
fn an_account_with_a_short_password_a_taken_login_or_the_wrong_place_is_refused_and_changes_nothing() {
    use saldo_node::node::{OperatorError, Password};
    use saldo_sync::OperatorRole;
    let mut s = setup();
    let cash_point = Some(s.cash_point.author());
    s.hub
        .add_operator(&login("mario"), &person("Mario"), OperatorRole::Cashier, cash_point, &password("long enough"))
        .unwrap();
    let before = s.dump();
    let short = Password::parse("123456789").unwrap_err();
    assert!(matches!(short, OperatorError::PasswordTooShort { length: 9 }), "{short}");
    assert!(short.to_string().contains("at least 10"), "{short}");
    assert!(Password::parse(&"x".repeat(129)).is_err());
    assert!(Password::parse("0123456789").is_ok());
    let hub = Some(s.hub.realm().hub());
    let mut add = |who: &str, role, cash_point| {
        s.hub.add_operator(&login(who), &person("Someone"), role, cash_point, &password("long enough")).unwrap_err()
    };
    assert!(matches!(add("mario", OperatorRole::Clerk, None), OperatorError::LoginTaken(_)));
    assert!(matches!(add("anna", OperatorRole::Cashier, None), OperatorError::CashPointNeeded));
    assert!(matches!(add("anna", OperatorRole::Clerk, cash_point), OperatorError::CashPointOfHubRole("clerk")));
    assert!(matches!(add("anna", OperatorRole::Cashier, hub), OperatorError::NotACashPoint { .. }));
    assert!(matches!(add("anna", OperatorRole::Cashier, Some(AuthorId([3; 32]))), OperatorError::UnknownCashPoint(_)));
    s.hub.revoke(s.cash_point.author(), &label("closed")).unwrap();
    let before_revoked = s.dump();
    let revoked = s
        .hub
        .add_operator(&login("anna"), &person("Anna"), OperatorRole::Cashier, cash_point, &password("long enough"))
        .unwrap_err();
    assert!(matches!(revoked, OperatorError::RevokedCashPoint(_)), "{revoked}");
    assert_eq!(s.dump(), before_revoked, "refused accounts wrote nothing");
    assert_ne!(before, before_revoked);
    assert!(matches!(
        s.hub.set_operator_password(&login("nobody"), &password("long enough")).unwrap_err(),
        OperatorError::UnknownLogin(_)
    ));
    // A device creates no accounts.
    let mut device = cash_point_replica(&mut s.hub, &key(7, 9));
    let refused = device
        .add_operator(&login("anna"), &person("Anna"), OperatorRole::Clerk, None, &password("long enough"))
        .unwrap_err();
    assert!(refused.to_string().contains("only the hub"), "{refused}");
}
