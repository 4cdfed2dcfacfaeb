//! Checking a node's data: the whole log verified again, and a digest of its state to compare nodes.

use super::{Node, NodeError, Result};
use saldo_sync::{AuthorId, ConsumerId, OpId, Seq, ServiceId, SignedOp};
use std::collections::BTreeMap;

/// Operations whose signatures are checked as one ed25519 batch when
/// ingesting: the unit of work of the helper threads. `saldo-bench`
/// measures raw verification at this batch size, so that (a) is the bound
/// of this ingest.
pub const VERIFY_PART_OPS: usize = 512;

/// What `log verify` found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VerifyReport {
    pub operations: u64,
    pub authors: u64,
    pub equivocations: u64,
    pub wallets: u64,
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Node {
    /// Re-checks the whole log: every signature, every chain link, every
    /// derived balance against a recomputation from the operations.
    pub fn verify_log(&mut self) -> Result<VerifyReport> {
        let realm = self.me.ctx.realm;
        let tx = self.store.read()?;
        let mut report = VerifyReport {
            operations: tx.op_count()?,
            equivocations: tx.equivocation_count()?,
            ..VerifyReport::default()
        };
        let authors = tx.authors()?;
        report.authors = authors.len() as u64;
        let mut last: Option<(AuthorId, Seq, OpId)> = None;
        let mut problems = Vec::new();
        let walk = tx.for_each_op(|in_chain, bytes| {
            let signed = match SignedOp::decode(&bytes) {
                Ok(s) => s,
                Err(e) => {
                    problems.push(format!("an operation does not decode: {e}"));
                    return Ok(());
                }
            };
            if let Err(e) = signed.verify(&realm) {
                problems.push(e.to_string());
            }
            if !in_chain {
                return Ok(());
            }
            let (author, seq) = (signed.op.author, signed.op.seq);
            let expected_prev = match last {
                Some((a, s, id)) if a == author => {
                    if seq != s.next() {
                        problems.push(format!("{author:?}: operation #{seq} follows #{s}"));
                    }
                    id
                }
                _ => {
                    if seq != Seq::FIRST {
                        problems.push(format!("{author:?}: log starts at #{seq}"));
                    }
                    OpId::NONE
                }
            };
            if signed.op.prev != expected_prev {
                problems.push(format!("{author:?}: operation #{seq} does not link to #{}", seq.0.saturating_sub(1)));
            }
            last = Some((author, seq, signed.id));
            Ok(())
        })?;
        if let Err(e) = walk {
            problems.push(e);
        }
        for author in &authors {
            if author.head_seq.0 > 0 && tx.chain_op_at(&author.author, author.head_seq)? != author.head_id {
                problems.push(format!("{:?}: recorded head does not match the log", author.author));
            }
        }
        for author in tx.receipt_max_mismatches()? {
            problems.push(format!("{author:?}: recorded highest receipt does not match the log"));
        }
        for author in tx.awaiting_mismatches()? {
            problems.push(format!("{author:?}: the total awaiting the hub's verdict does not match the log"));
        }
        if !tx.till_ops_match_the_log()? {
            problems.push("the list of daily closes and remittances does not match the log".to_string());
        }
        let kept: Vec<(ConsumerId, String, i64, i64)> = tx
            .wallets()?
            .into_iter()
            .map(|w| (w.consumer, w.service.to_string(), w.confirmed.minor(), w.provisional.minor()))
            .collect();
        let recomputed = tx.recomputed_wallets()?;
        report.wallets = kept.len() as u64;
        if self.me.ctx.is_device() {
            // A device's confirmed balances come from the hub's checkpoints
            // where it has them; what it adds on top is its own operations
            // awaiting the hub, and that it can recompute.
            let recomputed: BTreeMap<(ConsumerId, String), (i64, i64)> = recomputed
                .into_iter()
                .map(|(c, s, confirmed, provisional)| ((c, s), (confirmed, provisional)))
                .collect();
            for (consumer, service, confirmed, provisional) in &kept {
                let (c, p) = recomputed.get(&(*consumer, service.clone())).copied().unwrap_or((0, 0));
                let service_id = ServiceId::parse(service).map_err(|e| NodeError::Refused(e.to_string()))?;
                let checkpointed = tx.checkpoint(consumer, &service_id)?.is_some();
                if provisional - confirmed != p - c || (!checkpointed && *confirmed != c) {
                    problems.push(format!(
                        "the balance of {consumer:?}/{service} differs from a recomputation over the log"
                    ));
                }
            }
        } else if kept != recomputed {
            problems.push(format!(
                "derived balances differ from a recomputation over the log ({} wallets kept, {} recomputed)",
                kept.len(),
                recomputed.len()
            ));
        }
        let (credits, debits) = tx.counted_credits_and_debits()?;
        let sum = tx.wallet_balance_sum()?;
        if !self.me.ctx.is_device() && sum != credits - debits {
            problems.push(format!(
                "the sum of balances ({sum} cents) is not credits minus debits ({} cents)",
                credits - debits
            ));
        }
        report.problems = problems;
        Ok(report)
    }
    /// A fingerprint of everything a node derives from the log: balances,
    /// verdicts, frozen and revoked devices, directory. Equal sets of
    /// operations give equal fingerprints.
    pub fn state_digest(&mut self) -> Result<Vec<String>> {
        let tx = self.store.read()?;
        let mut out = Vec::new();
        for w in tx.wallets()? {
            out.push(format!("wallet {} {} {}", w.consumer.to_hex(), w.service, w.confirmed));
        }
        for (target, verdict, reason) in tx.all_verdicts()? {
            out.push(format!("verdict {} {verdict} {}", target.to_hex(), reason.unwrap_or_default()));
        }
        for author in tx.authors()? {
            out.push(format!(
                "author {} {:?} revoked={:?} frozen={}",
                author.author.to_hex(),
                author.role,
                author.revoked_after,
                author.frozen_at.is_some()
            ));
        }
        out.extend(tx.directory_digest()?);
        Ok(out)
    }
}
