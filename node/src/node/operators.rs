//! Operators' accounts: creating them at the hub, changing their password,
//! disabling them, and checking a login at whichever node the operator
//! stands at (a cash point checks its cashiers with the hub unreachable).
//!
//! Passwords are hashed with argon2id (the `argon2` crate's default
//! parameters, a random salt from the operating system) into PHC strings,
//! which travel in the account's operation. A login is checked in the same
//! time whether or not it exists: an unknown login is checked against a
//! dummy hash of the same parameters.
//!
//! Cashiers' accounts are written with the hub's key, so they reach every
//! device in the hub's log; a device keeps only those of its own cashiers.
//! Administrators' and clerks' accounts are written with the hub's contacts
//! key, whose log never leaves the hub (see `state::check_kept_here`).

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, PasswordHash};
use saldo_sync::{AuthorId, Body, DeviceKey, Label, OperatorAccount, OperatorLogin, OperatorRole, PersonName, Role};

use super::{Node, NodeError};
use crate::store::operators::OperatorRow;

/// Fewest characters of a password an operator chooses.
pub const PASSWORD_CHARS_MIN: usize = 10;
/// Most characters of a password: bounds the work of hashing what is typed.
pub const PASSWORD_CHARS_MAX: usize = 128;
/// Characters of a generated one-time password: 16 of 31 letters and digits
/// that cannot be mistaken for one another, about 79 bits.
pub const ONE_TIME_PASSWORD_CHARS: usize = 16;
const ONE_TIME_ALPHABET: &[u8; 31] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A password as given to the node: one an operator chose (checked for
/// length), or a one-time password it generated, which the operator is to
/// replace at the next login. Never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password {
    text: String,
    one_time: bool,
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.one_time { "Password(one-time, hidden)" } else { "Password(hidden)" })
    }
}

impl Password {
    /// A password an operator chose: [`PASSWORD_CHARS_MIN`] to
    /// [`PASSWORD_CHARS_MAX`] characters, none of them a control character.
    pub fn parse(text: &str) -> Result<Password, OperatorError> {
        let length = text.chars().count();
        if length < PASSWORD_CHARS_MIN {
            return Err(OperatorError::PasswordTooShort { length });
        }
        if length > PASSWORD_CHARS_MAX {
            return Err(OperatorError::PasswordTooLong { length });
        }
        if text.chars().any(char::is_control) {
            return Err(OperatorError::PasswordControlCharacter);
        }
        Ok(Password { text: text.to_string(), one_time: false })
    }

