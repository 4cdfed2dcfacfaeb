//! The directory as a front end changes it: services (tariffs, floors),
//! the families' CSV import, and a consumer found by PAN.

use saldo_api::consumers::{ConsumerSummary, SearchParams};
use saldo_api::directory::{ImportReport, RefusedRow, ServiceList, ServiceUpdate, ServiceView};
use saldo_sync::Pan;

use super::{Result, Service, ServiceError};
use crate::directory::ServiceRecord;
use crate::import::ImportError;
use crate::node::NodeError;

fn service_view(record: ServiceRecord) -> ServiceView {
    ServiceView { id: record.id, name: record.name, tariff: record.tariff, floor: record.floor }
}

fn import_error(error: ImportError) -> ServiceError {
    match error {
        ImportError::Node(error) => ServiceError::from(*error),
        // What was written stays written: the message says so, and why it stopped.
        error @ ImportError::Stopped { .. } => ServiceError::internal(error.to_string()),
        error => ServiceError::invalid("file", error.to_string()),
    }
}

impl Service {
    /// The consumer whose card carries `pan`.
    pub async fn consumer_by_pan(&self, pan: &Pan) -> Result<ConsumerSummary> {
        let found = self.search(SearchParams { q: pan.to_string(), limit: Some(1) }).await?;
        found.consumers.into_iter().next().ok_or_else(|| ServiceError::from(NodeError::UnknownPan(pan.to_string())))
    }

    /// Every service with its tariff and floor.
    pub async fn services(&self) -> Result<ServiceList> {
        self.read(|node| Ok(ServiceList { services: node.services()?.into_iter().map(service_view).collect() })).await
    }

    /// Creates the service named, or changes its floor or tariff (hub).
    pub async fn set_service(&self, update: ServiceUpdate) -> Result<ServiceView> {
        update.validate()?;
        let tariff = match (update.tariff, update.remove_tariff) {
            (Some(tariff), _) => Some(Some(tariff)),
            (None, true) => Some(None),
            (None, false) => None,
        };
        self.write(move |node| Ok(service_view(node.set_service(&update.name, update.floor, tariff)?))).await
    }

    /// Imports families from CSV bytes, as bulk work (a top-up at the
    /// counter goes first); `progress` hears (families done, families in all).
    pub async fn import_families(
        &self,
        csv: Vec<u8>,
        progress: impl Fn(u64, u64) + Send + 'static,
    ) -> Result<ImportReport> {
        let report = self
            .node()
            .call(move |node| crate::import::import_csv(node, csv.as_slice(), &progress))
            .await
            .map_err(import_error)?;
        Ok(ImportReport {
            rows: report.rows,
            accepted_rows: report.accepted_rows,
            families: report.families,
            // One row is one consumer.
            consumers: report.accepted_rows,
            directory_operations: report.directory_operations,
            services_created: report.services_created,
            refused: report
                .rejected
                .into_iter()
                .map(|r| RefusedRow { line: r.line, field: None, message: r.reason })
                .collect(),
        })
    }
}
