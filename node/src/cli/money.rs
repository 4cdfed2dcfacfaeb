//! Money at the counter: `topup`, `balance`, and how receipts and balances are shown.

use super::args::{BalanceArgs, TopupArgs};
use super::render::{format_time, print_json};
use super::{OutputError, Session};
use anyhow::Context as _;
use anyhow::Result;
use saldo_api::consumers::{ConsumerDetail, ConsumerSummary};
use saldo_api::payments::{PaymentMethodApi, TopUpLineRequest, TopUpRequest};
use saldo_api::receipt::Receipt;
use saldo_sync::{Amount, Label, Pan, PaymentMethod, ServiceId};
use std::io::Write;

/// The wallet of `consumer` a command means: the service named, or the
/// consumer's only one (the node's own refusals, so they read alike everywhere).
pub(super) fn wallet_of(consumer: &ConsumerSummary, service: Option<&ServiceId>) -> Result<ServiceId> {
    let who = format!("{} {}", consumer.name, consumer.surname);
    let list = || consumer.wallets.iter().map(|w| w.service.as_str()).collect::<Vec<_>>().join(", ");
    let refused = |error: crate::node::NodeError| super::CommandError(crate::service::ServiceError::from(error));
    match service {
        Some(s) if consumer.wallets.iter().any(|w| &w.service == s) => Ok(s.clone()),
        Some(s) => Err(refused(crate::node::NodeError::NotEnrolled {
            consumer: who,
            service: s.to_string(),
            enrolled: list(),
        }))?,
        None => match consumer.wallets.as_slice() {
            [only] => Ok(only.service.clone()),
            [] => Err(refused(crate::node::NodeError::NoWallet(who)))?,
            _ => Err(refused(crate::node::NodeError::ServiceNeeded { consumer: who, services: list() }))?,
        },
    }
}

pub(super) fn topup(args: TopupArgs) -> Result<()> {
    // Validate everything the operator typed before touching anything.
    let pan = Pan::parse(&args.pan)?;
    let amount = Amount::parse(&args.amount)?;
    let method = PaymentMethod::parse(&args.method)
        .filter(|m| *m != PaymentMethod::Other)
        .with_context(|| format!("{:?} is not a payment method: use cash, debit-card or credit-card", args.method))?;
    let service = args.service.as_deref().map(ServiceId::from_name).transpose()?;
    let operator = args.operator.as_deref().map(|o| Label::parse_as(o, "operator")).transpose()?;
    let session = Session::open(&args.data.data)?;
    let consumer = session.call(async |s| s.consumer_by_pan(&pan).await)?;
    let service = wallet_of(&consumer, service.as_ref())?;
    let request = TopUpRequest {
        lines: vec![TopUpLineRequest { consumer: consumer.consumer, service, amount }],
        method: PaymentMethodApi::from(method),
    };
    let receipt = session.call(async |s| s.top_up_by(operator, request).await)?;
    if args.json.json {
        print_json(&receipt)?;
    } else {
        out!("{}", render_receipt(&receipt));
    }
    Ok(())
}

pub(super) fn balance(args: BalanceArgs) -> Result<()> {
    let pan = Pan::parse(&args.pan)?;
    let session = Session::open(&args.data.data)?;
    let consumer = session.call(async |s| s.consumer_by_pan(&pan).await)?;
    let detail = session.call(async |s| s.consumer(consumer.consumer).await)?;
    if args.json.json {
        print_json(&detail)?;
    } else {
        out!("{}", render_balance(&detail));
    }
    Ok(())
}

fn method_name(method: PaymentMethodApi) -> &'static str {
    PaymentMethod::from(method).name()
}

pub fn render_receipt(r: &Receipt) -> String {
    let mut out = String::new();
    let rule = "-".repeat(44);
    out.push_str(&format!("{rule}\n{}\nRICEVUTA / RECEIPT no. {}\n", r.realm, r.receipt_number));
    out.push_str(&format!("Cash point: {}\n", r.cash_point));
    if let Some(operator) = &r.operator {
        out.push_str(&format!("Operator:   {operator}\n"));
    }
    out.push_str(&format!("Date:       {}\n", format_time(r.recorded_at_ms)));
    for line in &r.lines {
        out.push_str(&format!("Consumer:   {}  PAN {}\n", line.consumer_name, line.pan_masked));
        out.push_str(&format!("  {:<20} {:>10} EUR\n", line.service, line.amount.to_string()));
        out.push_str(&format!(
            "  {:<20} {:>10} EUR{}\n",
            "balance after",
            line.balance_after.to_string(),
            if line.provisional { " (provisional)" } else { "" }
        ));
    }
    out.push_str(&format!("Total:      {} EUR  ({})\n", r.total, method_name(r.method)));
    out.push_str(&format!("Verification code: {}\n{rule}\n", r.verification_code));
    out
}

fn render_balance(detail: &ConsumerDetail) -> String {
    let c = &detail.summary;
    let mut out = format!("{} {}  PAN {}  CF {}\n", c.name, c.surname, c.pan, c.fiscal_code);
    for wallet in &detail.wallets {
        let provisional = if wallet.provisional != wallet.confirmed {
            format!("  (provisional {} EUR)", wallet.provisional)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "  {:<14} {:>10} EUR{provisional}\n",
            wallet.service.as_str(),
            wallet.confirmed.to_string()
        ));
        for m in &wallet.movements {
            out.push_str(&format!(
                "      {}  {:<14} {:>10}  {}{}\n",
                format_time(m.recorded_at_ms),
                super::render::snake_words(&m.kind),
                m.amount.to_string(),
                super::render::snake_words(&m.status),
                m.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
            ));
        }
    }
    out
}
