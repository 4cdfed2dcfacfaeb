//! The database schema, one migration per version.

use rusqlite_migration::{M, Migrations};

pub(super) const SCHEMA_V1: &str = r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) STRICT;

-- Every device the realm knows, with the head of its log.
CREATE TABLE authors (
    author BLOB PRIMARY KEY,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    limits BLOB,
    revoked_after INTEGER,     -- the last seq the hub had seen when it revoked the device
    frozen_at INTEGER,         -- the seq at which the device equivocated
    head_seq INTEGER NOT NULL DEFAULT 0,
    head_id BLOB
) STRICT, WITHOUT ROWID;

-- The operation log: append-only, in arrival order. in_chain = 0 marks the
-- second operation of an equivocation, kept as evidence. Operations are found
-- by id through `id_key`, the id's first 8 bytes: an index of small integers
-- keeps the pages a batch of random ids dirties few (see ARCHITECTURE.md).
CREATE TABLE ops (
    row INTEGER PRIMARY KEY,
    id_key INTEGER NOT NULL,
    id BLOB NOT NULL,
    author BLOB NOT NULL,
    seq INTEGER NOT NULL,
    hlc INTEGER NOT NULL,
    kind TEXT NOT NULL,
    in_chain INTEGER NOT NULL,
    bytes BLOB NOT NULL
) STRICT;
CREATE INDEX ops_by_id ON ops (id_key);
CREATE INDEX ops_by_author ON ops (author, seq);

CREATE TABLE equivocations (
    author BLOB NOT NULL,
    seq INTEGER NOT NULL,
    first_id BLOB NOT NULL,
    second_id BLOB NOT NULL,
    PRIMARY KEY (author, seq, second_id)
) STRICT;

-- Operations that need the hub's verdict: what they are, the hub's latest
-- verdict on them (highest hub seq), and whether they count now.
CREATE TABLE money_ops (
    op_row INTEGER PRIMARY KEY REFERENCES ops (row),
    author BLOB NOT NULL,
    kind TEXT NOT NULL,
    receipt INTEGER,
    reference TEXT,
    reverses BLOB,
    range_first INTEGER,
    range_last INTEGER,
    method TEXT,
    total_minor INTEGER NOT NULL,
    hlc INTEGER NOT NULL,
    counts INTEGER NOT NULL,
    counts_provisional INTEGER NOT NULL,
    verdict TEXT,
    verdict_seq INTEGER,
    reason TEXT,
    detail TEXT,
    reviewer TEXT
) STRICT;
CREATE INDEX money_ops_by_receipt ON money_ops (author, receipt) WHERE receipt IS NOT NULL;
CREATE INDEX money_ops_by_reference ON money_ops (reference) WHERE reference IS NOT NULL;
CREATE INDEX money_ops_by_target ON money_ops (reverses) WHERE reverses IS NOT NULL;
CREATE INDEX money_ops_flagged ON money_ops (hlc) WHERE verdict = 'flagged';

CREATE TABLE money_lines (
    op_row INTEGER NOT NULL,
    line INTEGER NOT NULL,
    consumer BLOB NOT NULL,
    service TEXT NOT NULL,
    delta_minor INTEGER NOT NULL,
    PRIMARY KEY (op_row, line)
) STRICT, WITHOUT ROWID;
CREATE INDEX money_lines_by_wallet ON money_lines (consumer, service);

-- Verdicts on operations not held yet (a replica may get the hub's decision
-- before the operation); moved into money_ops when the operation arrives.
CREATE TABLE early_verdicts (
    target BLOB PRIMARY KEY,
    hub_seq INTEGER NOT NULL,
    verdict TEXT NOT NULL,
    reason TEXT,
    detail TEXT,
    reviewer TEXT
) STRICT, WITHOUT ROWID;

CREATE TABLE wallets (
    consumer BLOB NOT NULL,
    service TEXT NOT NULL,
    confirmed_minor INTEGER NOT NULL DEFAULT 0,
    provisional_minor INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (consumer, service)
) STRICT, WITHOUT ROWID;

CREATE TABLE escrow (
    device BLOB NOT NULL,
    consumer BLOB NOT NULL,
    service TEXT NOT NULL,
    granted_minor INTEGER NOT NULL,
    PRIMARY KEY (device, consumer, service)
) STRICT, WITHOUT ROWID;

