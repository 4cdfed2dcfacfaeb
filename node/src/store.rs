//! All of Saldo's SQL lives here, behind a narrow, typed interface, so that a
//! second backend (PostgreSQL for a replicated hub) is a contained change.
//!
//! SQLite in WAL mode with `synchronous = FULL`: a transaction that has
//! committed survives a crash or power loss, and an operation is acknowledged
//! only after the transaction holding it and its effects has committed.
//! Writers take the lock up front (`BEGIN IMMEDIATE`), so a command-line
//! process and a running node can share one data directory: sequence numbers
//! are allocated inside the writing transaction and never handed out twice.
//! A writer that finds the database locked tries again every millisecond for
//! up to [`WRITE_WAIT_MAX`], and bulk work gives way to it between its
//! transactions ([`crate::writers`]).

use std::cell::RefCell;
// The transaction's caches are keyed by ids that are hashes already, or
// small integers: a fast hash without DoS resistance is right for them.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use rusqlite_migration::{M, Migrations};

use crate::writers::Writers;
use saldo_sync::{
    AuthorId, Balance, ConsumerId, FamilyId, FlagReason, Label, OfflineLimits, OpId, OpKind, Pan, ReceiptNo,
    ReceiptRange, Role, Seq, ServiceId, Verdict,
};

pub type Result<T> = std::result::Result<T, rusqlite::Error>;

/// Longest a writer waits for another connection (a bulk import in another
/// process) to let go of the database before it gives up.
pub const WRITE_WAIT_MAX: Duration = Duration::from_secs(30);
/// How often a writer waiting for the database tries again: SQLite's own
/// busy handler waits up to 100 ms between two tries, which is what a top-up
/// would lose each time the lock comes free.
const WRITE_RETRY: Duration = Duration::from_millis(1);

/// SQLite's busy handler for every connection: try again every
/// [`WRITE_RETRY`], for [`WRITE_WAIT_MAX`] in all.
fn retry_while_busy(attempts: i32) -> bool {
    let attempts_max = (WRITE_WAIT_MAX.as_micros() / WRITE_RETRY.as_micros()) as i32;
    if attempts >= attempts_max {
        return false;
    }
    std::thread::sleep(WRITE_RETRY);
    true
}

/// Whether `error` says that another connection held the database for
/// longer than a writer waits ("database is locked").
pub fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(error.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

const SCHEMA_V1: &str = r#"
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

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(SCHEMA_V1),
        M::up(SCHEMA_V2),
        M::up(SCHEMA_V3),
        M::up(SCHEMA_V4),
        M::up(SCHEMA_V5),
        M::up(SCHEMA_V6),
        M::up(SCHEMA_V7),
    ])
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open the database {path}: {source}")]
    Sqlite { path: String, source: rusqlite::Error },
    #[error("cannot bring the database schema up to date: {0}")]
    Migration(#[from] rusqlite_migration::Error),
}

/// The database of one node.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    /// What write transactions learnt and committed, for the next one.
    remembered: Remembered,
    /// Opened for reading only because the disk is full.
    read_only_on_full_disk: bool,
    /// Who waits to write on this database, from any process.
    writers: Writers,
}

/// What the hub looks up for every operation and what rarely changes: the
/// numbers of wallets (never change once given) and who is enrolled where
/// (changes with the directory). A write transaction starts from what the
/// last committed one knew and hands it back only when it commits, so
/// nothing of a rolled-back transaction is remembered. It is all forgotten
/// when another connection (a command on the same data directory) has
/// committed since; half of it when it grows past
/// [`Remembered::ENTRIES_MAX`].
#[derive(Debug, Default)]
struct Remembered {
    /// `PRAGMA data_version` when this was handed back.
    data_version: i64,
    services: Vec<ServiceId>,
    wallets: HashMap<(ConsumerId, ServiceSlot), Known>,
    wallet_keys: HashMap<i64, (ConsumerId, ServiceId)>,
    directory_version: u64,
}

/// What is known of a wallet: its number, and whether its consumer is
/// enrolled in its service as of the directory version it was read at
/// (`Tx::directory_version` moves on every directory change, which makes
/// every enrolment read before unknown at once). One entry for both: the
/// hub reads both for every line it judges, with one cache miss.
#[derive(Debug, Clone, Copy, Default)]
struct Known {
    num: Option<i64>,
    enrolled: Option<(bool, u64)>,
}

/// A service by its place in [`Tx::services`]: the wallet maps are keyed
/// by consumer and slot, so a lookup reads one entry of the table (a
/// `ServiceId` in the key would be a string elsewhere in memory, read on
/// every comparison: a cache miss per lookup on a hub's hot path).
type ServiceSlot = u32;

/// Most services the wallet maps name: a realm has a handful; a device
/// naming ever new ones in its operations gets no more slots.
const SERVICE_SLOTS_MAX: usize = 256;

impl Remembered {
    /// A wallet takes two entries, about 150 bytes: a realm of 125,000
    /// wallets (some 20 MB) is remembered whole.
    const ENTRIES_MAX: usize = 250_000;

    /// Forgets every other wallet when there are more than `max` entries,
    /// so that a realm too large to remember whole still finds half of its
    /// wallets here (forgetting all of them would leave every transaction
    /// to start from nothing). Every number remembered keeps its wallet.
    fn fit(&mut self, max: usize) {
        if self.wallets.len() + self.wallet_keys.len() <= max {
            return;
        }
        let mut i = 0usize;
        self.wallets.retain(|_, _| {
            i += 1;
            i.is_multiple_of(2)
        });
        let (wallets, services) = (&self.wallets, &self.services);
        self.wallet_keys.retain(|_, (consumer, service)| {
            services
                .iter()
                .position(|s| s == service)
                .is_some_and(|slot| wallets.contains_key(&(*consumer, slot as ServiceSlot)))
        });
    }
}

impl Store {
    pub fn open(path: &Path) -> std::result::Result<Store, OpenError> {
        let sqlite = |source| OpenError::Sqlite { path: path.display().to_string(), source };
        let conn = Connection::open(path).map_err(sqlite)?;
        match Self::setup(conn, true, Writers::beside(path)) {
            Err(error) if disk_is_full(path) => Self::open_to_read_on_a_full_disk(path).map_err(|_| error),
            result => result,
        }
    }

    /// Opens the database at `path` for reading, on a disk too full
    /// for SQLite's shared-memory file (`-shm`, made when no other process
    /// has the database open): with exclusive locking, SQLite keeps the
    /// write-ahead log's index in this process's memory instead. Reads
    /// work; [`Store::write`] fails as on a full disk. While it is open,
    /// other processes wait to use the database.
    fn open_to_read_on_a_full_disk(path: &Path) -> std::result::Result<Store, OpenError> {
        let sqlite = |source| OpenError::Sqlite { path: path.display().to_string(), source };
        // Read-write (without creating): a read-only connection cannot keep
        // the index in memory; nothing is written, Store::write refuses.
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(sqlite)?;
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE").map_err(sqlite)?;
        let mut store = Self::setup(conn, false, Writers::alone())?;
        store.read_only_on_full_disk = true;
        Ok(store)
    }

    pub fn open_in_memory() -> std::result::Result<Store, OpenError> {
        let conn =
            Connection::open_in_memory().map_err(|source| OpenError::Sqlite { path: ":memory:".into(), source })?;
        Self::setup(conn, false, Writers::alone())
    }

    fn setup(mut conn: Connection, file: bool, writers: Writers) -> std::result::Result<Store, OpenError> {
        // The database file's path, said in a message (not "database database").
        let path = conn.path().filter(|p| !p.is_empty()).map_or_else(|| ":memory:".to_string(), str::to_string);
        let sqlite = |source| OpenError::Sqlite { path: path.clone(), source };
        conn.busy_handler(Some(retry_while_busy)).map_err(sqlite)?;
        if file {
            conn.pragma_update(None, "journal_mode", "WAL").map_err(sqlite)?;
        }
        conn.pragma_update(None, "synchronous", "FULL").map_err(sqlite)?;
        // A hub's working set (recent operations, wallets, search keys) stays
        // in memory: 128 MiB of page cache; statement journals in memory.
        conn.pragma_update(None, "cache_size", -131_072).map_err(sqlite)?;
        conn.pragma_update(None, "temp_store", "MEMORY").map_err(sqlite)?;
        // Checkpoint the WAL every 64 MiB rather than 4: pages dirtied again
        // and again by consecutive batches are written to the database once.
        conn.pragma_update(None, "wal_autocheckpoint", 16_384).map_err(sqlite)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(sqlite)?;
        conn.set_prepared_statement_cache_capacity(256);
        // Two processes may open a new database at the same moment (a node
        // being created and a command on its directory): the second one's
        // migration fails on what the first created; once the first has
        // committed, the schema is current and a retry finds nothing to do.
        let mut attempt = 0;
        while let Err(e) = migrations().to_latest(&mut conn) {
            attempt += 1;
            if attempt == 5 {
                return Err(e.into());
            }
            std::thread::sleep(Duration::from_millis(100 * attempt));
        }
        Ok(Store { conn, remembered: Remembered::default(), read_only_on_full_disk: false, writers })
    }

