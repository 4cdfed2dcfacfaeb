//! Recording: operations this node authors (top-ups, charges, enrolments, escrow, limits, revocations,
//! reviews, directory edits), and how `Me` signs and commits them.

use super::views::{Receipt, TopUpRequestLine};
use super::{HEARTBEAT_AFTER, META_LAST_HLC, Me, Node, NodeError, PendingDecisions, Result};
use crate::directory::{ContactRecord, FamilyRecord, ServiceRecord};
use crate::state::Applied;
use crate::store::Tx;
use crate::{directory, ledger, state};
use saldo_sync::{
    Amount, AuthorId, Balance, Body, Decision, DeviceKey, DocId, Hlc, Label, OfflineLimits, OpId, Operation,
    PaymentMethod, Role, Seq, ServiceId, SignedOp, TopUp, TopUpLine, Verdict, WalletBalance, WalletKey,
};

/// The proof [`crate::store::Tx::commit`] takes that the hub's checkpoints
/// of the balances a transaction changed are signed. Only [`Me::commit`]
/// makes one (its field is private to this module), after signing them:
/// every commit goes through it.
#[derive(Debug)]
pub struct CheckpointsSigned {
    _only_me_commit_makes_it: (),
}

/// A wallet that accepting an operation in review takes below its floor,
/// named for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletBelowFloor {
    /// "Rossi Mario", or the consumer's id when the directory does not know them.
    pub consumer: String,
    pub consumer_id: saldo_sync::ConsumerId,
    pub service: ServiceId,
    pub after: Balance,
    /// What devices' allowances may still charge there on top.
    pub reserved: Balance,
    pub floor: Balance,
    pub short: Balance,
}

impl std::fmt::Display for WalletBelowFloor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}'s {} wallet to {} EUR, ", self.consumer, self.service, self.after)?;
        if self.reserved.minor() > 0 {
            write!(f, "and devices may still charge the {} EUR reserved for them there: ", self.reserved)?;
        }
        write!(f, "{} EUR below its floor of {} EUR", self.short, self.floor)
    }
}

/// The facts [`ledger::below_floor_if_accepted`] needs about `op`, gathered
/// from the store, and its answer named for the operator.
pub(crate) fn wallets_below_floor_if_accepted(
    tx: &Tx<'_>,
    op: &crate::store::MoneyOpRow,
) -> Result<Vec<WalletBelowFloor>> {
    let charge = op.kind == saldo_sync::OpKind::ServiceCharge.name();
    let mut lines = Vec::new();
    for (consumer, service, delta_minor) in tx.money_lines(op.row)? {
        let floor_minor = match tx.service(&service)? {
            Some(record) if charge => record.floor.minor(),
            _ => 0,
        };
        let confirmed_minor = tx.wallet(&consumer, &service)?.confirmed.minor();
        // Once it counts, a device's charge uses up its own allowance.
        let mut reserved_minor = tx.escrow_outstanding(&consumer, &service)?;
        if charge {
            let (granted, used) = tx.escrow_of(&op.author, &consumer, &service)?;
            reserved_minor -= (granted - used).max(0) - (granted - used + delta_minor).max(0);
        }
        lines.push(ledger::ReviewLine {
            wallet: WalletKey { consumer, service },
            confirmed_minor,
            floor_minor,
            delta_minor,
            reserved_minor,
        });
    }
    let mut out = Vec::new();
    for below in ledger::below_floor_if_accepted(&lines) {
        let consumer = match tx.consumer(&below.wallet.consumer)? {
            Some(row) => format!("{} {}", row.surname, row.name),
            None => format!("consumer {}", below.wallet.consumer.short()),
        };
        let balance = |minor| Balance::from_minor(minor).unwrap_or(Balance::ZERO);
        out.push(WalletBelowFloor {
            consumer,
            consumer_id: below.wallet.consumer,
            service: below.wallet.service.clone(),
            after: balance(below.after_minor),
            reserved: balance(below.reserved_minor),
            floor: balance(below.floor_minor),
            short: balance(below.short_minor()),
        });
    }
    Ok(out)
}

