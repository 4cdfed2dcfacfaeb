//! The hub's outbox as `saldo-api` types: pages of messages, one message,
//! an operator's retry, and a receipt sent again on the channels asked for.

use saldo_api::Lang;
use saldo_api::outbox::{ChannelApi, DeliveryStateApi, OutboxCounts, OutboxList, OutboxMessage, PurposeApi};
use saldo_sync::{OpId, SignedOp};

use super::{Node, NodeError, Result};
use crate::outbox::queue;
use crate::store::outbox::{Channel, DeliveryState, OutboxRow, Purpose};

/// What an operator's retry of a message found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryOutcome {
    /// Due again at once.
    Retried(OutboxMessage),
    /// No message has that number.
    Unknown,
    /// It is not waiting for a retry (queued already, or sent).
    NotWaiting(OutboxMessage),
}

/// What sending a receipt again found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResendOutcome {
    Queued(Vec<OutboxMessage>),
    /// Not an operation this hub holds.
    UnknownOperation,
    /// Not an operation with a receipt to a family (a charge, a transfer).
    NoReceipt,
    /// The operation does not count (flagged, rejected, reversed away).
    NotCounting,
    /// The family gave no address for this channel.
    NoAddress(ChannelApi),
}

pub fn channel_api(channel: Channel) -> ChannelApi {
    match channel {
        Channel::Email => ChannelApi::Email,
        Channel::Sms => ChannelApi::Sms,
    }
}

pub fn channel_of(channel: ChannelApi) -> Channel {
    match channel {
        ChannelApi::Email => Channel::Email,
        ChannelApi::Sms => Channel::Sms,
    }
}

pub fn state_of(state: DeliveryStateApi) -> DeliveryState {
    match state {
        DeliveryStateApi::Queued => DeliveryState::Queued,
        DeliveryStateApi::Failing => DeliveryState::Failing,
        DeliveryStateApi::Sent => DeliveryState::Sent,
        DeliveryStateApi::GivenUp => DeliveryState::GivenUp,
    }
}

fn state_api(state: DeliveryState) -> DeliveryStateApi {
    match state {
        DeliveryState::Queued => DeliveryStateApi::Queued,
        DeliveryState::Failing => DeliveryStateApi::Failing,
        DeliveryState::Sent => DeliveryStateApi::Sent,
        DeliveryState::GivenUp => DeliveryStateApi::GivenUp,
    }
}

pub fn message_api(mut row: OutboxRow) -> OutboxMessage {
    crate::outbox::queue::materialize(&mut row);
    OutboxMessage {
        id: row.id,
        about: hex::encode(&row.about),
        purpose: match row.purpose {
            Purpose::Receipt => PurposeApi::Receipt,
            Purpose::Reminder => PurposeApi::Reminder,
            Purpose::Resend => PurposeApi::Resend,
        },
        channel: channel_api(row.channel),
        recipient: row.recipient,
        language: crate::directory::parse_language(&row.language).unwrap_or_default(),
        subject: row.subject,
        body_text: row.body_text,
        body_html: row.body_html,
        reference: row.reference,
        recorded_at_ms: row.recorded_ms,
        queued_at_ms: row.queued_ms,
        state: state_api(row.state),
        attempts: row.attempts,
        next_attempt_at_ms: row.next_attempt_ms,
        last_error: row.last_error,
        sent_at_ms: row.sent_ms,
    }
}

impl Node {
    /// A page of the outbox, newest first, in `state` if given.
    pub fn outbox_list(
        &mut self,
        state: Option<DeliveryStateApi>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<OutboxList> {
        let tx = self.store.read()?;
        let rows = tx.outbox_messages(state.map(state_of), before, limit)?;
        let next_before = (rows.len() == limit as usize).then(|| rows.last().map(|r| r.id)).flatten();
        let mut counts = OutboxCounts::default();
        for (state, n) in tx.outbox_counts()? {
            match state {
                DeliveryState::Queued => counts.queued = n,
                DeliveryState::Failing => counts.failing = n,
                DeliveryState::Sent => counts.sent = n,
                DeliveryState::GivenUp => counts.given_up = n,
            }
        }
        Ok(OutboxList { messages: rows.into_iter().map(message_api).collect(), counts, next_before })
    }

    /// One message of the outbox.
    pub fn outbox_message(&mut self, id: i64) -> Result<Option<OutboxMessage>> {
        let tx = self.store.read()?;
        Ok(tx.outbox_message(id)?.map(message_api))
    }

    /// Makes a message that failed or was given up due at once again.
    pub fn retry_message(&mut self, id: i64) -> Result<RetryOutcome> {
        let (tx, me) = self.write()?;
        let Some(row) = tx.outbox_message(id)? else { return Ok(RetryOutcome::Unknown) };
        if !tx.retry_message(id, super::wall_now_ms())? {
            return Ok(RetryOutcome::NotWaiting(message_api(row)));
        }
        let row = tx.outbox_message(id)?.ok_or_else(|| NodeError::Refused(format!("outbox message {id} vanished")))?;
        me.commit(tx)?;
        Ok(RetryOutcome::Retried(message_api(row)))
    }

    /// Queues the receipt of `op` again on `channels` (an operator's
    /// request: a parent lost it, or changed address). Each resend is a
    /// message of its own, with a reference of its own.
    pub fn resend_receipt(&mut self, op: &OpId, channels: &[ChannelApi]) -> Result<ResendOutcome> {
        let (tx, me) = self.write()?;
        let Some(bytes) = tx.op_bytes(op)? else { return Ok(ResendOutcome::UnknownOperation) };
        let signed = SignedOp::decode(&bytes).map_err(|e| NodeError::Refused(format!("stored operation: {e}")))?;
        if !queue::has_receipt(&signed.op.body) {
            return Ok(ResendOutcome::NoReceipt);
        }
        if !tx.money_op(op)?.is_some_and(|m| m.counts) {
            return Ok(ResendOutcome::NotCounting);
        }
        let Some((contacts, notice)) = queue::receipt_notice(&tx, &me.ctx, &signed, &|_| true, None)? else {
            return Ok(ResendOutcome::NoAddress(channels.first().copied().unwrap_or(ChannelApi::Email)));
        };
        let lang: Lang = contacts.language();
        let mut queued = Vec::new();
        for &wanted in channels {
            let channel = channel_of(wanted);
            let recipient = match channel {
                Channel::Email => contacts.email.as_ref(),
                Channel::Sms => contacts.phone.as_ref(),
            };
            let Some(recipient) = recipient else { return Ok(ResendOutcome::NoAddress(wanted)) };
            let mut message =
                queue::receipt_message(op, Purpose::Resend, channel, recipient.as_str(), lang, &notice, &tx)?;
            let nth = tx.resends_of(&op.0, channel)? + 1;
            message.reference = queue::reference(&tx, &op.0, Purpose::Resend, channel, nth)?;
            if let Some(id) = tx.queue_message(&message, super::wall_now_ms())?
                && let Some(row) = tx.outbox_message(id)?
            {
                queued.push(message_api(row));
            }
        }
        me.commit(tx)?;
        Ok(ResendOutcome::Queued(queued))
    }
}
