//! Money beyond the counter's top-up, as the API asks for it: payments of
//! dues and reversals (*storno*) with a receipt; transfers between siblings
//! and refunds at the hub; a cash point's daily close (*chiusura*) and
//! remittance (*versamento*). Each is checked whole before anything is
//! written, and with an idempotency key a retried request answers what
//! the first recorded and records nothing new.

use saldo_api::payments::{
    DailyClose, DuePaymentRequest, MethodTotal, PaymentMethodApi, Recorded, RefundRequest, Remittance,
    RemittanceRequest, ReversalRequest, TransferRequest, WalletRef,
};
use saldo_api::receipt::Receipt;
use saldo_sync::{Balance, Body, DuePayment, Label, OpId, OpKind, ReceiptRange, Refund, SignedOp, Transfer, WalletKey};

use super::counter::{field, local_date, receipt_in};
use super::{Me, Node, NodeError, Once, Result};
use crate::store::{ConsumerRow, TillOp, Tx};

/// The local day (YYYYMMDD) of a time in ms.
pub fn day_of_ms(ms: u64) -> u32 {
    use chrono::{Datelike as _, TimeZone as _};
    match chrono::Local.timestamp_millis_opt(ms as i64) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
            t.year() as u32 * 10_000 + t.month() * 100 + t.day()
        }
        chrono::LocalResult::None => 0,
    }
}

/// The span of a local day (YYYYMMDD) in ms, `[start, end)`; `None` for a
/// day the calendar does not have (20260231).
pub(crate) fn day_span_ms(day: u32) -> Option<(u64, u64)> {
    use chrono::TimeZone as _;
    let date = chrono::NaiveDate::from_ymd_opt((day / 10_000) as i32, day / 100 % 100, day % 100)?;
    let start_of = |date: chrono::NaiveDate| {
        let midnight = date.and_hms_opt(0, 0, 0)?;
        // A day that starts in a daylight-saving gap starts at its first instant.
        let local = chrono::Local
            .from_local_datetime(&midnight)
            .earliest()
            .or_else(|| chrono::Local.from_local_datetime(&(midnight + chrono::Duration::hours(1))).earliest())?;
        u64::try_from(local.timestamp_millis()).ok()
    };
    Some((start_of(date)?, start_of(date.succ_opt()?)?))
}

fn day_text(day: u32) -> String {
    format!("{:02}/{:02}/{}", day % 100, day / 100 % 100, day / 10_000)
}

fn euro(minor: i64) -> String {
    Balance::from_minor(minor).map_or_else(|| format!("{minor} cents"), |b| b.to_string())
}

/// What a request means, for its retry to be recognised.
fn fingerprint(what: &str, request: &impl std::fmt::Debug, operator: Option<&Label>) -> [u8; 32] {
    *blake3::hash(format!("{what}|{request:?}|{:?}", operator.map(Label::as_str)).as_bytes()).as_bytes()
}

/// The operation an earlier request with the same key recorded, if any;
/// the same key for another request is refused.
fn earlier(tx: &Tx<'_>, once: Option<&Once>, fingerprint: &[u8; 32]) -> Result<Option<OpId>> {
    let Some(once) = once else { return Ok(None) };
    match tx.idempotent_request(&once.scope, &once.key)? {
        Some(earlier) if earlier.request != *fingerprint => Err(NodeError::Refused(
            "this Idempotency-Key was used for a different request: send a new key for a new payment".into(),
        )),
        Some(earlier) => Ok(Some(earlier.op)),
        None => Ok(None),
    }
}

fn remember(me: &Me, tx: &Tx<'_>, once: Option<&Once>, fingerprint: &[u8; 32], op: &OpId) -> Result<()> {
    if let Some(once) = once {
        tx.remember_request(&once.scope, &once.key, fingerprint, op, me.clock.now_ms())?;
    }
    Ok(())
}

fn decode(tx: &Tx<'_>, op: &OpId) -> Result<SignedOp> {
    let bytes = tx.op_bytes(op)?.ok_or_else(|| NodeError::UnknownOperation(op.to_hex()))?;
    SignedOp::decode(&bytes).map_err(|e| NodeError::Refused(format!("stored operation: {e}")))
}

fn person(row: &ConsumerRow) -> String {
    format!("{} {}", row.surname, row.name)
}

