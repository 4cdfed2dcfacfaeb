//! A cash point's own days as it sees them: the receipts it recorded in a
//! span of time, its reversals, its daily closes and remittances, each
//! counted as this node counts it (`counts_provisional`: its own
//! operations awaiting the hub count here, flagged ones do not).

use rusqlite::params;
use saldo_sync::{AuthorId, OpId, ReceiptNo};

use super::{Result, Tx, op_id};

/// The operations that close a cash point's till: its daily closes and its
/// remittances, a few a day among thousands of receipts, listed in
/// `till_ops` so that they are found by author without reading the
/// author's whole log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TillOp {
    DailyClose,
    Remittance,
}

impl TillOp {
    pub(super) fn kind(self) -> &'static str {
        match self {
            TillOp::DailyClose => saldo_sync::OpKind::DailyClose.name(),
            TillOp::Remittance => saldo_sync::OpKind::Remittance.name(),
        }
    }

    /// The till operation an operation of `kind` is, if any.
    pub(super) fn of(kind: saldo_sync::OpKind) -> Option<TillOp> {
        match kind {
            saldo_sync::OpKind::DailyClose => Some(TillOp::DailyClose),
            saldo_sync::OpKind::Remittance => Some(TillOp::Remittance),
            _ => None,
        }
    }
}

/// Every [`TillOp`] of the log, by author, kind and sequence number,
/// written with its operation (`Tx::insert_op`). A table of its own, not a
/// partial index of `ops`: every insert into `ops` opens a cursor on each
/// of its indexes, partial or not, and this one cost the hub's bulk ingest
/// 5% (`saldo-bench foundation`).
pub(super) const TILL_OPS_SCHEMA: &str = "
CREATE TABLE till_ops (
    author INTEGER NOT NULL,
    kind TEXT NOT NULL,
    seq INTEGER NOT NULL,
    op_row INTEGER NOT NULL,
    PRIMARY KEY (author, kind, seq, op_row)
) STRICT, WITHOUT ROWID;
INSERT INTO till_ops (author, kind, seq, op_row)
    SELECT author, kind, seq, row FROM ops WHERE kind IN ('daily-close', 'remittance');
";

/// A cash point's own [`TillOp`]s of one kind that count here, oldest first.
pub(super) const OWN_TILL_OPS_SQL: &str = "SELECT o.id, o.bytes FROM till_ops t JOIN ops o ON o.row = t.op_row
     WHERE t.author = (SELECT num FROM authors WHERE author = ?1) AND t.kind = ?2 AND o.counts_provisional
     ORDER BY t.seq";

/// The highest receipt a cash point's own [`TillOp`]s of one kind cover.
pub(super) const OWN_RANGE_LAST_SQL: &str = "SELECT MAX(o.range_last) FROM till_ops t JOIN ops o ON o.row = t.op_row
     WHERE t.author = (SELECT num FROM authors WHERE author = ?1) AND t.kind = ?2 AND o.counts_provisional";

/// Whether a daily close that counts here covers a receipt.
pub(super) const RECEIPT_CLOSED_SQL: &str = "SELECT 1 FROM till_ops t JOIN ops o ON o.row = t.op_row
     WHERE t.author = (SELECT num FROM authors WHERE author = ?1) AND t.kind = 'daily-close'
       AND o.counts_provisional AND o.range_first <= ?2 AND o.range_last >= ?2";

/// One receipt (a top-up or the payment of a due) of an author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayReceipt {
    pub op: OpId,
    pub receipt: ReceiptNo,
    /// `cash`, `debit-card`, ... ([`saldo_sync::PaymentMethod::name`]).
    pub method: Option<String>,
    pub total_minor: i64,
    /// Counts here (not reversed, not flagged).
    pub counts_here: bool,
}

