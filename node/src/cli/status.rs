//! A node's state: `status` and `log verify`.

use super::OutputError;
use super::args::{DataArg, JsonArg, StatusArgs};
use super::open;
use super::render::print_json;
use crate::node::{Node, VerifyReport};
use anyhow::{Result, bail};
use std::io::Write;
use std::path::Path;

#[derive(Debug, serde::Serialize)]
struct StatusView {
    role: String,
    id: String,
    realm: String,
    running: bool,
    addresses: Vec<String>,
    peers: Vec<crate::net::PeerStatus>,
    hub_online: bool,
    last_hub_contact_ms: Option<u64>,
    unconfirmed_operations: u64,
    unconfirmed_total: String,
    /// Why this device records nothing now (it checks or fetches its own
    /// log, or its log forked), if so.
    own_log: Option<String>,
}

fn status_of(node: &mut Node, dir: &Path) -> Result<StatusView> {
    let run = crate::net::RunStatus::read(dir);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let hub = node.realm().hub().to_hex();
    let role = match node.role()? {
        Some(role) => role.name().to_string(),
        None if node.is_hub() => "hub".into(),
        None => "device (enrolment not received yet)".into(),
    };
    let (count, total) = node.unconfirmed()?;
    let peers: Vec<crate::net::PeerStatus> =
        run.as_ref().map(|r| r.peers.values().cloned().collect()).unwrap_or_default();
    Ok(StatusView {
        role,
        id: node.author().map(|a| a.to_hex()).unwrap_or_default(),
        realm: node.realm().to_hex(),
        running: run.is_some(),
        addresses: run.as_ref().map(|r| r.addresses.clone()).unwrap_or_default(),
        hub_online: node.is_hub() || peers.iter().any(|p| p.id == hub && p.online),
        peers,
        last_hub_contact_ms: if node.is_hub() { Some(now) } else { node.last_hub_contact_ms()? },
        unconfirmed_operations: count,
        unconfirmed_total: total.to_string(),
        own_log: match (node.own_log_hold()?, node.author()) {
            (Some(hold), Some(me)) => Some(hold.describe(&me)),
            _ => None,
        },
    })
}

fn render_status(s: &StatusView) -> String {
    let mut out = String::new();
    out.push_str(&format!("role:        {}\nid:          {}\nrealm:       {}\n", s.role, s.id, s.realm));
    if s.running {
        out.push_str("running:     yes\n");
        for address in &s.addresses {
            out.push_str(&format!("address:     {address}   (what --peer takes)\n"));
        }
    } else {
        out.push_str("running:     no (start it with `saldo hub` or `saldo cashpoint`)\n");
    }
    out.push_str(&format!("hub:         {}\n", if s.hub_online { "online" } else { "offline" }));
    if let Some(at) = s.last_hub_contact_ms {
        let at = chrono::DateTime::from_timestamp_millis(at as i64).map(|t| t.to_rfc3339()).unwrap_or_default();
        out.push_str(&format!("last contact with the hub: {at}\n"));
    }
    out.push_str(&format!("unconfirmed: {} operations, {} EUR\n", s.unconfirmed_operations, s.unconfirmed_total));
    if let Some(own_log) = &s.own_log {
        out.push_str(&format!("recording:   held: {own_log}\n"));
    }
    for p in &s.peers {
        out.push_str(&format!(
            "peer {} {} {}  sent {} received {} refused {}  on the wire {} B out, {} B in{}\n",
            &p.id[..16],
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
    let mut node = open(&args.data.data)?;
    let status = status_of(&mut node, &args.data.data)?;
    if args.json.json {
        print_json(&status)?;
    } else {
        out!("{}", render_status(&status));
    }
    Ok(())
}

pub(super) fn verify_log(data: DataArg, json: JsonArg) -> Result<()> {
    let mut node = open(&data.data)?;
    let report = node.verify_log()?;
    let integrity = node.store().integrity_check()?;
    if json.json {
        print_json(&serde_json::json!({ "report": report, "integrity_check": integrity }))?;
    } else {
        out!("{}", render_verify(&report, &integrity));
    }
    if !report.ok() || integrity != "ok" {
        bail!("the log of {} does not verify", data.data.display());
    }
    Ok(())
}

fn render_verify(report: &VerifyReport, integrity: &str) -> String {
    let mut out = format!(
        "{} operations from {} devices, {} wallets, {} equivocations; database integrity: {integrity}\n",
        report.operations, report.authors, report.wallets, report.equivocations
    );
    if report.ok() {
        out.push_str("every signature, chain link and balance verifies\n");
    } else {
        for problem in &report.problems {
            out.push_str(&format!("PROBLEM: {problem}\n"));
        }
    }
    out
}
