//! Ingesting operations from elsewhere: signatures checked in parallel parts, stored and applied in
//! bounded transactions.

use super::verify::VERIFY_PART_OPS;
use super::{
    LAST_TRANSACTION_WRITTEN_EARLY_AT, Node, PendingDecisions, Result, TransactionBound, WAITING_CHECK_OPS,
    WAL_FRAMES_CHECKPOINTED_EARLY,
};
use crate::state::{Applied, IngestError};
use crate::store::{AuthorRow, Tx};
use crate::{ledger, state};
use saldo_sync::{Decision, RealmId, Seq, SignedOp};

impl Node {
    /// Ingests operations received from elsewhere (a peer, a bundle): each
    /// is decoded, its signature verified (in batches over all cores), then
    /// applied; on the hub, each operation on money gets the hub's verdict.
    /// Everything is durable when this returns. One result per input.
    /// Committed in few, large transactions ([`TransactionBound::LARGE`]).
    pub fn ingest(&mut self, batch: &[Vec<u8>]) -> Result<Vec<std::result::Result<Applied, IngestError>>> {
        self.ingest_within(batch, TransactionBound::LARGE)
    }
    /// [`Node::ingest`] in transactions of at most `bound`, letting every
    /// writer waiting for the database (a top-up at the counter, in this
    /// process or another) through before each. If it fails, what it
    /// committed are whole transactions: each operation with its effects
    /// and the hub's verdicts on it; ingesting the same operations again
    /// stores the rest.
    pub fn ingest_within(
        &mut self,
        batch: &[Vec<u8>],
        bound: TransactionBound,
    ) -> Result<Vec<std::result::Result<Applied, IngestError>>> {
        // Signatures are checked a part at a time by helper threads on the
        // other cores while this thread decodes and stores the parts before,
        // committing every OPS_PER_BATCH_MAX operations. When the part it
        // needs next is not checked yet, this thread checks a later one
        // itself rather than wait: whichever of checking and storing is
        // cheaper, both cores stay busy.
        let realm = self.me.ctx.realm;
        let parts: Vec<&[Vec<u8>]> = batch.chunks(VERIFY_PART_OPS).collect();
        let checker = PartChecker::new(&realm, &parts);
        std::thread::scope(|scope| {
            let helpers = std::thread::available_parallelism().map_or(1, |n| n.get()).saturating_sub(1);
            for _ in 0..helpers.min(parts.len()) {
                scope.spawn(|| while checker.check_next() {});
            }
            let mut checked = (0..parts.len()).flat_map(|i| checker.wait_for(i));
            let mut results = Vec::with_capacity(batch.len());
            let stored = (|| {
                while results.len() < batch.len() {
                    let take = (batch.len() - results.len()).min(bound.ops_max.max(1));
                    let last_of_many = take == batch.len() - results.len() && parts.len() > 1;
                    if last_of_many {
                        self.store.checkpoint_wal(WAL_FRAMES_CHECKPOINTED_EARLY)?;
                    }
                    let write_early_at = last_of_many.then(|| take - take / LAST_TRANSACTION_WRITTEN_EARLY_AT);
                    results.extend(self.store_checked(&mut checked, take, bound.work_max, write_early_at)?);
                }
                Ok(())
            })();
            // On an error the helpers must not keep checking parts nobody will use.
            checker.stop();
            stored.map(|()| results)
        })
    }
    /// Stores operations already decoded and verified, in one transaction:
    /// at most `count` of them, and only as many as `work_max` allows (at
    /// least one), counted from when it has the database. Once
    /// `write_early_at` are stored, it writes out what the transaction holds
    /// back until its commit ([`Tx::write_held_back`]).
    fn store_checked(
        &mut self,
        checked: &mut impl Iterator<Item = std::result::Result<SignedOp, IngestError>>,
        count: usize,
        work_max: Option<std::time::Duration>,
        write_early_at: Option<usize>,
    ) -> Result<Vec<std::result::Result<Applied, IngestError>>> {
        let mut results = Vec::with_capacity(count);
        let mut tx = self.store.write_after_waiting_writers()?;
        let deadline = work_max.and_then(|work| std::time::Instant::now().checked_add(work));
        let hub_key = if self.me.ctx.is_hub() { self.me.key.as_ref() } else { None };
        let mut verdicts = PendingDecisions::with_capacity(if hub_key.is_some() { count } else { 0 });
        let mut decision_base: Option<Seq> = None;
        while results.len() < count {
            // Short transactions also end early for a writer waiting (a
            // top-up at the counter): it waits a few operations, not 40 ms.
            if !results.is_empty()
                && deadline.is_some()
                && (deadline.is_some_and(|deadline| std::time::Instant::now() >= deadline)
                    || results.len().is_multiple_of(WAITING_CHECK_OPS) && tx.writers_waiting())
            {
                break;
            }
            let Some(item) = checked.next() else { break };
            let signed = match item {
                Ok(signed) => signed,
                Err(e) => {
                    results.push(Err(e));
                    continue;
                }
            };
            if let Some(key) = hub_key
                && signed.op.author == key.author()
                && !verdicts.is_empty()
            {
                // The hub's own log is about to move: write the pending
                // decisions first, at the sequence numbers they were given.
                self.me.write_decisions(&mut tx, key, &mut verdicts)?;
                decision_base = None;
            }
            let outcome = match hub_key {
                Some(key) if signed.op.author != key.author() => {
                    let hub = key.author();
                    let mut judge = |tx: &Tx<'_>, op: &SignedOp, author: &AuthorRow| {
                        let verdict = ledger::decide(&state::gather_facts(tx, &hub, op, author)?);
                        // The verdict takes effect now, at the sequence number
                        // of the decision operation that will carry it, so the
                        // next operation in this batch is judged on the
                        // updated state.
                        let base = match decision_base {
                            Some(base) => base,
                            None => tx.author(&hub)?.map_or(Seq(0), |a| a.head_seq).next(),
                        };
                        decision_base = Some(base);
                        let carrier =
                            verdicts.push(Decision { target: op.id, author: op.op.author, verdict: verdict.clone() });
                        Ok(Some((Seq(base.0 + carrier as u64), verdict)))
                    };
                    state::apply_deciding(&mut tx, &self.me.ctx, &signed, &mut judge)
                }
                _ => state::apply(&mut tx, &self.me.ctx, &signed),
            };
            if let Err(e) = &outcome
                && !e.is_refusal()
            {
                // A storage failure: nothing of this batch is committed.
                return Err(outcome.expect_err("checked above").into());
            }
            results.push(outcome);
            if write_early_at == Some(results.len()) {
                tx.write_held_back()?;
            }
        }
        if let Some(key) = hub_key {
            self.me.write_decisions(&mut tx, key, &mut verdicts)?;
        }
        self.me.commit(tx)?;
        Ok(results)
    }
}

