//! Operators' accounts as realm data: who may log in to a node's API, with
//! which role, and the argon2id hash of their password.
//!
//! An account is an operation of the hub ([`crate::Body::Operator`]); the
//! latest one per login, in its author's log, is the account. Cashiers'
//! accounts are in the hub's own log, which every device receives, so a
//! cash point lets its cashiers log in while the hub is unreachable and
//! learns that one was disabled at its next sync. Administrators' and
//! clerks' accounts are written with the hub's contacts key, whose log
//! never leaves the hub, and a device refuses them whoever delivers them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::AuthorId;
use crate::values::{Label, PersonName, TextError};

/// What an operator may do, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorRole {
    /// Works at the hub: everything, operators' accounts and devices included.
    Administrator,
    /// Works at the hub (the service office): directory, review, reports.
    Clerk,
    /// Works at one cash point: top-ups, payments, reversals, daily close.
    Cashier,
}

impl OperatorRole {
    pub const ALL: [OperatorRole; 3] = [OperatorRole::Administrator, OperatorRole::Clerk, OperatorRole::Cashier];

    pub fn name(self) -> &'static str {
        match self {
            OperatorRole::Administrator => "administrator",
            OperatorRole::Clerk => "clerk",
            OperatorRole::Cashier => "cashier",
        }
    }

    pub fn parse(text: &str) -> Option<OperatorRole> {
        match text.trim().to_lowercase().as_str() {
            "administrator" | "admin" | "amministratore" => Some(OperatorRole::Administrator),
            "clerk" | "impiegato" | "operatore" => Some(OperatorRole::Clerk),
            "cashier" | "cassiere" | "esercente" => Some(OperatorRole::Cashier),
            _ => None,
        }
    }

    /// Whether accounts of this role work at a cash point (and so travel in
    /// the hub's log to every device) rather than at the hub only.
    pub fn works_at_cash_point(self) -> bool {
        self == OperatorRole::Cashier
    }
}

/// An operator's login: 3 to 32 characters of `a-z`, `0-9`, `.`, `_`, `-`,
/// beginning with a letter; typed in any case, kept in lowercase (the same
/// rule as `saldo_api::operators::Login`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OperatorLogin(String);

impl OperatorLogin {
    pub const CHARS_MIN: usize = 3;
    pub const CHARS_MAX: usize = 32;

    pub fn parse(text: &str) -> Result<OperatorLogin, TextError> {
        let what = "login";
        let login = text.trim().to_lowercase();
        if login.is_empty() {
            return Err(TextError::Empty { what });
        }
        let length = login.chars().count();
        if length > Self::CHARS_MAX {
            return Err(TextError::TooLong { what, length, max: Self::CHARS_MAX });
        }
        if let Some(found) =
            login.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')))
        {
            return Err(TextError::BadCharacter { what, found });
        }
        if length < Self::CHARS_MIN {
            return Err(TextError::TooShort { what, length, min: Self::CHARS_MIN });
        }
        if !login.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(TextError::FirstNotALetter { what });
        }
        Ok(OperatorLogin(login))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for OperatorLogin {
    type Error = TextError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        OperatorLogin::parse(&value)
    }
}

impl From<OperatorLogin> for String {
    fn from(value: OperatorLogin) -> Self {
        value.0
    }
}

impl fmt::Display for OperatorLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for OperatorLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// The prefix of every password hash an account may carry: argon2id in
/// the PHC string format (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
pub const PASSWORD_HASH_PREFIX: &str = "$argon2id$";

/// One operator's account as the hub last wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OperatorAccount {
    pub login: OperatorLogin,
    /// The operator's name as receipts show it.
    pub name: PersonName,
    pub role: OperatorRole,
    /// The cash point a cashier works at; `None` for the hub's roles.
    pub cash_point: Option<AuthorId>,
    /// The argon2id hash of the password, as a PHC string.
    pub password_hash: Label,
    /// The password was given to the operator by someone else (a generated
    /// one-time password): they are to choose their own at their next login.
    pub must_change_password: bool,
    /// A disabled account logs in nowhere.
    pub disabled: bool,
}
