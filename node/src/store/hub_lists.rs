//! What the hub's office lists: families page by page, one family's payer.

use rusqlite::{OptionalExtension, params};
use saldo_sync::FamilyId;

use super::{Result, Tx};

/// A family as the `families` table holds it, with its number of children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyRow {
    pub family: FamilyId,
    pub payer_fiscal_code: String,
    pub payer_surname: String,
    pub payer_name: String,
    pub consumers: u32,
}

const FAMILY_SELECT: &str = "SELECT f.family, f.payer_fiscal_code, f.payer_surname, f.payer_name,
        (SELECT COUNT(*) FROM consumers c WHERE c.family = f.family)
     FROM families f";

fn family_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FamilyRow> {
    let bytes: Vec<u8> = r.get(0)?;
    let family = FamilyId::from_slice(&bytes).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, "a family id of 16 bytes".into())
    })?;
    Ok(FamilyRow {
        family,
        payer_fiscal_code: r.get(1)?,
        payer_surname: r.get(2)?,
        payer_name: r.get(3)?,
        consumers: r.get::<_, i64>(4)?.try_into().unwrap_or(u32::MAX),
    })
}

impl Tx<'_> {
    /// Families in payer surname order, `limit` of them after the first `offset`.
    pub fn families_page(&self, limit: u32, offset: u64) -> Result<Vec<FamilyRow>> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "{FAMILY_SELECT} ORDER BY f.payer_surname, f.payer_name, f.family LIMIT ?1 OFFSET ?2"
        ))?;
        let rows = stmt.query_map(params![limit, i64::try_from(offset).unwrap_or(i64::MAX)], family_row)?;
        rows.collect::<rusqlite::Result<_>>().map_err(crate::store::StoreError::from)
    }

    /// One family's payer, if the directory holds the family.
    pub fn family(&self, family: &FamilyId) -> Result<Option<FamilyRow>> {
        self.tx
            .prepare_cached(&format!("{FAMILY_SELECT} WHERE f.family = ?1"))?
            .query_row([&family.0[..]], family_row)
            .optional()
            .map_err(crate::store::StoreError::from)
    }
}
