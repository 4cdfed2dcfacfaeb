//! The hub's sender: it takes the outbox's due messages, hands each to the
//! SMTP server or the SMS gateway, and records the outcome.
//!
//! ```text
//!  outbox (SQLite) ──due (a read connection)──► sender task ──► SMTP (lettre) / SMS gateway (HTTP)
//!        ▲                                          │
//!        └── sent / failing (retry at) / given up ◄─┘  one small transaction per batch,
//!            on the writer's bulk queue: a top-up never waits behind it
//! ```
//!
//! - A message is marked sent only after the server accepted it, so a hub
//!   killed in between sends it again on restart, with the same reference
//!   (the e-mail's `Message-ID`): the only duplicate there can be.
//! - Failures are retried with a doubling delay up to a cap, and given up
//!   after a time or a number of attempts (`[outbox]` in `saldo.toml`); the
//!   last error says what to fix, and an operator may retry by hand.
//! - The sender wakes when the node's log grows (a receipt was queued with
//!   it), when the next retry is due, and every `poll_ms` (a retry asked for
//!   by another process on the same data directory).

pub mod config;
pub mod email;
pub mod sms;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use config::{ConfigError, DeliverySettings, RetryPolicy};
pub use email::EmailSender;
pub use sms::SmsSender;

use crate::service::Service;
use crate::store::outbox::{Channel, OutboxRow};

/// Messages read per round.
pub const DUE_BATCH_MAX: u32 = 256;

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What went wrong and what to fix, for the operator.
    pub error: String,
    /// Waiting will not help (a malformed address): given up at once.
    pub permanent: bool,
}

/// What became of one attempt, to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent {
        id: i64,
        at_ms: u64,
    },
    /// Failed: tried again at `retry_at_ms`, or given up when `None`.
    Failed {
        id: i64,
        error: String,
        retry_at_ms: Option<u64>,
    },
}

/// How each channel fared last, for the hub's status and log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelHealth {
    pub sent: u64,
    pub failed: u64,
    /// The last failure, while the channel has not delivered since.
    pub last_error: Option<String>,
}

/// The configured channels and retry policy.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub email: Option<EmailSender>,
    pub sms: Option<SmsSender>,
    pub policy: RetryPolicy,
    health: Arc<Mutex<HashMap<Channel, ChannelHealth>>>,
}

impl Delivery {
    /// Checks the `[email]`, `[sms]` and `[outbox]` settings; a channel
    /// without its section is not configured (its messages fail, saying so,
    /// until it is).
    pub fn from_settings(settings: &DeliverySettings, env: config::Env<'_>) -> Result<Delivery, ConfigError> {
        let email = settings.email.as_ref().map(|s| EmailSender::new(s, env)).transpose()?;
        let sms = settings.sms.as_ref().map(|s| SmsSender::new(s, env)).transpose()?;
        let policy = RetryPolicy::from_settings(&settings.outbox.clone().unwrap_or_default())?;
        Ok(Delivery { email, sms, policy, health: Arc::default() })
    }

