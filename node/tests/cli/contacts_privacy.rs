//! What a parent relies on: contact data stays at the hub. Frontier files
//! are signed and name their realm, a replayed one yields only what its
//! holder may receive, and a cash point refuses contact data whoever
//! brings it.

use std::path::Path;

use saldo_node::store::Store;

use super::common::ok;
use super::{Realm, check_refused, dump, enrol_cash_point, realm, top_up_setup};

/// A cash point created offline beside `hub` (enrolled by the hub, joined
/// with its key), holding the hub's log as a bundle brought it.
fn offline_cash_point(hub: &Realm, name: &str) -> (Realm, saldo_sync::DeviceKey) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cash-point");
    let key = enrol_cash_point(hub, name);
    let realm_id = saldo_node::node::Node::open(&hub.dir).unwrap().realm();
    let same_key = saldo_sync::DeviceKey::from_secret_bytes(&key.secret_bytes());
    saldo_node::node::Node::join(&dir, realm_id, same_key).unwrap();
    let cp = Realm { _tmp: tmp, dir };
    let (frontier, bundle) = (cp.file("frontier"), cp.file("from-hub.bundle"));
    ok(&["bundle", "frontier", "--data", cp.data(), "--out", &frontier]);
    ok(&["bundle", "export", "--data", hub.data(), "--out", &bundle, "--for", &frontier]);
    ok(&["bundle", "import", "--data", cp.data(), &bundle]);
    (cp, key)
}

/// The hub's contact-data key (its second key, whose log never leaves the hub).
fn contacts_author(hub: &Realm) -> saldo_sync::AuthorId {
    let mut store = Store::open(&hub.dir.join("saldo.db")).unwrap();
    let authors = store.read().unwrap().authors().unwrap();
    authors.into_iter().find(|a| a.role == saldo_sync::Role::HubContacts).unwrap().author
}

/// The authors of the operations in a bundle file, with how many of each.
fn bundle_authors(hub: &Realm, path: &str) -> std::collections::BTreeMap<saldo_sync::AuthorId, usize> {
    let realm_id = saldo_node::node::Node::open(&hub.dir).unwrap().realm();
    let body = saldo_sync::bundle::BundleBody::open(&std::fs::read(path).unwrap(), &realm_id).unwrap();
    let mut authors = std::collections::BTreeMap::new();
    for op in &body.ops {
        *authors.entry(saldo_sync::op::peek(op).unwrap().0).or_insert(0) += 1;
    }
    authors
}

fn contacts_rows(dir: &Path) -> usize {
    dump(dir).iter().filter(|line| line.starts_with("contacts:")).count()
}

/// What a parent relies on: their e-mail and phone stay at the town hall. A
/// cash point's frontier file whose holder was overwritten with the realm id
/// (the hub's key, which may receive everything) is refused; the hub exports
/// nothing and its contact data stays there.
#[test]
fn a_frontier_file_edited_to_name_the_hub_as_holder_is_refused() {
    let (hub, _, _) = top_up_setup();
    assert!(contacts_rows(&hub.dir) > 0, "the generated families have e-mails and phones");
    let (cp, key) = offline_cash_point(&hub, "Edicola Manomessa");
    let realm_id = saldo_node::node::Node::open(&hub.dir).unwrap().realm();
    ok(&["bundle", "frontier", "--data", cp.data(), "--out", &cp.file("cp.frontier")]);
    let mut bytes = std::fs::read(cp.file("cp.frontier")).unwrap();
    let at = bytes.windows(32).position(|w| w == key.author().0).expect("the holder is in the file");
    bytes[at..at + 32].copy_from_slice(&realm_id.0);
    std::fs::write(cp.file("edited.frontier"), &bytes).unwrap();

    let out = cp.file("leak.bundle");
    let args = ["bundle", "export", "--data", hub.data(), "--out", &out, "--for", &cp.file("edited.frontier")];
    check_refused(&hub, &args, "signature does not match its contents: it was altered or damaged");
    check_refused(&hub, &args, "write a new one with `saldo bundle frontier`");
    assert!(!Path::new(&out).exists(), "a bundle was written");
}

/// A frontier file of the old format carries no signature, so anyone could
/// have written its holder: the hub refuses it and says how to make a new one.
#[test]
fn an_unsigned_frontier_file_of_the_old_format_is_refused_with_what_to_do() {
    let (hub, _, _) = top_up_setup();
    let (cp, key) = offline_cash_point(&hub, "Edicola Vecchia");
    let mut node = saldo_node::node::Node::open(&cp.dir).unwrap();
    let mut old = b"SALDO-FRONTIER-1\n".to_vec();
    old.extend(postcard::to_stdvec(&(node.realm(), key.author(), node.frontier().unwrap())).unwrap());
    std::fs::write(cp.file("old.frontier"), &old).unwrap();

    let out = cp.file("old.bundle");
    let args = ["bundle", "export", "--data", hub.data(), "--out", &out, "--for", &cp.file("old.frontier")];
    check_refused(&hub, &args, "old, unsigned format");
    check_refused(&hub, &args, "write a new one with `saldo bundle frontier` on the node that will import the bundle");
    assert!(!Path::new(&out).exists(), "a bundle was written");
}