    /// A fresh one-time password from the operating system's random source.
    pub fn generate() -> Password {
        let mut text = String::with_capacity(ONE_TIME_PASSWORD_CHARS);
        let mut bytes = [0u8; 64];
        while text.len() < ONE_TIME_PASSWORD_CHARS {
            getrandom::fill(&mut bytes).expect("the operating system provides randomness");
            // 248 = 8 × 31: bytes above it would favour the first letters.
            for byte in bytes.iter().filter(|b| **b < 248).take(ONE_TIME_PASSWORD_CHARS - text.len()) {
                text.push(char::from(ONE_TIME_ALPHABET[usize::from(*byte) % ONE_TIME_ALPHABET.len()]));
            }
        }
        Password { text, one_time: true }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the node generated it, to be shown once and replaced.
    pub fn is_one_time(&self) -> bool {
        self.one_time
    }

    /// The argon2id PHC string of this password, with a fresh salt.
    fn hash(&self) -> Result<Label, OperatorError> {
        let hash = Argon2::default()
            .hash_password(self.text.as_bytes())
            .map_err(|e| OperatorError::Hash(e.to_string()))?
            .to_string();
        Label::parse(&hash).map_err(|e| OperatorError::Hash(e.to_string()))
    }
}

/// Why an operator's account could not be created or changed.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("the password is {length} characters long: choose one of at least {PASSWORD_CHARS_MIN} characters")]
    PasswordTooShort { length: usize },
    #[error("the password is {length} characters long: at most {PASSWORD_CHARS_MAX} are allowed")]
    PasswordTooLong { length: usize },
    #[error("the password contains a control character (a tab, a line end?): type it on one line")]
    PasswordControlCharacter,
    #[error("the login {0} is taken: choose another, or change that account's password")]
    LoginTaken(String),
    #[error("no operator has the login {0}: see the list of operators")]
    UnknownLogin(String),
    #[error("a cashier works at one cash point: say which (its device id or its name)")]
    CashPointNeeded,
    #[error("an account of the {0} role works at the hub: it names no cash point")]
    CashPointOfHubRole(&'static str),
    #[error("no cash point {0} is enrolled in this realm: give its device id or its name as enrolled")]
    UnknownCashPoint(String),
    #[error("several cash points are named {name}: give the device id of one of them ({ids})")]
    AmbiguousCashPoint { name: String, ids: String },
    #[error("{name} is a {role}, not a cash point: cashiers work at a cash point")]
    NotACashPoint { name: String, role: &'static str },
    #[error("the cash point {0} was revoked: its cashiers can no longer work there")]
    RevokedCashPoint(String),
    #[error("cannot hash the password: {0}")]
    Hash(String),
    /// The node could not do it (storage, not the hub, …).
    #[error(transparent)]
    Node(Box<NodeError>),
}

impl From<NodeError> for OperatorError {
    fn from(error: NodeError) -> OperatorError {
        OperatorError::Node(Box::new(error))
    }
}

impl From<crate::store::StoreError> for OperatorError {
    fn from(error: crate::store::StoreError) -> OperatorError {
        NodeError::from(error).into()
    }
}

/// Why a login was refused. [`AuthError::WrongCredentials`] says nothing of
/// whether the login exists; the others are said only to whoever gave the
/// right password.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("wrong login or password")]
    WrongCredentials,
    #[error("the account {0} is disabled: ask an administrator to enable it")]
    Disabled(String),
    #[error("{0} is a cashier of another cash point: log in at that cash point")]
    OtherCashPoint(String),
    #[error("{0} is a cashier: cashiers log in at their cash point, not at the hub")]
    CashierAtHub(String),
    /// The node could not check (storage).
    #[error(transparent)]
    Node(Box<NodeError>),
}

impl From<NodeError> for AuthError {
    fn from(error: NodeError) -> AuthError {
        AuthError::Node(Box::new(error))
    }
}

impl From<crate::store::StoreError> for AuthError {
    fn from(error: crate::store::StoreError) -> AuthError {
        NodeError::from(error).into()
    }
}

/// A hash of the default parameters to check unknown logins against, so
/// that they take as long as known ones.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        Argon2::default()
            .hash_password_with_salt(b"no operator has this password", b"saldo-dummy-salt")
            .expect("hashing a fixed password with a fixed 16-byte salt works")
            .to_string()
    })
}