CREATE TABLE checkpoints (
    consumer BLOB NOT NULL,
    service TEXT NOT NULL,
    as_of INTEGER NOT NULL,
    balance_minor INTEGER NOT NULL,
    PRIMARY KEY (consumer, service)
) STRICT, WITHOUT ROWID;

-- Directory: which operations carry changes of which document, and the
-- materialised views used to identify consumers.
CREATE TABLE dir_changes (doc TEXT NOT NULL, op_row INTEGER NOT NULL, PRIMARY KEY (doc, op_row)) STRICT, WITHOUT ROWID;
CREATE TABLE services (service TEXT PRIMARY KEY, name TEXT NOT NULL, floor_minor INTEGER NOT NULL, tariff_minor INTEGER) STRICT;
CREATE TABLE families (
    family BLOB PRIMARY KEY,
    payer_fiscal_code TEXT NOT NULL,
    payer_surname TEXT NOT NULL,
    payer_name TEXT NOT NULL
) STRICT;
CREATE INDEX families_by_payer ON families (payer_fiscal_code);
CREATE TABLE consumers (
    consumer BLOB PRIMARY KEY,
    family BLOB NOT NULL,
    pan TEXT NOT NULL,
    fiscal_code TEXT NOT NULL,
    surname TEXT NOT NULL,
    name TEXT NOT NULL,
    school TEXT,
    class TEXT
) STRICT;
CREATE INDEX consumers_by_pan ON consumers (pan);
CREATE INDEX consumers_by_fiscal_code ON consumers (fiscal_code);
CREATE INDEX consumers_by_family ON consumers (family);
CREATE TABLE consumer_services (
    consumer BLOB NOT NULL,
    service TEXT NOT NULL,
    PRIMARY KEY (consumer, service)
) STRICT, WITHOUT ROWID;
CREATE TABLE search_keys (key TEXT NOT NULL, consumer BLOB NOT NULL, PRIMARY KEY (key, consumer)) STRICT, WITHOUT ROWID;
CREATE TABLE contacts (family BLOB PRIMARY KEY, email TEXT, phone TEXT) STRICT;
"#;

/// Operation format 2: every operation says how much of the hub's log its
/// author held. The hub checks a device's offline limits against it, with
/// two columns it fills as it judges: the hub seq of each operation's first
/// verdict, and the running total of the money its author's operations
/// moved (rows judged by the hub only, which the partial index holds).
const SCHEMA_V2: &str = r#"
ALTER TABLE money_ops ADD COLUMN decided_seq INTEGER;
ALTER TABLE money_ops ADD COLUMN running_minor INTEGER;
CREATE INDEX money_ops_by_decided ON money_ops (author, decided_seq) WHERE running_minor IS NOT NULL;
"#;

/// Lines clustered by wallet: each line written is one B-tree entry, not
/// two (a table by operation and an index by wallet); what needs the lines
/// of one operation reads them from the operation itself.
const SCHEMA_V3: &str = r#"
CREATE TABLE wallet_lines (
    consumer BLOB NOT NULL,
    service TEXT NOT NULL,
    op_row INTEGER NOT NULL,
    line INTEGER NOT NULL,
    delta_minor INTEGER NOT NULL,
    PRIMARY KEY (consumer, service, op_row, line)
) STRICT, WITHOUT ROWID;
INSERT INTO wallet_lines SELECT consumer, service, op_row, line, delta_minor FROM money_lines;
DROP TABLE money_lines;
ALTER TABLE wallet_lines RENAME TO money_lines;
"#;

/// Authors by number: the log, the money operations and their indexes name
/// an author by a small integer (`authors.num`) instead of its 32-byte key,
/// which made a third of what the hub wrote per operation. The running
/// totals the hub checks unconfirmed totals against get a table of their
/// own, one row per author and decision operation rather than an index
/// entry per operation: all operations one decision operation carries are
/// decided at the same hub seq.
const SCHEMA_V4: &str = r#"
ALTER TABLE authors ADD COLUMN num INTEGER;
UPDATE authors SET num = (SELECT COUNT(*) FROM authors a WHERE a.author <= authors.author);
CREATE UNIQUE INDEX authors_by_num ON authors (num);

