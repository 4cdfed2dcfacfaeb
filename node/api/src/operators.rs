//! Operator accounts: who logs in, with which role, at which cash point.

use std::fmt;

use saldo_sync::{AuthorId, PersonName};
use serde::{Deserialize, Serialize};

use crate::ApiError;
use crate::session::OperatorRole;

/// An operator's login name: 3 to 32 of `a-z 0-9 . _ -`, beginning with a
/// letter; typed in any case, kept in lowercase.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Login(String);

impl Login {
    pub const CHARS_MIN: usize = 3;
    pub const CHARS_MAX: usize = 32;

    pub fn parse(text: &str) -> Result<Login, LoginError> {
        let login = text.trim().to_lowercase();
        let length = login.chars().count();
        if !(Self::CHARS_MIN..=Self::CHARS_MAX).contains(&length) {
            return Err(LoginError::Length(length));
        }
        if let Some(found) =
            login.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')))
        {
            return Err(LoginError::BadCharacter(found));
        }
        if !login.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(LoginError::FirstNotALetter);
        }
        Ok(Login(login))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("the login is {0} characters long: use 3 to 32, like mario.rossi")]
    Length(usize),
    #[error("the login contains {0:?}: use letters a-z, digits, dots, hyphens and underscores, like mario.rossi")]
    BadCharacter(char),
    #[error("the login must begin with a letter, like mario.rossi")]
    FirstNotALetter,
}

impl TryFrom<String> for Login {
    type Error = LoginError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Login::parse(&value)
    }
}

impl From<Login> for String {
    fn from(value: Login) -> Self {
        value.0
    }
}

impl fmt::Display for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Login({})", self.0)
    }
}

/// A password as sent to log in or to set one. Never printed: its `Debug`
/// hides it, and it is never serialized back.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    /// Shortest password an operator may set.
    pub const CHARS_MIN: usize = 10;
    /// Longest password accepted at all (bounds the hashing work).
    pub const CHARS_MAX: usize = 128;

    pub fn new(text: impl Into<String>) -> Password {
        Password(text.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Checks a password being set for `field`.
    pub fn check_new(&self, field: &str) -> Result<(), ApiError> {
        let length = self.0.chars().count();
        if length < Self::CHARS_MIN {
            return Err(ApiError::invalid(
                field,
                format!(
                    "the password has {length} characters: use at least {}, a few words are easy to remember",
                    Self::CHARS_MIN
                ),
            ));
        }
        self.check_bound(field)
    }

    /// Checks the length bound of any password sent.
    pub fn check_bound(&self, field: &str) -> Result<(), ApiError> {
        if self.0.chars().count() > Self::CHARS_MAX {
            return Err(ApiError::invalid(
                field,
                format!("the password is longer than {} characters", Self::CHARS_MAX),
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(hidden)")
    }
}

// A request type that holds a password is serialized only by clients (the
// UI, tests); the server never sends one back.
impl Serialize for Password {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Password {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Password)))
            .max_length(Some(Self::CHARS_MAX))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Password {}

/// An operator account as administrators see it (`GET /operators`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperatorView {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub login: Login,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: PersonName,
    pub role: OperatorRole,
    /// The cash point a cashier is bound to (device id).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub cash_point: Option<AuthorId>,
    /// That cash point's name, for people.
    pub cash_point_name: Option<String>,
    pub disabled: bool,
    /// The account holds a password the node generated, to be replaced by
    /// one its owner chooses (nothing forces that yet: an administrator
    /// sets it).
    #[serde(default)]
    pub must_change_password: bool,
    /// A one-time password the node generated, shown in this answer only
    /// (for the administrator to hand over).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_time_password: Option<String>,
}

/// `POST /operators`: a new account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperatorCreate {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub login: Login,
    /// The name printed on receipts.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: PersonName,
    pub role: OperatorRole,
    /// Required for a cashier, refused for the others.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(default)]
    pub cash_point: Option<AuthorId>,
    /// The account's password; left out, the node generates one (shown
    /// once in the answer) for the administrator to hand over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Password>,
}

impl OperatorCreate {
    pub fn validate(&self) -> Result<(), ApiError> {
        match (self.role, &self.cash_point) {
            (OperatorRole::Cashier, None) => {
                return Err(ApiError::invalid("cash_point", "a cashier works at one cash point: choose which"));
            }
            (OperatorRole::Administrator | OperatorRole::Clerk, Some(_)) => {
                return Err(ApiError::invalid(
                    "cash_point",
                    "only a cashier is bound to a cash point: leave it empty for an administrator or a clerk",
                ));
            }
            _ => {}
        }
        match &self.password {
            Some(password) => password.check_new("password"),
            None => Ok(()),
        }
    }
}

/// `PATCH /operators/{login}`: a new password, or the account disabled or
/// enabled again. At least one of them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperatorUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Password>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// The node generates a password (shown once in the answer) for the
    /// administrator to hand over; not with `password`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub one_time_password: bool,
}