/// Refuses offline limits under which a device could record nothing: an
/// unconfirmed total or a time offline of zero. (A per-operation limit is an
/// [`Amount`], never zero.) Stopping a device is a revocation, said as one.
pub fn check_limits(limits: &OfflineLimits) -> Result<()> {
    if limits.unconfirmed_total.minor() <= 0 {
        return Err(NodeError::Refused(
            "the unconfirmed total must be above zero, like 5000: every operation awaits the hub for a moment, so with 0 the device could record nothing (to stop a device, revoke it)".into(),
        ));
    }
    if limits.offline_secs_max == 0 {
        return Err(NodeError::Refused(
            "the time offline must be at least 1 hour: with 0 the device could record nothing (to stop a device, revoke it)".into(),
        ));
    }
    Ok(())
}

impl Node {
    /// On the hub: writes a heartbeat when its log has been quiet for
    /// [`HEARTBEAT_AFTER`]. A device's contact with the hub is the newest
    /// operation of the hub it holds; this keeps that recent for a device in
    /// touch with a hub that has nothing else to say (nights, holidays), by
    /// sync or by a bundle the hub exports. Returns whether it wrote one.
    pub fn heartbeat_if_quiet(&mut self) -> Result<bool> {
        if !self.me.ctx.is_hub() || self.me.key.is_none() {
            return Ok(false);
        }
        let hub = self.me.ctx.realm.hub();
        let newest_ms = {
            let tx = self.store.read()?;
            let head = tx.author(&hub)?.map_or(Seq(0), |a| a.head_seq);
            tx.op_wall_ms(&hub, head)?.unwrap_or(0)
        };
        if self.me.clock.now_ms().saturating_sub(newest_ms) < HEARTBEAT_AFTER.as_millis() as u64 {
            return Ok(false);
        }
        self.record(Body::Heartbeat)?;
        Ok(true)
    }
    /// A write transaction together with the node's identity, for work that
    /// records many operations in one transaction (imports): it first lets
    /// every writer waiting for the database through (a top-up at the counter).
    pub fn write(&mut self) -> Result<(Tx<'_>, &Me)> {
        Ok((self.store.write_after_waiting_writers()?, &self.me))
    }
    /// Records an operation of this node in its own transaction.
    pub fn record(&mut self, body: Body) -> Result<SignedOp> {
        let key = self.me.key.as_ref().ok_or(NodeError::NoKey)?;
        let mut tx = self.store.write()?;
        let signed = self.me.author(&mut tx, key, body)?;
        self.me.commit(tx)?;
        Ok(signed)
    }
    // ---- directory ----------------------------------------------------------