DROP INDEX ops_by_author;
ALTER TABLE ops ADD COLUMN author_num INTEGER NOT NULL DEFAULT 0;
UPDATE ops SET author_num = (SELECT num FROM authors a WHERE a.author = ops.author);
ALTER TABLE ops DROP COLUMN author;
ALTER TABLE ops RENAME COLUMN author_num TO author;
CREATE INDEX ops_by_author ON ops (author, seq);

CREATE TABLE running_totals (
    author INTEGER NOT NULL,
    decided_seq INTEGER NOT NULL,
    running_minor INTEGER NOT NULL,
    PRIMARY KEY (author, decided_seq)
) STRICT, WITHOUT ROWID;
INSERT OR REPLACE INTO running_totals
    SELECT a.num, m.decided_seq, m.running_minor FROM money_ops m JOIN authors a ON a.author = m.author
    WHERE m.running_minor IS NOT NULL ORDER BY m.op_row;

DROP INDEX money_ops_by_decided;
DROP INDEX money_ops_by_receipt;
-- Databases created before this index left SCHEMA_V1 (November 2026) still have it.
DROP INDEX IF EXISTS money_ops_unconfirmed;
ALTER TABLE money_ops DROP COLUMN running_minor;
ALTER TABLE money_ops DROP COLUMN decided_seq;
ALTER TABLE money_ops ADD COLUMN author_num INTEGER NOT NULL DEFAULT 0;
UPDATE money_ops SET author_num = (SELECT num FROM authors a WHERE a.author = money_ops.author);
ALTER TABLE money_ops DROP COLUMN author;
ALTER TABLE money_ops RENAME COLUMN author_num TO author;
CREATE INDEX money_ops_by_receipt ON money_ops (author, receipt) WHERE receipt IS NOT NULL;
"#;

/// Wallets by number: each wallet gets a small integer (`wallets.num`), by
/// which its lines are kept. A line was about 40 bytes of B-tree entry
/// (consumer id, service name, row, line, amount); now it is about 14, so
/// the lines of a large hub take a third of the pages, and a batch of
/// operations on random wallets dirties (and writes to the log) that many
/// fewer.
const SCHEMA_V5: &str = r#"
CREATE TABLE wallets_v5 (
    consumer BLOB NOT NULL,
    service TEXT NOT NULL,
    num INTEGER NOT NULL,
    confirmed_minor INTEGER NOT NULL DEFAULT 0,
    provisional_minor INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (consumer, service)
) STRICT, WITHOUT ROWID;
INSERT INTO wallets_v5 (consumer, service, num)
    SELECT consumer, service, row_number() OVER (ORDER BY consumer, service)
    FROM (SELECT consumer, service FROM wallets UNION SELECT consumer, service FROM money_lines);
UPDATE wallets_v5 SET confirmed_minor = w.confirmed_minor, provisional_minor = w.provisional_minor
    FROM wallets w WHERE w.consumer = wallets_v5.consumer AND w.service = wallets_v5.service;
DROP TABLE wallets;
ALTER TABLE wallets_v5 RENAME TO wallets;
CREATE UNIQUE INDEX wallets_by_num ON wallets (num);

CREATE TABLE lines_v5 (
    wallet INTEGER NOT NULL,
    op_row INTEGER NOT NULL,
    line INTEGER NOT NULL,
    delta_minor INTEGER NOT NULL,
    PRIMARY KEY (wallet, op_row, line)
) STRICT, WITHOUT ROWID;
INSERT INTO lines_v5
    SELECT w.num, l.op_row, l.line, l.delta_minor
    FROM money_lines l JOIN wallets w ON w.consumer = l.consumer AND w.service = l.service;
DROP TABLE money_lines;
ALTER TABLE lines_v5 RENAME TO money_lines;
"#;

