//! What the hub needs to tell families: their chosen channels and language
//! (columns of `contacts`), services' reminder thresholds (a column of
//! `services`), and which thresholds each wallet is below now, so a reminder
//! goes out once per downward crossing (`reminders_below`).

use rusqlite::params;
use saldo_sync::{ConsumerId, ServiceId};

use super::{Result, Tx};

pub(super) const SCHEMA: &str = r#"
ALTER TABLE contacts ADD COLUMN notify TEXT;    -- 'email', 'sms', 'email+sms', 'none'; NULL: every channel given
ALTER TABLE contacts ADD COLUMN language TEXT;  -- 'it', 'en'; NULL: 'it'
ALTER TABLE services ADD COLUMN reminders TEXT; -- thresholds in charges left, highest first: '3,0,-3'
-- A wallet whose confirmed balance is at or below a threshold of its
-- service (tariff x charges): its reminder was queued when it got there,
-- and the row goes when the balance is above again.
CREATE TABLE reminders_below (
    consumer BLOB NOT NULL,
    service TEXT NOT NULL,
    charges INTEGER NOT NULL,
    PRIMARY KEY (consumer, service, charges)
) STRICT, WITHOUT ROWID;
"#;

/// A service's tariff in cents and its reminder thresholds (in charges).
pub type Reminders = (i64, Vec<i32>);

impl Tx<'_> {
    /// The thresholds (in charges) wallet (`consumer`, `service`) is below now.
    pub fn reminders_below(&self, consumer: &ConsumerId, service: &ServiceId) -> Result<Vec<i32>> {
        let mut stmt =
            self.tx.prepare_cached("SELECT charges FROM reminders_below WHERE consumer = ?1 AND service = ?2")?;
        let rows = stmt.query_map(params![&consumer.0[..], service.as_str()], |r| r.get::<_, i32>(0))?;
        rows.collect::<rusqlite::Result<_>>().map_err(crate::store::StoreError::from)
    }

    /// Records whether the wallet is below threshold `charges` now.
    pub fn set_reminder_below(
        &self,
        consumer: &ConsumerId,
        service: &ServiceId,
        charges: i32,
        below: bool,
    ) -> Result<()> {
        let sql = match below {
            true => "INSERT OR IGNORE INTO reminders_below (consumer, service, charges) VALUES (?1, ?2, ?3)",
            false => "DELETE FROM reminders_below WHERE consumer = ?1 AND service = ?2 AND charges = ?3",
        };
        self.tx.prepare_cached(sql)?.execute(params![&consumer.0[..], service.as_str(), charges])?;
        Ok(())
    }

    /// The reminder thresholds of `service` with its tariff in cents, read
    /// without the rest of the service (they are checked on every balance change).
    pub fn service_reminders(&self, service: &ServiceId) -> Result<Option<Reminders>> {
        use rusqlite::OptionalExtension as _;
        if let Some(known) = self.service_reminders.borrow().get(service) {
            return Ok(known.clone());
        }
        let row = self
            .tx
            .prepare_cached("SELECT tariff_minor, reminders FROM services WHERE service = ?1")?
            .query_row([service.as_str()], |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<String>>(1)?)))
            .optional()?;
        let reminders = match row {
            Some((Some(tariff), Some(text))) if !text.is_empty() && tariff > 0 => {
                Some((tariff, crate::directory::parse_reminders(&text).unwrap_or_default()))
            }
            _ => None,
        };
        self.service_reminders.borrow_mut().insert(service.clone(), reminders.clone());
        Ok(reminders)
    }

    /// How many times the message about `about` on `channel` was sent again.
    pub fn resends_of(&self, about: &[u8], channel: crate::store::outbox::Channel) -> Result<u64> {
        self.tx
            .prepare_cached("SELECT COUNT(*) FROM outbox WHERE about = ?1 AND purpose = 'resend' AND channel = ?2")?
            .query_row(params![about, channel.name()], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(crate::store::StoreError::from)
    }
}
