//! Services: `services list`, `services set`.

use super::args::{DataArg, JsonArg};
use super::render::print_json;
use super::{OutputError, Session};
use anyhow::Result;
use saldo_api::directory::{ServiceUpdate, ServiceView};
use saldo_sync::{Amount, Label, ServiceId};
use std::io::Write;

pub(super) fn list_services(data: DataArg, json: JsonArg) -> Result<()> {
    let session = Session::open(&data.data)?;
    let services = session.call(async |s| s.services().await)?;
    if json.json {
        print_json(&services)?;
    } else {
        for s in &services.services {
            outln!("{}", render_service(s));
        }
    }
    Ok(())
}

pub(super) fn set_service(
    data: DataArg,
    name: String,
    floor: Option<String>,
    tariff: Option<String>,
    reminders: Option<String>,
    json: JsonArg,
) -> Result<()> {
    let name = Label::parse_as(&name, "service name")?;
    let floor = floor.as_deref().map(saldo_sync::Balance::parse).transpose()?;
    let (tariff, remove_tariff) = match tariff.as_deref() {
        None => (None, false),
        Some("none") => (None, true),
        Some(text) => (Some(Amount::parse(text)?), false),
    };
    let reminders = match reminders.as_deref() {
        None => None,
        Some("none") => Some(Vec::new()),
        Some(text) => Some(crate::directory::parse_reminders(text).map_err(anyhow::Error::msg)?),
    };
    let session = Session::open(&data.data)?;
    let id = ServiceId::from_name(name.as_str())?;
    let update = ServiceUpdate { name, floor, tariff, remove_tariff, reminders };
    let service = session.call(async |s| s.set_service(id, update).await)?;
    if json.json {
        print_json(&service)?;
    } else {
        outln!("{}", render_service(&service));
    }
    Ok(())
}

fn render_service(s: &ServiceView) -> String {
    format!(
        "{:<16} {:<24} floor {:>8} EUR  tariff {}{}",
        s.id.as_str(),
        s.name.as_str(),
        s.floor.to_string(),
        s.tariff.map_or("-".to_string(), |t| format!("{t} EUR")),
        if s.reminders.is_empty() {
            String::new()
        } else {
            format!("  reminders at {} left", crate::directory::reminders_text(&s.reminders))
        }
    )
}