/// Whether `password` is the one `hash` was made of (a hash that does not
/// parse matches nothing).
fn verify(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

impl Node {
    /// Creates an operator's account (hub only). A cashier works at one
    /// enrolled cash point; an administrator or a clerk at the hub. With a
    /// [`Password::generate`]d password the operator must choose their own
    /// at the next login.
    pub fn add_operator(
        &mut self,
        login: &OperatorLogin,
        name: &PersonName,
        role: OperatorRole,
        cash_point: Option<AuthorId>,
        password: &Password,
    ) -> Result<OperatorRow, OperatorError> {
        self.me.hub_key("create operators' accounts")?;
        match (role, cash_point) {
            (OperatorRole::Cashier, None) => return Err(OperatorError::CashPointNeeded),
            (OperatorRole::Cashier, Some(device)) => self.check_cash_point(&device)?,
            (role, Some(_)) => return Err(OperatorError::CashPointOfHubRole(role.name())),
            (_, None) => {}
        }
        let password_hash = password.hash()?;
        let account = OperatorAccount {
            login: login.clone(),
            name: name.clone(),
            role,
            cash_point,
            password_hash,
            must_change_password: password.is_one_time(),
            disabled: false,
        };
        self.write_account(account, true)
    }

    /// Sets an operator's password (hub only).
    pub fn set_operator_password(
        &mut self,
        login: &OperatorLogin,
        password: &Password,
    ) -> Result<OperatorRow, OperatorError> {
        self.me.hub_key("change operators' passwords")?;
        let mut account = self.existing_account(login)?;
        account.password_hash = password.hash()?;
        account.must_change_password = password.is_one_time();
        self.write_account(account, false)
    }

    /// Disables an operator's account, or enables it again (hub only). A
    /// cash point learns it at its next sync with the hub.
    pub fn set_operator_disabled(
        &mut self,
        login: &OperatorLogin,
        disabled: bool,
    ) -> Result<OperatorRow, OperatorError> {
        self.me.hub_key(if disabled { "disable operators" } else { "enable operators" })?;
        let mut account = self.existing_account(login)?;
        account.disabled = disabled;
        self.write_account(account, false)
    }

    /// The accounts this node holds, by login: all of them at the hub, its
    /// own cashiers at a cash point.
    pub fn operators(&mut self) -> Result<Vec<OperatorRow>, NodeError> {
        Ok(self.store.read()?.operators()?)
    }

    /// One account, if this node holds it.
    pub fn operator(&mut self, login: &OperatorLogin) -> Result<Option<OperatorRow>, NodeError> {
        Ok(self.store.read()?.operator(login)?)
    }

    /// Checks a login at this node: the password against the account's hash
    /// (against a dummy hash when there is no such account, so that both
    /// take the same time), then that the account is enabled and works
    /// here: at a cash point, its own cashiers; at the hub, administrators
    /// and clerks.
    pub fn authenticate(&mut self, login: &str, password: &str) -> Result<OperatorRow, AuthError> {
        let row = match OperatorLogin::parse(login) {
            Ok(login) => self.store.read()?.operator(&login)?,
            Err(_) => None,
        };
        let matches = match &row {
            Some(r) => verify(password, r.account.password_hash.as_str()),
            None => verify(password, dummy_hash()),
        };
        let Some(row) = row.filter(|_| matches) else {
            return Err(AuthError::WrongCredentials);
        };
        let account = &row.account;
        if account.disabled {
            return Err(AuthError::Disabled(account.login.to_string()));
        }
        if account.role == OperatorRole::Cashier {
            if self.is_hub() {
                return Err(AuthError::CashierAtHub(account.login.to_string()));
            }
            if account.cash_point != self.me.ctx.own {
                return Err(AuthError::OtherCashPoint(account.login.to_string()));
            }
        }
        Ok(row)
    }

    /// The enrolled cash point that `text` names: its device id (64 hex
    /// digits) or its name as enrolled (ignoring case).
    pub fn resolve_cash_point(&mut self, text: &str) -> Result<AuthorId, OperatorError> {
        let text = text.trim();
        if let Ok(device) = AuthorId::from_hex(text) {
            self.check_cash_point(&device)?;
            return Ok(device);
        }
        let tx = self.store.read()?;
        let named: Vec<_> = tx
            .authors()?
            .into_iter()
            .filter(|a| a.role == Role::CashPoint && a.name.to_lowercase() == text.to_lowercase())
            .collect();
        let live: Vec<_> = named.iter().filter(|a| a.revoked_after.is_none()).collect();
        match (live.as_slice(), named.as_slice()) {
            ([one], _) => Ok(one.author),
            ([], []) => Err(OperatorError::UnknownCashPoint(text.to_string())),
            ([], _) => Err(OperatorError::RevokedCashPoint(text.to_string())),
            (many, _) => Err(OperatorError::AmbiguousCashPoint {
                name: text.to_string(),
                ids: many.iter().map(|a| a.author.to_hex()).collect::<Vec<_>>().join(", "),
            }),
        }
    }

    /// A device's name as enrolled, if this node knows it.
    pub fn device_name(&mut self, device: &AuthorId) -> Result<Option<String>, NodeError> {
        Ok(self.store.read()?.author(device)?.map(|a| a.name).filter(|n| !n.is_empty()))
    }

    fn check_cash_point(&mut self, device: &AuthorId) -> Result<(), OperatorError> {
        let tx = self.store.read()?;
        let row = tx.author(device)?.ok_or_else(|| OperatorError::UnknownCashPoint(device.to_hex()))?;
        if row.role != Role::CashPoint {
            let name = if row.name.is_empty() { device.to_hex() } else { row.name };
            return Err(OperatorError::NotACashPoint { name, role: row.role.name() });
        }
        if row.revoked_after.is_some() {
            return Err(OperatorError::RevokedCashPoint(row.name));
        }
        Ok(())
    }

    fn existing_account(&mut self, login: &OperatorLogin) -> Result<OperatorAccount, OperatorError> {
        let row = self.store.read()?.operator(login)?;
        row.map(|r| r.account).ok_or_else(|| OperatorError::UnknownLogin(login.to_string()))
    }

    /// Records `account` with the key its role's accounts are written by,
    /// in one transaction that first checks the login is new (`new`) or
    /// exists; returns the account as stored.
    fn write_account(&mut self, account: OperatorAccount, new: bool) -> Result<OperatorRow, OperatorError> {
        let key: &DeviceKey = if account.role.works_at_cash_point() {
            self.me.hub_key("write operators' accounts")?
        } else {
            self.me.contacts_key.as_ref().ok_or(NodeError::HubOnly("write administrators' and clerks' accounts"))?
        };
        let mut tx = self.store.write()?;
        let held = tx.operator(&account.login)?;
        match (&held, new) {
            (Some(_), true) => return Err(OperatorError::LoginTaken(account.login.to_string())),
            (None, false) => return Err(OperatorError::UnknownLogin(account.login.to_string())),
            _ => {}
        }
        let login = account.login.clone();
        self.me.author(&mut tx, key, Body::Operator(account))?;
        let row = tx.operator(&login)?.expect("the account was just stored");
        self.me.commit(tx)?;
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An unknown login costs what a known one does: the dummy hash is
    /// checked with the same algorithm and parameters as real ones.
    #[test]
    fn the_dummy_hash_has_the_parameters_of_real_ones() {
        let real = Password::parse("a real password").unwrap().hash().unwrap();
        let (real, dummy) = (PasswordHash::new(real.as_str()).unwrap(), PasswordHash::new(dummy_hash()).unwrap());
        assert_eq!(real.algorithm, dummy.algorithm);
        assert_eq!(real.version, dummy.version);
        assert_eq!(real.params, dummy.params);
        assert_eq!(real.hash.map(|h| h.len()), dummy.hash.map(|h| h.len()));
        assert!(real.to_string().starts_with(saldo_sync::operator::PASSWORD_HASH_PREFIX));
    }

    #[test]
    fn a_password_checks_against_its_own_hash_only_and_one_time_passwords_differ() {
        let password = Password::parse("correct horse").unwrap();
        let hash = password.hash().unwrap();
        assert!(verify("correct horse", hash.as_str()));
        assert!(!verify("correct horsE", hash.as_str()));
        assert!(!verify("correct horse", "not a hash"));
        assert_ne!(hash, password.hash().unwrap(), "each hash has its own salt");
        let (a, b) = (Password::generate(), Password::generate());
        assert_ne!(a.as_str(), b.as_str());
        assert_eq!(a.as_str().len(), ONE_TIME_PASSWORD_CHARS);
        assert!(a.is_one_time() && Password::parse(a.as_str()).is_ok());
        assert!(!format!("{a:?}").contains(a.as_str()), "Debug never shows a password");
    }
}