    /// Writes a family's directory entry (and contacts) as the hub; returns
    /// how many directory operations it took (0 when nothing changed).
    pub fn put_family(&mut self, family: &FamilyRecord, contacts: &ContactRecord) -> Result<usize> {
        let mut tx = self.store.write()?;
        let written = self.me.put_family_in(&mut tx, family, contacts)?;
        self.me.commit(tx)?;
        Ok(written)
    }
    pub fn put_service(&mut self, service: &ServiceRecord) -> Result<bool> {
        let mut tx = self.store.write()?;
        let changed = self.me.put_service_in(&mut tx, service)?;
        self.me.commit(tx)?;
        Ok(changed)
    }
    /// Creates a service or changes its name, floor or tariff (hub only);
    /// `None` keeps what is there. Returns the service as it now is.
    pub fn set_service(
        &mut self,
        name: &Label,
        floor: Option<Balance>,
        tariff: Option<Option<Amount>>,
    ) -> Result<ServiceRecord> {
        self.set_service_reminding(name, floor, tariff, None)
    }
    /// [`Node::set_service`] with its reminder thresholds (charges left;
    /// `None` keeps them, an empty list removes them; they need a tariff).
    pub fn set_service_reminding(
        &mut self,
        name: &Label,
        floor: Option<Balance>,
        tariff: Option<Option<Amount>>,
        reminders: Option<Vec<i32>>,
    ) -> Result<ServiceRecord> {
        let id = ServiceId::from_name(name.as_str()).map_err(|e| NodeError::Refused(e.to_string()))?;
        if floor.is_some_and(|f| f.minor() > 0) {
            return Err(NodeError::Refused("a floor is zero or below zero, like -50.00".into()));
        }
        let mut tx = self.store.write()?;
        let current = tx.service(&id)?;
        let record = ServiceRecord {
            id,
            name: name.clone(),
            floor: floor.or(current.as_ref().map(|c| c.floor)).unwrap_or(Balance::ZERO),
            tariff: tariff.unwrap_or(current.as_ref().and_then(|c| c.tariff)),
            reminders: match reminders {
                Some(reminders) => directory::parse_reminders(&directory::reminders_text(&reminders))
                    .map_err(|message| NodeError::InvalidField { field: "reminders".into(), message })?,
                None => current.map(|c| c.reminders).unwrap_or_default(),
            },
        };
        if record.tariff.is_none() && !record.reminders.is_empty() {
            return Err(NodeError::InvalidField {
                field: "reminders".into(),
                message: "reminders count charges at the service's tariff: set a tariff (like 4.50) first".into(),
            });
        }
        self.me.put_service_in(&mut tx, &record)?;
        self.me.commit(tx)?;
        Ok(record)
    }
    /// Enrols a device (hub only).
    pub fn enrol(&mut self, device: AuthorId, role: Role, name: &Label, limits: OfflineLimits) -> Result<SignedOp> {
        self.me.hub_key("enrol devices")?;
        self.record(Body::Enrol { device, role, name: name.clone(), limits })
    }
    /// Grants a device an allowance for debits on a wallet (hub only): what
    /// it may charge there, offline included, without the hub's say. The
    /// allowance is reserved against the wallet: all devices' allowances
    /// together never exceed the balance above the floor, so no wallet is
    /// overdrawn by devices that cannot see each other.
    pub fn grant_escrow(&mut self, device: AuthorId, wallet: WalletKey, amount: Amount) -> Result<SignedOp> {
        self.me.hub_key("grant allowances")?;
        {
            let tx = self.store.read()?;
            let author = tx.author(&device)?.ok_or_else(|| NodeError::UnknownDevice(device.to_hex()))?;
            if !ledger::role_may_record(author.role, saldo_sync::OpKind::ServiceCharge) || author.role == Role::Hub {
                return Err(NodeError::Refused(format!(
                    "a {} does not record charges: only school devices get allowances",
                    author.role.name()
                )));
            }
            let confirmed = tx.wallet(&wallet.consumer, &wallet.service)?.confirmed.minor();
            let floor = tx.service(&wallet.service)?.map_or(0, |s| s.floor.minor());
            let available = confirmed - floor - tx.escrow_outstanding(&wallet.consumer, &wallet.service)?;
            if amount.minor() > available {
                let euro = |m: i64| Balance::from_minor(m).map_or_else(|| format!("{m} cents"), |b| b.to_string());
                return Err(NodeError::Refused(format!(
                    "only {} EUR of this wallet can still be reserved (balance {} EUR, floor {} EUR, already reserved for devices {} EUR)",
                    euro(available.max(0)),
                    euro(confirmed),
                    euro(floor),
                    euro(confirmed - floor - available)
                )));
            }
        }
        self.record(Body::EscrowGrant { device, wallet, amount })
    }
    /// Changes a device's offline limits (hub only): what is given replaces
    /// what the hub granted at enrolment or last time; the rest stays. The
    /// device applies them once it syncs; the hub judges by them what the
    /// device records from then on. Returns the limits now in force.
    pub fn change_limits(
        &mut self,
        device: AuthorId,
        per_operation: Option<Amount>,
        unconfirmed_total: Option<Balance>,
        offline_secs_max: Option<u32>,
    ) -> Result<OfflineLimits> {
        self.me.hub_key("change a device's limits")?;
        if per_operation.is_none() && unconfirmed_total.is_none() && offline_secs_max.is_none() {
            return Err(NodeError::Refused(
                "say which limit to change: --per-operation, --unconfirmed-total or --offline-hours".into(),
            ));
        }
        let current = {
            let tx = self.store.read()?;
            let author = tx.author(&device)?.ok_or_else(|| NodeError::UnknownDevice(device.to_hex()))?;
            match (author.role, author.limits) {
                (Role::CashPoint | Role::SchoolDevice, Some(limits)) => limits,
                (role, _) => {
                    return Err(NodeError::Refused(format!("a {} has no offline limits to change", role.name())));
                }
            }
        };
        let limits = OfflineLimits {
            per_operation: per_operation.unwrap_or(current.per_operation),
            unconfirmed_total: unconfirmed_total.unwrap_or(current.unconfirmed_total),
            offline_secs_max: offline_secs_max.unwrap_or(current.offline_secs_max),
        };
        check_limits(&limits)?;
        if limits != current {
            self.record(Body::ChangeLimits { device, limits })?;
        }
        Ok(limits)
    }
    /// Revokes a device (hub only): what it recorded up to the last operation
    /// the hub has seen keeps counting; anything later is flagged.
    pub fn revoke(&mut self, device: AuthorId, reason: &Label) -> Result<SignedOp> {
        self.me.hub_key("revoke devices")?;
        let last_seq_seen = {
            let tx = self.store.read()?;
            tx.author(&device)?.map(|a| a.head_seq).ok_or_else(|| NodeError::UnknownDevice(device.to_hex()))?
        };
        self.record(Body::Revoke { device, last_seq_seen, reason: reason.clone() })
    }
    /// A hub operator's review of a flagged operation.
    pub fn review(&mut self, target: &OpId, accept: bool, operator: &Label, note: &Label) -> Result<SignedOp> {
        self.me.hub_key("review flagged operations")?;
        let author = {
            let tx = self.store.read()?;
            match tx.verdict(target)? {
                Some(v) if matches!(v.verdict, Verdict::Flagged { .. }) => {}
                Some(_) => return Err(NodeError::NotFlagged(target.to_hex())),
                None if tx.has_op(target)? => return Err(NodeError::NotFlagged(target.to_hex())),
                None => return Err(NodeError::UnknownOperation(target.to_hex())),
            }
            tx.money_op(target)?.ok_or_else(|| NodeError::UnknownOperation(target.to_hex()))?.author
        };
        let verdict = if accept {
            Verdict::ReviewAccepted { operator: operator.clone(), note: note.clone() }
        } else {
            Verdict::ReviewRejected { operator: operator.clone(), note: note.clone() }
        };
        self.record(Body::Decisions(vec![Decision { target: *target, author, verdict }]))
    }
    /// [`Node::review`] as an operator asks for it: accepting an operation
    /// that takes a wallet below its floor ([`ledger::below_floor_if_accepted`])
    /// is refused, with nothing recorded, unless `below_floor_confirmed`.
    /// The check and the decision are one transaction. Returns the decision
    /// and the wallets it took below their floors.
    pub fn review_checked(
        &mut self,
        target: &OpId,
        accept: bool,
        operator: &Label,
        note: &Label,
        below_floor_confirmed: bool,
    ) -> Result<(SignedOp, Vec<WalletBelowFloor>)> {
        let key = self.me.hub_key("review flagged operations")?;
        let mut tx = self.store.write()?;
        match tx.verdict(target)? {
            Some(v) if matches!(v.verdict, Verdict::Flagged { .. }) => {}
            Some(_) => return Err(NodeError::NotFlagged(target.to_hex())),
            None if tx.has_op(target)? => return Err(NodeError::NotFlagged(target.to_hex())),
            None => return Err(NodeError::UnknownOperation(target.to_hex())),
        }
        let op = tx.money_op(target)?.ok_or_else(|| NodeError::UnknownOperation(target.to_hex()))?;
        let below = if accept { wallets_below_floor_if_accepted(&tx, &op)? } else { Vec::new() };
        if !below.is_empty() && !below_floor_confirmed {
            return Err(NodeError::BelowFloorInReview {
                kind: op.kind.replace('-', " "),
                wallets: below.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
            });
        }
        let verdict = if accept {
            Verdict::ReviewAccepted { operator: operator.clone(), note: note.clone() }
        } else {
            Verdict::ReviewRejected { operator: operator.clone(), note: note.clone() }
        };
        let body = Body::Decisions(vec![Decision { target: *target, author: op.author, verdict }]);
        let signed = self.me.author(&mut tx, key, body)?;
        self.me.commit(tx)?;
        Ok((signed, below))
    }
    /// Records a top-up with the next receipt number and returns its receipt.
    pub fn record_top_up(
        &mut self,
        lines: &[TopUpRequestLine],
        method: PaymentMethod,
        operator: Option<&Label>,
    ) -> Result<Receipt> {
        let key = self.me.key.as_ref().ok_or(NodeError::NoKey)?;
        let mut tx = self.store.write()?;
        for line in lines {
            let consumer =
                tx.consumer(&line.consumer)?.ok_or_else(|| NodeError::UnknownConsumer(line.consumer.to_hex()))?;
            if !tx.is_enrolled(&line.consumer, &line.service)? {
                let enrolled =
                    tx.consumer_services(&line.consumer)?.iter().map(ServiceId::as_str).collect::<Vec<_>>().join(", ");
                return Err(NodeError::NotEnrolled {
                    consumer: format!("{} {}", consumer.name, consumer.surname),
                    service: line.service.to_string(),
                    enrolled,
                });
            }
        }
        let total: i64 = lines.iter().map(|l| l.amount.minor()).sum();
        self.me.check_may_record(&tx, saldo_sync::OpKind::TopUp)?;
        self.me.check_offline_limits(&tx, total)?;
        let receipt = self.me.next_receipt(&tx, &key.author())?;
        let body = Body::TopUp(TopUp {
            receipt,
            lines: lines
                .iter()
                .map(|l| TopUpLine {
                    wallet: WalletKey { consumer: l.consumer, service: l.service.clone() },
                    amount: l.amount,
                })
                .collect(),
            method,
            operator: operator.cloned(),
        });
        let signed = self.me.author(&mut tx, key, body)?;
        let receipt = self.me.receipt_in(&tx, &signed)?;
        self.me.commit(tx)?;
        Ok(receipt)
    }
    /// Records a charge (a meal, a fee) on a wallet, as a school device or
    /// the hub. A device charges only within the allowance the hub reserved
    /// for it on that wallet, and refuses beyond it, saying so.
    pub fn record_service_charge(&mut self, wallet: WalletKey, amount: Amount, reference: &Label) -> Result<SignedOp> {
        let key = self.me.key.as_ref().ok_or(NodeError::NoKey)?;
        let mut tx = self.store.write()?;
        if !tx.is_enrolled(&wallet.consumer, &wallet.service)? {
            return Err(NodeError::NotEnrolled {
                consumer: wallet.consumer.to_hex(),
                service: wallet.service.to_string(),
                enrolled: String::new(),
            });
        }
        if !self.me.ctx.is_hub() {
            self.me.check_may_record(&tx, saldo_sync::OpKind::ServiceCharge)?;
            self.me.check_offline_limits(&tx, amount.minor())?;
            let (granted, used) = tx.escrow_of(&key.author(), &wallet.consumer, &wallet.service)?;
            if amount.minor() > granted - used {
                let left = Balance::from_minor((granted - used).max(0)).map_or_else(String::new, |b| b.to_string());
                return Err(NodeError::Refused(format!(
                    "{amount} EUR is over what this device may still charge on this wallet ({left} EUR): ask the hub for an allowance, or charge at the office"
                )));
            }
        }
        let body = Body::ServiceCharge(saldo_sync::ServiceCharge { reference: reference.clone(), wallet, amount });
        let signed = self.me.author(&mut tx, key, body)?;
        self.me.commit(tx)?;
        Ok(signed)
    }
}

