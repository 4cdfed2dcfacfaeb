//! The hub's outbox for its staff: pages of messages and their delivery
//! state, one message, a retry by hand, and a receipt sent again.

use saldo_api::outbox::{OutboxList, OutboxListParams, OutboxMessage, ResendReport, ResendRequest};
use saldo_sync::OpId;

use super::{Result, Service, ServiceError};
use crate::node::{ResendOutcome, RetryOutcome};

fn unknown_message(id: i64) -> ServiceError {
    ServiceError::not_found(format!("no message {id} in the outbox: list them with GET /outbox or `saldo outbox list`"))
}

impl Service {
    fn require_hub_outbox(&self) -> Result<()> {
        match self.about().is_hub {
            true => Ok(()),
            false => Err(ServiceError::forbidden(
                "only the hub has an outbox (it alone holds the families' contacts): look there",
            )),
        }
    }

    /// A page of the outbox, newest first.
    pub async fn outbox(&self, params: OutboxListParams) -> Result<OutboxList> {
        self.require_hub_outbox()?;
        params.validate().map_err(ServiceError::from)?;
        let limit = params.limit_or_default();
        self.read(move |node| Ok(node.outbox_list(params.state, params.before, limit)?)).await
    }

    /// One message, with its bodies and delivery state.
    pub async fn outbox_message(&self, id: i64) -> Result<OutboxMessage> {
        self.require_hub_outbox()?;
        self.read(move |node| node.outbox_message(id)?.ok_or_else(|| unknown_message(id))).await
    }

    /// Makes a message that is failing or was given up due at once.
    pub async fn retry_message(&self, id: i64) -> Result<OutboxMessage> {
        self.require_hub_outbox()?;
        match self.write(move |node| Ok(node.retry_message(id)?)).await? {
            RetryOutcome::Retried(message) => Ok(message),
            RetryOutcome::Unknown => Err(unknown_message(id)),
            RetryOutcome::NotWaiting(message) => Err(ServiceError::conflict(match message.state {
                saldo_api::outbox::DeliveryStateApi::Sent => format!(
                    "message {id} was sent already: to send the receipt again, use POST /receipts/{}/resend (saldo outbox resend)",
                    message.about
                ),
                _ => format!("message {id} is queued already: it goes out at its next attempt"),
            })),
        }
    }

    /// Queues the receipt of `op` again on the channels asked for.
    pub async fn resend_receipt(&self, op: OpId, request: ResendRequest) -> Result<ResendReport> {
        self.require_hub_outbox()?;
        request.validate().map_err(ServiceError::from)?;
        let outcome = self.write(move |node| Ok(node.resend_receipt(&op, &request.channels)?)).await?;
        match outcome {
            ResendOutcome::Queued(queued) => Ok(ResendReport { queued }),
            ResendOutcome::UnknownOperation => Err(ServiceError::not_found(format!(
                "no operation {} at the hub: check the receipt's verification code or operation id",
                op.to_hex()
            ))),
            ResendOutcome::NoReceipt => Err(ServiceError::invalid(
                "op",
                "this operation has no receipt for the family: only top-ups, payments of dues, reversals and refunds do",
            )),
            ResendOutcome::NotCounting => Err(ServiceError::conflict(
                "the hub has not accepted this operation (it awaits review, was rejected or reversed): review it first",
            )),
            ResendOutcome::NoAddress(channel) => Err(ServiceError::invalid(
                "channels",
                match channel {
                    saldo_api::outbox::ChannelApi::Email => {
                        "the family gave no e-mail address: add one to its contacts, or send by sms"
                    }
                    saldo_api::outbox::ChannelApi::Sms => {
                        "the family gave no phone number: add one to its contacts, or send by email"
                    }
                },
            )),
        }
    }
}
