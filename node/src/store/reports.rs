//! The rows the municipality's accounts add up: operations on money in a
//! span of hybrid logical time (a day, a month), a cash point's cash owed
//! before a period, and a year's payments by payer, child and service.
//! Reports decide nothing here: which rows count is the caller's choice
//! (`counts` at the hub, `counts_provisional` at a cash point).

use rusqlite::params;
use saldo_sync::{AuthorId, ConsumerId, OpId};

use super::{Result, Tx, op_id};

/// Operations on money found by time: one index entry per operation on
/// money (`counts` is NULL for every other operation), so a day's or a
/// month's reports read that span of the log, not all of it.
pub(super) const SCHEMA: &str = r#"
CREATE INDEX ops_money_by_hlc ON ops (hlc) WHERE counts IS NOT NULL;
"#;

/// One operation on money as reports read it.
#[derive(Debug, Clone)]
pub struct ReportOp {
    pub id: OpId,
    pub author: AuthorId,
    pub author_name: String,
    pub kind: String,
    pub receipt: Option<u64>,
    pub method: Option<String>,
    pub total_minor: i64,
    pub hlc: u64,
    pub counts: bool,
    pub counts_provisional: bool,
    /// `accepted`, `flagged`, `rejected`; `None` while it awaits the hub
    /// (and for the hub's own operations, which count as recorded).
    pub verdict: Option<String>,
    pub reverses: Option<OpId>,
    /// A reversal that counts (here or at the hub) undid it: settled, not pending.
    pub reversed: bool,
    /// The signed operation, for what the columns do not hold (its
    /// operator, its wallet lines, a remittance's reference).
    pub bytes: Vec<u8>,
}

/// What a payer's payments on one child's service by one method came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YearLine {
    pub payer_fiscal_code: String,
    pub payer_surname: String,
    pub payer_name: String,
    pub consumer: ConsumerId,
    pub fiscal_code: String,
    pub surname: String,
    pub name: String,
    pub school: Option<String>,
    pub service: String,
    pub method: Option<String>,
    pub payments: u32,
    /// Cents; negative for refunds.
    pub total_minor: i64,
    /// Refunds (money handed back), not payments.
    pub refund: bool,
}

/// Operations on money in a span of time, by `ops_money_by_hlc`.
const OPS_BETWEEN_SQL: &str =
    "SELECT o.id, a.author, a.name, o.kind, o.receipt, o.method, COALESCE(o.total_minor, 0), o.hlc,
        o.counts, o.counts_provisional, o.verdict, o.reverses, o.bytes,
        EXISTS (SELECT 1 FROM ops r WHERE r.reverses = o.id AND (r.counts OR r.counts_provisional))
     FROM ops o JOIN authors a ON a.num = o.author
     WHERE o.counts IS NOT NULL AND o.hlc >= ?1 AND o.hlc < ?2 AND (?3 IS NULL OR a.author = ?3)
     ORDER BY o.hlc, o.row";

/// An author's [`super::days::TillOp`]s of one kind that count (at the hub,
/// or here), oldest first.
const COUNTED_TILL_OPS_SQL: &str = "SELECT o.id, o.bytes FROM till_ops t JOIN ops o ON o.row = t.op_row
     WHERE t.author = (SELECT num FROM authors WHERE author = ?1) AND t.kind = ?2 AND o.counts IS NOT NULL
       AND (CASE WHEN ?3 THEN o.counts_provisional ELSE o.counts END)
     ORDER BY t.seq";

