//! A top-up as the API asks for it (one receipt for several children of one
//! family and several services, safe to retry with an idempotency key), and
//! receipts (of top-ups, payments of dues and reversals) rebuilt from their
//! operation, with their public verification.

use saldo_api::payments::{PaymentMethodApi, TopUpRequest};
use saldo_api::receipt::{
    LAST_TOP_UPS_MAX, PastTopUp, Receipt, ReceiptKind, ReceiptLine, Verification, VerificationState,
};
use saldo_sync::{Amount, Balance, Body, Label, OpId, Pan, SignedOp, TopUp, TopUpLine, Verdict, WalletKey};

use super::{Node, NodeError, Result};
use crate::store::Tx;

/// A client's `Idempotency-Key`, scoped to who sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Once {
    /// Who sent it (an operator's login): two clients never share keys.
    pub scope: String,
    pub key: String,
}

/// Bytes of an operation id a verification code carries (80 bits: short
/// enough for a QR code a phone reads at a glance, far beyond guessing).
pub const VERIFICATION_CODE_BYTES: usize = 10;

/// The verification code of an operation.
pub fn verification_code(op: &OpId) -> String {
    hex::encode(&op.0[..VERIFICATION_CODE_BYTES])
}

/// The local date and time a receipt prints.
pub fn local_time(ms: u64) -> String {
    use chrono::TimeZone as _;
    match chrono::Local.timestamp_millis_opt(ms as i64) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => t.format("%d/%m/%Y %H:%M").to_string(),
        chrono::LocalResult::None => String::new(),
    }
}

pub(super) fn local_date(ms: u64) -> String {
    local_time(ms).split(' ').next().unwrap_or_default().to_string()
}

pub(super) fn field(field: String, message: String) -> NodeError {
    NodeError::InvalidField { field, message }
}

/// One top-up to record, as [`Node::record_top_ups`] takes them.
#[derive(Debug, Clone)]
pub struct TopUpCall {
    pub request: TopUpRequest,
    /// The operator's name, printed on the receipt.
    pub operator: Option<Label>,
    pub once: Option<Once>,
}

/// Whether `error` concerns the whole transaction (the database), not one
/// request of it.
fn fails_the_batch(error: &NodeError) -> bool {
    matches!(error, NodeError::Storage(_) | NodeError::Busy | NodeError::Io { .. } | NodeError::Open(_))
}

impl Node {
    /// Records `request` as one top-up with the next receipt number, and
    /// returns its receipt. With `once`, a request already recorded under
    /// the same key returns that receipt and records nothing.
    pub fn record_top_up_request(
        &mut self,
        request: &TopUpRequest,
        operator: Option<&Label>,
        once: Option<&Once>,
        verify_base: &str,
    ) -> Result<Receipt> {
        let call = TopUpCall { request: request.clone(), operator: operator.cloned(), once: once.cloned() };
        let op = self.record_top_ups(std::slice::from_ref(&call))?.pop().expect("one answer per call")?;
        self.receipt(&op, verify_base)
    }

    /// Records several top-ups in one transaction (one commit, one sync of
    /// the disk, for every counter that asked meanwhile): each is checked
    /// before anything of it is written, and one refused leaves the others
    /// recorded. Only a failure of the database fails them all. Each answer
    /// is the top-up's operation (for a retried key, the first one's): its
    /// receipt is read once committed, off the writer ([`Node::receipt`]).
    pub fn record_top_ups(&mut self, calls: &[TopUpCall]) -> Result<Vec<Result<OpId>>> {
        let mut tx = self.store.write()?;
        let mut out = Vec::with_capacity(calls.len());
        for call in calls {
            match top_up_in(&self.me, &mut tx, call) {
                Err(e) if fails_the_batch(&e) => return Err(e),
                answer => out.push(answer),
            }
        }
        self.me.commit(tx)?;
        Ok(out)
    }
}

