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
use crate::node::Once;

impl Service {
    /// Records a top-up of one or more wallets of one family on one receipt.
    /// With an idempotency key, a retried request returns the first one's
    /// receipt and records nothing new.
    pub async fn top_up(&self, operator: &Operator, request: TopUpRequest, key: Option<String>) -> Result<Receipt> {
        let name = Label::parse_as(&operator.name, "operator")
            .map_err(|e| ServiceError::invalid("operator", e.to_string()))?;
        let once = key.map(|key| Once { scope: operator.login.to_string(), key });
        self.record_top_up(request, Some(name), once).await
    }

    /// Records a top-up as [`Service::top_up`] does, for a front end
    /// without logins (the command line): the operator's name as given,
    /// if any, and no idempotency key (each call is a new payment).
    pub async fn top_up_by(&self, operator_name: Option<Label>, request: TopUpRequest) -> Result<Receipt> {
        self.record_top_up(request, operator_name, None).await
    }

    async fn record_top_up(&self, request: TopUpRequest, name: Option<Label>, once: Option<Once>) -> Result<Receipt> {
        let base = self.verify_base();
        self.write(move |node| Ok(node.record_top_up_request(&request, name.as_ref(), once.as_ref(), &base)?)).await
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
