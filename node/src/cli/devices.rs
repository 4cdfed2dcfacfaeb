//! Cash points: `enroll`, `revoke`, `limits`, `escrow`.

use super::args::{EnrollArgs, EscrowArgs, LimitsArgs, RevokeArgs};
use super::render::print_json;
use super::{OutputError, Session};
use anyhow::Context as _;
use anyhow::{Result, bail};
use saldo_api::cash_points::{EnrolmentTokenRequest, EscrowRequest, Limits, LimitsUpdate, RevokeRequest};
use saldo_api::payments::WalletRef;
use saldo_sync::{Amount, AuthorId, Balance, Label, Pan, ServiceId};
use std::io::Write;

fn device_arg(flag: &str, text: &str) -> Result<AuthorId> {
    AuthorId::from_hex(text).map_err(|e| anyhow::anyhow!("{flag} {text:?} is not a device id (64 hex digits): {e}"))
}

pub(super) fn enroll(args: EnrollArgs) -> Result<()> {
    let name = Label::parse_as(&args.name, "cash point name")?;
    let limits = Limits {
        per_operation: Amount::parse(&args.per_operation).context("--per-operation")?,
        unconfirmed_total: Balance::parse(&args.unconfirmed_total).context("--unconfirmed-total")?,
        offline_hours: args.offline_hours,
    };
    let replaces = args.replaces.as_deref().map(|id| device_arg("--replaces", id)).transpose()?;
    let request = EnrolmentTokenRequest { name, limits, replaces };
    request.validate().map_err(|e| super::CommandError(e.into()))?;
    let session = Session::open(&args.data.data)?;
    if session.call(async |s| s.listen_addresses().await)?.is_empty() {
        bail!(
            "the hub has never run: start it with `saldo hub --data {}` first, so the token can carry its address",
            args.data.data.display()
        );
    }
    let enrolment = session.call(async |s| s.enrolment_token(request).await)?;
    if args.json.json {
        print_json(&enrolment)?;
    } else {
        if let Some(old) = &args.replaces {
            outln!(
                "{old} is revoked; the new cash point's receipt numbers continue after the highest the hub holds of it"
            );
        }
        outln!("enrolment token for {:?} (valid once):\n\n{}\n", enrolment.name, enrolment.token);
        outln!("on the cash point: saldo cashpoint --data DIR --join {}", enrolment.token);
    }
    Ok(())
}

pub(super) fn revoke(args: RevokeArgs) -> Result<()> {
    let device = device_arg("--device", &args.device)?;
    let reason = Label::parse_as(&args.reason, "reason")?;
    let session = Session::open(&args.data.data)?;
    let recorded = session.call(async |s| s.revoke(device, RevokeRequest { reason }).await)?;
    if args.json.json {
        print_json(&recorded)?;
    } else {
        outln!("revoked {}: operations it records from now on are flagged for review", args.device);
    }
    Ok(())
}

pub(super) fn limits(args: LimitsArgs) -> Result<()> {
    let device = device_arg("--device", &args.device)?;
    let update = LimitsUpdate {
        per_operation: args.per_operation.as_deref().map(Amount::parse).transpose().context("--per-operation")?,
        unconfirmed_total: args
            .unconfirmed_total
            .as_deref()
            .map(Balance::parse)
            .transpose()
            .context("--unconfirmed-total")?,
        offline_hours: args.offline_hours,
    };
    if update == LimitsUpdate::default() {
        bail!("say which limit to change: --per-operation, --unconfirmed-total or --offline-hours");
    }
    let session = Session::open(&args.data.data)?;
    let limits = session.call(async |s| s.change_limits(device, update).await)?;
    if args.json.json {
        print_json(&limits)?;
    } else {
        outln!(
            "limits of {}: {} EUR per operation, {} EUR awaiting the hub, {} h without news from the hub (in force on the device once it syncs)",
            args.device,
            limits.per_operation,
            limits.unconfirmed_total,
            limits.offline_hours
        );
    }
    Ok(())
}

pub(super) fn escrow(args: EscrowArgs) -> Result<()> {
    let device = device_arg("--device", &args.device)?;
    let pan = Pan::parse(&args.pan)?;
    let service = args.service.as_deref().map(ServiceId::parse).transpose()?;
    let amount = Amount::parse(&args.amount)?;
    let session = Session::open(&args.data.data)?;
    let consumer = session.call(async |s| s.consumer_by_pan(&pan).await)?;
    let service = super::money::wallet_of(&consumer, service.as_ref())?;
    let request = EscrowRequest { wallet: WalletRef { consumer: consumer.consumer, service }, amount };
    let grant = session.call(async |s| s.grant_escrow(device, request).await)?;
    if args.json.json {
        print_json(&grant)?;
    } else {
        outln!(
            "device {} may charge {amount} EUR more on {} {}'s {} wallet",
            &args.device[..16],
            consumer.name,
            consumer.surname,
            grant.wallet.service
        );
    }
    Ok(())
}
