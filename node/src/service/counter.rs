//! What a counter does: find a child, show the family's wallets, record a
//! top-up on one receipt (retried safely with an idempotency key), show
//! and verify receipts.

use saldo_api::consumers::{ConsumerDetail, SearchParams, SearchResults};
use saldo_sync::ConsumerId;

use super::{Result, Service, ServiceError};

impl Service {
    /// Consumers matching what an operator typed in the search box.
    pub async fn search(&self, params: SearchParams) -> Result<SearchResults> {
        let query = params.validate().map_err(ServiceError::from)?;
        let limit = params.limit_or_default();
        self.read(move |node| Ok(node.search_consumers(&query, limit)?)).await
    }

    /// One consumer with wallets, last movements and siblings.
    pub async fn consumer(&self, consumer: ConsumerId) -> Result<ConsumerDetail> {
        self.read(move |node| Ok(node.consumer_detail(&consumer)?)).await
    }
}

use saldo_api::payments::TopUpRequest;
use saldo_api::receipt::{Receipt, Verification};
use saldo_sync::{Label, OpId};

use super::Operator;
use crate::node::{Node, Once, TopUpCall};

impl Service {
    /// Records a top-up of one or more wallets of one family on one receipt.
    /// With an idempotency key, a retried request returns the first one's
    /// receipt and records nothing new.
    ///
    /// Top-ups asked for while the writer is busy are recorded together in
    /// one transaction (one sync of the disk for all the counters waiting),
    /// each checked on its own: one refused leaves the others recorded.
    pub async fn top_up(&self, operator: &Operator, request: TopUpRequest, key: Option<String>) -> Result<Receipt> {
        let name = Label::parse_as(&operator.name, "operator")
            .map_err(|e| ServiceError::invalid("operator", e.to_string()))?;
        let once = key.map(|key| Once { scope: operator.login.to_string(), key });
        self.record_top_up(TopUpCall { request, operator: Some(name), once }).await
    }

    /// Records a top-up as [`Service::top_up`] does, for a front end
    /// without logins (the command line): the operator's name as given,
    /// if any, and no idempotency key (each call is a new payment).
    pub async fn top_up_by(&self, operator_name: Option<Label>, request: TopUpRequest) -> Result<Receipt> {
        self.record_top_up(TopUpCall { request, operator: operator_name, once: None }).await
    }

    async fn record_top_up(&self, call: TopUpCall) -> Result<Receipt> {
        let (answer, receive) = tokio::sync::oneshot::channel();
        let schedule = {
            let mut pending = self.inner.top_ups.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            pending.calls.push((call, answer));
            !std::mem::replace(&mut pending.scheduled, true)
        };
        if schedule {
            let inner = self.inner.clone();
            self.inner.node.queue_urgent(move |node| record_pending(node, &inner));
        }
        let op =
            receive.await.map_err(|_| ServiceError::internal("the node stopped before recording the top-up"))??;
        // Committed: the receipt is read on a connection of its own, so the
        // writer goes on to the next counter's top-up meanwhile.
        self.receipt(op).await
    }

    /// The receipt of a top-up held here.
    pub async fn receipt(&self, op: OpId) -> Result<Receipt> {
        let base = self.verify_base();
        self.read(move |node| Ok(node.receipt(&op, &base)?)).await
    }

    /// The public verification of a receipt's code.
    pub async fn verify(&self, code: String) -> Result<Verification> {
        self.read(move |node| Ok(node.verification(&code)?)).await
    }
}

/// Most top-ups recorded in one transaction.
const TOP_UPS_PER_TRANSACTION_MAX: usize = 64;

/// Top-ups waiting for the writer, and whether a job to record them is queued.
#[derive(Debug, Default)]
pub(super) struct PendingTopUps {
    calls: Vec<(TopUpCall, tokio::sync::oneshot::Sender<Result<OpId>>)>,
    scheduled: bool,
}

/// On the writer: records every top-up waiting, in transactions of at most
/// [`TOP_UPS_PER_TRANSACTION_MAX`], and answers each caller.
fn record_pending(node: &mut Node, inner: &super::Inner) {
    let waiting = {
        let mut pending = inner.top_ups.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        pending.scheduled = false;
        std::mem::take(&mut pending.calls)
    };
    let mut waiting = waiting.into_iter().peekable();
    while waiting.peek().is_some() {
        let (calls, answers): (Vec<TopUpCall>, Vec<_>) = waiting.by_ref().take(TOP_UPS_PER_TRANSACTION_MAX).unzip();
        match node.record_top_ups(&calls) {
            Ok(recorded) => {
                for (answer, op) in answers.into_iter().zip(recorded) {
                    // A caller that went away (a closed connection) is no error.
                    let _ = answer.send(op.map_err(ServiceError::from));
                }
            }
            Err(e) => {
                let error = ServiceError::from(e);
                for answer in answers {
                    let _ = answer.send(Err(error.clone()));
                }
            }
        }
    }
}
