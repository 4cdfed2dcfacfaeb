//! Cash points: `enroll`, `revoke`, `limits`, `escrow`.

use super::OutputError;
use super::args::{EnrollArgs, EscrowArgs, LimitsArgs, RevokeArgs};
use super::open;
use super::render::print_json;
use anyhow::Context as _;
use anyhow::{Result, bail};
use saldo_sync::{Amount, Label, Pan, ServiceId};
use std::io::Write;

pub(super) fn enroll(args: EnrollArgs) -> Result<()> {
    let mut node = open(&args.data.data)?;
    let name = Label::parse_as(&args.name, "cash point name")?;
    let limits = saldo_sync::OfflineLimits {
        per_operation: Amount::parse(&args.per_operation).context("--per-operation")?,
        unconfirmed_total: saldo_sync::Balance::parse(&args.unconfirmed_total).context("--unconfirmed-total")?,
        offline_secs_max: args
            .offline_hours
            .checked_mul(3600)
            .context("--offline-hours is too large: at most 1,193,046 hours")?,
    };
    crate::node::check_limits(&limits)?;
    let hub: Vec<crate::net::PeerAddr> =
        node.addresses(crate::node::META_LISTEN)?.iter().filter_map(|a| a.parse().ok()).collect();
    if hub.is_empty() {
        bail!(
            "the hub has never run: start it with `saldo hub --data {}` first, so the token can carry its address",
            args.data.data.display()
        );
    }
    let replaces = args
        .replaces
        .as_deref()
        .map(|id| {
            saldo_sync::AuthorId::from_hex(id)
                .map_err(|e| anyhow::anyhow!("--replaces {id:?} is not a device id (64 hex digits): {e}"))
        })
        .transpose()?;
    let secret = match replaces {
        Some(old) => node.create_replacement_token(&name, limits, old)?,
        None => node.create_enrolment_token(&name, limits)?,
    };
    let token = crate::net::EnrolmentToken { realm: node.realm(), hub, secret }.encode();
    if args.json.json {
        print_json(&serde_json::json!({ "name": name.as_str(), "token": token }))?;
    } else {
        if let Some(old) = &args.replaces {
            outln!(
                "{old} is revoked; the new cash point's receipt numbers continue after the highest the hub holds of it"
            );
        }
        outln!("enrolment token for {:?} (valid once):\n\n{token}\n", name.as_str());
        outln!("on the cash point: saldo cashpoint --data DIR --join {token}");
    }
    Ok(())
}

pub(super) fn revoke(args: RevokeArgs) -> Result<()> {
    let mut node = open(&args.data.data)?;
    let device = saldo_sync::AuthorId::from_hex(&args.device)
        .map_err(|e| anyhow::anyhow!("--device {:?} is not a device id (64 hex digits): {e}", args.device))?;
    let reason = Label::parse_as(&args.reason, "reason")?;
    let op = node.revoke(device, &reason)?;
    if args.json.json {
        print_json(&serde_json::json!({ "device": args.device, "revocation": op.id.to_hex() }))?;
    } else {
        outln!("revoked {}: operations it records from now on are flagged for review", args.device);
    }
    Ok(())
}

pub(super) fn limits(args: LimitsArgs) -> Result<()> {
    let mut node = open(&args.data.data)?;
    let device = saldo_sync::AuthorId::from_hex(&args.device)
        .map_err(|e| anyhow::anyhow!("--device {:?} is not a device id (64 hex digits): {e}", args.device))?;
    let per_operation = args.per_operation.as_deref().map(Amount::parse).transpose().context("--per-operation")?;
    let unconfirmed_total =
        args.unconfirmed_total.as_deref().map(saldo_sync::Balance::parse).transpose().context("--unconfirmed-total")?;
    let offline_secs = args
        .offline_hours
        .map(|h| h.checked_mul(3600).context("--offline-hours is too large: at most 1,193,046 hours"))
        .transpose()?;
    let limits = node.change_limits(device, per_operation, unconfirmed_total, offline_secs)?;
    if args.json.json {
        print_json(&serde_json::json!({
            "device": args.device,
            "per_operation": limits.per_operation.to_string(),
            "unconfirmed_total": limits.unconfirmed_total.to_string(),
            "offline_hours": limits.offline_secs_max / 3600,
        }))?;
    } else {
        outln!(
            "limits of {}: {} EUR per operation, {} EUR awaiting the hub, {} h without news from the hub (in force on the device once it syncs)",
            args.device,
            limits.per_operation,
            limits.unconfirmed_total,
            limits.offline_secs_max / 3600
        );
    }
    Ok(())
}

pub(super) fn escrow(args: EscrowArgs) -> Result<()> {
    let mut node = open(&args.data.data)?;
    let device = saldo_sync::AuthorId::from_hex(&args.device)
        .map_err(|e| anyhow::anyhow!("--device {:?} is not a device id (64 hex digits): {e}", args.device))?;
    let pan = Pan::parse(&args.pan)?;
    let service = args.service.as_deref().map(ServiceId::parse).transpose()?;
    let amount = Amount::parse(&args.amount)?;
    let (consumer, service) = node.resolve_wallet(&pan, service.as_ref())?;
    let wallet = saldo_sync::WalletKey { consumer: consumer.consumer, service: service.clone() };
    let op = node.grant_escrow(device, wallet, amount)?;
    if args.json.json {
        print_json(
            &serde_json::json!({ "grant": op.id.to_hex(), "device": args.device, "service": service.as_str(), "amount": amount }),
        )?;
    } else {
        outln!(
            "device {} may charge {amount} EUR more on {} {}'s {service} wallet",
            &args.device[..16],
            consumer.name,
            consumer.surname
        );
    }
    Ok(())
}
