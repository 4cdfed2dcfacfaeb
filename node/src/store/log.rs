//! The log: operations, authors (devices) and their heads, equivocation evidence, chains read back.

use super::money::NewMoneyOp;
use super::verdicts::verdict_parts;
use super::{Hot, Result, Tx, author_id, id_key, op_id, role_name, role_of, seq_of};
use rusqlite::{OptionalExtension, params};
use saldo_sync::{AuthorId, OfflineLimits, OpId, OpKind, Role, Seq};

/// What the store knows of a device.
#[derive(Debug, Clone)]
pub struct AuthorRow {
    pub author: AuthorId,
    /// The author's number in this database, by which the log and the
    /// money tables name it (0 before it is stored).
    pub num: i64,
    pub role: Role,
    pub name: String,
    pub limits: Option<OfflineLimits>,
    pub revoked_after: Option<Seq>,
    pub frozen_at: Option<Seq>,
    pub head_seq: Seq,
    pub head_id: Option<OpId>,
}

impl<'a> Tx<'a> {
    // ---- authors ----------------------------------------------------------

    pub fn author(&self, author: &AuthorId) -> Result<Option<AuthorRow>> {
        if let Some(row) = self.authors.borrow().get(author) {
            return Ok(Some(row.clone()));
        }
        let row = self
            .tx
            .prepare_cached(
                "SELECT author, role, name, limits, revoked_after, frozen_at, head_seq, head_id, num FROM authors WHERE author = ?1",
            )?
            .query_row([&author.0[..]], |r| {
                let limits: Option<Vec<u8>> = r.get(3)?;
                let head_id: Option<Vec<u8>> = r.get(7)?;
                Ok(AuthorRow {
                    author: author_id(r.get(0)?)?,
                    role: role_of(&r.get::<_, String>(1)?)?,
                    name: r.get(2)?,
                    limits: limits.and_then(|b| postcard::from_bytes(&b).ok()),
                    revoked_after: r.get::<_, Option<i64>>(4)?.map(seq_of),
                    frozen_at: r.get::<_, Option<i64>>(5)?.map(seq_of),
                    head_seq: seq_of(r.get(6)?),
                    head_id: head_id.map(op_id).transpose()?,
                    num: r.get(8)?,
                })
            })
            .optional()?;
        if let Some(row) = &row {
            self.authors.borrow_mut().insert(*author, row.clone());
        }
        Ok(row)
    }
    /// Applies `edit` to the cached row of `author`, if cached.
    fn edit_cached(&self, author: &AuthorId, edit: impl FnOnce(&mut AuthorRow)) {
        if let Some(row) = self.authors.borrow_mut().get_mut(author) {
            edit(row);
        }
    }
    pub fn authors(&self) -> Result<Vec<AuthorRow>> {
        self.flush_heads()?;
        let ids: Vec<Vec<u8>> = self
            .tx
            .prepare_cached("SELECT author FROM authors ORDER BY author")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(row) = self.author(&author_id(id)?)? {
                out.push(row);
            }
        }
        Ok(out)
    }
    pub fn insert_author(
        &self,
        author: &AuthorId,
        role: Role,
        name: &str,
        limits: Option<&OfflineLimits>,
    ) -> Result<()> {
        let encoded = limits.map(|l| postcard::to_stdvec(l).expect("limits encode"));
        self.tx
            .prepare_cached(
                "INSERT INTO authors (author, role, name, limits, num)
                 VALUES (?1, ?2, ?3, ?4, (SELECT COALESCE(MAX(num), 0) + 1 FROM authors))
                 ON CONFLICT (author) DO UPDATE SET role = excluded.role, name = excluded.name, limits = excluded.limits",
            )?
            .execute(params![&author.0[..], role_name(role), name, encoded])?;
        self.edit_cached(author, |row| {
            row.role = role;
            row.name = name.to_owned();
            row.limits = limits.copied();
        });
        Ok(())
    }
    pub fn set_limits(&self, author: &AuthorId, limits: &OfflineLimits) -> Result<()> {
        let encoded = postcard::to_stdvec(limits).expect("limits encode");
        self.tx
            .prepare_cached("UPDATE authors SET limits = ?2 WHERE author = ?1")?
            .execute(params![&author.0[..], encoded])?;
        self.edit_cached(author, |row| row.limits = Some(*limits));
        Ok(())
    }
    pub fn set_revoked(&self, author: &AuthorId, last_seq_seen: Seq) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE authors SET revoked_after = MIN(COALESCE(revoked_after, ?2), ?2) WHERE author = ?1",
            )?
            .execute(params![&author.0[..], last_seq_seen.0 as i64])?;
        self.edit_cached(author, |row| {
            row.revoked_after = Some(row.revoked_after.map_or(last_seq_seen, |r| r.min(last_seq_seen)))
        });
        Ok(())
    }
    pub fn set_frozen(&self, author: &AuthorId, seq: Seq) -> Result<()> {
        self.tx
            .prepare_cached("UPDATE authors SET frozen_at = MIN(COALESCE(frozen_at, ?2), ?2) WHERE author = ?1")?
            .execute(params![&author.0[..], seq.0 as i64])?;
        self.edit_cached(author, |row| row.frozen_at = Some(row.frozen_at.map_or(seq, |f| f.min(seq))));
        Ok(())
    }
    /// Moves `author`'s head (written to the table at commit).
    pub fn set_head(&self, author: &AuthorId, seq: Seq, id: &OpId) -> Result<()> {
        if self.author(author)?.is_none() {
            return Err(crate::store::StoreError::from(rusqlite::Error::QueryReturnedNoRows));
        }
        self.edit_cached(author, |row| {
            row.head_seq = seq;
            row.head_id = Some(*id);
        });
        self.dirty_heads.borrow_mut().insert(*author);
        Ok(())
    }
    // ---- operations -------------------------------------------------------

    /// The row of operation `id`, if held.
    pub fn op_row(&self, id: &OpId) -> Result<Option<i64>> {
        self.tx
            .prepare_cached("SELECT row FROM ops WHERE id_key = ?1 AND id = ?2")?
            .query_row(params![id_key(id), &id.0[..]], |r| r.get(0))
            .optional()
            .map_err(crate::store::StoreError::from)
    }
    pub fn has_op(&self, id: &OpId) -> Result<bool> {
        Ok(self.op_row(id)?.is_some())
    }
    /// Appends an operation to the log, with what is kept of it when it
    /// is an operation on money whose amounts this node keeps; returns its row.
    #[allow(clippy::too_many_arguments)]
    pub fn insert_op(
        &self,
        id: &OpId,
        author: &AuthorId,
        seq: Seq,
        hlc: u64,
        kind: OpKind,
        in_chain: bool,
        bytes: &[u8],
        money: Option<&NewMoneyOp<'_>>,
    ) -> Result<i64> {
        let num = self.num_of(author)?;
        let verdict = money.and_then(|m| m.verdict.as_ref());
        let (verdict_kind, reason, detail, reviewer) = match verdict {
            Some(v) => {
                let (kind, reason, detail, reviewer) = verdict_parts(&v.verdict);
                (Some(kind), reason, detail, reviewer)
            }
            None => (None, None, None, None),
        };
        self.hot(Hot::InsertOp)?.execute(params![
            id_key(id),
            &id.0[..],
            num,
            seq.0 as i64,
            hlc as i64,
            kind.name(),
            in_chain,
            bytes,
            money.and_then(|m| m.receipt).map(|r| r.0 as i64),
            money.and_then(|m| m.reference),
            money.and_then(|m| m.reverses).map(|r| &r.0[..]),
            money.and_then(|m| m.range).map(|r| r.first.0 as i64),
            money.and_then(|m| m.range).map(|r| r.last.0 as i64),
            money.and_then(|m| m.method),
            money.map(|m| m.total_minor),
            money.map(|m| m.counts),
            money.map(|m| m.counts_provisional),
            verdict_kind,
            verdict.map(|v| v.hub_seq.0 as i64),
            reason,
            detail,
            reviewer,
        ])?;
        let row = self.tx.last_insert_rowid();
        if let Some(till) = super::days::TillOp::of(kind) {
            self.tx
                .prepare_cached("INSERT INTO till_ops (author, kind, seq, op_row) VALUES (?1, ?2, ?3, ?4)")?
                .execute(params![num, till.kind(), seq.0 as i64, row])?;
        }
        if let Some(money) = money {
            if verdict.is_none() && crate::ledger::offline_limits_apply(kind) {
                self.add_awaiting(num, 1, money.total_minor)?;
            }
            if let Some(receipt) = money.receipt
                && receipt.0 as i64 > self.receipt_max_of(num)?
            {
                self.receipts_max.borrow_mut().insert(num, receipt.0 as i64);
                self.receipts_dirty.borrow_mut().insert(num);
            }
            if let (Some(running), Some(decided)) = (money.running_minor, verdict) {
                self.running.borrow_mut().insert((*author, None), running);
                self.running_pending.borrow_mut().insert((num, decided.hub_seq.0 as i64), running);
            }
        }
        Ok(row)
    }
    /// The format version of the first operation stored (its first byte),
    /// if any: a database written by a saldo of another format is refused
    /// whole at open, not operation by operation.
    pub fn first_op_format(&self) -> Result<Option<u8>> {
        let first: Option<Vec<u8>> = self
            .tx
            .query_row("SELECT substr(bytes, 1, 1) FROM ops ORDER BY row LIMIT 1", [], |r| r.get(0))
            .optional()?;
        Ok(first.and_then(|b| b.first().copied()))
    }
    pub fn op_bytes(&self, id: &OpId) -> Result<Option<Vec<u8>>> {
        self.tx
            .prepare_cached("SELECT bytes FROM ops WHERE id_key = ?1 AND id = ?2")?
            .query_row(params![id_key(id), &id.0[..]], |r| r.get(0))
            .optional()
            .map_err(crate::store::StoreError::from)
    }
    /// The chain operation of `author` at `seq`.
    pub fn chain_op_at(&self, author: &AuthorId, seq: Seq) -> Result<Option<OpId>> {
        self.tx
            .prepare_cached("SELECT id FROM ops WHERE author = (SELECT num FROM authors WHERE author = ?1) AND seq = ?2 AND in_chain = 1")?
            .query_row(params![&author.0[..], seq.0 as i64], |r| op_id(r.get(0)?))
            .optional().map_err(crate::store::StoreError::from)
    }
    pub fn insert_equivocation(&self, author: &AuthorId, seq: Seq, first: &OpId, second: &OpId) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT OR IGNORE INTO equivocations (author, seq, first_id, second_id) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![&author.0[..], seq.0 as i64, &first.0[..], &second.0[..]])?;
        Ok(())
    }
    /// How many equivocating operations of `author` are kept as evidence.
    pub fn equivocations_of(&self, author: &AuthorId) -> Result<u64> {
        self.tx
            .prepare_cached("SELECT COUNT(*) FROM equivocations WHERE author = ?1")?
            .query_row([&author.0[..]], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(crate::store::StoreError::from)
    }
    pub fn equivocation_count(&self) -> Result<u64> {
        self.tx
            .query_row("SELECT COUNT(*) FROM equivocations", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(crate::store::StoreError::from)
    }
    /// Visits every stored operation's bytes, author by author in chain order.
    pub fn for_each_op(
        &self,
        mut f: impl FnMut(bool, Vec<u8>) -> std::result::Result<(), String>,
    ) -> Result<std::result::Result<(), String>> {
        let mut stmt = self.tx.prepare("SELECT in_chain, bytes FROM ops ORDER BY author, seq, in_chain DESC")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            if let Err(e) = f(row.get(0)?, row.get(1)?) {
                return Ok(Err(e));
            }
        }
        Ok(Ok(()))
    }
    /// `author`'s chain operations from `from` to `upto`, in order: at most
    /// `max_ops`, stopping once `max_bytes` is reached (at least one if held).
    pub fn chain_range(
        &self,
        author: &AuthorId,
        from: Seq,
        upto: Seq,
        max_ops: usize,
        max_bytes: usize,
    ) -> Result<Vec<saldo_sync::reconcile::ChainOp>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT seq, id, bytes FROM ops
             WHERE author = (SELECT num FROM authors WHERE author = ?1) AND seq BETWEEN ?2 AND ?3 AND in_chain = 1
             ORDER BY seq LIMIT ?4",
        )?;
        let mut rows = stmt.query(params![&author.0[..], from.0 as i64, upto.0 as i64, max_ops as i64])?;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        while let Some(row) = rows.next()? {
            let op = saldo_sync::reconcile::ChainOp {
                seq: seq_of(row.get(0)?),
                id: op_id(row.get(1)?)?,
                bytes: row.get(2)?,
            };
            bytes += op.bytes.len();
            out.push(op);
            if bytes >= max_bytes {
                break;
            }
        }
        Ok(out)
    }
    /// Every operation of `author` with a seq from `from` on, on any branch
    /// (chain first at each seq), by seq: at most `max_ops`, except that the
    /// operations of one seq are never split, so a caller goes on from the
    /// last seq + 1.
    pub fn all_from(
        &self,
        author: &AuthorId,
        from: Seq,
        max_ops: usize,
    ) -> Result<Vec<saldo_sync::reconcile::ChainOp>> {
        let Some(num) = self.author(author)?.map(|a| a.num) else {
            return Ok(Vec::new());
        };
        let read = |sql: &str, seq: i64, limit: i64| -> Result<Vec<saldo_sync::reconcile::ChainOp>> {
            let mut stmt = self.tx.prepare_cached(sql)?;
            let rows = stmt.query_map(params![num, seq, limit], |r| {
                Ok(saldo_sync::reconcile::ChainOp { seq: seq_of(r.get(0)?), id: op_id(r.get(1)?)?, bytes: r.get(2)? })
            })?;
            rows.collect::<rusqlite::Result<_>>().map_err(crate::store::StoreError::from)
        };
        let mut out = read(
            "SELECT seq, id, bytes FROM ops WHERE author = ?1 AND seq >= ?2 ORDER BY seq, in_chain DESC, row LIMIT ?3",
            from.0 as i64,
            max_ops.max(1) as i64,
        )?;
        if out.len() >= max_ops.max(1)
            && let Some(last) = out.last().map(|op| op.seq)
        {
            out.retain(|op| op.seq != last);
            out.extend(read(
                "SELECT seq, id, bytes FROM ops WHERE author = ?1 AND seq = ?2 ORDER BY in_chain DESC, row LIMIT ?3",
                last.0 as i64,
                i64::MAX,
            )?);
        }
        Ok(out)
    }
    /// Whether `id` is an operation of `author` held (on any branch).
    pub fn holds_op_of(&self, author: &AuthorId, id: &OpId) -> Result<bool> {
        let Some(num) = self.author(author)?.map(|a| a.num) else {
            return Ok(false);
        };
        Ok(self
            .tx
            .prepare_cached("SELECT 1 FROM ops WHERE id_key = ?1 AND id = ?2 AND author = ?3")?
            .query_row(params![id_key(id), &id.0[..], num], |_| Ok(()))
            .optional()?
            .is_some())
    }
    /// The authors this node holds evidence of a fork on, with the lowest
    /// seq where it holds two operations, and the ids of what it holds of
    /// them from there (at most `ids_max` each, lowest seqs first).
    pub fn fork_summaries(&self, ids_max: usize) -> Result<Vec<(AuthorId, Seq, Vec<OpId>)>> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT author, num, frozen_at FROM authors WHERE frozen_at IS NOT NULL ORDER BY author")?;
        let forked: Vec<(AuthorId, i64, i64)> = stmt
            .query_map([], |r| Ok((author_id(r.get(0)?)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut out = Vec::with_capacity(forked.len());
        for (author, num, from) in forked {
            let ids = self
                .tx
                .prepare_cached(
                    "SELECT id FROM ops WHERE author = ?1 AND seq >= ?2 ORDER BY seq, in_chain DESC, row LIMIT ?3",
                )?
                .query_map(params![num, from, ids_max as i64], |r| op_id(r.get(0)?))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            out.push((author, seq_of(from), ids));
        }
        Ok(out)
    }
    pub fn op_count(&self) -> Result<u64> {
        self.tx
            .query_row("SELECT COUNT(*) FROM ops", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(crate::store::StoreError::from)
    }
    // ---- money ------------------------------------------------------------

    /// The running total of the money `author`'s operations moved, as the
    /// hub judged them: all of them, or only those it had decided by its own
    /// operation `decided_by`. The difference is what the author had
    /// recorded and not seen decided when it held the hub's log up to there.
    pub fn running_total(&self, author: &AuthorId, decided_by: Option<Seq>) -> Result<i64> {
        if let Some(known) = self.running.borrow().get(&(*author, decided_by)) {
            return Ok(*known);
        }
        self.flush_running()?;
        let num = self.num_of(author)?;
        let found = self
            .tx
            .prepare_cached(
                "SELECT running_minor FROM running_totals WHERE author = ?1 AND decided_seq <= ?2
                 ORDER BY decided_seq DESC LIMIT 1",
            )?
            .query_row(params![num, decided_by.map_or(i64::MAX, |s| s.0 as i64)], |r| r.get(0))
            .optional()?;
        let total = found.unwrap_or(0);
        self.running.borrow_mut().insert((*author, decided_by), total);
        Ok(total)
    }
    /// The wall-clock time (ms) of `author`'s chain operation at `seq`.
    pub fn op_wall_ms(&self, author: &AuthorId, seq: Seq) -> Result<Option<u64>> {
        if let Some(known) = self.walls.borrow().get(&(*author, seq)) {
            return Ok(Some(*known));
        }
        let wall = self
            .tx
            .prepare_cached("SELECT hlc FROM ops WHERE author = (SELECT num FROM authors WHERE author = ?1) AND seq = ?2 AND in_chain = 1")?
            .query_row(params![&author.0[..], seq.0 as i64], |r| r.get::<_, i64>(0))
            .optional()?
            .map(|h| saldo_sync::Hlc(h as u64).wall_ms());
        if let Some(wall) = wall {
            self.walls.borrow_mut().insert((*author, seq), wall);
        }
        Ok(wall)
    }
}
