//! Services: `services list`, `services set`.

use super::OutputError;
use super::args::{DataArg, JsonArg};
use super::open;
use super::render::print_json;
use anyhow::Result;
use saldo_sync::{Amount, Label};
use std::io::Write;

pub(super) fn list_services(data: DataArg, json: JsonArg) -> Result<()> {
    let mut node = open(&data.data)?;
    let services = node.services()?;
    if json.json {
        print_json(&services.iter().map(service_json).collect::<Vec<_>>())?;
    } else {
        for s in &services {
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
    json: JsonArg,
) -> Result<()> {
    let name = Label::parse_as(&name, "service name")?;
    let floor = floor.as_deref().map(saldo_sync::Balance::parse).transpose()?;
    let tariff = match tariff.as_deref() {
        None => None,
        Some("none") => Some(None),
        Some(text) => Some(Some(Amount::parse(text)?)),
    };
    let mut node = open(&data.data)?;
    let service = node.set_service(&name, floor, tariff)?;
    if json.json {
        print_json(&service_json(&service))?;
    } else {
        outln!("{}", render_service(&service));
    }
    Ok(())
}

fn service_json(s: &crate::directory::ServiceRecord) -> serde_json::Value {
    serde_json::json!({
        "service": s.id.as_str(), "name": s.name.as_str(), "floor": s.floor, "tariff": s.tariff,
    })
}

fn render_service(s: &crate::directory::ServiceRecord) -> String {
    format!(
        "{:<16} {:<24} floor {:>8} EUR  tariff {}",
        s.id.as_str(),
        s.name.as_str(),
        s.floor.to_string(),
        s.tariff.map_or("-".to_string(), |t| format!("{t} EUR"))
    )
}
