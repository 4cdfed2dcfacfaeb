//! A node: its identity, its store and what it can do with them. Recording
//! an operation and ingesting operations from elsewhere both end in the same
//! [`state::apply`], inside one write transaction that commits before the
//! caller is told anything ("acknowledged only once durable").

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use saldo_sync::bundle::{BundleBody, FrontierFile};
use saldo_sync::op::VERDICTS_PER_OP_MAX;
use saldo_sync::reconcile::{ChainOp, ForkSummary, OpSource, Session, SharePolicy};
use saldo_sync::{
    Amount, AuthorId, Balance, Body, ConsumerId, Decision, DeviceKey, DocId, Hlc, Label, OfflineLimits, OpId,
    Operation, Pan, PaymentMethod, RealmId, Role, Seq, ServiceId, SignedOp, TopUp, TopUpLine, Verdict, WalletBalance,
    WalletKey,
};
use saldo_sync::{Frontier, FrontierEntry};

use crate::directory::{self, ContactRecord, FamilyRecord, ServiceRecord};
use crate::ledger;
use crate::search::{self, Query, QueryError};
use crate::state::{self, Applied, Context, IngestError};
use crate::store::{AuthorRow, ConsumerRow, FlaggedRow, MovementRow, OpenError, Store, Tx, WalletRow};

mod own_log;
pub use own_log::{OWN_LOG_CHECK_MS, OwnLogHold};

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

/// Operations whose signatures are checked as one ed25519 batch when
/// ingesting: the unit of work of the helper threads. `saldo-bench`
/// measures raw verification at this batch size, so that (a) is the bound
/// of this ingest.
pub const VERIFY_PART_OPS: usize = 512;
/// The write-ahead log pages above which a multi-part ingest copies the log
/// into the database before its last transaction, while helper threads
/// check signatures: SQLite would otherwise do it inside the commit that
/// takes the log past `wal_autocheckpoint` (16,384 pages), most often the
/// last one of a call, with every other core idle and the caller waiting.
pub const WAL_FRAMES_CHECKPOINTED_EARLY: i64 = 4_096;
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
    Storage(#[source] rusqlite::Error),
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
    #[error("{consumer} has several wallets ({services}): say which one with --service")]
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
        "accepting this {kind} takes {wallets}: nothing was recorded; to accept it all the same, add --confirm-below-floor"
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
}

pub type Result<T> = std::result::Result<T, NodeError>;

/// Is `error` a disk (or a database size limit) being full: SQLite's
/// SQLITE_FULL, or ENOSPC from the file system? Front ends say so, and what
/// to do, rather than the bare cause.
pub fn is_disk_full(error: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(rusqlite::Error::SqliteFailure(e, _)) = error.downcast_ref::<rusqlite::Error>() {
        return e.code == rusqlite::ErrorCode::DiskFull;
    }
    error.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::StorageFull)
}

impl From<rusqlite::Error> for NodeError {
    /// "database is locked" is no storage failure, and no operator should
    /// read SQLite's words for it.
    fn from(error: rusqlite::Error) -> NodeError {
        if crate::store::is_busy(&error) { NodeError::Busy } else { NodeError::Storage(error) }
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

/// Meta keys: the frontier this node last sent a peer, and last received from one.
const SENT_TO: &str = "frontier_sent_to";
const RECEIVED_FROM: &str = "frontier_received_from";
/// The one received before: the peer may not have heard the answer to the
/// last hello, and then names this one as its base.
const RECEIVED_BEFORE_FROM: &str = "frontier_received_before_from";

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

/// Who a verified frontier file says lacks what, as this node knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontierHolder {
    pub holder: AuthorId,
    /// The device's enrolled name (`None` for the hub).
    pub name: Option<String>,
    pub role: Role,
    /// When the holder wrote the file, by its clock.
    pub created_ms: u64,
    pub frontier: Frontier,
}

/// What importing a bundle did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BundleReport {
    pub exporter: String,
    pub operations: usize,
    pub new: usize,
    pub duplicates: usize,
    pub equivocations: usize,
    /// Operations refused, each with its reason; nothing else changed for them.
    pub refused: Vec<String>,
}

/// What a recorded top-up gives back: everything its receipt shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Receipt {
    pub realm: String,
    pub cash_point: String,
    pub operator: Option<String>,
    pub receipt_number: u64,
    pub recorded_at_ms: u64,
    pub consumer: String,
    pub pan_masked: String,
    pub method: &'static str,
    pub lines: Vec<ReceiptLine>,
    pub total: String,
    /// True while the hub has not confirmed the operation.
    pub provisional: bool,
    /// Anyone can check this against the hub: the operation's id.
    pub verification_code: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ReceiptLine {
    pub service: String,
    pub amount: Amount,
    pub balance_after: Balance,
}

/// A consumer as search shows them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConsumerView {
    pub consumer: String,
    pub surname: String,
    pub name: String,
    pub pan: String,
    pub fiscal_code: String,
    pub school: Option<String>,
    pub class: Option<String>,
    pub services: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct WalletView {
    pub service: String,
    pub confirmed: Balance,
    pub provisional: Balance,
    pub movements: Vec<MovementView>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct MovementView {
    pub operation: String,
    pub kind: String,
    pub receipt: Option<u64>,
    pub method: Option<String>,
    pub recorded_at_ms: u64,
    pub amount: Balance,
    pub status: &'static str,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BalanceView {
    pub consumer: ConsumerView,
    pub wallets: Vec<WalletView>,
}

/// What `log verify` found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VerifyReport {
    pub operations: u64,
    pub authors: u64,
    pub equivocations: u64,
    pub wallets: u64,
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// A wallet that accepting an operation in review takes below its floor,
/// named for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletBelowFloor {
    /// "Rossi Mario", or the consumer's id when the directory does not know them.
    pub consumer: String,
    pub service: ServiceId,
    pub after: Balance,
    /// What devices' allowances may still charge there on top.
    pub reserved: Balance,
    pub floor: Balance,
    pub short: Balance,
}

impl std::fmt::Display for WalletBelowFloor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}'s {} wallet to {} EUR, ", self.consumer, self.service, self.after)?;
        if self.reserved.minor() > 0 {
            write!(f, "and devices may still charge the {} EUR reserved for them there: ", self.reserved)?;
        }
        write!(f, "{} EUR below its floor of {} EUR", self.short, self.floor)
    }
}

/// The facts [`ledger::below_floor_if_accepted`] needs about `op`, gathered
/// from the store, and its answer named for the operator.
fn wallets_below_floor_if_accepted(tx: &Tx<'_>, op: &crate::store::MoneyOpRow) -> Result<Vec<WalletBelowFloor>> {
    let charge = op.kind == saldo_sync::OpKind::ServiceCharge.name();
    let mut lines = Vec::new();
    for (consumer, service, delta_minor) in tx.money_lines(op.row)? {
        let floor_minor = match tx.service(&service)? {
            Some(record) if charge => record.floor.minor(),
            _ => 0,
        };
        let confirmed_minor = tx.wallet(&consumer, &service)?.confirmed.minor();
        // Once it counts, a device's charge uses up its own allowance.
        let mut reserved_minor = tx.escrow_outstanding(&consumer, &service)?;
        if charge {
            let (granted, used) = tx.escrow_of(&op.author, &consumer, &service)?;
            reserved_minor -= (granted - used).max(0) - (granted - used + delta_minor).max(0);
        }
        lines.push(ledger::ReviewLine {
            wallet: WalletKey { consumer, service },
            confirmed_minor,
            floor_minor,
            delta_minor,
            reserved_minor,
        });
    }
    let mut out = Vec::new();
    for below in ledger::below_floor_if_accepted(&lines) {
        let consumer = match tx.consumer(&below.wallet.consumer)? {
            Some(row) => format!("{} {}", row.surname, row.name),
            None => format!("consumer {}", below.wallet.consumer.short()),
        };
        let balance = |minor| Balance::from_minor(minor).unwrap_or(Balance::ZERO);
        out.push(WalletBelowFloor {
            consumer,
            service: below.wallet.service.clone(),
            after: balance(below.after_minor),
            reserved: balance(below.reserved_minor),
            floor: balance(below.floor_minor),
            short: balance(below.short_minor()),
        });
    }
    Ok(out)
}

/// One line of a multi-wallet top-up, before it is recorded.
#[derive(Debug, Clone)]
pub struct TopUpRequestLine {
    pub consumer: ConsumerId,
    pub service: ServiceId,
    pub amount: Amount,
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

/// Refuses offline limits under which a device could record nothing: an
/// unconfirmed total or a time offline of zero. (A per-operation limit is an
/// [`Amount`], never zero.) Stopping a device is a revocation, said as one.
pub fn check_limits(limits: &OfflineLimits) -> Result<()> {
    if limits.unconfirmed_total.minor() <= 0 {
        return Err(NodeError::Refused(
            "the unconfirmed total must be above zero, like 5000: every operation awaits the hub for a moment, so with 0 the device could record nothing (to stop a device, revoke it)".into(),
        ));
    }
    if limits.offline_secs_max == 0 {
        return Err(NodeError::Refused(
            "the time offline must be at least 1 hour: with 0 the device could record nothing (to stop a device, revoke it)".into(),
        ));
    }
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
                ctx: Context { realm, own: Some(key.author()) },
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
        tx.commit()?;
        Ok(node)
    }

