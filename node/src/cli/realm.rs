//! A realm and its data directory: `realm init`, `backup`, `restore`.

use super::OutputError;
use super::args::{BackupArgs, DataArg, JsonArg, RestoreArgs};
use super::render::print_json;
use crate::node::Node;
use anyhow::Result;
use saldo_sync::Label;
use std::io::Write;

/// `saldo backup`: a consistent copy of a data directory in one file.
pub(super) fn backup(args: &BackupArgs) -> Result<()> {
    let report = crate::backup::backup(&args.data.data, &args.out)?;
    if args.json.json {
        print_json(&report)?;
    } else {
        outln!(
            "wrote {} ({} bytes: {}); it holds this node's secret key: keep it as safe as the node itself",
            report.out.display(),
            report.bytes,
            report.files.join(", ")
        );
    }
    Ok(())
}

/// `saldo restore`: a new data directory from a backup, and how to start it without forking.
pub(super) fn restore(args: &RestoreArgs) -> Result<()> {
    let report = crate::backup::restore(&args.from, &args.data.data)?;
    if args.json.json {
        print_json(&report)?;
        return Ok(());
    }
    let dir = args.data.data.display();
    outln!(
        "restored {} of {:?} ({}) into {dir}; its own log goes up to #{} in this copy",
        if report.hub { "the hub" } else { "the device" },
        report.realm,
        report.id,
        report.own_head
    );
    if report.hub {
        outln!("start it with `saldo hub --data {dir}`");
    } else {
        outln!(
            "before recording anything, start it online: `saldo cashpoint --data {dir}`. It first fetches back from the hub what it recorded after this copy was made (`saldo status` says so), so that no receipt number is used twice"
        );
    }
    Ok(())
}

pub(super) fn init_realm(data: DataArg, name: String, json: JsonArg) -> Result<()> {
    let name = Label::parse_as(&name, "realm name")?;
    let mut node = Node::init_realm(&data.data, &name)?;
    let (admin, password) = super::operator::first_administrator(&mut node)?;
    if json.json {
        print_json(&serde_json::json!({
            "realm": node.realm().to_hex(),
            "name": node.realm_name(),
            "data": data.data,
            "administrator": { "login": admin.as_str(), "one_time_password": password.as_str() },
        }))?;
    } else {
        outln!("created realm {:?} in {}", node.realm_name(), data.data.display());
        outln!("realm id (hub key): {}", node.realm().to_hex());
        outln!();
        outln!("first administrator: login {admin}, one-time password {}", password.as_str());
        outln!(
            "(shown only now: keep it safe, or set your own with `saldo operator passwd --password-stdin`; more accounts with `saldo operator add`)"
        );
    }
    Ok(())
}
