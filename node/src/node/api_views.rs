//! What the API shows of consumers and wallets, read from the store as
//! `saldo-api` types: the one shape the HTTP API, the CLI's `--json` and
//! the mobile shim give out.

use saldo_api::consumers::{
    ConsumerDetail, ConsumerRef, ConsumerSummary, Movement, MovementKind, MovementStatus, SearchResults, WalletDetail,
    WalletSummary,
};
use saldo_api::payments::PaymentMethodApi;
use saldo_api::search::Query;
use saldo_sync::{Balance, CodiceFiscale, ConsumerId, Label, Pan, PersonName, ReceiptNo};

use super::{MOVEMENTS_SHOWN, Node, NodeError, Result};
use crate::store::{ConsumerRow, MovementRow, Tx};

impl Node {
    /// Consumers matching what an operator typed, with their balances.
    pub fn search_consumers(&mut self, query: &Query, limit: u32) -> Result<SearchResults> {
        let tx = self.store.read()?;
        let mut rows = match query {
            Query::Pan(pan) => tx.consumer_by_pan(pan)?.into_iter().collect(),
            Query::FiscalCode(code) => tx.consumers_by_fiscal_code(code.as_str())?,
            Query::NamePrefix(prefix) => tx.consumers_by_key_prefix(prefix, limit + 1)?,
        };
        let truncated = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let consumers = rows.into_iter().map(|row| consumer_summary(&tx, row)).collect::<Result<_>>()?;
        Ok(SearchResults { consumers, truncated })
    }

    /// One consumer: wallets with confirmed and provisional balances, the
    /// last movements of each, and the family's other children.
    pub fn consumer_detail(&mut self, consumer: &ConsumerId) -> Result<ConsumerDetail> {
        let tx = self.store.read()?;
        let row = tx.consumer(consumer)?.ok_or_else(|| NodeError::UnknownConsumer(consumer.to_hex()))?;
        let family = row.family;
        let summary = consumer_summary(&tx, row)?;
        let siblings = tx
            .consumers_of_family(&family)?
            .into_iter()
            .filter(|c| c.consumer != *consumer)
            .map(|c| consumer_ref(&c))
            .collect::<Result<_>>()?;
        let mut wallets = Vec::new();
        for service in tx.consumer_services(consumer)? {
            let wallet = tx.wallet(consumer, &service)?;
            let record = tx.service(&service)?;
            let movements =
                tx.movements(consumer, &service, MOVEMENTS_SHOWN)?.into_iter().filter_map(movement).collect();
            wallets.push(WalletDetail {
                service_name: record.as_ref().map_or_else(|| service.to_string(), |r| r.name.to_string()),
                floor: record.as_ref().map_or(Balance::ZERO, |r| r.floor),
                tariff: record.and_then(|r| r.tariff),
                service,
                confirmed: wallet.confirmed,
                provisional: wallet.provisional,
                movements,
            });
        }
        Ok(ConsumerDetail { summary, siblings, wallets })
    }
}

/// A stored value that no longer parses is a damaged database, not bad input.
fn damaged(what: &str, value: &str) -> NodeError {
    NodeError::Refused(format!("the directory holds a {what} that does not parse ({value:?}): run `saldo log verify`"))
}

pub(crate) fn person_name(value: &str, what: &str) -> Result<PersonName> {
    PersonName::parse(value).map_err(|_| damaged(what, value))
}

fn consumer_ref(row: &ConsumerRow) -> Result<ConsumerRef> {
    Ok(ConsumerRef {
        consumer: row.consumer,
        surname: person_name(&row.surname, "surname")?,
        name: person_name(&row.name, "name")?,
        pan_masked: Pan::parse(&row.pan).map(|p| p.masked()).unwrap_or_default(),
    })
}

pub(crate) fn consumer_summary(tx: &Tx<'_>, row: ConsumerRow) -> Result<ConsumerSummary> {
    let mut wallets = Vec::new();
    for service in tx.consumer_services(&row.consumer)? {
        let wallet = tx.wallet(&row.consumer, &service)?;
        wallets.push(WalletSummary { service, confirmed: wallet.confirmed, provisional: wallet.provisional });
    }
    let pan = Pan::parse(&row.pan).map_err(|_| damaged("PAN", &row.pan))?;
    let label = |value: Option<String>| value.and_then(|v| Label::parse(&v).ok());
    Ok(ConsumerSummary {
        consumer: row.consumer,
        surname: person_name(&row.surname, "surname")?,
        name: person_name(&row.name, "name")?,
        pan_masked: pan.masked(),
        pan,
        fiscal_code: CodiceFiscale::parse(&row.fiscal_code).map_err(|_| damaged("codice fiscale", &row.fiscal_code))?,
        family: row.family,
        school: label(row.school),
        class: label(row.class),
        wallets,
    })
}

/// A movement as the API shows it (`None` for kinds that move no wallet).
pub(crate) fn movement(row: MovementRow) -> Option<Movement> {
    let status = if row.counts {
        MovementStatus::Accepted
    } else if row.counts_provisional {
        MovementStatus::Provisional
    } else {
        match row.verdict.as_deref() {
            Some("flagged") => MovementStatus::Flagged,
            Some("review-rejected") => MovementStatus::Rejected,
            Some(_) => MovementStatus::Reversed,
            None => MovementStatus::Pending,
        }
    };
    Some(Movement {
        operation: row.op,
        kind: MovementKind::from_op_kind_name(&row.kind)?,
        receipt: row.receipt.map(ReceiptNo),
        method: row.method.as_deref().and_then(PaymentMethodApi::from_name),
        recorded_at_ms: row.hlc >> 16,
        amount: Balance::from_minor(row.delta_minor).unwrap_or(Balance::ZERO),
        status,
        reason: row.reason,
    })
}
