//! The `saldo` command line. Every command works on a data directory whether
//! or not a node process is running on it (SQLite's locking serialises
//! writers); every command that prints data takes `--json`.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use clap::Parser;

use crate::node::Node;

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

mod args;
mod bundle;
mod demo;
mod devices;
mod families;
mod money;
mod operator;
mod outbox;
mod realm;
mod render;
mod reports;
mod review;
mod run;
mod services;
mod status;

pub use args::Cli;
use args::{BundleCommand, Command, FamiliesCommand, LogCommand, RealmCommand, ReviewCommand, ServicesCommand};
use bundle::{export_bundle, import_bundle, write_frontier};
use demo::demo;
use devices::{enroll, escrow, limits, revoke};
use families::{generate_csv, import_families, search};
pub use money::render_receipt;
use money::{balance, topup};
use realm::{backup, init_realm, restore};
use review::{list_flagged, review};
pub(crate) use run::CONFIG_FILE;
use run::{cashpoint, hub};
use services::{list_services, set_service};
use status::{status, verify_log};

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
    let full = |e: &(dyn std::error::Error + 'static)| {
        crate::node::is_disk_full(e) || e.downcast_ref::<CommandError>().is_some_and(|c| c.0.is_disk_full())
    };
    if error.chain().any(full) {
        match data {
            Some(dir) => {
                out.push_str(&format!("\nthe disk holding {} is full: free space and try again", dir.display()))
            }
            None => out.push_str("\nthe disk is full: free space and try again"),
        }
    }
    out
}

/// A service error as the command line says it: the message, with the flag
/// that fixes it when the error is about a field the command line takes
/// as a flag (the service names the field, the command line its flag).
#[derive(Debug, thiserror::Error)]
#[error("{}", with_flag_hint(.0))]
struct CommandError(crate::service::ServiceError);

/// The flag of the command line that sets a request's field.
fn flag_of(field: &str) -> Option<&'static str> {
    Some(match field {
        "service" => "--service",
        "confirm_below_floor" => "--confirm-below-floor",
        "limit" => "--limit",
        "per_operation" => "--per-operation",
        "unconfirmed_total" | "limits.unconfirmed_total" => "--unconfirmed-total",
        "offline_hours" | "limits.offline_hours" => "--offline-hours",
        "floor" => "--floor",
        "tariff" => "--tariff",
        _ => return None,
    })
}

fn with_flag_hint(error: &crate::service::ServiceError) -> String {
    match error.field.as_deref().and_then(flag_of) {
        Some(flag) => format!("{} (with {flag})", error.message),
        None => error.message.clone(),
    }
}

/// The node of a data directory behind its service layer, and a small
/// runtime to call it on: how every command reads and records.
struct Session {
    service: Option<crate::service::Service>,
    runtime: Option<tokio::runtime::Runtime>,
    done: crate::service::WriterDone,
}

impl Drop for Session {
    /// Waits for the node's thread to finish what it does after a command's
    /// last call (a top-up's receipt queued for the family, at the hub) and
    /// close the database, before the process exits.
    fn drop(&mut self) {
        drop(self.service.take());
        // Its tasks go with it, and any handle of the service they held.
        drop(self.runtime.take());
        self.done.wait();
    }
}

