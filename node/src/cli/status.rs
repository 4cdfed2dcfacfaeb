//! A node's state: `status` and `log verify`.

use super::args::{DataArg, JsonArg, StatusArgs};
use super::render::print_json;
use super::{OutputError, Session};
use anyhow::{Result, bail};
use saldo_api::bundles::LogVerifyReport;
use saldo_api::session::NodeKind;
use saldo_api::status::Status;
use std::io::Write;

fn render_status(s: &Status, running: bool) -> String {
    let mut out = String::new();
    let role = match (s.node, s.device_name.is_empty()) {
        (NodeKind::Hub, _) => "hub".to_string(),
        (_, true) => "cash point (enrolment not received yet)".to_string(),
        (_, false) => format!("cash point {:?}", s.device_name),
    };
    let id = s.device.map(|d| d.to_hex()).unwrap_or_default();
    out.push_str(&format!(
        "role:        {role}\nid:          {id}\nrealm:       {} ({})\n",
        s.realm.to_hex(),
        s.realm_name
    ));
    if running {
        out.push_str("running:     yes\n");
        for address in &s.addresses {
            out.push_str(&format!("address:     {address}   (what --peer takes)\n"));
        }
    } else {
        out.push_str("running:     no (start it with `saldo hub` or `saldo cashpoint`)\n");
    }
    out.push_str(&format!("hub:         {}\n", if s.online { "online" } else { "offline" }));
    if let Some(at) = s.last_hub_contact_ms {
        let at = chrono::DateTime::from_timestamp_millis(at as i64).map(|t| t.to_rfc3339()).unwrap_or_default();
        out.push_str(&format!("last contact with the hub: {at}\n"));
    }
    out.push_str(&format!("unconfirmed: {} operations, {} EUR\n", s.unconfirmed_operations, s.unconfirmed_total));
    if let Some(held) = s.forked.as_ref().or(s.recording_held.as_ref()) {
        out.push_str(&format!("recording:   held: {held}\n"));
    }
    for c in &s.delivery {
        let channel = match c.channel {
            saldo_api::outbox::ChannelApi::Email => "e-mail",
            saldo_api::outbox::ChannelApi::Sms => "SMS",
        };
        if c.configured {
            out.push_str(&format!(
                "outbox {channel:<6} sent {} failed {} since the start{}\n",
                c.sent,
                c.failed,
                c.last_error.as_ref().map(|e| format!("  last error: {e}")).unwrap_or_default()
            ));
        } else {
            out.push_str(&format!("outbox {channel:<6} not configured (see `[email]` / `[sms]` in saldo.toml)\n"));
        }
    }
    for p in &s.peers {
        out.push_str(&format!(
            "peer {} {} {}  sent {} received {} refused {}  on the wire {} B out, {} B in{}\n",
            &p.id.to_hex()[..16],
            match (&p.addr, p.found_on_lan) {
                (Some(addr), true) => format!("{addr} (found on the LAN)"),
                (Some(addr), false) => addr.clone(),
                (None, _) => "(it dialed in)".into(),
            },
            match (&p.refused, p.online) {
                (Some(_), _) => "refused for good (not dialed again)",
                (None, true) => "online",
                (None, false) => "offline",
            },
            p.ops_sent,
            p.ops_received,
            p.ops_refused,
            p.wire_sent_bytes,
            p.wire_received_bytes,
            p.last_error.as_ref().map(|e| format!("  last error: {e}")).unwrap_or_default()
        ));
    }
    out
}

pub(super) fn status(args: StatusArgs) -> Result<()> {
    let session = Session::open(&args.data.data)?;
    // The addresses and peers of a node running on this directory, from
    // the status file it keeps (a mirror of its service's status).
    let run = crate::net::RunStatus::read(&args.data.data);
    let running = run.is_some();
    if let Some(run) = run {
        *session.service().run_status().lock().unwrap_or_else(std::sync::PoisonError::into_inner) = run;
    }
    let status = session.call(async |s| s.status().await)?;
    if args.json.json {
        print_json(&status)?;
    } else {
        out!("{}", render_status(&status, running));
    }
    Ok(())
}

pub(super) fn verify_log(data: DataArg, json: JsonArg) -> Result<()> {
    let session = Session::open(&data.data)?;
    let report = session.call(async |s| s.verify_log().await)?;
    if json.json {
        print_json(&report)?;
    } else {
        out!("{}", render_verify(&report));
    }
    if !report.problems.is_empty() || report.integrity_check != "ok" {
        bail!("the log of {} does not verify", data.data.display());
    }
    Ok(())
}

fn render_verify(report: &LogVerifyReport) -> String {
    let mut out = format!(
        "{} operations from {} devices, {} wallets, {} equivocations; database integrity: {}\n",
        report.operations, report.authors, report.wallets, report.equivocations, report.integrity_check
    );
    if report.problems.is_empty() {
        out.push_str("every signature, chain link and balance verifies\n");
    } else {
        for problem in &report.problems {
            out.push_str(&format!("PROBLEM: {problem}\n"));
        }
    }
    out
}