/// Operations on money are rows of the log: what `money_ops` held (the
/// receipt, the hub's verdict, whether it counts) are columns of `ops`,
/// filled for the operations on money whose amounts this node keeps
/// (`counts` is NULL for the others). An operation on money was two rows
/// in two tables; now it is one, written once. `money_ops` remains, as a
/// view, for what reads it.
const SCHEMA_V6: &str = r#"
ALTER TABLE ops ADD COLUMN receipt INTEGER;
ALTER TABLE ops ADD COLUMN reference TEXT;
ALTER TABLE ops ADD COLUMN reverses BLOB;
ALTER TABLE ops ADD COLUMN range_first INTEGER;
ALTER TABLE ops ADD COLUMN range_last INTEGER;
ALTER TABLE ops ADD COLUMN method TEXT;
ALTER TABLE ops ADD COLUMN total_minor INTEGER;
ALTER TABLE ops ADD COLUMN counts INTEGER;
ALTER TABLE ops ADD COLUMN counts_provisional INTEGER;
ALTER TABLE ops ADD COLUMN verdict TEXT;
ALTER TABLE ops ADD COLUMN verdict_seq INTEGER;
ALTER TABLE ops ADD COLUMN reason TEXT;
ALTER TABLE ops ADD COLUMN detail TEXT;
ALTER TABLE ops ADD COLUMN reviewer TEXT;
UPDATE ops SET receipt = m.receipt, reference = m.reference, reverses = m.reverses, range_first = m.range_first,
    range_last = m.range_last, method = m.method, total_minor = m.total_minor, counts = m.counts,
    counts_provisional = m.counts_provisional, verdict = m.verdict, verdict_seq = m.verdict_seq, reason = m.reason,
    detail = m.detail, reviewer = m.reviewer
    FROM money_ops m WHERE m.op_row = ops.row;
DROP TABLE money_ops;
CREATE VIEW money_ops AS
    SELECT row AS op_row, author, kind, receipt, reference, reverses, range_first, range_last, method, total_minor,
           hlc, counts, counts_provisional, verdict, verdict_seq, reason, detail, reviewer
    FROM ops WHERE counts IS NOT NULL;
CREATE INDEX ops_by_receipt ON ops (author, receipt) WHERE receipt IS NOT NULL;
CREATE INDEX ops_by_reference ON ops (reference) WHERE reference IS NOT NULL;
CREATE INDEX ops_by_target ON ops (reverses) WHERE reverses IS NOT NULL;
CREATE INDEX ops_flagged ON ops (hlc) WHERE verdict = 'flagged';
"#;

/// Receipts by author without an index of their own: every device's
/// highest receipt is a column of `authors` (a receipt not above it is
/// flagged: devices number receipts in the order of their log), and
/// `ops_by_author` carries the receipt, so the totals of a range of
/// receipts (a daily close) are read from the index, without a table row
/// per operation. One index entry less per operation on money.
const SCHEMA_V7: &str = r#"
ALTER TABLE authors ADD COLUMN receipt_max INTEGER NOT NULL DEFAULT 0;
UPDATE authors SET receipt_max = COALESCE((SELECT MAX(receipt) FROM ops WHERE ops.author = authors.num), 0);
DROP INDEX ops_by_receipt;
DROP INDEX ops_by_author;
CREATE INDEX ops_by_author ON ops (author, seq, receipt);
"#;

/// A device's operations still awaiting the hub's verdict, found without
/// reading its whole log: every top-up checks its offline limits against
/// them (before, a cash point with a year of receipts read them all at
/// each top-up; `saldo-bench http` found it).
const SCHEMA_AWAITING_VERDICT: &str = r#"
CREATE INDEX ops_awaiting_verdict ON ops (author) WHERE verdict IS NULL AND counts IS NOT NULL;
"#;

/// What each device has awaiting the hub's verdict, kept as a running count
/// and total per author by triggers on `ops`, whatever path inserts an
/// operation, decides it or removes it: a top-up checks its offline limits
/// in constant time. (With the index above, every top-up at a cash point
/// with N receipts awaiting the hub still read N index entries and rows:
/// `saldo-bench http` found 65% of the writer's time there with 2,000
/// receipts offline.) The kinds are those the offline limits count.
const SCHEMA_AWAITING_TOTALS: &str = r#"
CREATE TABLE awaiting_verdict (
    author INTEGER PRIMARY KEY,
    operations INTEGER NOT NULL,
    total_minor INTEGER NOT NULL
) STRICT;
INSERT INTO awaiting_verdict (author, operations, total_minor)
    SELECT author, COUNT(*), COALESCE(SUM(total_minor), 0) FROM ops
    WHERE verdict IS NULL AND counts IS NOT NULL
      AND kind IN ('top-up', 'due-payment', 'service-charge', 'transfer', 'refund')
    GROUP BY author;