/// The consumer of `wallet`, enrolled in its service (`at` names the field).
fn enrolled_consumer(tx: &Tx<'_>, wallet: &WalletRef, at: &str) -> Result<ConsumerRow> {
    let consumer = tx.consumer(&wallet.consumer)?.ok_or_else(|| {
        field(
            format!("{at}.consumer"),
            format!("no consumer {} is known here: search for the child again", wallet.consumer.to_hex()),
        )
    })?;
    if !tx.is_enrolled(&wallet.consumer, &wallet.service)? {
        let enrolled =
            tx.consumer_services(&wallet.consumer)?.iter().map(|s| s.as_str().to_string()).collect::<Vec<_>>();
        return Err(field(
            format!("{at}.service"),
            format!(
                "{} is not enrolled in '{}' (enrolled in: {})",
                person(&consumer),
                wallet.service,
                if enrolled.is_empty() { "nothing".to_string() } else { enrolled.join(", ") }
            ),
        ));
    }
    Ok(consumer)
}

fn recorded(signed: &SignedOp) -> Recorded {
    Recorded { operation: signed.id, recorded_at_ms: signed.op.hlc.wall_ms() }
}

impl Node {
    /// Records the payment of a due (a quarterly bus fee) on `request.wallet`
    /// with the next receipt number, and returns its receipt. A due this
    /// node knows as paid already is refused (the hub would flag it).
    pub fn record_due_payment_request(
        &mut self,
        request: &DuePaymentRequest,
        operator: Option<&Label>,
        once: Option<&Once>,
        verify_base: &str,
    ) -> Result<Receipt> {
        request.validate().map_err(|e| field(e.field.unwrap_or_default(), e.message))?;
        let key = self.me.key.as_ref().ok_or(NodeError::NoKey)?;
        let fingerprint = fingerprint("due-payment", request, operator);
        let mut tx = self.store.write()?;
        if let Some(op) = earlier(&tx, once, &fingerprint)? {
            return receipt_in(&self.me, &tx, &op, verify_base);
        }
        let consumer = enrolled_consumer(&tx, &request.wallet, "wallet")?;
        let wallet = WalletKey::from(request.wallet.clone());
        if tx.reference_used(OpKind::DuePayment, request.due.as_str(), &wallet.consumer, &wallet.service)? {
            return Err(field(
                "due".into(),
                format!(
                    "the due '{}' of {} for {} was paid already: take no money; to add credit, record a top-up",
                    request.due,
                    person(&consumer),
                    wallet.service
                ),
            ));
        }
        self.me.check_may_record(&tx, OpKind::DuePayment)?;
        self.me.check_offline_limits(&tx, request.amount.minor())?;
        let receipt = self.me.next_receipt(&tx, &key.author())?;
        let body = Body::DuePayment(DuePayment {
            due: request.due.clone(),
            receipt,
            wallet,
            amount: request.amount,
            method: request.method.into(),
            operator: operator.cloned(),
        });
        let signed = self.me.author(&mut tx, key, body)?;
        remember(&self.me, &tx, once, &fingerprint, &signed.id)?;
        let receipt = receipt_in(&self.me, &tx, &signed.id, verify_base)?;
        self.me.commit(tx)?;
        Ok(receipt)
    }

