//! Tests of the store: its caches against the database, its migrations.

use super::*;

use super::directory::service_id;
use crate::directory::{ConsumerRecord, FamilyRecord, Person};
use saldo_sync::{CodiceFiscale, FamilyId, OpKind, Pan, PersonName, ReceiptNo, Verdict};

const CONSUMER: ConsumerId = ConsumerId([7; 16]);

/// A family of one child, [`CONSUMER`], enrolled in `services`.
fn family(services: &[&ServiceId]) -> FamilyRecord {
    let person = |code: &str, surname: &str| Person {
        fiscal_code: CodiceFiscale::parse(code).expect("codice fiscale"),
        surname: PersonName::parse(surname).expect("surname"),
        name: PersonName::parse("Anna").expect("name"),
    };
    FamilyRecord {
        id: FamilyId([3; 16]),
        payer: person("RSSMRA85T10A562S", "Rossi"),
        consumers: [(
            CONSUMER,
            ConsumerRecord {
                id: CONSUMER,
                person: person("RSSNNA15A41H501X", "Rossi"),
                pan: Pan::parse("4111 1111 1111 1111").expect("pan"),
                school: None,
                class: None,
                services: services.iter().map(|s| (*s).clone()).collect(),
            },
        )]
        .into(),
    }
}

/// A store over a connection the test migrated itself.
fn migrated(conn: Connection) -> Store {
    Store {
        conn,
        remembered: Remembered::default(),
        read_only_on_full_disk: false,
        writers: Writers::alone(),
        moved: RefCell::default(),
        receipts_due: std::cell::Cell::new(false),
    }
}

fn services() -> (ServiceId, ServiceId) {
    (service_id("mensa").expect("mensa"), service_id("scuolabus").expect("bus"))
}

/// What a transaction remembers of who is enrolled where follows a
/// directory change made in the same transaction (a batch that enrols a
/// child and then tops up the new wallet).
#[test]
fn enrolment_read_in_a_transaction_follows_a_directory_change_in_it() {
    let mut store = Store::open_in_memory().expect("store");
    let tx = store.write().expect("write");
    let (mensa, bus) = services();
    tx.put_family(&family(&[&mensa])).expect("family");
    assert!(tx.is_enrolled(&CONSUMER, &mensa).expect("read"));
    assert!(!tx.is_enrolled(&CONSUMER, &bus).expect("read"));
    tx.put_family(&family(&[&bus])).expect("family changed");
    assert!(!tx.is_enrolled(&CONSUMER, &mensa).expect("read"), "no longer enrolled in the canteen");
    assert!(tx.is_enrolled(&CONSUMER, &bus).expect("read"), "enrolled in the school bus now");
}

/// A node remembers enrolments from one transaction to the next; a
/// command that changes the directory on the same data directory (another
/// connection) makes it read them again.
#[test]
fn enrolment_remembered_across_transactions_follows_another_connection() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("saldo.db");
    let (mensa, bus) = services();
    let mut node = Store::open(&path).expect("store");
    let tx = node.write().expect("write");
    tx.put_family(&family(&[&mensa])).expect("family");
    assert!(tx.is_enrolled(&CONSUMER, &mensa).expect("read"));
    tx.commit_in_store_test().expect("commit");
    let tx = node.write().expect("write");
    assert!(tx.is_enrolled(&CONSUMER, &mensa).expect("read"));
    tx.commit_in_store_test().expect("commit");

    let mut command = Store::open(&path).expect("second connection");
    let tx = command.write().expect("write");
    tx.put_family(&family(&[&bus])).expect("family changed");
    tx.commit_in_store_test().expect("commit");

    let tx = node.write().expect("write");
    assert!(!tx.is_enrolled(&CONSUMER, &mensa).expect("read"), "the other connection's change is seen");
    assert!(tx.is_enrolled(&CONSUMER, &bus).expect("read"));
}

