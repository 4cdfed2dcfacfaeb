//! The `saldo` command line. Every command works on a data directory whether
//! or not a node process is running on it (SQLite's locking serialises
//! writers); every command that prints data takes `--json`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand};
use saldo_sync::{Amount, Label, OpId, Pan, PaymentMethod, ServiceId};

use crate::generate;
use crate::import;
use crate::node::{BalanceView, Node, Receipt, VerifyReport};

/// Writes a line to standard output. Writing to a closed pipe (`saldo search
/// … | head -1`) is an [`OutputError`] that [`main`] ends on quietly, not a
/// panic as in `println!`.
macro_rules! outln {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout(), $($arg)*).map_err(OutputError)?
    };
}

/// [`outln!`] without the line end.
macro_rules! out {
    ($($arg:tt)*) => {
        write!(std::io::stdout(), $($arg)*).map_err(OutputError)?
    };
}

/// Standard output could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the output")]
struct OutputError(#[source] std::io::Error);

#[derive(Debug, Parser)]
#[command(name = "saldo", version, about = "Prepaid balances of school services, recorded online or offline", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or inspect a realm (Ente).
    #[command(subcommand)]
    Realm(RealmCommand),
    /// Import families and consumers from CSV.
    #[command(subcommand)]
    Families(FamiliesCommand),
    /// Find consumers by PAN, codice fiscale (child's or payer's) or name prefix.
    Search(SearchArgs),
    /// Record a top-up (ricarica) and print its receipt.
    Topup(TopupArgs),
    /// Show a consumer's wallets, balances and last movements.
    Balance(BalanceArgs),
    /// Check the operation log.
    #[command(subcommand)]
    Log(LogCommand),
    /// Review operations the hub flagged.
    #[command(subcommand)]
    Review(ReviewCommand),
    /// List or set services (wallet categories) with their floors and tariffs.
    #[command(subcommand)]
    Services(ServicesCommand),
    /// Run this node as the realm's hub: devices sync with it over the network.
    Hub(RunArgs),
    /// Run this node as a cash point (the first time with `--join TOKEN` from `saldo enroll`).
    Cashpoint(CashpointArgs),
    /// On the hub: create a one-time token that enrols a new cash point.
    Enroll(EnrollArgs),
    /// On the hub: revoke a device; what it records later is flagged.
    Revoke(RevokeArgs),
    /// On the hub: change a device's offline limits.
    Limits(LimitsArgs),
    /// On the hub: grant a school device an allowance for charges on a wallet.
    Escrow(EscrowArgs),
    /// This node's role, identity, addresses, peers and unconfirmed operations.
    Status(StatusArgs),
    /// Write a consistent copy of a data directory (database, keys, configuration) to one file, while the node runs.
    Backup(BackupArgs),
    /// Create a data directory from a `saldo backup` file; then start the node online before recording.
    Restore(RestoreArgs),
    /// Carry operations in a file, for sites with no network.
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// Write a synthetic realm as CSV, for demos, tests and benchmarks.
    Generate(GenerateArgs),
    /// Create (once) a demo realm with generated families and a few top-ups, and say what to try.
    Demo(DemoArgs),
}

impl Command {
    /// The data directory the command works on, if any: what a message
    /// about a full disk names.
    fn data_dir(&self) -> Option<PathBuf> {
        let dir = match self {
            Command::Realm(RealmCommand::Init { data, .. })
            | Command::Families(FamiliesCommand::Import { data, .. })
            | Command::Log(LogCommand::Verify { data, .. })
            | Command::Review(ReviewCommand::List { data, .. })
            | Command::Services(ServicesCommand::List { data, .. } | ServicesCommand::Set { data, .. })
            | Command::Bundle(
                BundleCommand::Export { data, .. }
                | BundleCommand::Import { data, .. }
                | BundleCommand::Frontier { data, .. },
            ) => data,
            Command::Search(args) => &args.data,
            Command::Topup(args) => &args.data,
            Command::Balance(args) => &args.data,
            Command::Review(ReviewCommand::Accept(args)) => &args.review.data,
            Command::Review(ReviewCommand::Reject(args)) => &args.data,
            Command::Hub(args) => &args.data,
            Command::Cashpoint(args) => &args.run.data,
            Command::Enroll(args) => &args.data,
            Command::Revoke(args) => &args.data,
            Command::Limits(args) => &args.data,
            Command::Escrow(args) => &args.data,
            Command::Status(args) => &args.data,
            Command::Backup(args) => {
                return Some(args.out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).into());
            }
            Command::Restore(args) => &args.data,
            Command::Generate(args) => {
                return Some(args.out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).into());
            }
            Command::Demo(args) => return Some(args.data.clone()),
        };
        Some(dir.data.clone())
    }
}

#[derive(Debug, Args)]
struct DataArg {
    /// The node's data directory.
    #[arg(long, env = "SALDO_DATA", value_name = "DIR")]
    data: PathBuf,
}

