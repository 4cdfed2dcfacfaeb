//! What the hub's office sees, read from the store as `saldo-api` types:
//! families with their payer and contacts, services, cash points with their
//! limits and last contact, and the operations awaiting review.

use saldo_api::cash_points::{CashPoint, CashPointList, DeviceRole, Limits, Revocation};
use saldo_api::directory::{Family, FamilyList, FamilySummary, Payer, ServiceList, ServiceView};
use saldo_api::review::{FlagReasonApi, FlaggedList, FlaggedOperation, WalletBelowFloor};
use saldo_api::search::Query;
use saldo_sync::{Balance, CodiceFiscale, FamilyId, FlagReason, Label, Role};

use super::api_views::{consumer_summary, person_name};
use super::record::wallets_below_floor_if_accepted;
use super::{Node, NodeError, Result};
use crate::store::FamilyRow;

/// Most operations awaiting review listed at once (the oldest first).
pub const FLAGGED_LISTED_MAX: u32 = 1_000;

/// A stored value that no longer parses is a damaged database, not bad input.
fn damaged(what: &str, value: &str) -> NodeError {
    NodeError::Refused(format!("the directory holds a {what} that does not parse ({value:?}): run `saldo log verify`"))
}

fn family_summary(row: &FamilyRow) -> Result<FamilySummary> {
    Ok(FamilySummary {
        id: row.family,
        payer_surname: person_name(&row.payer_surname, "payer surname")?,
        payer_name: person_name(&row.payer_name, "payer name")?,
        consumers: row.consumers,
    })
}

impl Node {
    /// A page of the realm's families in payer surname order or, with a
    /// search, the families of the children it finds.
    pub fn family_list(&mut self, query: Option<&Query>, limit: u32, offset: u64) -> Result<FamilyList> {
        let tx = self.store.read()?;
        let total = tx.family_count()?;
        let rows = match query {
            None => tx.families_page(limit, offset)?,
            Some(query) => {
                let consumers = match query {
                    Query::Pan(pan) => tx.consumer_by_pan(pan)?.into_iter().collect(),
                    Query::FiscalCode(code) => tx.consumers_by_fiscal_code(code.as_str())?,
                    Query::NamePrefix(prefix) => {
                        tx.consumers_by_key_prefix(prefix, limit.saturating_mul(4).min(2_000))?
                    }
                };
                let mut rows: Vec<FamilyRow> = Vec::new();
                for consumer in consumers {
                    if rows.len() >= limit as usize {
                        break;
                    }
                    if rows.iter().any(|f| f.family == consumer.family) {
                        continue;
                    }
                    if let Some(row) = tx.family(&consumer.family)? {
                        rows.push(row);
                    }
                }
                rows
            }
        };
        let families = rows.iter().map(family_summary).collect::<Result<_>>()?;
        Ok(FamilyList { families, total })
    }

    /// One family: its payer (with contacts, which only the hub holds) and
    /// its children with their balances; `None` when the directory has no such family.
    pub fn family_detail(&mut self, family: &FamilyId) -> Result<Option<Family>> {
        let tx = self.store.read()?;
        let Some(row) = tx.family(family)? else { return Ok(None) };
        let (email, phone) = tx.contacts(family)?.unwrap_or_default();
        let label = |value: Option<String>| value.and_then(|v| Label::parse(&v).ok());
        let payer = Payer {
            surname: person_name(&row.payer_surname, "payer surname")?,
            name: person_name(&row.payer_name, "payer name")?,
            fiscal_code: CodiceFiscale::parse(&row.payer_fiscal_code)
                .map_err(|_| damaged("codice fiscale", &row.payer_fiscal_code))?,
            email: label(email),
            phone: label(phone),
        };
        let consumers = tx
            .consumers_of_family(family)?
            .into_iter()
            .map(|consumer| consumer_summary(&tx, consumer))
            .collect::<Result<_>>()?;
        Ok(Some(Family { id: *family, payer, consumers }))
    }

