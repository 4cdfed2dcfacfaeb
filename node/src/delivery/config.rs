//! The outbox's settings in `saldo.toml` (`[email]`, `[sms]`, `[outbox]`),
//! checked when the hub starts: a wrong value is refused there, naming the
//! key and what to write, never on the first receipt.
//!
//! ```toml
//! [email]
//! host = "smtp.comune.example"
//! port = 587                       # default: 587 starttls, 465 tls, 25 plain
//! security = "starttls"            # "tls" (implicit TLS), or "plain" for a relay on this machine
//! username = "saldo"               # or SALDO_SMTP_USERNAME
//! password = "..."                 # better: SALDO_SMTP_PASSWORD in the environment
//! from = "Comune di Esempio <servizi.scolastici@comune.example>"
//!
//! [sms]
//! url = "https://sms.example/api/send"
//! method = "POST"                  # GET, POST or PUT
//! headers = { Authorization = "Bearer {token}" }   # {token}: SALDO_SMS_TOKEN
//! body = '{"to": "{to}", "text": "{text}", "id": "{reference}"}'
//! encoding = "json"                # or "form": how {to}, {text}, {reference} are escaped in the body
//! success_status = [200, 201]      # default: any 2xx
//! success_contains = "\"ok\""      # optional: the reply must contain this too
//!
//! [outbox]
//! retry_first_ms = 30000           # the first retry; doubling up to retry_max_ms
//! retry_max_ms = 3600000
//! give_up_after_ms = 259200000     # three days after it was queued
//! attempts_max = 100
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

/// A setting that cannot work, with the key that holds it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("saldo.toml, {key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError { key: key.to_string(), message: message.into() }
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain connection upgraded with STARTTLS (required), port 587.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS), port 465.
    Tls,
    /// No encryption: only for a relay on this machine or a trusted LAN.
    Plain,
}

/// `[email]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    pub host: Option<String>,
    pub port: Option<u16>,
    #[serde(default)]
    pub security: Security,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: Option<String>,
    pub timeout_ms: Option<u64>,
    pub connections_max: Option<u32>,
}

/// How values are escaped in the SMS gateway's body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyEncoding {
    /// Inside a JSON string (the template holds the quotes).
    #[default]
    Json,
    /// `application/x-www-form-urlencoded` values.
    Form,
}

/// `[sms]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsSettings {
    pub url: Option<String>,
    pub method: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    #[serde(default)]
    pub encoding: BodyEncoding,
    pub success_status: Option<Vec<u16>>,
    pub success_contains: Option<String>,
    pub timeout_ms: Option<u64>,
}

/// `[outbox]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxSettings {
    pub retry_first_ms: Option<u64>,
    pub retry_max_ms: Option<u64>,
    pub give_up_after_ms: Option<u64>,
    pub attempts_max: Option<u32>,
    pub concurrency: Option<u32>,
    pub poll_ms: Option<u64>,
}

/// When a failed message is tried again, and when attempts stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub retry_first_ms: u64,
    pub retry_max_ms: u64,
    pub give_up_after_ms: u64,
    pub attempts_max: u32,
    /// Messages in flight at once.
    pub concurrency: u32,
    /// How often the outbox is looked at when nothing wakes the sender
    /// (a retry asked for by another process).
    pub poll_ms: u64,
}

pub const RETRY_FIRST_MS_DEFAULT: u64 = 30_000;
pub const RETRY_MAX_MS_DEFAULT: u64 = 3_600_000;
pub const GIVE_UP_AFTER_MS_DEFAULT: u64 = 3 * 24 * 3_600_000;
pub const ATTEMPTS_MAX_DEFAULT: u32 = 100;
pub const CONCURRENCY_DEFAULT: u32 = 8;
pub const CONCURRENCY_MAX: u32 = 64;
pub const POLL_MS_DEFAULT: u64 = 1_000;

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            retry_first_ms: RETRY_FIRST_MS_DEFAULT,
            retry_max_ms: RETRY_MAX_MS_DEFAULT,
            give_up_after_ms: GIVE_UP_AFTER_MS_DEFAULT,
            attempts_max: ATTEMPTS_MAX_DEFAULT,
            concurrency: CONCURRENCY_DEFAULT,
            poll_ms: POLL_MS_DEFAULT,
        }
    }
}

