//! A node: its identity, its store and what it can do with them. Recording
//! an operation and ingesting operations from elsewhere both end in the same
//! [`state::apply`], inside one write transaction that commits before the
//! caller is told anything ("acknowledged only once durable").

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use saldo_sync::op::VERDICTS_PER_OP_MAX;
use saldo_sync::{AuthorId, Body, Decision, DeviceKey, Label, OfflineLimits, RealmId, Role};

use crate::directory;
use crate::search::QueryError;
use crate::state::{Context, IngestError};
use crate::store::{OpenError, Store};

mod operators;
mod own_log;
pub use operators::{AuthError, OperatorError, Password};
pub use own_log::{OWN_LOG_CHECK_MS, OwnLogHold};

mod api_views;
mod counter;
mod delivery;
mod hub_views;
mod ingest;
mod money_requests;
mod outbox_views;
mod peers;
mod query;
mod reader;
mod record;
mod reports;
mod verify;
mod views;

pub use counter::{Once, TopUpCall, VERIFICATION_CODE_BYTES, local_time, verification_code};
pub use hub_views::FLAGGED_LISTED_MAX;
pub use money_requests::day_of_ms;
pub use outbox_views::{ResendOutcome, RetryOutcome};
pub use peers::{BundleReport, FrontierHolder};
pub use reader::{META_PUBLIC_URL, WalletChanges, wall_now_ms};
pub use record::{CheckpointsSigned, WalletBelowFloor, check_limits};
pub use verify::{VERIFY_PART_OPS, VerifyReport};
pub use views::{BalanceView, ConsumerView, MovementView, Receipt, ReceiptLine, TopUpRequestLine, WalletView};

/// The database file inside a data directory.
pub const DATABASE_FILE: &str = "saldo.db";
/// The device's secret key inside a data directory.
pub const KEY_FILE: &str = "device.key";
/// The hub's contact-data key inside a data directory.
pub const CONTACTS_KEY_FILE: &str = "contacts.key";
/// Most operations ingested in one transaction. A large ingest (a bundle,
/// a long catch-up) commits every so many: fewer, larger transactions write
/// each page of the hub's indexes on random keys (operation ids, wallets)
/// once per transaction rather than once per 10,000 operations, which is
/// what made the bytes written per operation grow with the log.
pub const OPS_PER_BATCH_MAX: usize = 50_000;
/// Longest one transaction of bulk work on a data directory others write to
/// (a bundle import, a catch-up, a CSV import) works before it commits and
/// lets a waiting top-up through: its commit adds a few milliseconds.
pub const BULK_TRANSACTION_WORK_MS_MAX: u64 = 40;

/// How often short transactions of an ingest look whether another
/// connection waits to write (one system call), in operations.
const WAITING_CHECK_OPS: usize = 64;

/// How much one transaction of an ingest holds: at most `ops_max`
/// operations, and at most `work_max` of work when given. The caller
/// chooses: the hub's bulk ingest stores fastest in few, large transactions;
/// work that a top-up at the counter may wait behind, in short ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransactionBound {
    pub ops_max: usize,
    pub work_max: Option<std::time::Duration>,
}

impl TransactionBound {
    /// Few, large transactions, of [`OPS_PER_BATCH_MAX`] operations (and
    /// always the same ones for the same operations: the simulation
    /// replays a seed exactly).
    pub const LARGE: TransactionBound = TransactionBound { ops_max: OPS_PER_BATCH_MAX, work_max: None };
    /// Transactions of at most [`BULK_TRANSACTION_WORK_MS_MAX`] of work,
    /// that end early when another connection waits to write: a top-up
    /// waits behind a few operations.
    pub const SHORT: TransactionBound = TransactionBound {
        ops_max: OPS_PER_BATCH_MAX,
        work_max: Some(std::time::Duration::from_millis(BULK_TRANSACTION_WORK_MS_MAX)),
    };
}

