//! Reminders: a family hears once when a wallet's confirmed balance falls to
//! or below one of its service's thresholds (tariff x charges left: "3 meals
//! left", "none left", "a debt of 3 meals"), and not again for that
//! threshold until the balance has been above it.
//!
//! `state` calls [`balance_changed`] at the hub whenever a wallet's
//! confirmed balance moves, in the same transaction; which thresholds each
//! wallet is below is kept in the store (`reminders_below`), so the rule
//! holds across restarts and whatever order operations and verdicts arrive.
//! When one movement crosses several thresholds, one message goes out, for
//! the lowest.

use saldo_sync::{ConsumerId, OpId, ServiceId};

use super::queue::{family_contacts, reference};
use super::render::{self, ReminderNotice};
use crate::state::{Context, IngestError};
use crate::store::Tx;
use crate::store::outbox::{Channel, NewMessage, Purpose};

/// The thresholds (in charges) a balance of `balance_minor` is at or below,
/// for a service of tariff `tariff_minor`.
pub fn thresholds_reached(balance_minor: i64, tariff_minor: i64, thresholds: &[i32]) -> Vec<i32> {
    thresholds.iter().copied().filter(|&n| balance_minor <= i64::from(n) * tariff_minor).collect()
}

/// Wallet (`consumer`, `service`) changed its confirmed balance at the hub
/// because of operation `cause`: records the thresholds it crossed either
/// way and queues a reminder for a downward crossing.
pub fn balance_changed(
    tx: &Tx<'_>,
    ctx: &Context,
    consumer: &ConsumerId,
    service: &ServiceId,
    cause: &OpId,
) -> Result<(), IngestError> {
    if !ctx.is_hub() {
        return Ok(());
    }
    let Some((tariff_minor, thresholds)) = tx.service_reminders(service)? else { return Ok(()) };
    let balance = tx.wallet(consumer, service)?.confirmed;
    let reached = thresholds_reached(balance.minor(), tariff_minor, &thresholds);
    let held = tx.reminders_below(consumer, service)?;
    for &above in held.iter().filter(|n| !reached.contains(n)) {
        tx.set_reminder_below(consumer, service, above, false)?;
    }
    let crossed: Vec<i32> = reached.iter().copied().filter(|n| !held.contains(n)).collect();
    for &n in &crossed {
        tx.set_reminder_below(consumer, service, n, true)?;
    }
    let Some(&lowest) = crossed.iter().min() else { return Ok(()) };
    let Some(row) = tx.consumer(consumer)? else { return Ok(()) };
    let Some(contacts) = family_contacts(tx, &row.family)? else { return Ok(()) };
    let notice = ReminderNotice {
        realm: ctx.realm_name(tx)?,
        child: format!("{} {}", row.surname, row.name),
        service: tx.service(service)?.map_or_else(|| service.to_string(), |s| s.name.to_string()),
        balance,
        charges: lowest,
    };
    let about = about(consumer, service, lowest, cause);
    let lang = contacts.language();
    for (channel, recipient) in contacts.channels() {
        let (subject, body_text, body_html) = match channel {
            Channel::Email => {
                let email = render::reminder_email(&notice, lang);
                (email.subject, email.text, Some(email.html))
            }
            Channel::Sms => (String::new(), render::reminder_sms(&notice, lang), None),
        };
        let message = NewMessage {
            about: about.to_vec(),
            purpose: Purpose::Reminder,
            channel,
            recipient: recipient.to_string(),
            language: crate::directory::language_name(lang).to_string(),
            subject,
            body_text,
            body_html,
            reference: reference(tx, &about, Purpose::Reminder, channel, 0)?,
            recorded_ms: crate::node::wall_now_ms(),
            notice: None,
        };
        tx.queue_message(&message, crate::node::wall_now_ms())?;
    }
    Ok(())
}

/// What a reminder is about: the wallet, the threshold and the operation
/// that crossed it, hashed (one crossing, one key).
fn about(consumer: &ConsumerId, service: &ServiceId, charges: i32, cause: &OpId) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"saldo reminder v1");
    hasher.update(&consumer.0);
    hasher.update(service.as_str().as_bytes());
    hasher.update(&[0]);
    hasher.update(&charges.to_le_bytes());
    hasher.update(&cause.0);
    *hasher.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_balance_reaches_the_thresholds_at_or_above_it() {
        let thresholds = [3, 0, -3];
        assert_eq!(thresholds_reached(2_000, 500, &thresholds), Vec::<i32>::new());
        assert_eq!(thresholds_reached(1_500, 500, &thresholds), vec![3]);
        assert_eq!(thresholds_reached(0, 500, &thresholds), vec![3, 0]);
        assert_eq!(thresholds_reached(-1_500, 500, &thresholds), vec![3, 0, -3]);
    }
}
