//! What a node shows of its data: receipts, consumers, wallets, movements, balances, and the functions
//! that build them.

use super::{Me, Result};
use crate::store::{ConsumerRow, MovementRow, Tx};
use saldo_sync::{Amount, Balance, Body, ConsumerId, Pan, ServiceId, SignedOp};

/// What a recorded top-up gives back: everything its receipt shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Receipt {
    pub realm: String,
    pub cash_point: String,
    pub operator: Option<String>,
    pub receipt_number: u64,
    pub recorded_at_ms: u64,
    pub consumer: String,
    pub pan_masked: String,
    pub method: &'static str,
    pub lines: Vec<ReceiptLine>,
    pub total: String,
    /// True while the hub has not confirmed the operation.
    pub provisional: bool,
    /// Anyone can check this against the hub: the operation's id.
    pub verification_code: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ReceiptLine {
    pub service: String,
    pub amount: Amount,
    pub balance_after: Balance,
}

/// A consumer as search shows them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConsumerView {
    pub consumer: String,
    pub surname: String,
    pub name: String,
    pub pan: String,
    pub fiscal_code: String,
    pub school: Option<String>,
    pub class: Option<String>,
    pub services: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct WalletView {
    pub service: String,
    pub confirmed: Balance,
    pub provisional: Balance,
    pub movements: Vec<MovementView>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct MovementView {
    pub operation: String,
    pub kind: String,
    pub receipt: Option<u64>,
    pub method: Option<String>,
    pub recorded_at_ms: u64,
    pub amount: Balance,
    pub status: &'static str,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BalanceView {
    pub consumer: ConsumerView,
    pub wallets: Vec<WalletView>,
}

/// One line of a multi-wallet top-up, before it is recorded.
#[derive(Debug, Clone)]
pub struct TopUpRequestLine {
    pub consumer: ConsumerId,
    pub service: ServiceId,
    pub amount: Amount,
}

impl Me {
    pub(super) fn receipt_in(&self, tx: &Tx<'_>, signed: &SignedOp) -> Result<Receipt> {
        let Body::TopUp(top_up) = &signed.op.body else { unreachable!("receipts are made for top-ups") };
        let money = tx.money_op(&signed.id)?.expect("a recorded top-up is a money operation");
        let first = top_up.lines.first().expect("a top-up has at least one line");
        let consumer = tx.consumer(&first.wallet.consumer)?.expect("the consumer was checked before recording");
        let pan_masked = Pan::parse(&consumer.pan).map(|p| p.masked()).unwrap_or_default();
        let cash_point = tx.author(&signed.op.author)?.map(|a| a.name).unwrap_or_default();
        let mut lines = Vec::new();
        let mut total = 0i64;
        for line in &top_up.lines {
            let wallet = tx.wallet(&line.wallet.consumer, &line.wallet.service)?;
            total += line.amount.minor();
            lines.push(ReceiptLine {
                service: line.wallet.service.to_string(),
                amount: line.amount,
                balance_after: if money.counts { wallet.confirmed } else { wallet.provisional },
            });
        }
        Ok(Receipt {
            realm: self.realm_name.clone(),
            cash_point,
            operator: top_up.operator.as_ref().map(|o| o.to_string()),
            receipt_number: top_up.receipt.0,
            recorded_at_ms: signed.op.hlc.wall_ms(),
            consumer: format!("{} {}", consumer.name, consumer.surname),
            pan_masked,
            method: top_up.method.name(),
            lines,
            total: Balance::from_minor(total).map(|b| b.to_string()).unwrap_or_default(),
            provisional: !money.counts,
            verification_code: signed.id.to_hex(),
        })
    }
}

pub(super) fn consumer_view(tx: &Tx<'_>, row: ConsumerRow) -> Result<ConsumerView> {
    let services = tx.consumer_services(&row.consumer)?.into_iter().map(|s| s.to_string()).collect();
    Ok(ConsumerView {
        consumer: row.consumer.to_hex(),
        surname: row.surname,
        name: row.name,
        pan: row.pan,
        fiscal_code: row.fiscal_code,
        school: row.school,
        class: row.class,
        services,
    })
}

pub(super) fn movement_view(row: MovementRow) -> MovementView {
    let status = if row.counts {
        "confirmed"
    } else if row.counts_provisional {
        "provisional"
    } else {
        match row.verdict.as_deref() {
            Some("flagged") => "flagged",
            Some("review-rejected") => "rejected",
            Some(_) => "reversed",
            None => "awaiting the hub",
        }
    };
    MovementView {
        operation: row.op.to_hex(),
        kind: row.kind,
        receipt: row.receipt,
        method: row.method,
        recorded_at_ms: row.hlc >> 16,
        amount: Balance::from_minor(row.delta_minor).unwrap_or(Balance::ZERO),
        status,
        reason: row.reason,
    }
}
