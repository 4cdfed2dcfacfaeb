//! Services: each one's tariff, floor and reminder thresholds, edited and
//! saved, every mistake shown beside its field.

use leptos::prelude::*;
use leptos::task::spawn_local;
use saldo_api::directory::{ServiceList, ServiceView};

use super::i18n::{H, ht};
use super::logic::ServiceForm;
use super::net::{self, Method};
use super::ui::{Errors, field, outcome, t};
use crate::app::ctx;

const FIELDS: &[&str] = &["tariff", "floor", "reminders", "name"];

#[component]
pub fn Services() -> impl IntoView {
    let list = RwSignal::new(None::<ServiceList>);
    let errors = Errors::new();
    spawn_local(async move {
        match net::get::<ServiceList>("/services").await {
            Ok(found) => list.set(Some(found)),
            Err(e) => errors.api(e, &[]),
        }
    });
    view! {
        {outcome(errors)}
        {move || list.get().map(|l| l.services.into_iter().map(|s| view! { <ServiceCard service=s/> }).collect_view())}
    }
}

#[component]
fn ServiceCard(service: ServiceView) -> impl IntoView {
    let ctx = ctx();
    let form = ServiceForm::of(&service);
    let (tariff, floor, reminders) =
        (RwSignal::new(form.tariff), RwSignal::new(form.floor), RwSignal::new(form.reminders));
    let errors = Errors::new();
    let id = service.id.as_str().to_owned();
    let name = service.name.clone();
    let save = {
        let id = id.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let lang = ctx.lang.get_untracked();
            let form = ServiceForm {
                tariff: tariff.get_untracked(),
                floor: floor.get_untracked(),
                reminders: reminders.get_untracked(),
            };
            let update = match form.update(lang, &name) {
                Ok(update) => update,
                Err(found) => return errors.show(found, FIELDS),
            };
            let (path, csrf) = (format!("/services/{id}"), ctx.csrf());
            spawn_local(async move {
                match net::send::<_, ServiceView>(Method::Put, &path, &update, &csrf).await {
                    Ok(saved) => {
                        let form = ServiceForm::of(&saved);
                        tariff.set(form.tariff);
                        floor.set(form.floor);
                        reminders.set(form.reminders);
                        errors.ok(ht(lang, H::Saved));
                    }
                    Err(e) => errors.api(e, FIELDS),
                }
            });
        }
    };
    let title_id = format!("service-{id}");
    let labelled = title_id.clone();
    view! {
        <article class="card service" aria-labelledby=labelled>
            <h2 id=title_id>{service.name.as_str().to_owned()}</h2>
            <form on:submit=save class="grid">
                {field(format!("tariff-{id}"), H::Tariff, Some(H::TariffHelp), "text", tariff, errors, "tariff")}
                {field(format!("floor-{id}"), H::Floor, Some(H::FloorHelp), "text", floor, errors, "floor")}
                {field(format!("reminders-{id}"), H::Reminders, Some(H::RemindersHelp), "text", reminders, errors, "reminders")}
                {outcome(errors)}
                <button type="submit">{t(H::Save)}</button>
            </form>
        </article>
    }
}
