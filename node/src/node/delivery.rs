//! What the hub's sender reads of its outbox and records there (the sender
//! itself is `crate::delivery`).

use super::{Node, Result};
use crate::delivery::Outcome;
use crate::store::outbox::OutboxRow;

impl Node {
    /// Messages due for an attempt at `now_ms`, oldest due first.
    pub fn outbox_due(&mut self, now_ms: u64, limit: u32) -> Result<Vec<OutboxRow>> {
        let tx = self.store.read()?;
        let mut rows = tx.due_messages(now_ms, limit)?;
        // Receipts are queued as data; written out here, off the writer.
        rows.iter_mut().for_each(crate::outbox::queue::materialize);
        Ok(rows)
    }

    /// When the next message waiting is due, if any.
    pub fn outbox_next_due(&mut self) -> Result<Option<u64>> {
        let tx = self.store.read()?;
        Ok(tx.next_message_due_ms()?)
    }

    /// Queues the messages of up to `limit` receipts due, in one
    /// transaction (the hub's ingest notes them due, see
    /// `outbox::queue::receipt_counted`); returns how many it handled, 0
    /// at once when none can be due.
    pub fn expand_receipts_due(&mut self, limit: u32) -> Result<usize> {
        if !self.store.receipts_maybe_due() {
            return Ok(0);
        }
        if !self.is_hub() || self.store.is_exclusive() || !self.store.read()?.any_receipt_due()? {
            self.store.no_receipts_due();
            return Ok(0);
        }
        let tx = self.store.write()?;
        let handled = crate::outbox::queue::expand_due(&tx, &self.me.ctx, limit)?;
        let more = tx.any_receipt_due()?;
        self.me.commit(tx)?;
        if !more {
            self.store.no_receipts_due();
        }
        Ok(handled)
    }

    /// What the node's writer does once idle, after the receipts due: copies
    /// the write-ahead log into the database when it holds at least
    /// [`super::WAL_FRAMES_CHECKPOINTED_EARLY`] pages. SQLite would otherwise
    /// do it inside whichever commit takes the log past 64 MiB, most often a
    /// top-up at the counter or a sync session's batch, which would wait for
    /// it. Returns how many pages it copied.
    pub fn checkpoint_when_idle(&mut self) -> Result<i64> {
        if self.store.is_exclusive() {
            return Ok(0);
        }
        Ok(self.store.checkpoint_wal(super::WAL_FRAMES_CHECKPOINTED_EARLY)?)
    }

    /// Records what became of attempts, all in one transaction.
    pub fn record_outcomes(&mut self, outcomes: &[Outcome]) -> Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let tx = self.store.write()?;
        for outcome in outcomes {
            match outcome {
                Outcome::Sent { id, at_ms } => tx.message_sent(*id, *at_ms)?,
                Outcome::Failed { id, error, retry_at_ms } => tx.message_failed(*id, error, *retry_at_ms)?,
            }
        }
        self.me.commit(tx)
    }
}