impl RetryPolicy {
    pub fn from_settings(settings: &OutboxSettings) -> Result<RetryPolicy, ConfigError> {
        let d = RetryPolicy::default();
        let policy = RetryPolicy {
            retry_first_ms: settings.retry_first_ms.unwrap_or(d.retry_first_ms),
            retry_max_ms: settings.retry_max_ms.unwrap_or(d.retry_max_ms),
            give_up_after_ms: settings.give_up_after_ms.unwrap_or(d.give_up_after_ms),
            attempts_max: settings.attempts_max.unwrap_or(d.attempts_max),
            concurrency: settings.concurrency.unwrap_or(d.concurrency),
            poll_ms: settings.poll_ms.unwrap_or(d.poll_ms),
        };
        if policy.retry_first_ms == 0 {
            return Err(ConfigError::new("[outbox] retry_first_ms", "write a delay of at least 1 ms (default 30000)"));
        }
        if policy.retry_max_ms < policy.retry_first_ms {
            return Err(ConfigError::new(
                "[outbox] retry_max_ms",
                format!("must be at least retry_first_ms ({})", policy.retry_first_ms),
            ));
        }
        if policy.attempts_max == 0 {
            return Err(ConfigError::new("[outbox] attempts_max", "write at least 1 (default 100)"));
        }
        if !(1..=CONCURRENCY_MAX).contains(&policy.concurrency) {
            return Err(ConfigError::new(
                "[outbox] concurrency",
                format!("write a number from 1 to {CONCURRENCY_MAX} (default {CONCURRENCY_DEFAULT})"),
            ));
        }
        if !(10..=60_000).contains(&policy.poll_ms) {
            return Err(ConfigError::new("[outbox] poll_ms", "write a number from 10 to 60000 (default 1000)"));
        }
        Ok(policy)
    }

    /// After the `attempts`-th failed attempt at a message queued at
    /// `queued_ms`: when to try again, or `None` to give up. The delay
    /// doubles from `retry_first_ms` up to `retry_max_ms`.
    pub fn retry_at_ms(&self, attempts: u32, queued_ms: u64, now_ms: u64) -> Option<u64> {
        if attempts >= self.attempts_max {
            return None;
        }
        let doublings = attempts.saturating_sub(1).min(40);
        let delay_ms = self.retry_first_ms.saturating_mul(1u64 << doublings).min(self.retry_max_ms);
        let at_ms = now_ms.saturating_add(delay_ms);
        (at_ms.saturating_sub(queued_ms) <= self.give_up_after_ms).then_some(at_ms)
    }
}

/// What the hub's outbox reads in `saldo.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DeliverySettings {
    pub email: Option<EmailSettings>,
    pub sms: Option<SmsSettings>,
    pub outbox: Option<OutboxSettings>,
}

/// Reads the environment variable `name`; tests pass their own.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process's environment (an empty value counts as unset).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_message_waits_twice_as_long_each_time_up_to_the_cap_then_is_given_up() {
        let policy = RetryPolicy {
            retry_first_ms: 1_000,
            retry_max_ms: 8_000,
            give_up_after_ms: 60_000,
            attempts_max: 10,
            ..RetryPolicy::default()
        };
        let waits: Vec<u64> = (1..=6).map(|n| policy.retry_at_ms(n, 0, 0).expect("retried")).collect();
        assert_eq!(waits, vec![1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
        assert_eq!(policy.retry_at_ms(10, 0, 0), None, "attempts_max reached");
        assert_eq!(policy.retry_at_ms(2, 0, 58_500), None, "the retry would fall past give_up_after_ms");
        assert_eq!(policy.retry_at_ms(2, 0, 58_000), Some(60_000));
        assert_eq!(policy.retry_at_ms(u32::MAX - 1, 0, 0), None);
    }

    #[test]
    fn outbox_settings_out_of_range_name_the_key() {
        let bad = |s: OutboxSettings| RetryPolicy::from_settings(&s).expect_err("refused").key;
        assert_eq!(bad(OutboxSettings { retry_first_ms: Some(0), ..Default::default() }), "[outbox] retry_first_ms");
        assert_eq!(
            bad(OutboxSettings { retry_first_ms: Some(10), retry_max_ms: Some(5), ..Default::default() }),
            "[outbox] retry_max_ms"
        );
        assert_eq!(bad(OutboxSettings { concurrency: Some(65), ..Default::default() }), "[outbox] concurrency");
        assert_eq!(RetryPolicy::from_settings(&OutboxSettings::default()), Ok(RetryPolicy::default()));
    }
}
