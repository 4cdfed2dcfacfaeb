//! Operators' accounts (realm data, [`saldo_sync::OperatorAccount`]): the
//! latest account per login as this node holds it, read when an operator
//! logs in. On a device, only its own cashiers' accounts are kept.

use rusqlite::{OptionalExtension, Row, params};
use saldo_sync::{AuthorId, Label, OpId, OperatorAccount, OperatorLogin, OperatorRole, PersonName, Seq};

use super::{Result, Tx};

/// One row per login: the account as the latest operation about it left it,
/// and which operation that was (its author, seq and id).
pub(super) const SCHEMA_V8: &str = r#"
CREATE TABLE operators (
    login TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    cash_point BLOB,
    password_hash TEXT NOT NULL,
    must_change_password INTEGER NOT NULL,
    disabled INTEGER NOT NULL,
    author BLOB NOT NULL,
    seq INTEGER NOT NULL,
    op BLOB NOT NULL
) STRICT, WITHOUT ROWID;
"#;

/// An operator's account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorRow {
    pub account: OperatorAccount,
    /// The key that wrote the account (the hub's, or its contacts key's).
    pub author: AuthorId,
    /// The seq, in that key's log, of the operation that last changed it.
    pub seq: Seq,
    pub op: OpId,
}

const OPERATOR_SELECT: &str = "SELECT login, name, role, cash_point, password_hash, must_change_password, disabled, \
                               author, seq, op FROM operators";

fn bad_column(index: usize, what: String) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(index, what, rusqlite::types::Type::Text)
}

fn operator_row(row: &Row<'_>) -> rusqlite::Result<OperatorRow> {
    let login: String = row.get(0)?;
    let name: String = row.get(1)?;
    let role: String = row.get(2)?;
    let cash_point: Option<Vec<u8>> = row.get(3)?;
    let hash: String = row.get(4)?;
    let author: Vec<u8> = row.get(7)?;
    let op: Vec<u8> = row.get(9)?;
    let key = |index: usize, bytes: &[u8]| -> rusqlite::Result<[u8; 32]> {
        bytes.try_into().map_err(|_| bad_column(index, "a 32-byte key".into()))
    };
    Ok(OperatorRow {
        account: OperatorAccount {
            login: OperatorLogin::parse(&login).map_err(|e| bad_column(0, e.to_string()))?,
            name: PersonName::parse(&name).map_err(|e| bad_column(1, e.to_string()))?,
            role: OperatorRole::parse(&role).ok_or_else(|| bad_column(2, format!("operator role {role}")))?,
            cash_point: cash_point.map(|b| key(3, &b).map(AuthorId)).transpose()?,
            password_hash: Label::parse(&hash).map_err(|e| bad_column(4, e.to_string()))?,
            must_change_password: row.get(5)?,
            disabled: row.get(6)?,
        },
        author: AuthorId(key(7, &author)?),
        seq: Seq(row.get::<_, i64>(8)? as u64),
        op: OpId(key(9, &op)?),
    })
}

impl Tx<'_> {
    /// Stores `account` as written by `author` at `seq` (operation `op`):
    /// it replaces the login's account when it is a later operation of the
    /// same key. A login is only ever written by one key (the hub gives
    /// each role's accounts to one key); should another key write it, the
    /// first account stays.
    pub fn put_operator(&self, account: &OperatorAccount, author: &AuthorId, seq: Seq, op: &OpId) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO operators
                     (login, name, role, cash_point, password_hash, must_change_password, disabled, author, seq, op)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (login) DO UPDATE SET
                     name = excluded.name, role = excluded.role, cash_point = excluded.cash_point,
                     password_hash = excluded.password_hash, must_change_password = excluded.must_change_password,
                     disabled = excluded.disabled, seq = excluded.seq, op = excluded.op
                 WHERE operators.author = excluded.author AND operators.seq < excluded.seq",
            )?
            .execute(params![
                account.login.as_str(),
                account.name.as_str(),
                account.role.name(),
                account.cash_point.as_ref().map(|c| &c.0[..]),
                account.password_hash.as_str(),
                account.must_change_password,
                account.disabled,
                &author.0[..],
                seq.0 as i64,
                &op.0[..],
            ])?;
        Ok(())
    }

    /// Forgets a login's account (on a device, a cashier who no longer
    /// works at it).
    pub fn remove_operator(&self, login: &OperatorLogin) -> Result<()> {
        self.tx.prepare_cached("DELETE FROM operators WHERE login = ?1")?.execute([login.as_str()])?;
        Ok(())
    }

    pub fn operator(&self, login: &OperatorLogin) -> Result<Option<OperatorRow>> {
        self.tx
            .prepare_cached(&format!("{OPERATOR_SELECT} WHERE login = ?1"))?
            .query_row([login.as_str()], operator_row)
            .optional()
            .map_err(crate::store::StoreError::from)
    }

    /// Every account held, by login.
    pub fn operators(&self) -> Result<Vec<OperatorRow>> {
        self.tx
            .prepare_cached(&format!("{OPERATOR_SELECT} ORDER BY login"))?
            .query_map([], operator_row)?
            .collect::<rusqlite::Result<_>>()
            .map_err(crate::store::StoreError::from)
    }
}
