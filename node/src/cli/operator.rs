//! `saldo operator add / passwd / disable / enable / list`, and the first
//! administrator of `saldo realm init` and the demo's logins.
//!
//! A password never travels on the command line (where `ps` and the shell's
//! history would show it): it is read from standard input with
//! `--password-stdin`, or generated and printed once as a one-time password.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use saldo_sync::{OperatorLogin, OperatorRole, PersonName};

use saldo_api::operators::{Login, OperatorCreate, OperatorUpdate, OperatorView, Password as ApiPassword};

use super::args::{DataArg, JsonArg};
use super::render::print_json;
use super::{OutputError, Session};
use crate::node::{Node, Password};
use crate::service::operators::api_role;

#[derive(Debug, Subcommand)]
pub(super) enum OperatorCommand {
    /// On the hub: create an operator's account (prints a one-time password unless --password-stdin).
    Add {
        #[command(flatten)]
        data: DataArg,
        /// 3 to 32 characters: a-z, 0-9, '.', '_', '-'.
        #[arg(long)]
        login: String,
        /// The operator's name, as receipts show it.
        #[arg(long)]
        name: String,
        /// administrator or clerk (at the hub), or cashier (at one cash point).
        #[arg(long)]
        role: String,
        /// A cashier's cash point: its device id or its name as enrolled.
        #[arg(long, value_name = "DEVICE_ID_OR_NAME")]
        cash_point: Option<String>,
        /// Read the password (at least 10 characters) from standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        json: JsonArg,
    },
    /// On the hub: set an operator's password (prints a one-time password unless --password-stdin).
    Passwd {
        #[command(flatten)]
        data: DataArg,
        #[arg(long)]
        login: String,
        /// Read the new password (at least 10 characters) from standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        json: JsonArg,
    },
    /// On the hub: disable an operator's account (a cash point learns it at its next sync).
    Disable {
        #[command(flatten)]
        data: DataArg,
        #[arg(long)]
        login: String,
        #[command(flatten)]
        json: JsonArg,
    },
    /// On the hub: enable a disabled operator's account again.
    Enable {
        #[command(flatten)]
        data: DataArg,
        #[arg(long)]
        login: String,
        #[command(flatten)]
        json: JsonArg,
    },
    /// The operators' accounts this node holds (at a cash point: its own cashiers).
    List {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        json: JsonArg,
    },
}

impl OperatorCommand {
    pub(super) fn data_dir(&self) -> PathBuf {
        match self {
            OperatorCommand::Add { data, .. }
            | OperatorCommand::Passwd { data, .. }
            | OperatorCommand::Disable { data, .. }
            | OperatorCommand::Enable { data, .. }
            | OperatorCommand::List { data, .. } => data.data.clone(),
        }
    }
}

/// Where an operator works, for people.
fn place(view: &OperatorView) -> String {
    match (&view.cash_point_name, &view.cash_point) {
        (Some(name), _) => name.clone(),
        (None, Some(id)) => id.to_hex()[..16].to_string(),
        (None, None) => "hub".to_string(),
    }
}

fn state(view: &OperatorView) -> &'static str {
    match (view.disabled, view.must_change_password) {
        (true, _) => "disabled",
        (false, true) => "enabled, one-time password",
        (false, false) => "enabled",
    }
}

fn login_arg(text: &str) -> Result<Login> {
    Login::parse(text).map_err(|e| anyhow::anyhow!("{e}")).with_context(|| format!("--login {text:?}"))
}

/// The password from standard input (one line, its line end dropped), or
/// `None`: the node generates a one-time password.
fn password(from_stdin: bool) -> Result<Option<ApiPassword>> {
    if !from_stdin {
        return Ok(None);
    }
    let mut text = String::new();
    std::io::stdin()
        .lock()
        .take(4096)
        .read_to_string(&mut text)
        .context("cannot read the password from standard input")?;
    let line = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
    if line.is_empty() {
        bail!(
            "--password-stdin: standard input held no password: pipe it in, for example `printf '%s' \"$PASSWORD\" | saldo operator …`"
        );
    }
    // Checked as the node checks it, said as a flag's error.
    Password::parse(line).context("--password-stdin")?;
    Ok(Some(ApiPassword::new(line)))
}

fn print_one(view: &OperatorView, what: &str, json: bool) -> Result<()> {
    if json {
        return print_json(view);
    }
    outln!("{what} {} {} ({}) at {}", view.role.name(), view.login.as_str(), view.name, place(view));
    if let Some(password) = &view.one_time_password {
        outln!("one-time password: {password}");
        outln!("(shown only now: hand it to {}; `saldo operator passwd --password-stdin` sets another)", view.name);
    }
    if view.cash_point.is_some() {
        outln!("the cash point learns it at its next sync with the hub");
    }
    Ok(())
}

