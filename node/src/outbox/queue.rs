//! Receipts queued for the family at the hub, in the transaction in which an
//! operation on money starts to count there.
//!
//! `state` calls [`receipt_counted`] when a top-up, a payment of a due, a
//! reversal or a refund counts at the hub: as it is stored, when the hub
//! recorded it or accepted it on arrival from a cash point, or later, when an
//! operator accepts it in review. A flagged operation is therefore not
//! announced until it is accepted (a family is never told of money that may
//! not count). The outbox keeps one message per operation, purpose and
//! channel, so an operation ingested twice, or counted again after a
//! reversal is itself rejected, queues nothing new.
//!
//! Only the hub queues: it alone holds the families' contacts.

use saldo_sync::{AuthorId, Body, FamilyId, OpId, SignedOp, WalletKey};

use super::render::{self, NoticeKind, NoticeLine, ReceiptNotice};
use crate::directory::ContactRecord;
use crate::state::{Context, IngestError};
use crate::store::outbox::{Channel, NewMessage, Purpose};
use crate::store::{Tx, WalletNum};

/// The kinds of operation whose receipt a family gets.
pub fn has_receipt(body: &Body) -> bool {
    matches!(body, Body::TopUp(_) | Body::DuePayment(_) | Body::Reversal { .. } | Body::Refund(_))
}

/// [`has_receipt`] by the kind's name, as the store keeps it.
pub fn kind_has_receipt(kind: &str) -> bool {
    ["top-up", "due-payment", "reversal", "refund"].contains(&kind)
}

/// Notes that the receipt of `signed` (stored at `op_row`), which has just
/// started to count at the hub, is due, with the confirmed balances its
/// lines left. Its messages, one per channel the family chose, are queued
/// after the commit by [`expand_due`]: this transaction is the hub's ingest,
/// and it writes one small row. Nothing for an operation with no receipt.
///
/// `lines` are the wallets its own lines moved, by number, when the caller
/// has them (a top-up, a payment of a due, a refund: the receipt's lines are
/// the operation's); a reversal's receipt shows the lines of its target.
pub fn receipt_counted(
    tx: &Tx<'_>,
    ctx: &Context,
    signed: &SignedOp,
    op_row: i64,
    lines: Option<&[WalletNum]>,
) -> Result<(), IngestError> {
    if !ctx.is_hub() || !has_receipt(&signed.op.body) {
        return Ok(());
    }
    let balances = match (lines, &signed.op.body) {
        (Some(lines), Body::TopUp(_) | Body::DuePayment(_) | Body::Refund(_)) => {
            lines.iter().map(|num| tx.confirmed_minor(*num)).collect::<Result<Vec<i64>, _>>()?
        }
        _ => {
            let Some(shape) = shape(tx, &signed.op.body)? else { return Ok(()) };
            let mut balances = Vec::with_capacity(shape.lines.len());
            for (wallet, _) in &shape.lines {
                balances.push(tx.wallet(&wallet.consumer, &wallet.service)?.confirmed.minor());
            }
            balances
        }
    };
    tx.receipt_due(op_row, &balances)?;
    Ok(())
}

/// How many receipts due [`expand_due`] turns into messages per transaction.
pub const EXPAND_BATCH: u32 = 512;

/// Queues the messages of up to `limit` receipts due (see
/// [`receipt_counted`]), oldest first, one per channel each family chose,
/// as data (subject and bodies are written when the message is read, see
/// [`materialize`]); returns how many receipts it handled. A family without
/// contacts, or that chose none, gets nothing.
pub fn expand_due(tx: &Tx<'_>, ctx: &Context, limit: u32) -> Result<usize, IngestError> {
    let due = tx.take_receipts_due(limit)?;
    let now = crate::node::wall_now_ms();
    for crate::store::outbox::ReceiptDue { bytes, balances, .. } in &due {
        // (An operation a restore dropped has no receipt to send.)
        let Some(bytes) = bytes else { continue };
        let signed = SignedOp::decode(bytes)?;
        let Some((contacts, notice)) = receipt_notice(tx, ctx, &signed, &|c| !c.channels().is_empty(), Some(balances))?
        else {
            continue;
        };
        let data = serde_json::to_string(&notice).expect("a notice of strings, numbers and amounts serialises");
        for (channel, recipient) in contacts.channels() {
            let message = NewMessage {
                about: signed.id.0.to_vec(),
                purpose: Purpose::Receipt,
                channel,
                recipient: recipient.to_string(),
                language: crate::directory::language_name(contacts.language()).to_string(),
                subject: String::new(),
                body_text: String::new(),
                body_html: None,
                reference: reference(tx, &signed.id.0, Purpose::Receipt, channel, 0)?,
                recorded_ms: notice.recorded_ms,
                notice: Some(data.clone()),
            };
            tx.queue_message(&message, now)?;
        }
    }
    Ok(due.len())
}

