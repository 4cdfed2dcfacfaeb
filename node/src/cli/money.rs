//! Money at the counter: `topup`, `balance`, and how receipts and balances are shown.

use super::OutputError;
use super::args::{BalanceArgs, TopupArgs};
use super::open;
use super::render::{format_time, print_json};
use crate::node::{BalanceView, Receipt};
use anyhow::Context as _;
use anyhow::Result;
use saldo_sync::{Amount, Label, Pan, PaymentMethod, ServiceId};
use std::io::Write;

pub(super) fn topup(args: TopupArgs) -> Result<()> {
    // Validate everything the operator typed before touching anything.
    let pan = Pan::parse(&args.pan)?;
    let amount = Amount::parse(&args.amount)?;
    let method = PaymentMethod::parse(&args.method).with_context(|| {
        format!("{:?} is not a payment method: use cash, debit-card, credit-card or other", args.method)
    })?;
    let service = args.service.as_deref().map(ServiceId::from_name).transpose()?;
    let operator = args.operator.as_deref().map(|o| Label::parse_as(o, "operator")).transpose()?;
    let mut node = open(&args.data.data)?;
    let line = node.top_up_line(&pan, service.as_ref(), amount)?;
    let receipt = node.record_top_up(&[line], method, operator.as_ref())?;
    if args.json.json {
        print_json(&receipt)?;
    } else {
        out!("{}", render_receipt(&receipt));
    }
    Ok(())
}

pub(super) fn balance(args: BalanceArgs) -> Result<()> {
    let pan = Pan::parse(&args.pan)?;
    let mut node = open(&args.data.data)?;
    let view = node.balance(&pan)?;
    if args.json.json {
        print_json(&view)?;
    } else {
        out!("{}", render_balance(&view));
    }
    Ok(())
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
    out.push_str(&format!("Consumer:   {}  PAN {}\n", r.consumer, r.pan_masked));
    for line in &r.lines {
        out.push_str(&format!("  {:<20} {:>10} EUR\n", line.service, line.amount.to_string()));
        out.push_str(&format!(
            "  {:<20} {:>10} EUR{}\n",
            "balance after",
            line.balance_after.to_string(),
            if r.provisional { " (provisional)" } else { "" }
        ));
    }
    out.push_str(&format!("Total:      {} EUR  ({})\n", r.total, r.method));
    out.push_str(&format!("Verification code: {}\n{rule}\n", r.verification_code));
    out
}

fn render_balance(view: &BalanceView) -> String {
    let c = &view.consumer;
    let mut out = format!("{} {}  PAN {}  CF {}\n", c.name, c.surname, c.pan, c.fiscal_code);
    for wallet in &view.wallets {
        let provisional = if wallet.provisional != wallet.confirmed {
            format!("  (provisional {} EUR)", wallet.provisional)
        } else {
            String::new()
        };
        out.push_str(&format!("  {:<14} {:>10} EUR{provisional}\n", wallet.service, wallet.confirmed.to_string()));
        for m in &wallet.movements {
            out.push_str(&format!(
                "      {}  {:<14} {:>10}  {}{}\n",
                format_time(m.recorded_at_ms),
                m.kind,
                m.amount.to_string(),
                m.status,
                m.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
            ));
        }
    }
    out
}