fn top_up_in(me: &super::Me, tx: &mut Tx<'_>, call: &TopUpCall) -> Result<OpId> {
    let TopUpCall { request, operator, once } = call;
    request.validate().map_err(|e| field(e.field.unwrap_or_default(), e.message))?;
    let key = me.key.as_ref().ok_or(NodeError::NoKey)?;
    // What the request means, for a retry to be recognised: the lines,
    // the method and the operator.
    let fingerprint = *blake3::hash(
        format!("{:?}|{:?}|{:?}", request.lines, request.method, operator.as_ref().map(Label::as_str)).as_bytes(),
    )
    .as_bytes();
    if let Some(once) = once
        && let Some(earlier) = tx.idempotent_request(&once.scope, &once.key)?
    {
        if earlier.request != fingerprint {
            return Err(NodeError::Refused(
                "this Idempotency-Key was used for a different request: send a new key for a new payment".into(),
            ));
        }
        return Ok(earlier.op);
    }
    let mut family = None;
    for (index, line) in request.lines.iter().enumerate() {
        let consumer = tx.consumer(&line.consumer)?.ok_or_else(|| {
            field(
                format!("lines[{index}].consumer"),
                format!("no consumer {} is known here: search for the child again", line.consumer.to_hex()),
            )
        })?;
        match family {
            None => family = Some((consumer.family, format!("{} {}", consumer.surname, consumer.name))),
            Some((first, ref who)) if first != consumer.family => {
                return Err(field(
                    format!("lines[{index}].consumer"),
                    format!(
                        "{} {} is not of the family of {who}: one receipt holds one family's children; record a second receipt",
                        consumer.surname, consumer.name
                    ),
                ));
            }
            Some(_) => {}
        }
        if !tx.is_enrolled(&line.consumer, &line.service)? {
            let enrolled =
                tx.consumer_services(&line.consumer)?.iter().map(|s| s.as_str().to_string()).collect::<Vec<_>>();
            return Err(field(
                format!("lines[{index}].service"),
                format!(
                    "{} {} is not enrolled in '{}' (enrolled in: {})",
                    consumer.surname,
                    consumer.name,
                    line.service,
                    if enrolled.is_empty() { "nothing".to_string() } else { enrolled.join(", ") }
                ),
            ));
        }
    }
    let total: i64 = request.lines.iter().map(|l| l.amount.minor()).sum();
    me.check_may_record(tx, saldo_sync::OpKind::TopUp)?;
    me.check_offline_limits(tx, total)?;
    let receipt = me.next_receipt(tx, &key.author())?;
    let body = Body::TopUp(TopUp {
        receipt,
        lines: request
            .lines
            .iter()
            .map(|l| TopUpLine {
                wallet: WalletKey { consumer: l.consumer, service: l.service.clone() },
                amount: l.amount,
            })
            .collect(),
        method: request.method.into(),
        operator: operator.clone(),
    });
    let signed = me.author(tx, key, body)?;
    if let Some(once) = once {
        tx.remember_request(&once.scope, &once.key, &fingerprint, &signed.id, me.clock.now_ms())?;
    }
    Ok(signed.id)
}

impl Node {
    /// The receipt of a top-up, a payment of a due or a reversal held here.
    pub fn receipt(&mut self, op: &OpId, verify_base: &str) -> Result<Receipt> {
        let tx = self.store.read()?;
        receipt_in(&self.me, &tx, op, verify_base)
    }

