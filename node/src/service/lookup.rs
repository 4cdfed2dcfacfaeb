//! Look-ups a front end without a search box needs: a consumer by the PAN
//! on their card, and where the hub listened (what a token carries).

use saldo_api::consumers::{ConsumerSummary, SearchParams};
use saldo_sync::Pan;

use super::{Result, Service, ServiceError};
use crate::node::NodeError;

impl Service {
    /// The consumer whose card carries `pan` (found by the search).
    pub async fn consumer_by_pan(&self, pan: &Pan) -> Result<ConsumerSummary> {
        let found = self.search(SearchParams { q: pan.to_string(), limit: Some(1) }).await?;
        found.consumers.into_iter().next().ok_or_else(|| ServiceError::from(NodeError::UnknownPan(pan.to_string())))
    }

    /// The addresses this node listened on when it last ran (what an
    /// enrolment token carries of the hub).
    pub async fn listen_addresses(&self) -> Result<Vec<String>> {
        self.read(|node| Ok(node.addresses(crate::node::META_LISTEN)?)).await
    }
}