impl Me {
    /// Signs the next operation of `key`'s log and applies it in `tx`. On a
    /// hub, an operation on money is first judged by the same rules the hub
    /// applies to everybody's, and refused if it would be flagged.
    pub fn author(&self, tx: &mut Tx<'_>, key: &DeviceKey, body: Body) -> Result<SignedOp> {
        let signed = self.sign_next(tx, key, body)?;
        let author = signed.op.author;
        if signed.op.body.kind().needs_verdict() && author == self.ctx.realm.hub() {
            let row = tx.author(&author)?.expect("the hub is an author of its realm");
            let facts = state::gather_facts(tx, &author, &signed, &row)?;
            if let Verdict::Flagged { reason, detail } = ledger::decide(&facts) {
                return Err(NodeError::Refused(format!("{}: {}", reason.describe(), detail)));
            }
        }
        match state::apply(tx, &self.ctx, &signed)? {
            Applied::New => {}
            other => unreachable!("a freshly signed operation at the head is new, not {other:?}"),
        }
        Ok(signed)
    }
    /// Records a directory change this node just made to `doc`.
    fn author_directory(&self, tx: &mut Tx<'_>, key: &DeviceKey, doc: DocId, edited: directory::Edited) -> Result<()> {
        let view = state::view_of(&doc, &edited.doc);
        let signed = self.sign_next(tx, key, Body::DirectoryChange { doc, change: edited.change })?;
        match state::apply_with_view(tx, &self.ctx, &signed, view)? {
            Applied::New => Ok(()),
            other => unreachable!("a freshly signed operation at the head is new, not {other:?}"),
        }
    }
    /// Signs `body` as the next operation of `key`'s log (not yet applied).
    fn sign_next(&self, tx: &mut Tx<'_>, key: &DeviceKey, body: Body) -> Result<SignedOp> {
        let author = key.author();
        let (seq, prev) = match tx.author(&author)? {
            Some(row) => (row.head_seq.next(), row.head_id.unwrap_or(OpId::NONE)),
            None => (Seq::FIRST, OpId::NONE),
        };
        let hlc = self.next_hlc(tx)?;
        tx.set_meta(META_LAST_HLC, &hlc.0.to_be_bytes())?;
        let hub_seen = tx.author(&self.ctx.realm.hub())?.map_or(Seq(0), |hub| hub.head_seq);
        Ok(Operation { author, seq, prev, hlc, hub_seen, body }.sign(&self.ctx.realm, key))
    }
    /// The timestamp this node's next operation gets.
    fn next_hlc(&self, tx: &Tx<'_>) -> Result<Hlc> {
        let last = tx
            .meta(META_LAST_HLC)?
            .and_then(|b| b.try_into().ok())
            .map(|b| Hlc(u64::from_be_bytes(b)))
            .unwrap_or_default();
        Ok(Hlc::tick(last, self.clock.now_ms()))
    }
    /// A device records only what its role allows (the hub would flag the rest).
    pub(super) fn check_may_record(&self, tx: &Tx<'_>, kind: saldo_sync::OpKind) -> Result<()> {
        let Some(me) = self.ctx.own.filter(|_| !self.ctx.is_hub()) else {
            return Ok(());
        };
        self.check_own_log(tx)?;
        match tx.author(&me)? {
            Some(author) if !ledger::role_may_record(author.role, kind) => {
                Err(NodeError::Refused(format!("a {} does not record a {}", author.role.name(), kind.name())))
            }
            _ => Ok(()),
        }
    }
    /// A device refuses to record money beyond the offline limits the hub
    /// granted it: one operation's amount, the total awaiting the hub's
    /// verdict, the time since the last contact with the hub. (The hub
    /// flags what breaks a rule anyway; this stops it at the counter.)
    pub(super) fn check_offline_limits(&self, tx: &Tx<'_>, total_minor: i64) -> Result<()> {
        let Some(me) = self.ctx.own.filter(|_| !self.ctx.is_hub()) else {
            return Ok(());
        };
        let author = tx.author(&me)?.ok_or_else(|| {
            NodeError::Refused("this device's enrolment has not arrived yet: let it sync with the hub first".into())
        })?;
        if author.revoked_after.is_some() {
            return Err(NodeError::Refused("the hub revoked this device: it may not record money any more".into()));
        }
        let Some(limits) = author.limits else { return Ok(()) };
        let euro = |minor: i64| Balance::from_minor(minor).map_or_else(|| format!("{minor} cents"), |b| b.to_string());
        if total_minor > limits.per_operation.minor() {
            return Err(NodeError::Refused(format!(
                "{} EUR is over this cash point's limit of {} EUR per operation, set by the hub: record less, or at the municipal office",
                euro(total_minor),
                limits.per_operation
            )));
        }
        let (_, pending) = tx.unconfirmed_of(&me)?;
        if pending + total_minor > limits.unconfirmed_total.minor() {
            return Err(NodeError::Refused(format!(
                "{} EUR recorded here await the hub's confirmation, and {} EUR more would pass this cash point's limit of {} EUR: reconnect to the hub (or carry a bundle to it) first",
                euro(pending),
                euro(total_minor),
                limits.unconfirmed_total
            )));
        }
        // Contact with the hub is what the device holds of the hub's log:
        // the hub writes a heartbeat when it is quiet, so a device in touch
        // holds a recent operation of it. The hub checks the same thing.
        let hub = self.ctx.realm.hub();
        let hub_head = tx.author(&hub)?.map_or(Seq(0), |a| a.head_seq);
        if let Some(hub_ms) = tx.op_wall_ms(&hub, hub_head)? {
            let offline_secs = self.next_hlc(tx)?.wall_ms().saturating_sub(hub_ms) / 1000;
            if offline_secs > u64::from(limits.offline_secs_max) {
                return Err(NodeError::Refused(format!(
                    "the newest news from the hub here is {} h {} min old, over this cash point's limit of {} h: reconnect to the hub (or import a bundle from it) first",
                    offline_secs / 3600,
                    offline_secs % 3600 / 60,
                    limits.offline_secs_max / 3600
                )));
            }
        }
        Ok(())
    }
    /// Commits a transaction. On the hub, first signs balance checkpoints of
    /// the wallets whose confirmed balance the transaction changed, as of its
    /// log so far: devices take these as the confirmed balances of wallets
    /// whose other operations they do not hold.
    pub(crate) fn commit(&self, mut tx: Tx<'_>) -> Result<()> {
        if let Some(key) = self.key.as_ref().filter(|_| self.ctx.is_hub()) {
            let dirty = tx.take_dirty_wallets();
            for chunk in dirty.chunks(saldo_sync::op::CHECKPOINT_WALLETS_MAX) {
                let as_of = tx.author(&key.author())?.map_or(Seq(0), |a| a.head_seq);
                let mut balances = Vec::with_capacity(chunk.len());
                for (consumer, service) in chunk {
                    let balance = tx.wallet(consumer, service)?.confirmed;
                    balances.push(WalletBalance {
                        wallet: WalletKey { consumer: *consumer, service: service.clone() },
                        balance,
                    });
                }
                self.author(&mut tx, key, Body::BalanceCheckpoint { as_of, balances })?;
            }
        }
        tx.commit(CheckpointsSigned { _only_me_commit_makes_it: () })?;
        Ok(())
    }
    pub(super) fn hub_key(&self, what: &'static str) -> Result<&DeviceKey> {
        match &self.key {
            Some(key) if self.ctx.is_hub() => Ok(key),
            _ => Err(NodeError::HubOnly(what)),
        }
    }
    /// Writes the decision operations carrying verdicts already in effect.
    pub(super) fn write_decisions(
        &self,
        tx: &mut Tx<'_>,
        key: &DeviceKey,
        pending: &mut PendingDecisions,
    ) -> Result<()> {
        for chunk in pending.take() {
            let signed = self.sign_next(tx, key, Body::Decisions(chunk))?;
            state::apply_decided(tx, &self.ctx, &signed)?;
        }
        Ok(())
    }
    /// Like [`Node::put_family`], inside the caller's transaction (imports batch many).
    pub fn put_family_in(&self, tx: &mut Tx<'_>, family: &FamilyRecord, contacts: &ContactRecord) -> Result<usize> {
        let key = self.hub_key("edit the directory")?;
        let mut written = 0;
        let doc = DocId::Family(family.id);
        if let Some(edited) = directory::change_family(state::load_doc(tx, &doc)?, &key.author(), family)? {
            self.author_directory(tx, key, doc, edited)?;
            written += 1;
        }
        let contacts_key = self.contacts_key.as_ref().ok_or(NodeError::HubOnly("edit contact data"))?;
        let doc = DocId::Contacts(family.id);
        if (contacts.email.is_some()
            || contacts.phone.is_some()
            || contacts.notify.is_some()
            || contacts.language.is_some())
            && let Some(edited) =
                directory::change_contacts(state::load_doc(tx, &doc)?, &contacts_key.author(), contacts)?
        {
            self.author_directory(tx, contacts_key, doc, edited)?;
            written += 1;
        }
        Ok(written)
    }
    /// Creates or updates a service as the hub.
    pub fn put_service_in(&self, tx: &mut Tx<'_>, service: &ServiceRecord) -> Result<bool> {
        let key = self.hub_key("edit services")?;
        let doc = DocId::Service(service.id.clone());
        match directory::change_service(state::load_doc(tx, &doc)?, &key.author(), service)? {
            Some(edited) => {
                self.author_directory(tx, key, doc, edited)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}