    /// Reverses (*storno*) a top-up recorded here today, before the day's
    /// close, and returns the reversal's receipt. Anything else is refused,
    /// saying what to do instead: a refund at the municipal office.
    pub fn record_reversal_request(
        &mut self,
        request: &ReversalRequest,
        operator: Option<&Label>,
        once: Option<&Once>,
        verify_base: &str,
    ) -> Result<Receipt> {
        let key = self.me.key.as_ref().ok_or(NodeError::NoKey)?;
        let me = key.author();
        let fingerprint = fingerprint("reversal", request, operator);
        let mut tx = self.store.write()?;
        if let Some(op) = earlier(&tx, once, &fingerprint)? {
            return receipt_in(&self.me, &tx, &op, verify_base);
        }
        let target = &request.operation;
        let refund = "for money back, the family asks the municipal office for a refund";
        let row = tx.money_op(target)?.ok_or_else(|| {
            field(
                "operation".into(),
                format!(
                    "no receipt {} is held here: only the cash point that recorded a top-up reverses it",
                    target.to_hex()
                ),
            )
        })?;
        if row.kind != OpKind::TopUp.name() {
            return Err(NodeError::Refused(format!(
                "this is a {}, not a top-up: only top-ups are reversed at the counter; {refund}",
                row.kind.replace('-', " ")
            )));
        }
        if row.author != me {
            let by = tx.author(&row.author)?.map_or_else(|| row.author.to_hex(), |a| a.name);
            return Err(NodeError::Refused(format!(
                "receipt {} was recorded by {by}: only the cash point that recorded a top-up reverses it, the same day; {refund}",
                row.receipt.map_or(0, |r| r.0)
            )));
        }
        let (recorded_day, today) = (day_of_ms(row.hlc >> 16), day_of_ms(self.me.clock.now_ms()));
        if recorded_day != today {
            return Err(NodeError::Refused(format!(
                "receipt {} was recorded on {}: a top-up is reversed only the day it was recorded; {refund}",
                row.receipt.map_or(0, |r| r.0),
                local_date(row.hlc >> 16)
            )));
        }
        if let Some((by, _)) = tx.reversal_ref_of(target)? {
            return Err(NodeError::Refused(format!(
                "receipt {} was reversed already (operation {}): nothing to do",
                row.receipt.map_or(0, |r| r.0),
                by.to_hex()
            )));
        }
        if let Some(receipt) = row.receipt
            && tx.receipt_closed_here(&me, receipt)?
        {
            return Err(NodeError::Refused(format!(
                "receipt {receipt}'s day is closed: a top-up is reversed only before the daily close; {refund}"
            )));
        }
        if !row.verdict.as_ref().is_none_or(|v| v.verdict.counts()) {
            return Err(NodeError::Refused(format!(
                "receipt {} awaits the hub's review: the municipal office settles it there",
                row.receipt.map_or(0, |r| r.0)
            )));
        }
        self.me.check_may_record(&tx, OpKind::Reversal)?;
        let body = Body::Reversal { target: *target, reason: request.reason.clone() };
        let signed = self.me.author(&mut tx, key, body)?;
        remember(&self.me, &tx, once, &fingerprint, &signed.id)?;
        let receipt = receipt_in(&self.me, &tx, &signed.id, verify_base)?;
        self.me.commit(tx)?;
        Ok(receipt)
    }

    /// Moves money from one wallet to another of the same family (hub only):
    /// between siblings, or between a child's services. The source must
    /// cover it (the hub's rules refuse otherwise).
    pub fn record_transfer_request(&mut self, request: &TransferRequest, once: Option<&Once>) -> Result<Recorded> {
        request.validate().map_err(|e| field(e.field.unwrap_or_default(), e.message))?;
        let key = self.me.hub_key("record transfers")?;
        let fingerprint = fingerprint("transfer", request, None);
        let mut tx = self.store.write()?;
        if let Some(op) = earlier(&tx, once, &fingerprint)? {
            return Ok(recorded(&decode(&tx, &op)?));
        }
        let from = enrolled_consumer(&tx, &request.from, "from")?;
        let to = enrolled_consumer(&tx, &request.to, "to")?;
        if from.family != to.family {
            return Err(field(
                "to.consumer".into(),
                format!(
                    "{} is not of the family of {}: transfers go between siblings; refund the one family and top up the other",
                    person(&to),
                    person(&from)
                ),
            ));
        }
        let body = Body::Transfer(Transfer {
            from: request.from.clone().into(),
            to: request.to.clone().into(),
            amount: request.amount,
            note: request.reason.clone(),
        });
        let signed = self.me.author(&mut tx, key, body)?;
        remember(&self.me, &tx, once, &fingerprint, &signed.id)?;
        self.me.commit(tx)?;
        Ok(recorded(&signed))
    }

    /// Hands money of a wallet back to the family (hub only), within its
    /// confirmed balance.
    pub fn record_refund_request(&mut self, request: &RefundRequest, once: Option<&Once>) -> Result<Recorded> {
        request.validate().map_err(|e| field(e.field.unwrap_or_default(), e.message))?;
        let key = self.me.hub_key("record refunds")?;
        let fingerprint = fingerprint("refund", request, None);
        let mut tx = self.store.write()?;
        if let Some(op) = earlier(&tx, once, &fingerprint)? {
            return Ok(recorded(&decode(&tx, &op)?));
        }
        enrolled_consumer(&tx, &request.wallet, "wallet")?;
        let body = Body::Refund(Refund {
            wallet: request.wallet.clone().into(),
            amount: request.amount,
            method: request.method.into(),
            note: request.reason.clone(),
        });
        let signed = self.me.author(&mut tx, key, body)?;
        remember(&self.me, &tx, once, &fingerprint, &signed.id)?;
        self.me.commit(tx)?;
        Ok(recorded(&signed))
    }

