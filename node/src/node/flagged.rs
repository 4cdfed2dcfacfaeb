//! Flagged operations and their review as `saldo-api` types: what the CLI's
//! `review` commands and the HTTP API show alike.

use saldo_api::consumers::MovementKind;
use saldo_api::review::{FlagReasonApi, FlaggedList, FlaggedOperation, ReviewOutcome, ReviewRequest};
use saldo_sync::{Balance, FlagReason, Label, OpId};

use super::record::{WalletBelowFloor, wallets_below_floor_if_accepted};
use super::{Node, NodeError, Result};

/// The API's form of a wallet that accepting takes below its floor.
pub(crate) fn below_floor_api(below: &WalletBelowFloor) -> saldo_api::review::WalletBelowFloor {
    saldo_api::review::WalletBelowFloor {
        consumer: below.consumer_id,
        consumer_name: below.consumer.clone(),
        service: below.service.clone(),
        after: below.after,
        reserved: below.reserved,
        floor: below.floor,
        short: below.short,
    }
}

impl Node {
    /// Operations awaiting review (at most `limit`), each with what accepting
    /// it would take below a floor.
    pub fn flagged_operations(&mut self, limit: u32) -> Result<FlaggedList> {
        let tx = self.store.read()?;
        let mut operations = Vec::new();
        for row in tx.flagged(limit)? {
            let stored = |what: &str| NodeError::Refused(format!("flagged operation {}: {what}", row.op.to_hex()));
            let money = tx.money_op(&row.op)?.ok_or_else(|| NodeError::UnknownOperation(row.op.to_hex()))?;
            let kind = MovementKind::from_op_kind_name(&row.kind)
                .ok_or_else(|| stored(&format!("a {} is not an operation on money", row.kind)))?;
            let reason = FlagReason::from_code(&row.reason)
                .ok_or_else(|| stored(&format!("the reason {:?} is unknown to this saldo", row.reason)))?;
            let below = wallets_below_floor_if_accepted(&tx, &money)?;
            operations.push(FlaggedOperation {
                operation: row.op,
                author: row.author,
                author_name: tx.author(&row.author)?.map(|a| a.name).filter(|n| !n.is_empty()),
                kind,
                receipt: money.receipt,
                amount: Balance::from_minor(row.total_minor).ok_or_else(|| stored("its total is out of range"))?,
                reason: FlagReasonApi::from(reason),
                detail: row.detail,
                recorded_at_ms: money.hlc >> 16,
                below_floor_if_accepted: below.iter().map(below_floor_api).collect(),
            });
        }
        Ok(FlaggedList { operations })
    }

    /// Records a hub operator's review of `target`: accepting what takes a
    /// wallet below its floor is refused unless the request confirms it.
    pub fn review_request(
        &mut self,
        target: &OpId,
        request: &ReviewRequest,
        operator: &Label,
    ) -> Result<ReviewOutcome> {
        request
            .validate()
            .map_err(|e| NodeError::InvalidField { field: e.field.unwrap_or_default(), message: e.message })?;
        let note = match &request.note {
            Some(note) => note.clone(),
            None => Label::parse("accepted in review").expect("a valid label"),
        };
        let (decision, below) =
            self.review_checked(target, request.accept, operator, &note, request.confirm_below_floor)?;
        Ok(ReviewOutcome {
            operation: *target,
            accepted: request.accept,
            decision: decision.id,
            below_floor: below.iter().map(below_floor_api).collect(),
        })
    }
}
