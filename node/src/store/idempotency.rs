//! Requests that recorded money, by the `Idempotency-Key` their client sent:
//! a retried request (the shop's Wi-Fi dropped before the answer came)
//! finds the operation the first one recorded, written in the same
//! transaction, and records nothing new.

use rusqlite::{OptionalExtension, params};
use saldo_sync::OpId;

use super::{Result, Tx};

/// Keys are scoped by who sent them (an operator's login, or a device's
/// own front end), so two clients choosing the same key never meet.
pub(super) const SCHEMA: &str = r#"
CREATE TABLE idempotency (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    request BLOB NOT NULL,     -- BLAKE3 of the request as understood
    op BLOB NOT NULL,          -- the operation it recorded
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) STRICT, WITHOUT ROWID;
"#;

/// What an earlier request with the same key recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remembered {
    pub request: [u8; 32],
    pub op: OpId,
}

impl Tx<'_> {
    pub fn idempotent_request(&self, scope: &str, key: &str) -> Result<Option<Remembered>> {
        self.tx
            .query_row("SELECT request, op FROM idempotency WHERE scope = ?1 AND key = ?2", params![scope, key], |r| {
                let request: Vec<u8> = r.get(0)?;
                let op: Vec<u8> = r.get(1)?;
                Ok((request, op))
            })
            .optional()
            .map(|found| {
                found.and_then(|(request, op)| {
                    Some(Remembered { request: request.try_into().ok()?, op: OpId::from_slice(&op)? })
                })
            })
            .map_err(crate::store::StoreError::from)
    }

    pub fn remember_request(&self, scope: &str, key: &str, request: &[u8; 32], op: &OpId, now_ms: u64) -> Result<()> {
        self.tx.execute(
            "INSERT INTO idempotency (scope, key, request, op, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![scope, key, &request[..], &op.0[..], now_ms as i64],
        )?;
        Ok(())
    }
}