impl OperatorUpdate {
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.password.is_none() && self.disabled.is_none() && !self.one_time_password {
            return Err(ApiError::invalid(
                "password",
                "say what changes: a new password (or a one-time password), disabled, or both",
            ));
        }
        if self.password.is_some() && self.one_time_password {
            return Err(ApiError::invalid(
                "one_time_password",
                "either set a password or ask for a one-time password, not both",
            ));
        }
        match &self.password {
            Some(password) => password.check_new("password"),
            None => Ok(()),
        }
    }
}

/// `GET /operators`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperatorList {
    pub operators: Vec<OperatorView>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_kept_lowercase_and_bad_ones_say_how_to_write_them() {
        assert_eq!(Login::parse(" Mario.Rossi ").unwrap().as_str(), "mario.rossi");
        assert_eq!(Login::parse("ab"), Err(LoginError::Length(2)));
        assert_eq!(Login::parse("mario rossi"), Err(LoginError::BadCharacter(' ')));
        assert_eq!(Login::parse("1mario"), Err(LoginError::FirstNotALetter));
        assert!(serde_json::from_str::<Login>("\"x\"").is_err());
    }

    #[test]
    fn a_password_never_shows_in_debug_output() {
        let request: OperatorCreate =
            serde_json::from_str(r#"{"login":"anna","name":"Anna","role":"clerk","password":"correct horse battery"}"#)
                .unwrap();
        assert!(!format!("{request:?}").contains("horse"));
        assert!(request.validate().is_ok());
    }

    #[test]
    fn a_cashier_needs_a_cash_point_and_only_a_cashier_has_one() {
        let mut request = OperatorCreate {
            login: Login::parse("anna").unwrap(),
            name: PersonName::parse("Anna").unwrap(),
            role: OperatorRole::Cashier,
            cash_point: None,
            password: Some(Password::new("correct horse battery")),
        };
        assert_eq!(request.validate().unwrap_err().field.as_deref(), Some("cash_point"));
        request.cash_point = Some(AuthorId([1; 32]));
        assert!(request.validate().is_ok());
        request.role = OperatorRole::Administrator;
        assert_eq!(request.validate().unwrap_err().field.as_deref(), Some("cash_point"));
        request.cash_point = None;
        request.password = Some(Password::new("short"));
        assert_eq!(request.validate().unwrap_err().field.as_deref(), Some("password"));
        request.password = None;
        assert!(request.validate().is_ok(), "no password: the node generates a one-time password");
        assert!(OperatorUpdate::default().validate().is_err());
        assert!(OperatorUpdate { disabled: Some(true), ..OperatorUpdate::default() }.validate().is_ok());
        assert!(OperatorUpdate { one_time_password: true, ..OperatorUpdate::default() }.validate().is_ok());
        let both = OperatorUpdate {
            password: Some(Password::new("correct horse battery")),
            one_time_password: true,
            ..OperatorUpdate::default()
        };
        assert_eq!(both.validate().unwrap_err().field.as_deref(), Some("one_time_password"));
    }
}
