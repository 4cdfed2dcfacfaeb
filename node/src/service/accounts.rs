//! Operators' accounts as administrators manage them: list, create, change
//! a password, disable or enable (hub only; a cash point learns of it at
//! its next sync).

use saldo_api::operators::{Login, OperatorCreate, OperatorList, OperatorUpdate, OperatorView};
use saldo_sync::{OperatorLogin, OperatorRole};

use super::operators::api_role;
use super::{Result, Service, ServiceError};
use crate::node::{Node, OperatorError, Password};
use crate::store::operators::OperatorRow;

/// The node's refusal of an account change, for the field it is about.
pub(super) fn account_error(error: OperatorError) -> ServiceError {
    let message = error.to_string();
    match error {
        OperatorError::PasswordTooShort { .. }
        | OperatorError::PasswordTooLong { .. }
        | OperatorError::PasswordControlCharacter => ServiceError::invalid("password", message),
        OperatorError::LoginTaken(_) => ServiceError::conflict(message).at("login"),
        OperatorError::UnknownLogin(_) => ServiceError::not_found(message),
        OperatorError::CashPointNeeded
        | OperatorError::CashPointOfHubRole(_)
        | OperatorError::UnknownCashPoint(_)
        | OperatorError::AmbiguousCashPoint { .. }
        | OperatorError::NotACashPoint { .. }
        | OperatorError::RevokedCashPoint(_) => ServiceError::invalid("cash_point", message),
        OperatorError::Hash(_) => ServiceError::internal(message),
        OperatorError::Node(e) => ServiceError::from(*e),
    }
}

fn sync_role(role: saldo_api::session::OperatorRole) -> OperatorRole {
    match role {
        saldo_api::session::OperatorRole::Administrator => OperatorRole::Administrator,
        saldo_api::session::OperatorRole::Clerk => OperatorRole::Clerk,
        saldo_api::session::OperatorRole::Cashier => OperatorRole::Cashier,
    }
}

fn node_login(login: &Login) -> Result<OperatorLogin> {
    OperatorLogin::parse(login.as_str()).map_err(|e| ServiceError::invalid("login", e.to_string()))
}

/// `row` as administrators see it, with `password` when the node generated it.
fn view(node: &mut Node, row: &OperatorRow, password: Option<&Password>) -> Result<OperatorView> {
    let account = &row.account;
    let cash_point_name = match account.cash_point {
        Some(device) => node.device_name(&device)?,
        None => None,
    };
    Ok(OperatorView {
        login: Login::parse(account.login.as_str())
            .map_err(|e| ServiceError::internal(format!("a stored login does not parse: {e}")))?,
        name: account.name.clone(),
        role: api_role(account.role),
        cash_point: account.cash_point,
        cash_point_name,
        disabled: account.disabled,
        must_change_password: account.must_change_password,
        one_time_password: password.filter(|p| p.is_one_time()).map(|p| p.as_str().to_string()),
    })
}

impl Service {
    /// Every account this node holds, by login.
    pub async fn operator_accounts(&self) -> Result<OperatorList> {
        self.read(|node| {
            let rows = node.operators()?;
            let operators = rows.iter().map(|row| view(node, row, None)).collect::<Result<_>>()?;
            Ok(OperatorList { operators })
        })
        .await
    }

    /// Creates an account (hub only), with a one-time password when the
    /// request has none.
    pub async fn create_operator(&self, request: OperatorCreate) -> Result<OperatorView> {
        request.validate().map_err(ServiceError::from)?;
        let login = node_login(&request.login)?;
        let password = match &request.password {
            Some(password) => Password::parse(password.expose()).map_err(account_error)?,
            None => Password::generate(),
        };
        self.write(move |node| {
            let row = node
                .add_operator(&login, &request.name, sync_role(request.role), request.cash_point, &password)
                .map_err(account_error)?;
            view(node, &row, Some(&password))
        })
        .await
    }

    /// The enrolled cash point `text` names: its device id, or its name
    /// (case and spaces aside), for a cashier's account.
    pub async fn resolve_cash_point(&self, text: String) -> Result<saldo_sync::AuthorId> {
        self.read(move |node| node.resolve_cash_point(&text).map_err(account_error)).await
    }

    /// Sets an account's password and/or disables or enables it (hub
    /// only), in one job; the account is checked first, so nothing is
    /// refused half-way.
    pub async fn update_operator(&self, login: Login, update: OperatorUpdate) -> Result<OperatorView> {
        update.validate().map_err(ServiceError::from)?;
        let login = node_login(&login)?;
        let password = match &update.password {
            Some(password) => Some(Password::parse(password.expose()).map_err(account_error)?),
            None => update.one_time_password.then(Password::generate),
        };
        // A disabled account stops at its session's next request.
        self.inner.allowed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).forget();
        let changed = self
            .write(move |node| {
                if node.operator(&login)?.is_none() {
                    return Err(account_error(OperatorError::UnknownLogin(login.to_string())));
                }
                let mut row = None;
                if let Some(password) = &password {
                    row = Some(node.set_operator_password(&login, password).map_err(account_error)?);
                }
                if let Some(disabled) = update.disabled {
                    row = Some(node.set_operator_disabled(&login, disabled).map_err(account_error)?);
                }
                let row = row.ok_or_else(|| ServiceError::invalid("password", "say what changes"))?;
                view(node, &row, password.as_ref())
            })
            .await;
        self.inner.allowed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).forget();
        changed
    }
}
