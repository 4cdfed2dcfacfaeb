//! Operations the hub flagged, and their review (hub).

use saldo_api::review::{FlaggedList, ReviewOutcome, ReviewRequest};
use saldo_sync::{Label, OpId};

use super::{Result, Service};

/// Most flagged operations one list shows.
pub const FLAGGED_SHOWN_MAX: u32 = 1_000;

impl Service {
    /// Operations awaiting review, oldest first (at most [`FLAGGED_SHOWN_MAX`]).
    pub async fn flagged(&self) -> Result<FlaggedList> {
        self.read(|node| Ok(node.flagged_operations(FLAGGED_SHOWN_MAX)?)).await
    }

    /// Accepts or rejects a flagged operation, signed by the hub and named
    /// after the operator who decided.
    pub async fn review(&self, operation: OpId, request: ReviewRequest, operator: Label) -> Result<ReviewOutcome> {
        self.write(move |node| Ok(node.review_request(&operation, &request, &operator)?)).await
    }
}