/// Wallets of more services than the maps give slots to are numbered
/// and found in the database, the same as the others.
#[test]
fn wallets_of_services_past_the_slots_are_found_in_the_database() {
    let mut store = Store::open_in_memory().expect("store");
    let (mensa, bus) = services();
    let tx = store.write().expect("write");
    tx.put_family(&family(&[&bus])).expect("family");
    let many: Vec<ServiceId> =
        (0..SERVICE_SLOTS_MAX + 10).map(|i| service_id(&format!("servizio-{i}")).expect("service")).collect();
    let numbers: Vec<i64> = many.iter().map(|s| tx.wallet_num(&CONSUMER, s).expect("number")).collect();
    for (service, number) in many.iter().zip(&numbers) {
        assert_eq!(tx.wallet_num(&CONSUMER, service).expect("number"), *number, "{service:?} keeps its number");
        assert!(!tx.is_enrolled(&CONSUMER, service).expect("read"));
    }
    let mut distinct = numbers.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), numbers.len(), "one number per wallet");
    assert!(tx.is_enrolled(&CONSUMER, &bus).expect("read"), "past the slots, read from the directory");
    assert!(!tx.is_enrolled(&CONSUMER, &mensa).expect("read"));
    tx.commit_in_store_test().expect("commit");
    let tx = store.write().expect("write");
    assert_eq!(tx.wallet_num(&CONSUMER, &many[SERVICE_SLOTS_MAX + 5]).expect("number"), numbers[SERVICE_SLOTS_MAX + 5]);
    assert!(tx.is_enrolled(&CONSUMER, &bus).expect("read"));
}

/// Past its size, what is remembered keeps half of its wallets, each
/// with its number and key.
#[test]
fn past_its_size_half_of_what_is_remembered_is_kept() {
    let (mensa, bus) = services();
    let mut remembered =
        Remembered { services: vec![mensa.clone(), bus.clone()], directory_version: 3, ..Remembered::default() };
    for i in 0..1_000u32 {
        let mut consumer = ConsumerId([0; 16]);
        consumer.0[..4].copy_from_slice(&i.to_le_bytes());
        let (slot, service) = if i.is_multiple_of(3) { (1, &bus) } else { (0, &mensa) };
        let num = i64::from(i) + 1;
        remembered.wallets.insert((consumer, slot), Known { num: Some(num), enrolled: Some((true, 3)) });
        remembered.wallet_keys.insert(num, (consumer, service.clone()));
    }
    remembered.fit(2_000);
    assert_eq!(remembered.wallets.len(), 1_000, "nothing forgotten within the size");
    remembered.fit(1_999);
    assert_eq!(remembered.wallets.len(), 500);
    assert_eq!(remembered.wallet_keys.len(), 500, "the numbers of the wallets forgotten go too");
    for ((consumer, slot), known) in &remembered.wallets {
        let num = known.num.expect("a number");
        assert_eq!(remembered.wallet_keys.get(&num), Some(&(*consumer, remembered.services[*slot as usize].clone())));
    }
}

/// A wallet number given in a transaction that rolls back is not
/// remembered: the number may go to another wallet next.
#[test]
fn a_wallet_number_of_a_rolled_back_transaction_is_forgotten() {
    let mut store = Store::open_in_memory().expect("store");
    let (mensa, bus) = services();
    let tx = store.write().expect("write");
    let given = tx.wallet_num(&CONSUMER, &mensa).expect("number");
    drop(tx);
    let tx = store.write().expect("write");
    assert_eq!(tx.wallet_num(&CONSUMER, &bus).expect("number"), given, "the number is free again");
    assert_ne!(tx.wallet_num(&CONSUMER, &mensa).expect("number"), given);
    tx.commit_in_store_test().expect("commit");
    let tx = store.write().expect("write");
    assert_eq!(tx.wallet_num(&CONSUMER, &bus).expect("number"), given, "a committed number is remembered");
}