impl Tx<'_> {
    /// Whether `till_ops` lists exactly the log's daily closes and remittances.
    pub fn till_ops_match_the_log(&self) -> Result<bool> {
        self.tx
            .query_row(
                "SELECT NOT EXISTS (
                     SELECT author, kind, seq, row FROM ops WHERE kind IN ('daily-close', 'remittance')
                     EXCEPT SELECT author, kind, seq, op_row FROM till_ops)
                 AND (SELECT COUNT(*) FROM till_ops) = (SELECT COUNT(*) FROM ops WHERE kind IN ('daily-close', 'remittance'))",
                [],
                |r| r.get(0),
            )
            .map_err(crate::store::StoreError::from)
    }
    /// The receipts `author` recorded with a hybrid logical time in
    /// `[from_hlc, to_hlc)`, in receipt order.
    pub fn receipts_between(&self, author: &AuthorId, from_hlc: u64, to_hlc: u64) -> Result<Vec<DayReceipt>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT id, receipt, method, total_minor, counts_provisional FROM ops
             WHERE author = (SELECT num FROM authors WHERE author = ?1) AND receipt IS NOT NULL
               AND counts IS NOT NULL AND hlc >= ?2 AND hlc < ?3
             ORDER BY receipt",
        )?;
        let rows = stmt.query_map(params![&author.0[..], from_hlc as i64, to_hlc as i64], |r| {
            Ok(DayReceipt {
                op: op_id(r.get(0)?)?,
                receipt: ReceiptNo(r.get::<_, i64>(1)? as u64),
                method: r.get(2)?,
                total_minor: r.get(3)?,
                counts_here: r.get(4)?,
            })
        })?;
        rows.collect::<rusqlite::Result<_>>().map_err(crate::store::StoreError::from)
    }

    /// What the reversals `author` recorded in `[from_hlc, to_hlc)` undid,
    /// among those that count here.
    pub fn reversal_targets_between(&self, author: &AuthorId, from_hlc: u64, to_hlc: u64) -> Result<Vec<OpId>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT reverses FROM ops
             WHERE author = (SELECT num FROM authors WHERE author = ?1) AND kind = 'reversal'
               AND counts_provisional AND hlc >= ?2 AND hlc < ?3
             ORDER BY row",
        )?;
        let rows = stmt.query_map(params![&author.0[..], from_hlc as i64, to_hlc as i64], |r| op_id(r.get(0)?))?;
        rows.collect::<rusqlite::Result<_>>().map_err(crate::store::StoreError::from)
    }

    /// The operations of `author` of `kind` that count here (its daily
    /// closes, its remittances), oldest first, with their encoded bytes.
    pub fn own_ops_of_kind(&self, author: &AuthorId, kind: TillOp) -> Result<Vec<(OpId, Vec<u8>)>> {
        let mut stmt = self.tx.prepare_cached(OWN_TILL_OPS_SQL)?;
        let rows = stmt.query_map(params![&author.0[..], kind.kind()], |r| Ok((op_id(r.get(0)?)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>().map_err(crate::store::StoreError::from)
    }

    /// The highest receipt an operation of `author` of `kind` that counts
    /// here covers (a daily close's or a remittance's range).
    pub fn own_range_last(&self, author: &AuthorId, kind: TillOp) -> Result<Option<ReceiptNo>> {
        self.tx
            .prepare_cached(OWN_RANGE_LAST_SQL)?
            .query_row(params![&author.0[..], kind.kind()], |r| r.get::<_, Option<i64>>(0))
            .map(|last| last.map(|n| ReceiptNo(n as u64)))
            .map_err(crate::store::StoreError::from)
    }

    /// Whether a daily close of `author` that counts here covers `receipt`.
    pub fn receipt_closed_here(&self, author: &AuthorId, receipt: ReceiptNo) -> Result<bool> {
        self.tx
            .prepare_cached(RECEIPT_CLOSED_SQL)?
            .exists(params![&author.0[..], receipt.0 as i64])
            .map_err(crate::store::StoreError::from)
    }

    /// The receipts of `author` numbered `first..=last` that count here:
    /// how many, their total and their cash, in cents.
    pub fn receipt_range_here(&self, author: &AuthorId, first: ReceiptNo, last: ReceiptNo) -> Result<(u64, i64, i64)> {
        self.tx
            .prepare_cached(
                "SELECT COUNT(*), COALESCE(SUM(total_minor), 0), COALESCE(SUM(CASE WHEN method = 'cash' THEN total_minor END), 0)
                 FROM ops WHERE author = (SELECT num FROM authors WHERE author = ?1) AND receipt BETWEEN ?2 AND ?3
                   AND counts_provisional",
            )?
            .query_row(params![&author.0[..], first.0 as i64, last.0 as i64], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?))
            }).map_err(crate::store::StoreError::from)
    }
}