    /// Starts a write transaction, taking the write lock now. While another
    /// connection holds it, this one says it waits, so that bulk work lets
    /// it through before its next transaction.
    pub fn write(&mut self) -> Result<Tx<'_>> {
        self.refuse_on_full_disk()?;
        let waiting = self.writers.wait();
        let tx = Tx::new(&self.conn, TransactionBehavior::Immediate);
        drop(waiting);
        with_remembered(tx?, &mut self.remembered)
    }

    /// Starts a write transaction of bulk work (an import, a catch-up): first
    /// lets every connection waiting to write go first ([`crate::writers`]).
    /// [`Tx::writers_waiting`] says when to commit early for another.
    pub fn write_after_waiting_writers(&mut self) -> Result<Tx<'_>> {
        self.refuse_on_full_disk()?;
        self.writers.give_way();
        let tx = Tx::new(&self.conn, TransactionBehavior::Immediate)?;
        let tx = with_remembered(tx, &mut self.remembered)?;
        Ok(Tx { writers: Some(&self.writers), ..tx })
    }

    /// A store opened for reading on a full disk writes nothing.
    fn refuse_on_full_disk(&self) -> Result<()> {
        if self.read_only_on_full_disk {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
                Some("database or disk is full".into()),
            ));
        }
        Ok(())
    }

    /// Writes a consistent copy of the database to `path` (which must not
    /// exist), while other connections, in this process or others, go on
    /// writing: SQLite's `VACUUM INTO` reads one snapshot.
    pub fn copy_into(&self, path: &Path) -> Result<()> {
        let path = path.to_str().ok_or_else(|| rusqlite::Error::InvalidPath(path.to_path_buf()))?;
        self.conn.execute("VACUUM INTO ?1", [path])?;
        Ok(())
    }

    /// A read-only view (a deferred transaction that is never committed).
    pub fn read(&mut self) -> Result<Tx<'_>> {
        Tx::new(&self.conn, TransactionBehavior::Deferred)
    }

    /// Copies what the write-ahead log holds into the database when that is
    /// at least `frames_min` pages, without waiting for readers (what a
    /// reader still uses stays in the log for a later checkpoint). Returns
    /// how many pages it copied. SQLite otherwise checkpoints inside
    /// whichever commit takes the log past `wal_autocheckpoint`; the ingest
    /// calls this where other threads have work meanwhile.
    pub fn checkpoint_wal(&self, frames_min: i64) -> Result<i64> {
        let frames = |mode: &str| {
            self.conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
                Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            })
        };
        let (log, copied) = frames("NOOP")?;
        if log - copied < frames_min.max(1) {
            return Ok(0);
        }
        let (_, now_copied) = frames("PASSIVE")?;
        Ok(now_copied - copied.max(0))
    }

    /// How many pages the database holds.
    pub fn page_count(&self) -> Result<u64> {
        self.conn.query_row("PRAGMA page_count", [], |r| r.get::<_, i64>(0)).map(|n| n as u64)
    }

    /// Caps the database at `pages` pages for this connection (SQLite's
    /// `max_page_count`): a write past it fails as on a full disk
    /// (SQLITE_FULL). Tests use it to fill the disk without filling one.
    pub fn limit_pages(&self, pages: u64) -> Result<u64> {
        self.conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| r.get::<_, i64>(0)).map(|n| n as u64)
    }

    pub fn integrity_check(&self) -> Result<String> {
        self.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
    }

    /// Every row of every table, in a stable order: what tests compare to
    /// show that a refused input changed nothing.
    pub fn dump(&self) -> Result<Vec<String>> {
        let mut tables: Vec<String> = {
            let mut stmt = self.conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")?;
            stmt.query_map([], |r| r.get(0))?.collect::<Result<_>>()?
        };
        tables.retain(|t| !t.starts_with("sqlite_"));
        let mut out = Vec::new();
        for table in tables {
            let mut stmt = self.conn.prepare(&format!("SELECT * FROM \"{table}\""))?;
            let columns = stmt.column_count();
            let mut rows: Vec<String> = stmt
                .query_map([], |row| {
                    let mut line = format!("{table}:");
                    for i in 0..columns {
                        let value: rusqlite::types::Value = row.get(i)?;
                        line.push_str(&format!(" {value:?}"));
                    }
                    Ok(line)
                })?
                .collect::<Result<_>>()?;
            rows.sort();
            out.extend(rows);
        }
        Ok(out)
    }
}

/// Is the file system holding `path` full? Tried by writing a little more
/// than SQLite's shared-memory file needs next to it, only after opening
/// the database failed.
fn disk_is_full(path: &Path) -> bool {
    use std::io::Write as _;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let Ok(mut probe) = tempfile::tempfile_in(dir) else { return false };
    let written = probe.write_all(&[0u8; 64 * 1024]).and_then(|()| probe.sync_data());
    matches!(written, Err(e) if e.kind() == std::io::ErrorKind::StorageFull)
}

/// A write transaction that starts from what the last one committed on
/// this connection knew, unless another connection has committed since.
fn with_remembered<'a>(tx: Tx<'a>, home: &'a mut Remembered) -> Result<Tx<'a>> {
    let mut remembered = std::mem::take(home);
    let data_version: i64 = tx.tx.query_row("PRAGMA data_version", [], |r| r.get(0))?;
    if data_version != remembered.data_version {
        remembered = Remembered { data_version, ..Remembered::default() };
    }
    *tx.services.borrow_mut() = remembered.services;
    *tx.wallets.borrow_mut() = remembered.wallets;
    tx.directory_version.set(remembered.directory_version);
    *tx.wallet_keys.borrow_mut() = remembered.wallet_keys;
    Ok(Tx { home: Some((home, data_version)), ..tx })
}

/// What the store knows of a device.
#[derive(Debug, Clone)]
pub struct AuthorRow {
    pub author: AuthorId,
    /// The author's number in this database, by which the log and the
    /// money tables name it (0 before it is stored).
    pub num: i64,
    pub role: Role,
    pub name: String,
    pub limits: Option<OfflineLimits>,
    pub revoked_after: Option<Seq>,
    pub frozen_at: Option<Seq>,
    pub head_seq: Seq,
    pub head_id: Option<OpId>,
}

/// A wallet's number in this database, as a transaction gave it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalletNum(i64);

/// What the log keeps of an operation on money, stored with it.
#[derive(Debug, Clone)]
pub struct NewMoneyOp<'a> {
    pub receipt: Option<ReceiptNo>,
    pub reference: Option<&'a str>,
    pub reverses: Option<&'a OpId>,
    pub range: Option<ReceiptRange>,
    pub method: Option<&'static str>,
    pub total_minor: i64,
    pub counts: bool,
    pub counts_provisional: bool,
    pub verdict: Option<StoredVerdict>,
    /// On the hub: the running total of the money its author's operations
    /// moved, this one included ([`Tx::running_total`]).
    pub running_minor: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct MoneyOpRow {
    pub row: i64,
    pub id: OpId,
    pub author: AuthorId,
    pub kind: String,
    pub receipt: Option<ReceiptNo>,
    pub reference: Option<String>,
    pub reverses: Option<OpId>,
    pub method: Option<String>,
    pub total_minor: i64,
    pub hlc: u64,
    pub counts: bool,
    pub counts_provisional: bool,
    pub verdict: Option<StoredVerdict>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVerdict {
    pub hub_seq: Seq,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRow {
    pub consumer: ConsumerId,
    pub family: FamilyId,
    pub pan: String,
    pub fiscal_code: String,
    pub surname: String,
    pub name: String,
    pub school: Option<String>,
    pub class: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletRow {
    pub consumer: ConsumerId,
    pub service: ServiceId,
    pub confirmed: Balance,
    pub provisional: Balance,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovementRow {
    pub op: OpId,
    pub author: AuthorId,
    pub kind: String,
    pub receipt: Option<u64>,
    pub method: Option<String>,
    pub hlc: u64,
    pub delta_minor: i64,
    pub counts: bool,
    pub counts_provisional: bool,
    pub verdict: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlaggedRow {
    pub op: OpId,
    pub author: AuthorId,
    pub kind: String,
    pub reason: String,
    pub detail: String,
    pub total_minor: i64,
}

fn op_id(bytes: Vec<u8>) -> Result<OpId> {
    OpId::from_slice(&bytes)
        .ok_or_else(|| rusqlite::Error::InvalidColumnType(0, "op id".into(), rusqlite::types::Type::Blob))
}

fn author_id(bytes: Vec<u8>) -> Result<AuthorId> {
    AuthorId::from_slice(&bytes)
        .ok_or_else(|| rusqlite::Error::InvalidColumnType(0, "author".into(), rusqlite::types::Type::Blob))
}

fn consumer_id(bytes: Vec<u8>) -> Result<ConsumerId> {
    ConsumerId::from_slice(&bytes)
        .ok_or_else(|| rusqlite::Error::InvalidColumnType(0, "consumer".into(), rusqlite::types::Type::Blob))
}

fn seq_of(value: i64) -> Seq {
    Seq(value as u64)
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Hub => "hub",
        Role::CashPoint => "cash-point",
        Role::SchoolDevice => "school-device",
        Role::HubContacts => "hub-contacts",
    }
}

fn role_of(name: &str) -> Result<Role> {
    Ok(match name {
        "hub" => Role::Hub,
        "cash-point" => Role::CashPoint,
        "school-device" => Role::SchoolDevice,
        "hub-contacts" => Role::HubContacts,
        other => {
            return Err(rusqlite::Error::InvalidColumnType(0, format!("role {other}"), rusqlite::types::Type::Text));
        }
    })
}

fn verdict_parts(verdict: &Verdict) -> (&'static str, Option<&'static str>, Option<String>, Option<String>) {
    match verdict {
        Verdict::Accepted => ("accepted", None, None, None),
        Verdict::Flagged { reason, detail } => ("flagged", Some(reason.code()), Some(detail.to_string()), None),
        Verdict::ReviewAccepted { operator, note } => {
            ("review-accepted", None, Some(note.to_string()), Some(operator.to_string()))
        }
        Verdict::ReviewRejected { operator, note } => {
            ("review-rejected", None, Some(note.to_string()), Some(operator.to_string()))
        }
    }
}

fn label_or_dash(text: Option<String>) -> Label {
    text.and_then(|t| Label::parse(&t).ok()).unwrap_or_else(|| Label::parse("-").expect("a dash is a label"))
}

/// The statements every ingested operation runs.
#[derive(Debug, Clone, Copy)]
enum Hot {
    InsertOp,
    InsertMoneyLine,
    /// [`LINES_PER_INSERT`] lines at once.
    InsertMoneyLines,
    AddToWallet,
    IsEnrolled,
}

const HOT_STATEMENTS: usize = 5;

/// Lines written by one statement: a statement's cursors are opened once
/// for them, and they go in in key order.
const LINES_PER_INSERT: usize = 64;

/// `INSERT INTO money_lines ... VALUES` with [`LINES_PER_INSERT`] rows.
static INSERT_MONEY_LINES: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let rows = vec!["(?, ?, ?, ?)"; LINES_PER_INSERT].join(", ");
    format!("INSERT INTO money_lines (wallet, op_row, line, delta_minor) VALUES {rows}")
});

impl Hot {
    fn sql(self) -> &'static str {
        match self {
            Hot::InsertOp => {
                "INSERT INTO ops (id_key, id, author, seq, hlc, kind, in_chain, bytes,
                                  receipt, reference, reverses, range_first, range_last, method, total_minor,
                                  counts, counts_provisional, verdict, verdict_seq, reason, detail, reviewer)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)"
            }
            Hot::InsertMoneyLine => {
                "INSERT INTO money_lines (wallet, op_row, line, delta_minor) VALUES (?1, ?2, ?3, ?4)"
            }
            Hot::InsertMoneyLines => INSERT_MONEY_LINES.as_str(),
            // The wallet's row exists: it was given its number first.
            Hot::AddToWallet => {
                "UPDATE wallets SET confirmed_minor = confirmed_minor + ?3, provisional_minor = provisional_minor + ?4
                 WHERE consumer = ?1 AND service = ?2"
            }
            Hot::IsEnrolled => "SELECT 1 FROM consumer_services WHERE consumer = ?1 AND service = ?2",
        }
    }
}