/// The write-ahead log pages above which a multi-part ingest copies the log
/// into the database before its last transaction, while helper threads
/// check signatures: SQLite would otherwise do it inside the commit that
/// takes the log past `wal_autocheckpoint` (16,384 pages), most often the
/// last one of a call, with every other core idle and the caller waiting.
pub const WAL_FRAMES_CHECKPOINTED_EARLY: i64 = 4_096;
/// In the last transaction of a multi-part ingest, the share of its
/// operations (1 in this many) still to store when it writes out the rows a
/// transaction holds back until its commit (lines, balances, receipts due):
/// written while helper threads still check signatures, not in the final
/// commit, which nothing can run beside.
const LAST_TRANSACTION_WRITTEN_EARLY_AT: usize = 8;
/// Movements shown with a balance.
pub const MOVEMENTS_SHOWN: u32 = 10;

const META_REALM: &str = "realm";
const META_REALM_NAME: &str = "realm_name";
const META_LAST_HLC: &str = "last_hlc";
/// How long the hub's log stays quiet before the hub writes a heartbeat.
pub const HEARTBEAT_AFTER: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// Wall-clock time, injectable so tests and the simulator are deterministic.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> u64;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{path} already holds a Saldo node: choose an empty directory")]
    AlreadyInitialised { path: String },
    #[error(
        "{path} holds no Saldo node: create one with `saldo realm init --data {path} --name NAME` (or `saldo demo`)"
    )]
    NotInitialised { path: String },
    #[error("cannot use {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("the key file {path} is damaged: it must hold 32 bytes")]
    BadKey { path: String },
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("storage failure: {0}")]
    Storage(#[source] crate::store::StoreError),
    #[error(
        "another process is writing to this data directory (an import?) and did not let go of it for {} s: try again",
        crate::store::WRITE_WAIT_MAX.as_secs()
    )]
    Busy,
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("no consumer has PAN {0}: check the card, or search by name or codice fiscale")]
    UnknownPan(String),
    #[error(
        "consumer {0} is not in this node's directory (yet): sync with the hub, or search by name or codice fiscale"
    )]
    UnknownConsumer(String),
    #[error("{consumer} is not enrolled in the service '{service}' (enrolled in: {enrolled})")]
    NotEnrolled { consumer: String, service: String, enrolled: String },
    #[error("{consumer} has several wallets ({services}): say which service")]
    ServiceNeeded { consumer: String, services: String },
    #[error("{0} is not enrolled in any service: enrol them before recording money")]
    NoWallet(String),
    #[error("{0}")]
    Query(#[from] QueryError),
    #[error("refused: {0}")]
    Refused(String),
    #[error("only the hub can {0}")]
    HubOnly(&'static str),
    #[error("this node has no signing key: it can only receive operations")]
    NoKey,
    #[error("no operation {0} is held here")]
    UnknownOperation(String),
    #[error("no device {0} is enrolled in this realm")]
    UnknownDevice(String),
    #[error(
        "{path} holds operations in format {found}, and this saldo reads format {reads}; there is no conversion before the first release: start a new realm there (for the demo, remove its data directory and run `saldo demo` again)"
    )]
    FormatVersion { path: String, found: u8, reads: u8 },
    #[error("operation {0} is not awaiting review")]
    NotFlagged(String),
    #[error(
        "accepting this {kind} takes {wallets}: nothing was recorded; to accept it all the same, confirm that it goes below the floor"
    )]
    BelowFloorInReview { kind: String, wallets: String },
    #[error(transparent)]
    Directory(#[from] directory::DirectoryError),
    #[error(
        "this cash point holds its log up to #{held} but {holder} holds #{peer_holds} (it was restored from an older copy?): it is fetching them back; try again in a moment (keep `saldo cashpoint` running, online)"
    )]
    FetchingOwnLog { held: u64, peer_holds: u64, holder: &'static str },
    #[error(
        "this cash point has just started and is checking its log with the hub (a copy restored from a backup fetches its own operations back before it records): try again in a moment (at most {seconds_left} s)"
    )]
    CheckingOwnLog { seconds_left: u64 },
    #[error(
        "this cash point was restored from a backup and has not reached the hub since: start it online first (`saldo cashpoint --data DIR`), so that it fetches back what it recorded after the backup, then record"
    )]
    RestoredNotStarted,
    #[error(
        "this cash point's log forked at #{at}: it was restored from an older copy of its data directory, or cloned, and two different operations #{at} were signed with its key. It records nothing more. Keep it connected (or carry a bundle) so that everything it recorded reaches the hub for review. To go on: on the hub run `saldo enroll --name NAME --replaces {device}`, then start a new cash point with `saldo cashpoint --data NEWDIR --join TOKEN` (its receipt numbers continue after this one's)"
    )]
    Forked { at: u64, device: String },
    /// A field of a request is wrong: which, and what to do.
    #[error("{field}: {message}")]
    InvalidField { field: String, message: String },
}