/// The write-ahead log is copied into the database only when it holds at
/// least the pages asked for, and then all of it.
#[test]
fn the_log_is_checkpointed_from_the_size_asked_for() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&dir.path().join("saldo.db")).expect("store");
    let wal = |store: &Store| {
        store
            .conn
            .query_row("PRAGMA wal_checkpoint(NOOP)", [], |r| Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))
            .expect("wal")
    };
    for i in 0..64 {
        store.conn.execute("INSERT INTO meta VALUES (?1, zeroblob(8000))", [format!("k{i}")]).expect("insert");
    }
    let (log, copied) = wal(&store);
    assert!(log >= 128 && copied == 0, "64 commits of two pages and more are in the log: {log} {copied}");
    assert_eq!(store.checkpoint_wal(log + 1).expect("checkpoint"), 0, "fewer pages than asked for");
    assert_eq!(wal(&store), (log, 0), "nothing copied");
    assert_eq!(store.checkpoint_wal(log).expect("checkpoint"), log);
    assert_eq!(wal(&store), (log, log), "everything copied");
    assert_eq!(store.checkpoint_wal(0).expect("checkpoint"), 0, "nothing left to copy");
    drop(store);
    let store = Store::open(&dir.path().join("saldo.db")).expect("reopen");
    let rows: i64 =
        store.conn.query_row("SELECT COUNT(*) FROM meta WHERE key LIKE 'k%'", [], |r| r.get(0)).expect("count");
    assert_eq!(rows, 64);
}

/// A device's highest receipt is kept with the device: a lower one is
/// out of order, a higher one new; a rolled-back transaction leaves it
/// as it was; it survives a reopen; the totals of a range of receipts
/// count what lies in it.
#[test]
fn a_device_s_highest_receipt_is_kept_with_it() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("saldo.db");
    let author = AuthorId([5; 32]);
    let top_up = |receipt: u64, total_minor: i64| NewMoneyOp {
        receipt: Some(ReceiptNo(receipt)),
        reference: None,
        reverses: None,
        range: None,
        method: Some("cash"),
        total_minor,
        counts: true,
        counts_provisional: true,
        verdict: None,
        running_minor: None,
    };
    let insert = |tx: &Tx<'_>, seq: u64, receipt: u64, total_minor: i64| {
        tx.insert_op(
            &OpId([seq as u8; 32]),
            &author,
            Seq(seq),
            seq,
            OpKind::TopUp,
            true,
            &[1],
            Some(&top_up(receipt, total_minor)),
        )
        .expect("op");
    };
    let mut store = Store::open(&path).expect("store");
    let tx = store.write().expect("write");
    tx.insert_author(&author, Role::CashPoint, "Edicola", None).expect("author");
    assert_eq!(tx.last_receipt(&author).expect("last"), None);
    insert(&tx, 1, 3, 100);
    insert(&tx, 2, 5, 200);
    tx.commit_in_store_test().expect("commit");

    let tx = store.write().expect("write");
    assert_eq!(tx.last_receipt(&author).expect("last"), Some(ReceiptNo(5)));
    assert!(tx.receipt_not_above_last(&author, ReceiptNo(4)).expect("receipt"), "unused but out of order");
    assert!(tx.receipt_not_above_last(&author, ReceiptNo(5)).expect("receipt"), "used");
    assert!(!tx.receipt_not_above_last(&author, ReceiptNo(6)).expect("receipt"));
    insert(&tx, 3, 9, 400);
    assert_eq!(tx.last_receipt(&author).expect("last"), Some(ReceiptNo(9)));
    drop(tx);

    let tx = store.write().expect("write");
    assert_eq!(tx.last_receipt(&author).expect("last"), Some(ReceiptNo(5)), "the rolled-back receipt is gone");
    insert(&tx, 3, 4, 800);
    insert(&tx, 4, 7, 1600);
    assert_eq!(tx.last_receipt(&author).expect("last"), Some(ReceiptNo(7)), "a lower receipt leaves it");
    assert_eq!(tx.receipt_max_mismatches().expect("check"), vec![], "pending maxima are written first");
    tx.commit_in_store_test().expect("commit");
    drop(store);

    let store = Store::open(&path).expect("reopen");
    let tx = Tx::new(&store.conn, TransactionBehavior::Deferred).expect("read");
    assert_eq!(tx.last_receipt(&author).expect("last"), Some(ReceiptNo(7)));
    assert_eq!(tx.receipt_range_totals(&author, ReceiptNo(4), ReceiptNo(5)).expect("totals"), (2, 1000, 1000));
    assert_eq!(tx.receipt_range_totals(&author, ReceiptNo(1), ReceiptNo(9)).expect("totals"), (4, 2700, 2700));
    assert_eq!(tx.receipt_max_mismatches().expect("check"), vec![]);
    tx.tx.execute("UPDATE authors SET receipt_max = 6", []).expect("tamper");
    assert_eq!(tx.receipt_max_mismatches().expect("check"), vec![author], "a wrong highest receipt is found");
}