/// A year's payments by payer, child, service and method. Two statements,
/// not `(?3 IS NULL OR ...)`: with it SQLite reads every line of the hub
/// even for one payer; without it, one payer's statement starts from
/// `families_by_payer` and reads their wallets' lines only.
fn year_lines_sql(one_payer: bool) -> String {
    let payer_filter = if one_payer { "f.payer_fiscal_code = ?3" } else { "?3 IS NULL" };
    format!(
        "SELECT f.payer_fiscal_code, f.payer_surname, f.payer_name, c.consumer, c.fiscal_code, c.surname, c.name,
                c.school, w.service, o.method, COUNT(*), SUM(l.delta_minor), o.kind = 'refund' 
         FROM families f JOIN consumers c ON c.family = f.family JOIN wallets w ON w.consumer = c.consumer
         JOIN money_lines l ON l.wallet = w.num JOIN ops o ON o.row = l.op_row
         WHERE {payer_filter} AND o.kind IN ('top-up', 'due-payment', 'refund')
           AND o.hlc >= ?1 AND o.hlc < ?2 AND o.counts IS NOT NULL
           AND (CASE WHEN ?4 THEN o.counts_provisional ELSE o.counts END)
         GROUP BY f.family, c.consumer, w.service, o.kind = 'refund', o.method
         ORDER BY f.payer_surname, f.payer_name, f.family, c.surname, c.name, c.consumer, w.service, 13, o.method"
    )
}

fn opt_op_id(bytes: Option<Vec<u8>>) -> rusqlite::Result<Option<OpId>> {
    bytes.map(op_id).transpose()
}