pub type Result<T> = std::result::Result<T, NodeError>;

/// Is `error` a disk (or a database size limit) being full: SQLite's
/// SQLITE_FULL, or ENOSPC from the file system? Front ends say so, and what
/// to do, rather than the bare cause.
pub fn is_disk_full(error: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(e) = error.downcast_ref::<crate::store::StoreError>() {
        return e.is_disk_full();
    }
    if let Some(e) = error.downcast_ref::<rusqlite::Error>() {
        return e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull);
    }
    error.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::StorageFull)
}

impl From<crate::store::StoreError> for NodeError {
    /// "database is locked" is no storage failure, and no operator should
    /// read SQLite's words for it.
    fn from(error: crate::store::StoreError) -> NodeError {
        if error.is_busy() { NodeError::Busy } else { NodeError::Storage(error) }
    }
}

/// A node of a realm: its store, and who it is.
#[derive(Debug)]
pub struct Node {
    store: Store,
    me: Me,
}

/// A node's identity: realm, keys and clock. Kept apart from the store so a
/// transaction on the store and the identity can be borrowed together.
#[derive(Debug)]
pub struct Me {
    ctx: Context,
    realm_name: String,
    key: Option<DeviceKey>,
    contacts_key: Option<DeviceKey>,
    clock: Arc<dyn Clock>,
}

/// Verdicts taken and not yet written, already split into the decision
/// operations that will carry them: each verdict takes effect at the seq of
/// its operation, so the split is fixed when the verdict is taken. An
/// operation carries at most VERDICTS_PER_OP_MAX verdicts, and fewer when
/// their details would make it too large to sign.
#[derive(Debug, Default)]
struct PendingDecisions {
    verdicts: Vec<Decision>,
    /// Per operation: the index of its first verdict and its encoded size.
    carriers: Vec<(usize, usize)>,
}

impl PendingDecisions {
    const ROOM: usize = saldo_sync::op::OP_BYTES_MAX - 1024;

    /// Room for `n` verdicts (one per operation of a batch the hub judges).
    fn with_capacity(n: usize) -> PendingDecisions {
        PendingDecisions { verdicts: Vec::with_capacity(n), carriers: Vec::with_capacity(n / VERDICTS_PER_OP_MAX + 1) }
    }

    /// Adds a verdict; returns which of the pending operations carries it.
    fn push(&mut self, decision: Decision) -> usize {
        let size = postcard::experimental::serialized_size(&decision).unwrap_or(Self::ROOM);
        let in_last = self.verdicts.len() - self.carriers.last().map_or(0, |c| c.0);
        match self.carriers.last_mut() {
            Some(last) if in_last < VERDICTS_PER_OP_MAX && last.1 + size <= Self::ROOM => last.1 += size,
            _ => self.carriers.push((self.verdicts.len(), size)),
        }
        self.verdicts.push(decision);
        self.carriers.len() - 1
    }

