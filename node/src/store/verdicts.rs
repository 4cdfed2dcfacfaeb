//! The hub's verdicts on money operations, and the flagged ones awaiting review.

use super::{Result, Tx, author_id, id_key, op_id, seq_of};
use rusqlite::{OptionalExtension, params};
use saldo_sync::{AuthorId, FlagReason, Label, OpId, Seq, Verdict};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVerdict {
    pub hub_seq: Seq,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlaggedRow {
    pub op: OpId,
    pub author: AuthorId,
    pub kind: String,
    pub reason: String,
    pub detail: String,
    pub total_minor: i64,
}

pub(super) fn verdict_parts(verdict: &Verdict) -> (&'static str, Option<&'static str>, Option<String>, Option<String>) {
    match verdict {
        Verdict::Accepted => ("accepted", None, None, None),
        Verdict::Flagged { reason, detail } => ("flagged", Some(reason.code()), Some(detail.to_string()), None),
        Verdict::ReviewAccepted { operator, note } => {
            ("review-accepted", None, Some(note.to_string()), Some(operator.to_string()))
        }
        Verdict::ReviewRejected { operator, note } => {
            ("review-rejected", None, Some(note.to_string()), Some(operator.to_string()))
        }
    }
}

fn label_or_dash(text: Option<String>) -> Label {
    text.and_then(|t| Label::parse(&t).ok()).unwrap_or_else(|| Label::parse("-").expect("a dash is a label"))
}

impl<'a> Tx<'a> {
    /// Operations whose effective verdict is "flagged" (awaiting review).
    pub fn flagged(&self, limit: u32) -> Result<Vec<FlaggedRow>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT o.id, (SELECT author FROM authors WHERE num = o.author), o.kind, o.reason, COALESCE(o.detail, ''), o.total_minor
             FROM ops o WHERE o.verdict = 'flagged' ORDER BY o.hlc LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |r| {
            Ok(FlaggedRow {
                op: op_id(r.get(0)?)?,
                author: author_id(r.get(1)?)?,
                kind: r.get(2)?,
                reason: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                detail: r.get(4)?,
                total_minor: r.get(5)?,
            })
        })?;
        rows.collect::<rusqlite::Result<_>>().map_err(crate::store::StoreError::from)
    }
    // ---- verdicts ---------------------------------------------------------

    /// The effective verdict on `target`, held with it or ahead of it.
    pub fn verdict(&self, target: &OpId) -> Result<Option<StoredVerdict>> {
        if let Some(row) = self.money_op(target)? {
            return Ok(row.verdict);
        }
        self.tx
            .prepare_cached("SELECT hub_seq, verdict, reason, detail, reviewer FROM early_verdicts WHERE target = ?1")?
            .query_row([&target.0[..]], stored_verdict)
            .optional()
            .map_err(crate::store::StoreError::from)
    }
    /// Records the hub's verdict unless a later one (higher hub seq) is held.
    /// Returns whether the effective verdict of a held operation changed.
    pub fn put_verdict(&self, target: &OpId, hub_seq: Seq, verdict: &Verdict) -> Result<bool> {
        let (kind, reason, detail, reviewer) = verdict_parts(verdict);
        // Whether it awaited a verdict until now, among the operations the
        // offline limits count (`crate::ledger::offline_limits_apply`).
        let held = self
            .tx
            .prepare_cached(
                "SELECT row, author, COALESCE(total_minor, 0),
                        verdict IS NULL AND kind IN ('top-up', 'due-payment', 'service-charge', 'transfer', 'refund')
                 FROM ops WHERE id_key = ?1 AND id = ?2 AND counts IS NOT NULL",
            )?
            .query_row(params![id_key(target), &target.0[..]], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, r.get::<_, bool>(3)?))
            })
            .optional()?;
        match held {
            Some((row, author, total_minor, awaited)) => {
                let changed = self
                    .tx
                    .prepare_cached(
                        "UPDATE ops SET verdict = ?2, verdict_seq = ?3, reason = ?4, detail = ?5, reviewer = ?6
                         WHERE row = ?1 AND (verdict_seq IS NULL OR verdict_seq < ?3)",
                    )?
                    .execute(params![row, kind, hub_seq.0 as i64, reason, detail, reviewer])?;
                if changed > 0 && awaited {
                    self.add_awaiting(author, -1, -total_minor)?;
                }
                Ok(changed > 0)
            }
            None => {
                self.tx
                    .prepare_cached(
                        "INSERT INTO early_verdicts (target, hub_seq, verdict, reason, detail, reviewer) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT (target) DO UPDATE SET hub_seq = excluded.hub_seq, verdict = excluded.verdict,
                            reason = excluded.reason, detail = excluded.detail, reviewer = excluded.reviewer
                         WHERE excluded.hub_seq > early_verdicts.hub_seq",
                    )?
                    .execute(params![&target.0[..], hub_seq.0 as i64, kind, reason, detail, reviewer])?;
                Ok(false)
            }
        }
    }
    /// Removes and returns the verdict that arrived before its operation.
    pub fn take_early_verdict(&self, target: &OpId) -> Result<Option<StoredVerdict>> {
        let found = self
            .tx
            .prepare_cached("SELECT hub_seq, verdict, reason, detail, reviewer FROM early_verdicts WHERE target = ?1")?
            .query_row([&target.0[..]], stored_verdict)
            .optional()?;
        if found.is_some() {
            self.tx.prepare_cached("DELETE FROM early_verdicts WHERE target = ?1")?.execute([&target.0[..]])?;
        }
        Ok(found)
    }
    /// Every effective verdict: (target, verdict kind, reason), ordered.
    pub fn all_verdicts(&self) -> Result<Vec<(OpId, String, Option<String>)>> {
        let mut stmt = self.tx.prepare(
            "SELECT id, verdict, reason FROM ops WHERE verdict IS NOT NULL
             UNION ALL SELECT target, verdict, reason FROM early_verdicts ORDER BY 1",
        )?;
        let rows = stmt.query_map([], |r| Ok((op_id(r.get(0)?)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<rusqlite::Result<_>>().map_err(crate::store::StoreError::from)
    }
}

fn stored_verdict(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredVerdict> {
    Ok(StoredVerdict { hub_seq: seq_of(r.get(0)?), verdict: verdict_of(r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?) })
}

pub(super) fn verdict_of(
    kind: String,
    reason: Option<String>,
    detail: Option<String>,
    reviewer: Option<String>,
) -> Verdict {
    match kind.as_str() {
        "accepted" => Verdict::Accepted,
        "flagged" => Verdict::Flagged {
            reason: reason.as_deref().and_then(FlagReason::from_code).unwrap_or(FlagReason::RoleNotAllowed),
            detail: label_or_dash(detail),
        },
        "review-accepted" => Verdict::ReviewAccepted { operator: label_or_dash(reviewer), note: label_or_dash(detail) },
        _ => Verdict::ReviewRejected { operator: label_or_dash(reviewer), note: label_or_dash(detail) },
    }
}