    /// What the public verification of `code` says: genuine or not, where
    /// the receipt stands, and nothing personal beyond what its paper shows.
    pub fn verification(&mut self, code: &str) -> Result<Verification> {
        let Some(prefix) = hex::decode(code.trim()).ok().filter(|b| b.len() == VERIFICATION_CODE_BYTES) else {
            return Ok(Verification::not_genuine());
        };
        let tx = self.store.read()?;
        let found = tx.money_ops_with_prefix(&prefix)?;
        let [op] = found.as_slice() else { return Ok(Verification::not_genuine()) };
        let Some(bytes) = tx.op_bytes(op)? else { return Ok(Verification::not_genuine()) };
        let signed = SignedOp::decode(&bytes).map_err(|e| NodeError::Refused(format!("stored operation: {e}")))?;
        if !matches!(signed.op.body, Body::TopUp(_) | Body::DuePayment(_) | Body::Reversal { .. }) {
            return Ok(Verification::not_genuine());
        }
        let shape = shape_of(&tx, op, &signed.op.body)?;
        let money = tx.money_op(op)?.ok_or_else(|| NodeError::UnknownOperation(op.to_hex()))?;
        let reversed = tx.reversals_of(op)?.iter().any(|(_, counts, _)| *counts);
        let state = if reversed {
            VerificationState::Reversed
        } else {
            match money.verdict.as_ref().map(|v| &v.verdict) {
                Some(Verdict::Accepted | Verdict::ReviewAccepted { .. }) => VerificationState::Accepted,
                Some(Verdict::Flagged { .. }) => VerificationState::Flagged,
                Some(Verdict::ReviewRejected { .. }) => VerificationState::Rejected,
                // The hub's own top-ups count as it records them.
                None if money.counts => VerificationState::Accepted,
                None => VerificationState::Pending,
            }
        };
        let recorded_at_ms = signed.op.hlc.wall_ms();
        Ok(Verification {
            genuine: true,
            state: Some(state),
            realm: Some(super::reader::realm_name_in(&self.me, &tx)?),
            cash_point: tx.author(&signed.op.author)?.map(|a| a.name),
            receipt_number: Some(shape.receipt),
            recorded_at_ms: Some(recorded_at_ms),
            recorded_at_local: Some(local_time(recorded_at_ms)),
            total: Balance::from_minor(shape.lines.iter().map(|(_, a)| a.minor()).sum()),
        })
    }
}

/// What a receipt shows of its operation: a top-up's lines, a payment of a
/// due's one line, or what a reversal undid (the reversed receipt's lines,
/// number and method: a reversal carries no number of its own).
struct Shape {
    kind: ReceiptKind,
    receipt: saldo_sync::ReceiptNo,
    lines: Vec<(WalletKey, Amount)>,
    method: saldo_sync::PaymentMethod,
    operator: Option<Label>,
    due: Option<String>,
    reason: Option<String>,
    reverses: Option<saldo_api::receipt::ReceiptRef>,
}

fn decode_held(tx: &Tx<'_>, op: &OpId) -> Result<SignedOp> {
    let bytes = tx.op_bytes(op)?.ok_or_else(|| NodeError::UnknownOperation(op.to_hex()))?;
    SignedOp::decode(&bytes).map_err(|e| NodeError::Refused(format!("stored operation: {e}")))
}

/// The shape of a receipt of `body` (of operation `op`), or why it has none.
fn shape_of(tx: &Tx<'_>, op: &OpId, body: &Body) -> Result<Shape> {
    match body {
        Body::TopUp(top_up) => Ok(Shape {
            kind: ReceiptKind::TopUp,
            receipt: top_up.receipt,
            lines: top_up.lines.iter().map(|l| (l.wallet.clone(), l.amount)).collect(),
            method: top_up.method,
            operator: top_up.operator.clone(),
            due: None,
            reason: None,
            reverses: None,
        }),
        Body::DuePayment(payment) => Ok(Shape {
            kind: ReceiptKind::DuePayment,
            receipt: payment.receipt,
            lines: vec![(payment.wallet.clone(), payment.amount)],
            method: payment.method,
            operator: payment.operator.clone(),
            due: Some(payment.due.to_string()),
            reason: None,
            reverses: None,
        }),
        Body::Reversal { target, reason } => {
            let reversed = decode_held(tx, target)?;
            if let Body::Reversal { .. } = reversed.op.body {
                return Err(NodeError::Refused(format!("operation {} reverses a reversal", op.to_hex())));
            }
            let mut shape = shape_of(tx, target, &reversed.op.body)?;
            let at_ms = reversed.op.hlc.wall_ms();
            shape.reverses = Some(saldo_api::receipt::ReceiptRef {
                operation: *target,
                receipt_number: shape.receipt,
                recorded_at_ms: at_ms,
                recorded_at_local: local_time(at_ms),
            });
            shape.kind = ReceiptKind::Reversal;
            shape.operator = None;
            shape.reason = Some(reason.to_string());
            Ok(shape)
        }
        other => Err(NodeError::Refused(format!(
            "operation {} is a {}: only top-ups, payments of dues and reversals have receipts",
            op.to_hex(),
            other.kind().name()
        ))),
    }
}

