//! Operators: logging in (argon2id, off the async threads), and whether a
//! session's account may still act (disabled here, or at the hub and synced).

use saldo_api::operators::{Login, Password};
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

fn operator(row: &OperatorRow, cash_point_name: Option<String>) -> Operator {
    let account = &row.account;
    Operator {
        login: account.login.to_string(),
        name: account.name.to_string(),
        role: api_role(account.role),
        cash_point: account.cash_point,
        cash_point_name,
    }
}

impl Service {
    /// Checks a login and password; the account must be enabled and, at a
    /// cash point, a cashier of this cash point.
    pub async fn authenticate(&self, login: &Login, password: &Password) -> Result<Operator> {
        let (login, password) = (login.as_str().to_string(), password.expose().to_string());
        self.read(move |node| {
            let row = match node.authenticate(&login, &password) {
                Ok(row) => row,
                Err(AuthError::Node(e)) => return Err(ServiceError::from(*e)),
                Err(refused) => {
                    return Err(ServiceError::new(saldo_api::ErrorKind::Unauthenticated, refused.to_string()));
                }
            };
            let name = match row.account.cash_point {
                Some(device) => node.device_name(&device)?,
                None => None,
            };
            Ok(operator(&row, name))
        })
        .await
    }

    /// Whether `operator`'s account still lets them act here: `Err` says why not.
    pub async fn operator_still_allowed(&self, operator: &Operator) -> std::result::Result<(), String> {
        let Ok(login) = OperatorLogin::parse(&operator.login) else {
            return Err("this account's login is no longer valid".to_string());
        };
        let found = self.read(move |node| Ok(node.operator(&login)?)).await;
        match found {
            Ok(Some(row)) if !row.account.disabled => Ok(()),
            Ok(Some(_)) => Err("this account was disabled: ask an administrator".to_string()),
            Ok(None) => Err("this account no longer exists here".to_string()),
            // A node that cannot read says so on the request itself.
            Err(_) => Ok(()),
        }
    }
}