/// A transaction on the store. Dropping it without [`Tx::commit`] rolls back.
#[derive(Debug)]
pub struct Tx<'a> {
    conn: &'a Connection,
    /// The statements of the ingest hot path, prepared once per transaction.
    hot: [RefCell<Option<rusqlite::Statement<'a>>>; HOT_STATEMENTS],
    tx: rusqlite::Transaction<'a>,
    /// Author rows read or written in this transaction. Every operation moves
    /// its author's head, so heads are kept here and written once, at commit.
    authors: RefCell<HashMap<AuthorId, AuthorRow>>,
    dirty_heads: RefCell<HashSet<AuthorId>>,
    /// Wallets (by number) whose confirmed balance changed in this
    /// transaction (the hub signs checkpoints of them before it commits).
    dirty_wallets: RefCell<HashSet<i64>>,
    /// [`Tx::running_total`]s read or written in this transaction: every
    /// operation of a device the hub judges reads two. Those up to a hub
    /// seq never change once read (later verdicts come at higher seqs).
    running: RefCell<HashMap<(AuthorId, Option<Seq>), i64>>,
    /// Running totals to write, by (author number, decision seq): the last
    /// one per key wins, so a decision operation carrying many operations
    /// of one author writes one row.
    running_pending: RefCell<std::collections::BTreeMap<(i64, i64), i64>>,
    /// The wall-clock times of operations read in this transaction (the
    /// hub's operation each device says it held, read once per batch).
    walls: RefCell<HashMap<(AuthorId, Seq), u64>>,
    /// What this transaction adds to wallets (by number), written in key
    /// order before anything reads the table whole and at commit: a batch
    /// touches a wallet once however many of its operations do.
    wallet_deltas: RefCell<HashMap<i64, (i64, i64)>>,
    /// The highest receipt number of each author (by number) read in this
    /// transaction and kept up to date as operations are stored, and the
    /// authors whose highest moved (written at commit).
    receipts_max: RefCell<HashMap<i64, i64>>,
    receipts_dirty: RefCell<HashSet<i64>>,
    /// Wallet numbers read or given, and whether consumers are enrolled in
    /// services as read (forgotten when the directory changes), by
    /// consumer and service slot; the wallets each number names.
    wallets: RefCell<HashMap<(ConsumerId, ServiceSlot), Known>>,
    wallet_keys: RefCell<HashMap<i64, (ConsumerId, ServiceId)>>,
    /// Moves on at every directory change: enrolments read before it are unknown.
    directory_version: std::cell::Cell<u64>,
    /// The services `wallets` names by slot, in the order first seen.
    services: RefCell<Vec<ServiceId>>,
    /// Lines of operations on money to write, as (wallet, op_row, line,
    /// delta): written in key order at commit and before anything reads
    /// `money_lines` (through [`Tx::with_lines`]).
    lines_pending: RefCell<Vec<[i64; 4]>>,
    /// Where a write transaction hands what it knows back when it commits,
    /// and the data version it saw.
    home: Option<(&'a mut Remembered, i64)>,
    /// Who waits to write, for bulk work that commits early for them.
    writers: Option<&'a Writers>,
}

impl<'a> Tx<'a> {
    fn new(conn: &'a Connection, behavior: TransactionBehavior) -> Result<Tx<'a>> {
        let tx = rusqlite::Transaction::new_unchecked(conn, behavior)?;
        Ok(Tx {
            conn,
            hot: Default::default(),
            tx,
            authors: RefCell::default(),
            dirty_heads: RefCell::default(),
            dirty_wallets: RefCell::default(),
            running: RefCell::default(),
            running_pending: RefCell::default(),
            walls: RefCell::default(),
            wallet_deltas: RefCell::default(),
            wallets: RefCell::default(),
            wallet_keys: RefCell::default(),
            directory_version: std::cell::Cell::default(),
            services: RefCell::default(),
            receipts_max: RefCell::default(),
            receipts_dirty: RefCell::default(),
            lines_pending: RefCell::default(),
            home: None,
            writers: None,
        })
    }

    pub fn commit(self) -> Result<()> {
        self.flush_heads()?;
        self.flush_receipts()?;
        self.flush_wallets()?;
        self.flush_running()?;
        self.flush_lines()?;
        let Tx { hot, tx, home, wallets, wallet_keys, directory_version, services, .. } = self;
        drop(hot);
        tx.commit()?;
        if let Some((remembered, data_version)) = home {
            let (wallets, wallet_keys, services) =
                (wallets.into_inner(), wallet_keys.into_inner(), services.into_inner());
            let directory_version = directory_version.get();
            *remembered = Remembered { data_version, services, wallets, wallet_keys, directory_version };
            remembered.fit(Remembered::ENTRIES_MAX);
        }
        Ok(())
    }

    /// Whether another connection waits to write (a top-up at the counter):
    /// bulk work commits early for it. Always false but in bulk work
    /// ([`Store::write_after_waiting_writers`]).
    pub fn writers_waiting(&self) -> bool {
        self.writers.is_some_and(Writers::anybody_waits)
    }

    /// A hot statement, prepared on first use in this transaction.
    fn hot(&self, which: Hot) -> Result<std::cell::RefMut<'_, rusqlite::Statement<'a>>> {
        let cell = &self.hot[which as usize];
        if cell.borrow().is_none() {
            *cell.borrow_mut() = Some(self.conn.prepare(which.sql())?);
        }
        Ok(std::cell::RefMut::map(cell.borrow_mut(), |s| s.as_mut().expect("prepared above")))
    }

    fn flush_wallets(&self) -> Result<()> {
        let deltas = std::mem::take(&mut *self.wallet_deltas.borrow_mut());
        let keys = self.wallet_keys.borrow();
        type Wallet = (ConsumerId, ServiceId);
        let mut deltas: Vec<(&Wallet, (i64, i64))> = deltas
            .into_iter()
            .filter(|(_, delta)| *delta != (0, 0))
            .map(|(num, delta)| (keys.get(&num).expect("a wallet with a delta has its number known"), delta))
            .collect();
        deltas.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for ((consumer, service), (confirmed, provisional)) in deltas {
            self.hot(Hot::AddToWallet)?.execute(params![&consumer.0[..], service.as_str(), confirmed, provisional])?;
        }
        Ok(())
    }

    fn flush_lines(&self) -> Result<()> {
        let mut lines = std::mem::take(&mut *self.lines_pending.borrow_mut());
        lines.sort_unstable();
        let mut chunks = lines.chunks_exact(LINES_PER_INSERT);
        for chunk in chunks.by_ref() {
            let mut insert = self.hot(Hot::InsertMoneyLines)?;
            for (i, value) in chunk.iter().flatten().enumerate() {
                insert.raw_bind_parameter(i + 1, value)?;
            }
            insert.raw_execute()?;
        }
        for line in chunks.remainder() {
            self.hot(Hot::InsertMoneyLine)?.execute(*line)?;
        }
        Ok(())
    }

    /// The transaction, with every line written: for what reads `money_lines`.
    fn with_lines(&self) -> Result<&rusqlite::Transaction<'a>> {
        self.flush_lines()?;
        Ok(&self.tx)
    }

    fn flush_running(&self) -> Result<()> {
        let pending = std::mem::take(&mut *self.running_pending.borrow_mut());
        for ((author, decided_seq), running) in pending {
            self.tx
                .prepare_cached(
                    "INSERT INTO running_totals (author, decided_seq, running_minor) VALUES (?1, ?2, ?3)
                     ON CONFLICT DO UPDATE SET running_minor = excluded.running_minor",
                )?
                .execute(params![author, decided_seq, running])?;
        }
        Ok(())
    }

    /// The number by which the log and the money tables name `author`.
    fn num_of(&self, author: &AuthorId) -> Result<i64> {
        if let Some(row) = self.authors.borrow().get(author) {
            return Ok(row.num);
        }
        self.author(author)?.map(|row| row.num).ok_or(rusqlite::Error::QueryReturnedNoRows)
    }

    fn flush_heads(&self) -> Result<()> {
        let authors = self.authors.borrow();
        for author in self.dirty_heads.borrow_mut().drain() {
            let row = authors.get(&author).expect("a dirty head is cached");
            self.tx
                .prepare_cached("UPDATE authors SET head_seq = ?2, head_id = ?3 WHERE author = ?1")?
                .execute(params![&author.0[..], row.head_seq.0 as i64, row.head_id.as_ref().map(|h| &h.0[..])])?;
        }
        Ok(())
    }

    // ---- meta -------------------------------------------------------------

    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.tx.prepare_cached("SELECT value FROM meta WHERE key = ?1")?.query_row([key], |r| r.get(0)).optional()
    }

    pub fn set_meta(&self, key: &str, value: &[u8]) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![key, value])?;
        Ok(())
    }

    // ---- authors ----------------------------------------------------------

    pub fn author(&self, author: &AuthorId) -> Result<Option<AuthorRow>> {
        if let Some(row) = self.authors.borrow().get(author) {
            return Ok(Some(row.clone()));
        }
        let row = self
            .tx
            .prepare_cached(
                "SELECT author, role, name, limits, revoked_after, frozen_at, head_seq, head_id, num FROM authors WHERE author = ?1",
            )?
            .query_row([&author.0[..]], |r| {
                let limits: Option<Vec<u8>> = r.get(3)?;
                let head_id: Option<Vec<u8>> = r.get(7)?;
                Ok(AuthorRow {
                    author: author_id(r.get(0)?)?,
                    role: role_of(&r.get::<_, String>(1)?)?,
                    name: r.get(2)?,
                    limits: limits.and_then(|b| postcard::from_bytes(&b).ok()),
                    revoked_after: r.get::<_, Option<i64>>(4)?.map(seq_of),
                    frozen_at: r.get::<_, Option<i64>>(5)?.map(seq_of),
                    head_seq: seq_of(r.get(6)?),
                    head_id: head_id.map(op_id).transpose()?,
                    num: r.get(8)?,
                })
            })
            .optional()?;
        if let Some(row) = &row {
            self.authors.borrow_mut().insert(*author, row.clone());
        }
        Ok(row)
    }

    /// Applies `edit` to the cached row of `author`, if cached.
    fn edit_cached(&self, author: &AuthorId, edit: impl FnOnce(&mut AuthorRow)) {
        if let Some(row) = self.authors.borrow_mut().get_mut(author) {
            edit(row);
        }
    }

    pub fn authors(&self) -> Result<Vec<AuthorRow>> {
        self.flush_heads()?;
        let ids: Vec<Vec<u8>> = self
            .tx
            .prepare_cached("SELECT author FROM authors ORDER BY author")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_>>()?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(row) = self.author(&author_id(id)?)? {
                out.push(row);
            }
        }
        Ok(out)
    }

    pub fn insert_author(
        &self,
        author: &AuthorId,
        role: Role,
        name: &str,
        limits: Option<&OfflineLimits>,
    ) -> Result<()> {
        let encoded = limits.map(|l| postcard::to_stdvec(l).expect("limits encode"));
        self.tx
            .prepare_cached(
                "INSERT INTO authors (author, role, name, limits, num)
                 VALUES (?1, ?2, ?3, ?4, (SELECT COALESCE(MAX(num), 0) + 1 FROM authors))
                 ON CONFLICT (author) DO UPDATE SET role = excluded.role, name = excluded.name, limits = excluded.limits",
            )?
            .execute(params![&author.0[..], role_name(role), name, encoded])?;
        self.edit_cached(author, |row| {
            row.role = role;
            row.name = name.to_owned();
            row.limits = limits.copied();
        });
        Ok(())
    }

    pub fn set_limits(&self, author: &AuthorId, limits: &OfflineLimits) -> Result<()> {
        let encoded = postcard::to_stdvec(limits).expect("limits encode");
        self.tx
            .prepare_cached("UPDATE authors SET limits = ?2 WHERE author = ?1")?
            .execute(params![&author.0[..], encoded])?;
        self.edit_cached(author, |row| row.limits = Some(*limits));
        Ok(())
    }

    pub fn set_revoked(&self, author: &AuthorId, last_seq_seen: Seq) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE authors SET revoked_after = MIN(COALESCE(revoked_after, ?2), ?2) WHERE author = ?1",
            )?
            .execute(params![&author.0[..], last_seq_seen.0 as i64])?;
        self.edit_cached(author, |row| {
            row.revoked_after = Some(row.revoked_after.map_or(last_seq_seen, |r| r.min(last_seq_seen)))
        });
        Ok(())
    }

    pub fn set_frozen(&self, author: &AuthorId, seq: Seq) -> Result<()> {
        self.tx
            .prepare_cached("UPDATE authors SET frozen_at = MIN(COALESCE(frozen_at, ?2), ?2) WHERE author = ?1")?
            .execute(params![&author.0[..], seq.0 as i64])?;
        self.edit_cached(author, |row| row.frozen_at = Some(row.frozen_at.map_or(seq, |f| f.min(seq))));
        Ok(())
    }

    /// Moves `author`'s head (written to the table at commit).
    pub fn set_head(&self, author: &AuthorId, seq: Seq, id: &OpId) -> Result<()> {
        if self.author(author)?.is_none() {
            return Err(rusqlite::Error::QueryReturnedNoRows);
        }
        self.edit_cached(author, |row| {
            row.head_seq = seq;
            row.head_id = Some(*id);
        });
        self.dirty_heads.borrow_mut().insert(*author);
        Ok(())
    }

    // ---- operations -------------------------------------------------------

    /// The row of operation `id`, if held.
    pub fn op_row(&self, id: &OpId) -> Result<Option<i64>> {
        self.tx
            .prepare_cached("SELECT row FROM ops WHERE id_key = ?1 AND id = ?2")?
            .query_row(params![id_key(id), &id.0[..]], |r| r.get(0))
            .optional()
    }

    pub fn has_op(&self, id: &OpId) -> Result<bool> {
        Ok(self.op_row(id)?.is_some())
    }

    /// Appends an operation to the log, with what is kept of it when it
    /// is an operation on money whose amounts this node keeps; returns its row.
    #[allow(clippy::too_many_arguments)]
    pub fn insert_op(
        &self,
        id: &OpId,
        author: &AuthorId,
        seq: Seq,
        hlc: u64,
        kind: OpKind,
        in_chain: bool,
        bytes: &[u8],
        money: Option<&NewMoneyOp<'_>>,
    ) -> Result<i64> {
        let num = self.num_of(author)?;
        let verdict = money.and_then(|m| m.verdict.as_ref());
        let (verdict_kind, reason, detail, reviewer) = match verdict {
            Some(v) => {
                let (kind, reason, detail, reviewer) = verdict_parts(&v.verdict);
                (Some(kind), reason, detail, reviewer)
            }
            None => (None, None, None, None),
        };
        self.hot(Hot::InsertOp)?.execute(params![
            id_key(id),
            &id.0[..],
            num,
            seq.0 as i64,
            hlc as i64,
            kind.name(),
            in_chain,
            bytes,
            money.and_then(|m| m.receipt).map(|r| r.0 as i64),
            money.and_then(|m| m.reference),
            money.and_then(|m| m.reverses).map(|r| &r.0[..]),
            money.and_then(|m| m.range).map(|r| r.first.0 as i64),
            money.and_then(|m| m.range).map(|r| r.last.0 as i64),
            money.and_then(|m| m.method),
            money.map(|m| m.total_minor),
            money.map(|m| m.counts),
            money.map(|m| m.counts_provisional),
            verdict_kind,
            verdict.map(|v| v.hub_seq.0 as i64),
            reason,
            detail,
            reviewer,
        ])?;
        if let Some(money) = money {
            if let Some(receipt) = money.receipt
                && receipt.0 as i64 > self.receipt_max_of(num)?
            {
                self.receipts_max.borrow_mut().insert(num, receipt.0 as i64);
                self.receipts_dirty.borrow_mut().insert(num);
            }
            if let (Some(running), Some(decided)) = (money.running_minor, verdict) {
                self.running.borrow_mut().insert((*author, None), running);
                self.running_pending.borrow_mut().insert((num, decided.hub_seq.0 as i64), running);
            }
        }
        Ok(self.tx.last_insert_rowid())
    }

    /// The format version of the first operation stored (its first byte),
    /// if any: a database written by a saldo of another format is refused
    /// whole at open, not operation by operation.
    pub fn first_op_format(&self) -> Result<Option<u8>> {
        let first: Option<Vec<u8>> = self
            .tx
            .query_row("SELECT substr(bytes, 1, 1) FROM ops ORDER BY row LIMIT 1", [], |r| r.get(0))
            .optional()?;
        Ok(first.and_then(|b| b.first().copied()))
    }

    pub fn op_bytes(&self, id: &OpId) -> Result<Option<Vec<u8>>> {
        self.tx
            .prepare_cached("SELECT bytes FROM ops WHERE id_key = ?1 AND id = ?2")?
            .query_row(params![id_key(id), &id.0[..]], |r| r.get(0))
            .optional()
    }

    /// The chain operation of `author` at `seq`.
    pub fn chain_op_at(&self, author: &AuthorId, seq: Seq) -> Result<Option<OpId>> {
        self.tx
            .prepare_cached("SELECT id FROM ops WHERE author = (SELECT num FROM authors WHERE author = ?1) AND seq = ?2 AND in_chain = 1")?
            .query_row(params![&author.0[..], seq.0 as i64], |r| op_id(r.get(0)?))
            .optional()
    }

    pub fn insert_equivocation(&self, author: &AuthorId, seq: Seq, first: &OpId, second: &OpId) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT OR IGNORE INTO equivocations (author, seq, first_id, second_id) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![&author.0[..], seq.0 as i64, &first.0[..], &second.0[..]])?;
        Ok(())
    }

    /// How many equivocating operations of `author` are kept as evidence.
    pub fn equivocations_of(&self, author: &AuthorId) -> Result<u64> {
        self.tx
            .prepare_cached("SELECT COUNT(*) FROM equivocations WHERE author = ?1")?
            .query_row([&author.0[..]], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
    }

    pub fn equivocation_count(&self) -> Result<u64> {
        self.tx.query_row("SELECT COUNT(*) FROM equivocations", [], |r| r.get::<_, i64>(0)).map(|n| n as u64)
    }

    /// Visits every stored operation's bytes, author by author in chain order.
    pub fn for_each_op(
        &self,
        mut f: impl FnMut(bool, Vec<u8>) -> std::result::Result<(), String>,
    ) -> Result<std::result::Result<(), String>> {
        let mut stmt = self.tx.prepare("SELECT in_chain, bytes FROM ops ORDER BY author, seq, in_chain DESC")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            if let Err(e) = f(row.get(0)?, row.get(1)?) {
                return Ok(Err(e));
            }
        }
        Ok(Ok(()))
    }

    /// `author`'s chain operations from `from` to `upto`, in order: at most
    /// `max_ops`, stopping once `max_bytes` is reached (at least one if held).
    pub fn chain_range(
        &self,
        author: &AuthorId,
        from: Seq,
        upto: Seq,
        max_ops: usize,
        max_bytes: usize,
    ) -> Result<Vec<saldo_sync::reconcile::ChainOp>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT seq, id, bytes FROM ops
             WHERE author = (SELECT num FROM authors WHERE author = ?1) AND seq BETWEEN ?2 AND ?3 AND in_chain = 1
             ORDER BY seq LIMIT ?4",
        )?;
        let mut rows = stmt.query(params![&author.0[..], from.0 as i64, upto.0 as i64, max_ops as i64])?;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        while let Some(row) = rows.next()? {
            let op = saldo_sync::reconcile::ChainOp {
                seq: seq_of(row.get(0)?),
                id: op_id(row.get(1)?)?,
                bytes: row.get(2)?,
            };
            bytes += op.bytes.len();
            out.push(op);
            if bytes >= max_bytes {
                break;
            }
        }
        Ok(out)
    }

    /// Every operation of `author` with a seq from `from` on, on any branch
    /// (chain first at each seq), by seq: at most `max_ops`, except that the
    /// operations of one seq are never split, so a caller goes on from the
    /// last seq + 1.
    pub fn all_from(
        &self,
        author: &AuthorId,
        from: Seq,
        max_ops: usize,
    ) -> Result<Vec<saldo_sync::reconcile::ChainOp>> {
        let Some(num) = self.author(author)?.map(|a| a.num) else {
            return Ok(Vec::new());
        };
        let read = |sql: &str, seq: i64, limit: i64| -> Result<Vec<saldo_sync::reconcile::ChainOp>> {
            let mut stmt = self.tx.prepare_cached(sql)?;
            let rows = stmt.query_map(params![num, seq, limit], |r| {
                Ok(saldo_sync::reconcile::ChainOp { seq: seq_of(r.get(0)?), id: op_id(r.get(1)?)?, bytes: r.get(2)? })
            })?;
            rows.collect()
        };
        let mut out = read(
            "SELECT seq, id, bytes FROM ops WHERE author = ?1 AND seq >= ?2 ORDER BY seq, in_chain DESC, row LIMIT ?3",
            from.0 as i64,
            max_ops.max(1) as i64,
        )?;
        if out.len() >= max_ops.max(1)
            && let Some(last) = out.last().map(|op| op.seq)
        {
            out.retain(|op| op.seq != last);
            out.extend(read(
                "SELECT seq, id, bytes FROM ops WHERE author = ?1 AND seq = ?2 ORDER BY in_chain DESC, row LIMIT ?3",
                last.0 as i64,
                i64::MAX,
            )?);
        }
        Ok(out)
    }

    /// Whether `id` is an operation of `author` held (on any branch).
    pub fn holds_op_of(&self, author: &AuthorId, id: &OpId) -> Result<bool> {
        let Some(num) = self.author(author)?.map(|a| a.num) else {
            return Ok(false);
        };
        Ok(self
            .tx
            .prepare_cached("SELECT 1 FROM ops WHERE id_key = ?1 AND id = ?2 AND author = ?3")?
            .query_row(params![id_key(id), &id.0[..], num], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// The authors this node holds evidence of a fork on, with the lowest
    /// seq where it holds two operations, and the ids of what it holds of
    /// them from there (at most `ids_max` each, lowest seqs first).
    pub fn fork_summaries(&self, ids_max: usize) -> Result<Vec<(AuthorId, Seq, Vec<OpId>)>> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT author, num, frozen_at FROM authors WHERE frozen_at IS NOT NULL ORDER BY author")?;
        let forked: Vec<(AuthorId, i64, i64)> =
            stmt.query_map([], |r| Ok((author_id(r.get(0)?)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_>>()?;
        let mut out = Vec::with_capacity(forked.len());
        for (author, num, from) in forked {
            let ids = self
                .tx
                .prepare_cached(
                    "SELECT id FROM ops WHERE author = ?1 AND seq >= ?2 ORDER BY seq, in_chain DESC, row LIMIT ?3",
                )?
                .query_map(params![num, from, ids_max as i64], |r| op_id(r.get(0)?))?
                .collect::<Result<Vec<_>>>()?;
            out.push((author, seq_of(from), ids));
        }
        Ok(out)
    }

    pub fn op_count(&self) -> Result<u64> {
        self.tx.query_row("SELECT COUNT(*) FROM ops", [], |r| r.get::<_, i64>(0)).map(|n| n as u64)
    }

    // ---- money ------------------------------------------------------------

    /// The running total of the money `author`'s operations moved, as the
    /// hub judged them: all of them, or only those it had decided by its own
    /// operation `decided_by`. The difference is what the author had
    /// recorded and not seen decided when it held the hub's log up to there.
    pub fn running_total(&self, author: &AuthorId, decided_by: Option<Seq>) -> Result<i64> {
        if let Some(known) = self.running.borrow().get(&(*author, decided_by)) {
            return Ok(*known);
        }
        self.flush_running()?;
        let num = self.num_of(author)?;
        let found = self
            .tx
            .prepare_cached(
                "SELECT running_minor FROM running_totals WHERE author = ?1 AND decided_seq <= ?2
                 ORDER BY decided_seq DESC LIMIT 1",
            )?
            .query_row(params![num, decided_by.map_or(i64::MAX, |s| s.0 as i64)], |r| r.get(0))
            .optional()?;
        let total = found.unwrap_or(0);
        self.running.borrow_mut().insert((*author, decided_by), total);
        Ok(total)
    }

    /// The wall-clock time (ms) of `author`'s chain operation at `seq`.
    pub fn op_wall_ms(&self, author: &AuthorId, seq: Seq) -> Result<Option<u64>> {
        if let Some(known) = self.walls.borrow().get(&(*author, seq)) {
            return Ok(Some(*known));
        }
        let wall = self
            .tx
            .prepare_cached("SELECT hlc FROM ops WHERE author = (SELECT num FROM authors WHERE author = ?1) AND seq = ?2 AND in_chain = 1")?
            .query_row(params![&author.0[..], seq.0 as i64], |r| r.get::<_, i64>(0))
            .optional()?
            .map(|h| saldo_sync::Hlc(h as u64).wall_ms());
        if let Some(wall) = wall {
            self.walls.borrow_mut().insert((*author, seq), wall);
        }
        Ok(wall)
    }

    pub fn insert_money_line(
        &self,
        op_row: i64,
        line: usize,
        consumer: &ConsumerId,
        service: &ServiceId,
        delta_minor: i64,
    ) -> Result<WalletNum> {
        let wallet = self.wallet_num(consumer, service)?;
        self.lines_pending.borrow_mut().push([wallet, op_row, line as i64, delta_minor]);
        Ok(WalletNum(wallet))
    }

    pub fn money_op(&self, id: &OpId) -> Result<Option<MoneyOpRow>> {
        self.tx
            .prepare_cached(&format!("{MONEY_SELECT} AND o.id_key = ?1 AND o.id = ?2"))?
            .query_row(params![id_key(id), &id.0[..]], money_op_row)
            .optional()
    }

    /// The wallet lines of the operation in `op_row`, read from the
    /// operation (verified when it was stored), in order.
    pub fn money_lines(&self, op_row: i64) -> Result<Vec<(ConsumerId, ServiceId, i64)>> {
        let bytes: Vec<u8> =
            self.tx.prepare_cached("SELECT bytes FROM ops WHERE row = ?1")?.query_row([op_row], |r| r.get(0))?;
        let signed = saldo_sync::SignedOp::decode(&bytes).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Blob,
                format!("stored operation: {e}").into(),
            )
        })?;
        Ok(signed.op.body.wallet_deltas().into_iter().map(|(w, delta)| (w.consumer, w.service, delta)).collect())
    }

    pub fn set_money_status(&self, op_row: i64, counts: bool, counts_provisional: bool) -> Result<()> {
        self.tx
            .prepare_cached("UPDATE ops SET counts = ?2, counts_provisional = ?3 WHERE row = ?1")?
            .execute(params![op_row, counts, counts_provisional])?;
        Ok(())
    }

    /// Reversals of `target`: (reversal row, counts, counts provisionally).
    pub fn reversals_of(&self, target: &OpId) -> Result<Vec<(i64, bool, bool)>> {
        let mut stmt =
            self.tx.prepare_cached("SELECT op_row, counts, counts_provisional FROM money_ops WHERE reverses = ?1")?;
        let rows = stmt.query_map([&target.0[..]], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect()
    }

    pub fn add_to_wallet(
        &self,
        consumer: &ConsumerId,
        service: &ServiceId,
        confirmed_minor: i64,
        provisional_minor: i64,
    ) -> Result<()> {
        let num = WalletNum(self.wallet_num(consumer, service)?);
        self.add_to_wallet_num(num, confirmed_minor, provisional_minor);
        Ok(())
    }

    /// [`Tx::add_to_wallet`], for a wallet whose number this transaction gave out.
    pub fn add_to_wallet_num(&self, WalletNum(num): WalletNum, confirmed_minor: i64, provisional_minor: i64) {
        let mut deltas = self.wallet_deltas.borrow_mut();
        let delta = deltas.entry(num).or_default();
        delta.0 += confirmed_minor;
        delta.1 += provisional_minor;
        if confirmed_minor != 0 {
            self.dirty_wallets.borrow_mut().insert(num);
        }
    }

    /// The number of a wallet, if this transaction has read or given it.
    fn cached_wallet_num(&self, consumer: &ConsumerId, service: &ServiceId) -> Option<i64> {
        self.wallets.borrow().get(&(*consumer, self.service_slot(service)?))?.num
    }

    /// The slot of a service in this transaction's wallet maps, given now if
    /// it has none; `None` once [`SERVICE_SLOTS_MAX`] are given (operations
    /// naming ever new services are then looked up in the database).
    fn service_slot(&self, service: &ServiceId) -> Option<ServiceSlot> {
        let mut services = self.services.borrow_mut();
        if let Some(slot) = services.iter().position(|s| s == service) {
            return Some(slot as ServiceSlot);
        }
        if services.len() >= SERVICE_SLOTS_MAX {
            return None;
        }
        services.push(service.clone());
        Some((services.len() - 1) as ServiceSlot)
    }

    /// The number of a wallet, given one now if it has none.
    fn wallet_num(&self, consumer: &ConsumerId, service: &ServiceId) -> Result<i64> {
        if let Some(num) = self.cached_wallet_num(consumer, service) {
            return Ok(num);
        }
        let num = self
            .tx
            .prepare_cached("SELECT num FROM wallets WHERE consumer = ?1 AND service = ?2")?
            .query_row(params![&consumer.0[..], service.as_str()], |r| r.get::<_, i64>(0))
            .optional()?;
        let num = match num {
            Some(num) => num,
            None => self
                .tx
                .prepare_cached(
                    "INSERT INTO wallets (consumer, service, num)
                     VALUES (?1, ?2, (SELECT COALESCE(MAX(num), 0) + 1 FROM wallets)) RETURNING num",
                )?
                .query_row(params![&consumer.0[..], service.as_str()], |r| r.get(0))?,
        };
        if let Some(slot) = self.service_slot(service) {
            self.wallets.borrow_mut().entry((*consumer, slot)).or_default().num = Some(num);
        }
        self.wallet_keys.borrow_mut().insert(num, (*consumer, service.clone()));
        Ok(num)
    }

    pub fn wallet(&self, consumer: &ConsumerId, service: &ServiceId) -> Result<WalletRow> {
        let row = self
            .tx
            .prepare_cached(
                "SELECT confirmed_minor, provisional_minor FROM wallets WHERE consumer = ?1 AND service = ?2",
            )?
            .query_row(params![&consumer.0[..], service.as_str()], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
            .optional()?
            .unwrap_or((0, 0));
        let pending = self
            .cached_wallet_num(consumer, service)
            .and_then(|num| self.wallet_deltas.borrow().get(&num).copied())
            .unwrap_or((0, 0));
        let row = (row.0 + pending.0, row.1 + pending.1);
        Ok(WalletRow {
            consumer: *consumer,
            service: service.clone(),
            confirmed: Balance::from_minor(row.0).unwrap_or(Balance::ZERO),
            provisional: Balance::from_minor(row.1).unwrap_or(Balance::ZERO),
        })
    }

    /// Every wallet with a non-zero balance, ordered.
    pub fn wallets(&self) -> Result<Vec<WalletRow>> {
        self.flush_wallets()?;
        let mut stmt = self.tx.prepare(
            "SELECT consumer, service, confirmed_minor, provisional_minor FROM wallets
             WHERE confirmed_minor <> 0 OR provisional_minor <> 0 ORDER BY consumer, service",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (consumer, service, confirmed, provisional) = row?;
            out.push(WalletRow {
                consumer: consumer_id(consumer)?,
                service: service_id(&service)?,
                confirmed: Balance::from_minor(confirmed).unwrap_or(Balance::ZERO),
                provisional: Balance::from_minor(provisional).unwrap_or(Balance::ZERO),
            });
        }
        Ok(out)
    }

    /// Recomputes every wallet from the operations that count: (confirmed,
    /// provisional) per wallet, non-zero only. `log verify` compares this with
    /// the incrementally kept `wallets` table.
    pub fn recomputed_wallets(&self) -> Result<Vec<(ConsumerId, String, i64, i64)>> {
        let mut stmt = self.with_lines()?.prepare(
            "SELECT w.consumer, w.service,
                    SUM(CASE WHEN m.counts THEN l.delta_minor ELSE 0 END),
                    SUM(CASE WHEN m.counts_provisional THEN l.delta_minor ELSE 0 END)
             FROM money_lines l JOIN money_ops m ON m.op_row = l.op_row JOIN wallets w ON w.num = l.wallet
             GROUP BY w.consumer, w.service ORDER BY w.consumer, w.service",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (consumer, service, confirmed, provisional): (Vec<u8>, String, i64, i64) = row?;
            if confirmed != 0 || provisional != 0 {
                out.push((consumer_id(consumer)?, service, confirmed, provisional));
            }
        }
        Ok(out)
    }

    /// Sums of counted credits and debits over all operations, in cents.
    pub fn counted_credits_and_debits(&self) -> Result<(i64, i64)> {
        self.with_lines()?.query_row(
            "SELECT COALESCE(SUM(CASE WHEN l.delta_minor > 0 THEN l.delta_minor END), 0),
                    COALESCE(SUM(CASE WHEN l.delta_minor < 0 THEN -l.delta_minor END), 0)
             FROM money_lines l JOIN money_ops m ON m.op_row = l.op_row WHERE m.counts",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    pub fn wallet_balance_sum(&self) -> Result<i64> {
        self.flush_wallets()?;
        self.tx.query_row("SELECT COALESCE(SUM(confirmed_minor), 0) FROM wallets", [], |r| r.get(0))
    }

    /// Whether `receipt` is not above the highest receipt of an operation
    /// of `author` held: used already, or out of the order a device
    /// numbers its receipts in.
    pub fn receipt_not_above_last(&self, author: &AuthorId, receipt: ReceiptNo) -> Result<bool> {
        Ok(receipt.0 as i64 <= self.receipt_max_of(self.num_of(author)?)?)
    }

    /// The highest receipt of the author numbered `num` (0 when none).
    fn receipt_max_of(&self, num: i64) -> Result<i64> {
        if let Some(max) = self.receipts_max.borrow().get(&num) {
            return Ok(*max);
        }
        let max =
            self.tx.prepare_cached("SELECT receipt_max FROM authors WHERE num = ?1")?.query_row([num], |r| r.get(0))?;
        self.receipts_max.borrow_mut().insert(num, max);
        Ok(max)
    }

    /// The authors whose recorded highest receipt is not the highest of
    /// their operations held (what `saldo log verify` reports).
    pub fn receipt_max_mismatches(&self) -> Result<Vec<AuthorId>> {
        self.flush_receipts()?;
        self.tx
            .prepare(
                "SELECT a.author FROM authors a
                 WHERE a.receipt_max != COALESCE((SELECT MAX(o.receipt) FROM ops o WHERE o.author = a.num), 0)
                 ORDER BY a.author",
            )?
            .query_map([], |r| r.get::<_, Vec<u8>>(0))?
            .map(|id| author_id(id?))
            .collect()
    }

    fn flush_receipts(&self) -> Result<()> {
        let maxima = self.receipts_max.borrow();
        for num in self.receipts_dirty.borrow_mut().drain() {
            self.tx
                .prepare_cached("UPDATE authors SET receipt_max = ?2 WHERE num = ?1")?
                .execute(params![num, maxima[&num]])?;
        }
        Ok(())
    }

    /// How many operations of `author` that take or give a wallet's money
    /// ([`crate::ledger::offline_limits_apply`]) await the hub's verdict, and their total.
    pub fn unconfirmed_of(&self, author: &AuthorId) -> Result<(u64, i64)> {
        self.tx.query_row(
            "SELECT COUNT(*), COALESCE(SUM(total_minor), 0) FROM money_ops WHERE author = (SELECT num FROM authors WHERE author = ?1) AND verdict IS NULL
             AND kind IN ('top-up', 'due-payment', 'service-charge', 'transfer', 'refund')",
            [&author.0[..]],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
        )
    }

    pub fn delete_meta(&self, key: &str) -> Result<bool> {
        Ok(self.tx.prepare_cached("DELETE FROM meta WHERE key = ?1")?.execute([key])? > 0)
    }

    /// The highest receipt number `author` used.
    pub fn last_receipt(&self, author: &AuthorId) -> Result<Option<ReceiptNo>> {
        let Some(row) = self.author(author)? else {
            return Ok(None);
        };
        let max = self.receipt_max_of(row.num)?;
        Ok((max > 0).then_some(ReceiptNo(max as u64)))
    }

    /// The highest receipt number of `author` held here, its forks and the
    /// evidence against it included (0 when none): a device enrolled in its
    /// place numbers its receipts above it.
    pub fn receipt_max_held(&self, author: &AuthorId) -> Result<u64> {
        let Some(row) = self.author(author)? else {
            return Ok(0);
        };
        let in_ops: i64 = self
            .tx
            .prepare_cached("SELECT COALESCE(MAX(receipt), 0) FROM ops WHERE author = ?1")?
            .query_row([row.num], |r| r.get(0))?;
        Ok(self.receipt_max_of(row.num)?.max(in_ops).max(0) as u64)
    }

    /// Whether an operation of the same kind with the same reference on the
    /// same wallet counts or awaits a verdict (a duplicate due payment or charge).
    pub fn reference_used(
        &self,
        kind: OpKind,
        reference: &str,
        consumer: &ConsumerId,
        service: &ServiceId,
    ) -> Result<bool> {
        self.with_lines()?
            .prepare_cached(
                "SELECT 1 FROM money_ops m JOIN money_lines l ON l.op_row = m.op_row
                 WHERE m.reference = ?2 AND m.kind = ?1
                   AND l.wallet = (SELECT num FROM wallets WHERE consumer = ?3 AND service = ?4)
                   AND (m.counts OR m.verdict IS NULL)",
            )?
            .exists(params![kind.name(), reference, &consumer.0[..], service.as_str()])
    }

    /// Counted operations of `author` with receipts in `first..=last`: (count, total cents, cash cents).
    pub fn receipt_range_totals(
        &self,
        author: &AuthorId,
        first: ReceiptNo,
        last: ReceiptNo,
    ) -> Result<(u64, i64, i64)> {
        self.tx
            .prepare_cached(
                "SELECT COUNT(*), COALESCE(SUM(total_minor), 0), COALESCE(SUM(CASE WHEN method = 'cash' THEN total_minor END), 0)
                 FROM money_ops WHERE author = (SELECT num FROM authors WHERE author = ?1) AND receipt BETWEEN ?2 AND ?3 AND counts",
            )?
            .query_row(params![&author.0[..], first.0 as i64, last.0 as i64], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?))
            })
    }

    /// Whether a counted daily close of `author` covers `receipt`.
    pub fn receipt_closed(&self, author: &AuthorId, receipt: ReceiptNo) -> Result<bool> {
        self.tx
            .prepare_cached(
                "SELECT 1 FROM money_ops WHERE author = (SELECT num FROM authors WHERE author = ?1) AND kind = 'daily-close' AND counts
                 AND range_first <= ?2 AND range_last >= ?2",
            )?
            .exists(params![&author.0[..], receipt.0 as i64])
    }

    /// The last movements on one wallet, newest first.
    pub fn movements(&self, consumer: &ConsumerId, service: &ServiceId, limit: u32) -> Result<Vec<MovementRow>> {
        let mut stmt = self.with_lines()?.prepare_cached(
            "SELECT o.id, (SELECT author FROM authors WHERE num = o.author), o.kind, o.receipt, o.method, o.hlc,
                    l.delta_minor, o.counts, o.counts_provisional, o.verdict, o.reason
             FROM money_lines l JOIN ops o ON o.row = l.op_row
             WHERE l.wallet = (SELECT num FROM wallets WHERE consumer = ?1 AND service = ?2)
             ORDER BY o.hlc DESC, o.row DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![&consumer.0[..], service.as_str(), limit], |r| {
            Ok(MovementRow {
                op: op_id(r.get(0)?)?,
                author: author_id(r.get(1)?)?,
                kind: r.get(2)?,
                receipt: r.get::<_, Option<i64>>(3)?.map(|n| n as u64),
                method: r.get(4)?,
                hlc: r.get::<_, i64>(5)? as u64,
                delta_minor: r.get(6)?,
                counts: r.get(7)?,
                counts_provisional: r.get(8)?,
                verdict: r.get(9)?,
                reason: r.get(10)?,
            })
        })?;
        rows.collect()
    }

    /// Operations whose effective verdict is "flagged" (awaiting review).
    pub fn flagged(&self, limit: u32) -> Result<Vec<FlaggedRow>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT o.id, (SELECT author FROM authors WHERE num = o.author), o.kind, o.reason, COALESCE(o.detail, ''), o.total_minor
             FROM ops o WHERE o.verdict = 'flagged' ORDER BY o.hlc LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |r| {
            Ok(FlaggedRow {
                op: op_id(r.get(0)?)?,
                author: author_id(r.get(1)?)?,
                kind: r.get(2)?,
                reason: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                detail: r.get(4)?,
                total_minor: r.get(5)?,
            })
        })?;
        rows.collect()
    }

    // ---- verdicts ---------------------------------------------------------

    /// The effective verdict on `target`, held with it or ahead of it.
    pub fn verdict(&self, target: &OpId) -> Result<Option<StoredVerdict>> {
        if let Some(row) = self.money_op(target)? {
            return Ok(row.verdict);
        }
        self.tx
            .prepare_cached("SELECT hub_seq, verdict, reason, detail, reviewer FROM early_verdicts WHERE target = ?1")?
            .query_row([&target.0[..]], stored_verdict)
            .optional()
    }

    /// Records the hub's verdict unless a later one (higher hub seq) is held.
    /// Returns whether the effective verdict of a held operation changed.
    pub fn put_verdict(&self, target: &OpId, hub_seq: Seq, verdict: &Verdict) -> Result<bool> {
        let (kind, reason, detail, reviewer) = verdict_parts(verdict);
        let held = self
            .tx
            .prepare_cached("SELECT row FROM ops WHERE id_key = ?1 AND id = ?2 AND counts IS NOT NULL")?
            .query_row(params![id_key(target), &target.0[..]], |r| r.get::<_, i64>(0))
            .optional()?;
        match held {
            Some(row) => {
                let changed = self
                    .tx
                    .prepare_cached(
                        "UPDATE ops SET verdict = ?2, verdict_seq = ?3, reason = ?4, detail = ?5, reviewer = ?6
                         WHERE row = ?1 AND (verdict_seq IS NULL OR verdict_seq < ?3)",
                    )?
                    .execute(params![row, kind, hub_seq.0 as i64, reason, detail, reviewer])?;
                Ok(changed > 0)
            }
            None => {
                self.tx
                    .prepare_cached(
                        "INSERT INTO early_verdicts (target, hub_seq, verdict, reason, detail, reviewer) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT (target) DO UPDATE SET hub_seq = excluded.hub_seq, verdict = excluded.verdict,
                            reason = excluded.reason, detail = excluded.detail, reviewer = excluded.reviewer
                         WHERE excluded.hub_seq > early_verdicts.hub_seq",
                    )?
                    .execute(params![&target.0[..], hub_seq.0 as i64, kind, reason, detail, reviewer])?;
                Ok(false)
            }
        }
    }

    /// Removes and returns the verdict that arrived before its operation.
    pub fn take_early_verdict(&self, target: &OpId) -> Result<Option<StoredVerdict>> {
        let found = self
            .tx
            .prepare_cached("SELECT hub_seq, verdict, reason, detail, reviewer FROM early_verdicts WHERE target = ?1")?
            .query_row([&target.0[..]], stored_verdict)
            .optional()?;
        if found.is_some() {
            self.tx.prepare_cached("DELETE FROM early_verdicts WHERE target = ?1")?.execute([&target.0[..]])?;
        }
        Ok(found)
    }

    /// Every effective verdict: (target, verdict kind, reason), ordered.
    pub fn all_verdicts(&self) -> Result<Vec<(OpId, String, Option<String>)>> {
        let mut stmt = self.tx.prepare(
            "SELECT id, verdict, reason FROM ops WHERE verdict IS NOT NULL
             UNION ALL SELECT target, verdict, reason FROM early_verdicts ORDER BY 1",
        )?;
        let rows = stmt.query_map([], |r| Ok((op_id(r.get(0)?)?, r.get(1)?, r.get(2)?)))?;
        rows.collect()
    }

    // ---- escrow and checkpoints --------------------------------------------

    pub fn add_escrow(&self, device: &AuthorId, consumer: &ConsumerId, service: &ServiceId, minor: i64) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO escrow (device, consumer, service, granted_minor) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO UPDATE SET granted_minor = granted_minor + excluded.granted_minor",
            )?
            .execute(params![&device.0[..], &consumer.0[..], service.as_str(), minor])?;
        Ok(())
    }

    /// A device's allowance for debits on a wallet: (granted, used), in
    /// cents. Used: the device's charges on the wallet that count or await
    /// the hub's verdict (a flagged charge uses none of it).
    pub fn escrow_of(&self, device: &AuthorId, consumer: &ConsumerId, service: &ServiceId) -> Result<(i64, i64)> {
        let granted: i64 = self
            .tx
            .prepare_cached("SELECT granted_minor FROM escrow WHERE device = ?1 AND consumer = ?2 AND service = ?3")?
            .query_row(params![&device.0[..], &consumer.0[..], service.as_str()], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        let used: i64 = self.with_lines()?.prepare_cached(
                "SELECT COALESCE(-SUM(l.delta_minor), 0) FROM money_lines l JOIN money_ops m ON m.op_row = l.op_row
                 WHERE l.wallet = (SELECT num FROM wallets WHERE consumer = ?2 AND service = ?3) AND m.author = (SELECT num FROM authors WHERE author = ?1) AND m.kind = 'service-charge'
                   AND (m.verdict IS NULL OR m.verdict IN ('accepted', 'review-accepted'))",
            )?
            .query_row(params![&device.0[..], &consumer.0[..], service.as_str()], |r| r.get(0))?;
        Ok((granted, used))
    }

    /// The wallets a device has an allowance on.
    pub fn escrow_wallets(&self, device: &AuthorId) -> Result<Vec<(ConsumerId, ServiceId)>> {
        let mut stmt = self.tx.prepare_cached("SELECT consumer, service FROM escrow WHERE device = ?1")?;
        let rows = stmt.query_map([&device.0[..]], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (consumer, service) = row?;
            out.push((consumer_id(consumer)?, service_id(&service)?));
        }
        Ok(out)
    }

    /// What all devices may still debit a wallet (granted minus used), in cents.
    pub fn escrow_outstanding(&self, consumer: &ConsumerId, service: &ServiceId) -> Result<i64> {
        let devices: Vec<Vec<u8>> = self
            .tx
            .prepare_cached("SELECT device FROM escrow WHERE consumer = ?1 AND service = ?2")?
            .query_map(params![&consumer.0[..], service.as_str()], |r| r.get(0))?
            .collect::<Result<_>>()?;
        let mut outstanding = 0;
        for device in devices {
            let (granted, used) = self.escrow_of(&author_id(device)?, consumer, service)?;
            outstanding += (granted - used).max(0);
        }
        Ok(outstanding)
    }

    /// Wallets whose confirmed balance changed since the last call.
    pub fn take_dirty_wallets(&self) -> Vec<(ConsumerId, ServiceId)> {
        let keys = self.wallet_keys.borrow();
        let mut dirty: Vec<(ConsumerId, ServiceId)> = std::mem::take(&mut *self.dirty_wallets.borrow_mut())
            .into_iter()
            .map(|num| keys.get(&num).expect("a changed wallet has its number known").clone())
            .collect();
        dirty.sort_unstable();
        dirty
    }

    /// A device keeps the hub's confirmed balance of a wallet as of the hub's
    /// seq `as_of` (an older checkpoint than the one held changes nothing);
    /// `state::place_on_checkpoint` then derives the wallet from it.
    pub fn apply_checkpoint(
        &self,
        consumer: &ConsumerId,
        service: &ServiceId,
        as_of: Seq,
        balance: Balance,
    ) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO checkpoints (consumer, service, as_of, balance_minor) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO UPDATE SET as_of = excluded.as_of, balance_minor = excluded.balance_minor
                 WHERE excluded.as_of > checkpoints.as_of",
            )?
            .execute(params![&consumer.0[..], service.as_str(), as_of.0 as i64, balance.minor()])?;
        Ok(())
    }

    /// The checkpoint held for a wallet: (as of hub seq, confirmed balance in cents).
    pub fn checkpoint(&self, consumer: &ConsumerId, service: &ServiceId) -> Result<Option<(Seq, i64)>> {
        self.tx
            .prepare_cached("SELECT as_of, balance_minor FROM checkpoints WHERE consumer = ?1 AND service = ?2")?
            .query_row(params![&consumer.0[..], service.as_str()], |r| Ok((seq_of(r.get(0)?), r.get(1)?)))
            .optional()
    }

    /// Every line on a wallet with what a device needs to place it against a
    /// checkpoint: (delta, counts now, counts provisionally now, counted by
    /// the hub as of `as_of`).
    pub fn wallet_lines_against(
        &self,
        consumer: &ConsumerId,
        service: &ServiceId,
        hub: &AuthorId,
        as_of: Seq,
    ) -> Result<Vec<(i64, bool, bool, bool)>> {
        // At `as_of` an operation counted if the hub had recorded it (its own)
        // or had accepted it by then, and no reversal counted by then. A
        // verdict is only ever replaced by a review of a flagged operation,
        // so a latest verdict taken after `as_of` means it did not count then.
        let mut stmt = self.with_lines()?.prepare_cached(
            "SELECT l.delta_minor, o.counts, o.counts_provisional,
                    COALESCE((CASE WHEN o.author = (SELECT num FROM authors WHERE author = ?3) THEN o.seq <= ?4
                          ELSE o.verdict IN ('accepted', 'review-accepted') AND o.verdict_seq <= ?4 END), 0)
                    AND NOT EXISTS (
                        SELECT 1 FROM ops r
                        WHERE r.reverses = o.id
                          AND COALESCE((CASE WHEN r.author = (SELECT num FROM authors WHERE author = ?3) THEN r.seq <= ?4
                                    ELSE r.verdict IN ('accepted', 'review-accepted') AND r.verdict_seq <= ?4 END), 0))
             FROM money_lines l JOIN ops o ON o.row = l.op_row
             WHERE l.wallet = (SELECT num FROM wallets WHERE consumer = ?1 AND service = ?2)",
        )?;
        let rows = stmt.query_map(params![&consumer.0[..], service.as_str(), &hub.0[..], as_of.0 as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        rows.collect()
    }

    /// Sets a wallet's balances outright.
    pub fn set_wallet(
        &self,
        consumer: &ConsumerId,
        service: &ServiceId,
        confirmed: i64,
        provisional: i64,
    ) -> Result<()> {
        self.flush_wallets()?;
        self.tx
            .prepare_cached(
                "INSERT INTO wallets (consumer, service, num, confirmed_minor, provisional_minor)
                 VALUES (?1, ?2, (SELECT COALESCE(MAX(num), 0) + 1 FROM wallets), ?3, ?4)
                 ON CONFLICT DO UPDATE SET confirmed_minor = ?3, provisional_minor = ?4",
            )?
            .execute(params![&consumer.0[..], service.as_str(), confirmed, provisional])?;
        Ok(())
    }

    // ---- directory ----------------------------------------------------------

    pub fn add_dir_change(&self, doc: &str, op_row: i64) -> Result<()> {
        self.tx
            .prepare_cached("INSERT OR IGNORE INTO dir_changes (doc, op_row) VALUES (?1, ?2)")?
            .execute(params![doc, op_row])?;
        Ok(())
    }

    /// The stored operations carrying changes of `doc`.
    pub fn dir_change_ops(&self, doc: &str) -> Result<Vec<Vec<u8>>> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT o.bytes FROM dir_changes d JOIN ops o ON o.row = d.op_row WHERE d.doc = ?1")?;
        let rows = stmt.query_map([doc], |r| r.get(0))?;
        rows.collect()
    }

    pub fn put_service(&self, service: &crate::directory::ServiceRecord) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO services (service, name, floor_minor, tariff_minor) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (service) DO UPDATE SET name = excluded.name, floor_minor = excluded.floor_minor,
                    tariff_minor = excluded.tariff_minor",
            )?
            .execute(params![
                service.id.as_str(),
                service.name.as_str(),
                service.floor.minor(),
                service.tariff.map(|t| t.minor())
            ])?;
        Ok(())
    }

    pub fn service(&self, service: &ServiceId) -> Result<Option<crate::directory::ServiceRecord>> {
        self.tx
            .prepare_cached("SELECT service, name, floor_minor, tariff_minor FROM services WHERE service = ?1")?
            .query_row([service.as_str()], service_row)
            .optional()
    }

    pub fn services(&self) -> Result<Vec<crate::directory::ServiceRecord>> {
        let mut stmt =
            self.tx.prepare_cached("SELECT service, name, floor_minor, tariff_minor FROM services ORDER BY service")?;
        let rows = stmt.query_map([], service_row)?;
        rows.collect()
    }

    /// Replaces the materialised rows of one family.
    pub fn put_family(&self, family: &crate::directory::FamilyRecord) -> Result<()> {
        self.directory_version.set(self.directory_version.get() + 1);
        let family_blob = &family.id.0[..];
        self.tx
            .prepare_cached(
                "INSERT INTO families (family, payer_fiscal_code, payer_surname, payer_name) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (family) DO UPDATE SET payer_fiscal_code = excluded.payer_fiscal_code,
                    payer_surname = excluded.payer_surname, payer_name = excluded.payer_name",
            )?
            .execute(params![
                family_blob,
                family.payer.fiscal_code.as_str(),
                family.payer.surname.as_str(),
                family.payer.name.as_str()
            ])?;
        let old: Vec<Vec<u8>> = self
            .tx
            .prepare_cached("SELECT consumer FROM consumers WHERE family = ?1")?
            .query_map([&family_blob], |r| r.get(0))?
            .collect::<Result<_>>()?;
        for consumer in old {
            self.tx.prepare_cached("DELETE FROM search_keys WHERE consumer = ?1")?.execute([&consumer])?;
            self.tx.prepare_cached("DELETE FROM consumer_services WHERE consumer = ?1")?.execute([&consumer])?;
            self.tx.prepare_cached("DELETE FROM consumers WHERE consumer = ?1")?.execute([&consumer])?;
        }
        for consumer in family.consumers.values() {
            let id = &consumer.id.0[..];
            self.tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO consumers (consumer, family, pan, fiscal_code, surname, name, school, class)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![
                    id,
                    family_blob,
                    consumer.pan.as_str(),
                    consumer.person.fiscal_code.as_str(),
                    consumer.person.surname.as_str(),
                    consumer.person.name.as_str(),
                    consumer.school.as_ref().map(|s| s.as_str()),
                    consumer.class.as_ref().map(|s| s.as_str()),
                ])?;
            for service in &consumer.services {
                self.tx
                    .prepare_cached("INSERT OR IGNORE INTO consumer_services (consumer, service) VALUES (?1, ?2)")?
                    .execute(params![id, service.as_str()])?;
            }
            for key in crate::search::keys_for(consumer.person.surname.as_str(), consumer.person.name.as_str()) {
                self.tx
                    .prepare_cached("INSERT OR IGNORE INTO search_keys (key, consumer) VALUES (?1, ?2)")?
                    .execute(params![key, id])?;
            }
        }
        Ok(())
    }

    pub fn put_contacts(&self, family: &FamilyId, contacts: &crate::directory::ContactRecord) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO contacts (family, email, phone) VALUES (?1, ?2, ?3)
                 ON CONFLICT (family) DO UPDATE SET email = excluded.email, phone = excluded.phone",
            )?
            .execute(params![
                &family.0[..],
                contacts.email.as_ref().map(|e| e.as_str()),
                contacts.phone.as_ref().map(|p| p.as_str())
            ])?;
        Ok(())
    }

    /// (email, phone) of a family.
    pub fn contacts(&self, family: &FamilyId) -> Result<Option<(Option<String>, Option<String>)>> {
        self.tx
            .prepare_cached("SELECT email, phone FROM contacts WHERE family = ?1")?
            .query_row([&family.0[..]], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
    }

    pub fn consumer(&self, consumer: &ConsumerId) -> Result<Option<ConsumerRow>> {
        self.tx
            .prepare_cached(&format!("{CONSUMER_SELECT} WHERE consumer = ?1"))?
            .query_row([&consumer.0[..]], consumer_row)
            .optional()
    }

    pub fn consumer_by_pan(&self, pan: &Pan) -> Result<Option<ConsumerRow>> {
        self.tx
            .prepare_cached(&format!("{CONSUMER_SELECT} WHERE pan = ?1"))?
            .query_row([pan.as_str()], consumer_row)
            .optional()
    }

    /// Consumers whose own codice fiscale, or whose payer's, is `fiscal_code`.
    pub fn consumers_by_fiscal_code(&self, fiscal_code: &str) -> Result<Vec<ConsumerRow>> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "{CONSUMER_SELECT} WHERE fiscal_code = ?1
             UNION {CONSUMER_SELECT} WHERE family IN (SELECT family FROM families WHERE payer_fiscal_code = ?1)
             ORDER BY surname, name"
        ))?;
        let rows = stmt.query_map([fiscal_code], consumer_row)?;
        rows.collect()
    }

    /// Consumers with a search key starting with `prefix`, in key order.
    pub fn consumers_by_key_prefix(&self, prefix: &str, limit: u32) -> Result<Vec<ConsumerRow>> {
        let upper = format!("{prefix}\u{10FFFF}");
        let ids: Vec<Vec<u8>> = self
            .tx
            .prepare_cached("SELECT consumer FROM search_keys WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3")?
            .query_map(params![prefix, upper, limit * 4], |r| r.get(0))?
            .collect::<Result<_>>()?;
        let mut out: Vec<ConsumerRow> = Vec::new();
        for id in ids {
            if out.len() as u32 >= limit {
                break;
            }
            let id = consumer_id(id)?;
            if out.iter().any(|c| c.consumer == id) {
                continue;
            }
            if let Some(row) = self.consumer(&id)? {
                out.push(row);
            }
        }
        Ok(out)
    }

    pub fn consumer_services(&self, consumer: &ConsumerId) -> Result<Vec<ServiceId>> {
        let mut stmt =
            self.tx.prepare_cached("SELECT service FROM consumer_services WHERE consumer = ?1 ORDER BY service")?;
        let rows = stmt.query_map([&consumer.0[..]], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            if let Ok(id) = ServiceId::parse(&row?) {
                out.push(id);
            }
        }
        Ok(out)
    }

    pub fn is_enrolled(&self, consumer: &ConsumerId, service: &ServiceId) -> Result<bool> {
        let key = self.service_slot(service).map(|slot| (*consumer, slot));
        let version = self.directory_version.get();
        let known = key.and_then(|key| self.wallets.borrow().get(&key)?.enrolled);
        if let Some((enrolled, as_of)) = known
            && as_of == version
        {
            return Ok(enrolled);
        }
        let enrolled = self.hot(Hot::IsEnrolled)?.exists(params![&consumer.0[..], service.as_str()])?;
        if let Some(key) = key {
            self.wallets.borrow_mut().entry(key).or_default().enrolled = Some((enrolled, version));
        }
        Ok(enrolled)
    }

    pub fn consumer_count(&self) -> Result<u64> {
        self.tx.query_row("SELECT COUNT(*) FROM consumers", [], |r| r.get::<_, i64>(0)).map(|n| n as u64)
    }

    pub fn family_count(&self) -> Result<u64> {
        self.tx.query_row("SELECT COUNT(*) FROM families", [], |r| r.get::<_, i64>(0)).map(|n| n as u64)
    }

    /// A materialised view of the directory for comparisons: one line per consumer.
    pub fn directory_digest(&self) -> Result<Vec<String>> {
        let mut stmt = self.tx.prepare(
            "SELECT c.consumer, c.family, c.pan, c.fiscal_code, c.surname, c.name, COALESCE(c.school, ''), COALESCE(c.class, ''),
                    (SELECT group_concat(service, ';') FROM (SELECT service FROM consumer_services s WHERE s.consumer = c.consumer ORDER BY service))
             FROM consumers c ORDER BY c.consumer",
        )?;
        let rows = stmt.query_map([], |r| {
            let mut line = String::new();
            for i in 0..9 {
                let value: rusqlite::types::Value = r.get(i)?;
                line.push_str(&format!("{value:?}|"));
            }
            Ok(line)
        })?;
        rows.collect()
    }
}