    /// The realm's services with their tariffs and floors.
    pub fn service_list(&mut self) -> Result<ServiceList> {
        let services = self
            .store
            .read()?
            .services()?
            .into_iter()
            .map(|s| ServiceView { id: s.id, name: s.name, tariff: s.tariff, floor: s.floor, reminders: s.reminders })
            .collect();
        Ok(ServiceList { services })
    }

    /// The enrolled cash points and school devices: limits, revocation,
    /// when the hub last heard from each, what awaits its verdict.
    pub fn cash_point_list(&mut self) -> Result<CashPointList> {
        let tx = self.store.read()?;
        let mut cash_points = Vec::new();
        for author in tx.authors()? {
            let role = match author.role {
                Role::CashPoint => DeviceRole::CashPoint,
                Role::SchoolDevice => DeviceRole::SchoolDevice,
                _ => continue,
            };
            let Some(limits) = author.limits else { continue };
            let last_seen_ms =
                if author.head_seq.0 == 0 { None } else { tx.op_wall_ms(&author.author, author.head_seq)? };
            let (unconfirmed_operations, _) = tx.unconfirmed_of(&author.author)?;
            cash_points.push(CashPoint {
                device: author.author,
                name: author.name,
                role,
                limits: Limits::from(limits),
                revoked: author.revoked_after.map(|seq| Revocation { last_seq_seen: seq.0 }),
                last_seen_ms,
                unconfirmed_operations,
            });
        }
        cash_points.sort_by(|a, b| a.name.to_lowercase().cmp(&b.name.to_lowercase()).then(a.device.cmp(&b.device)));
        Ok(CashPointList { cash_points })
    }

    /// The operations awaiting review, oldest first, each with the wallets
    /// accepting it would take below their floors.
    pub fn flagged_list(&mut self) -> Result<FlaggedList> {
        let tx = self.store.read()?;
        let mut operations = Vec::new();
        for row in tx.flagged(FLAGGED_LISTED_MAX)? {
            let op = tx.money_op(&row.op)?.ok_or_else(|| NodeError::UnknownOperation(row.op.to_hex()))?;
            let reason = FlagReason::from_code(&row.reason).ok_or_else(|| damaged("flag reason", &row.reason))?;
            let below = wallets_below_floor_if_accepted(&tx, &op)?
                .into_iter()
                .map(|w| WalletBelowFloor {
                    consumer: w.consumer_id,
                    consumer_name: w.consumer,
                    service: w.service,
                    after: w.after,
                    reserved: w.reserved,
                    floor: w.floor,
                    short: w.short,
                })
                .collect();
            operations.push(FlaggedOperation {
                operation: row.op,
                author: row.author,
                author_name: tx.author(&row.author)?.map(|a| a.name).filter(|n| !n.is_empty()),
                kind: row.kind,
                receipt: op.receipt,
                amount: Balance::from_minor(row.total_minor)
                    .ok_or_else(|| damaged("total", &row.total_minor.to_string()))?,
                reason: FlagReasonApi::from(reason),
                detail: row.detail,
                recorded_at_ms: op.hlc >> 16,
                below_floor_if_accepted: below,
            });
        }
        Ok(FlaggedList { operations })
    }

    /// Whether the directory enrols the wallet's consumer in its service.
    pub fn has_wallet(&mut self, wallet: &saldo_sync::WalletKey) -> Result<bool> {
        Ok(self.store.read()?.is_enrolled(&wallet.consumer, &wallet.service)?)
    }

    /// A bundle for `device` (enrolled here): what a sync session would send it.
    pub fn export_bundle_for_device(&mut self, device: saldo_sync::AuthorId) -> Result<(Vec<u8>, usize)> {
        self.me.hub_key("export bundles for devices")?;
        if self.store.read()?.author(&device)?.is_none() {
            return Err(NodeError::UnknownDevice(device.to_hex()));
        }
        self.export_bundle_for(device)
    }
}
