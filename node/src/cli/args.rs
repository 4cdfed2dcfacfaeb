//! The command line as clap reads it: commands, subcommands and their arguments.

use super::run::NodeConfig;
use crate::generate;
use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};

#[derive(Debug, Parser)]
#[command(name = "saldo", version, about = "Prepaid balances of school services, recorded online or offline", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
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
    /// Operators' accounts: add, change a password, disable or enable, list.
    #[command(subcommand)]
    Operator(super::operator::OperatorCommand),
    /// On the hub: messages to families (receipts, reminders) and their delivery.
    #[command(subcommand)]
    Outbox(super::outbox::OutboxCommand),
}

impl Command {
    /// The data directory the command works on, if any: what a message
    /// about a full disk names.
    pub(super) fn data_dir(&self) -> Option<PathBuf> {
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
            Command::Operator(command) => return Some(command.data_dir()),
            Command::Outbox(command) => return Some(command.data_dir()),
        };
        Some(dir.data.clone())
    }
}

#[derive(Debug, Args)]
pub(super) struct DataArg {
    /// The node's data directory.
    #[arg(long, env = "SALDO_DATA", value_name = "DIR")]
    pub(super) data: PathBuf,
}

#[derive(Debug, Args)]
pub(super) struct JsonArg {
    /// Print JSON instead of text.
    #[arg(long)]
    pub(super) json: bool,
}