    /// A node that receives a realm's operations, with its own key or none.
    pub fn replica(store: Store, realm: RealmId, key: Option<DeviceKey>, clock: Arc<dyn Clock>) -> Result<Node> {
        let mut node = Node {
            store,
            me: Me {
                ctx: Context { realm, own: key.as_ref().map(DeviceKey::author) },
                realm_name: String::new(),
                key,
                contacts_key: None,
                clock,
            },
        };
        let tx = node.store.write()?;
        tx.set_meta(META_REALM, &realm.0)?;
        tx.commit()?;
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
                ctx: Context { realm, own: Some(key.author()) },
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

    /// Per author: the highest contiguous seq held and the id there.
    pub fn frontier(&mut self) -> Result<Frontier> {
        let tx = self.store.read()?;
        Ok(Frontier(
            tx.authors()?
                .into_iter()
                .filter_map(|a| a.head_id.map(|head| (a.author, FrontierEntry { seq: a.head_seq, head })))
                .collect(),
        ))
    }

    /// What this node hands to `peer` when they sync.
    pub fn share_policy(&self, peer: AuthorId) -> SharePolicy {
        SharePolicy::for_peer(&self.me.ctx.realm, self.me.ctx.own, peer)
    }

    /// What this node holds, for another node to export a bundle of what it
    /// lacks: the file, and its bytes signed by this node's key.
    pub fn frontier_file(&mut self) -> Result<(FrontierFile, Vec<u8>)> {
        let frontier = self.frontier()?;
        let key = self.me.key.as_ref().ok_or(NodeError::NoKey)?;
        let file = FrontierFile {
            realm: self.me.ctx.realm,
            holder: key.author(),
            created_ms: self.me.clock.now_ms(),
            frontier,
        };
        let bytes = file.seal(key);
        Ok((file, bytes))
    }

    /// Opens a frontier file for [`Node::export_bundle`]: signed by its
    /// holder, of this realm, and the holder is the hub or a device this node
    /// knows as enrolled (revoked or frozen devices too: they still deliver
    /// what they recorded). What the bundle shares is decided by that
    /// holder's role, never by the file alone.
    pub fn open_frontier_file(&mut self, bytes: &[u8]) -> Result<FrontierHolder> {
        let realm = self.me.ctx.realm;
        let file = FrontierFile::open(bytes, &realm).map_err(|e| NodeError::Refused(e.to_string()))?;
        let (name, role) = if file.holder == realm.hub() {
            (None, Role::Hub)
        } else {
            let is_hub = self.is_hub();
            let row = self.store.read()?.author(&file.holder)?;
            match row {
                Some(row) if matches!(row.role, Role::CashPoint | Role::SchoolDevice) => (Some(row.name), row.role),
                Some(row) => {
                    return Err(NodeError::Refused(format!(
                        "the frontier file is signed by the hub's {} key, which receives no bundles: write it with `saldo bundle frontier` on the node that will import the bundle",
                        row.role.name()
                    )));
                }
                None => {
                    return Err(NodeError::Refused(format!(
                        "the frontier file is signed by {}, a device this node does not know as enrolled in the realm: write it with `saldo bundle frontier` on an enrolled device{}",
                        file.holder.to_hex(),
                        if is_hub { "" } else { ", or bring this node the hub's operations first" }
                    )));
                }
            }
        };
        Ok(FrontierHolder { holder: file.holder, name, role, created_ms: file.created_ms, frontier: file.frontier })
    }

    /// A signed bundle of the operations the holder of the frontier file
    /// `lacking` lacks (what this node would send it in a sync session: from
    /// the hub to a device, only the hub's log and the device's own), or of
    /// every operation held. On the hub, a bundle of everything, or for the
    /// hub's own frontier, is the hub's backup: it alone carries contact data.
    pub fn export_bundle(&mut self, lacking: Option<&[u8]>) -> Result<(Vec<u8>, usize)> {
        let (policy, theirs) = match lacking {
            Some(bytes) => {
                let holder = self.open_frontier_file(bytes)?;
                (self.share_policy(holder.holder), holder.frontier)
            }
            None => (SharePolicy::Everything, Frontier::default()),
        };
        // From a hub, a bundle is contact with the hub: it carries a recent
        // operation of the hub, a heartbeat if the hub has been quiet.
        self.heartbeat_if_quiet()?;
        let realm = self.me.ctx.realm;
        let mut session = Session::new(realm, policy, self.frontier()?);
        session
            .receive(saldo_sync::reconcile::Message::Hello(saldo_sync::reconcile::Hello {
                version: saldo_sync::reconcile::PROTOCOL_VERSION,
                realm,
                frontier: saldo_sync::reconcile::FrontierForm::Whole(theirs.clone()),
            }))
            .map_err(|e| NodeError::Refused(e.to_string()))?;
        let mut ops = Vec::new();
        while let Some(message) = session.next_message(self)? {
            if let saldo_sync::reconcile::Message::Ops(batch) = message {
                ops.extend(batch);
            }
        }
        self.add_forked_logs(&mut ops, policy, &theirs)?;
        let key = self.me.key.as_ref().ok_or(NodeError::NoKey)?;
        let count = ops.len();
        let body = BundleBody { realm, exporter: key.author(), created_ms: self.me.clock.now_ms(), ops };
        Ok((body.seal(key), count))
    }

    /// A bundle cannot ask back for the rest of a fork, as a sync session
    /// does: it carries every operation (both branches) of the authors whose
    /// log forked as far as either side can tell: those this node holds
    /// evidence on, those whose head in `theirs` is not this node's
    /// operation there, and this node's own log when `theirs` holds more of
    /// it than this node does (it was restored from an older copy).
    fn add_forked_logs(&mut self, ops: &mut Vec<Vec<u8>>, policy: SharePolicy, theirs: &Frontier) -> Result<()> {
        let mut authors: std::collections::BTreeSet<AuthorId> =
            self.fork_summaries()?.into_iter().map(|s| s.author).collect();
        let ours = self.frontier()?;
        for (author, their) in &theirs.0 {
            let mine = ours.get(author).map_or(Seq(0), |e| e.seq);
            let differs = their.seq <= mine
                && their.head != OpId::NONE
                && self.store.read()?.chain_op_at(author, their.seq)?.is_some_and(|id| id != their.head);
            let restored = Some(*author) == self.me.ctx.own && their.seq > mine;
            if differs || restored {
                authors.insert(*author);
            }
        }
        let mut held: std::collections::HashSet<OpId> =
            ops.iter().filter_map(|bytes| saldo_sync::op::peek(bytes).map(|(_, _, id)| id)).collect();
        for author in authors.into_iter().filter(|a| policy.shares(a)) {
            let mut from = Seq::FIRST;
            loop {
                let page = self.store.read()?.all_from(&author, from, 4096)?;
                let Some(last) = page.last().map(|op| op.seq) else { break };
                for op in page {
                    if held.insert(op.id) {
                        ops.push(op.bytes);
                    }
                }
                from = last.next();
            }
        }
        Ok(())
    }

    /// Imports a bundle: refused whole if its signature does not match its
    /// contents or it belongs to another realm; otherwise each operation is
    /// verified and stored like one received from a peer.
    pub fn import_bundle(&mut self, bytes: &[u8]) -> Result<BundleReport> {
        let body = BundleBody::open(bytes, &self.me.ctx.realm).map_err(|e| NodeError::Refused(e.to_string()))?;
        let known = body.exporter == self.me.ctx.realm.hub() || self.store.read()?.author(&body.exporter)?.is_some();
        if !known {
            return Err(NodeError::Refused(format!(
                "the bundle was exported by {}, a device this node does not know: import the hub's operations first",
                body.exporter.to_hex()
            )));
        }
        let mut report =
            BundleReport { exporter: body.exporter.to_hex(), operations: body.ops.len(), ..BundleReport::default() };
        for (result, bytes) in self.ingest_within(&body.ops, TransactionBound::SHORT)?.into_iter().zip(&body.ops) {
            match result {
                Ok(Applied::New) => report.new += 1,
                Ok(Applied::Duplicate) => report.duplicates += 1,
                Ok(Applied::Equivocation { .. }) => report.equivocations += 1,
                Err(e) => {
                    let what = saldo_sync::op::peek(bytes)
                        .map_or("an undecodable operation".to_string(), |(author, seq, _)| {
                            format!("operation #{} of {}", seq.0, author.to_hex())
                        });
                    report.refused.push(format!("{what}: {e}"));
                }
            }
        }
        Ok(report)
    }

    /// A sync session with `peer`, from this node's current frontier and
    /// what it holds of forked authors.
    pub fn session(&mut self, peer: AuthorId) -> Result<Session> {
        let forks = self.fork_summaries()?;
        Ok(Session::new(self.me.ctx.realm, self.share_policy(peer), self.frontier()?).with_forks(forks))
    }

    /// What this node holds of authors whose log forked (evidence held),
    /// as a sync session tells its peer.
    pub fn fork_summaries(&mut self) -> Result<Vec<ForkSummary>> {
        let tx = self.store.read()?;
        Ok(tx
            .fork_summaries(saldo_sync::reconcile::FORK_SUMMARY_IDS_MAX)?
            .into_iter()
            .take(saldo_sync::reconcile::FORK_SUMMARIES_MAX)
            .map(|(author, from, ids)| ForkSummary { author, from, ids })
            .collect())
    }

    /// A session this node begins with `peer`, and its hello: only what
    /// changed since the last frontier that peer confirmed it received, if
    /// any.
    pub fn initiate(&mut self, peer: AuthorId) -> Result<(Session, saldo_sync::reconcile::Message)> {
        let mut session = self.session(peer)?;
        let hello = match self.peer_frontier(SENT_TO, &peer)? {
            Some(base) => session.hello_since(&base),
            None => session.hello(),
        };
        Ok((session, hello))
    }

    /// A session this node answers, knowing what `peer` sent in the last
    /// sessions.
    pub fn respond(&mut self, peer: AuthorId) -> Result<Session> {
        let mut session = self.session(peer)?;
        for which in [RECEIVED_FROM, RECEIVED_BEFORE_FROM] {
            if let Some(remembered) = self.peer_frontier(which, &peer)? {
                session.remember(remembered);
            }
        }
        Ok(session)
    }

    /// After a hello arrived. A responder remembers the peer's frontier as
    /// the base of the next session's changes, and keeps the one before (the
    /// peer may not hear this answer, and then names the older base). An
    /// initiator remembers the frontier it sent once the answer shows the
    /// peer received it (not when it asks for the whole frontier).
    pub fn after_hello(&mut self, peer: AuthorId, session: &Session) -> Result<()> {
        if session.is_responder() {
            if let Some(theirs) = session.hello_received() {
                let theirs = theirs.clone();
                if let Some(before) = self.peer_frontier(RECEIVED_FROM, &peer)?
                    && before != theirs
                {
                    self.remember_peer_frontier(RECEIVED_BEFORE_FROM, &peer, &before)?;
                }
                self.remember_peer_frontier(RECEIVED_FROM, &peer, &theirs)?;
            }
        } else if session.peer_frontier().is_some()
            && let Some(sent) = session.hello_sent()
        {
            let sent = sent.clone();
            self.remember_peer_frontier(SENT_TO, &peer, &sent)?;
        }
        if let Some((held, theirs)) = self.note_peer_holds_own_log(peer, session)? {
            tracing::warn!(
                "{} holds this device's log up to #{}, this copy up to #{} (restored from an older copy?): fetching {} own operations back before recording",
                peer.to_hex(),
                theirs.0,
                held.0,
                theirs.0 - held.0
            );
        }
        Ok(())
    }

    /// Forgets the frontiers sent to and received from `peer`: the next
    /// session with it exchanges whole frontiers, as a first one does.
    pub fn forget_peer(&mut self, peer: &AuthorId) -> Result<()> {
        let tx = self.store.write()?;
        for which in [SENT_TO, RECEIVED_FROM, RECEIVED_BEFORE_FROM] {
            tx.delete_meta(&format!("{which}:{}", peer.to_hex()))?;
        }
        tx.commit()?;
        Ok(())
    }

    fn peer_frontier(&mut self, which: &str, peer: &AuthorId) -> Result<Option<Frontier>> {
        let tx = self.store.read()?;
        Ok(tx.meta(&format!("{which}:{}", peer.to_hex()))?.and_then(|b| postcard::from_bytes(&b).ok()))
    }

    fn remember_peer_frontier(&mut self, which: &str, peer: &AuthorId, frontier: &Frontier) -> Result<()> {
        let tx = self.store.write()?;
        tx.set_meta(&format!("{which}:{}", peer.to_hex()), &postcard::to_stdvec(frontier).expect("encoding to a Vec"))?;
        tx.commit()?;
        Ok(())
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

    /// Whether `peer` may sync with this node: the hub, or a device this
    /// node knows to be enrolled in the realm. A revoked device still may:
    /// what it recorded is real money and must reach the hub, which flags
    /// what came after the revocation.
    pub fn may_sync_with(&mut self, peer: &AuthorId) -> std::result::Result<(), String> {
        if *peer == self.me.ctx.realm.hub() {
            return Ok(());
        }
        let row = self.store.read().and_then(|tx| tx.author(peer)).map_err(|e| format!("storage failure: {e}"))?;
        match row {
            None if self.is_hub() => Err("not enrolled in this realm".into()),
            None => {
                Err("not enrolled in this realm, as far as this node knows (it may need to sync with the hub)".into())
            }
            Some(row) if row.role == Role::HubContacts => Err("the hub's contacts key does not sync".into()),
            Some(_) => Ok(()),
        }
    }

    /// On the hub: writes a heartbeat when its log has been quiet for
    /// [`HEARTBEAT_AFTER`]. A device's contact with the hub is the newest
    /// operation of the hub it holds; this keeps that recent for a device in
    /// touch with a hub that has nothing else to say (nights, holidays), by
    /// sync or by a bundle the hub exports. Returns whether it wrote one.
    pub fn heartbeat_if_quiet(&mut self) -> Result<bool> {
        if !self.me.ctx.is_hub() || self.me.key.is_none() {
            return Ok(false);
        }
        let hub = self.me.ctx.realm.hub();
        let newest_ms = {
            let tx = self.store.read()?;
            let head = tx.author(&hub)?.map_or(Seq(0), |a| a.head_seq);
            tx.op_wall_ms(&hub, head)?.unwrap_or(0)
        };
        if self.me.clock.now_ms().saturating_sub(newest_ms) < HEARTBEAT_AFTER.as_millis() as u64 {
            return Ok(false);
        }
        self.record(Body::Heartbeat)?;
        Ok(true)
    }

    /// Creates a one-time enrolment token (hub only): a device that presents
    /// it on the join protocol is enrolled as a cash point named `name` with
    /// `limits`. Only the token's hash is stored.
    pub fn create_enrolment_token(&mut self, name: &Label, limits: OfflineLimits) -> Result<[u8; 32]> {
        self.me.hub_key("create enrolment tokens")?;
        check_limits(&limits)?;
        // A fresh key's secret bytes: 32 bytes from the operating system's random source.
        let secret = DeviceKey::generate().secret_bytes();
        let pending = PendingEnrolment { name: name.clone(), limits, created_ms: self.me.clock.now_ms() };
        let tx = self.store.write()?;
        tx.set_meta(&token_key(&secret), &postcard::to_stdvec(&pending).expect("encoding to a Vec"))?;
        tx.commit()?;
        Ok(secret)
    }

    /// Enrols `device` with the enrolment token `secret`, which is used up.
    pub fn redeem_enrolment_token(&mut self, secret: &[u8; 32], device: AuthorId) -> Result<String> {
        self.me.hub_key("enrol devices")?;
        let key = token_key(secret);
        let pending: PendingEnrolment = {
            let tx = self.store.read()?;
            let bytes = tx.meta(&key)?.ok_or_else(|| {
                NodeError::Refused(
                    "this enrolment token is unknown or was used already: ask the hub for a new one".into(),
                )
            })?;
            postcard::from_bytes(&bytes).map_err(|_| NodeError::Refused("this enrolment token is damaged".into()))?
        };
        if self.store.read()?.author(&device)?.is_some() {
            return Err(NodeError::Refused(format!("device {} is enrolled already", device.to_hex())));
        }
        let key_to_delete = key.clone();
        let signer = self.me.key.as_ref().ok_or(NodeError::NoKey)?;
        let mut tx = self.store.write()?;
        self.me.settle_replacement(&tx, &key_to_delete, &device)?;
        tx.delete_meta(&key_to_delete)?;
        self.me.author(
            &mut tx,
            signer,
            Body::Enrol { device, role: Role::CashPoint, name: pending.name.clone(), limits: pending.limits },
        )?;
        tx.commit()?;
        Ok(pending.name.to_string())
    }

    /// Remembers where this node listens (for enrolment tokens) or where its hub is.
    pub fn set_addresses(&mut self, which: &str, addresses: &[String]) -> Result<()> {
        let tx = self.store.write()?;
        tx.set_meta(which, addresses.join(" ").as_bytes())?;
        tx.commit()?;
        Ok(())
    }

    pub fn addresses(&mut self, which: &str) -> Result<Vec<String>> {
        let tx = self.store.read()?;
        Ok(tx
            .meta(which)?
            .map(|b| String::from_utf8_lossy(&b).split_whitespace().map(str::to_string).collect())
            .unwrap_or_default())
    }

    /// This node's operations on money awaiting the hub's verdict: how many,
    /// and their total. None on the hub: its own operations need no verdict.
    pub fn unconfirmed(&mut self) -> Result<(u64, Balance)> {
        let Some(me) = self.me.ctx.own.filter(|_| !self.is_hub()) else {
            return Ok((0, Balance::ZERO));
        };
        let (count, total) = self.store.read()?.unconfirmed_of(&me)?;
        let total =
            Balance::from_minor(total).ok_or_else(|| NodeError::Refused(format!("a total of {total} cents")))?;
        Ok((count, total))
    }

    /// This node's role in the realm, once it knows its enrolment.
    pub fn role(&mut self) -> Result<Option<Role>> {
        let Some(me) = self.me.ctx.own else { return Ok(None) };
        Ok(self.store.read()?.author(&me)?.map(|a| a.role))
    }

    /// When the hub was last in contact (milliseconds since the epoch), if
    /// ever: the time of the newest operation of the hub held here, however
    /// it came (a sync, a bundle of any age). The hub writes a heartbeat when
    /// it is quiet, so a device in touch holds a recent one. The offline
    /// limits count from the same time.
    pub fn last_hub_contact_ms(&mut self) -> Result<Option<u64>> {
        let hub = self.me.ctx.realm.hub();
        let tx = self.store.read()?;
        let head = tx.author(&hub)?.map_or(Seq(0), |a| a.head_seq);
        Ok(tx.op_wall_ms(&hub, head)?)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    /// A write transaction together with the node's identity, for work that
    /// records many operations in one transaction (imports): it first lets
    /// every writer waiting for the database through (a top-up at the counter).
    pub fn write(&mut self) -> Result<(Tx<'_>, &Me)> {
        Ok((self.store.write_after_waiting_writers()?, &self.me))
    }

    /// Records an operation of this node in its own transaction.
    pub fn record(&mut self, body: Body) -> Result<SignedOp> {
        let key = self.me.key.as_ref().ok_or(NodeError::NoKey)?;
        let mut tx = self.store.write()?;
        let signed = self.me.author(&mut tx, key, body)?;
        self.me.commit(tx)?;
        Ok(signed)
    }

    /// Ingests operations received from elsewhere (a peer, a bundle): each
    /// is decoded, its signature verified (in batches over all cores), then
    /// applied; on the hub, each operation on money gets the hub's verdict.
    /// Everything is durable when this returns. One result per input.
    /// Committed in few, large transactions ([`TransactionBound::LARGE`]).
    pub fn ingest(&mut self, batch: &[Vec<u8>]) -> Result<Vec<std::result::Result<Applied, IngestError>>> {
        self.ingest_within(batch, TransactionBound::LARGE)
    }

    /// [`Node::ingest`] in transactions of at most `bound`, letting every
    /// writer waiting for the database (a top-up at the counter, in this
    /// process or another) through before each. If it fails, what it
    /// committed are whole transactions: each operation with its effects
    /// and the hub's verdicts on it; ingesting the same operations again
    /// stores the rest.
    pub fn ingest_within(
        &mut self,
        batch: &[Vec<u8>],
        bound: TransactionBound,
    ) -> Result<Vec<std::result::Result<Applied, IngestError>>> {
        // Signatures are checked a part at a time by helper threads on the
        // other cores while this thread decodes and stores the parts before,
        // committing every OPS_PER_BATCH_MAX operations. When the part it
        // needs next is not checked yet, this thread checks a later one
        // itself rather than wait: whichever of checking and storing is
        // cheaper, both cores stay busy.
        let realm = self.me.ctx.realm;
        let parts: Vec<&[Vec<u8>]> = batch.chunks(VERIFY_PART_OPS).collect();
        let checker = PartChecker::new(&realm, &parts);
        std::thread::scope(|scope| {
            let helpers = std::thread::available_parallelism().map_or(1, |n| n.get()).saturating_sub(1);
            for _ in 0..helpers.min(parts.len()) {
                scope.spawn(|| while checker.check_next() {});
            }
            let mut checked = (0..parts.len()).flat_map(|i| checker.wait_for(i));
            let mut results = Vec::with_capacity(batch.len());
            let stored = (|| {
                while results.len() < batch.len() {
                    let take = (batch.len() - results.len()).min(bound.ops_max.max(1));
                    if take == batch.len() - results.len() && parts.len() > 1 {
                        self.store.checkpoint_wal(WAL_FRAMES_CHECKPOINTED_EARLY)?;
                    }
                    results.extend(self.store_checked(&mut checked, take, bound.work_max)?);
                }
                Ok(())
            })();
            // On an error the helpers must not keep checking parts nobody will use.
            checker.stop();
            stored.map(|()| results)
        })
    }

    /// Stores operations already decoded and verified, in one transaction:
    /// at most `count` of them, and only as many as `work_max` allows (at
    /// least one), counted from when it has the database.
    fn store_checked(
        &mut self,
        checked: &mut impl Iterator<Item = std::result::Result<SignedOp, IngestError>>,
        count: usize,
        work_max: Option<std::time::Duration>,
    ) -> Result<Vec<std::result::Result<Applied, IngestError>>> {
        let mut results = Vec::with_capacity(count);
        let mut tx = self.store.write_after_waiting_writers()?;
        let deadline = work_max.and_then(|work| std::time::Instant::now().checked_add(work));
        let hub_key = if self.me.ctx.is_hub() { self.me.key.as_ref() } else { None };
        let mut verdicts = PendingDecisions::with_capacity(if hub_key.is_some() { count } else { 0 });
        let mut decision_base: Option<Seq> = None;
        while results.len() < count {
            // Short transactions also end early for a writer waiting (a
            // top-up at the counter): it waits a few operations, not 40 ms.
            if !results.is_empty()
                && deadline.is_some()
                && (deadline.is_some_and(|deadline| std::time::Instant::now() >= deadline)
                    || results.len().is_multiple_of(WAITING_CHECK_OPS) && tx.writers_waiting())
            {
                break;
            }
            let Some(item) = checked.next() else { break };
            let signed = match item {
                Ok(signed) => signed,
                Err(e) => {
                    results.push(Err(e));
                    continue;
                }
            };
            if let Some(key) = hub_key
                && signed.op.author == key.author()
                && !verdicts.is_empty()
            {
                // The hub's own log is about to move: write the pending
                // decisions first, at the sequence numbers they were given.
                self.me.write_decisions(&mut tx, key, &mut verdicts)?;
                decision_base = None;
            }
            let outcome = match hub_key {
                Some(key) if signed.op.author != key.author() => {
                    let hub = key.author();
                    let mut judge = |tx: &Tx<'_>, op: &SignedOp, author: &AuthorRow| {
                        let verdict = ledger::decide(&state::gather_facts(tx, &hub, op, author)?);
                        // The verdict takes effect now, at the sequence number
                        // of the decision operation that will carry it, so the
                        // next operation in this batch is judged on the
                        // updated state.
                        let base = match decision_base {
                            Some(base) => base,
                            None => tx.author(&hub)?.map_or(Seq(0), |a| a.head_seq).next(),
                        };
                        decision_base = Some(base);
                        let carrier =
                            verdicts.push(Decision { target: op.id, author: op.op.author, verdict: verdict.clone() });
                        Ok(Some((Seq(base.0 + carrier as u64), verdict)))
                    };
                    state::apply_deciding(&mut tx, &self.me.ctx, &signed, &mut judge)
                }
                _ => state::apply(&mut tx, &self.me.ctx, &signed),
            };
            if let Err(e) = &outcome
                && !e.is_refusal()
            {
                // A storage failure: nothing of this batch is committed.
                return Err(outcome.expect_err("checked above").into());
            }
            results.push(outcome);
        }
        if let Some(key) = hub_key {
            self.me.write_decisions(&mut tx, key, &mut verdicts)?;
        }
        self.me.commit(tx)?;
        Ok(results)
    }

    // ---- directory ----------------------------------------------------------

    /// Writes a family's directory entry (and contacts) as the hub; returns
    /// how many directory operations it took (0 when nothing changed).
    pub fn put_family(&mut self, family: &FamilyRecord, contacts: &ContactRecord) -> Result<usize> {
        let mut tx = self.store.write()?;
        let written = self.me.put_family_in(&mut tx, family, contacts)?;
        tx.commit()?;
        Ok(written)
    }

    pub fn put_service(&mut self, service: &ServiceRecord) -> Result<bool> {
        let mut tx = self.store.write()?;
        let changed = self.me.put_service_in(&mut tx, service)?;
        tx.commit()?;
        Ok(changed)
    }

    pub fn services(&mut self) -> Result<Vec<ServiceRecord>> {
        let tx = self.store.read()?;
        Ok(tx.services()?)
    }

    /// Creates a service or changes its name, floor or tariff (hub only);
    /// `None` keeps what is there. Returns the service as it now is.
    pub fn set_service(
        &mut self,
        name: &Label,
        floor: Option<Balance>,
        tariff: Option<Option<Amount>>,
    ) -> Result<ServiceRecord> {
        let id = ServiceId::from_name(name.as_str()).map_err(|e| NodeError::Refused(e.to_string()))?;
        if floor.is_some_and(|f| f.minor() > 0) {
            return Err(NodeError::Refused("a floor is zero or below zero, like -50.00".into()));
        }
        let mut tx = self.store.write()?;
        let current = tx.service(&id)?;
        let record = ServiceRecord {
            id,
            name: name.clone(),
            floor: floor.or(current.as_ref().map(|c| c.floor)).unwrap_or(Balance::ZERO),
            tariff: tariff.unwrap_or(current.and_then(|c| c.tariff)),
        };
        self.me.put_service_in(&mut tx, &record)?;
        tx.commit()?;
        Ok(record)
    }

    /// Enrols a device (hub only).
    pub fn enrol(&mut self, device: AuthorId, role: Role, name: &Label, limits: OfflineLimits) -> Result<SignedOp> {
        self.me.hub_key("enrol devices")?;
        self.record(Body::Enrol { device, role, name: name.clone(), limits })
    }

    /// Grants a device an allowance for debits on a wallet (hub only): what
    /// it may charge there, offline included, without the hub's say. The
    /// allowance is reserved against the wallet: all devices' allowances
    /// together never exceed the balance above the floor, so no wallet is
    /// overdrawn by devices that cannot see each other.
    pub fn grant_escrow(&mut self, device: AuthorId, wallet: WalletKey, amount: Amount) -> Result<SignedOp> {
        self.me.hub_key("grant allowances")?;
        {
            let tx = self.store.read()?;
            let author = tx.author(&device)?.ok_or_else(|| NodeError::UnknownDevice(device.to_hex()))?;
            if !ledger::role_may_record(author.role, saldo_sync::OpKind::ServiceCharge) || author.role == Role::Hub {
                return Err(NodeError::Refused(format!(
                    "a {} does not record charges: only school devices get allowances",
                    author.role.name()
                )));
            }
            let confirmed = tx.wallet(&wallet.consumer, &wallet.service)?.confirmed.minor();
            let floor = tx.service(&wallet.service)?.map_or(0, |s| s.floor.minor());
            let available = confirmed - floor - tx.escrow_outstanding(&wallet.consumer, &wallet.service)?;
            if amount.minor() > available {
                let euro = |m: i64| Balance::from_minor(m).map_or_else(|| format!("{m} cents"), |b| b.to_string());
                return Err(NodeError::Refused(format!(
                    "only {} EUR of this wallet can still be reserved (balance {} EUR, floor {} EUR, already reserved for devices {} EUR)",
                    euro(available.max(0)),
                    euro(confirmed),
                    euro(floor),
                    euro(confirmed - floor - available)
                )));
            }
        }
        self.record(Body::EscrowGrant { device, wallet, amount })
    }

    /// Changes a device's offline limits (hub only): what is given replaces
    /// what the hub granted at enrolment or last time; the rest stays. The
    /// device applies them once it syncs; the hub judges by them what the
    /// device records from then on. Returns the limits now in force.
    pub fn change_limits(
        &mut self,
        device: AuthorId,
        per_operation: Option<Amount>,
        unconfirmed_total: Option<Balance>,
        offline_secs_max: Option<u32>,
    ) -> Result<OfflineLimits> {
        self.me.hub_key("change a device's limits")?;
        if per_operation.is_none() && unconfirmed_total.is_none() && offline_secs_max.is_none() {
            return Err(NodeError::Refused(
                "say which limit to change: --per-operation, --unconfirmed-total or --offline-hours".into(),
            ));
        }
        let current = {
            let tx = self.store.read()?;
            let author = tx.author(&device)?.ok_or_else(|| NodeError::UnknownDevice(device.to_hex()))?;
            match (author.role, author.limits) {
                (Role::CashPoint | Role::SchoolDevice, Some(limits)) => limits,
                (role, _) => {
                    return Err(NodeError::Refused(format!("a {} has no offline limits to change", role.name())));
                }
            }
        };
        let limits = OfflineLimits {
            per_operation: per_operation.unwrap_or(current.per_operation),
            unconfirmed_total: unconfirmed_total.unwrap_or(current.unconfirmed_total),
            offline_secs_max: offline_secs_max.unwrap_or(current.offline_secs_max),
        };
        check_limits(&limits)?;
        if limits != current {
            self.record(Body::ChangeLimits { device, limits })?;
        }
        Ok(limits)
    }

    /// Revokes a device (hub only): what it recorded up to the last operation
    /// the hub has seen keeps counting; anything later is flagged.
    pub fn revoke(&mut self, device: AuthorId, reason: &Label) -> Result<SignedOp> {
        self.me.hub_key("revoke devices")?;
        let last_seq_seen = {
            let tx = self.store.read()?;
            tx.author(&device)?.map(|a| a.head_seq).ok_or_else(|| NodeError::UnknownDevice(device.to_hex()))?
        };
        self.record(Body::Revoke { device, last_seq_seen, reason: reason.clone() })
    }

    /// A hub operator's review of a flagged operation.
    pub fn review(&mut self, target: &OpId, accept: bool, operator: &Label, note: &Label) -> Result<SignedOp> {
        self.me.hub_key("review flagged operations")?;
        let author = {
            let tx = self.store.read()?;
            match tx.verdict(target)? {
                Some(v) if matches!(v.verdict, Verdict::Flagged { .. }) => {}
                Some(_) => return Err(NodeError::NotFlagged(target.to_hex())),
                None if tx.has_op(target)? => return Err(NodeError::NotFlagged(target.to_hex())),
                None => return Err(NodeError::UnknownOperation(target.to_hex())),
            }
            tx.money_op(target)?.ok_or_else(|| NodeError::UnknownOperation(target.to_hex()))?.author
        };
        let verdict = if accept {
            Verdict::ReviewAccepted { operator: operator.clone(), note: note.clone() }
        } else {
            Verdict::ReviewRejected { operator: operator.clone(), note: note.clone() }
        };
        self.record(Body::Decisions(vec![Decision { target: *target, author, verdict }]))
    }

    /// [`Node::review`] as an operator asks for it: accepting an operation
    /// that takes a wallet below its floor ([`ledger::below_floor_if_accepted`])
    /// is refused, with nothing recorded, unless `below_floor_confirmed`.
    /// The check and the decision are one transaction. Returns the decision
    /// and the wallets it took below their floors.
    pub fn review_checked(
        &mut self,
        target: &OpId,
        accept: bool,
        operator: &Label,
        note: &Label,
        below_floor_confirmed: bool,
    ) -> Result<(SignedOp, Vec<WalletBelowFloor>)> {
        let key = self.me.hub_key("review flagged operations")?;
        let mut tx = self.store.write()?;
        match tx.verdict(target)? {
            Some(v) if matches!(v.verdict, Verdict::Flagged { .. }) => {}
            Some(_) => return Err(NodeError::NotFlagged(target.to_hex())),
            None if tx.has_op(target)? => return Err(NodeError::NotFlagged(target.to_hex())),
            None => return Err(NodeError::UnknownOperation(target.to_hex())),
        }
        let op = tx.money_op(target)?.ok_or_else(|| NodeError::UnknownOperation(target.to_hex()))?;
        let below = if accept { wallets_below_floor_if_accepted(&tx, &op)? } else { Vec::new() };
        if !below.is_empty() && !below_floor_confirmed {
            return Err(NodeError::BelowFloorInReview {
                kind: op.kind.replace('-', " "),
                wallets: below.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
            });
        }
        let verdict = if accept {
            Verdict::ReviewAccepted { operator: operator.clone(), note: note.clone() }
        } else {
            Verdict::ReviewRejected { operator: operator.clone(), note: note.clone() }
        };
        let body = Body::Decisions(vec![Decision { target: *target, author: op.author, verdict }]);
        let signed = self.me.author(&mut tx, key, body)?;
        self.me.commit(tx)?;
        Ok((signed, below))
    }

    pub fn flagged(&mut self, limit: u32) -> Result<Vec<FlaggedRow>> {
        let tx = self.store.read()?;
        Ok(tx.flagged(limit)?)
    }

    // ---- money --------------------------------------------------------------

    /// Finds the wallet a top-up goes to: the consumer by PAN, the service
    /// named or, when the consumer has one wallet, that one.
    pub fn resolve_wallet(&mut self, pan: &Pan, service: Option<&ServiceId>) -> Result<(ConsumerRow, ServiceId)> {
        let tx = self.store.read()?;
        let consumer = tx.consumer_by_pan(pan)?.ok_or_else(|| NodeError::UnknownPan(pan.to_string()))?;
        let services = tx.consumer_services(&consumer.consumer)?;
        let who = format!("{} {}", consumer.name, consumer.surname);
        let list = || services.iter().map(ServiceId::as_str).collect::<Vec<_>>().join(", ");
        let service = match service {
            Some(s) if services.contains(s) => s.clone(),
            Some(s) => {
                return Err(NodeError::NotEnrolled { consumer: who, service: s.to_string(), enrolled: list() });
            }
            None => match services.as_slice() {
                [only] => only.clone(),
                [] => return Err(NodeError::NoWallet(who)),
                _ => {
                    return Err(NodeError::ServiceNeeded { consumer: who, services: list() });
                }
            },
        };
        Ok((consumer, service))
    }

    /// Records a top-up with the next receipt number and returns its receipt.
    pub fn record_top_up(
        &mut self,
        lines: &[TopUpRequestLine],
        method: PaymentMethod,
        operator: Option<&Label>,
    ) -> Result<Receipt> {
        let key = self.me.key.as_ref().ok_or(NodeError::NoKey)?;
        let mut tx = self.store.write()?;
        for line in lines {
            let consumer =
                tx.consumer(&line.consumer)?.ok_or_else(|| NodeError::UnknownConsumer(line.consumer.to_hex()))?;
            if !tx.is_enrolled(&line.consumer, &line.service)? {
                let enrolled =
                    tx.consumer_services(&line.consumer)?.iter().map(ServiceId::as_str).collect::<Vec<_>>().join(", ");
                return Err(NodeError::NotEnrolled {
                    consumer: format!("{} {}", consumer.name, consumer.surname),
                    service: line.service.to_string(),
                    enrolled,
                });
            }
        }
        let total: i64 = lines.iter().map(|l| l.amount.minor()).sum();
        self.me.check_may_record(&tx, saldo_sync::OpKind::TopUp)?;
        self.me.check_offline_limits(&tx, total)?;
        let receipt = self.me.next_receipt(&tx, &key.author())?;
        let body = Body::TopUp(TopUp {
            receipt,
            lines: lines
                .iter()
                .map(|l| TopUpLine {
                    wallet: WalletKey { consumer: l.consumer, service: l.service.clone() },
                    amount: l.amount,
                })
                .collect(),
            method,
            operator: operator.cloned(),
        });
        let signed = self.me.author(&mut tx, key, body)?;
        let receipt = self.me.receipt_in(&tx, &signed)?;
        self.me.commit(tx)?;
        Ok(receipt)
    }

    /// This device's allowances for charges: per wallet, what it may still charge.
    pub fn allowances(&mut self) -> Result<Vec<(WalletKey, Balance)>> {
        let me = self.me.ctx.own.ok_or(NodeError::NoKey)?;
        let tx = self.store.read()?;
        let mut out = Vec::new();
        for (consumer, service) in tx.escrow_wallets(&me)? {
            let (granted, used) = tx.escrow_of(&me, &consumer, &service)?;
            let left = Balance::from_minor((granted - used).max(0)).unwrap_or(Balance::ZERO);
            out.push((WalletKey { consumer, service }, left));
        }
        Ok(out)
    }

    /// Records a charge (a meal, a fee) on a wallet, as a school device or
    /// the hub. A device charges only within the allowance the hub reserved
    /// for it on that wallet, and refuses beyond it, saying so.
    pub fn record_service_charge(&mut self, wallet: WalletKey, amount: Amount, reference: &Label) -> Result<SignedOp> {
        let key = self.me.key.as_ref().ok_or(NodeError::NoKey)?;
        let mut tx = self.store.write()?;
        if !tx.is_enrolled(&wallet.consumer, &wallet.service)? {
            return Err(NodeError::NotEnrolled {
                consumer: wallet.consumer.to_hex(),
                service: wallet.service.to_string(),
                enrolled: String::new(),
            });
        }
        if !self.me.ctx.is_hub() {
            self.me.check_may_record(&tx, saldo_sync::OpKind::ServiceCharge)?;
            self.me.check_offline_limits(&tx, amount.minor())?;
            let (granted, used) = tx.escrow_of(&key.author(), &wallet.consumer, &wallet.service)?;
            if amount.minor() > granted - used {
                let left = Balance::from_minor((granted - used).max(0)).map_or_else(String::new, |b| b.to_string());
                return Err(NodeError::Refused(format!(
                    "{amount} EUR is over what this device may still charge on this wallet ({left} EUR): ask the hub for an allowance, or charge at the office"
                )));
            }
        }
        let body = Body::ServiceCharge(saldo_sync::ServiceCharge { reference: reference.clone(), wallet, amount });
        let signed = self.me.author(&mut tx, key, body)?;
        self.me.commit(tx)?;
        Ok(signed)
    }

    // ---- queries ------------------------------------------------------------

    pub fn search(&mut self, text: &str, limit: u32) -> Result<Vec<ConsumerView>> {
        let query = search::parse_query(text)?;
        let limit = limit.min(search::SEARCH_RESULTS_MAX);
        let tx = self.store.read()?;
        let rows = match query {
            Query::Pan(pan) => tx.consumer_by_pan(&pan)?.into_iter().collect(),
            Query::FiscalCode(code) => tx.consumers_by_fiscal_code(code.as_str())?,
            Query::NamePrefix(prefix) => tx.consumers_by_key_prefix(&prefix, limit)?,
        };
        rows.into_iter().take(limit as usize).map(|row| consumer_view(&tx, row)).collect()
    }

    /// A consumer's wallets with their balances and last movements.
    pub fn balance(&mut self, pan: &Pan) -> Result<BalanceView> {
        let tx = self.store.read()?;
        let row = tx.consumer_by_pan(pan)?.ok_or_else(|| NodeError::UnknownPan(pan.to_string()))?;
        let consumer = row.consumer;
        let view = consumer_view(&tx, row)?;
        let mut wallets = Vec::new();
        for service in tx.consumer_services(&consumer)? {
            let WalletRow { confirmed, provisional, .. } = tx.wallet(&consumer, &service)?;
            let movements =
                tx.movements(&consumer, &service, MOVEMENTS_SHOWN)?.into_iter().map(movement_view).collect();
            wallets.push(WalletView { service: service.to_string(), confirmed, provisional, movements });
        }
        Ok(BalanceView { consumer: view, wallets })
    }

    /// The wallet balances (confirmed, provisional) of one wallet.
    pub fn wallet(&mut self, consumer: &ConsumerId, service: &ServiceId) -> Result<WalletRow> {
        let tx = self.store.read()?;
        Ok(tx.wallet(consumer, service)?)
    }

    /// Re-checks the whole log: every signature, every chain link, every
    /// derived balance against a recomputation from the operations.
    pub fn verify_log(&mut self) -> Result<VerifyReport> {
        let realm = self.me.ctx.realm;
        let tx = self.store.read()?;
        let mut report = VerifyReport {
            operations: tx.op_count()?,
            equivocations: tx.equivocation_count()?,
            ..VerifyReport::default()
        };
        let authors = tx.authors()?;
        report.authors = authors.len() as u64;
        let mut last: Option<(AuthorId, Seq, OpId)> = None;
        let mut problems = Vec::new();
        let walk = tx.for_each_op(|in_chain, bytes| {
            let signed = match SignedOp::decode(&bytes) {
                Ok(s) => s,
                Err(e) => {
                    problems.push(format!("an operation does not decode: {e}"));
                    return Ok(());
                }
            };
            if let Err(e) = signed.verify(&realm) {
                problems.push(e.to_string());
            }
            if !in_chain {
                return Ok(());
            }
            let (author, seq) = (signed.op.author, signed.op.seq);
            let expected_prev = match last {
                Some((a, s, id)) if a == author => {
                    if seq != s.next() {
                        problems.push(format!("{author:?}: operation #{seq} follows #{s}"));
                    }
                    id
                }
                _ => {
                    if seq != Seq::FIRST {
                        problems.push(format!("{author:?}: log starts at #{seq}"));
                    }
                    OpId::NONE
                }
            };
            if signed.op.prev != expected_prev {
                problems.push(format!("{author:?}: operation #{seq} does not link to #{}", seq.0.saturating_sub(1)));
            }
            last = Some((author, seq, signed.id));
            Ok(())
        })?;
        if let Err(e) = walk {
            problems.push(e);
        }
        for author in &authors {
            if author.head_seq.0 > 0 && tx.chain_op_at(&author.author, author.head_seq)? != author.head_id {
                problems.push(format!("{:?}: recorded head does not match the log", author.author));
            }
        }
        for author in tx.receipt_max_mismatches()? {
            problems.push(format!("{author:?}: recorded highest receipt does not match the log"));
        }
        let kept: Vec<(ConsumerId, String, i64, i64)> = tx
            .wallets()?
            .into_iter()
            .map(|w| (w.consumer, w.service.to_string(), w.confirmed.minor(), w.provisional.minor()))
            .collect();
        let recomputed = tx.recomputed_wallets()?;
        report.wallets = kept.len() as u64;
        if self.me.ctx.is_device() {
            // A device's confirmed balances come from the hub's checkpoints
            // where it has them; what it adds on top is its own operations
            // awaiting the hub, and that it can recompute.
            let recomputed: BTreeMap<(ConsumerId, String), (i64, i64)> = recomputed
                .into_iter()
                .map(|(c, s, confirmed, provisional)| ((c, s), (confirmed, provisional)))
                .collect();
            for (consumer, service, confirmed, provisional) in &kept {
                let (c, p) = recomputed.get(&(*consumer, service.clone())).copied().unwrap_or((0, 0));
                let service_id = ServiceId::parse(service).map_err(|e| NodeError::Refused(e.to_string()))?;
                let checkpointed = tx.checkpoint(consumer, &service_id)?.is_some();
                if provisional - confirmed != p - c || (!checkpointed && *confirmed != c) {
                    problems.push(format!(
                        "the balance of {consumer:?}/{service} differs from a recomputation over the log"
                    ));
                }
            }
        } else if kept != recomputed {
            problems.push(format!(
                "derived balances differ from a recomputation over the log ({} wallets kept, {} recomputed)",
                kept.len(),
                recomputed.len()
            ));
        }
        let (credits, debits) = tx.counted_credits_and_debits()?;
        let sum = tx.wallet_balance_sum()?;
        if !self.me.ctx.is_device() && sum != credits - debits {
            problems.push(format!(
                "the sum of balances ({sum} cents) is not credits minus debits ({} cents)",
                credits - debits
            ));
        }
        report.problems = problems;
        Ok(report)
    }

    /// A fingerprint of everything a node derives from the log: balances,
    /// verdicts, frozen and revoked devices, directory. Equal sets of
    /// operations give equal fingerprints.
    pub fn state_digest(&mut self) -> Result<Vec<String>> {
        let tx = self.store.read()?;
        let mut out = Vec::new();
        for w in tx.wallets()? {
            out.push(format!("wallet {} {} {}", w.consumer.to_hex(), w.service, w.confirmed));
        }
        for (target, verdict, reason) in tx.all_verdicts()? {
            out.push(format!("verdict {} {verdict} {}", target.to_hex(), reason.unwrap_or_default()));
        }
        for author in tx.authors()? {
            out.push(format!(
                "author {} {:?} revoked={:?} frozen={}",
                author.author.to_hex(),
                author.role,
                author.revoked_after,
                author.frozen_at.is_some()
            ));
        }
        out.extend(tx.directory_digest()?);
        Ok(out)
    }

    /// Every operation held (chain and evidence), in author and chain order:
    /// what a bundle of everything carries.
    pub fn all_operations(&mut self) -> Result<Vec<Vec<u8>>> {
        let tx = self.store.read()?;
        let mut out = Vec::new();
        tx.for_each_op(|_, bytes| {
            out.push(bytes);
            Ok(())
        })?
        .map_err(NodeError::Refused)?;
        Ok(out)
    }

    /// A top-up line for a PAN and an optional service, with the amount parsed.
    pub fn top_up_line(&mut self, pan: &Pan, service: Option<&ServiceId>, amount: Amount) -> Result<TopUpRequestLine> {
        let (consumer, service) = self.resolve_wallet(pan, service)?;
        Ok(TopUpRequestLine { consumer: consumer.consumer, service, amount })
    }

    /// How many consumers and families the directory holds.
    pub fn directory_counts(&mut self) -> Result<(u64, u64)> {
        let tx = self.store.read()?;
        Ok((tx.consumer_count()?, tx.family_count()?))
    }
}

impl Me {
    pub fn realm(&self) -> RealmId {
        self.ctx.realm
    }

    /// Signs the next operation of `key`'s log and applies it in `tx`. On a
    /// hub, an operation on money is first judged by the same rules the hub
    /// applies to everybody's, and refused if it would be flagged.
    pub fn author(&self, tx: &mut Tx<'_>, key: &DeviceKey, body: Body) -> Result<SignedOp> {
        let signed = self.sign_next(tx, key, body)?;
        let author = signed.op.author;
        if signed.op.body.kind().needs_verdict() && author == self.ctx.realm.hub() {
            let row = tx.author(&author)?.expect("the hub is an author of its realm");
            let facts = state::gather_facts(tx, &author, &signed, &row)?;
            if let Verdict::Flagged { reason, detail } = ledger::decide(&facts) {
                return Err(NodeError::Refused(format!("{}: {}", reason.describe(), detail)));
            }
        }
        match state::apply(tx, &self.ctx, &signed)? {
            Applied::New => {}
            other => unreachable!("a freshly signed operation at the head is new, not {other:?}"),
        }
        Ok(signed)
    }

    /// Records a directory change this node just made to `doc`.
    fn author_directory(&self, tx: &mut Tx<'_>, key: &DeviceKey, doc: DocId, edited: directory::Edited) -> Result<()> {
        let view = state::view_of(&doc, &edited.doc);
        let signed = self.sign_next(tx, key, Body::DirectoryChange { doc, change: edited.change })?;
        match state::apply_with_view(tx, &self.ctx, &signed, view)? {
            Applied::New => Ok(()),
            other => unreachable!("a freshly signed operation at the head is new, not {other:?}"),
        }
    }

    /// Signs `body` as the next operation of `key`'s log (not yet applied).
    fn sign_next(&self, tx: &mut Tx<'_>, key: &DeviceKey, body: Body) -> Result<SignedOp> {
        let author = key.author();
        let (seq, prev) = match tx.author(&author)? {
            Some(row) => (row.head_seq.next(), row.head_id.unwrap_or(OpId::NONE)),
            None => (Seq::FIRST, OpId::NONE),
        };
        let hlc = self.next_hlc(tx)?;
        tx.set_meta(META_LAST_HLC, &hlc.0.to_be_bytes())?;
        let hub_seen = tx.author(&self.ctx.realm.hub())?.map_or(Seq(0), |hub| hub.head_seq);
        Ok(Operation { author, seq, prev, hlc, hub_seen, body }.sign(&self.ctx.realm, key))
    }

    /// The timestamp this node's next operation gets.
    fn next_hlc(&self, tx: &Tx<'_>) -> Result<Hlc> {
        let last = tx
            .meta(META_LAST_HLC)?
            .and_then(|b| b.try_into().ok())
            .map(|b| Hlc(u64::from_be_bytes(b)))
            .unwrap_or_default();
        Ok(Hlc::tick(last, self.clock.now_ms()))
    }

    /// A device records only what its role allows (the hub would flag the rest).
    fn check_may_record(&self, tx: &Tx<'_>, kind: saldo_sync::OpKind) -> Result<()> {
        let Some(me) = self.ctx.own.filter(|_| !self.ctx.is_hub()) else {
            return Ok(());
        };
        self.check_own_log(tx)?;
        match tx.author(&me)? {
            Some(author) if !ledger::role_may_record(author.role, kind) => {
                Err(NodeError::Refused(format!("a {} does not record a {}", author.role.name(), kind.name())))
            }
            _ => Ok(()),
        }
    }

    /// A device refuses to record money beyond the offline limits the hub
    /// granted it: one operation's amount, the total awaiting the hub's
    /// verdict, the time since the last contact with the hub. (The hub
    /// flags what breaks a rule anyway; this stops it at the counter.)
    fn check_offline_limits(&self, tx: &Tx<'_>, total_minor: i64) -> Result<()> {
        let Some(me) = self.ctx.own.filter(|_| !self.ctx.is_hub()) else {
            return Ok(());
        };
        let author = tx.author(&me)?.ok_or_else(|| {
            NodeError::Refused("this device's enrolment has not arrived yet: let it sync with the hub first".into())
        })?;
        if author.revoked_after.is_some() {
            return Err(NodeError::Refused("the hub revoked this device: it may not record money any more".into()));
        }
        let Some(limits) = author.limits else { return Ok(()) };
        let euro = |minor: i64| Balance::from_minor(minor).map_or_else(|| format!("{minor} cents"), |b| b.to_string());
        if total_minor > limits.per_operation.minor() {
            return Err(NodeError::Refused(format!(
                "{} EUR is over this cash point's limit of {} EUR per operation, set by the hub: record less, or at the municipal office",
                euro(total_minor),
                limits.per_operation
            )));
        }
        let (_, pending) = tx.unconfirmed_of(&me)?;
        if pending + total_minor > limits.unconfirmed_total.minor() {
            return Err(NodeError::Refused(format!(
                "{} EUR recorded here await the hub's confirmation, and {} EUR more would pass this cash point's limit of {} EUR: reconnect to the hub (or carry a bundle to it) first",
                euro(pending),
                euro(total_minor),
                limits.unconfirmed_total
            )));
        }
        // Contact with the hub is what the device holds of the hub's log:
        // the hub writes a heartbeat when it is quiet, so a device in touch
        // holds a recent operation of it. The hub checks the same thing.
        let hub = self.ctx.realm.hub();
        let hub_head = tx.author(&hub)?.map_or(Seq(0), |a| a.head_seq);
        if let Some(hub_ms) = tx.op_wall_ms(&hub, hub_head)? {
            let offline_secs = self.next_hlc(tx)?.wall_ms().saturating_sub(hub_ms) / 1000;
            if offline_secs > u64::from(limits.offline_secs_max) {
                return Err(NodeError::Refused(format!(
                    "the newest news from the hub here is {} h {} min old, over this cash point's limit of {} h: reconnect to the hub (or import a bundle from it) first",
                    offline_secs / 3600,
                    offline_secs % 3600 / 60,
                    limits.offline_secs_max / 3600
                )));
            }
        }
        Ok(())
    }

    /// Commits a transaction. On the hub, first signs balance checkpoints of
    /// the wallets whose confirmed balance the transaction changed, as of its
    /// log so far: devices take these as the confirmed balances of wallets
    /// whose other operations they do not hold.
    fn commit(&self, mut tx: Tx<'_>) -> Result<()> {
        if let Some(key) = self.key.as_ref().filter(|_| self.ctx.is_hub()) {
            let dirty = tx.take_dirty_wallets();
            for chunk in dirty.chunks(saldo_sync::op::CHECKPOINT_WALLETS_MAX) {
                let as_of = tx.author(&key.author())?.map_or(Seq(0), |a| a.head_seq);
                let mut balances = Vec::with_capacity(chunk.len());
                for (consumer, service) in chunk {
                    let balance = tx.wallet(consumer, service)?.confirmed;
                    balances.push(WalletBalance {
                        wallet: WalletKey { consumer: *consumer, service: service.clone() },
                        balance,
                    });
                }
                self.author(&mut tx, key, Body::BalanceCheckpoint { as_of, balances })?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn hub_key(&self, what: &'static str) -> Result<&DeviceKey> {
        match &self.key {
            Some(key) if self.ctx.is_hub() => Ok(key),
            _ => Err(NodeError::HubOnly(what)),
        }
    }

    /// Writes the decision operations carrying verdicts already in effect.
    fn write_decisions(&self, tx: &mut Tx<'_>, key: &DeviceKey, pending: &mut PendingDecisions) -> Result<()> {
        for chunk in pending.take() {
            let signed = self.sign_next(tx, key, Body::Decisions(chunk))?;
            state::apply_decided(tx, &self.ctx, &signed)?;
        }
        Ok(())
    }

    /// Like [`Node::put_family`], inside the caller's transaction (imports batch many).
    pub fn put_family_in(&self, tx: &mut Tx<'_>, family: &FamilyRecord, contacts: &ContactRecord) -> Result<usize> {
        let key = self.hub_key("edit the directory")?;
        let mut written = 0;
        let doc = DocId::Family(family.id);
        if let Some(edited) = directory::change_family(state::load_doc(tx, &doc)?, &key.author(), family)? {
            self.author_directory(tx, key, doc, edited)?;
            written += 1;
        }
        let contacts_key = self.contacts_key.as_ref().ok_or(NodeError::HubOnly("edit contact data"))?;
        let doc = DocId::Contacts(family.id);
        if (contacts.email.is_some() || contacts.phone.is_some())
            && let Some(edited) =
                directory::change_contacts(state::load_doc(tx, &doc)?, &contacts_key.author(), contacts)?
        {
            self.author_directory(tx, contacts_key, doc, edited)?;
            written += 1;
        }
        Ok(written)
    }

    /// Creates or updates a service as the hub.
    pub fn put_service_in(&self, tx: &mut Tx<'_>, service: &ServiceRecord) -> Result<bool> {
        let key = self.hub_key("edit services")?;
        let doc = DocId::Service(service.id.clone());
        match directory::change_service(state::load_doc(tx, &doc)?, &key.author(), service)? {
            Some(edited) => {
                self.author_directory(tx, key, doc, edited)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn receipt_in(&self, tx: &Tx<'_>, signed: &SignedOp) -> Result<Receipt> {
        let Body::TopUp(top_up) = &signed.op.body else { unreachable!("receipts are made for top-ups") };
        let money = tx.money_op(&signed.id)?.expect("a recorded top-up is a money operation");
        let first = top_up.lines.first().expect("a top-up has at least one line");
        let consumer = tx.consumer(&first.wallet.consumer)?.expect("the consumer was checked before recording");
        let pan_masked = Pan::parse(&consumer.pan).map(|p| p.masked()).unwrap_or_default();
        let cash_point = tx.author(&signed.op.author)?.map(|a| a.name).unwrap_or_default();
        let mut lines = Vec::new();
        let mut total = 0i64;
        for line in &top_up.lines {
            let wallet = tx.wallet(&line.wallet.consumer, &line.wallet.service)?;
            total += line.amount.minor();
            lines.push(ReceiptLine {
                service: line.wallet.service.to_string(),
                amount: line.amount,
                balance_after: if money.counts { wallet.confirmed } else { wallet.provisional },
            });
        }
        Ok(Receipt {
            realm: self.realm_name.clone(),
            cash_point,
            operator: top_up.operator.as_ref().map(|o| o.to_string()),
            receipt_number: top_up.receipt.0,
            recorded_at_ms: signed.op.hlc.wall_ms(),
            consumer: format!("{} {}", consumer.name, consumer.surname),
            pan_masked,
            method: top_up.method.name(),
            lines,
            total: Balance::from_minor(total).map(|b| b.to_string()).unwrap_or_default(),
            provisional: !money.counts,
            verification_code: signed.id.to_hex(),
        })
    }
}

fn consumer_view(tx: &Tx<'_>, row: ConsumerRow) -> Result<ConsumerView> {
    let services = tx.consumer_services(&row.consumer)?.into_iter().map(|s| s.to_string()).collect();
    Ok(ConsumerView {
        consumer: row.consumer.to_hex(),
        surname: row.surname,
        name: row.name,
        pan: row.pan,
        fiscal_code: row.fiscal_code,
        school: row.school,
        class: row.class,
        services,
    })
}

fn movement_view(row: MovementRow) -> MovementView {
    let status = if row.counts {
        "confirmed"
    } else if row.counts_provisional {
        "provisional"
    } else {
        match row.verdict.as_deref() {
            Some("flagged") => "flagged",
            Some("review-rejected") => "rejected",
            Some(_) => "reversed",
            None => "awaiting the hub",
        }
    };
    MovementView {
        operation: row.op.to_hex(),
        kind: row.kind,
        receipt: row.receipt,
        method: row.method,
        recorded_at_ms: row.hlc >> 16,
        amount: Balance::from_minor(row.delta_minor).unwrap_or(Balance::ZERO),
        status,
        reason: row.reason,
    }
}

/// An operation decoded and its signature checked, or why it was refused.
type CheckedOp = std::result::Result<SignedOp, IngestError>;

/// The decoding and signature checks of a batch's parts, shared between the
/// thread that stores them (in order) and helper threads: any thread takes the next part
/// nobody has taken; the storing thread waits only when the part it needs is
/// being checked by another thread.
struct PartChecker<'a> {
    realm: &'a RealmId,
    parts: &'a [&'a [Vec<u8>]],
    next: std::sync::atomic::AtomicUsize,
    done: std::sync::Mutex<Vec<Option<Vec<CheckedOp>>>>,
    ready: std::sync::Condvar,
}

impl<'a> PartChecker<'a> {
    fn new(realm: &'a RealmId, parts: &'a [&'a [Vec<u8>]]) -> PartChecker<'a> {
        PartChecker {
            realm,
            parts,
            next: std::sync::atomic::AtomicUsize::new(0),
            done: std::sync::Mutex::new((0..parts.len()).map(|_| None).collect()),
            ready: std::sync::Condvar::new(),
        }
    }

    /// Checks the next part nobody has taken; false when none is left.
    fn check_next(&self) -> bool {
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(part) = self.parts.get(i) else {
            return false;
        };
        let decoded: Vec<std::result::Result<SignedOp, saldo_sync::DecodeError>> =
            part.iter().map(|bytes| SignedOp::decode(bytes)).collect();
        let good: Vec<&SignedOp> = decoded.iter().flatten().collect();
        let mut signatures = saldo_sync::op::verify_all_here(self.realm, &good).into_iter();
        let checked = decoded
            .into_iter()
            .map(|op| {
                let op = op?;
                signatures.next().expect("one signature check per decoded operation")?;
                Ok(op)
            })
            .collect();
        self.done.lock().unwrap_or_else(std::sync::PoisonError::into_inner)[i] = Some(checked);
        self.ready.notify_all();
        true
    }

    /// The checks of part `i`, checking later parts meanwhile if it is not ready.
    fn wait_for(&self, i: usize) -> Vec<CheckedOp> {
        loop {
            let mut done = self.done.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(checked) = done[i].take() {
                return checked;
            }
            if self.next.load(std::sync::atomic::Ordering::Relaxed) < self.parts.len() {
                drop(done);
                self.check_next();
                continue;
            }
            while done[i].is_none() {
                done = self.ready.wait(done).unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        }
    }

    /// Leaves the parts not taken yet unchecked.
    fn stop(&self) {
        self.next.store(self.parts.len(), std::sync::atomic::Ordering::Relaxed);
    }
}

/// A node hands out its operations to sync sessions.
impl OpSource for Node {
    type Error = NodeError;

    fn chain(
        &mut self,
        author: &AuthorId,
        from: Seq,
        upto: Seq,
        max_ops: usize,
        max_bytes: usize,
    ) -> Result<Vec<ChainOp>> {
        Ok(self.store.read()?.chain_range(author, from, upto, max_ops, max_bytes)?)
    }

    fn chain_id(&mut self, author: &AuthorId, seq: Seq) -> Result<Option<OpId>> {
        Ok(self.store.read()?.chain_op_at(author, seq)?)
    }

    fn all_from(&mut self, author: &AuthorId, from: Seq, max_ops: usize) -> Result<Vec<ChainOp>> {
        Ok(self.store.read()?.all_from(author, from, max_ops)?)
    }

    fn holds(&mut self, id: &OpId) -> Result<bool> {
        Ok(self.store.read()?.has_op(id)?)
    }
}