/// An operation decoded and its signature checked, or why it was refused.
type CheckedOp = std::result::Result<SignedOp, IngestError>;

/// The decoding and signature checks of a batch's parts, shared between the
/// thread that stores them (in order) and helper threads: any thread takes the next part
/// nobody has taken; the storing thread waits only when the part it needs is
/// being checked by another thread.
struct PartChecker<'a> {
    realm: &'a RealmId,
    parts: &'a [&'a [Vec<u8>]],
    next: std::sync::atomic::AtomicUsize,
    done: std::sync::Mutex<Vec<Option<Vec<CheckedOp>>>>,
    ready: std::sync::Condvar,
}

impl<'a> PartChecker<'a> {
    fn new(realm: &'a RealmId, parts: &'a [&'a [Vec<u8>]]) -> PartChecker<'a> {
        PartChecker {
            realm,
            parts,
            next: std::sync::atomic::AtomicUsize::new(0),
            done: std::sync::Mutex::new((0..parts.len()).map(|_| None).collect()),
            ready: std::sync::Condvar::new(),
        }
    }

    /// Checks the next part nobody has taken; false when none is left.
    fn check_next(&self) -> bool {
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(part) = self.parts.get(i) else {
            return false;
        };
        let decoded: Vec<std::result::Result<SignedOp, saldo_sync::DecodeError>> =
            part.iter().map(|bytes| SignedOp::decode(bytes)).collect();
        let good: Vec<&SignedOp> = decoded.iter().flatten().collect();
        let mut signatures = saldo_sync::op::verify_all_here(self.realm, &good).into_iter();
        let checked = decoded
            .into_iter()
            .map(|op| {
                let op = op?;
                signatures.next().expect("one signature check per decoded operation")?;
                Ok(op)
            })
            .collect();
        self.done.lock().unwrap_or_else(std::sync::PoisonError::into_inner)[i] = Some(checked);
        self.ready.notify_all();
        true
    }

    /// The checks of part `i`, checking later parts meanwhile if it is not ready.
    fn wait_for(&self, i: usize) -> Vec<CheckedOp> {
        loop {
            let mut done = self.done.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(checked) = done[i].take() {
                return checked;
            }
            if self.next.load(std::sync::atomic::Ordering::Relaxed) < self.parts.len() {
                drop(done);
                self.check_next();
                continue;
            }
            while done[i].is_none() {
                done = self.ready.wait(done).unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        }
    }

    /// Leaves the parts not taken yet unchecked.
    fn stop(&self) {
        self.next.store(self.parts.len(), std::sync::atomic::Ordering::Relaxed);
    }
}