/// Lines are written in batches, at commit; whatever reads them or the
/// operations in the transaction that added them sees them.
#[test]
fn operations_and_lines_are_seen_by_the_transaction_that_adds_them() {
    let mut store = Store::open_in_memory().expect("store");
    let (mensa, _) = services();
    let tx = store.write().expect("write");
    let author = AuthorId([5; 32]);
    tx.insert_author(&author, Role::CashPoint, "Edicola", None).expect("author");
    let money = NewMoneyOp {
        receipt: Some(ReceiptNo(1)),
        reference: None,
        reverses: None,
        range: None,
        method: Some("cash"),
        total_minor: 1250,
        counts: true,
        counts_provisional: true,
        verdict: None,
        running_minor: None,
    };
    assert!(!tx.receipt_not_above_last(&author, ReceiptNo(1)).expect("receipt"));
    for (seq, id) in [(1, OpId([1; 32])), (2, OpId([2; 32]))] {
        let row =
            tx.insert_op(&id, &author, Seq(seq), seq, OpKind::TopUp, true, &[seq as u8], Some(&money)).expect("op");
        tx.insert_money_line(row, 0, &CONSUMER, &mensa, 1250).expect("line");
    }
    assert!(
        tx.receipt_not_above_last(&author, ReceiptNo(1)).expect("receipt"),
        "a receipt of this transaction is used"
    );
    assert_eq!(tx.op_row(&OpId([2; 32])).expect("row"), Some(2));
    assert_eq!(tx.counted_credits_and_debits().expect("sums"), (2500, 0));
    assert_eq!(tx.movements(&CONSUMER, &mensa, 10).expect("movements").len(), 2);
    tx.commit_in_store_test().expect("commit");
    let tx = store.read().expect("read");
    assert_eq!(tx.counted_credits_and_debits().expect("sums"), (2500, 0));
}

#[test]
fn the_migrations_are_valid() {
    migrations().validate().expect("valid migrations");
}