CREATE TRIGGER awaiting_on_insert AFTER INSERT ON ops
    WHEN NEW.verdict IS NULL AND NEW.counts IS NOT NULL
     AND NEW.kind IN ('top-up', 'due-payment', 'service-charge', 'transfer', 'refund')
BEGIN
    INSERT INTO awaiting_verdict (author, operations, total_minor) VALUES (NEW.author, 1, COALESCE(NEW.total_minor, 0))
    ON CONFLICT (author) DO UPDATE SET operations = operations + 1, total_minor = total_minor + excluded.total_minor;
END;
CREATE TRIGGER awaiting_on_verdict AFTER UPDATE OF verdict ON ops
    WHEN OLD.verdict IS NULL AND NEW.verdict IS NOT NULL AND OLD.counts IS NOT NULL
     AND OLD.kind IN ('top-up', 'due-payment', 'service-charge', 'transfer', 'refund')
BEGIN
    UPDATE awaiting_verdict SET operations = operations - 1, total_minor = total_minor - COALESCE(OLD.total_minor, 0)
    WHERE author = OLD.author;
END;
CREATE TRIGGER awaiting_on_verdict_undone AFTER UPDATE OF verdict ON ops
    WHEN OLD.verdict IS NOT NULL AND NEW.verdict IS NULL AND NEW.counts IS NOT NULL
     AND NEW.kind IN ('top-up', 'due-payment', 'service-charge', 'transfer', 'refund')
BEGIN
    INSERT INTO awaiting_verdict (author, operations, total_minor) VALUES (NEW.author, 1, COALESCE(NEW.total_minor, 0))
    ON CONFLICT (author) DO UPDATE SET operations = operations + 1, total_minor = total_minor + excluded.total_minor;
END;
CREATE TRIGGER awaiting_on_delete AFTER DELETE ON ops
    WHEN OLD.verdict IS NULL AND OLD.counts IS NOT NULL
     AND OLD.kind IN ('top-up', 'due-payment', 'service-charge', 'transfer', 'refund')
BEGIN
    UPDATE awaiting_verdict SET operations = operations - 1, total_minor = total_minor - COALESCE(OLD.total_minor, 0)
    WHERE author = OLD.author;
END;
DROP INDEX ops_awaiting_verdict;
"#;

/// The totals awaiting the hub's verdict are kept by the store itself
/// (`Tx::insert_op`, `Tx::put_verdict`: the only paths that insert an
/// operation or give it a verdict; none removes one), no longer by
/// triggers. A trigger on `ops`, even one whose condition is false, makes
/// every insert into `ops` a statement SQLite can roll back alone: each
/// page it touched was first copied into a statement journal. That was a
/// quarter of the hub's storing thread during a catch-up (`perf` over
/// `saldo-bench foundation`).
const SCHEMA_AWAITING_KEPT_BY_THE_STORE: &str = r#"
DROP TRIGGER awaiting_on_insert;
DROP TRIGGER awaiting_on_verdict;
DROP TRIGGER awaiting_on_verdict_undone;
DROP TRIGGER awaiting_on_delete;
"#;

pub(super) fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(SCHEMA_V1),
        M::up(SCHEMA_V2),
        M::up(SCHEMA_V3),
        M::up(SCHEMA_V4),
        M::up(SCHEMA_V5),
        M::up(SCHEMA_V6),
        M::up(SCHEMA_V7),
        M::up(super::operators::SCHEMA_V8),
        M::up(super::idempotency::SCHEMA),
        M::up(SCHEMA_AWAITING_VERDICT),
        M::up(SCHEMA_AWAITING_TOTALS),
        M::up(super::outbox::SCHEMA),
        M::up(super::reports::SCHEMA),
        M::up(super::notify::SCHEMA),
        M::up(super::outbox::NOTICE_SCHEMA),
        M::up(super::outbox::RECEIPTS_DUE_SCHEMA),
        M::up(SCHEMA_AWAITING_KEPT_BY_THE_STORE),
        M::up(super::days::TILL_OPS_SCHEMA),
        M::up(super::outbox::RECEIPTS_DUE_GROUPED_SCHEMA),
    ])
}