pub(super) fn run(command: OperatorCommand) -> Result<()> {
    match command {
        OperatorCommand::Add { data, login, name, role, cash_point, password_stdin, json } => {
            let login = login_arg(&login)?;
            let name = PersonName::parse_as(&name, "operator's name").context("--name")?;
            let role = OperatorRole::parse(&role)
                .with_context(|| format!("--role {role:?} is not a role: administrator, clerk or cashier"))?;
            match (role, &cash_point) {
                (OperatorRole::Cashier, None) => {
                    bail!("a cashier works at one cash point: say which with --cash-point (its device id or name)")
                }
                (OperatorRole::Administrator | OperatorRole::Clerk, Some(_)) => {
                    bail!("the {} role works at the hub: leave out --cash-point", role.name())
                }
                _ => {}
            }
            let password = password(password_stdin)?;
            let session = Session::open(&data.data)?;
            let cash_point = match cash_point {
                Some(text) => Some(session.call(async |s| s.resolve_cash_point(text).await).context("--cash-point")?),
                None => None,
            };
            let request = OperatorCreate { login, name, role: api_role(role), cash_point, password };
            let view = session.call(async |s| s.create_operator(request).await)?;
            print_one(&view, "added", json.json)?;
        }
        OperatorCommand::Passwd { data, login, password_stdin, json } => {
            let login = login_arg(&login)?;
            let password = password(password_stdin)?;
            let one_time_password = password.is_none();
            let update = OperatorUpdate { password, disabled: None, one_time_password };
            let session = Session::open(&data.data)?;
            let view = session.call(async |s| s.update_operator(login, update).await)?;
            print_one(&view, "new password for", json.json)?;
        }
        OperatorCommand::Disable { data, login, json } => set_disabled(&data, &login, true, json.json)?,
        OperatorCommand::Enable { data, login, json } => set_disabled(&data, &login, false, json.json)?,
        OperatorCommand::List { data, json } => {
            let session = Session::open(&data.data)?;
            let views = session.call(async |s| s.operator_accounts().await)?.operators;
            if json.json {
                print_json(&views)?;
            } else if views.is_empty() {
                outln!("no operators' accounts here");
            } else {
                outln!("{:<20} {:<14} {:<28} {:<24} STATE", "LOGIN", "ROLE", "NAME", "WORKS AT");
                for v in &views {
                    outln!(
                        "{:<20} {:<14} {:<28} {:<24} {}",
                        v.login.as_str(),
                        v.role.name(),
                        v.name.to_string(),
                        place(v),
                        state(v)
                    );
                }
            }
        }
    }
    Ok(())
}

fn set_disabled(data: &DataArg, login: &str, disabled: bool, json: bool) -> Result<()> {
    let login = login_arg(login)?;
    let update = OperatorUpdate { password: None, disabled: Some(disabled), one_time_password: false };
    let session = Session::open(&data.data)?;
    let view = session.call(async |s| s.update_operator(login, update).await)?;
    print_one(&view, if disabled { "disabled" } else { "enabled" }, json)
}

/// The first administrator of a new realm, with a one-time password:
/// `saldo realm init` prints it.
pub(super) fn first_administrator(node: &mut Node) -> Result<(OperatorLogin, Password)> {
    let login = OperatorLogin::parse(FIRST_ADMINISTRATOR).expect("a valid login");
    let password = Password::generate();
    node.add_operator(
        &login,
        &PersonName::parse("Amministratore").expect("a valid name"),
        OperatorRole::Administrator,
        None,
        &password,
    )?;
    Ok((login, password))
}

/// The login of a realm's first administrator.
pub(super) const FIRST_ADMINISTRATOR: &str = "admin";

/// A demo login: where it works, login, password, role.
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct DemoLogin {
    pub(super) at: String,
    pub(super) login: String,
    pub(super) password: String,
    pub(super) role: &'static str,
}

/// The demo's hub logins (an administrator and a clerk), created if
/// missing. Their passwords are fixed and printed: it is a demo.
pub(super) fn demo_hub_logins(hub: &mut Node) -> Result<Vec<DemoLogin>> {
    let mut logins = Vec::new();
    for (login, name, role) in
        [("admin", "Amministratore", OperatorRole::Administrator), ("ufficio", "Ufficio Servizi", OperatorRole::Clerk)]
    {
        logins.push(demo_login(hub, login, name, role, None, "hub")?);
    }
    Ok(logins)
}

/// The demo's cashier at the cash point enrolled as `cash_point_name`,
/// created at the hub if missing.
pub(super) fn demo_cashier(hub: &mut Node, login: &str, cash_point_name: &str) -> Result<DemoLogin> {
    let device = hub.resolve_cash_point(cash_point_name)?;
    demo_login(hub, login, &format!("Cassa {cash_point_name}"), OperatorRole::Cashier, Some(device), cash_point_name)
}

fn demo_login(
    hub: &mut Node,
    login: &str,
    name: &str,
    role: OperatorRole,
    cash_point: Option<saldo_sync::AuthorId>,
    at: &str,
) -> Result<DemoLogin> {
    let password = format!("saldo-demo-{login}");
    let parsed = OperatorLogin::parse(login).expect("a valid demo login");
    // An account already there is left as it is, enabled again if it was
    // disabled: the demo's passwords are fixed.
    match hub.operator(&parsed)? {
        None => {
            let name = PersonName::parse(name).expect("a valid demo name");
            hub.add_operator(&parsed, &name, role, cash_point, &Password::parse(&password)?)?;
        }
        Some(row) if row.account.disabled => {
            hub.set_operator_disabled(&parsed, false)?;
        }
        Some(_) => {}
    }
    Ok(DemoLogin { at: at.to_string(), login: login.to_string(), password, role: role.name() })
}

/// The demo's logins as a block of text.
pub(super) fn print_demo_logins(logins: &[DemoLogin]) -> Result<()> {
    if logins.is_empty() {
        return Ok(());
    }
    outln!();
    outln!("Logins (fixed demo passwords):");
    for l in logins {
        outln!("  {:<21} {:<9} {:<21} {}", l.at, l.login, l.password, l.role);
    }
    Ok(())
}