#[derive(Debug, Args)]
struct JsonArg {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum RealmCommand {
    /// Create a realm's hub: its identity and database.
    Init {
        #[command(flatten)]
        data: DataArg,
        /// The realm's name, for example "Comune di Esempio".
        #[arg(long)]
        name: String,
        #[command(flatten)]
        json: JsonArg,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    data: DataArg,
    /// The address the sync endpoint (QUIC) binds, IP:PORT; port 0 picks a free one [default:
    /// `p2p` in DIR/saldo.toml, else 0.0.0.0:7400 for the hub, 0.0.0.0:0 for a cash point].
    #[arg(long, value_name = "IP:PORT")]
    p2p: Option<std::net::SocketAddr>,
    /// Another node to sync with directly, as `saldo status` prints it (ID@IP:PORT); repeatable.
    #[arg(long = "peer", value_name = "ID@IP:PORT")]
    peers: Vec<crate::net::PeerAddr>,
    /// Do not look for the realm's other devices on the local network (mDNS). A cash point looks
    /// unless `lan = false` in DIR/saldo.toml or it listens on a loopback address.
    #[arg(long)]
    no_lan: bool,
}

impl RunArgs {
    /// Where to listen and whom to dial: flags over DIR/saldo.toml over `default_port`.
    fn network(&self, default_port: u16) -> Result<crate::net::NetConfig> {
        let config = NodeConfig::load(&self.data.data)?;
        let bind = self.p2p.or(config.p2p).unwrap_or(std::net::SocketAddr::from(([0, 0, 0, 0], default_port)));
        Ok(crate::net::NetConfig {
            bind,
            peers: [config.peers, self.peers.clone()].concat(),
            lan: !self.no_lan && config.lan.unwrap_or(true),
        })
    }
}

#[derive(Debug, Args)]
struct CashpointArgs {
    #[command(flatten)]
    run: RunArgs,
    /// The enrolment token from `saldo enroll` on the hub: creates this node, once.
    #[arg(long, value_name = "TOKEN")]
    join: Option<String>,
    /// Where the hub is now (ID@IP:PORT), if it moved: replaces the address the token gave; repeatable.
    #[arg(long = "hub", value_name = "ID@IP:PORT")]
    hub: Vec<crate::net::PeerAddr>,
}

#[derive(Debug, Args)]
struct EnrollArgs {
    #[command(flatten)]
    data: DataArg,
    /// The cash point's name, for example "Farmacia Comunale".
    #[arg(long)]
    name: String,
    /// Largest amount of one operation, in euro; above zero.
    #[arg(long, default_value = "500")]
    per_operation: String,
    /// Largest total of operations awaiting the hub's verdict, in euro; above zero (every
    /// operation awaits the hub for a moment, so 0 would let the cash point record nothing).
    #[arg(long, default_value = "5000")]
    unconfirmed_total: String,
    /// Longest time without contact with the hub, in hours, before the cash point stops recording;
    /// at least 1.
    #[arg(long, default_value_t = 168, value_parser = clap::value_parser!(u32).range(1..=OFFLINE_HOURS_MAX))]
    offline_hours: u32,
    /// The device this cash point replaces (a forked or lost one, 64 hex digits): it is revoked, and
    /// the new one's receipt numbers continue after the highest the hub holds of it.
    #[arg(long, value_name = "DEVICE_ID")]
    replaces: Option<String>,
    #[command(flatten)]
    json: JsonArg,
}

#[derive(Debug, Args)]
struct BackupArgs {
    #[command(flatten)]
    data: DataArg,
    /// The backup file to write; an existing file is never replaced.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    #[command(flatten)]
    json: JsonArg,
}

#[derive(Debug, Args)]
struct RestoreArgs {
    /// The file `saldo backup` wrote.
    #[arg(long, value_name = "FILE")]
    from: PathBuf,
    /// The new data directory (absent or empty).
    #[command(flatten)]
    data: DataArg,
    #[command(flatten)]
    json: JsonArg,
}

/// The longest time offline a device may be given, in hours: its seconds fit in a u32.
const OFFLINE_HOURS_MAX: i64 = (u32::MAX / 3600) as i64;

#[derive(Debug, Args)]
struct RevokeArgs {
    #[command(flatten)]
    data: DataArg,
    /// The device's id (64 hex digits, as `saldo status` prints it).
    #[arg(long)]
    device: String,
    /// Why, for the log.
    #[arg(long, default_value = "revoked by the hub")]
    reason: String,
    #[command(flatten)]
    json: JsonArg,
}

#[derive(Debug, Args)]
struct LimitsArgs {
    #[command(flatten)]
    data: DataArg,
    /// The device's id (64 hex digits, as `saldo status` prints it).
    #[arg(long)]
    device: String,
    /// Largest amount of one operation, in euro; above zero.
    #[arg(long)]
    per_operation: Option<String>,
    /// Largest total of operations awaiting the hub's verdict, in euro; above zero (to stop a
    /// device recording, use `saldo revoke`).
    #[arg(long)]
    unconfirmed_total: Option<String>,
    /// Longest time without news from the hub, in hours, before the device stops recording; at
    /// least 1.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=OFFLINE_HOURS_MAX))]
    offline_hours: Option<u32>,
    #[command(flatten)]
    json: JsonArg,
}

#[derive(Debug, Args)]
struct EscrowArgs {
    #[command(flatten)]
    data: DataArg,
    /// The school device's id (64 hex digits, as `saldo status` prints it).
    #[arg(long)]
    device: String,
    /// The consumer's PAN.
    #[arg(long)]
    pan: String,
    /// The service (wallet); may be left out when the consumer has one.
    #[arg(long)]
    service: Option<String>,
    /// How much the device may charge there, in euro.
    #[arg(long)]
    amount: String,
    #[command(flatten)]
    json: JsonArg,
}

#[derive(Debug, Args)]
struct StatusArgs {
    #[command(flatten)]
    data: DataArg,
    #[command(flatten)]
    json: JsonArg,
}

#[derive(Debug, Subcommand)]
enum BundleCommand {
    /// Write a signed bundle of the operations another node lacks (given its
    /// frontier file), or of every operation held.
    Export {
        #[command(flatten)]
        data: DataArg,
        /// The bundle file to write.
        /// A regular file there is replaced whole (written beside it, then renamed); a directory,
        /// symbolic link, named pipe or device is refused.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The receiving node's frontier file (`saldo bundle frontier`): export only what it lacks.
        #[arg(long = "for", value_name = "FRONTIER")]
        lacking: Option<PathBuf>,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Import a bundle: refused whole if altered; importing it twice changes nothing.
    Import {
        #[command(flatten)]
        data: DataArg,
        /// The bundle file.
        file: PathBuf,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Write this node's frontier (what it holds) for another node's `bundle export --for`.
    Frontier {
        #[command(flatten)]
        data: DataArg,
        /// The frontier file to write.
        /// A regular file there is replaced whole (written beside it, then renamed); a directory,
        /// symbolic link, named pipe or device is refused.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum FamiliesCommand {
    /// Import one row per consumer. Columns by header name: payer_fiscal_code,
    /// payer_surname, payer_name, email, phone, consumer_fiscal_code,
    /// consumer_surname, consumer_name, pan (may be empty), school, class,
    /// services (';'-separated). Comma, semicolon or tab separated, UTF-8.
    Import {
        #[command(flatten)]
        data: DataArg,
        /// The CSV file.
        file: PathBuf,
        #[command(flatten)]
        json: JsonArg,
    },
}

#[derive(Debug, Args)]
struct SearchArgs {
    #[command(flatten)]
    data: DataArg,
    /// A PAN, a codice fiscale, or the start of a surname and/or name.
    query: String,
    /// Most results shown: 1 to 50.
    #[arg(long, default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::search::SEARCH_RESULTS_MAX)))]
    limit: u32,
    #[command(flatten)]
    json: JsonArg,
}

#[derive(Debug, Args)]
struct TopupArgs {
    #[command(flatten)]
    data: DataArg,
    /// The consumer's PAN (spaces between groups are fine).
    #[arg(long)]
    pan: String,
    /// Euro with at most two decimals: 12.50 or 12,50.
    #[arg(long, allow_hyphen_values = true)]
    amount: String,
    /// cash, debit-card, credit-card or other.
    #[arg(long)]
    method: String,
    /// The service (wallet); may be left out when the consumer has one.
    #[arg(long)]
    service: Option<String>,
    /// Who recorded it.
    #[arg(long)]
    operator: Option<String>,
    #[command(flatten)]
    json: JsonArg,
}

#[derive(Debug, Args)]
struct BalanceArgs {
    #[command(flatten)]
    data: DataArg,
    #[arg(long)]
    pan: String,
    #[command(flatten)]
    json: JsonArg,
}

#[derive(Debug, Subcommand)]
enum LogCommand {
    /// Check every signature, every chain link and every derived balance.
    Verify {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        json: JsonArg,
    },
}

#[derive(Debug, Subcommand)]
enum ReviewCommand {
    /// List flagged operations awaiting review.
    List {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Accept a flagged operation: it counts from now on. If that takes a wallet below its floor,
    /// it says so and by how much, and records nothing without --confirm-below-floor.
    Accept(ReviewAcceptArgs),
    /// Reject a flagged operation: it never counts.
    Reject(ReviewArgs),
}

#[derive(Debug, Subcommand)]
enum ServicesCommand {
    /// List the services with their floors and tariffs.
    List {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Create a service, or change its floor or tariff (hub only).
    Set {
        #[command(flatten)]
        data: DataArg,
        /// The service's name, for example "Mensa" (its id is the name folded: mensa).
        #[arg(long)]
        name: String,
        /// How far below zero a service charge may take a wallet, for example -50.
        #[arg(long, allow_hyphen_values = true)]
        floor: Option<String>,
        /// The price of one charge (a meal, a ride), for example 4.50; "none" removes it.
        #[arg(long)]
        tariff: Option<String>,
        #[command(flatten)]
        json: JsonArg,
    },
}

#[derive(Debug, Args)]
struct ReviewArgs {
    #[command(flatten)]
    data: DataArg,
    /// The operation id (as `review list` prints it).
    operation: String,
    /// The reviewing operator.
    #[arg(long)]
    operator: String,
    /// Why.
    #[arg(long)]
    note: String,
}

#[derive(Debug, Args)]
struct ReviewAcceptArgs {
    #[command(flatten)]
    review: ReviewArgs,
    /// Accept it even though it takes a wallet below its floor (the command says which and by
    /// how much when run without this).
    #[arg(long)]
    confirm_below_floor: bool,
}

#[derive(Debug, Args)]
struct GenerateArgs {
    /// How many consumers (children): 1 to 1,000,000.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=generate::CONSUMERS_MAX))]
    consumers: u64,
    /// Where to write the CSV.
    /// A regular file there is replaced whole (written beside it, then renamed); a directory,
    /// symbolic link, named pipe or device is refused.
    #[arg(long)]
    out: PathBuf,
    /// Seed of the generator (the same seed gives the same file).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Where the demo realm lives.
    #[arg(long, env = "SALDO_DATA", default_value = "demo-data")]
    data: PathBuf,
    /// How many consumers the demo realm gets: 1 to 1,000,000.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=generate::CONSUMERS_MAX))]
    consumers: u64,
    /// Only create the demo realm; do not run the hub and the cash points.
    #[arg(long)]
    no_network: bool,
    #[command(flatten)]
    json: JsonArg,
}

/// The exit code of a command whose output went to a pipe closed early
/// (`saldo search … | head -1`): what a process killed by SIGPIPE reports,
/// as `cat` or `grep` would.
pub const EXIT_BROKEN_PIPE: u8 = 128 + 13;

/// Runs the command line; returns the process exit code.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let data = cli.command.data_dir();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) if is_broken_pipe(&error) => std::process::ExitCode::from(EXIT_BROKEN_PIPE),
        Err(error) => {
            // Standard error may be closed too: nothing else to tell then.
            let _ = writeln!(std::io::stderr(), "error: {}", render_error(&error, data.as_deref()));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Did writing the output fail because its reader went away?
/// (Only for the output: a closed pipe elsewhere is an error to tell.)
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|e| e.downcast_ref::<OutputError>().is_some_and(|o| o.0.kind() == std::io::ErrorKind::BrokenPipe))
}

/// An error and its causes on one line, each said once: a cause whose text
/// the message before it already ends with (thiserror's `{source}` and
/// `#[from]` put it in both) is not repeated. On a full disk, a second line
/// says so and what to do.
pub fn render_error(error: &anyhow::Error, data: Option<&Path>) -> String {
    let mut out = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        // SQLite's own cause is "Error code 26: file is not a database" after
        // rusqlite's "file is not a database": said already.
        let last_clause = text.rsplit(": ").next().unwrap_or(&text);
        if out.ends_with(&text) || out.ends_with(last_clause) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    if error.chain().any(crate::node::is_disk_full) {
        match data {
            Some(dir) => {
                out.push_str(&format!("\nthe disk holding {} is full: free space and try again", dir.display()))
            }
            None => out.push_str("\nthe disk is full: free space and try again"),
        }
    }
    out
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let mut out = std::io::stdout().lock();
    // As an io::Error, so that a closed pipe is recognised.
    serde_json::to_writer_pretty(&mut out, value).map_err(|e| OutputError(e.into()))?;
    writeln!(out).map_err(OutputError)?;
    Ok(())
}

/// `saldo.toml` in a node's data directory; command-line flags override it.
///
/// ```toml
/// p2p = "0.0.0.0:7400"                     # where the sync endpoint listens
/// peers = ["ID@192.168.1.20:7400"]         # other nodes to sync with directly
/// lan = false                              # no mDNS discovery of the realm's devices nearby
/// ```
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeConfig {
    p2p: Option<std::net::SocketAddr>,
    #[serde(default)]
    peers: Vec<crate::net::PeerAddr>,
    lan: Option<bool>,
}

pub(crate) const CONFIG_FILE: &str = "saldo.toml";

impl NodeConfig {
    fn load(dir: &Path) -> Result<NodeConfig> {
        let path = dir.join(CONFIG_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(NodeConfig::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{} is not a valid configuration: {e}", path.display()))
    }
}

/// Runs `node` on the network until Ctrl-C or SIGTERM.
fn serve(node: Node, dir: &Path, mut config: crate::net::NetConfig) -> Result<()> {
    let mut node = node;
    for hub in node.addresses(crate::node::META_HUB_ADDRESSES)? {
        config.peers.push(hub.parse()?);
    }
    config.peers.sort();
    config.peers.dedup();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SALDO_LOG").unwrap_or_else(|_| "saldo_node=info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let stop = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
        };
        crate::net::run(node, dir, config, stop).await
    })
}

/// Creates a cash point in `dir` from an enrolment token: a new key, the hub
/// enrols it, then the node is created. If the hub refuses, nothing is left.
fn join(dir: &Path, token: &str, p2p: std::net::SocketAddr) -> Result<Node> {
    if dir.join(crate::node::DATABASE_FILE).exists() {
        bail!("{} holds a node already: run `saldo cashpoint --data {}` without --join", dir.display(), dir.display());
    }
    let token = crate::net::EnrolmentToken::decode(token)?;
    let key = saldo_sync::DeviceKey::generate();
    let existed = dir.exists();
    let mut node = Node::join(dir, token.realm, saldo_sync::DeviceKey::from_secret_bytes(&key.secret_bytes()))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let bind = std::net::SocketAddr::new(p2p.ip(), 0);
    match runtime.block_on(crate::net::redeem(&token, &key, bind)) {
        Ok(joined) => {
            let hub: Vec<String> = token.hub.iter().map(ToString::to_string).collect();
            node.set_addresses(crate::node::META_HUB_ADDRESSES, &hub)?;
            if let Some(after) = joined.receipts_after {
                node.set_receipts_after(after)?;
            }
            outln!(
                "joined the realm {} as {:?}; this node's id is {}",
                token.realm.to_hex(),
                joined.name,
                key.author().to_hex()
            );
            if let Some(after) = joined.receipts_after {
                outln!(
                    "it replaces a device whose highest receipt was no. {after}: its receipts start at no. {}",
                    after + 1
                );
            }
            Ok(node)
        }
        Err(e) => {
            drop(node);
            if existed {
                for file in [crate::node::DATABASE_FILE, crate::node::KEY_FILE] {
                    let _ = std::fs::remove_file(dir.join(file));
                }
                for suffix in ["-wal", "-shm", crate::writers::WAITING_FILE_SUFFIX] {
                    let _ = std::fs::remove_file(dir.join(format!("{}{suffix}", crate::node::DATABASE_FILE)));
                }
            } else {
                let _ = std::fs::remove_dir_all(dir);
            }
            Err(e.context("could not join the realm; nothing was created"))
        }
    }
}

#[derive(Debug, serde::Serialize)]
struct StatusView {
    role: String,
    id: String,
    realm: String,
    running: bool,
    addresses: Vec<String>,
    peers: Vec<crate::net::PeerStatus>,
    hub_online: bool,
    last_hub_contact_ms: Option<u64>,
    unconfirmed_operations: u64,
    unconfirmed_total: String,
    /// Why this device records nothing now (it checks or fetches its own
    /// log, or its log forked), if so.
    own_log: Option<String>,
}

fn status_of(node: &mut Node, dir: &Path) -> Result<StatusView> {
    let run = crate::net::RunStatus::read(dir);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let hub = node.realm().hub().to_hex();
    let role = match node.role()? {
        Some(role) => role.name().to_string(),
        None if node.is_hub() => "hub".into(),
        None => "device (enrolment not received yet)".into(),
    };
    let (count, total) = node.unconfirmed()?;
    let peers: Vec<crate::net::PeerStatus> =
        run.as_ref().map(|r| r.peers.values().cloned().collect()).unwrap_or_default();
    Ok(StatusView {
        role,
        id: node.author().map(|a| a.to_hex()).unwrap_or_default(),
        realm: node.realm().to_hex(),
        running: run.is_some(),
        addresses: run.as_ref().map(|r| r.addresses.clone()).unwrap_or_default(),
        hub_online: node.is_hub() || peers.iter().any(|p| p.id == hub && p.online),
        peers,
        last_hub_contact_ms: if node.is_hub() { Some(now) } else { node.last_hub_contact_ms()? },
        unconfirmed_operations: count,
        unconfirmed_total: total.to_string(),
        own_log: match (node.own_log_hold()?, node.author()) {
            (Some(hold), Some(me)) => Some(hold.describe(&me)),
            _ => None,
        },
    })
}

fn render_status(s: &StatusView) -> String {
    let mut out = String::new();
    out.push_str(&format!("role:        {}\nid:          {}\nrealm:       {}\n", s.role, s.id, s.realm));
    if s.running {
        out.push_str("running:     yes\n");
        for address in &s.addresses {
            out.push_str(&format!("address:     {address}   (what --peer takes)\n"));
        }
    } else {
        out.push_str("running:     no (start it with `saldo hub` or `saldo cashpoint`)\n");
    }
    out.push_str(&format!("hub:         {}\n", if s.hub_online { "online" } else { "offline" }));
    if let Some(at) = s.last_hub_contact_ms {
        let at = chrono::DateTime::from_timestamp_millis(at as i64).map(|t| t.to_rfc3339()).unwrap_or_default();
        out.push_str(&format!("last contact with the hub: {at}\n"));
    }
    out.push_str(&format!("unconfirmed: {} operations, {} EUR\n", s.unconfirmed_operations, s.unconfirmed_total));
    if let Some(own_log) = &s.own_log {
        out.push_str(&format!("recording:   held: {own_log}\n"));
    }
    for p in &s.peers {
        out.push_str(&format!(
            "peer {} {} {}  sent {} received {} refused {}  on the wire {} B out, {} B in{}\n",
            &p.id[..16],
            match (&p.addr, p.found_on_lan) {
                (Some(addr), true) => format!("{addr} (found on the LAN)"),
                (Some(addr), false) => addr.clone(),
                (None, _) => "(it dialed in)".into(),
            },
            match (&p.refused, p.online) {
                (Some(_), _) => "refused for good (not dialed again)",
                (None, true) => "online",
                (None, false) => "offline",
            },
            p.ops_sent,
            p.ops_received,
            p.ops_refused,
            p.wire_sent_bytes,
            p.wire_received_bytes,
            p.last_error.as_ref().map(|e| format!("  last error: {e}")).unwrap_or_default()
        ));
    }
    out
}

/// Writes `bytes` to `path` whole, only if it is a regular file or a new
/// name (see [`crate::out_file`]).
fn write_new_file(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(crate::out_file::write_bytes(path, bytes)?)
}

/// `saldo backup`: a consistent copy of a data directory in one file.
fn backup(args: &BackupArgs) -> Result<()> {
    let report = crate::backup::backup(&args.data.data, &args.out)?;
    if args.json.json {
        print_json(&report)?;
    } else {
        outln!(
            "wrote {} ({} bytes: {}); it holds this node's secret key: keep it as safe as the node itself",
            report.out.display(),
            report.bytes,
            report.files.join(", ")
        );
    }
    Ok(())
}

/// `saldo restore`: a new data directory from a backup, and how to start it without forking.
fn restore(args: &RestoreArgs) -> Result<()> {
    let report = crate::backup::restore(&args.from, &args.data.data)?;
    if args.json.json {
        print_json(&report)?;
        return Ok(());
    }
    let dir = args.data.data.display();
    outln!(
        "restored {} of {:?} ({}) into {dir}; its own log goes up to #{} in this copy",
        if report.hub { "the hub" } else { "the device" },
        report.realm,
        report.id,
        report.own_head
    );
    if report.hub {
        outln!("start it with `saldo hub --data {dir}`");
    } else {
        outln!(
            "before recording anything, start it online: `saldo cashpoint --data {dir}`. It first fetches back from the hub what it recorded after this copy was made (`saldo status` says so), so that no receipt number is used twice"
        );
    }
    Ok(())
}

fn open(data: &Path) -> Result<Node> {
    Node::open(data).map_err(|error| match error {
        // These begin with the directory already: said once.
        crate::node::NodeError::NotInitialised { .. } | crate::node::NodeError::FormatVersion { .. } => error.into(),
        error => anyhow::Error::from(error).context(format!("cannot open the node in {}", data.display())),
    })
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Realm(RealmCommand::Init { data, name, json }) => {
            let name = Label::parse_as(&name, "realm name")?;
            let node = Node::init_realm(&data.data, &name)?;
            if json.json {
                print_json(&serde_json::json!({
                    "realm": node.realm().to_hex(),
                    "name": node.realm_name(),
                    "data": data.data,
                }))?;
            } else {
                outln!("created realm {:?} in {}", node.realm_name(), data.data.display());
                outln!("realm id (hub key): {}", node.realm().to_hex());
            }
        }
        Command::Families(FamiliesCommand::Import { data, file, json }) => {
            let mut node = open(&data.data)?;
            let input = File::open(&file).with_context(|| format!("cannot open {}", file.display()))?;
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} families ({per_sec}, {eta} left)")
                    .expect("a valid progress template"),
            );
            let report = import::import_csv(&mut node, input, &|done, total| {
                bar.set_length(total);
                bar.set_position(done);
            })?;
            bar.finish_and_clear();
            if json.json {
                print_json(&report)?;
            } else {
                for rejected in &report.rejected {
                    outln!("{rejected}");
                }
                outln!(
                    "{} rows read: {} imported, {} rejected; {} families, {} directory changes written{}",
                    report.rows,
                    report.accepted_rows,
                    report.rejected.len(),
                    report.families,
                    report.directory_operations,
                    if report.services_created.is_empty() {
                        String::new()
                    } else {
                        format!("; new services: {}", report.services_created.join(", "))
                    }
                );
            }
        }
        Command::Search(args) => {
            let mut node = open(&args.data.data)?;
            let found = node.search(&args.query, args.limit)?;
            if args.json.json {
                print_json(&found)?;
            } else if found.is_empty() {
                outln!("nobody found for {:?}", args.query);
            } else {
                for c in &found {
                    outln!(
                        "{:<20} {:<20} PAN {}  CF {}  {} {}  [{}]",
                        c.surname,
                        c.name,
                        c.pan,
                        c.fiscal_code,
                        c.school.as_deref().unwrap_or("-"),
                        c.class.as_deref().unwrap_or(""),
                        c.services.join(", ")
                    );
                }
            }
        }
        Command::Topup(args) => {
            // Validate everything the operator typed before touching anything.
            let pan = Pan::parse(&args.pan)?;
            let amount = Amount::parse(&args.amount)?;
            let method = PaymentMethod::parse(&args.method).with_context(|| {
                format!("{:?} is not a payment method: use cash, debit-card, credit-card or other", args.method)
            })?;
            let service = args.service.as_deref().map(ServiceId::from_name).transpose()?;
            let operator = args.operator.as_deref().map(|o| Label::parse_as(o, "operator")).transpose()?;
            let mut node = open(&args.data.data)?;
            let line = node.top_up_line(&pan, service.as_ref(), amount)?;
            let receipt = node.record_top_up(&[line], method, operator.as_ref())?;
            if args.json.json {
                print_json(&receipt)?;
            } else {
                out!("{}", render_receipt(&receipt));
            }
        }
        Command::Balance(args) => {
            let pan = Pan::parse(&args.pan)?;
            let mut node = open(&args.data.data)?;
            let view = node.balance(&pan)?;
            if args.json.json {
                print_json(&view)?;
            } else {
                out!("{}", render_balance(&view));
            }
        }
        Command::Hub(args) => {
            let node = open(&args.data.data)?;
            if !node.is_hub() {
                bail!(
                    "{} holds a cash point, not the hub: run `saldo cashpoint --data {}`",
                    args.data.data.display(),
                    args.data.data.display()
                );
            }
            // A running node goes on when no one reads its output any more.
            let _ = writeln!(
                std::io::stdout(),
                "hub of {:?} ({}), data in {}",
                node.realm_name(),
                node.realm().to_hex(),
                args.data.data.display()
            );
            let config = args.network(7400)?;
            serve(node, &args.data.data, config)?;
        }
        Command::Cashpoint(args) => {
            let dir = &args.run.data.data;
            let config = args.run.network(0)?;
            let node = match &args.join {
                Some(token) => join(dir, token, config.bind)?,
                None => open(dir)?,
            };
            if node.is_hub() {
                bail!("{} holds the hub: run `saldo hub --data {}`", dir.display(), dir.display());
            }
            let mut node = node;
            if !args.hub.is_empty() {
                if let Some(wrong) = args.hub.iter().find(|h| h.id != node.realm().hub()) {
                    bail!("--hub {wrong}: that is not this realm's hub (its id is {})", node.realm().hub().to_hex());
                }
                let hub: Vec<String> = args.hub.iter().map(ToString::to_string).collect();
                node.set_addresses(crate::node::META_HUB_ADDRESSES, &hub)?;
            }
            serve(node, dir, config)?;
        }
        Command::Enroll(args) => {
            let mut node = open(&args.data.data)?;
            let name = Label::parse_as(&args.name, "cash point name")?;
            let limits = saldo_sync::OfflineLimits {
                per_operation: Amount::parse(&args.per_operation).context("--per-operation")?,
                unconfirmed_total: saldo_sync::Balance::parse(&args.unconfirmed_total)
                    .context("--unconfirmed-total")?,
                offline_secs_max: args
                    .offline_hours
                    .checked_mul(3600)
                    .context("--offline-hours is too large: at most 1,193,046 hours")?,
            };
            crate::node::check_limits(&limits)?;
            let hub: Vec<crate::net::PeerAddr> =
                node.addresses(crate::node::META_LISTEN)?.iter().filter_map(|a| a.parse().ok()).collect();
            if hub.is_empty() {
                bail!(
                    "the hub has never run: start it with `saldo hub --data {}` first, so the token can carry its address",
                    args.data.data.display()
                );
            }
            let replaces = args
                .replaces
                .as_deref()
                .map(|id| {
                    saldo_sync::AuthorId::from_hex(id)
                        .map_err(|e| anyhow::anyhow!("--replaces {id:?} is not a device id (64 hex digits): {e}"))
                })
                .transpose()?;
            let secret = match replaces {
                Some(old) => node.create_replacement_token(&name, limits, old)?,
                None => node.create_enrolment_token(&name, limits)?,
            };
            let token = crate::net::EnrolmentToken { realm: node.realm(), hub, secret }.encode();
            if args.json.json {
                print_json(&serde_json::json!({ "name": name.as_str(), "token": token }))?;
            } else {
                if let Some(old) = &args.replaces {
                    outln!(
                        "{old} is revoked; the new cash point's receipt numbers continue after the highest the hub holds of it"
                    );
                }
                outln!("enrolment token for {:?} (valid once):\n\n{token}\n", name.as_str());
                outln!("on the cash point: saldo cashpoint --data DIR --join {token}");
            }
        }
        Command::Revoke(args) => {
            let mut node = open(&args.data.data)?;
            let device = saldo_sync::AuthorId::from_hex(&args.device)
                .map_err(|e| anyhow::anyhow!("--device {:?} is not a device id (64 hex digits): {e}", args.device))?;
            let reason = Label::parse_as(&args.reason, "reason")?;
            let op = node.revoke(device, &reason)?;
            if args.json.json {
                print_json(&serde_json::json!({ "device": args.device, "revocation": op.id.to_hex() }))?;
            } else {
                outln!("revoked {}: operations it records from now on are flagged for review", args.device);
            }
        }
        Command::Limits(args) => {
            let mut node = open(&args.data.data)?;
            let device = saldo_sync::AuthorId::from_hex(&args.device)
                .map_err(|e| anyhow::anyhow!("--device {:?} is not a device id (64 hex digits): {e}", args.device))?;
            let per_operation =
                args.per_operation.as_deref().map(Amount::parse).transpose().context("--per-operation")?;
            let unconfirmed_total = args
                .unconfirmed_total
                .as_deref()
                .map(saldo_sync::Balance::parse)
                .transpose()
                .context("--unconfirmed-total")?;
            let offline_secs = args
                .offline_hours
                .map(|h| h.checked_mul(3600).context("--offline-hours is too large: at most 1,193,046 hours"))
                .transpose()?;
            let limits = node.change_limits(device, per_operation, unconfirmed_total, offline_secs)?;
            if args.json.json {
                print_json(&serde_json::json!({
                    "device": args.device,
                    "per_operation": limits.per_operation.to_string(),
                    "unconfirmed_total": limits.unconfirmed_total.to_string(),
                    "offline_hours": limits.offline_secs_max / 3600,
                }))?;
            } else {
                outln!(
                    "limits of {}: {} EUR per operation, {} EUR awaiting the hub, {} h without news from the hub (in force on the device once it syncs)",
                    args.device,
                    limits.per_operation,
                    limits.unconfirmed_total,
                    limits.offline_secs_max / 3600
                );
            }
        }
        Command::Escrow(args) => {
            let mut node = open(&args.data.data)?;
            let device = saldo_sync::AuthorId::from_hex(&args.device)
                .map_err(|e| anyhow::anyhow!("--device {:?} is not a device id (64 hex digits): {e}", args.device))?;
            let pan = Pan::parse(&args.pan)?;
            let service = args.service.as_deref().map(ServiceId::parse).transpose()?;
            let amount = Amount::parse(&args.amount)?;
            let (consumer, service) = node.resolve_wallet(&pan, service.as_ref())?;
            let wallet = saldo_sync::WalletKey { consumer: consumer.consumer, service: service.clone() };
            let op = node.grant_escrow(device, wallet, amount)?;
            if args.json.json {
                print_json(
                    &serde_json::json!({ "grant": op.id.to_hex(), "device": args.device, "service": service.as_str(), "amount": amount }),
                )?;
            } else {
                outln!(
                    "device {} may charge {amount} EUR more on {} {}'s {service} wallet",
                    &args.device[..16],
                    consumer.name,
                    consumer.surname
                );
            }
        }
        Command::Backup(args) => backup(&args)?,
        Command::Restore(args) => restore(&args)?,
        Command::Status(args) => {
            let mut node = open(&args.data.data)?;
            let status = status_of(&mut node, &args.data.data)?;
            if args.json.json {
                print_json(&status)?;
            } else {
                out!("{}", render_status(&status));
            }
        }
        Command::Bundle(BundleCommand::Export { data, out, lacking, json }) => {
            crate::out_file::check_destination(&out)?;
            let mut node = open(&data.data)?;
            let (lacking, holder) = match &lacking {
                Some(path) => {
                    let bytes = crate::out_file::read_bounded(
                        path,
                        saldo_sync::bundle::FRONTIER_FILE_BYTES_MAX as u64,
                        "frontier file",
                    )?;
                    let holder = node
                        .open_frontier_file(&bytes)
                        .with_context(|| format!("cannot use the frontier file {}", path.display()))?;
                    (Some(bytes), Some(holder))
                }
                None => (None, None),
            };
            let (bytes, count) = node.export_bundle(lacking.as_deref())?;
            write_new_file(&out, &bytes)?;
            let for_whom = holder.as_ref().map(|h| {
                serde_json::json!({
                    "device": h.holder.to_hex(),
                    "name": h.name,
                    "role": h.role.name(),
                    "frontier_written_ms": h.created_ms,
                })
            });
            if json.json {
                print_json(&serde_json::json!({
                    "file": out,
                    "operations": count,
                    "bytes": bytes.len(),
                    "for": for_whom,
                }))?;
            } else {
                outln!("wrote {count} operations ({} bytes) to {}", bytes.len(), out.display());
                match &holder {
                    Some(h) => outln!(
                        "for {} ({}), whose frontier was written {}",
                        h.name.as_deref().unwrap_or("the hub"),
                        h.role.name(),
                        format_time(h.created_ms)
                    ),
                    None if node.is_hub() => outln!(
                        "everything this hub holds, contact data included: a backup for the hub only (a cash point refuses the contact data)"
                    ),
                    None => {}
                }
            }
        }
        Command::Bundle(BundleCommand::Import { data, file, json }) => {
            let mut node = open(&data.data)?;
            let meta =
                std::fs::metadata(&file).with_context(|| format!("cannot read the bundle {}", file.display()))?;
            if meta.len() > saldo_sync::bundle::BUNDLE_BYTES_MAX {
                bail!(
                    "{} is {} bytes, over the bundle limit of {}",
                    file.display(),
                    meta.len(),
                    saldo_sync::bundle::BUNDLE_BYTES_MAX
                );
            }
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read the bundle {}", file.display()))?;
            let report = node.import_bundle(&bytes).with_context(|| format!("{} was not imported", file.display()))?;
            if json.json {
                print_json(&report)?;
            } else {
                outln!(
                    "{} operations from {}: {} new, {} already held, {} equivocations kept as evidence, {} refused",
                    report.operations,
                    report.exporter,
                    report.new,
                    report.duplicates,
                    report.equivocations,
                    report.refused.len()
                );
                for reason in &report.refused {
                    outln!("  refused {reason}");
                }
            }
        }
        Command::Bundle(BundleCommand::Frontier { data, out }) => {
            let mut node = open(&data.data)?;
            crate::out_file::check_destination(&out)?;
            let (file, bytes) = node.frontier_file()?;
            write_new_file(&out, &bytes)?;
            outln!("wrote the frontier of {} authors to {}", file.frontier.0.len(), out.display());
        }
        Command::Log(LogCommand::Verify { data, json }) => {
            let mut node = open(&data.data)?;
            let report = node.verify_log()?;
            let integrity = node.store().integrity_check()?;
            if json.json {
                print_json(&serde_json::json!({ "report": report, "integrity_check": integrity }))?;
            } else {
                out!("{}", render_verify(&report, &integrity));
            }
            if !report.ok() || integrity != "ok" {
                bail!("the log of {} does not verify", data.data.display());
            }
        }
        Command::Review(ReviewCommand::List { data, json }) => {
            let mut node = open(&data.data)?;
            let flagged = node.flagged(1_000)?;
            if json.json {
                let rows: Vec<_> = flagged
                    .iter()
                    .map(|f| {
                        serde_json::json!({
                            "operation": f.op.to_hex(), "author": f.author.to_hex(), "kind": f.kind,
                            "reason": f.reason, "detail": f.detail,
                            "amount": saldo_sync::Balance::from_minor(f.total_minor).map(|b| b.to_string()),
                        })
                    })
                    .collect();
                print_json(&rows)?;
            } else if flagged.is_empty() {
                outln!("nothing awaits review");
            } else {
                for f in &flagged {
                    outln!(
                        "{}  {} by {}  {} EUR  {}: {}",
                        f.op.to_hex(),
                        f.kind,
                        f.author.short(),
                        saldo_sync::Balance::from_minor(f.total_minor).map(|b| b.to_string()).unwrap_or_default(),
                        f.reason,
                        f.detail
                    );
                }
            }
        }
        Command::Services(ServicesCommand::List { data, json }) => {
            let mut node = open(&data.data)?;
            let services = node.services()?;
            if json.json {
                print_json(&services.iter().map(service_json).collect::<Vec<_>>())?;
            } else {
                for s in &services {
                    outln!("{}", render_service(s));
                }
            }
        }
        Command::Services(ServicesCommand::Set { data, name, floor, tariff, json }) => {
            let name = Label::parse_as(&name, "service name")?;
            let floor = floor.as_deref().map(saldo_sync::Balance::parse).transpose()?;
            let tariff = match tariff.as_deref() {
                None => None,
                Some("none") => Some(None),
                Some(text) => Some(Some(Amount::parse(text)?)),
            };
            let mut node = open(&data.data)?;
            let service = node.set_service(&name, floor, tariff)?;
            if json.json {
                print_json(&service_json(&service))?;
            } else {
                outln!("{}", render_service(&service));
            }
        }
        Command::Review(ReviewCommand::Accept(args)) => review(args.review, true, args.confirm_below_floor)?,
        Command::Review(ReviewCommand::Reject(args)) => review(args, false, false)?,
        Command::Generate(args) => {
            if args.consumers == 0 || args.consumers > generate::CONSUMERS_MAX {
                bail!("--consumers must be 1 to {}", generate::CONSUMERS_MAX);
            }
            crate::out_file::write_atomically(&args.out, |mut out| {
                generate::write_csv(&mut out, args.consumers, args.seed)
            })?;
            let _ = writeln!(std::io::stderr(), "wrote {} consumers to {}", args.consumers, args.out.display());
        }
        Command::Demo(args) => demo(&args)?,
    }
    Ok(())
}

fn service_json(s: &crate::directory::ServiceRecord) -> serde_json::Value {
    serde_json::json!({
        "service": s.id.as_str(), "name": s.name.as_str(), "floor": s.floor, "tariff": s.tariff,
    })
}

fn render_service(s: &crate::directory::ServiceRecord) -> String {
    format!(
        "{:<16} {:<24} floor {:>8} EUR  tariff {}",
        s.id.as_str(),
        s.name.as_str(),
        s.floor.to_string(),
        s.tariff.map_or("-".to_string(), |t| format!("{t} EUR"))
    )
}

fn review(args: ReviewArgs, accept: bool, below_floor_confirmed: bool) -> Result<()> {
    let target = OpId::from_hex(&args.operation)?;
    let operator = Label::parse_as(&args.operator, "operator")?;
    let note = Label::parse_as(&args.note, "note")?;
    let mut node = open(&args.data.data)?;
    let (_, below) = node.review_checked(&target, accept, &operator, &note, below_floor_confirmed)?;
    outln!("{} {}", if accept { "accepted" } else { "rejected" }, target.to_hex());
    for wallet in &below {
        outln!("it took {wallet}");
    }
    Ok(())
}

/// A running demo cash point: its directory, name and address.
type DemoCashPoint<'a> = (PathBuf, &'a str, String);

/// What the hints say about the running demo: its cash points, the hub's
/// address and the first cash point's process id.
type DemoNetwork<'a> = (&'a [DemoCashPoint<'a>], &'a str, u32);

/// The demo's cash points: (directory, name).
const DEMO_CASH_POINTS: [(&str, &str); 2] = [("edicola", "Edicola della Piazza"), ("farmacia", "Farmacia Comunale")];

fn demo(args: &DemoArgs) -> Result<()> {
    let dir = &args.data;
    let hub_dir = dir.join("hub");
    let fresh = !hub_dir.join(crate::node::DATABASE_FILE).exists();
    if fresh {
        let mut node = Node::init_realm(&hub_dir, &Label::parse("Comune di Esempio").expect("a valid realm name"))?;
        let mut csv = Vec::new();
        generate::write_csv(&mut csv, args.consumers, 2026)?;
        let report = import::import_csv(&mut node, csv.as_slice(), &|_, _| {})?;
        if !report.rejected.is_empty() {
            bail!("the demo data did not import cleanly: {}", report.rejected[0]);
        }
        // A few top-ups so balances and movements show something.
        let hits = node.search("ro", 5)?;
        for (i, consumer) in hits.iter().enumerate() {
            let pan = Pan::parse(&consumer.pan)?;
            let amount = Amount::from_minor(1_000 + 250 * i as i64)?;
            let line = node.top_up_line(&pan, None, amount).or_else(|_| {
                let service = ServiceId::parse(&consumer.services[0])?;
                node.top_up_line(&pan, Some(&service), amount).map_err(anyhow::Error::from)
            })?;
            node.record_top_up(&[line], PaymentMethod::Cash, Some(&Label::parse("demo").expect("a label")))?;
        }
    }
    let mut node = open(&hub_dir)?;
    let (consumers, families) = node.directory_counts()?;
    let sample = node.search("ro", 3)?;
    let realm_name = node.realm_name().to_string();
    let realm = node.realm();
    drop(node);
    let exe = std::env::args().next().unwrap_or_else(|| "saldo".into());
    // Run through cargo (the README's way): say how to run it the same way.
    let exe = match std::env::var_os("CARGO") {
        Some(_) if exe.contains("/release/") => "cargo run -q --release --bin saldo --".to_string(),
        Some(_) => "cargo run -q --bin saldo --".to_string(),
        None => exe,
    };
    if args.json.json {
        print_json(&serde_json::json!({
            "data": dir, "created": fresh, "realm": realm.to_hex(), "consumers": consumers,
            "families": families, "sample": sample,
        }))?;
    } else {
        outln!(
            "Saldo demo realm \"{realm_name}\" in {} ({})",
            dir.display(),
            if fresh { "just created" } else { "already there" }
        );
        outln!("  realm id (hub key): {}", realm.to_hex());
        outln!(
            "  {consumers} consumers in {families} families; hub database {}",
            hub_dir.join(crate::node::DATABASE_FILE).display()
        );
    }
    if args.no_network {
        if !args.json.json {
            print_demo_hints(&exe, &hub_dir, &sample, None)?;
        }
        return Ok(());
    }
    run_demo_network(dir, &hub_dir, &exe, &sample, args.json.json)
}

/// Runs the demo's hub and cash points as child processes on 127.0.0.1
/// until Ctrl-C or SIGTERM, then stops them.
fn run_demo_network(
    dir: &Path,
    hub_dir: &Path,
    exe: &str,
    sample: &[crate::node::ConsumerView],
    quiet: bool,
) -> Result<()> {
    let me = std::env::current_exe().context("cannot find the saldo executable")?;
    let mut children = DemoChildren(Vec::new());
    let spawn = |args: &[&str], log: &Path| -> Result<std::process::Child> {
        let log = File::create(log).with_context(|| format!("cannot write {}", log.display()))?;
        Ok(std::process::Command::new(&me)
            .args(args)
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(std::process::Stdio::null())
            .spawn()?)
    };
    let hub_data = hub_dir.display().to_string();
    children.0.push(spawn(&["hub", "--data", &hub_data, "--p2p", "127.0.0.1:0"], &dir.join("hub.log"))?);
    let hub_address = wait_for_address(hub_dir, &mut children)?;
    let mut cash_points = Vec::new();
    for (name, label) in DEMO_CASH_POINTS {
        let cp_dir = dir.join(name);
        let cp_data = cp_dir.display().to_string();
        let mut args = vec!["cashpoint".to_string(), "--data".into(), cp_data, "--p2p".into(), "127.0.0.1:0".into()];
        if cp_dir.join(crate::node::DATABASE_FILE).exists() {
            args.extend(["--hub".into(), hub_address.clone()]);
        } else {
            let mut hub = open(hub_dir)?;
            let secret = hub.create_enrolment_token(
                &Label::parse(label).expect("a valid name"),
                saldo_sync::OfflineLimits::default_for_cash_point(),
            )?;
            let token = crate::net::EnrolmentToken { realm: hub.realm(), hub: vec![hub_address.parse()?], secret };
            args.extend(["--join".into(), token.encode()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        children.0.push(spawn(&args, &dir.join(format!("{name}.log")))?);
        let address = wait_for_address(&cp_dir, &mut children)?;
        cash_points.push((cp_dir, label, address));
    }
    if quiet {
        print_json(&serde_json::json!({
            "hub": hub_address,
            "cash_points": cash_points.iter().map(|(d, l, a)| serde_json::json!({"name": l, "data": d, "address": a})).collect::<Vec<_>>(),
        }))?;
    } else {
        outln!();
        outln!("Running on 127.0.0.1 (logs in {}/*.log); Ctrl-C stops everything:", dir.display());
        outln!("  hub                   {hub_address}");
        for (_, label, address) in &cash_points {
            outln!("  {label:<21} {address}");
        }
        print_demo_hints(exe, hub_dir, sample, Some((&cash_points, &hub_address, children.0[1].id())))?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        anyhow::Ok(())
    })?;
    outln!("stopping the demo nodes");
    Ok(())
}

/// The demo's child processes, stopped when the demo ends however it ends.
struct DemoChildren(Vec<std::process::Child>);

impl Drop for DemoChildren {
    fn drop(&mut self) {
        for child in &mut self.0 {
            // SIGTERM lets a node remove its status file; then make sure.
            let _ = std::process::Command::new("kill").arg(child.id().to_string()).status();
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits until the node in `dir` runs and says where it listens.
fn wait_for_address(dir: &Path, children: &mut DemoChildren) -> Result<String> {
    let started = std::time::Instant::now();
    loop {
        // The status of the child just started, not one a previous run left.
        let child = children.0.last().map(std::process::Child::id);
        if let Some(address) = crate::net::RunStatus::read(dir)
            .filter(|s| Some(s.pid) == child)
            .and_then(|s| s.addresses.into_iter().next())
        {
            return Ok(address);
        }
        if let Some(child) = children.0.last_mut()
            && let Some(status) = child.try_wait()?
        {
            bail!("a demo node stopped ({status}): see the logs in {}", dir.parent().unwrap_or(dir).display());
        }
        if started.elapsed() > std::time::Duration::from_secs(30) {
            bail!("a demo node in {} did not start within 30 s", dir.display());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn print_demo_hints(
    exe: &str,
    hub_dir: &Path,
    sample: &[crate::node::ConsumerView],
    network: Option<DemoNetwork<'_>>,
) -> Result<()> {
    let Some(first) = sample.first() else { return Ok(()) };
    let service = first.services.first().cloned().unwrap_or_default();
    let hub = hub_dir.display();
    outln!();
    outln!("Try:");
    outln!("  {exe} search --data {hub} {}", first.surname.to_lowercase());
    outln!("  {exe} balance --data {hub} --pan {}", first.pan);
    outln!("  {exe} topup --data {hub} --pan {} --amount 12.345 --method cash   # refused: three decimals", first.pan);
    outln!("  {exe} search --data {hub} {}", first.fiscal_code);
    outln!("  {exe} log verify --data {hub}");
    match network {
        None => {
            outln!("  {exe} topup --data {hub} --pan {} --amount 12.50 --method cash --service {service}", first.pan);
        }
        Some((cash_points, hub_address, first_pid)) => {
            let (edicola, _, _) = &cash_points[0];
            let (_, _, farmacia_address) = &cash_points[1];
            let edicola = edicola.display();
            outln!();
            outln!("A top-up at a cash point reaches the hub within a second:");
            outln!(
                "  {exe} topup --data {edicola} --pan {} --amount 12.50 --method cash --service {service}",
                first.pan
            );
            outln!("  {exe} balance --data {hub} --pan {}", first.pan);
            outln!();
            outln!("Take the edicola offline, record there, and watch it converge:");
            outln!("  kill {first_pid}                                   # the edicola's node stops: it is offline");
            outln!(
                "  {exe} topup --data {edicola} --pan {} --amount 5 --method cash --service {service}   # provisional",
                first.pan
            );
            outln!("  {exe} status --data {edicola}                      # 1 unconfirmed operation");
            outln!("  {exe} cashpoint --data {edicola} --p2p 127.0.0.1:0 --hub {hub_address}");
            outln!("  {exe} balance --data {edicola} --pan {}             # confirmed again", first.pan);
            outln!();
            outln!("Or let the farmacia carry its operations to the hub (store and forward):");
            outln!(
                "  {exe} cashpoint --data {edicola} --p2p 127.0.0.1:0 --peer {farmacia_address} --hub {}@127.0.0.1:9",
                &hub_address[..64]
            );
        }
    }
    Ok(())
}

fn format_time(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

pub fn render_receipt(r: &Receipt) -> String {
    let mut out = String::new();
    let rule = "-".repeat(44);
    out.push_str(&format!("{rule}\n{}\nRICEVUTA / RECEIPT no. {}\n", r.realm, r.receipt_number));
    out.push_str(&format!("Cash point: {}\n", r.cash_point));
    if let Some(operator) = &r.operator {
        out.push_str(&format!("Operator:   {operator}\n"));
    }
    out.push_str(&format!("Date:       {}\n", format_time(r.recorded_at_ms)));
    out.push_str(&format!("Consumer:   {}  PAN {}\n", r.consumer, r.pan_masked));
    for line in &r.lines {
        out.push_str(&format!("  {:<20} {:>10} EUR\n", line.service, line.amount.to_string()));
        out.push_str(&format!(
            "  {:<20} {:>10} EUR{}\n",
            "balance after",
            line.balance_after.to_string(),
            if r.provisional { " (provisional)" } else { "" }
        ));
    }
    out.push_str(&format!("Total:      {} EUR  ({})\n", r.total, r.method));
    out.push_str(&format!("Verification code: {}\n{rule}\n", r.verification_code));
    out
}

fn render_balance(view: &BalanceView) -> String {
    let c = &view.consumer;
    let mut out = format!("{} {}  PAN {}  CF {}\n", c.name, c.surname, c.pan, c.fiscal_code);
    for wallet in &view.wallets {
        let provisional = if wallet.provisional != wallet.confirmed {
            format!("  (provisional {} EUR)", wallet.provisional)
        } else {
            String::new()
        };
        out.push_str(&format!("  {:<14} {:>10} EUR{provisional}\n", wallet.service, wallet.confirmed.to_string()));
        for m in &wallet.movements {
            out.push_str(&format!(
                "      {}  {:<14} {:>10}  {}{}\n",
                format_time(m.recorded_at_ms),
                m.kind,
                m.amount.to_string(),
                m.status,
                m.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
            ));
        }
    }
    out
}

fn render_verify(report: &VerifyReport, integrity: &str) -> String {
    let mut out = format!(
        "{} operations from {} devices, {} wallets, {} equivocations; database integrity: {integrity}\n",
        report.operations, report.authors, report.wallets, report.equivocations
    );
    if report.ok() {
        out.push_str("every signature, chain link and balance verifies\n");
    } else {
        for problem in &report.problems {
            out.push_str(&format!("PROBLEM: {problem}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The sources whose strings reach an operator: messages, hints and help.
    const SOURCES: [(&str, &str); 10] = [
        ("cli.rs", include_str!("cli.rs")),
        ("node.rs", include_str!("node.rs")),
        ("import.rs", include_str!("import.rs")),
        ("net.rs", include_str!("net.rs")),
        ("state.rs", include_str!("state.rs")),
        ("store.rs", include_str!("store.rs")),
        ("directory.rs", include_str!("directory.rs")),
        ("search.rs", include_str!("search.rs")),
        ("ledger.rs", include_str!("ledger.rs")),
        ("generate.rs", include_str!("generate.rs")),
    ];

    /// Flags of other programs that the demo's hints show (`cargo run --release --bin saldo --`).
    const OTHER_PROGRAMS_FLAGS: [&str; 2] = ["release", "bin"];

    /// Why `words` (what follows `saldo ` in a message) is not a command line
    /// this saldo takes, if it is not.
    fn check_command_line(words: &str) -> Option<String> {
        let root = Cli::command();
        let mut command = &root;
        let mut path = vec!["saldo".to_string()];
        let mut descending = true;
        for word in words.split_whitespace() {
            if let Some(flag) = word.strip_prefix("--") {
                let flag = flag.split('=').next().unwrap_or_default();
                let known = command.get_arguments().any(|a| a.get_long() == Some(flag));
                if !known && !["help", "version"].contains(&flag) {
                    return Some(format!("`{}` has no flag --{flag}", path.join(" ")));
                }
                descending = false;
                continue;
            }
            if descending && command.has_subcommands() {
                match command.find_subcommand(word) {
                    Some(sub) => {
                        command = sub;
                        path.push(word.to_string());
                    }
                    None => return Some(format!("`{}` has no subcommand {word:?}", path.join(" "))),
                }
            } else {
                descending = false;
            }
        }
        (path.len() == 1).then(|| format!("`saldo {words}` names no command"))
    }

    /// An error never sends an operator to a command that does not exist:
    /// every `saldo …` a message, a hint or a help text shows names a
    /// command of this binary, with flags that command takes.
    #[test]
    fn messages_name_only_commands_and_flags_that_exist() {
        let mut problems = Vec::new();
        let mut checked = 0;
        for (file, source) in SOURCES {
            // Not the tests, which name wrong commands on purpose.
            let source = source.split("#[cfg(test)]\nmod tests").next().unwrap_or(source);
            for marker in ["`saldo ", ": saldo "] {
                for (at, _) in source.match_indices(marker) {
                    let rest = &source[at + marker.len()..];
                    let end = rest.find(['`', '"', '\n', ')']).unwrap_or(rest.len());
                    let words = &rest[..end];
                    // "`saldo …` reads": a sentence about the binary, not a command.
                    if words.split_whitespace().next().is_none_or(|w| !w.chars().all(|c| c.is_ascii_lowercase())) {
                        continue;
                    }
                    checked += 1;
                    if let Some(problem) = check_command_line(words) {
                        problems.push(format!("{file}: {problem}"));
                    }
                }
            }
        }
        assert!(checked > 20, "only {checked} command lines found: the scan is broken");
        assert!(problems.is_empty(), "{problems:#?}");
    }

    /// Every `--flag` a message names is a flag of some command.
    #[test]
    fn messages_name_only_flags_that_exist() {
        let root = Cli::command();
        let mut flags: Vec<String> = Vec::new();
        let mut stack = vec![&root];
        while let Some(command) = stack.pop() {
            flags.extend(command.get_arguments().filter_map(|a| a.get_long().map(str::to_string)));
            stack.extend(command.get_subcommands());
        }
        let mut problems = Vec::new();
        for (file, source) in SOURCES {
            // Not the tests, which name wrong commands on purpose.
            let source = source.split("#[cfg(test)]\nmod tests").next().unwrap_or(source);
            for (at, _) in source.match_indices("--") {
                let rest = &source[at + 2..];
                let flag: String = rest.chars().take_while(|c| c.is_ascii_lowercase() || *c == '-').collect();
                let before = source[..at].chars().next_back().unwrap_or(' ');
                if flag.len() < 2 || flag.ends_with('-') || !(before == ' ' || before == '`' || before == '"') {
                    continue;
                }
                if !flags.contains(&flag) && !OTHER_PROGRAMS_FLAGS.contains(&flag.as_str()) && flag != "help" {
                    problems.push(format!("{file}: --{flag}"));
                }
            }
        }
        assert!(problems.is_empty(), "flags that no command takes: {problems:#?}");
    }

    #[test]
    fn a_command_line_of_an_unknown_command_or_flag_is_found() {
        assert_eq!(check_command_line("hub --data DIR"), None);
        assert_eq!(check_command_line("realm init --data {path} --name NAME"), None);
        assert!(check_command_line("cashpoint --token X").is_some());
        assert!(check_command_line("import --data DIR").is_some());
        assert!(check_command_line("review approve X").is_some());
    }

    /// A cause that the message before it already quotes is said once.
    #[test]
    fn an_error_says_each_cause_once() {
        let cause = std::io::Error::other("database is locked");
        let error = anyhow::Error::from(crate::node::NodeError::Io { path: "/x".into(), source: cause })
            .context("cannot open the node in /x");
        let text = render_error(&error, None);
        assert_eq!(text, "cannot open the node in /x: cannot use /x: database is locked");
    }
}
