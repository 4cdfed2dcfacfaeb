//! The hub's outbox: every message to a family (a receipt, a reminder), queued
//! in the transaction that stored what it is about, and its delivery state.
//!
//! A message is never lost: it is written with the operation. It is sent
//! once per purpose and channel (`outbox_once`); its `reference` (the
//! e-mail's Message-ID, the SMS gateway's reference) is fixed when it is
//! queued, so the one duplicate a crash can cause (the hub dies between the
//! server accepting a message and the hub recording that) carries the same
//! reference as the first copy.

use rusqlite::{OptionalExtension, Row, params};

use super::{Result, Tx};

/// Receipts queued as data, written out when read: rendering an e-mail
/// with its HTML and an SMS inside the hub's ingest transaction took the
/// hub's bulk ingest from 0.56 of raw verification to 0.08
/// (`saldo-bench foundation`: 154 µs of CPU and 6 KB written per operation).
pub(super) const NOTICE_SCHEMA: &str = r#"
ALTER TABLE outbox ADD COLUMN notice TEXT;
"#;

/// Receipts due: one small row per operation that started to count at the
/// hub, written in the ingest transaction (its row in `ops` and the
/// confirmed balances its lines left), and expanded into the outbox's
/// messages after the commit (`outbox::queue::expand_due`). Writing the
/// messages themselves there took the hub's bulk ingest from 0.56 of raw
/// verification to 0.10–0.13 (`saldo-bench foundation`).
pub(super) const RECEIPTS_DUE_SCHEMA: &str = r#"
CREATE TABLE receipts_due (
    op_row INTEGER PRIMARY KEY,   -- the operation's row in ops
    balances TEXT NOT NULL        -- confirmed balance after it of each of its lines, in cents, comma-separated
) STRICT;
"#;

/// Receipts due written 64 to a row (`receipts` holds
/// `op_row:balance,balance;op_row:balance;...`): a row per receipt was 3–4%
/// of the hub's storing thread in a bulk ingest (`perf` over `saldo-bench
/// foundation`). The expander takes and deletes whole rows.
pub(super) const RECEIPTS_DUE_GROUPED_SCHEMA: &str = r#"
CREATE TABLE receipts_due_groups (
    id INTEGER PRIMARY KEY,   -- in the order they were noted
    receipts TEXT NOT NULL
) STRICT;
INSERT INTO receipts_due_groups (receipts) SELECT op_row || ':' || balances FROM receipts_due ORDER BY op_row;
DROP TABLE receipts_due;
"#;

pub(super) const SCHEMA: &str = r#"
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    about BLOB NOT NULL,           -- what the message is about: an operation's id, or a reminder's key
    purpose TEXT NOT NULL,         -- 'receipt', 'reminder' or 'resend' (asked for by an operator)
    channel TEXT NOT NULL,         -- 'email' or 'sms'
    recipient TEXT NOT NULL,       -- an e-mail address or a phone number
    language TEXT NOT NULL,        -- 'it' or 'en'
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT,
    reference TEXT NOT NULL UNIQUE,
    recorded_ms INTEGER NOT NULL,  -- when what it is about happened (a receipt: when it was recorded)
    queued_ms INTEGER NOT NULL,
    state TEXT NOT NULL,           -- 'queued', 'failing', 'sent' or 'given-up'
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    last_error TEXT,
    sent_ms INTEGER
) STRICT;
CREATE UNIQUE INDEX outbox_once ON outbox (about, purpose, channel) WHERE purpose != 'resend';
CREATE INDEX outbox_due ON outbox (next_attempt_ms) WHERE state IN ('queued', 'failing');
CREATE INDEX outbox_by_state ON outbox (state, id);
"#;

/// How a message reaches a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub fn name(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
    fn parse(text: &str) -> rusqlite::Result<Channel> {
        match text {
            "email" => Ok(Channel::Email),
            "sms" => Ok(Channel::Sms),
            other => Err(bad_text("channel", other)),
        }
    }
}

