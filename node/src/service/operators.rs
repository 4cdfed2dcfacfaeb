//! Operators: logging in (argon2id, off the async threads), and whether a
//! session's account may still act (disabled here, or at the hub and synced).

use saldo_api::operators::{Login, Password};
use saldo_api::session::PasswordChange;
use saldo_sync::OperatorLogin;

use super::{Operator, Result, Service, ServiceError};
use crate::node::AuthError;
use crate::store::operators::OperatorRow;

/// The API's name of an operation model's role.
pub fn api_role(role: saldo_sync::OperatorRole) -> saldo_api::session::OperatorRole {
    match role {
        saldo_sync::OperatorRole::Administrator => saldo_api::session::OperatorRole::Administrator,
        saldo_sync::OperatorRole::Clerk => saldo_api::session::OperatorRole::Clerk,
        saldo_sync::OperatorRole::Cashier => saldo_api::session::OperatorRole::Cashier,
    }
}

/// The operator of `row`; `at_hub` when logged in at the hub, the only
/// node where a one-time password can be replaced (a cash point cannot
/// write accounts), so the only one that insists on it.
fn operator(row: &OperatorRow, cash_point_name: Option<String>, at_hub: bool) -> Operator {
    let account = &row.account;
    Operator {
        login: account.login.to_string(),
        name: account.name.to_string(),
        role: api_role(account.role),
        cash_point: account.cash_point,
        cash_point_name,
        must_change_password: at_hub && account.must_change_password,
    }
}

impl Service {
    /// Checks a login and password; the account must be enabled and, at a
    /// cash point, a cashier of this cash point.
    pub async fn authenticate(&self, login: &Login, password: &Password) -> Result<Operator> {
        let (login, password) = (login.as_str().to_string(), password.expose().to_string());
        let allowed = self.inner.clone();
        self.read(move |node| {
            let row = match node.authenticate(&login, &password) {
                Ok(row) => row,
                Err(AuthError::Node(e)) => return Err(ServiceError::from(*e)),
                Err(refused) => {
                    // A disabled account's open sessions end with it.
                    allowed.allowed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).forget_login(&login);
                    return Err(ServiceError::new(saldo_api::ErrorKind::Unauthenticated, refused.to_string()));
                }
            };
            let name = match row.account.cash_point {
                Some(device) => node.device_name(&device)?,
                None => None,
            };
            Ok(operator(&row, name, node.is_hub()))
        })
        .await
    }

    /// The operator logged in replaces their own password, giving the one
    /// they logged in with (at the hub, which keeps the accounts). The new
    /// one is chosen, so it is no longer to be replaced.
    pub async fn change_own_password(&self, login: &str, change: PasswordChange) -> Result<()> {
        change.validate().map_err(ServiceError::from)?;
        if !self.about().is_hub {
            return Err(ServiceError::new(
                saldo_api::ErrorKind::Forbidden,
                "passwords are kept by the hub: change yours there, or ask an administrator",
            ));
        }
        let new = crate::node::Password::parse(change.new_password.expose())
            .map_err(|e| ServiceError::invalid("new_password", e.to_string()))?;
        let login = OperatorLogin::parse(login).map_err(|e| ServiceError::invalid("login", e.to_string()))?;
        let current = change.current_password.expose().to_string();
        let checked = login.clone();
        // Checked on a reader (argon2id takes tens of milliseconds), then written.
        self.read(move |node| match node.authenticate(checked.as_str(), &current) {
            Ok(_) => Ok(()),
            Err(AuthError::Node(e)) => Err(ServiceError::from(*e)),
            Err(AuthError::WrongCredentials) => {
                Err(ServiceError::invalid("current_password", "this is not the password you logged in with"))
            }
            Err(refused) => Err(ServiceError::new(saldo_api::ErrorKind::Forbidden, refused.to_string())),
        })
        .await?;
        self.write(move |node| {
            node.set_operator_password(&login, &new).map_err(super::accounts::account_error)?;
            Ok(())
        })
        .await
    }

    /// Whether `operator`'s account still lets them act here: `Err` says why not.
    pub async fn operator_still_allowed(&self, operator: &Operator) -> std::result::Result<(), String> {
        let Ok(login) = OperatorLogin::parse(&operator.login) else {
            return Err("this account's login is no longer valid".to_string());
        };
        if self.inner.allowed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recently(login.as_str()) {
            return Ok(());
        }
        let key = login.as_str().to_string();
        let found = self.read(move |node| Ok(node.operator(&login)?)).await;
        if matches!(&found, Ok(Some(row)) if !row.account.disabled) {
            self.inner.allowed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).found_enabled(key);
        }
        match found {
            Ok(Some(row)) if !row.account.disabled => Ok(()),
            Ok(Some(_)) => Err("this account was disabled: ask an administrator".to_string()),
            Ok(None) => Err("this account no longer exists here".to_string()),
            // A node that cannot read says so on the request itself.
            Err(_) => Ok(()),
        }
    }
}

/// How long an account found enabled is taken as enabled without reading it
/// again: every request of a session checks its account, and at a counter's
/// pace that read was a tenth of a top-up's cost. An account disabled here,
/// synced from the hub or by `saldo operator` in another process stops
/// working within this time; logging in always reads the account.
const ALLOWED_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// Logins found enabled, and when.
#[derive(Debug, Default)]
pub(super) struct AllowedLately {
    found: std::collections::HashMap<String, std::time::Instant>,
}

impl AllowedLately {
    fn recently(&self, login: &str) -> bool {
        self.found.get(login).is_some_and(|at| at.elapsed() < ALLOWED_FOR)
    }
    fn found_enabled(&mut self, login: String) {
        if self.found.len() > 10_000 {
            self.found.retain(|_, at| at.elapsed() < ALLOWED_FOR);
        }
        self.found.insert(login, std::time::Instant::now());
    }
    /// Forgets what was found of one account.
    fn forget_login(&mut self, login: &str) {
        self.found.remove(login);
    }
    /// Forgets what was found: an account changed here.
    pub(super) fn forget(&mut self) {
        self.found.clear();
    }
}
