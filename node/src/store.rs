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

use rusqlite::{Connection, TransactionBehavior, params};

use crate::writers::Writers;
use saldo_sync::{AuthorId, ConsumerId, OpId, Role, Seq, ServiceId};

mod days;
mod directory;
mod family;
mod hub_lists;
mod idempotency;
mod log;
mod meta;
mod money;
mod notify;
pub mod operators;
pub mod outbox;
mod receipts;
mod reports;
mod schema;
mod verdicts;

pub use days::{DayReceipt, TillOp};
pub use directory::ConsumerRow;
pub use hub_lists::FamilyRow;
pub use idempotency::Remembered as RememberedRequest;
pub use log::AuthorRow;
pub use money::{MoneyOpRow, MovementRow, NewMoneyOp, WalletNum, WalletRow};
pub use reports::{ReportOp, YearLine};
use schema::migrations;
pub use verdicts::{FlaggedRow, StoredVerdict};

/// Why the store could not do what it was asked: SQLite's own errors, and
/// the store's cases. Nothing above `store` sees `rusqlite` types.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused or failed (a locked database, a full disk, damage).
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The store was opened on a full disk to read: it writes nothing.
    #[error("database or disk is full: this node was opened on a full disk to read, and writes nothing")]
    OpenedOnFullDisk,
}

impl StoreError {
    /// Another connection held the database for longer than a writer
    /// waits ("database is locked").
    pub fn is_busy(&self) -> bool {
        matches!(self, StoreError::Sqlite(e) if is_busy(e))
    }

    /// The disk (or the database's size limit) is full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Sqlite(e) => e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull),
            StoreError::OpenedOnFullDisk => true,
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

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
pub(crate) fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(error.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
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
    /// Wallets whose balances committed transactions moved, until taken.
    moved: RefCell<MovedWallets>,
    /// Whether a committed transaction may have left receipts due (see
    /// `outbox::queue::receipt_counted`); true at first, for those a
    /// previous process left.
    receipts_due: std::cell::Cell<bool>,
}

/// Wallets whose balances moved, as committed transactions leave them for
/// [`Store::take_moved_wallets`] (the service layer's balance events).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MovedWallets {
    pub wallets: Vec<(ConsumerId, ServiceId)>,
    /// More moved than are listed (a catch-up): a listener reloads.
    pub overflowed: bool,
}

impl MovedWallets {
    /// Most wallets listed before the rest is only said to have moved.
    pub const LISTED_MAX: usize = 4_096;

    fn add(&mut self, moved: Vec<(ConsumerId, ServiceId)>) {
        if self.overflowed {
            return;
        }
        self.wallets.extend(moved);
        self.wallets.sort_unstable();
        self.wallets.dedup();
        if self.wallets.len() > Self::LISTED_MAX {
            self.wallets.clear();
            self.overflowed = true;
        }
    }
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
    /// Balances of wallets by number, as the table holds them.
    wallet_base: HashMap<i64, (i64, i64)>,
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
    /// A wallet takes three entries, about 180 bytes: a realm of 125,000
    /// wallets (some 22 MB) is remembered whole.
    const ENTRIES_MAX: usize = 375_000;

    /// Forgets every other wallet when there are more than `max` entries,
    /// so that a realm too large to remember whole still finds half of its
    /// wallets here (forgetting all of them would leave every transaction
    /// to start from nothing). Every number remembered keeps its wallet.
    fn fit(&mut self, max: usize) {
        if self.wallets.len() + self.wallet_keys.len() + self.wallet_base.len() <= max {
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
        let keys = &self.wallet_keys;
        self.wallet_base.retain(|num, _| keys.contains_key(num));
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
        // Plans that never depend on the values bound: without this, SQLite
        // compiles a cached statement again each time a value it planned
        // with changes (a `LIMIT ?`: the receipt's last top-ups were
        // prepared anew at every top-up, a tenth of a cash point's time).
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map_err(sqlite)?;
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
        Ok(Store {
            conn,
            remembered: Remembered::default(),
            read_only_on_full_disk: false,
            writers,
            moved: RefCell::default(),
            receipts_due: std::cell::Cell::new(true),
        })
    }

    /// Starts a write transaction, taking the write lock now. While another
    /// connection holds it, this one says it waits, so that bulk work lets
    /// it through before its next transaction.
    pub fn write(&mut self) -> Result<Tx<'_>> {
        self.refuse_on_full_disk()?;
        let waiting = self.writers.wait();
        let tx = Tx::new(&self.conn, TransactionBehavior::Immediate);
        drop(waiting);
        let tx = with_remembered(tx?, &mut self.remembered)?;
        Ok(Tx { moved_home: Some(&self.moved), receipts_due_home: Some(&self.receipts_due), ..tx })
    }