/// A database of schema v3 keeps its log, its money operations, its
/// wallets with their lines and the hub's running totals when it is
/// brought to v4 (authors by number), v5 (wallets by number) and v6
/// (operations on money as rows of the log).
#[test]
fn a_v3_database_keeps_its_data_when_authors_and_wallets_become_numbers() {
    let mut conn = Connection::open_in_memory().expect("memory");
    migrations().to_version(&mut conn, 3).expect("v3");
    // An index SCHEMA_V1 once had: databases created then still carry it.
    conn.execute_batch("CREATE INDEX money_ops_unconfirmed ON money_ops (author) WHERE verdict IS NULL")
        .expect("old index");
    let (a, b) = ([1u8; 32], [2u8; 32]);
    conn.execute_batch("PRAGMA foreign_keys = ON").expect("fk");
    for (author, name) in [(&b, "b"), (&a, "a")] {
        conn.execute(
            "INSERT INTO authors (author, role, name, head_seq) VALUES (?1, 'cash-point', ?2, 2)",
            params![&author[..], name],
        )
        .expect("author");
    }
    for (row, author, seq, running, decided) in
        [(1, &a, 1, 500, 7), (2, &b, 1, 300, 7), (3, &a, 2, 800, 7), (4, &b, 2, 900, 9)]
    {
        conn.execute(
            "INSERT INTO ops (row, id_key, id, author, seq, hlc, kind, in_chain, bytes)
             VALUES (?1, ?2, ?3, ?4, ?5, 0, 'top-up', 1, x'02')",
            params![row, id_key(&OpId([row as u8; 32])), &[row as u8; 32][..], &author[..], seq],
        )
        .expect("op");
        conn.execute(
            "INSERT INTO money_ops (op_row, author, kind, receipt, total_minor, hlc, counts, counts_provisional,
                                    verdict, verdict_seq, decided_seq, running_minor)
             VALUES (?1, ?2, 'top-up', ?3, 100, 0, 1, 1, 'accepted', ?4, ?4, ?5)",
            params![row, &author[..], seq, decided, running],
        )
        .expect("money op");
        conn.execute(
            "INSERT INTO money_lines (consumer, service, op_row, line, delta_minor) VALUES (?1, 'mensa', ?2, 0, 100)",
            params![&[9u8; 16][..], row],
        )
        .expect("line");
    }
    conn.execute(
        "INSERT INTO wallets (consumer, service, confirmed_minor, provisional_minor) VALUES (?1, 'mensa', 400, 400)",
        params![&[9u8; 16][..]],
    )
    .expect("wallet");
    migrations().to_latest(&mut conn).expect("latest");
    let mut store = migrated(conn);
    let tx = store.read().expect("read");
    let (a, b) = (AuthorId(a), AuthorId(b));
    assert_eq!(tx.author(&a).expect("a").expect("held").num, 1);
    assert_eq!(tx.author(&b).expect("b").expect("held").num, 2);
    assert_eq!(tx.chain_op_at(&b, Seq(2)).expect("chain").map(|id| id.0[0]), Some(4));
    assert_eq!(tx.chain_range(&a, Seq(1), Seq(2), 10, 1 << 20).expect("range").len(), 2);
    assert!(tx.receipt_not_above_last(&a, ReceiptNo(2)).expect("receipt"));
    assert!(!tx.receipt_not_above_last(&a, ReceiptNo(3)).expect("receipt"));
    assert_eq!(tx.last_receipt(&b).expect("last"), Some(ReceiptNo(2)));
    // The latest total of each author and decision seq survives.
    assert_eq!(tx.running_total(&a, None).expect("total"), 800);
    assert_eq!(tx.running_total(&b, Some(Seq(8))).expect("total"), 300);
    assert_eq!(tx.running_total(&b, None).expect("total"), 900);
    assert_eq!(tx.running_total(&b, Some(Seq(6))).expect("total"), 0);
    let op = tx.money_op(&OpId([3; 32])).expect("money op").expect("held");
    assert_eq!(op.author, a);
    // Lines are kept by wallet number, the balances with them.
    let (consumer, mensa) = (ConsumerId([9; 16]), service_id("mensa").expect("service"));
    assert_eq!(tx.movements(&consumer, &mensa, 10).expect("movements").len(), 4);
    assert_eq!(tx.wallet(&consumer, &mensa).expect("wallet").confirmed.minor(), 400);
    assert_eq!(tx.recomputed_wallets().expect("recomputed"), vec![(consumer, "mensa".to_string(), 400, 400)]);
    assert!(tx.reference_used(OpKind::TopUp, "x", &consumer, &mensa).is_ok_and(|used| !used));
    drop(tx);
    assert_eq!(store.integrity_check().expect("check"), "ok");
}

