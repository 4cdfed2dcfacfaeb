//! Review of flagged operations: `review list`, `review accept`, `review reject`.

use super::OutputError;
use super::args::{DataArg, JsonArg, ReviewArgs};
use super::open;
use super::render::print_json;
use anyhow::Result;
use saldo_sync::{Label, OpId};
use std::io::Write;

pub(super) fn list_flagged(data: DataArg, json: JsonArg) -> Result<()> {
    let mut node = open(&data.data)?;
    let flagged = node.flagged(1_000)?;
    if json.json {
        let rows: Vec<_> = flagged
            .iter()
            .map(|f| {
                serde_json::json!({
                    "operation": f.op.to_hex(), "author": f.author.to_hex(), "kind": f.kind,
                    "reason": f.reason, "detail": f.detail,
                    "amount": saldo_sync::Balance::from_minor(f.total_minor).map(|b| b.to_string()),
                })
            })
            .collect();
        print_json(&rows)?;
    } else if flagged.is_empty() {
        outln!("nothing awaits review");
    } else {
        for f in &flagged {
            outln!(
                "{}  {} by {}  {} EUR  {}: {}",
                f.op.to_hex(),
                f.kind,
                f.author.short(),
                saldo_sync::Balance::from_minor(f.total_minor).map(|b| b.to_string()).unwrap_or_default(),
                f.reason,
                f.detail
            );
        }
    }
    Ok(())
}

pub(super) fn review(args: ReviewArgs, accept: bool, below_floor_confirmed: bool) -> Result<()> {
    let target = OpId::from_hex(&args.operation)?;
    let operator = Label::parse_as(&args.operator, "operator")?;
    let note = Label::parse_as(&args.note, "note")?;
    let mut node = open(&args.data.data)?;
    let (_, below) = node.review_checked(&target, accept, &operator, &note, below_floor_confirmed)?;
    outln!("{} {}", if accept { "accepted" } else { "rejected" }, target.to_hex());
    for wallet in &below {
        outln!("it took {wallet}");
    }
    Ok(())
}