const CONSUMER_SELECT: &str = "SELECT consumer, family, pan, fiscal_code, surname, name, school, class FROM consumers";

fn consumer_row(r: &rusqlite::Row<'_>) -> Result<ConsumerRow> {
    Ok(ConsumerRow {
        consumer: consumer_id(r.get(0)?)?,
        family: FamilyId::from_slice(&r.get::<_, Vec<u8>>(1)?)
            .ok_or_else(|| rusqlite::Error::InvalidColumnType(1, "family".into(), rusqlite::types::Type::Blob))?,
        pan: r.get(2)?,
        fiscal_code: r.get(3)?,
        surname: r.get(4)?,
        name: r.get(5)?,
        school: r.get(6)?,
        class: r.get(7)?,
    })
}

/// An operation on money, from the log: add `AND` conditions on `o`.
const MONEY_SELECT: &str = "SELECT o.row, o.id, (SELECT author FROM authors WHERE num = o.author), o.kind, o.receipt,
    o.reference, o.reverses, o.method, o.total_minor, o.hlc, o.counts, o.counts_provisional, o.verdict_seq, o.verdict,
    o.reason, o.detail, o.reviewer
    FROM ops o WHERE o.counts IS NOT NULL";

fn money_op_row(r: &rusqlite::Row<'_>) -> Result<MoneyOpRow> {
    let reverses: Option<Vec<u8>> = r.get(6)?;
    let verdict = match r.get::<_, Option<i64>>(12)? {
        Some(seq) => Some(StoredVerdict {
            hub_seq: seq_of(seq),
            verdict: verdict_of(r.get(13)?, r.get(14)?, r.get(15)?, r.get(16)?),
        }),
        None => None,
    };
    Ok(MoneyOpRow {
        row: r.get(0)?,
        id: op_id(r.get(1)?)?,
        author: author_id(r.get(2)?)?,
        kind: r.get(3)?,
        receipt: r.get::<_, Option<i64>>(4)?.map(|n| ReceiptNo(n as u64)),
        reference: r.get(5)?,
        reverses: reverses.map(op_id).transpose()?,
        method: r.get(7)?,
        total_minor: r.get(8)?,
        hlc: r.get::<_, i64>(9)? as u64,
        counts: r.get(10)?,
        counts_provisional: r.get(11)?,
        verdict,
    })
}

