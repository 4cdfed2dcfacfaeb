//! A family's children: who may share one receipt.

use rusqlite::params;
use saldo_sync::FamilyId;

use super::{ConsumerRow, Result, Tx};

/// Most children of one family listed (a family larger than this is an import error).
const FAMILY_MEMBERS_MAX: u32 = 64;

impl Tx<'_> {
    pub fn consumers_of_family(&self, family: &FamilyId) -> Result<Vec<ConsumerRow>> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT consumer FROM consumers WHERE family = ?1 ORDER BY surname, name LIMIT ?2")?;
        let ids: Vec<Vec<u8>> = stmt
            .query_map(params![&family.0[..], FAMILY_MEMBERS_MAX], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut out = Vec::new();
        for id in ids {
            if let Some(id) = saldo_sync::ConsumerId::from_slice(&id)
                && let Some(row) = self.consumer(&id)?
            {
                out.push(row);
            }
        }
        Ok(out)
    }
}