/// The count and total awaiting the hub's verdict follow every operation
/// stored and every verdict given (the store keeps them), and a migrated
/// database starts from what its log holds.
#[test]
fn the_totals_awaiting_a_verdict_follow_the_log() {
    let mut conn = Connection::open_in_memory().expect("memory");
    migrations().to_version(&mut conn, 10).expect("before the running totals");
    let (a, b) = ([1u8; 32], [2u8; 32]);
    for (num, author) in [(1, &a), (2, &b)] {
        conn.execute(
            "INSERT INTO authors (author, role, name, head_seq, num) VALUES (?1, 'cash-point', 'x', 0, ?2)",
            params![&author[..], num],
        )
        .expect("author");
    }
    let insert = |conn: &Connection, row: i64, author: i64, kind: &str, total: i64, verdict: Option<&str>| {
        conn.execute(
            "INSERT INTO ops (row, id_key, id, author, seq, hlc, kind, in_chain, bytes, total_minor, counts,
                              counts_provisional, verdict)
             VALUES (?1, ?7, ?2, ?3, ?1, 0, ?4, 1, x'02', ?5, 1, 1, ?6)",
            params![row, &[row as u8; 32][..], author, kind, total, verdict, id_key(&OpId([row as u8; 32]))],
        )
        .expect("op");
    };
    // Held before the migration: counted by it.
    insert(&conn, 1, 1, "top-up", 500, None);
    insert(&conn, 2, 1, "top-up", 700, Some("accepted"));
    migrations().to_latest(&mut conn).expect("latest");
    let mut store = migrated(conn);
    // After it: kept as operations are stored and decided.
    let money = |total_minor: i64, verdict: Option<StoredVerdict>| NewMoneyOp {
        receipt: None,
        reference: None,
        reverses: None,
        range: None,
        method: None,
        total_minor,
        counts: true,
        counts_provisional: true,
        verdict,
        running_minor: None,
    };
    let accepted = |hub_seq: u64| StoredVerdict { hub_seq: Seq(hub_seq), verdict: Verdict::Accepted };
    let insert = |tx: &Tx<'_>, row: u8, author: &[u8; 32], kind: OpKind, money: NewMoneyOp<'_>| {
        let stored = tx
            .insert_op(&OpId([row; 32]), &AuthorId(*author), Seq(u64::from(row)), 0, kind, true, &[2], Some(&money))
            .expect("op");
        // The row of the operation, not of the totals it moved: its lines name it.
        assert_eq!(stored, i64::from(row));
    };
    {
        let tx = store.write().expect("write");
        insert(&tx, 3, &a, OpKind::DuePayment, money(300, None));
        insert(&tx, 4, &b, OpKind::TopUp, money(1_000, None));
        insert(&tx, 5, &b, OpKind::DailyClose, money(9_999, None));
        // Decided as it arrives (the hub's own verdicts): it never awaited one.
        insert(&tx, 6, &b, OpKind::TopUp, money(2_000, Some(accepted(1))));
        tx.commit_in_store_test().expect("commit");
    }
    let totals = |store: &mut Store| {
        let tx = store.read().expect("read");
        (tx.unconfirmed_of(&AuthorId(a)).expect("a"), tx.unconfirmed_of(&AuthorId(b)).expect("b"))
    };
    assert_eq!(totals(&mut store), ((2, 800), (1, 1_000)));
    {
        let tx = store.write().expect("write");
        assert!(tx.put_verdict(&OpId([1; 32]), Seq(2), &Verdict::Accepted).expect("verdict"));
        let flagged = Verdict::Flagged {
            reason: saldo_sync::FlagReason::OverOperationLimit,
            detail: saldo_sync::Label::parse("troppo").expect("label"),
        };
        assert!(tx.put_verdict(&OpId([4; 32]), Seq(3), &flagged).expect("verdict"));
        // A later verdict on an operation already decided, and an older one:
        // neither counts it out twice.
        assert!(tx.put_verdict(&OpId([4; 32]), Seq(4), &Verdict::Accepted).expect("later"));
        assert!(!tx.put_verdict(&OpId([4; 32]), Seq(1), &Verdict::Accepted).expect("older"));
        tx.commit_in_store_test().expect("commit");
    }
    assert_eq!(totals(&mut store), ((1, 300), (0, 0)));
    assert!(store.read().expect("read").awaiting_mismatches().expect("recount").is_empty());
}