    /// The wallets committed transactions moved since the last call.
    pub fn take_moved_wallets(&self) -> MovedWallets {
        std::mem::take(&mut *self.moved.borrow_mut())
    }

    /// Whether receipts may be due: a transaction committed since
    /// [`Store::no_receipts_due`] noted one (or this store just opened).
    pub fn receipts_maybe_due(&self) -> bool {
        self.receipts_due.get()
    }

    /// Notes that receipts may be due (another process may have written some).
    pub fn receipts_may_be_due(&self) {
        self.receipts_due.set(true);
    }

    /// Notes that no receipt is due (all were expanded).
    pub fn no_receipts_due(&self) {
        self.receipts_due.set(false);
    }

    /// Starts a write transaction of bulk work (an import, a catch-up): first
    /// lets every connection waiting to write go first ([`crate::writers`]).
    /// [`Tx::writers_waiting`] says when to commit early for another.
    pub fn write_after_waiting_writers(&mut self) -> Result<Tx<'_>> {
        self.refuse_on_full_disk()?;
        self.writers.give_way();
        let tx = Tx::new(&self.conn, TransactionBehavior::Immediate)?;
        let tx = with_remembered(tx, &mut self.remembered)?;
        Ok(Tx {
            writers: Some(&self.writers),
            moved_home: Some(&self.moved),
            receipts_due_home: Some(&self.receipts_due),
            ..tx
        })
    }

    /// A store opened for reading on a full disk writes nothing.
    fn refuse_on_full_disk(&self) -> Result<()> {
        if self.read_only_on_full_disk {
            return Err(StoreError::OpenedOnFullDisk);
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

    /// How many pages the write-ahead log holds that are not in the database yet.
    #[cfg(test)]
    pub(crate) fn wal_frames_left(&self) -> Result<i64> {
        let (log, copied) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(NOOP)", [], |r| Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))?;
        Ok(log - copied.max(0))
    }

    /// How many pages the database holds.
    pub fn page_count(&self) -> Result<u64> {
        self.conn
            .query_row("PRAGMA page_count", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(crate::store::StoreError::from)
    }

    /// Caps the database at `pages` pages for this connection (SQLite's
    /// `max_page_count`): a write past it fails as on a full disk
    /// (SQLITE_FULL). Tests use it to fill the disk without filling one.
    pub fn limit_pages(&self, pages: u64) -> Result<u64> {
        self.conn
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(crate::store::StoreError::from)
    }

    /// Opened with exclusive locking on a full disk: no other connection
    /// can read the database while this one is open.
    pub fn is_exclusive(&self) -> bool {
        self.read_only_on_full_disk
    }

    pub fn integrity_check(&self) -> Result<String> {
        self.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(crate::store::StoreError::from)
    }

    /// Every row of every table, in a stable order: what tests compare to
    /// show that a refused input changed nothing.
    pub fn dump(&self) -> Result<Vec<String>> {
        let mut tables: Vec<String> = {
            let mut stmt = self.conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")?;
            stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
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
                .collect::<rusqlite::Result<_>>()?;
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
    *tx.wallet_base.borrow_mut() = remembered.wallet_base;
    Ok(Tx { home: Some((home, data_version)), ..tx })
}

fn op_id(bytes: Vec<u8>) -> rusqlite::Result<OpId> {
    OpId::from_slice(&bytes)
        .ok_or_else(|| rusqlite::Error::InvalidColumnType(0, "op id".into(), rusqlite::types::Type::Blob))
}

fn author_id(bytes: Vec<u8>) -> rusqlite::Result<AuthorId> {
    AuthorId::from_slice(&bytes)
        .ok_or_else(|| rusqlite::Error::InvalidColumnType(0, "author".into(), rusqlite::types::Type::Blob))
}

fn consumer_id(bytes: Vec<u8>) -> rusqlite::Result<ConsumerId> {
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

fn role_of(name: &str) -> rusqlite::Result<Role> {
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
    /// Balances as the `wallets` table holds them (by number), as read
    /// (here or by an earlier transaction of this connection) and moved by
    /// `wallet_deltas` each time those are written there: the hub reads a
    /// wallet's balance for each receipt and checkpoint, often several
    /// times a transaction, and the same wallets transaction after
    /// transaction.
    wallet_base: RefCell<HashMap<i64, (i64, i64)>>,
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
    /// Wallets whose balances this transaction moved, and where they go
    /// once it commits.
    moved: RefCell<Vec<(ConsumerId, ServiceId)>>,
    moved_home: Option<&'a RefCell<MovedWallets>>,
    /// Whether this transaction noted a receipt due, and where that goes
    /// once it commits.
    receipts_due: std::cell::Cell<bool>,
    receipts_due_home: Option<&'a std::cell::Cell<bool>>,
    /// Receipts due to write, as the text of each row of
    /// `receipts_due_groups` and how many receipts it holds: written at
    /// commit, and before anything reads them.
    receipts_due_pending: RefCell<Vec<(String, usize)>>,
    /// Services' reminder settings read in this transaction (the hub reads
    /// them for every wallet a counted operation moves); forgotten when a
    /// service is written.
    service_reminders: RefCell<HashMap<ServiceId, Option<notify::Reminders>>>,
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
            wallet_base: RefCell::default(),
            wallets: RefCell::default(),
            wallet_keys: RefCell::default(),
            directory_version: std::cell::Cell::default(),
            services: RefCell::default(),
            receipts_max: RefCell::default(),
            receipts_dirty: RefCell::default(),
            lines_pending: RefCell::default(),
            home: None,
            writers: None,
            moved: RefCell::default(),
            moved_home: None,
            receipts_due: std::cell::Cell::default(),
            receipts_due_home: None,
            receipts_due_pending: RefCell::default(),
            service_reminders: RefCell::default(),
        })
    }

    /// Commits the transaction. It takes the proof that the hub signed the
    /// checkpoints of the balances this transaction changed, which only
    /// `Me::commit` makes (after signing them): there is no other way to
    /// commit (invariant 9 of ARCHITECTURE.md).
    pub fn commit(self, _signed: crate::node::CheckpointsSigned) -> Result<()> {
        self.commit_unchecked()
    }

    /// What the store's own tests commit with: no node, no checkpoints.
    #[cfg(test)]
    pub(crate) fn commit_in_store_test(self) -> Result<()> {
        self.commit_unchecked()
    }

    /// Writes the rows this transaction holds back until its commit (heads,
    /// receipt numbers, balances, running totals, lines, receipts due), so
    /// that its commit has less left to do: a bulk ingest does it while
    /// other threads still check signatures. A balance changed before and
    /// after is then written twice.
    pub fn write_held_back(&self) -> Result<()> {
        self.flush_heads()?;
        self.flush_receipts()?;
        self.flush_wallets()?;
        self.flush_running()?;
        self.flush_lines()?;
        self.flush_receipts_due()
    }

    fn commit_unchecked(self) -> Result<()> {
        self.write_held_back()?;
        let Tx {
            hot,
            tx,
            home,
            wallets,
            wallet_keys,
            wallet_base,
            directory_version,
            services,
            moved,
            moved_home,
            receipts_due,
            receipts_due_home,
            ..
        } = self;
        drop(hot);
        tx.commit()?;
        if let (Some(home), true) = (receipts_due_home, receipts_due.get()) {
            home.set(true);
        }
        if let Some(home) = moved_home {
            home.borrow_mut().add(moved.into_inner());
        }
        if let Some((remembered, data_version)) = home {
            let (wallets, wallet_keys, wallet_base, services) =
                (wallets.into_inner(), wallet_keys.into_inner(), wallet_base.into_inner(), services.into_inner());
            let directory_version = directory_version.get();
            *remembered = Remembered { data_version, services, wallets, wallet_keys, wallet_base, directory_version };
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
        // The table moves: what was read of it moves with it.
        let mut base = self.wallet_base.borrow_mut();
        let keys = self.wallet_keys.borrow();
        type Wallet = (ConsumerId, ServiceId);
        let mut deltas: Vec<(&Wallet, (i64, i64))> = deltas
            .into_iter()
            .filter(|(_, delta)| *delta != (0, 0))
            .map(|(num, delta)| {
                if let Some(known) = base.get_mut(&num) {
                    *known = (known.0 + delta.0, known.1 + delta.1);
                }
                (keys.get(&num).expect("a wallet with a delta has its number known"), delta)
            })
            .collect();
        drop(base);
        deltas.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut moved = self.moved.borrow_mut();
        for ((consumer, service), (confirmed, provisional)) in deltas {
            self.hot(Hot::AddToWallet)?.execute(params![&consumer.0[..], service.as_str(), confirmed, provisional])?;
            if moved.len() <= MovedWallets::LISTED_MAX {
                moved.push((*consumer, service.clone()));
            }
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
        self.author(author)?
            .map(|row| row.num)
            .ok_or(crate::store::StoreError::from(rusqlite::Error::QueryReturnedNoRows))
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
}

/// An operation id's first 8 bytes as the integer key of the `ops_by_id` index.
fn id_key(id: &OpId) -> i64 {
    i64::from_le_bytes(id.0[..8].try_into().expect("an id has 32 bytes"))
}

#[cfg(test)]
mod tests;