#[derive(Debug, Subcommand)]
pub(super) enum RealmCommand {
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
pub(super) struct RunArgs {
    #[command(flatten)]
    pub(super) data: DataArg,
    /// The address the sync endpoint (QUIC) binds, IP:PORT; port 0 picks a free one [default:
    /// `p2p` in DIR/saldo.toml, else 0.0.0.0:7400 for the hub, 0.0.0.0:0 for a cash point].
    #[arg(long, value_name = "IP:PORT")]
    pub(super) p2p: Option<std::net::SocketAddr>,
    /// Another node to sync with directly, as `saldo status` prints it (ID@IP:PORT); repeatable.
    #[arg(long = "peer", value_name = "ID@IP:PORT")]
    pub(super) peers: Vec<crate::net::PeerAddr>,
    /// Do not look for the realm's other devices on the local network (mDNS). A cash point looks
    /// unless `lan = false` in DIR/saldo.toml or it listens on a loopback address.
    #[arg(long)]
    pub(super) no_lan: bool,
    /// The address the operators' HTTP API (and web page) listens on, IP:PORT; port 0 picks a
    /// free one [default: `http` in DIR/saldo.toml, else 127.0.0.1:8400 for the hub,
    /// 127.0.0.1:8480 for a cash point].
    #[arg(long, value_name = "IP:PORT")]
    pub(super) http: Option<std::net::SocketAddr>,
    /// Serve HTTPS with this certificate chain (PEM) [default: `tls_cert` in DIR/saldo.toml].
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub(super) tls_cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of --tls-cert [default: `tls_key` in DIR/saldo.toml].
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub(super) tls_key: Option<std::path::PathBuf>,
    /// Serve plain HTTP on an address beyond loopback (behind a TLS-terminating proxy on a
    /// trusted network) [default: `plain_http` in DIR/saldo.toml, else refused].
    #[arg(long)]
    pub(super) plain_http: bool,
    /// The hub's address as parents reach it, for the verification link on receipts, for
    /// example https://saldo.comune.example [default: `public_url` in DIR/saldo.toml, else the
    /// HTTP address].
    #[arg(long, value_name = "URL")]
    pub(super) public_url: Option<String>,
}

impl RunArgs {
    /// Where and how to serve the HTTP API: flags over DIR/saldo.toml over `default_port`.
    pub(super) fn http(&self, default_port: u16) -> Result<(crate::http::HttpConfig, Option<String>)> {
        let config = NodeConfig::load(&self.data.data)?;
        let addr = self.http.or(config.http).unwrap_or(std::net::SocketAddr::from(([127, 0, 0, 1], default_port)));
        let tls = match (self.tls_cert.clone().or(config.tls_cert), self.tls_key.clone().or(config.tls_key)) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => anyhow::bail!(
                "{}: tls_cert and tls_key go together: give both, or neither to serve plain HTTP on loopback",
                self.data.data.join(super::CONFIG_FILE).display()
            ),
        };
        let public_url = self.public_url.clone().or(config.public_url);
        if let Some(url) = &public_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            anyhow::bail!("--public-url {url:?}: give the address parents open, like https://saldo.comune.example");
        }
        let http = crate::http::HttpConfig {
            addr,
            tls,
            plain_http_beyond_loopback: self.plain_http || config.plain_http.unwrap_or(false),
        };
        http.check()?;
        Ok((http, public_url))
    }

    /// Where to listen and whom to dial: flags over DIR/saldo.toml over `default_port`.
    pub(super) fn network(&self, default_port: u16) -> Result<crate::net::NetConfig> {
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
pub(super) struct CashpointArgs {
    #[command(flatten)]
    pub(super) run: RunArgs,
    /// The enrolment token from `saldo enroll` on the hub: creates this node, once.
    #[arg(long, value_name = "TOKEN")]
    pub(super) join: Option<String>,
    /// Where the hub is now (ID@IP:PORT), if it moved: replaces the address the token gave; repeatable.
    #[arg(long = "hub", value_name = "ID@IP:PORT")]
    pub(super) hub: Vec<crate::net::PeerAddr>,
}

#[derive(Debug, Args)]
pub(super) struct EnrollArgs {
    #[command(flatten)]
    pub(super) data: DataArg,
    /// The cash point's name, for example "Farmacia Comunale".
    #[arg(long)]
    pub(super) name: String,
    /// Largest amount of one operation, in euro; above zero.
    #[arg(long, default_value = "500")]
    pub(super) per_operation: String,
    /// Largest total of operations awaiting the hub's verdict, in euro; above zero (every
    /// operation awaits the hub for a moment, so 0 would let the cash point record nothing).
    #[arg(long, default_value = "5000")]
    pub(super) unconfirmed_total: String,
    /// Longest time without contact with the hub, in hours, before the cash point stops recording;
    /// at least 1.
    #[arg(long, default_value_t = 168, value_parser = clap::value_parser!(u32).range(1..=OFFLINE_HOURS_MAX))]
    pub(super) offline_hours: u32,
    /// The device this cash point replaces (a forked or lost one, 64 hex digits): it is revoked, and
    /// the new one's receipt numbers continue after the highest the hub holds of it.
    #[arg(long, value_name = "DEVICE_ID")]
    pub(super) replaces: Option<String>,
    #[command(flatten)]
    pub(super) json: JsonArg,
}

#[derive(Debug, Args)]
pub(super) struct BackupArgs {
    #[command(flatten)]
    pub(super) data: DataArg,
    /// The backup file to write; an existing file is never replaced.
    #[arg(long, value_name = "FILE")]
    pub(super) out: PathBuf,
    #[command(flatten)]
    pub(super) json: JsonArg,
}

#[derive(Debug, Args)]
pub(super) struct RestoreArgs {
    /// The file `saldo backup` wrote.
    #[arg(long, value_name = "FILE")]
    pub(super) from: PathBuf,
    /// The new data directory (absent or empty).
    #[command(flatten)]
    pub(super) data: DataArg,
    #[command(flatten)]
    pub(super) json: JsonArg,
}

/// The longest time offline a device may be given, in hours: its seconds fit in a u32.
const OFFLINE_HOURS_MAX: i64 = (u32::MAX / 3600) as i64;

#[derive(Debug, Args)]
pub(super) struct RevokeArgs {
    #[command(flatten)]
    pub(super) data: DataArg,
    /// The device's id (64 hex digits, as `saldo status` prints it).
    #[arg(long)]
    pub(super) device: String,
    /// Why, for the log.
    #[arg(long, default_value = "revoked by the hub")]
    pub(super) reason: String,
    #[command(flatten)]
    pub(super) json: JsonArg,
}

#[derive(Debug, Args)]
pub(super) struct LimitsArgs {
    #[command(flatten)]
    pub(super) data: DataArg,
    /// The device's id (64 hex digits, as `saldo status` prints it).
    #[arg(long)]
    pub(super) device: String,
    /// Largest amount of one operation, in euro; above zero.
    #[arg(long)]
    pub(super) per_operation: Option<String>,
    /// Largest total of operations awaiting the hub's verdict, in euro; above zero (to stop a
    /// device recording, use `saldo revoke`).
    #[arg(long)]
    pub(super) unconfirmed_total: Option<String>,
    /// Longest time without news from the hub, in hours, before the device stops recording; at
    /// least 1.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=OFFLINE_HOURS_MAX))]
    pub(super) offline_hours: Option<u32>,
    #[command(flatten)]
    pub(super) json: JsonArg,
}

#[derive(Debug, Args)]
pub(super) struct EscrowArgs {
    #[command(flatten)]
    pub(super) data: DataArg,
    /// The school device's id (64 hex digits, as `saldo status` prints it).
    #[arg(long)]
    pub(super) device: String,
    /// The consumer's PAN.
    #[arg(long)]
    pub(super) pan: String,
    /// The service (wallet); may be left out when the consumer has one.
    #[arg(long)]
    pub(super) service: Option<String>,
    /// How much the device may charge there, in euro.
    #[arg(long)]
    pub(super) amount: String,
    #[command(flatten)]
    pub(super) json: JsonArg,
}

#[derive(Debug, Args)]
pub(super) struct StatusArgs {
    #[command(flatten)]
    pub(super) data: DataArg,
    #[command(flatten)]
    pub(super) json: JsonArg,
}

#[derive(Debug, Subcommand)]
pub(super) enum BundleCommand {
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
pub(super) enum FamiliesCommand {
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
pub(super) struct SearchArgs {
    #[command(flatten)]
    pub(super) data: DataArg,
    /// A PAN, a codice fiscale, or the start of a surname and/or name.
    pub(super) query: String,
    /// Most results shown: 1 to 50.
    #[arg(long, default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::search::SEARCH_RESULTS_MAX)))]
    pub(super) limit: u32,
    #[command(flatten)]
    pub(super) json: JsonArg,
}

#[derive(Debug, Args)]
pub(super) struct TopupArgs {
    #[command(flatten)]
    pub(super) data: DataArg,
    /// The consumer's PAN (spaces between groups are fine).
    #[arg(long)]
    pub(super) pan: String,
    /// Euro with at most two decimals: 12.50 or 12,50.
    #[arg(long, allow_hyphen_values = true)]
    pub(super) amount: String,
    /// cash, debit-card or credit-card.
    #[arg(long)]
    pub(super) method: String,
    /// The service (wallet); may be left out when the consumer has one.
    #[arg(long)]
    pub(super) service: Option<String>,
    /// Who recorded it.
    #[arg(long)]
    pub(super) operator: Option<String>,
    #[command(flatten)]
    pub(super) json: JsonArg,
}

#[derive(Debug, Args)]
pub(super) struct BalanceArgs {
    #[command(flatten)]
    pub(super) data: DataArg,
    #[arg(long)]
    pub(super) pan: String,
    #[command(flatten)]
    pub(super) json: JsonArg,
}

#[derive(Debug, Subcommand)]
pub(super) enum LogCommand {
    /// Check every signature, every chain link and every derived balance.
    Verify {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        json: JsonArg,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum ReviewCommand {
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
pub(super) enum ServicesCommand {
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
        /// Reminder thresholds in charges left, for example 3,0,-3 (three meals
        /// left, none left, a debt of three); "none" removes them.
        #[arg(long, allow_hyphen_values = true)]
        reminders: Option<String>,
        #[command(flatten)]
        json: JsonArg,
    },
}

#[derive(Debug, Args)]
pub(super) struct ReviewArgs {
    #[command(flatten)]
    pub(super) data: DataArg,
    /// The operation id (as `review list` prints it).
    pub(super) operation: String,
    /// The reviewing operator.
    #[arg(long)]
    pub(super) operator: String,
    /// Why.
    #[arg(long)]
    pub(super) note: String,
}

#[derive(Debug, Args)]
pub(super) struct ReviewAcceptArgs {
    #[command(flatten)]
    pub(super) review: ReviewArgs,
    /// Accept it even though it takes a wallet below its floor (the command says which and by
    /// how much when run without this).
    #[arg(long)]
    pub(super) confirm_below_floor: bool,
}

#[derive(Debug, Args)]
pub(super) struct GenerateArgs {
    /// How many consumers (children): 1 to 1,000,000.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=generate::CONSUMERS_MAX))]
    pub(super) consumers: u64,
    /// Where to write the CSV.
    /// A regular file there is replaced whole (written beside it, then renamed); a directory,
    /// symbolic link, named pipe or device is refused.
    #[arg(long)]
    pub(super) out: PathBuf,
    /// Seed of the generator (the same seed gives the same file).
    #[arg(long, default_value_t = 1)]
    pub(super) seed: u64,
}

#[derive(Debug, Args)]
pub(super) struct DemoArgs {
    /// Where the demo realm lives.
    #[arg(long, env = "SALDO_DATA", default_value = "demo-data")]
    pub(super) data: PathBuf,
    /// How many consumers the demo realm gets: 1 to 1,000,000.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=generate::CONSUMERS_MAX))]
    pub(super) consumers: u64,
    /// Only create the demo realm; do not run the hub and the cash points.
    #[arg(long)]
    pub(super) no_network: bool,
    #[command(flatten)]
    pub(super) json: JsonArg,
}
