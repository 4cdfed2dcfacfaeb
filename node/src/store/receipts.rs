//! What a receipt shows beyond its operation: the balance right after it,
//! and the operation a verification code names.

use rusqlite::params;
use saldo_sync::{ConsumerId, OpId, ServiceId};

use super::{Result, Tx};

impl Tx<'_> {
    /// What operations stored after `op_row` moved a wallet, as (confirmed,
    /// provisional) cents: the balance right after `op_row` is today's less these.
    pub fn wallet_moved_after(&self, consumer: &ConsumerId, service: &ServiceId, op_row: i64) -> Result<(i64, i64)> {
        self.with_lines()?
            .prepare_cached(
                "SELECT COALESCE(SUM(CASE WHEN o.counts THEN l.delta_minor ELSE 0 END), 0),
                        COALESCE(SUM(CASE WHEN o.counts_provisional THEN l.delta_minor ELSE 0 END), 0)
                 FROM money_lines l JOIN ops o ON o.row = l.op_row
                 WHERE l.wallet = (SELECT num FROM wallets WHERE consumer = ?1 AND service = ?2) AND l.op_row > ?3",
            )?
            .query_row(params![&consumer.0[..], service.as_str(), op_row], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(crate::store::StoreError::from)
    }

    /// The operations on money whose id begins with `prefix` (at least 8 bytes).
    pub fn money_ops_with_prefix(&self, prefix: &[u8]) -> Result<Vec<OpId>> {
        let Some(key) = prefix.get(..8) else { return Ok(Vec::new()) };
        let key = i64::from_le_bytes(key.try_into().expect("8 bytes"));
        let mut stmt = self.tx.prepare_cached("SELECT id FROM ops WHERE id_key = ?1 AND counts IS NOT NULL")?;
        let ids: Vec<Vec<u8>> = stmt.query_map([key], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        Ok(ids.into_iter().filter(|id| id.starts_with(prefix)).filter_map(|id| OpId::from_slice(&id)).collect())
    }
}

impl Tx<'_> {
    /// The reversal of `target` that counts (or counts here, provisionally),
    /// with its hybrid logical time.
    pub fn reversal_ref_of(&self, target: &OpId) -> Result<Option<(OpId, u64)>> {
        use rusqlite::OptionalExtension as _;
        self.tx
            .prepare_cached(
                "SELECT id, hlc FROM ops WHERE reverses = ?1 AND (counts OR counts_provisional) ORDER BY row LIMIT 1",
            )?
            .query_row([&target.0[..]], |r| {
                let id: Vec<u8> = r.get(0)?;
                Ok((id, r.get::<_, i64>(1)? as u64))
            })
            .optional()
            .map(|found| found.and_then(|(id, hlc)| Some((OpId::from_slice(&id)?, hlc))))
            .map_err(crate::store::StoreError::from)
    }
}