    fn is_empty(&self) -> bool {
        self.verdicts.is_empty()
    }

    /// The verdicts of each operation, in order; leaves nothing pending.
    fn take(&mut self) -> Vec<Vec<Decision>> {
        let mut out = Vec::with_capacity(self.carriers.len());
        for (start, _) in self.carriers.iter().rev() {
            out.push(self.verdicts.split_off(*start));
        }
        out.reverse();
        self.carriers.clear();
        out
    }
}

/// Meta keys: where a hub listens; where a device finds its hub.
pub const META_LISTEN: &str = "p2p_addresses";
pub const META_HUB_ADDRESSES: &str = "hub_addresses";

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct PendingEnrolment {
    name: Label,
    limits: OfflineLimits,
    created_ms: u64,
}

fn token_key(secret: &[u8; 32]) -> String {
    format!("enrolment_token:{}", blake3::hash(secret).to_hex())
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> NodeError + '_ {
    move |source| NodeError::Io { path: path.display().to_string(), source }
}

fn read_key(path: &Path) -> Result<DeviceKey> {
    let bytes = fs::read(path).map_err(io_error(path))?;
    let secret: [u8; 32] = bytes.try_into().map_err(|_| NodeError::BadKey { path: path.display().to_string() })?;
    Ok(DeviceKey::from_secret_bytes(&secret))
}

fn write_key(path: &Path, key: &DeviceKey) -> Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io_error(path))?;
    file.write_all(&key.secret_bytes()).map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))?;
    Ok(())
}

fn label(text: &str) -> Label {
    Label::parse(text).unwrap_or_else(|_| Label::parse("-").expect("a dash is a label"))
}

impl Node {
    /// Creates a realm's hub in `dir`: its keys, its database and the genesis.
    pub fn init_realm(dir: &Path, name: &Label) -> Result<Node> {
        let db = dir.join(DATABASE_FILE);
        if db.exists() || dir.join(KEY_FILE).exists() {
            return Err(NodeError::AlreadyInitialised { path: dir.display().to_string() });
        }
        Node::init_realm_with(dir, name, DeviceKey::generate(), DeviceKey::generate(), Arc::new(SystemClock))
    }

    /// [`Node::init_realm`] with given keys and clock (the simulator's are
    /// derived from its seed, so that a seed replays exactly).
    pub fn init_realm_with(
        dir: &Path,
        name: &Label,
        key: DeviceKey,
        contacts_key: DeviceKey,
        clock: Arc<dyn Clock>,
    ) -> Result<Node> {
        let db = dir.join(DATABASE_FILE);
        if db.exists() || dir.join(KEY_FILE).exists() {
            return Err(NodeError::AlreadyInitialised { path: dir.display().to_string() });
        }
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        write_key(&dir.join(KEY_FILE), &key)?;
        write_key(&dir.join(CONTACTS_KEY_FILE), &contacts_key)?;
        let store = Store::open(&db)?;
        Node::create_hub(store, key, contacts_key, name, clock)
    }

    /// A hub on an existing store (tests use an in-memory one).
    pub fn create_hub(
        store: Store,
        key: DeviceKey,
        contacts_key: DeviceKey,
        name: &Label,
        clock: Arc<dyn Clock>,
    ) -> Result<Node> {
        let realm = RealmId(key.author().0);
        let mut node = Node {
            store,
            me: Me {
                ctx: Context::new(realm, Some(key.author())),
                realm_name: name.to_string(),
                key: Some(key),
                contacts_key: Some(contacts_key),
                clock,
            },
        };
        let mut tx = node.store.write()?;
        tx.set_meta(META_REALM, &realm.0)?;
        tx.set_meta(META_REALM_NAME, name.as_str().as_bytes())?;
        let me = &node.me;
        let key = me.key.as_ref().expect("a hub has its key");
        me.author(&mut tx, key, Body::Genesis { realm_name: name.clone() })?;
        let contacts = me.contacts_key.as_ref().expect("a hub has its contacts key").author();
        me.author(
            &mut tx,
            key,
            Body::Enrol {
                device: contacts,
                role: Role::HubContacts,
                name: label("contact data"),
                limits: OfflineLimits::default_for_cash_point(),
            },
        )?;
        me.commit(tx)?;
        Ok(node)
    }

