//! What the hub's sender (`crate::delivery`) asks of the service: the
//! messages due, and recording what became of them.

use super::{Result, Service};
use crate::delivery::Outcome;
use crate::store::outbox::OutboxRow;

impl Service {
    /// Messages due for an attempt at `now_ms` (on a read connection).
    pub async fn outbox_due(&self, now_ms: u64, limit: u32) -> Result<Vec<OutboxRow>> {
        self.read(move |node| Ok(node.outbox_due(now_ms, limit)?)).await
    }

    /// When the next message waiting is due, if any.
    pub async fn outbox_next_due(&self) -> Result<Option<u64>> {
        self.read(|node| Ok(node.outbox_next_due()?)).await
    }

    /// Records what became of attempts: one small transaction on the
    /// writer's bulk queue, so a top-up at a counter goes first.
    pub async fn record_outcomes(&self, outcomes: Vec<Outcome>) -> Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        self.inner.node.call(move |node| Ok(node.record_outcomes(&outcomes)?)).await
    }

    /// Changes whenever the node's log grows (in this process, or seen from
    /// another): what wakes the sender after a receipt was queued.
    pub fn log_changes(&self) -> tokio::sync::watch::Receiver<saldo_sync::Frontier> {
        self.inner.node.frontier.subscribe()
    }

    /// Changes whenever receipts became messages of the outbox (the sender
    /// wakes on it).
    pub fn outbox_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.node.outbox.subscribe()
    }
}