/// The list of daily closes and remittances starts, in a migrated database,
/// from what its log holds, and follows every one stored after.
#[test]
fn the_till_operations_follow_the_log() {
    let mut conn = Connection::open_in_memory().expect("memory");
    migrations().to_version(&mut conn, 17).expect("before the list of till operations");
    let author = [4u8; 32];
    conn.execute(
        "INSERT INTO authors (author, role, name, head_seq, num) VALUES (?1, 'cash-point', 'x', 0, 1)",
        params![&author[..]],
    )
    .expect("author");
    for (row, kind, last) in [(1u8, "top-up", None), (2, "daily-close", Some(1)), (3, "top-up", None)] {
        conn.execute(
            "INSERT INTO ops (row, id_key, id, author, seq, hlc, kind, in_chain, bytes, counts, counts_provisional,
                              range_first, range_last)
             VALUES (?1, ?4, ?2, 1, ?1, 0, ?3, 1, x'02', 1, 1, 1, ?5)",
            params![row, &[row; 32][..], kind, id_key(&OpId([row; 32])), last],
        )
        .expect("op");
    }
    migrations().to_latest(&mut conn).expect("latest");
    let mut store = migrated(conn);
    {
        let tx = store.write().expect("write");
        assert!(tx.till_ops_match_the_log().expect("check"));
        assert_eq!(tx.own_range_last(&AuthorId(author), TillOp::DailyClose).expect("closed"), Some(ReceiptNo(1)));
        let money = NewMoneyOp {
            receipt: None,
            reference: None,
            reverses: None,
            range: Some(saldo_sync::ReceiptRange { first: ReceiptNo(2), last: ReceiptNo(3) }),
            method: None,
            total_minor: 0,
            counts: true,
            counts_provisional: true,
            verdict: None,
            running_minor: None,
        };
        tx.insert_op(&OpId([4; 32]), &AuthorId(author), Seq(4), 0, OpKind::DailyClose, true, &[2], Some(&money))
            .expect("close");
        assert!(tx.till_ops_match_the_log().expect("check"));
        assert_eq!(tx.own_range_last(&AuthorId(author), TillOp::DailyClose).expect("closed"), Some(ReceiptNo(3)));
        assert_eq!(tx.own_range_last(&AuthorId(author), TillOp::Remittance).expect("remitted"), None);
        assert!(tx.receipt_closed_here(&AuthorId(author), ReceiptNo(2)).expect("closed"));
        tx.commit_in_store_test().expect("commit");
    }
}

/// Receipts due noted one to a row before they were grouped are taken, in
/// order, after the migration; those noted after join them, and a take stops
/// at whole rows.
#[test]
fn receipts_due_of_a_migrated_database_are_taken_in_order_with_those_noted_after() {
    let mut conn = Connection::open_in_memory().expect("memory");
    migrations().to_version(&mut conn, 18).expect("before receipts due were grouped");
    conn.execute(
        "INSERT INTO authors (author, role, name, head_seq, num) VALUES (?1, 'cash-point', 'x', 0, 1)",
        params![&[4u8; 32][..]],
    )
    .expect("author");
    for row in 1u8..=2 {
        conn.execute(
            "INSERT INTO ops (row, id_key, id, author, seq, hlc, kind, in_chain, bytes)
             VALUES (?1, ?3, ?2, 1, ?1, 0, 'top-up', 1, ?4)",
            params![row, &[row; 32][..], id_key(&OpId([row; 32])), &[row][..]],
        )
        .expect("op");
    }
    conn.execute("INSERT INTO receipts_due (op_row, balances) VALUES (2, '700'), (1, '1500,-250')", []).expect("due");
    migrations().to_latest(&mut conn).expect("latest");
    let mut store = migrated(conn);
    let tx = store.write().expect("write");
    assert!(tx.any_receipt_due().expect("any"));
    for row in 3..=(2 + outbox::RECEIPTS_DUE_PER_ROW as i64) {
        // Operations a restore dropped: their receipts come without bytes.
        tx.receipt_due(row, &[row * 100]).expect("due");
    }
    let first = tx.take_receipts_due(1).expect("take");
    let balances: Vec<(i64, Vec<i64>)> = first.iter().map(|d| (d.op_row, d.balances.clone())).collect();
    assert_eq!(balances, vec![(1, vec![1500, -250])], "the oldest row, whole");
    assert_eq!(first[0].bytes.as_deref(), Some(&[1u8][..]));
    let next = tx.take_receipts_due(u32::MAX).expect("take");
    assert_eq!(next.len(), 1 + outbox::RECEIPTS_DUE_PER_ROW);
    assert_eq!((next[0].op_row, next[0].balances.clone()), (2, vec![700]));
    assert_eq!((next[1].op_row, next[1].balances.clone(), next[1].bytes.clone()), (3, vec![300], None));
    assert!(!tx.any_receipt_due().expect("any"), "everything taken");
    tx.commit_in_store_test().expect("commit");
}