impl Session {
    fn open(data: &Path) -> Result<Session> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| anyhow::anyhow!("cannot start the command's runtime: {e}"))?;
        // Opened here, where the error says which directory.
        let node = open(data)?;
        let service = crate::service::Service::start(node, Some(data.to_path_buf())).map_err(CommandError)?;
        let done = service.writer_done();
        Ok(Session { service: Some(service), runtime: Some(runtime), done })
    }

    fn service(&self) -> &crate::service::Service {
        self.service.as_ref().expect("taken only when the session is dropped")
    }

    /// Runs one call of the service to its end.
    fn call<R>(&self, call: impl AsyncFnOnce(&crate::service::Service) -> crate::service::Result<R>) -> Result<R> {
        let runtime = self.runtime.as_ref().expect("taken only when the session is dropped");
        Ok(runtime.block_on(call(self.service())).map_err(CommandError)?)
    }
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
        Command::Realm(RealmCommand::Init { data, name, json }) => init_realm(data, name, json)?,
        Command::Families(FamiliesCommand::Import { data, file, json }) => import_families(data, file, json)?,
        Command::Search(args) => search(args)?,
        Command::Topup(args) => topup(args)?,
        Command::Balance(args) => balance(args)?,
        Command::Hub(args) => hub(args)?,
        Command::Cashpoint(args) => cashpoint(args)?,
        Command::Enroll(args) => enroll(args)?,
        Command::Revoke(args) => revoke(args)?,
        Command::Limits(args) => limits(args)?,
        Command::Escrow(args) => escrow(args)?,
        Command::Backup(args) => backup(&args)?,
        Command::Restore(args) => restore(&args)?,
        Command::Status(args) => status(args)?,
        Command::Bundle(BundleCommand::Export { data, out, lacking, json }) => export_bundle(data, out, lacking, json)?,
        Command::Bundle(BundleCommand::Import { data, file, json }) => import_bundle(data, file, json)?,
        Command::Bundle(BundleCommand::Frontier { data, out }) => write_frontier(data, out)?,
        Command::Log(LogCommand::Verify { data, json }) => verify_log(data, json)?,
        Command::Review(ReviewCommand::List { data, json }) => list_flagged(data, json)?,
        Command::Services(ServicesCommand::List { data, json }) => list_services(data, json)?,
        Command::Services(ServicesCommand::Set { data, name, floor, tariff, reminders, json }) => {
            set_service(data, name, floor, tariff, reminders, json)?
        }
        Command::Review(ReviewCommand::Accept(args)) => review(args.review, true, args.confirm_below_floor)?,
        Command::Review(ReviewCommand::Reject(args)) => review(args, false, false)?,
        Command::Generate(args) => generate_csv(args)?,
        Command::Demo(args) => demo(&args)?,
        Command::Operator(command) => operator::run(command)?,
        Command::Report(command) => reports::run(command)?,
        Command::Outbox(command) => outbox::run(command)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The sources whose strings reach an operator: messages, hints and help.
    const SOURCES: [(&str, &str); 69] = [
        ("cli.rs", include_str!("cli.rs")),
        ("cli/args.rs", include_str!("cli/args.rs")),
        ("cli/bundle.rs", include_str!("cli/bundle.rs")),
        ("cli/demo.rs", include_str!("cli/demo.rs")),
        ("cli/devices.rs", include_str!("cli/devices.rs")),
        ("cli/families.rs", include_str!("cli/families.rs")),
        ("cli/money.rs", include_str!("cli/money.rs")),
        ("cli/operator.rs", include_str!("cli/operator.rs")),
        ("cli/realm.rs", include_str!("cli/realm.rs")),
        ("cli/render.rs", include_str!("cli/render.rs")),
        ("cli/review.rs", include_str!("cli/review.rs")),
        ("cli/run.rs", include_str!("cli/run.rs")),
        ("cli/services.rs", include_str!("cli/services.rs")),
        ("cli/status.rs", include_str!("cli/status.rs")),
        ("node.rs", include_str!("node.rs")),
        ("node/ingest.rs", include_str!("node/ingest.rs")),
        ("node/operators.rs", include_str!("node/operators.rs")),
        ("node/peers.rs", include_str!("node/peers.rs")),
        ("node/query.rs", include_str!("node/query.rs")),
        ("node/record.rs", include_str!("node/record.rs")),
        ("node/verify.rs", include_str!("node/verify.rs")),
        ("node/views.rs", include_str!("node/views.rs")),
        ("node/api_views.rs", include_str!("node/api_views.rs")),
        ("node/counter.rs", include_str!("node/counter.rs")),
        ("node/reader.rs", include_str!("node/reader.rs")),
        ("node/money_requests.rs", include_str!("node/money_requests.rs")),
        ("node/hub_views.rs", include_str!("node/hub_views.rs")),
        ("service.rs", include_str!("service.rs")),
        ("service/bundles.rs", include_str!("service/bundles.rs")),
        ("service/lookup.rs", include_str!("service/lookup.rs")),
        ("service/counter.rs", include_str!("service/counter.rs")),
        ("service/error.rs", include_str!("service/error.rs")),
        ("service/money.rs", include_str!("service/money.rs")),
        ("service/operators.rs", include_str!("service/operators.rs")),
        ("service/status.rs", include_str!("service/status.rs")),
        ("service/hub.rs", include_str!("service/hub.rs")),
        ("service/accounts.rs", include_str!("service/accounts.rs")),
        ("http.rs", include_str!("http.rs")),
        ("http/auth.rs", include_str!("http/auth.rs")),
        ("http/error.rs", include_str!("http/error.rs")),
        ("http/routes.rs", include_str!("http/routes.rs")),
        ("http/money.rs", include_str!("http/money.rs")),
        ("http/directory.rs", include_str!("http/directory.rs")),
        ("http/devices.rs", include_str!("http/devices.rs")),
        ("http/accounts.rs", include_str!("http/accounts.rs")),
        ("http/raw.rs", include_str!("http/raw.rs")),
        ("import.rs", include_str!("import.rs")),
        ("net.rs", include_str!("net.rs")),
        ("net/endpoint.rs", include_str!("net/endpoint.rs")),
        ("net/join.rs", include_str!("net/join.rs")),
        ("net/lan.rs", include_str!("net/lan.rs")),
        ("net/status.rs", include_str!("net/status.rs")),
        ("net/sync.rs", include_str!("net/sync.rs")),
        ("state.rs", include_str!("state.rs")),
        ("store.rs", include_str!("store.rs")),
        ("store/directory.rs", include_str!("store/directory.rs")),
        ("store/log.rs", include_str!("store/log.rs")),
        ("store/meta.rs", include_str!("store/meta.rs")),
        ("store/money.rs", include_str!("store/money.rs")),
        ("store/days.rs", include_str!("store/days.rs")),
        ("store/operators.rs", include_str!("store/operators.rs")),
        ("store/schema.rs", include_str!("store/schema.rs")),
        ("store/tests.rs", include_str!("store/tests.rs")),
        ("store/verdicts.rs", include_str!("store/verdicts.rs")),
        ("store/hub_lists.rs", include_str!("store/hub_lists.rs")),
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