    /// Closes `day` (today when `None`) at this node: its receipts, what
    /// they took in per method net of reversals, and the reversals. A day
    /// closed already, or still to come, is refused.
    pub fn record_daily_close(&mut self, day: Option<u32>, once: Option<&Once>) -> Result<DailyClose> {
        let key = self.me.key.as_ref().ok_or(NodeError::NoKey)?;
        let me = key.author();
        let today = day_of_ms(self.me.clock.now_ms());
        let day = day.unwrap_or(today);
        let fingerprint = fingerprint("daily-close", &day, None);
        let mut tx = self.store.write()?;
        if let Some(op) = earlier(&tx, once, &fingerprint)? {
            return closed_day(&tx, &me, &op);
        }
        if day > today {
            return Err(field(
                "day".into(),
                format!("{} is still to come: close a day once it is over, or today", day_text(day)),
            ));
        }
        if let Some(op) = close_of(&tx, &me, day)? {
            return Err(NodeError::Refused(format!(
                "{} was closed already (operation {}): GET /daily-close?day={day} shows it",
                day_text(day),
                op.to_hex()
            )));
        }
        let summary = summarise(&tx, &me, day)?;
        self.me.check_may_record(&tx, OpKind::DailyClose)?;
        let body = Body::DailyClose {
            day,
            receipts: summary.receipts,
            count: summary.count,
            total: Balance::from_minor(summary.total_minor)
                .ok_or_else(|| NodeError::Refused("the day's total is beyond any amount".into()))?,
        };
        let signed = self.me.author(&mut tx, key, body)?;
        remember(&self.me, &tx, once, &fingerprint, &signed.id)?;
        let close = closed_day(&tx, &me, &signed.id)?;
        self.me.commit(tx)?;
        Ok(close)
    }

    /// The close of `day` (today when `None`) as recorded here, or, while the
    /// day is open, what closing it now would record (no operation).
    pub fn daily_close(&mut self, day: Option<u32>) -> Result<DailyClose> {
        let me = self.me.ctx.own.ok_or(NodeError::NoKey)?;
        let day = day.unwrap_or_else(|| day_of_ms(self.me.clock.now_ms()));
        let tx = self.store.read()?;
        match close_of(&tx, &me, day)? {
            Some(op) => closed_day(&tx, &me, &op),
            None => {
                day_span_ms(day).ok_or_else(|| field("day".into(), format!("{day}: the calendar has no such day")))?;
                Ok(summarise(&tx, &me, day)?.into_close(None, day))
            }
        }
    }

    /// Records the cash handed to the treasury for the receipts of closed
    /// days not remitted yet. The amount must be their cash, to the cent.
    pub fn record_remittance_request(
        &mut self,
        request: &RemittanceRequest,
        once: Option<&Once>,
    ) -> Result<Remittance> {
        request.validate().map_err(|e| field(e.field.unwrap_or_default(), e.message))?;
        let key = self.me.key.as_ref().ok_or(NodeError::NoKey)?;
        let me = key.author();
        let fingerprint = fingerprint("remittance", request, None);
        let mut tx = self.store.write()?;
        if let Some(op) = earlier(&tx, once, &fingerprint)? {
            return remittance_of(&decode(&tx, &op)?);
        }
        let remitted = tx.own_range_last(&me, TillOp::Remittance)?.map_or(0, |r| r.0);
        let closed = tx.own_range_last(&me, TillOp::DailyClose)?.map_or(0, |r| r.0);
        if closed <= remitted {
            return Err(NodeError::Refused(
                "no receipt of a closed day awaits remittance: close the day first (POST /daily-close)".into(),
            ));
        }
        let range = ReceiptRange { first: saldo_sync::ReceiptNo(remitted + 1), last: saldo_sync::ReceiptNo(closed) };
        let (_, _, cash_minor) = tx.receipt_range_here(&me, range.first, range.last)?;
        if cash_minor != request.amount.minor() {
            return Err(field(
                "amount".into(),
                format!(
                    "receipts {} to {} took in {} EUR in cash, not {} EUR: count the cash again and type what you hand over",
                    range.first,
                    range.last,
                    euro(cash_minor),
                    request.amount
                ),
            ));
        }
        self.me.check_may_record(&tx, OpKind::Remittance)?;
        let body = Body::Remittance { receipts: range, amount: request.amount, reference: request.reference.clone() };
        let signed = self.me.author(&mut tx, key, body)?;
        remember(&self.me, &tx, once, &fingerprint, &signed.id)?;
        let remittance = remittance_of(&signed)?;
        self.me.commit(tx)?;
        Ok(remittance)
    }
}