fn stored_verdict(r: &rusqlite::Row<'_>) -> Result<StoredVerdict> {
    Ok(StoredVerdict { hub_seq: seq_of(r.get(0)?), verdict: verdict_of(r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?) })
}

fn verdict_of(kind: String, reason: Option<String>, detail: Option<String>, reviewer: Option<String>) -> Verdict {
    match kind.as_str() {
        "accepted" => Verdict::Accepted,
        "flagged" => Verdict::Flagged {
            reason: reason.as_deref().and_then(FlagReason::from_code).unwrap_or(FlagReason::RoleNotAllowed),
            detail: label_or_dash(detail),
        },
        "review-accepted" => Verdict::ReviewAccepted { operator: label_or_dash(reviewer), note: label_or_dash(detail) },
        _ => Verdict::ReviewRejected { operator: label_or_dash(reviewer), note: label_or_dash(detail) },
    }
}

/// An operation id's first 8 bytes as the integer key of the `ops_by_id` index.
fn id_key(id: &OpId) -> i64 {
    i64::from_le_bytes(id.0[..8].try_into().expect("an id has 32 bytes"))
}

fn service_row(r: &rusqlite::Row<'_>) -> Result<crate::directory::ServiceRecord> {
    let bad = |what: &str| rusqlite::Error::InvalidColumnType(1, what.into(), rusqlite::types::Type::Text);
    Ok(crate::directory::ServiceRecord {
        id: service_id(&r.get::<_, String>(0)?)?,
        name: Label::parse(&r.get::<_, String>(1)?).map_err(|_| bad("service name"))?,
        floor: Balance::from_minor(r.get(2)?).ok_or_else(|| bad("floor"))?,
        tariff: r.get::<_, Option<i64>>(3)?.and_then(|m| saldo_sync::Amount::from_minor(m).ok()),
    })
}