    /// How each channel fared so far in this process.
    pub fn health(&self) -> HashMap<Channel, ChannelHealth> {
        self.health.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Each channel as the node's status shows it: configured or not, and
    /// how it has fared since the sender started.
    pub fn channel_states(&self) -> Vec<saldo_api::status::ChannelState> {
        let health = self.health();
        [(Channel::Email, self.email.is_some()), (Channel::Sms, self.sms.is_some())]
            .into_iter()
            .map(|(channel, configured)| {
                let h = health.get(&channel).cloned().unwrap_or_default();
                saldo_api::status::ChannelState {
                    channel: match channel {
                        Channel::Email => saldo_api::outbox::ChannelApi::Email,
                        Channel::Sms => saldo_api::outbox::ChannelApi::Sms,
                    },
                    configured,
                    sent: h.sent,
                    failed: h.failed,
                    last_error: h.last_error,
                }
            })
            .collect()
    }

    /// One attempt at `row`.
    pub async fn attempt(&self, row: &OutboxRow) -> Result<(), Failure> {
        match row.channel {
            Channel::Email => match &self.email {
                Some(email) => email.send(row).await,
                None => Err(Failure {
                    error: "no SMTP server is configured: add an [email] section (host, from) to the hub's saldo.toml \
                            and restart it"
                        .into(),
                    permanent: false,
                }),
            },
            Channel::Sms => match &self.sms {
                Some(sms) => sms.send(row).await,
                None => Err(Failure {
                    error: "no SMS gateway is configured: add an [sms] section (url, body) to the hub's saldo.toml \
                            and restart it"
                        .into(),
                    permanent: false,
                }),
            },
        }
    }

    /// Attempts every message of `due`, at most `policy.concurrency` at
    /// once, and says what became of each.
    pub async fn attempt_all(&self, due: Vec<OutboxRow>) -> Vec<Outcome> {
        let permits = Arc::new(tokio::sync::Semaphore::new(self.policy.concurrency as usize));
        let mut tasks = tokio::task::JoinSet::new();
        for row in due {
            let permit = permits.clone().acquire_owned().await.expect("the semaphore is never closed");
            let this = self.clone();
            tasks.spawn(async move {
                let result = this.attempt(&row).await;
                drop(permit);
                this.outcome(&row, result)
            });
        }
        let mut outcomes = Vec::new();
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(outcome) => outcomes.push(outcome),
                // The message stays due and is tried again next round.
                Err(e) => tracing::error!("an attempt to send a message stopped: {e}"),
            }
        }
        outcomes
    }

    fn outcome(&self, row: &OutboxRow, result: Result<(), Failure>) -> Outcome {
        let now_ms = now_ms();
        let mut health = self.health.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let health = health.entry(row.channel).or_default();
        match result {
            Ok(()) => {
                health.sent += 1;
                health.last_error = None;
                Outcome::Sent { id: row.id, at_ms: now_ms }
            }
            Err(failure) => {
                health.failed += 1;
                let retry_at_ms = if failure.permanent {
                    None
                } else {
                    self.policy.retry_at_ms(row.attempts.saturating_add(1), row.queued_ms, now_ms)
                };
                if health.last_error.as_deref() != Some(failure.error.as_str()) {
                    tracing::warn!(
                        "outbox: message {} ({} to {}) failed: {}{}",
                        row.id,
                        row.channel.name(),
                        row.recipient,
                        failure.error,
                        if retry_at_ms.is_none() { "; given up (`saldo outbox retry` sends it again)" } else { "" }
                    );
                }
                health.last_error = Some(failure.error.clone());
                Outcome::Failed { id: row.id, error: failure.error, retry_at_ms }
            }
        }
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Runs the sender over `service` until `stop` resolves. The batch in
/// flight when it does is finished and recorded first (every attempt has a
/// timeout).
pub async fn run(service: Service, delivery: Delivery, stop: impl std::future::Future<Output = ()>) {
    if let Some(email) = &delivery.email {
        match email.check().await {
            Ok(()) => tracing::info!("outbox: e-mail through {}", email.server()),
            Err(e) => tracing::warn!("outbox: {e}; receipts by e-mail wait until it answers"),
        }
    }
    if let Some(sms) = &delivery.sms {
        tracing::info!("outbox: SMS through the gateway at {}", sms.gateway());
    }
    let mut wake = service.log_changes();
    let mut queued = service.outbox_changes();
    // What the node's status (and `status.json`) shows of each channel.
    let show_health = |delivery: &Delivery| {
        service.run_status().lock().unwrap_or_else(std::sync::PoisonError::into_inner).delivery =
            delivery.channel_states();
    };
    show_health(&delivery);
    tokio::pin!(stop);
    let poll = Duration::from_millis(delivery.policy.poll_ms);
    loop {
        let now_ms = now_ms();
        let due = match service.outbox_due(now_ms, DUE_BATCH_MAX).await {
            Ok(due) => due,
            Err(e) => {
                tracing::error!("outbox: cannot read the messages due: {e}");
                Vec::new()
            }
        };
        if !due.is_empty() {
            let outcomes = delivery.attempt_all(due).await;
            show_health(&delivery);
            if let Err(e) = service.record_outcomes(outcomes).await {
                // Not recorded: those messages are due still, and sent
                // again with the same reference.
                tracing::error!("outbox: cannot record what was sent: {e}");
                tokio::select! { () = &mut stop => return, () = tokio::time::sleep(poll) => {} }
            }
            continue;
        }
        let next_due = service.outbox_next_due().await.ok().flatten();
        let wait = next_due.map_or(poll, |at| Duration::from_millis(at.saturating_sub(now_ms)).min(poll));
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(wait) => {}
            changed = wake.changed() => {
                if changed.is_err() {
                    // The writer is gone: so is the node.
                    return;
                }
            }
            changed = queued.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}