impl Tx<'_> {
    /// The operations on money with a hybrid logical time in
    /// `[from_hlc, to_hlc)`, of one author or all, in time order.
    pub fn report_ops_between(&self, from_hlc: u64, to_hlc: u64, author: Option<&AuthorId>) -> Result<Vec<ReportOp>> {
        let mut stmt = self.tx.prepare_cached(OPS_BETWEEN_SQL)?;
        let author = author.map(|a| a.0.to_vec());
        let rows = stmt.query_map(params![from_hlc as i64, to_hlc as i64, author], |r| {
            let author: Vec<u8> = r.get(1)?;
            Ok(ReportOp {
                id: op_id(r.get(0)?)?,
                author: AuthorId(author.try_into().map_err(|_| {
                    rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Blob, "author id".into())
                })?),
                author_name: r.get(2)?,
                kind: r.get(3)?,
                receipt: r.get::<_, Option<i64>>(4)?.map(|n| n as u64),
                method: r.get(5)?,
                total_minor: r.get(6)?,
                hlc: r.get::<_, i64>(7)? as u64,
                counts: r.get(8)?,
                counts_provisional: r.get(9)?,
                verdict: r.get(10)?,
                reverses: opt_op_id(r.get(11)?)?,
                bytes: r.get(12)?,
                reversed: r.get(13)?,
            })
        })?;
        rows.collect::<rusqlite::Result<_>>().map_err(crate::store::StoreError::from)
    }

    /// What `author` collected in cash (top-ups and payments of dues) and
    /// remitted before `before_hlc`, in cents, counting what counts at the
    /// hub (or here, with `provisional`).
    pub fn cash_before(&self, author: &AuthorId, before_hlc: u64, provisional: bool) -> Result<(i64, i64)> {
        self.tx
            .prepare_cached(
                "SELECT COALESCE(SUM(CASE WHEN kind IN ('top-up', 'due-payment') AND method = 'cash' THEN total_minor END), 0),
                        COALESCE(SUM(CASE WHEN kind = 'remittance' THEN total_minor END), 0)
                 FROM ops WHERE author = (SELECT num FROM authors WHERE author = ?1) AND hlc < ?2
                   AND counts IS NOT NULL AND (CASE WHEN ?3 THEN counts_provisional ELSE counts END)",
            )?
            .query_row(params![&author.0[..], before_hlc as i64, provisional], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(crate::store::StoreError::from)
    }

    /// The operations of `author` of `kind` that count at the hub (or here,
    /// with `provisional`), oldest first, with their encoded bytes.
    pub fn counted_ops_of_kind(
        &self,
        author: &AuthorId,
        kind: super::days::TillOp,
        provisional: bool,
    ) -> Result<Vec<(OpId, Vec<u8>)>> {
        let mut stmt = self.tx.prepare_cached(COUNTED_TILL_OPS_SQL)?;
        let rows =
            stmt.query_map(params![&author.0[..], kind.kind(), provisional], |r| Ok((op_id(r.get(0)?)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>().map_err(crate::store::StoreError::from)
    }

    /// Top-ups, payments of dues and refunds with a time in `[from_hlc, to_hlc)`
    /// that count (at the hub, or here with `provisional`), added up by
    /// payer, child, service and method; of one payer (codice fiscale) or
    /// all. Read by wallet, so one payer's statement reads their lines only.
    pub fn year_lines(
        &self,
        from_hlc: u64,
        to_hlc: u64,
        payer: Option<&str>,
        provisional: bool,
    ) -> Result<Vec<YearLine>> {
        let mut stmt = self.with_lines()?.prepare_cached(&year_lines_sql(payer.is_some()))?;
        let rows = stmt.query_map(params![from_hlc as i64, to_hlc as i64, payer, provisional], |r| {
            let consumer: Vec<u8> = r.get(3)?;
            Ok(YearLine {
                payer_fiscal_code: r.get(0)?,
                payer_surname: r.get(1)?,
                payer_name: r.get(2)?,
                consumer: ConsumerId(consumer.try_into().map_err(|_| {
                    rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Blob, "consumer id".into())
                })?),
                fiscal_code: r.get(4)?,
                surname: r.get(5)?,
                name: r.get(6)?,
                school: r.get(7)?,
                service: r.get(8)?,
                method: r.get(9)?,
                payments: r.get::<_, i64>(10)? as u32,
                total_minor: r.get(11)?,
                refund: r.get(12)?,
            })
        })?;
        rows.collect::<rusqlite::Result<_>>().map_err(crate::store::StoreError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn plan(store: &Store, sql: &str, values: impl rusqlite::Params) -> String {
        let mut stmt = store.conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect("a statement");
        let rows = stmt.query_map(values, |r| r.get::<_, String>(3)).expect("plan");
        rows.collect::<rusqlite::Result<Vec<_>>>().expect("plan").join("\n")
    }

    /// What a hub with a million operations relies on: a day's report reads
    /// that day of the log, and one payer's statement their wallets only.
    #[test]
    fn a_days_report_reads_that_day_and_a_payers_statement_their_wallets_only() {
        let store = Store::open_in_memory().expect("store");
        let ops = plan(&store, OPS_BETWEEN_SQL, params![1, 2, None::<Vec<u8>>]);
        assert!(ops.contains("USING INDEX ops_money_by_hlc"), "{ops}");
        let payer = plan(&store, &year_lines_sql(true), params![1, 2, "RSSMRA80A01H501U", false]);
        assert!(payer.starts_with("SEARCH f USING INDEX families_by_payer"), "{payer}");
        assert!(!payer.contains("SCAN"), "{payer}");
    }

    /// A cash point's daily closes and remittances are read from their own
    /// table, not from the author's whole log (a year of receipts at a
    /// hub's daily close of a thousand cash points took seconds).
    #[test]
    fn closes_and_remittances_are_read_without_the_authors_receipts() {
        use crate::store::days::{OWN_RANGE_LAST_SQL, OWN_TILL_OPS_SQL, RECEIPT_CLOSED_SQL};
        let store = Store::open_in_memory().expect("store");
        for (sql, values) in [
            (COUNTED_TILL_OPS_SQL, params![vec![1u8; 32], "daily-close", false]),
            (OWN_TILL_OPS_SQL, params![vec![1u8; 32], "daily-close"]),
            (OWN_RANGE_LAST_SQL, params![vec![1u8; 32], "remittance"]),
            (RECEIPT_CLOSED_SQL, params![vec![1u8; 32], 7]),
        ] {
            let ops = plan(&store, sql, values);
            assert!(ops.starts_with("SEARCH t USING PRIMARY KEY (author=? AND kind=?)"), "{sql}: {ops}");
            assert!(ops.contains("SEARCH o USING INTEGER PRIMARY KEY") && !ops.contains("SCAN"), "{sql}: {ops}");
        }
    }
}
