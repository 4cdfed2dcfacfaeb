//! Money: wallets, the lines of money operations, receipts, escrow and checkpoints.

use super::directory::service_id;
use super::verdicts::{StoredVerdict, verdict_of};
use super::{Result, SERVICE_SLOTS_MAX, ServiceSlot, Tx, author_id, consumer_id, id_key, op_id, seq_of};
use rusqlite::{OptionalExtension, params};
use saldo_sync::{AuthorId, Balance, ConsumerId, OpId, OpKind, ReceiptNo, ReceiptRange, Seq, ServiceId};

/// A wallet's number in this database, as a transaction gave it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalletNum(pub(super) i64);

/// What the log keeps of an operation on money, stored with it.
#[derive(Debug, Clone)]
pub struct NewMoneyOp<'a> {
    pub receipt: Option<ReceiptNo>,
    pub reference: Option<&'a str>,
    pub reverses: Option<&'a OpId>,
    pub range: Option<ReceiptRange>,
    pub method: Option<&'static str>,
    pub total_minor: i64,
    pub counts: bool,
    pub counts_provisional: bool,
    pub verdict: Option<StoredVerdict>,
    /// On the hub: the running total of the money its author's operations
    /// moved, this one included ([`Tx::running_total`]).
    pub running_minor: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct MoneyOpRow {
    pub row: i64,
    pub id: OpId,
    pub author: AuthorId,
    pub kind: String,
    pub receipt: Option<ReceiptNo>,
    pub reference: Option<String>,
    pub reverses: Option<OpId>,
    pub method: Option<String>,
    pub total_minor: i64,
    pub hlc: u64,
    pub counts: bool,
    pub counts_provisional: bool,
    pub verdict: Option<StoredVerdict>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletRow {
    pub consumer: ConsumerId,
    pub service: ServiceId,
    pub confirmed: Balance,
    pub provisional: Balance,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovementRow {
    pub op: OpId,
    pub author: AuthorId,
    pub kind: String,
    pub receipt: Option<u64>,
    pub method: Option<String>,
    pub hlc: u64,
    pub delta_minor: i64,
    pub counts: bool,
    pub counts_provisional: bool,
    pub verdict: Option<String>,
    pub reason: Option<String>,
}

impl<'a> Tx<'a> {
    pub fn insert_money_line(
        &self,
        op_row: i64,
        line: usize,
        consumer: &ConsumerId,
        service: &ServiceId,
        delta_minor: i64,
    ) -> Result<WalletNum> {
        let wallet = self.wallet_num(consumer, service)?;
        self.lines_pending.borrow_mut().push([wallet, op_row, line as i64, delta_minor]);
        Ok(WalletNum(wallet))
    }
    pub fn money_op(&self, id: &OpId) -> Result<Option<MoneyOpRow>> {
        self.tx
            .prepare_cached(&format!("{MONEY_SELECT} AND o.id_key = ?1 AND o.id = ?2"))?
            .query_row(params![id_key(id), &id.0[..]], money_op_row)
            .optional()
            .map_err(crate::store::StoreError::from)
    }
    /// The wallet lines of the operation in `op_row`, read from the
    /// operation (verified when it was stored), in order.
    pub fn money_lines(&self, op_row: i64) -> Result<Vec<(ConsumerId, ServiceId, i64)>> {
        let bytes: Vec<u8> =
            self.tx.prepare_cached("SELECT bytes FROM ops WHERE row = ?1")?.query_row([op_row], |r| r.get(0))?;
        let signed = saldo_sync::SignedOp::decode(&bytes).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Blob,
                format!("stored operation: {e}").into(),
            )
        })?;
        Ok(signed.op.body.wallet_deltas().into_iter().map(|(w, delta)| (w.consumer, w.service, delta)).collect())
    }
    pub fn set_money_status(&self, op_row: i64, counts: bool, counts_provisional: bool) -> Result<()> {
        self.tx
            .prepare_cached("UPDATE ops SET counts = ?2, counts_provisional = ?3 WHERE row = ?1")?
            .execute(params![op_row, counts, counts_provisional])?;
        Ok(())
    }
    /// Reversals of `target`: (reversal row, counts, counts provisionally).
    pub fn reversals_of(&self, target: &OpId) -> Result<Vec<(i64, bool, bool)>> {
        let mut stmt =
            self.tx.prepare_cached("SELECT op_row, counts, counts_provisional FROM money_ops WHERE reverses = ?1")?;
        let rows = stmt.query_map([&target.0[..]], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<rusqlite::Result<_>>().map_err(crate::store::StoreError::from)
    }
    pub fn add_to_wallet(
        &self,
        consumer: &ConsumerId,
        service: &ServiceId,
        confirmed_minor: i64,
        provisional_minor: i64,
    ) -> Result<()> {
        let num = WalletNum(self.wallet_num(consumer, service)?);
        self.add_to_wallet_num(num, confirmed_minor, provisional_minor);
        Ok(())
    }
    /// [`Tx::add_to_wallet`], for a wallet whose number this transaction gave out.
    pub fn add_to_wallet_num(&self, WalletNum(num): WalletNum, confirmed_minor: i64, provisional_minor: i64) {
        let mut deltas = self.wallet_deltas.borrow_mut();
        let delta = deltas.entry(num).or_default();
        delta.0 += confirmed_minor;
        delta.1 += provisional_minor;
        if confirmed_minor != 0 {
            self.dirty_wallets.borrow_mut().insert(num);
        }
    }
    /// The confirmed balance of a wallet this transaction gave the number
    /// of, in cents: what [`Tx::wallet`] reads, without looking the number up.
    pub fn confirmed_minor(&self, WalletNum(num): WalletNum) -> Result<i64> {
        let read = || {
            let keys = self.wallet_keys.borrow();
            let (consumer, service) = keys.get(&num).expect("a number this transaction gave has its wallet");
            self.read_balances(consumer, service)
        };
        Ok(self.balances(Some(num), read)?.0)
    }
    /// A wallet's balances (confirmed, provisional) in cents as this
    /// transaction has them: the table's (remembered by number when it has
    /// one, else read with `read`) and what the transaction added.
    fn balances(&self, num: Option<i64>, read: impl FnOnce() -> Result<(i64, i64)>) -> Result<(i64, i64)> {
        let known = num.and_then(|num| self.wallet_base.borrow().get(&num).copied());
        let base = match known {
            Some(base) => base,
            None => {
                let base = read()?;
                if let Some(num) = num {
                    self.wallet_base.borrow_mut().insert(num, base);
                }
                base
            }
        };
        let pending = num.and_then(|num| self.wallet_deltas.borrow().get(&num).copied()).unwrap_or((0, 0));
        Ok((base.0 + pending.0, base.1 + pending.1))
    }
    /// A wallet's balances as the table holds them (zero for a wallet it lacks).
    fn read_balances(&self, consumer: &ConsumerId, service: &ServiceId) -> Result<(i64, i64)> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT confirmed_minor, provisional_minor FROM wallets WHERE consumer = ?1 AND service = ?2",
            )?
            .query_row(params![&consumer.0[..], service.as_str()], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
            .optional()?
            .unwrap_or((0, 0)))
    }
    /// The number of a wallet, if this transaction has read or given it.
    fn cached_wallet_num(&self, consumer: &ConsumerId, service: &ServiceId) -> Option<i64> {
        self.wallets.borrow().get(&(*consumer, self.service_slot(service)?))?.num
    }
    /// The slot of a service in this transaction's wallet maps, given now if
    /// it has none; `None` once [`SERVICE_SLOTS_MAX`] are given (operations
    /// naming ever new services are then looked up in the database).
    pub(super) fn service_slot(&self, service: &ServiceId) -> Option<ServiceSlot> {
        let mut services = self.services.borrow_mut();
        if let Some(slot) = services.iter().position(|s| s == service) {
            return Some(slot as ServiceSlot);
        }
        if services.len() >= SERVICE_SLOTS_MAX {
            return None;
        }
        services.push(service.clone());
        Some((services.len() - 1) as ServiceSlot)
    }
    /// The number of a wallet, given one now if it has none.
    pub(super) fn wallet_num(&self, consumer: &ConsumerId, service: &ServiceId) -> Result<i64> {
        if let Some(num) = self.cached_wallet_num(consumer, service) {
            return Ok(num);
        }
        // The balances come with the number: the row is read anyway.
        let read = self
            .tx
            .prepare_cached(
                "SELECT num, confirmed_minor, provisional_minor FROM wallets WHERE consumer = ?1 AND service = ?2",
            )?
            .query_row(params![&consumer.0[..], service.as_str()], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            })
            .optional()?;
        let (num, base) = match read {
            Some((num, confirmed, provisional)) => (num, (confirmed, provisional)),
            None => (
                self.tx
                    .prepare_cached(
                        "INSERT INTO wallets (consumer, service, num)
                         VALUES (?1, ?2, (SELECT COALESCE(MAX(num), 0) + 1 FROM wallets)) RETURNING num",
                    )?
                    .query_row(params![&consumer.0[..], service.as_str()], |r| r.get(0))?,
                (0, 0),
            ),
        };
        self.wallet_base.borrow_mut().entry(num).or_insert(base);
        if let Some(slot) = self.service_slot(service) {
            self.wallets.borrow_mut().entry((*consumer, slot)).or_default().num = Some(num);
        }
        self.wallet_keys.borrow_mut().insert(num, (*consumer, service.clone()));
        Ok(num)
    }
    pub fn wallet(&self, consumer: &ConsumerId, service: &ServiceId) -> Result<WalletRow> {
        let num = self.cached_wallet_num(consumer, service);
        let row = self.balances(num, || self.read_balances(consumer, service))?;
        Ok(WalletRow {
            consumer: *consumer,
            service: service.clone(),
            confirmed: Balance::from_minor(row.0).unwrap_or(Balance::ZERO),
            provisional: Balance::from_minor(row.1).unwrap_or(Balance::ZERO),
        })
    }
    /// Every wallet with a non-zero balance, ordered.
    pub fn wallets(&self) -> Result<Vec<WalletRow>> {
        self.flush_wallets()?;
        let mut stmt = self.tx.prepare(
            "SELECT consumer, service, confirmed_minor, provisional_minor FROM wallets
             WHERE confirmed_minor <> 0 OR provisional_minor <> 0 ORDER BY consumer, service",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (consumer, service, confirmed, provisional) = row?;
            out.push(WalletRow {
                consumer: consumer_id(consumer)?,
                service: service_id(&service)?,
                confirmed: Balance::from_minor(confirmed).unwrap_or(Balance::ZERO),
                provisional: Balance::from_minor(provisional).unwrap_or(Balance::ZERO),
            });
        }
        Ok(out)
    }
    /// Recomputes every wallet from the operations that count: (confirmed,
    /// provisional) per wallet, non-zero only. `log verify` compares this with
    /// the incrementally kept `wallets` table.
    pub fn recomputed_wallets(&self) -> Result<Vec<(ConsumerId, String, i64, i64)>> {
        let mut stmt = self.with_lines()?.prepare(
            "SELECT w.consumer, w.service,
                    SUM(CASE WHEN m.counts THEN l.delta_minor ELSE 0 END),
                    SUM(CASE WHEN m.counts_provisional THEN l.delta_minor ELSE 0 END)
             FROM money_lines l JOIN money_ops m ON m.op_row = l.op_row JOIN wallets w ON w.num = l.wallet
             GROUP BY w.consumer, w.service ORDER BY w.consumer, w.service",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (consumer, service, confirmed, provisional): (Vec<u8>, String, i64, i64) = row?;
            if confirmed != 0 || provisional != 0 {
                out.push((consumer_id(consumer)?, service, confirmed, provisional));
            }
        }
        Ok(out)
    }
    /// Sums of counted credits and debits over all operations, in cents.
    pub fn counted_credits_and_debits(&self) -> Result<(i64, i64)> {
        self.with_lines()?
            .query_row(
                "SELECT COALESCE(SUM(CASE WHEN l.delta_minor > 0 THEN l.delta_minor END), 0),
                    COALESCE(SUM(CASE WHEN l.delta_minor < 0 THEN -l.delta_minor END), 0)
             FROM money_lines l JOIN money_ops m ON m.op_row = l.op_row WHERE m.counts",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(crate::store::StoreError::from)
    }
    pub fn wallet_balance_sum(&self) -> Result<i64> {
        self.flush_wallets()?;
        self.tx
            .query_row("SELECT COALESCE(SUM(confirmed_minor), 0) FROM wallets", [], |r| r.get(0))
            .map_err(crate::store::StoreError::from)
    }
    /// Whether `receipt` is not above the highest receipt of an operation
    /// of `author` held: used already, or out of the order a device
    /// numbers its receipts in.
    pub fn receipt_not_above_last(&self, author: &AuthorId, receipt: ReceiptNo) -> Result<bool> {
        Ok(receipt.0 as i64 <= self.receipt_max_of(self.num_of(author)?)?)
    }
    /// The highest receipt of the author numbered `num` (0 when none).
    pub(super) fn receipt_max_of(&self, num: i64) -> Result<i64> {
        if let Some(max) = self.receipts_max.borrow().get(&num) {
            return Ok(*max);
        }
        let max =
            self.tx.prepare_cached("SELECT receipt_max FROM authors WHERE num = ?1")?.query_row([num], |r| r.get(0))?;
        self.receipts_max.borrow_mut().insert(num, max);
        Ok(max)
    }
    /// The authors whose recorded highest receipt is not the highest of
    /// their operations held (what `saldo log verify` reports).
    pub fn receipt_max_mismatches(&self) -> Result<Vec<AuthorId>> {
        self.flush_receipts()?;
        self.tx
            .prepare(
                "SELECT a.author FROM authors a
                 WHERE a.receipt_max != COALESCE((SELECT MAX(o.receipt) FROM ops o WHERE o.author = a.num), 0)
                 ORDER BY a.author",
            )?
            .query_map([], |r| r.get::<_, Vec<u8>>(0))?
            .map(|id| author_id(id?))
            .collect::<rusqlite::Result<_>>()
            .map_err(crate::store::StoreError::from)
    }
    /// Authors whose running count and total awaiting the hub's verdict
    /// (kept by `add_awaiting`) differ from a count over the log.
    pub fn awaiting_mismatches(&self) -> Result<Vec<AuthorId>> {
        self.tx
            .prepare(
                "WITH counted AS (
                     SELECT author, COUNT(*) AS operations, COALESCE(SUM(total_minor), 0) AS total_minor FROM ops
                     WHERE verdict IS NULL AND counts IS NOT NULL
                       AND kind IN ('top-up', 'due-payment', 'service-charge', 'transfer', 'refund')
                     GROUP BY author)
                 SELECT a.author FROM authors a
                 LEFT JOIN counted c ON c.author = a.num LEFT JOIN awaiting_verdict w ON w.author = a.num
                 WHERE COALESCE(c.operations, 0) != COALESCE(w.operations, 0)
                    OR COALESCE(c.total_minor, 0) != COALESCE(w.total_minor, 0)
                 ORDER BY a.author",
            )?
            .query_map([], |r| r.get::<_, Vec<u8>>(0))?
            .map(|id| author_id(id?))
            .collect::<rusqlite::Result<_>>()
            .map_err(crate::store::StoreError::from)
    }
    pub(super) fn flush_receipts(&self) -> Result<()> {
        let maxima = self.receipts_max.borrow();
        for num in self.receipts_dirty.borrow_mut().drain() {
            self.tx
                .prepare_cached("UPDATE authors SET receipt_max = ?2 WHERE num = ?1")?
                .execute(params![num, maxima[&num]])?;
        }
        Ok(())
    }
    /// Adds to the count and total awaiting the hub's verdict of the author
    /// numbered `num` (`Tx::insert_op` and `Tx::put_verdict` keep them).
    pub(super) fn add_awaiting(&self, num: i64, operations: i64, total_minor: i64) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO awaiting_verdict (author, operations, total_minor) VALUES (?1, ?2, ?3)
                 ON CONFLICT (author) DO UPDATE SET operations = operations + excluded.operations,
                     total_minor = total_minor + excluded.total_minor",
            )?
            .execute(params![num, operations, total_minor])?;
        Ok(())
    }
    /// How many operations of `author` that take or give a wallet's money
    /// ([`crate::ledger::offline_limits_apply`]) await the hub's verdict, and their total.
    pub fn unconfirmed_of(&self, author: &AuthorId) -> Result<(u64, i64)> {
        // Kept as operations are stored and decided (`add_awaiting`).
        self.tx
            .prepare_cached(
                "SELECT operations, total_minor FROM awaiting_verdict
                 WHERE author = (SELECT num FROM authors WHERE author = ?1)",
            )?
            .query_row([&author.0[..]], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
            .optional()
            .map(Option::unwrap_or_default)
            .map_err(crate::store::StoreError::from)
    }
    /// The highest receipt number `author` used.
    pub fn last_receipt(&self, author: &AuthorId) -> Result<Option<ReceiptNo>> {
        let Some(row) = self.author(author)? else {
            return Ok(None);
        };
        let max = self.receipt_max_of(row.num)?;
        Ok((max > 0).then_some(ReceiptNo(max as u64)))
    }
    /// The highest receipt number of `author` held here, its forks and the
    /// evidence against it included (0 when none): a device enrolled in its
    /// place numbers its receipts above it.
    pub fn receipt_max_held(&self, author: &AuthorId) -> Result<u64> {
        let Some(row) = self.author(author)? else {
            return Ok(0);
        };
        let in_ops: i64 = self
            .tx
            .prepare_cached("SELECT COALESCE(MAX(receipt), 0) FROM ops WHERE author = ?1")?
            .query_row([row.num], |r| r.get(0))?;
        Ok(self.receipt_max_of(row.num)?.max(in_ops).max(0) as u64)
    }
    /// Whether an operation of the same kind with the same reference on the
    /// same wallet counts or awaits a verdict (a duplicate due payment or charge).
    pub fn reference_used(
        &self,
        kind: OpKind,
        reference: &str,
        consumer: &ConsumerId,
        service: &ServiceId,
    ) -> Result<bool> {
        self.with_lines()?
            .prepare_cached(
                "SELECT 1 FROM money_ops m JOIN money_lines l ON l.op_row = m.op_row
                 WHERE m.reference = ?2 AND m.kind = ?1
                   AND l.wallet = (SELECT num FROM wallets WHERE consumer = ?3 AND service = ?4)
                   AND (m.counts OR m.verdict IS NULL)",
            )?
            .exists(params![kind.name(), reference, &consumer.0[..], service.as_str()])
            .map_err(crate::store::StoreError::from)
    }
    /// Counted operations of `author` with receipts in `first..=last`: (count, total cents, cash cents).
    pub fn receipt_range_totals(
        &self,
        author: &AuthorId,
        first: ReceiptNo,
        last: ReceiptNo,
    ) -> Result<(u64, i64, i64)> {
        self.tx
            .prepare_cached(
                "SELECT COUNT(*), COALESCE(SUM(total_minor), 0), COALESCE(SUM(CASE WHEN method = 'cash' THEN total_minor END), 0)
                 FROM money_ops WHERE author = (SELECT num FROM authors WHERE author = ?1) AND receipt BETWEEN ?2 AND ?3 AND counts",
            )?
            .query_row(params![&author.0[..], first.0 as i64, last.0 as i64], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?))
            }).map_err(crate::store::StoreError::from)
    }
    /// Whether a counted daily close of `author` covers `receipt`.
    pub fn receipt_closed(&self, author: &AuthorId, receipt: ReceiptNo) -> Result<bool> {
        self.tx
            .prepare_cached(
                "SELECT 1 FROM money_ops WHERE author = (SELECT num FROM authors WHERE author = ?1) AND kind = 'daily-close' AND counts
                 AND range_first <= ?2 AND range_last >= ?2",
            )?
            .exists(params![&author.0[..], receipt.0 as i64]).map_err(crate::store::StoreError::from)
    }
    /// The last movements to reach this node on one wallet, newest first.
    /// "Last" is by arrival (the wallet's lines in the order of the log,
    /// read backwards from the end without sorting: a receipt shows the last
    /// top-ups, and sorting every line of a wallet by time cost a temporary
    /// B-tree per receipt); the few found are then shown in time order.
    pub fn movements(&self, consumer: &ConsumerId, service: &ServiceId, limit: u32) -> Result<Vec<MovementRow>> {
        let mut stmt = self.with_lines()?.prepare_cached(
            "SELECT o.id, (SELECT author FROM authors WHERE num = o.author), o.kind, o.receipt, o.method, o.hlc,
                    l.delta_minor, o.counts, o.counts_provisional, o.verdict, o.reason
             FROM money_lines l JOIN ops o ON o.row = l.op_row
             WHERE l.wallet = (SELECT num FROM wallets WHERE consumer = ?1 AND service = ?2)
             ORDER BY l.op_row DESC, l.line DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![&consumer.0[..], service.as_str(), limit], |r| {
            Ok(MovementRow {
                op: op_id(r.get(0)?)?,
                author: author_id(r.get(1)?)?,
                kind: r.get(2)?,
                receipt: r.get::<_, Option<i64>>(3)?.map(|n| n as u64),
                method: r.get(4)?,
                hlc: r.get::<_, i64>(5)? as u64,
                delta_minor: r.get(6)?,
                counts: r.get(7)?,
                counts_provisional: r.get(8)?,
                verdict: r.get(9)?,
                reason: r.get(10)?,
            })
        })?;
        let mut rows: Vec<MovementRow> =
            rows.collect::<rusqlite::Result<_>>().map_err(crate::store::StoreError::from)?;
        rows.sort_by_key(|row| std::cmp::Reverse(row.hlc));
        Ok(rows)
    }
    // ---- escrow and checkpoints --------------------------------------------

    pub fn add_escrow(&self, device: &AuthorId, consumer: &ConsumerId, service: &ServiceId, minor: i64) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO escrow (device, consumer, service, granted_minor) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO UPDATE SET granted_minor = granted_minor + excluded.granted_minor",
            )?
            .execute(params![&device.0[..], &consumer.0[..], service.as_str(), minor])?;
        Ok(())
    }
    /// A device's allowance for debits on a wallet: (granted, used), in
    /// cents. Used: the device's charges on the wallet that count or await
    /// the hub's verdict (a flagged charge uses none of it).
    pub fn escrow_of(&self, device: &AuthorId, consumer: &ConsumerId, service: &ServiceId) -> Result<(i64, i64)> {
        let granted: i64 = self
            .tx
            .prepare_cached("SELECT granted_minor FROM escrow WHERE device = ?1 AND consumer = ?2 AND service = ?3")?
            .query_row(params![&device.0[..], &consumer.0[..], service.as_str()], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        let used: i64 = self.with_lines()?.prepare_cached(
                "SELECT COALESCE(-SUM(l.delta_minor), 0) FROM money_lines l JOIN money_ops m ON m.op_row = l.op_row
                 WHERE l.wallet = (SELECT num FROM wallets WHERE consumer = ?2 AND service = ?3) AND m.author = (SELECT num FROM authors WHERE author = ?1) AND m.kind = 'service-charge'
                   AND (m.verdict IS NULL OR m.verdict IN ('accepted', 'review-accepted'))",
            )?
            .query_row(params![&device.0[..], &consumer.0[..], service.as_str()], |r| r.get(0))?;
        Ok((granted, used))
    }
    /// The wallets a device has an allowance on.
    pub fn escrow_wallets(&self, device: &AuthorId) -> Result<Vec<(ConsumerId, ServiceId)>> {
        let mut stmt = self.tx.prepare_cached("SELECT consumer, service FROM escrow WHERE device = ?1")?;
        let rows = stmt.query_map([&device.0[..]], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (consumer, service) = row?;
            out.push((consumer_id(consumer)?, service_id(&service)?));
        }
        Ok(out)
    }
    /// What all devices may still debit a wallet (granted minus used), in cents.
    pub fn escrow_outstanding(&self, consumer: &ConsumerId, service: &ServiceId) -> Result<i64> {
        let devices: Vec<Vec<u8>> = self
            .tx
            .prepare_cached("SELECT device FROM escrow WHERE consumer = ?1 AND service = ?2")?
            .query_map(params![&consumer.0[..], service.as_str()], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut outstanding = 0;
        for device in devices {
            let (granted, used) = self.escrow_of(&author_id(device)?, consumer, service)?;
            outstanding += (granted - used).max(0);
        }
        Ok(outstanding)
    }
    /// Wallets whose confirmed balance changed since the last call.
    pub fn take_dirty_wallets(&self) -> Vec<(ConsumerId, ServiceId)> {
        let keys = self.wallet_keys.borrow();
        let mut dirty: Vec<(ConsumerId, ServiceId)> = std::mem::take(&mut *self.dirty_wallets.borrow_mut())
            .into_iter()
            .map(|num| keys.get(&num).expect("a changed wallet has its number known").clone())
            .collect();
        dirty.sort_unstable();
        dirty
    }
    /// A device keeps the hub's confirmed balance of a wallet as of the hub's
    /// seq `as_of` (an older checkpoint than the one held changes nothing);
    /// `state::place_on_checkpoint` then derives the wallet from it.
    pub fn apply_checkpoint(
        &self,
        consumer: &ConsumerId,
        service: &ServiceId,
        as_of: Seq,
        balance: Balance,
    ) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO checkpoints (consumer, service, as_of, balance_minor) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO UPDATE SET as_of = excluded.as_of, balance_minor = excluded.balance_minor
                 WHERE excluded.as_of > checkpoints.as_of",
            )?
            .execute(params![&consumer.0[..], service.as_str(), as_of.0 as i64, balance.minor()])?;
        Ok(())
    }
    /// The checkpoint held for a wallet: (as of hub seq, confirmed balance in cents).
    pub fn checkpoint(&self, consumer: &ConsumerId, service: &ServiceId) -> Result<Option<(Seq, i64)>> {
        self.tx
            .prepare_cached("SELECT as_of, balance_minor FROM checkpoints WHERE consumer = ?1 AND service = ?2")?
            .query_row(params![&consumer.0[..], service.as_str()], |r| Ok((seq_of(r.get(0)?), r.get(1)?)))
            .optional()
            .map_err(crate::store::StoreError::from)
    }
    /// Every line on a wallet with what a device needs to place it against a
    /// checkpoint: (delta, counts now, counts provisionally now, counted by
    /// the hub as of `as_of`).
    pub fn wallet_lines_against(
        &self,
        consumer: &ConsumerId,
        service: &ServiceId,
        hub: &AuthorId,
        as_of: Seq,
    ) -> Result<Vec<(i64, bool, bool, bool)>> {
        // At `as_of` an operation counted if the hub had recorded it (its own)
        // or had accepted it by then, and no reversal counted by then. A
        // verdict is only ever replaced by a review of a flagged operation,
        // so a latest verdict taken after `as_of` means it did not count then.
        let mut stmt = self.with_lines()?.prepare_cached(
            "SELECT l.delta_minor, o.counts, o.counts_provisional,
                    COALESCE((CASE WHEN o.author = (SELECT num FROM authors WHERE author = ?3) THEN o.seq <= ?4
                          ELSE o.verdict IN ('accepted', 'review-accepted') AND o.verdict_seq <= ?4 END), 0)
                    AND NOT EXISTS (
                        SELECT 1 FROM ops r
                        WHERE r.reverses = o.id
                          AND COALESCE((CASE WHEN r.author = (SELECT num FROM authors WHERE author = ?3) THEN r.seq <= ?4
                                    ELSE r.verdict IN ('accepted', 'review-accepted') AND r.verdict_seq <= ?4 END), 0))
             FROM money_lines l JOIN ops o ON o.row = l.op_row
             WHERE l.wallet = (SELECT num FROM wallets WHERE consumer = ?1 AND service = ?2)",
        )?;
        let rows = stmt.query_map(params![&consumer.0[..], service.as_str(), &hub.0[..], as_of.0 as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        rows.collect::<rusqlite::Result<_>>().map_err(crate::store::StoreError::from)
    }
    /// Sets a wallet's balances outright.
    pub fn set_wallet(
        &self,
        consumer: &ConsumerId,
        service: &ServiceId,
        confirmed: i64,
        provisional: i64,
    ) -> Result<()> {
        self.flush_wallets()?;
        // Balances known of wallets are no longer sure (this one's number may not be known).
        self.wallet_base.borrow_mut().clear();
        self.tx
            .prepare_cached(
                "INSERT INTO wallets (consumer, service, num, confirmed_minor, provisional_minor)
                 VALUES (?1, ?2, (SELECT COALESCE(MAX(num), 0) + 1 FROM wallets), ?3, ?4)
                 ON CONFLICT DO UPDATE SET confirmed_minor = ?3, provisional_minor = ?4",
            )?
            .execute(params![&consumer.0[..], service.as_str(), confirmed, provisional])?;
        self.moved.borrow_mut().push((*consumer, service.clone()));
        Ok(())
    }
}

/// An operation on money, from the log: add `AND` conditions on `o`.
const MONEY_SELECT: &str = "SELECT o.row, o.id, (SELECT author FROM authors WHERE num = o.author), o.kind, o.receipt,
    o.reference, o.reverses, o.method, o.total_minor, o.hlc, o.counts, o.counts_provisional, o.verdict_seq, o.verdict,
    o.reason, o.detail, o.reviewer
    FROM ops o WHERE o.counts IS NOT NULL";

fn money_op_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MoneyOpRow> {
    let reverses: Option<Vec<u8>> = r.get(6)?;
    let verdict = match r.get::<_, Option<i64>>(12)? {
        Some(seq) => Some(StoredVerdict {
            hub_seq: seq_of(seq),
            verdict: verdict_of(r.get(13)?, r.get(14)?, r.get(15)?, r.get(16)?),
        }),
        None => None,
    };
    Ok(MoneyOpRow {
        row: r.get(0)?,
        id: op_id(r.get(1)?)?,
        author: author_id(r.get(2)?)?,
        kind: r.get(3)?,
        receipt: r.get::<_, Option<i64>>(4)?.map(|n| ReceiptNo(n as u64)),
        reference: r.get(5)?,
        reverses: reverses.map(op_id).transpose()?,
        method: r.get(7)?,
        total_minor: r.get(8)?,
        hlc: r.get::<_, i64>(9)? as u64,
        counts: r.get(10)?,
        counts_provisional: r.get(11)?,
        verdict,
    })
}