    /// A node that receives a realm's operations, with its own key or none.
    pub fn replica(store: Store, realm: RealmId, key: Option<DeviceKey>, clock: Arc<dyn Clock>) -> Result<Node> {
        let mut node = Node {
            store,
            me: Me {
                ctx: Context::new(realm, key.as_ref().map(DeviceKey::author)),
                realm_name: String::new(),
                key,
                contacts_key: None,
                clock,
            },
        };
        let tx = node.store.write()?;
        tx.set_meta(META_REALM, &realm.0)?;
        node.me.commit(tx)?;
        Ok(node)
    }

    /// Creates a device's node in `dir` for `realm`, with `key` as its identity:
    /// it learns the realm's operations (its own enrolment first) by syncing.
    pub fn join(dir: &Path, realm: RealmId, key: DeviceKey) -> Result<Node> {
        let db = dir.join(DATABASE_FILE);
        if db.exists() || dir.join(KEY_FILE).exists() {
            return Err(NodeError::AlreadyInitialised { path: dir.display().to_string() });
        }
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        write_key(&dir.join(KEY_FILE), &key)?;
        Node::replica(Store::open(&db)?, realm, Some(key), Arc::new(SystemClock))
    }

    /// Replaces the clock (the simulator skews it per node).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Node {
        self.me.clock = clock;
        self
    }

    /// Opens the node in `dir`.
    pub fn open(dir: &Path) -> Result<Node> {
        let db = dir.join(DATABASE_FILE);
        if !db.exists() {
            return Err(NodeError::NotInitialised { path: dir.display().to_string() });
        }
        let key = read_key(&dir.join(KEY_FILE))?;
        let contacts_path = dir.join(CONTACTS_KEY_FILE);
        let contacts_key = if contacts_path.exists() { Some(read_key(&contacts_path)?) } else { None };
        let mut store = Store::open(&db)?;
        let (realm, realm_name) = {
            let tx = store.read()?;
            let realm = tx
                .meta(META_REALM)?
                .and_then(|b| RealmId::from_slice(&b))
                .ok_or_else(|| NodeError::NotInitialised { path: dir.display().to_string() })?;
            let name = tx.meta(META_REALM_NAME)?.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
            if let Some(found) = tx.first_op_format()?
                && found != saldo_sync::op::OP_FORMAT_VERSION
            {
                return Err(NodeError::FormatVersion {
                    path: dir.display().to_string(),
                    found,
                    reads: saldo_sync::op::OP_FORMAT_VERSION,
                });
            }
            (realm, name)
        };
        Ok(Node {
            store,
            me: Me {
                ctx: Context::new(realm, Some(key.author())),
                realm_name,
                key: Some(key),
                contacts_key,
                clock: Arc::new(SystemClock),
            },
        })
    }

    pub fn realm(&self) -> RealmId {
        self.me.ctx.realm
    }

    pub fn realm_name(&self) -> &str {
        &self.me.realm_name
    }

    pub fn author(&self) -> Option<AuthorId> {
        self.me.ctx.own
    }

    pub fn is_hub(&self) -> bool {
        self.me.ctx.is_hub()
    }

    /// A copy of this node's signing key (the network endpoint uses it as its identity).
    pub fn device_key(&self) -> Option<DeviceKey> {
        self.me.key.as_ref().map(|k| DeviceKey::from_secret_bytes(&k.secret_bytes()))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }
}

impl Me {
    pub fn realm(&self) -> RealmId {
        self.ctx.realm
    }
}