/// The daily close of `day` by `me` that counts here, if any.
fn close_of(tx: &Tx<'_>, me: &saldo_sync::AuthorId, day: u32) -> Result<Option<OpId>> {
    for (op, bytes) in tx.own_ops_of_kind(me, TillOp::DailyClose)? {
        let signed = SignedOp::decode(&bytes).map_err(|e| NodeError::Refused(format!("stored operation: {e}")))?;
        if matches!(signed.op.body, Body::DailyClose { day: closed, .. } if closed == day) {
            return Ok(Some(op));
        }
    }
    Ok(None)
}

/// A recorded close: what it declared, with the day's methods and reversals.
fn closed_day(tx: &Tx<'_>, me: &saldo_sync::AuthorId, op: &OpId) -> Result<DailyClose> {
    let signed = decode(tx, op)?;
    let Body::DailyClose { day, receipts, count, total } = signed.op.body else {
        return Err(NodeError::Refused(format!("operation {} is not a daily close", op.to_hex())));
    };
    let mut close = summarise(tx, me, day)?.into_close(Some(*op), day);
    close.first_receipt = receipts.map(|r| r.first);
    close.last_receipt = receipts.map(|r| r.last);
    close.count = count;
    close.total = total;
    Ok(close)
}

/// What a day's receipts add up to, as this node counts them.
struct DaySummary {
    receipts: Option<ReceiptRange>,
    count: u32,
    total_minor: i64,
    per_method: Vec<MethodTotal>,
    reversals: u32,
    reversals_minor: i64,
}

impl DaySummary {
    fn into_close(self, operation: Option<OpId>, day: u32) -> DailyClose {
        DailyClose {
            operation,
            day,
            count: self.count,
            total: Balance::from_minor(self.total_minor).unwrap_or(Balance::ZERO),
            first_receipt: self.receipts.map(|r| r.first),
            last_receipt: self.receipts.map(|r| r.last),
            per_method: self.per_method,
            reversals: self.reversals,
            reversals_total: Balance::from_minor(self.reversals_minor).unwrap_or(Balance::ZERO),
        }
    }
}

fn summarise(tx: &Tx<'_>, me: &saldo_sync::AuthorId, day: u32) -> Result<DaySummary> {
    let (start, end) =
        day_span_ms(day).ok_or_else(|| field("day".into(), format!("{day}: the calendar has no such day")))?;
    let receipts = tx.receipts_between(me, start << 16, end << 16)?;
    let range = match (receipts.first(), receipts.last()) {
        (Some(first), Some(last)) => Some(ReceiptRange { first: first.receipt, last: last.receipt }),
        _ => None,
    };
    let mut per_method: Vec<MethodTotal> = Vec::new();
    let (mut count, mut total_minor) = (0u32, 0i64);
    for receipt in receipts.iter().filter(|r| r.counts_here) {
        count += 1;
        total_minor += receipt.total_minor;
        let method = receipt.method.as_deref().and_then(PaymentMethodApi::from_name).unwrap_or(PaymentMethodApi::Other);
        match per_method.iter_mut().find(|m| m.method == method) {
            Some(line) => {
                line.count += 1;
                line.total = Balance::from_minor(line.total.minor() + receipt.total_minor).unwrap_or(line.total);
            }
            None => per_method.push(MethodTotal {
                method,
                count: 1,
                total: Balance::from_minor(receipt.total_minor).unwrap_or(Balance::ZERO),
            }),
        }
    }
    let (mut reversals, mut reversals_minor) = (0u32, 0i64);
    for target in tx.reversal_targets_between(me, start << 16, end << 16)? {
        reversals += 1;
        reversals_minor += tx.money_op(&target)?.map_or(0, |t| t.total_minor);
    }
    Ok(DaySummary { receipts: range, count, total_minor, per_method, reversals, reversals_minor })
}

fn remittance_of(signed: &SignedOp) -> Result<Remittance> {
    let Body::Remittance { receipts, amount, reference } = &signed.op.body else {
        return Err(NodeError::Refused(format!("operation {} is not a remittance", signed.id.to_hex())));
    };
    Ok(Remittance {
        operation: signed.id,
        first_receipt: receipts.first,
        last_receipt: receipts.last,
        amount: *amount,
        reference: reference.to_string(),
        recorded_at_ms: signed.op.hlc.wall_ms(),
    })
}