/// Writes the subject and bodies of a receipt queued as data (see
/// [`receipt_counted`]), in the message's language and for its channel.
/// A message already written, or whose data does not read (it is then sent
/// as it is, and its empty text says so in the outbox), is left as it is.
pub fn materialize(row: &mut crate::store::outbox::OutboxRow) {
    if !row.body_text.is_empty() {
        return;
    }
    let Some(notice) = row.notice.as_deref().and_then(|data| serde_json::from_str::<ReceiptNotice>(data).ok()) else {
        return;
    };
    let lang = crate::directory::parse_language(&row.language).unwrap_or_default();
    match row.channel {
        Channel::Email => {
            let email = render::receipt_email(&notice, lang);
            (row.subject, row.body_text, row.body_html) = (email.subject, email.text, Some(email.html));
        }
        Channel::Sms => row.body_text = render::receipt_sms(&notice, lang),
    }
}

/// [`receipt_counted`] for an operation held, by id (a verdict changed).
pub fn receipt_counted_by_id(tx: &Tx<'_>, ctx: &Context, id: &OpId, op_row: i64) -> Result<(), IngestError> {
    if !ctx.is_hub() {
        return Ok(());
    }
    let Some(bytes) = tx.op_bytes(id)? else { return Ok(()) };
    let signed = SignedOp::decode(&bytes)?;
    receipt_counted(tx, ctx, &signed, op_row, None)
}

/// The receipt of `signed` as a message on `channel` to `recipient`.
pub fn receipt_message(
    id: &OpId,
    purpose: Purpose,
    channel: Channel,
    recipient: &str,
    lang: saldo_api::Lang,
    notice: &ReceiptNotice,
    tx: &Tx<'_>,
) -> Result<NewMessage, IngestError> {
    let (subject, body_text, body_html) = match channel {
        Channel::Email => {
            let email = render::receipt_email(notice, lang);
            (email.subject, email.text, Some(email.html))
        }
        Channel::Sms => (String::new(), render::receipt_sms(notice, lang), None),
    };
    Ok(NewMessage {
        about: id.0.to_vec(),
        purpose,
        channel,
        recipient: recipient.to_string(),
        language: crate::directory::language_name(lang).to_string(),
        subject,
        body_text,
        body_html,
        reference: reference(tx, &id.0, purpose, channel, 0)?,
        recorded_ms: notice.recorded_ms,
        notice: None,
    })
}

/// The reference of a message: the e-mail's Message-ID
/// (`<hex.purpose.channel@host>`, host from the hub's public address) or
/// the SMS reference, derived from what the message is about, its purpose
/// and channel (and, for the `n`th resend, `n`), so it is the same however
/// often it is computed.
pub fn reference(tx: &Tx<'_>, about: &[u8], purpose: Purpose, channel: Channel, n: u64) -> Result<String, IngestError> {
    let about = hex::encode(&about[..about.len().min(16)]);
    let nth = if n > 0 { format!(".{n}") } else { String::new() };
    Ok(match channel {
        Channel::Email => format!("<{about}.{}{nth}.email@{}>", purpose.name(), public_host(tx)?),
        Channel::Sms => format!("saldo-{about}-{}{nth}", purpose.name()),
    })
}

fn public_url(tx: &Tx<'_>) -> Result<Option<String>, IngestError> {
    let url = tx.meta(crate::node::META_PUBLIC_URL)?.and_then(|b| String::from_utf8(b).ok());
    Ok(url.map(|u| u.trim().trim_end_matches('/').to_string()).filter(|u| !u.is_empty()))
}