pub(super) fn receipt_in(me: &super::Me, tx: &Tx<'_>, op: &OpId, verify_base: &str) -> Result<Receipt> {
    let unknown = || NodeError::UnknownOperation(op.to_hex());
    let signed = decode_held(tx, op)?;
    let shape = shape_of(tx, op, &signed.op.body)?;
    let money = tx.money_op(op)?.ok_or_else(unknown)?;
    let mut lines = Vec::new();
    let mut past = Vec::new();
    for (wallet, amount) in &shape.lines {
        let (consumer, service) = (&wallet.consumer, &wallet.service);
        let row = tx.consumer(consumer)?;
        let consumer_name = row.as_ref().map_or_else(|| consumer.short(), |r| format!("{} {}", r.surname, r.name));
        let pan_masked = row.as_ref().and_then(|r| Pan::parse(&r.pan).ok()).map(|p| p.masked()).unwrap_or_default();
        let service_name = tx.service(service)?.map_or_else(|| service.to_string(), |s| s.name.to_string());
        let wallet = tx.wallet(consumer, service)?;
        let (_, provisional_after) = tx.wallet_moved_after(consumer, service, money.row)?;
        let after = wallet.provisional.minor() - provisional_after;
        lines.push(ReceiptLine {
            consumer: *consumer,
            consumer_name: consumer_name.clone(),
            pan_masked,
            service: service.clone(),
            service_name: service_name.clone(),
            amount: *amount,
            balance_after: Balance::from_minor(after).unwrap_or(Balance::ZERO),
            provisional: !money.counts || wallet.provisional != wallet.confirmed,
        });
        for movement in tx.movements(consumer, service, LAST_TOP_UPS_MAX as u32 + 1)? {
            if movement.kind == "top-up" && movement.op != *op && movement.counts_provisional {
                past.push(PastTopUp {
                    recorded_at_ms: movement.hlc >> 16,
                    recorded_at_local: local_date(movement.hlc >> 16),
                    consumer_name: consumer_name.clone(),
                    service: service.clone(),
                    service_name: service_name.clone(),
                    amount: Amount::from_minor(movement.delta_minor).unwrap_or(*amount),
                });
            }
        }
    }
    past.sort_by_key(|p| std::cmp::Reverse(p.recorded_at_ms));
    past.truncate(LAST_TOP_UPS_MAX);
    let recorded_at_ms = signed.op.hlc.wall_ms();
    let code = verification_code(op);
    let reversed_by = tx.reversals_of(op)?.into_iter().find(|(_, counts, provisional)| *counts || *provisional);
    let reversed_by = match reversed_by {
        Some(_) => tx.reversal_ref_of(op)?.map(|(id, hlc)| saldo_api::receipt::ReceiptRef {
            operation: id,
            receipt_number: shape.receipt,
            recorded_at_ms: hlc >> 16,
            recorded_at_local: local_time(hlc >> 16),
        }),
        None => None,
    };
    Ok(Receipt {
        operation: *op,
        kind: shape.kind,
        realm: super::reader::realm_name_in(me, tx)?,
        cash_point: tx.author(&signed.op.author)?.map(|a| a.name).unwrap_or_default(),
        operator: shape.operator.as_ref().map(ToString::to_string),
        receipt_number: shape.receipt,
        recorded_at_ms,
        recorded_at_local: local_time(recorded_at_ms),
        method: PaymentMethodApi::from(shape.method),
        due: shape.due,
        reason: shape.reason,
        total: Balance::from_minor(shape.lines.iter().map(|(_, a)| a.minor()).sum()).unwrap_or(Balance::ZERO),
        provisional: !money.counts,
        verification_url: format!("{}/v/{code}", verify_base.trim_end_matches('/')),
        verification_code: code,
        reverses: shape.reverses,
        reversed_by,
        last_top_ups: past,
        lines,
    })
}
