//! Review of flagged operations: `review list`, `review accept`, `review reject`.

use super::args::{DataArg, JsonArg, ReviewArgs};
use super::render::{api_name, print_json, snake_words};
use super::{OutputError, Session};
use anyhow::Result;
use saldo_api::review::ReviewRequest;
use saldo_sync::{Label, OpId};
use std::io::Write;

pub(super) fn list_flagged(data: DataArg, json: JsonArg) -> Result<()> {
    let session = Session::open(&data.data)?;
    let flagged = session.call(async |s| s.flagged().await)?;
    if json.json {
        print_json(&flagged)?;
    } else if flagged.operations.is_empty() {
        outln!("nothing awaits review");
    } else {
        for f in &flagged.operations {
            outln!(
                "{}  {} by {}  {} EUR  {}: {}",
                f.operation.to_hex(),
                snake_words(&f.kind),
                f.author_name.clone().unwrap_or_else(|| f.author.short()),
                f.amount,
                api_name(&f.reason),
                f.detail
            );
        }
    }
    Ok(())
}

pub(super) fn review(args: ReviewArgs, accept: bool, confirm_below_floor: bool) -> Result<()> {
    let target = OpId::from_hex(&args.operation)?;
    let operator = Label::parse_as(&args.operator, "operator")?;
    let note = Label::parse_as(&args.note, "note")?;
    let session = Session::open(&args.data.data)?;
    let request = ReviewRequest { accept, note: Some(note), confirm_below_floor };
    // The command line's operator: whoever holds the hub's data directory, named as they typed.
    let operator = crate::service::Operator {
        login: "command-line".to_string(),
        name: operator.to_string(),
        role: saldo_api::session::OperatorRole::Administrator,
        cash_point: None,
        cash_point_name: None,
        must_change_password: false,
    };
    let outcome = session.call(async |s| s.review(&operator, target, request).await)?;
    outln!("{} {}", if accept { "accepted" } else { "rejected" }, target.to_hex());
    for w in &outcome.below_floor {
        let reserved = if w.reserved.minor() > 0 {
            format!("and devices may still charge the {} EUR reserved for them there: ", w.reserved)
        } else {
            String::new()
        };
        outln!(
            "it took {}'s {} wallet to {} EUR, {reserved}{} EUR below its floor of {} EUR",
            w.consumer_name,
            w.service,
            w.after,
            w.short,
            w.floor
        );
    }
    Ok(())
}
