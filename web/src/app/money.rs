//! The counter's other screens: reversal of a top-up of the day (*storno*),
//! the daily close (*chiusura*), the remittance (*versamento*) and sending a
//! receipt again by e-mail or SMS.

use leptos::prelude::*;
use leptos::task::spawn_local;
use saldo_api::money::{format_amount, format_eur};
use saldo_api::outbox::{ChannelApi, ResendReport, ResendRequest};
use saldo_api::payments::{DailyClose, Remittance, RemittanceRequest, ReversalRequest};
use saldo_api::receipt::Receipt;
use saldo_sync::{Balance, Label, OpId};

use super::{api, ctx};
use crate::i18n::{self, Text};

/// A form's outcome: what was done, or why not.
fn outcome(done: RwSignal<Option<String>>, error: RwSignal<Option<String>>) -> impl IntoView {
    view! {
        <p class="done" role="status">{move || done.get()}</p>
        <p class="error" role="alert" id="form-error">{move || error.get()}</p>
    }
}

fn operation_of(text: &str) -> Result<OpId, String> {
    OpId::from_hex(text.trim())
        .map_err(|_| format!("{:?}: 64 hexadecimal digits, as the receipt's operation", text.trim()))
}

#[component]
pub fn Reversal() -> impl IntoView {
    let ctx = ctx();
    let operation = RwSignal::new(String::new());
    let reason = RwSignal::new(String::new());
    let (done, error) = (RwSignal::new(None), RwSignal::new(None));
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let request = match (operation_of(&operation.get_untracked()), Label::parse(reason.get_untracked().trim())) {
            (Ok(operation), Ok(reason)) => ReversalRequest { operation, reason },
            (Err(e), _) => return error.set(Some(e)),
            (_, Err(e)) => return error.set(Some(e.to_string())),
        };
        let (csrf, key) = (ctx.csrf(), api::new_key());
        spawn_local(async move {
            match api::post::<_, Receipt>("/reversals", &request, &csrf, Some(&key)).await {
                Ok(r) => {
                    error.set(None);
                    done.set(Some(format!(
                        "{} n. {} · {}",
                        ctx.t(Text::Reversal),
                        r.receipt_number,
                        format_eur(r.total)
                    )));
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    let today = move || {
        ctx.receipts
            .get()
            .into_iter()
            .rev()
            .map(|r| {
                let op = r.operation.to_hex();
                let pick = op.clone();
                let names = r
                    .lines
                    .iter()
                    .map(|l| format!("{} {}", l.consumer_name, format_amount(l.amount)))
                    .collect::<Vec<_>>()
                    .join(", ");
                view! { <li><button type="button" on:click=move |_| operation.set(pick.clone())>
                {format!("n. {} · {} · {}", r.receipt_number, r.recorded_at_local, names)}</button></li> }
            })
            .collect_view()
    };
    view! {
        <section aria-labelledby="reversal-title">
            <h1 id="reversal-title">{move || ctx.t(Text::Reversal)}</h1>
            <h2>{move || ctx.t(Text::TodayReceipts)}</h2>
            <ul class="picks">{today}</ul>
            <form on:submit=submit>
                <label for="operation">{move || ctx.t(Text::Operation)}</label>
                <input id="operation" autocomplete="off" prop:value=operation on:input=move |ev| operation.set(event_target_value(&ev)) />
                <label for="reason">{move || ctx.t(Text::Reason)}</label>
                <input id="reason" autocomplete="off" prop:value=reason on:input=move |ev| reason.set(event_target_value(&ev)) />
                <button type="submit">{move || ctx.t(Text::Reversal)}</button>
            </form>
            {outcome(done, error)}
        </section>
    }
}

fn close_view(close: DailyClose, lang: saldo_api::Lang) -> impl IntoView {
    let methods = close.per_method.iter().map(|m| {
        view! { <tr><th scope="row">{i18n::method(lang, m.method)}</th><td>{m.count}</td><td>{format_eur(m.total)}</td></tr> }
    }).collect_view();
    view! {
        <table class="close">
            <caption>{format!("{} {}/{}/{}", i18n::tr(lang, Text::Day), close.day % 100, close.day / 100 % 100, close.day / 10_000)}</caption>
            <tbody>
                <tr><th scope="row">{i18n::tr(lang, Text::Count)}</th><td>{close.count}</td><td>{format_eur(close.total)}</td></tr>
                {methods}
                <tr><th scope="row">{i18n::tr(lang, Text::Reversals)}</th><td>{close.reversals}</td><td>{format_eur(close.reversals_total)}</td></tr>
            </tbody>
        </table>
    }
}

#[component]
pub fn Close() -> impl IntoView {
    let ctx = ctx();
    let close = RwSignal::new(None::<DailyClose>);
    let (done, error) = (RwSignal::new(None), RwSignal::new(None));
    let load = move || {
        spawn_local(async move {
            match api::get::<DailyClose>("/daily-close").await {
                Ok(c) => close.set(Some(c)),
                Err(e) => error.set(Some(e.message)),
            }
        })
    };
    load();
    let record = move |_| {
        let (csrf, key) = (ctx.csrf(), api::new_key());
        spawn_local(async move {
            match api::post_empty::<DailyClose>("/daily-close", &csrf, Some(&key)).await {
                Ok(c) => {
                    error.set(None);
                    done.set(Some(ctx.t(Text::Done).to_owned()));
                    close.set(Some(c));
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    view! {
        <section aria-labelledby="close-title">
            <h1 id="close-title">{move || ctx.t(Text::DailyClose)}</h1>
            {move || close.get().map(|c| close_view(c, ctx.lang.get()))}
            <button type="button" on:click=record disabled=move || close.with(|c| c.as_ref().is_some_and(|c| c.operation.is_some()))>
                {move || ctx.t(Text::CloseDay)}
            </button>
            {outcome(done, error)}
        </section>
    }
}

/// A sum of money typed the Italian way or with a dot (`1.234,50`, `1234.50`),
/// as a balance: unlike one top-up line's amount, a remittance may exceed 5.000 €.
fn parse_sum(text: &str) -> Result<Balance, String> {
    let t = text.trim().trim_end_matches('€').trim();
    let canonical = if t.contains(',') { t.replace('.', "").replace(',', ".") } else { t.to_owned() };
    Balance::parse(&canonical).map_err(|e| format!("{t:?}: {e}"))
}

#[component]
pub fn RemittanceScreen() -> impl IntoView {
    let ctx = ctx();
    let amount = RwSignal::new(String::new());
    let reference = RwSignal::new(String::new());
    let (done, error) = (RwSignal::new(None), RwSignal::new(None));
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let request = match (parse_sum(&amount.get_untracked()), Label::parse(reference.get_untracked().trim())) {
            (Ok(amount), Ok(reference)) => RemittanceRequest { amount, reference },
            (Err(e), _) => return error.set(Some(e)),
            (_, Err(e)) => return error.set(Some(e.to_string())),
        };
        if let Err(e) = request.validate() {
            return error.set(Some(e.message));
        }
        let (csrf, key) = (ctx.csrf(), api::new_key());
        spawn_local(async move {
            match api::post::<_, Remittance>("/remittances", &request, &csrf, Some(&key)).await {
                Ok(r) => {
                    error.set(None);
                    done.set(Some(format!(
                        "{} · {} · n. {}–{}",
                        ctx.t(Text::Done),
                        format_eur(r.amount),
                        r.first_receipt,
                        r.last_receipt
                    )));
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    view! {
        <section aria-labelledby="remittance-title">
            <h1 id="remittance-title">{move || ctx.t(Text::Remittance)}</h1>
            <form on:submit=submit>
                <label for="remit-amount">{move || ctx.t(Text::Amount)}</label>
                <input id="remit-amount" inputmode="decimal" autocomplete="off" aria-describedby="form-error"
                    prop:value=amount on:input=move |ev| amount.set(event_target_value(&ev)) />
                <label for="remit-reference">{move || ctx.t(Text::Reference)}</label>
                <input id="remit-reference" autocomplete="off" prop:value=reference on:input=move |ev| reference.set(event_target_value(&ev)) />
                <button type="submit">{move || ctx.t(Text::Remittance)}</button>
            </form>
            {outcome(done, error)}
        </section>
    }
}

#[component]
pub fn Resend() -> impl IntoView {
    let ctx = ctx();
    let operation = RwSignal::new(String::new());
    let email = RwSignal::new(true);
    let sms = RwSignal::new(false);
    let (done, error) = (RwSignal::new(None), RwSignal::new(None));
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let op = match operation_of(&operation.get_untracked()) {
            Ok(op) => op,
            Err(e) => return error.set(Some(e)),
        };
        let mut channels = Vec::new();
        if email.get_untracked() {
            channels.push(ChannelApi::Email);
        }
        if sms.get_untracked() {
            channels.push(ChannelApi::Sms);
        }
        let request = ResendRequest { channels };
        if let Err(e) = request.validate() {
            return error.set(Some(e.message));
        }
        let csrf = ctx.csrf();
        spawn_local(async move {
            match api::post::<_, ResendReport>(&format!("/receipts/{}/resend", op.to_hex()), &request, &csrf, None)
                .await
            {
                Ok(report) => {
                    error.set(None);
                    done.set(Some(format!("{} · {}", ctx.t(Text::Done), report.queued.len())));
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    view! {
        <section aria-labelledby="resend-title">
            <h1 id="resend-title">{move || ctx.t(Text::Resend)}</h1>
            <form on:submit=submit>
                <label for="resend-operation">{move || ctx.t(Text::Operation)}</label>
                <input id="resend-operation" autocomplete="off" prop:value=operation on:input=move |ev| operation.set(event_target_value(&ev)) />
                <label><input type="checkbox" prop:checked=email on:change=move |ev| email.set(event_target_checked(&ev)) />{move || ctx.t(Text::Email)}</label>
                <label><input type="checkbox" prop:checked=sms on:change=move |ev| sms.set(event_target_checked(&ev)) />{move || ctx.t(Text::Sms)}</label>
                <button type="submit">{move || ctx.t(Text::Send)}</button>
            </form>
            {outcome(done, error)}
        </section>
    }
}