/// The host of the hub's public address (`saldo.invalid` without one).
fn public_host(tx: &Tx<'_>) -> Result<String, IngestError> {
    let host = public_url(tx)?.and_then(|url| {
        let rest = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
        let host = rest.split(['/', ':', '?', '#']).next().unwrap_or_default();
        (!host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'))
            .then(|| host.to_ascii_lowercase())
    });
    Ok(host.unwrap_or_else(|| "saldo.invalid".into()))
}

/// A family's contacts, when it has any channel to write to.
pub fn family_contacts(tx: &Tx<'_>, family: &FamilyId) -> Result<Option<ContactRecord>, IngestError> {
    Ok(tx.contact_record(family)?.filter(|c| !c.channels().is_empty()))
}

/// The receipt of `signed` and the contacts of its family, or `None` when
/// the operation has no receipt or its family's contacts are not `wanted`
/// (checked before the receipt is built: most operations stop there).
/// `balances`: the confirmed balance each line left when the operation
/// started to count; `None` shows the balances as they are now (a receipt
/// sent again).
pub fn receipt_notice(
    tx: &Tx<'_>,
    ctx: &Context,
    signed: &SignedOp,
    wanted: &dyn Fn(&ContactRecord) -> bool,
    balances: Option<&[i64]>,
) -> Result<Option<(ContactRecord, ReceiptNotice)>, IngestError> {
    let Some(shape) = shape(tx, &signed.op.body)? else { return Ok(None) };
    let Some((first, _)) = shape.lines.first() else { return Ok(None) };
    let Some(consumer) = tx.consumer(&first.consumer)? else { return Ok(None) };
    let Some(contacts) = tx.contact_record(&consumer.family)?.filter(|c| wanted(c)) else { return Ok(None) };
    let mut lines = Vec::with_capacity(shape.lines.len());
    for (i, (wallet, amount)) in shape.lines.iter().enumerate() {
        let child = match tx.consumer(&wallet.consumer)? {
            Some(row) => format!("{} {}", row.surname, row.name),
            None => wallet.consumer.short(),
        };
        let service = tx.service(&wallet.service)?.map_or_else(|| wallet.service.to_string(), |s| s.name.to_string());
        lines.push(NoticeLine {
            child,
            service,
            amount: *amount,
            balance_after: match balances
                .and_then(|b| b.get(i))
                .and_then(|&minor| saldo_sync::Balance::from_minor(minor))
            {
                Some(balance) => balance,
                None => tx.wallet(&wallet.consumer, &wallet.service)?.confirmed,
            },
        });
    }
    let recorded_ms = signed.op.hlc.wall_ms();
    let verification_url = match (shape.kind, public_url(tx)?) {
        (NoticeKind::Refund, _) | (_, None) => None,
        (_, Some(url)) => Some(format!("{url}/v/{}", crate::node::verification_code(&signed.id))),
    };
    let notice = ReceiptNotice {
        kind: shape.kind,
        realm: ctx.realm_name(tx)?,
        cash_point: cash_point_name(tx, &signed.op.author)?,
        lines,
        method: shape.method.into(),
        receipt_number: shape.receipt,
        recorded_ms,
        recorded_local: crate::node::local_time(recorded_ms),
        verification_url,
    };
    Ok(Some((contacts, notice)))
}

fn cash_point_name(tx: &Tx<'_>, author: &AuthorId) -> Result<String, IngestError> {
    Ok(tx.author(author)?.map(|a| a.name).unwrap_or_default())
}

struct Shape {
    kind: NoticeKind,
    lines: Vec<(WalletKey, saldo_sync::Amount)>,
    method: saldo_sync::PaymentMethod,
    receipt: Option<u64>,
}

/// What a receipt of `body` shows; a reversal shows what it undid (the
/// reversed receipt's lines, method and number). `None`: no receipt (a
/// reversal of a charge, say).
fn shape(tx: &Tx<'_>, body: &Body) -> Result<Option<Shape>, IngestError> {
    Ok(match body {
        Body::TopUp(t) => Some(Shape {
            kind: NoticeKind::TopUp,
            lines: t.lines.iter().map(|l| (l.wallet.clone(), l.amount)).collect(),
            method: t.method,
            receipt: Some(t.receipt.0),
        }),
        Body::DuePayment(p) => Some(Shape {
            kind: NoticeKind::DuePayment,
            lines: vec![(p.wallet.clone(), p.amount)],
            method: p.method,
            receipt: Some(p.receipt.0),
        }),
        Body::Refund(r) => Some(Shape {
            kind: NoticeKind::Refund,
            lines: vec![(r.wallet.clone(), r.amount)],
            method: r.method,
            receipt: None,
        }),
        Body::Reversal { target, .. } => {
            let Some(bytes) = tx.op_bytes(target)? else { return Ok(None) };
            match SignedOp::decode(&bytes)?.op.body {
                body @ (Body::TopUp(_) | Body::DuePayment(_)) => {
                    shape(tx, &body)?.map(|s| Shape { kind: NoticeKind::Reversal, ..s })
                }
                _ => None,
            }
        }
        _ => None,
    })
}

/// A family's choice of channels as the API names it.
pub fn notify_api(notify: crate::directory::Notify) -> saldo_api::directory::NotifyApi {
    use crate::directory::Notify;
    use saldo_api::directory::NotifyApi;
    match notify {
        Notify::Email => NotifyApi::Email,
        Notify::Sms => NotifyApi::Sms,
        Notify::EmailAndSms => NotifyApi::EmailAndSms,
        Notify::Nothing => NotifyApi::None,
    }
}

/// [`notify_api`] the other way.
pub fn notify_of(notify: saldo_api::directory::NotifyApi) -> crate::directory::Notify {
    use crate::directory::Notify;
    use saldo_api::directory::NotifyApi;
    match notify {
        NotifyApi::Email => Notify::Email,
        NotifyApi::Sms => Notify::Sms,
        NotifyApi::EmailAndSms => Notify::EmailAndSms,
        NotifyApi::None => Notify::Nothing,
    }
}