fn service_id(text: &str) -> Result<ServiceId> {
    ServiceId::parse(text)
        .map_err(|_| rusqlite::Error::InvalidColumnType(1, "service".into(), rusqlite::types::Type::Text))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::directory::{ConsumerRecord, FamilyRecord, Person};
    use saldo_sync::{CodiceFiscale, FamilyId, Pan, PersonName};

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
        tx.commit().expect("commit");
        let tx = node.write().expect("write");
        assert!(tx.is_enrolled(&CONSUMER, &mensa).expect("read"));
        tx.commit().expect("commit");

        let mut command = Store::open(&path).expect("second connection");
        let tx = command.write().expect("write");
        tx.put_family(&family(&[&bus])).expect("family changed");
        tx.commit().expect("commit");

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
        tx.commit().expect("commit");
        let tx = store.write().expect("write");
        assert_eq!(
            tx.wallet_num(&CONSUMER, &many[SERVICE_SLOTS_MAX + 5]).expect("number"),
            numbers[SERVICE_SLOTS_MAX + 5]
        );
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
            assert_eq!(
                remembered.wallet_keys.get(&num),
                Some(&(*consumer, remembered.services[*slot as usize].clone()))
            );
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
        tx.commit().expect("commit");
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
        tx.commit().expect("commit");

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
        tx.commit().expect("commit");
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
        tx.commit().expect("commit");
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
        let mut store =
            Store { conn, remembered: Remembered::default(), read_only_on_full_disk: false, writers: Writers::alone() };
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
}
