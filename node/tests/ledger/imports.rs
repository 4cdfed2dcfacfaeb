//! An import of families that fills the disk.

use std::sync::Arc;

use saldo_node::node::Node;
use saldo_node::store::Store;
use saldo_node::{generate, import};

use super::{StepClock, key, label};

/// An import that fills the disk says the disk is full and exactly what it
/// wrote before; what it wrote is whole families, reads go on working, and
/// importing the file again once there is space writes the rest.
#[test]
fn an_import_that_fills_the_disk_says_so_and_what_it_wrote() {
    let new_hub = || {
        Node::create_hub(
            Store::open_in_memory().unwrap(),
            key(63, 0),
            key(63, 1),
            &label("Comune di Prova"),
            Arc::new(StepClock::default()),
        )
        .unwrap()
    };
    let mut csv = Vec::new();
    generate::write_csv(&mut csv, 2_400, 63).unwrap();
    // The same import on the same keys and clock writes the same pages: measure it once.
    let (pages_before, pages_after, families) = {
        let mut hub = new_hub();
        let before = hub.store().page_count().unwrap();
        let report = import::import_csv(&mut hub, csv.as_slice(), &|_, _| {}).unwrap();
        (before, hub.store().page_count().unwrap(), report.families)
    };
    assert!(families > 1_200, "{families} families: too few for two transactions");
    let first_share = import::FAMILIES_PER_TRANSACTION as u64 * 100 / families;
    // Room for the first transaction and not for the whole import.
    let cap = pages_before + (pages_after - pages_before) * (first_share + (100 - first_share) / 2) / 100;
    let mut hub = new_hub();
    hub.store().limit_pages(cap).unwrap();
    let error = import::import_csv(&mut hub, csv.as_slice(), &|_, _| {}).unwrap_err();
    let (written, rows) = match &error {
        import::ImportError::Stopped { families, rows, .. } => (*families, *rows),
        other => panic!("expected an import stopped after its first transaction: {other}"),
    };
    // Transactions end at FAMILIES_PER_TRANSACTION or sooner (a time bound,
    // a waiting writer): whole ones were written, not all.
    assert!(written > 0 && written < families, "{written} of {families} families written");
    let error = anyhow::Error::from(error);
    assert!(error.chain().any(saldo_node::node::is_disk_full), "{error:#}");
    let message = saldo_node::cli::render_error(&error, Some(std::path::Path::new("/srv/saldo")));
    assert!(
        message.contains(&format!("the import stopped after writing {written} families ({rows} rows)")),
        "{message}"
    );
    assert!(message.ends_with("\nthe disk holding /srv/saldo is full: free space and try again"), "{message}");
    assert!(!message.contains("full: database or disk is full: database or disk is full"), "{message}");

    // Reads need no space.
    let (consumers, in_families) = hub.directory_counts().unwrap();
    assert_eq!((consumers, in_families), (rows, written));
    let found = hub.search("ro", 5).unwrap();
    assert!(!found.is_empty());
    hub.balance(&saldo_sync::Pan::parse(&found[0].pan).unwrap()).unwrap();
    hub.unconfirmed().unwrap();
    hub.flagged(10).unwrap();
    assert!(hub.verify_log().unwrap().ok());

    // With space again, the same file writes the rest.
    hub.store().limit_pages(u32::MAX as u64).unwrap();
    let report = import::import_csv(&mut hub, csv.as_slice(), &|_, _| {}).unwrap();
    assert_eq!(report.families, families);
    assert_eq!(hub.directory_counts().unwrap().1, families);
}