/// Why a message is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// The receipt of an operation on money the hub stored.
    Receipt,
    /// A balance crossed one of its service's reminder thresholds.
    Reminder,
    /// An operator asked to send a receipt again.
    Resend,
}

impl Purpose {
    pub fn name(self) -> &'static str {
        match self {
            Purpose::Receipt => "receipt",
            Purpose::Reminder => "reminder",
            Purpose::Resend => "resend",
        }
    }
    fn parse(text: &str) -> rusqlite::Result<Purpose> {
        match text {
            "receipt" => Ok(Purpose::Receipt),
            "reminder" => Ok(Purpose::Reminder),
            "resend" => Ok(Purpose::Resend),
            other => Err(bad_text("purpose", other)),
        }
    }
}

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Waiting for its first attempt.
    Queued,
    /// An attempt failed; it is tried again at `next_attempt_ms`.
    Failing,
    /// The server (SMTP, SMS gateway) accepted it.
    Sent,
    /// Attempts stopped; an operator may retry it by hand.
    GivenUp,
}

impl DeliveryState {
    pub fn name(self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Failing => "failing",
            DeliveryState::Sent => "sent",
            DeliveryState::GivenUp => "given-up",
        }
    }
    pub fn parse(text: &str) -> Option<DeliveryState> {
        match text {
            "queued" => Some(DeliveryState::Queued),
            "failing" => Some(DeliveryState::Failing),
            "sent" => Some(DeliveryState::Sent),
            "given-up" => Some(DeliveryState::GivenUp),
            _ => None,
        }
    }
}

fn bad_text(what: &str, text: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("the outbox holds an unknown {what} {text:?}").into(),
    )
}

/// A receipt due (see `RECEIPTS_DUE_SCHEMA`): the operation's row and
/// bytes (`None`: no longer held), and the confirmed balance each of its
/// lines left, in cents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptDue {
    pub op_row: i64,
    pub bytes: Option<Vec<u8>>,
    pub balances: Vec<i64>,
}

/// A message to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub about: Vec<u8>,
    /// What a receipt says, as data (JSON), when subject and bodies are left
    /// to be written when the message is read (`outbox::materialize`).
    pub notice: Option<String>,
    pub purpose: Purpose,
    pub channel: Channel,
    pub recipient: String,
    pub language: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: Option<String>,
    pub reference: String,
    pub recorded_ms: u64,
}

/// A message of the outbox, with its delivery state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub notice: Option<String>,
    pub about: Vec<u8>,
    pub purpose: Purpose,
    pub channel: Channel,
    pub recipient: String,
    pub language: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: Option<String>,
    pub reference: String,
    pub recorded_ms: u64,
    pub queued_ms: u64,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_ms: u64,
    pub last_error: Option<String>,
    pub sent_ms: Option<u64>,
}

const ROW: &str = "id, about, purpose, channel, recipient, language, subject, body_text, body_html, reference,
     recorded_ms, queued_ms, state, attempts, next_attempt_ms, last_error, sent_ms, notice";

fn outbox_row(r: &Row<'_>) -> rusqlite::Result<OutboxRow> {
    let state: String = r.get(12)?;
    Ok(OutboxRow {
        id: r.get(0)?,
        about: r.get(1)?,
        purpose: Purpose::parse(&r.get::<_, String>(2)?)?,
        channel: Channel::parse(&r.get::<_, String>(3)?)?,
        recipient: r.get(4)?,
        language: r.get(5)?,
        subject: r.get(6)?,
        body_text: r.get(7)?,
        body_html: r.get(8)?,
        reference: r.get(9)?,
        recorded_ms: r.get::<_, i64>(10)? as u64,
        queued_ms: r.get::<_, i64>(11)? as u64,
        state: DeliveryState::parse(&state).ok_or_else(|| bad_text("state", &state))?,
        attempts: r.get::<_, i64>(13)? as u32,
        next_attempt_ms: r.get::<_, i64>(14)? as u64,
        last_error: r.get(15)?,
        sent_ms: r.get::<_, Option<i64>>(16)?.map(|ms| ms as u64),
        notice: r.get(17)?,
    })
}

