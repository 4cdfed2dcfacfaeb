//! Queries: search, balances, wallets, flagged operations, services, allowances, counts.

use super::views::{BalanceView, ConsumerView, TopUpRequestLine, WalletView, consumer_view, movement_view};
use super::{MOVEMENTS_SHOWN, Node, NodeError, Result};
use crate::directory::ServiceRecord;
use crate::search;
use crate::search::Query;
use crate::store::{ConsumerRow, FlaggedRow, WalletRow};
use saldo_sync::{Amount, Balance, ConsumerId, Pan, Role, ServiceId, WalletKey};

impl Node {
    /// This node's operations on money awaiting the hub's verdict: how many,
    /// and their total. None on the hub: its own operations need no verdict.
    pub fn unconfirmed(&mut self) -> Result<(u64, Balance)> {
        let Some(me) = self.me.ctx.own.filter(|_| !self.is_hub()) else {
            return Ok((0, Balance::ZERO));
        };
        let (count, total) = self.store.read()?.unconfirmed_of(&me)?;
        let total =
            Balance::from_minor(total).ok_or_else(|| NodeError::Refused(format!("a total of {total} cents")))?;
        Ok((count, total))
    }
    /// This node's role in the realm, once it knows its enrolment.
    pub fn role(&mut self) -> Result<Option<Role>> {
        let Some(me) = self.me.ctx.own else { return Ok(None) };
        Ok(self.store.read()?.author(&me)?.map(|a| a.role))
    }
    pub fn services(&mut self) -> Result<Vec<ServiceRecord>> {
        let tx = self.store.read()?;
        Ok(tx.services()?)
    }
    pub fn flagged(&mut self, limit: u32) -> Result<Vec<FlaggedRow>> {
        let tx = self.store.read()?;
        Ok(tx.flagged(limit)?)
    }
    // ---- money --------------------------------------------------------------

    /// Finds the wallet a top-up goes to: the consumer by PAN, the service
    /// named or, when the consumer has one wallet, that one.
    pub fn resolve_wallet(&mut self, pan: &Pan, service: Option<&ServiceId>) -> Result<(ConsumerRow, ServiceId)> {
        let tx = self.store.read()?;
        let consumer = tx.consumer_by_pan(pan)?.ok_or_else(|| NodeError::UnknownPan(pan.to_string()))?;
        let services = tx.consumer_services(&consumer.consumer)?;
        let who = format!("{} {}", consumer.name, consumer.surname);
        let list = || services.iter().map(ServiceId::as_str).collect::<Vec<_>>().join(", ");
        let service = match service {
            Some(s) if services.contains(s) => s.clone(),
            Some(s) => {
                return Err(NodeError::NotEnrolled { consumer: who, service: s.to_string(), enrolled: list() });
            }
            None => match services.as_slice() {
                [only] => only.clone(),
                [] => return Err(NodeError::NoWallet(who)),
                _ => {
                    return Err(NodeError::ServiceNeeded { consumer: who, services: list() });
                }
            },
        };
        Ok((consumer, service))
    }
    /// This device's allowances for charges: per wallet, what it may still charge.
    pub fn allowances(&mut self) -> Result<Vec<(WalletKey, Balance)>> {
        let me = self.me.ctx.own.ok_or(NodeError::NoKey)?;
        let tx = self.store.read()?;
        let mut out = Vec::new();
        for (consumer, service) in tx.escrow_wallets(&me)? {
            let (granted, used) = tx.escrow_of(&me, &consumer, &service)?;
            let left = Balance::from_minor((granted - used).max(0)).unwrap_or(Balance::ZERO);
            out.push((WalletKey { consumer, service }, left));
        }
        Ok(out)
    }
    // ---- queries ------------------------------------------------------------

    pub fn search(&mut self, text: &str, limit: u32) -> Result<Vec<ConsumerView>> {
        let query = search::parse_query(text)?;
        let limit = limit.min(search::SEARCH_RESULTS_MAX);
        let tx = self.store.read()?;
        let rows = match query {
            Query::Pan(pan) => tx.consumer_by_pan(&pan)?.into_iter().collect(),
            Query::FiscalCode(code) => tx.consumers_by_fiscal_code(code.as_str())?,
            Query::NamePrefix(prefix) => tx.consumers_by_key_prefix(&prefix, limit)?,
        };
        rows.into_iter().take(limit as usize).map(|row| consumer_view(&tx, row)).collect()
    }
    /// A consumer's wallets with their balances and last movements.
    pub fn balance(&mut self, pan: &Pan) -> Result<BalanceView> {
        let tx = self.store.read()?;
        let row = tx.consumer_by_pan(pan)?.ok_or_else(|| NodeError::UnknownPan(pan.to_string()))?;
        let consumer = row.consumer;
        let view = consumer_view(&tx, row)?;
        let mut wallets = Vec::new();
        for service in tx.consumer_services(&consumer)? {
            let WalletRow { confirmed, provisional, .. } = tx.wallet(&consumer, &service)?;
            let movements =
                tx.movements(&consumer, &service, MOVEMENTS_SHOWN)?.into_iter().map(movement_view).collect();
            wallets.push(WalletView { service: service.to_string(), confirmed, provisional, movements });
        }
        Ok(BalanceView { consumer: view, wallets })
    }
    /// The wallet balances (confirmed, provisional) of one wallet.
    pub fn wallet(&mut self, consumer: &ConsumerId, service: &ServiceId) -> Result<WalletRow> {
        let tx = self.store.read()?;
        Ok(tx.wallet(consumer, service)?)
    }
    /// Every operation held (chain and evidence), in author and chain order:
    /// what a bundle of everything carries.
    pub fn all_operations(&mut self) -> Result<Vec<Vec<u8>>> {
        let tx = self.store.read()?;
        let mut out = Vec::new();
        tx.for_each_op(|_, bytes| {
            out.push(bytes);
            Ok(())
        })?
        .map_err(NodeError::Refused)?;
        Ok(out)
    }
    /// A top-up line for a PAN and an optional service, with the amount parsed.
    pub fn top_up_line(&mut self, pan: &Pan, service: Option<&ServiceId>, amount: Amount) -> Result<TopUpRequestLine> {
        let (consumer, service) = self.resolve_wallet(pan, service)?;
        Ok(TopUpRequestLine { consumer: consumer.consumer, service, amount })
    }
    /// How many consumers and families the directory holds.
    pub fn directory_counts(&mut self) -> Result<(u64, u64)> {
        let tx = self.store.read()?;
        Ok((tx.consumer_count()?, tx.family_count()?))
    }
}
