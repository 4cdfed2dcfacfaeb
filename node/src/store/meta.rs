//! Meta: small named values (the realm, peers' frontiers, addresses, holds).

use super::{Result, Tx};
use rusqlite::{OptionalExtension, params};

impl<'a> Tx<'a> {
    // ---- meta -------------------------------------------------------------

    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.tx
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()
            .map_err(crate::store::StoreError::from)
    }
    pub fn set_meta(&self, key: &str, value: &[u8]) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![key, value])?;
        Ok(())
    }
    pub fn delete_meta(&self, key: &str) -> Result<bool> {
        Ok(self.tx.prepare_cached("DELETE FROM meta WHERE key = ?1")?.execute([key])? > 0)
    }
}