/// A frontier file from another realm's node is refused, whether it says so
/// or its realm was rewritten to this one's (then its signature fails).
#[test]
fn another_realms_frontier_file_is_refused_even_with_its_realm_rewritten() {
    let (hub, _, _) = top_up_setup();
    let other = realm(5);
    let realm_id = saldo_node::node::Node::open(&hub.dir).unwrap().realm();
    let other_id = saldo_node::node::Node::open(&other.dir).unwrap().realm();
    ok(&["bundle", "frontier", "--data", other.data(), "--out", &hub.file("other.frontier")]);
    let out = hub.file("other.bundle");
    let args = ["bundle", "export", "--data", hub.data(), "--out", &out, "--for", &hub.file("other.frontier")];
    check_refused(&hub, &args, "the frontier file belongs to another realm");
    check_refused(&hub, &args, "write one with `saldo bundle frontier` on a node of this realm");

    let mut bytes = std::fs::read(hub.file("other.frontier")).unwrap();
    let at = bytes.windows(32).position(|w| w == other_id.0).expect("the realm is in the file");
    bytes[at..at + 32].copy_from_slice(&realm_id.0);
    std::fs::write(hub.file("rewritten.frontier"), &bytes).unwrap();
    let args = ["bundle", "export", "--data", hub.data(), "--out", &out, "--for", &hub.file("rewritten.frontier")];
    check_refused(&hub, &args, "signature does not match its contents");
    assert!(!Path::new(&out).exists(), "a bundle was written");
}

/// A frontier file is not a secret: copied and used by someone else, it
/// yields only what its holder may receive anyway (the hub's log and the
/// holder's own), never contact data or other devices' operations; the
/// hub's operator sees whom the bundle is for and when the file was written.
#[test]
fn a_replayed_frontier_file_yields_only_what_its_holder_may_receive() {
    let (hub, pan, _) = top_up_setup();
    let (a, a_key) = offline_cash_point(&hub, "Farmacia A");
    let (c, c_key) = offline_cash_point(&hub, "Edicola C");
    // A and C record a top-up each, which reach the hub by bundle.
    for cp in [&a, &c] {
        ok(&["topup", "--data", cp.data(), "--pan", &pan, "--amount", "5.00", "--method", "cash"]);
        ok(&["bundle", "frontier", "--data", hub.data(), "--out", &hub.file("hub.frontier")]);
        let bundle = cp.file("to-hub.bundle");
        ok(&["bundle", "export", "--data", cp.data(), "--out", &bundle, "--for", &hub.file("hub.frontier")]);
        ok(&["bundle", "import", "--data", hub.data(), &bundle]);
    }
    // Someone else takes A's frontier file (an old one, from before its top-up).
    let replayed = a.file("frontier");
    let out = hub.file("replayed.bundle");
    let exported: serde_json::Value = serde_json::from_str(&ok(&[
        "bundle",
        "export",
        "--data",
        hub.data(),
        "--out",
        &out,
        "--for",
        &replayed,
        "--json",
    ]))
    .unwrap();
    assert_eq!(exported["recipient"]["device"], a_key.author().to_hex(), "{exported}");
    assert_eq!(exported["recipient"]["name"], "Farmacia A", "{exported}");
    assert!(exported["recipient"]["frontier_written_ms"].as_u64().unwrap() > 1_700_000_000_000, "{exported}");

    let realm_id = saldo_node::node::Node::open(&hub.dir).unwrap().realm();
    let authors = bundle_authors(&hub, &out);
    assert_eq!(authors.get(&a_key.author()), Some(&1), "A's own top-up: {authors:?}");
    assert!(authors.contains_key(&realm_id.hub()), "{authors:?}");
    assert_eq!(authors.len(), 2, "only the hub's log and A's: {authors:?}");
    assert!(!authors.contains_key(&contacts_author(&hub)) && !authors.contains_key(&c_key.author()));

    // Imported by a third cash point, it brings no contact data.
    let (b, _) = offline_cash_point(&hub, "Bar B");
    ok(&["bundle", "import", "--data", b.data(), &out]);
    assert_eq!(contacts_rows(&b.dir), 0);
}

/// Contact data never enters a cash point, whoever brings it: the hub's
/// backup (a bundle of everything, for the hub itself) imported at a cash
/// point stores the rest and refuses each operation of contact data, saying
/// why; the cash point's contacts table stays empty.
#[test]
fn a_cash_point_refuses_the_contact_data_of_a_hub_backup_imported_there() {
    let (hub, _, _) = top_up_setup();
    let (cp, _) = offline_cash_point(&hub, "Tabaccheria");
    let backup = hub.file("backup.bundle");
    let said = ok(&["bundle", "export", "--data", hub.data(), "--out", &backup]);
    assert!(said.contains("contact data included: a backup for the hub only"), "{said}");
    let contacts_ops = bundle_authors(&hub, &backup)[&contacts_author(&hub)];
    assert!(contacts_ops > 10, "the backup carries the contact data");

    let report: serde_json::Value =
        serde_json::from_str(&ok(&["bundle", "import", "--data", cp.data(), &backup, "--json"])).unwrap();
    let refused = report["refused"].as_array().unwrap();
    assert_eq!(refused.len(), contacts_ops, "{report}");
    for reason in refused {
        // The contacts key also writes the accounts of the hub's administrators and clerks.
        let reason = reason.as_str().unwrap();
        assert!(reason.contains("contact data") || reason.contains("hub's operators (role administrator"), "{reason}");
        assert!(reason.contains("which only the hub keeps"), "{reason}");
    }
    assert_eq!(contacts_rows(&cp.dir), 0, "contact data was stored at the cash point");
    let mut store = Store::open(&cp.dir.join("saldo.db")).unwrap();
    let held = store.read().unwrap().author(&contacts_author(&hub)).unwrap().unwrap().head_seq;
    assert_eq!(held, saldo_sync::Seq(0), "operations of the contacts key were stored");
    ok(&["log", "verify", "--data", cp.data()]);
}