/// Receipts due written to one row of `receipts_due_groups`: what one
/// transaction of the service's writer turns into messages.
pub const RECEIPTS_DUE_PER_ROW: usize = 64;

impl Tx<'_> {
    /// Notes that the operation at `op_row` counts at the hub and its
    /// receipt is due, with the balances its lines left.
    pub fn receipt_due(&self, op_row: i64, balances: &[i64]) -> Result<()> {
        let mut pending = self.receipts_due_pending.borrow_mut();
        if pending.last().is_none_or(|group| group.1 == RECEIPTS_DUE_PER_ROW) {
            pending.push((String::with_capacity(RECEIPTS_DUE_PER_ROW * 24), 0));
        }
        let (text, count) = pending.last_mut().expect("a group was just made");
        // As `take_receipts_due` reads it: `op_row:b,b;op_row:b`. With
        // `itoa`, not `write!`: `core::fmt` was two thirds of the
        // instructions a receipt due cost the hub's ingest (callgrind).
        let mut digits = itoa::Buffer::new();
        if *count > 0 {
            text.push(';');
        }
        text.push_str(digits.format(op_row));
        text.push(':');
        for (i, balance) in balances.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(digits.format(*balance));
        }
        *count += 1;
        self.receipts_due.set(true);
        Ok(())
    }

    /// Writes the receipts due noted in this transaction, [`RECEIPTS_DUE_PER_ROW`] to a row.
    pub(super) fn flush_receipts_due(&self) -> Result<()> {
        let groups = std::mem::take(&mut *self.receipts_due_pending.borrow_mut());
        for (receipts, _) in groups {
            self.tx.prepare_cached("INSERT INTO receipts_due_groups (receipts) VALUES (?1)")?.execute([receipts])?;
        }
        Ok(())
    }

    /// Takes the receipts due, oldest first: at most `limit` unless the
    /// oldest row holds more (rows are taken whole, and deleted in this
    /// transaction). Each comes with its operation's bytes and the balances
    /// its lines left; an operation no longer held (a restore dropped it)
    /// comes with `None`.
    pub fn take_receipts_due(&self, limit: u32) -> Result<Vec<ReceiptDue>> {
        self.flush_receipts_due()?;
        let mut taken: Vec<(i64, String)> = Vec::new();
        let mut count = 0usize;
        {
            let mut stmt = self.tx.prepare_cached("SELECT id, receipts FROM receipts_due_groups ORDER BY id")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let receipts: String = row.get(1)?;
                let n = receipts.split(';').count();
                if !taken.is_empty() && count + n > limit as usize {
                    break;
                }
                count += n;
                taken.push((row.get(0)?, receipts));
            }
        }
        let mut due = Vec::with_capacity(count);
        for (id, receipts) in taken {
            self.tx.prepare_cached("DELETE FROM receipts_due_groups WHERE id = ?1")?.execute([id])?;
            for receipt in receipts.split(';') {
                let (op_row, balances) = receipt.split_once(':').ok_or_else(|| bad_text("receipt due", receipt))?;
                let op_row: i64 = op_row.parse().map_err(|_| bad_text("receipt due", receipt))?;
                let balances = balances
                    .split(',')
                    .filter(|b| !b.is_empty())
                    .map(|b| b.parse::<i64>().map_err(|_| bad_text("balance due", b)))
                    .collect::<rusqlite::Result<Vec<i64>>>()?;
                let bytes = self
                    .tx
                    .prepare_cached("SELECT bytes FROM ops WHERE row = ?1")?
                    .query_row([op_row], |r| r.get(0))
                    .optional()?;
                due.push(ReceiptDue { op_row, bytes, balances });
            }
        }
        Ok(due)
    }

    /// Whether any receipt is due.
    pub fn any_receipt_due(&self) -> Result<bool> {
        self.flush_receipts_due()?;
        Ok(self.tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM receipts_due_groups)")?.query_row([], |r| r.get(0))?)
    }

    /// Queues `message`, due at once. A message of the same purpose and
    /// channel about the same thing already queued (or sent) is kept and
    /// nothing is added: `None`. (A resend is always added.)
    pub fn queue_message(&self, message: &NewMessage, now_ms: u64) -> Result<Option<i64>> {
        let added = self
            .tx
            .prepare_cached(
                "INSERT INTO outbox (about, purpose, channel, recipient, language, subject, body_text, body_html,
                                     reference, recorded_ms, queued_ms, state, next_attempt_ms, notice)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'queued', ?11, ?12)
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                message.about,
                message.purpose.name(),
                message.channel.name(),
                message.recipient,
                message.language,
                message.subject,
                message.body_text,
                message.body_html,
                message.reference,
                message.recorded_ms as i64,
                now_ms as i64,
                message.notice,
            ])?;
        Ok((added > 0).then(|| self.tx.last_insert_rowid()))
    }

    /// Messages due for an attempt at `now_ms`, oldest due first.
    pub fn due_messages(&self, now_ms: u64, limit: u32) -> Result<Vec<OutboxRow>> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {ROW} FROM outbox WHERE state IN ('queued', 'failing') AND next_attempt_ms <= ?1
             ORDER BY next_attempt_ms, id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![now_ms as i64, limit], outbox_row)?;
        rows.collect::<rusqlite::Result<_>>().map_err(crate::store::StoreError::from)
    }

    /// When the next message waiting is due (queued or failing), if any.
    pub fn next_message_due_ms(&self) -> Result<Option<u64>> {
        self.tx
            .prepare_cached("SELECT MIN(next_attempt_ms) FROM outbox WHERE state IN ('queued', 'failing')")?
            .query_row([], |r| r.get::<_, Option<i64>>(0))
            .map(|ms| ms.map(|ms| ms as u64))
            .map_err(crate::store::StoreError::from)
    }

    /// One message, by its number.
    pub fn outbox_message(&self, id: i64) -> Result<Option<OutboxRow>> {
        self.tx
            .prepare_cached(&format!("SELECT {ROW} FROM outbox WHERE id = ?1"))?
            .query_row([id], outbox_row)
            .optional()
            .map_err(crate::store::StoreError::from)
    }

    /// Messages, newest first, in `state` if given, after `before` (an id) if given.
    pub fn outbox_messages(
        &self,
        state: Option<DeliveryState>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<OutboxRow>> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {ROW} FROM outbox WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR id < ?2)
             ORDER BY id DESC LIMIT ?3"
        ))?;
        let rows = stmt.query_map(params![state.map(DeliveryState::name), before, limit], outbox_row)?;
        rows.collect::<rusqlite::Result<_>>().map_err(crate::store::StoreError::from)
    }

    /// How many messages stand in each state.
    pub fn outbox_counts(&self) -> Result<Vec<(DeliveryState, u64)>> {
        let mut stmt = self.tx.prepare_cached("SELECT state, COUNT(*) FROM outbox GROUP BY state ORDER BY state")?;
        let rows = stmt.query_map([], |r| {
            let state: String = r.get(0)?;
            Ok((DeliveryState::parse(&state).ok_or_else(|| bad_text("state", &state))?, r.get::<_, i64>(1)? as u64))
        })?;
        rows.collect::<rusqlite::Result<_>>().map_err(crate::store::StoreError::from)
    }

    /// Records that the server accepted message `id`.
    pub fn message_sent(&self, id: i64, now_ms: u64) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE outbox SET state = 'sent', attempts = attempts + 1, sent_ms = ?2, last_error = NULL WHERE id = ?1",
            )?
            .execute(params![id, now_ms as i64])?;
        Ok(())
    }

    /// Records a failed attempt at message `id`: tried again at
    /// `retry_at_ms`, or given up when `None`.
    pub fn message_failed(&self, id: i64, error: &str, retry_at_ms: Option<u64>) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE outbox SET state = CASE WHEN ?3 IS NULL THEN 'given-up' ELSE 'failing' END,
                                   attempts = attempts + 1, last_error = ?2, next_attempt_ms = COALESCE(?3, next_attempt_ms)
                 WHERE id = ?1",
            )?
            .execute(params![id, error, retry_at_ms.map(|ms| ms as i64)])?;
        Ok(())
    }

    /// Makes message `id` due at once again (an operator's retry of a
    /// message given up or failing). Returns whether it was waiting for
    /// that: a message sent or queued is left as it is.
    pub fn retry_message(&self, id: i64, now_ms: u64) -> Result<bool> {
        let changed = self
            .tx
            .prepare_cached(
                "UPDATE outbox SET state = 'queued', next_attempt_ms = ?2 WHERE id = ?1 AND state IN ('given-up', 'failing')",
            )?
            .execute(params![id, now_ms as i64])?;
        Ok(changed > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn message(about: u8, channel: Channel, purpose: Purpose) -> NewMessage {
        NewMessage {
            about: vec![about; 32],
            purpose,
            channel,
            recipient: "famiglia@example.org".into(),
            language: "it".into(),
            subject: "Ricevuta".into(),
            body_text: "Ricarica di 20,00 €".into(),
            body_html: None,
            reference: format!("{about}.{}.{}@saldo", purpose.name(), channel.name()),
            recorded_ms: 1_000,
            notice: None,
        }
    }

    #[test]
    fn a_message_is_queued_once_per_purpose_and_channel_and_follows_its_attempts() {
        let mut store = Store::open_in_memory().expect("store");
        let tx = store.write().expect("write");
        let first = tx.queue_message(&message(1, Channel::Email, Purpose::Receipt), 5_000).expect("queue");
        assert!(first.is_some());
        assert_eq!(tx.queue_message(&message(1, Channel::Email, Purpose::Receipt), 6_000).expect("again"), None);
        let sms = tx.queue_message(&message(1, Channel::Sms, Purpose::Receipt), 5_000).expect("sms").expect("added");
        let mut resend = message(1, Channel::Email, Purpose::Resend);
        assert!(tx.queue_message(&resend, 7_000).expect("resend").is_some());
        resend.reference.push_str(".2");
        assert!(tx.queue_message(&resend, 8_000).expect("resend again").is_some());
        assert_eq!(tx.due_messages(5_000, 10).expect("due").len(), 2);
        let first = first.expect("added");
        tx.message_failed(first, "connection refused", Some(9_000)).expect("failed");
        tx.message_failed(sms, "HTTP 500", None).expect("given up");
        let due: Vec<i64> = tx.due_messages(8_500, 10).expect("due").iter().map(|m| m.id).collect();
        assert!(!due.contains(&first) && !due.contains(&sms), "{due:?}");
        assert_eq!(tx.next_message_due_ms().expect("next"), Some(7_000));
        let row = tx.outbox_message(first).expect("row").expect("held");
        assert_eq!(
            (row.state, row.attempts, row.last_error.as_deref()),
            (DeliveryState::Failing, 1, Some("connection refused"))
        );
        assert!(tx.retry_message(sms, 10_000).expect("retry"));
        tx.message_sent(sms, 10_500).expect("sent");
        assert!(!tx.retry_message(sms, 11_000).expect("a sent message stays sent"));
        let sent = tx.outbox_messages(Some(DeliveryState::Sent), None, 10).expect("sent");
        assert_eq!(sent.iter().map(|m| (m.id, m.sent_ms)).collect::<Vec<_>>(), vec![(sms, Some(10_500))]);
        let counts = tx.outbox_counts().expect("counts");
        assert!(
            counts.contains(&(DeliveryState::Queued, 2)) && counts.contains(&(DeliveryState::Sent, 1)),
            "{counts:?}"
        );
    }
}
