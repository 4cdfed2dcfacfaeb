//! Operators: logging in (argon2id, off the async threads), and whether a
//! session's account may still act (disabled here, or at the hub and synced).

use saldo_api::operators::{Login, Password};

use super::{Operator, Result, Service, ServiceError};
use crate::node::OperatorRow;

fn role(role: saldo_sync::OperatorRole) -> saldo_api::OperatorRole {
    match role {
        saldo_sync::OperatorRole::Administrator => saldo_api::OperatorRole::Administrator,
        saldo_sync::OperatorRole::Clerk => saldo_api::OperatorRole::Clerk,
        saldo_sync::OperatorRole::Cashier => saldo_api::OperatorRole::Cashier,
    }
}

fn operator(row: OperatorRow, cash_point_name: Option<String>) -> Operator {
    Operator {
        login: row.login.to_string(),
        name: row.name.to_string(),
        role: role(row.role),
        cash_point: row.cash_point,
        cash_point_name,
    }
}

impl Service {
    /// Checks a login and password; the account must be enabled and, at a
    /// cash point, a cashier of this cash point.
    pub async fn authenticate(&self, login: &Login, password: &Password) -> Result<Operator> {
        let (login, password) = (login.as_str().to_string(), password.expose().to_string());
        self.read(move |node| {
            let row = node.authenticate(&login, &password).map_err(|e| {
                let mut error = ServiceError::from(e);
                if error.kind != saldo_api::ErrorKind::Internal {
                    error.kind = saldo_api::ErrorKind::Unauthenticated;
                }
                error
            })?;
            let name = match row.cash_point {
                Some(device) => node.device_name_of(&device)?,
                None => None,
            };
            Ok(operator(row, name))
        })
        .await
    }

    /// Whether `operator`'s account still lets them act here: `Err` says why not.
    pub async fn operator_still_allowed(&self, operator: &Operator) -> std::result::Result<(), String> {
        let login = operator.login.clone();
        let found = self.read(move |node| Ok(node.operator(&login)?)).await;
        match found {
            Ok(Some(row)) if !row.disabled => Ok(()),
            Ok(Some(_)) => Err("this account was disabled: ask an administrator".to_string()),
            Ok(None) => Err("this account no longer exists here".to_string()),
            // A node that cannot read says so on the request itself.
            Err(_) => Ok(()),
        }
    }
}
