//! The hub's outbox as the operators see it: every message to a family (a
//! receipt, a reminder, a receipt sent again), where its delivery stands,
//! and the requests to retry one or to send a receipt again.

use serde::{Deserialize, Serialize};

use crate::{ApiError, Lang};

/// Most messages in one page of `GET /outbox`.
pub const OUTBOX_PAGE_MAX: u32 = 500;
/// Messages in a page when `limit` is absent.
pub const OUTBOX_PAGE_DEFAULT: u32 = 50;

/// How a message reaches a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChannelApi {
    Email,
    Sms,
}

/// Why a message is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PurposeApi {
    /// The receipt of an operation on money.
    Receipt,
    /// A balance crossed a reminder threshold of its service.
    Reminder,
    /// An operator asked to send a receipt again.
    Resend,
}

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStateApi {
    /// Waiting for its first attempt.
    Queued,
    /// An attempt failed; it is tried again at `next_attempt_at_ms`.
    Failing,
    /// The server (SMTP, SMS gateway) accepted it.
    Sent,
    /// Attempts stopped: retry it by hand.
    GivenUp,
}

impl DeliveryStateApi {
    /// As typed on the command line: `queued`, `failing`, `sent`, `given-up`.
    pub fn parse(text: &str) -> Option<DeliveryStateApi> {
        match text.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "queued" => Some(DeliveryStateApi::Queued),
            "failing" => Some(DeliveryStateApi::Failing),
            "sent" => Some(DeliveryStateApi::Sent),
            "given-up" => Some(DeliveryStateApi::GivenUp),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DeliveryStateApi::Queued => "queued",
            DeliveryStateApi::Failing => "failing",
            DeliveryStateApi::Sent => "sent",
            DeliveryStateApi::GivenUp => "given-up",
        }
    }
}

/// One message of the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutboxMessage {
    pub id: i64,
    /// What it is about: the operation's id (hex) for a receipt, a key of
    /// the crossing for a reminder.
    pub about: String,
    pub purpose: PurposeApi,
    pub channel: ChannelApi,
    /// The e-mail address or phone number.
    pub recipient: String,
    pub language: Lang,
    /// The e-mail's subject (empty for an SMS).
    pub subject: String,
    pub body_text: String,
    pub body_html: Option<String>,
    /// The e-mail's Message-ID or the SMS reference: the same on every attempt.
    pub reference: String,
    /// When what it is about was recorded.
    pub recorded_at_ms: u64,
    pub queued_at_ms: u64,
    pub state: DeliveryStateApi,
    pub attempts: u32,
    pub next_attempt_at_ms: u64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    pub sent_at_ms: Option<u64>,
}

/// How many messages stand in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutboxCounts {
    pub queued: u64,
    pub failing: u64,
    pub sent: u64,
    pub given_up: u64,
}

/// A page of the outbox, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutboxList {
    pub messages: Vec<OutboxMessage>,
    pub counts: OutboxCounts,
    /// Pass as `before` for the next page; absent on the last.
    pub next_before: Option<i64>,
}

/// `GET /outbox?state=&before=&limit=`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct OutboxListParams {
    /// Only messages in this state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<DeliveryStateApi>,
    /// Only messages older than this id (the previous page's `next_before`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<i64>,
    /// At most this many (1 to 500, 50 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

impl OutboxListParams {
    pub fn validate(&self) -> Result<(), ApiError> {
        if let Some(limit) = self.limit
            && !(1..=OUTBOX_PAGE_MAX).contains(&limit)
        {
            return Err(ApiError::invalid(
                "limit",
                format!("limit is {limit}: ask for 1 to {OUTBOX_PAGE_MAX} messages"),
            ));
        }
        if let Some(before) = self.before
            && before < 1
        {
            return Err(ApiError::invalid("before", "before is a message id, 1 or more, as next_before gives"));
        }
        Ok(())
    }

    pub fn limit_or_default(&self) -> u32 {
        self.limit.unwrap_or(OUTBOX_PAGE_DEFAULT).clamp(1, OUTBOX_PAGE_MAX)
    }
}

/// `POST /receipts/{op}/resend`: send a receipt again on these channels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResendRequest {
    /// One or both of `email`, `sms`: each must be a contact the family gave.
    pub channels: Vec<ChannelApi>,
}

impl ResendRequest {
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.channels.is_empty() {
            return Err(ApiError::invalid("channels", "name the channels to send on: email, sms or both"));
        }
        if self.channels.len() > 2 || (self.channels.len() == 2 && self.channels[0] == self.channels[1]) {
            return Err(ApiError::invalid("channels", "name each channel once: email, sms or both"));
        }
        Ok(())
    }
}

/// The messages a resend queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResendReport {
    pub queued: Vec<OutboxMessage>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_requests_refuse_what_the_server_would() {
        assert!(OutboxListParams { limit: Some(OUTBOX_PAGE_MAX), ..Default::default() }.validate().is_ok());
        let over = OutboxListParams { limit: Some(OUTBOX_PAGE_MAX + 1), ..Default::default() }.validate();
        assert_eq!(over.unwrap_err().field.as_deref(), Some("limit"));
        assert!(ResendRequest { channels: vec![] }.validate().is_err());
        assert!(ResendRequest { channels: vec![ChannelApi::Sms, ChannelApi::Sms] }.validate().is_err());
        assert!(ResendRequest { channels: vec![ChannelApi::Email, ChannelApi::Sms] }.validate().is_ok());
        assert_eq!(DeliveryStateApi::parse("given_up"), Some(DeliveryStateApi::GivenUp));
    }
}
