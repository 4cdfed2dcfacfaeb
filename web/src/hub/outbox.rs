//! The outbox: messages to families filtered by delivery state, one opened
//! with its text and last error, and a given-up one sent again.

use leptos::prelude::*;
use leptos::task::spawn_local;
use saldo_api::outbox::{DeliveryStateApi, OutboxList, OutboxListParams, OutboxMessage};

use super::i18n::{self as hi, H, ht};
use super::logic::{api_url, time_text};
use super::net;
use super::ui::{Errors, actions_header, outcome, t};
use crate::app::ctx;

const STATES: [DeliveryStateApi; 4] =
    [DeliveryStateApi::Queued, DeliveryStateApi::Failing, DeliveryStateApi::Sent, DeliveryStateApi::GivenUp];

#[component]
pub fn Outbox() -> impl IntoView {
    let ctx = ctx();
    let state = RwSignal::new(String::new());
    let list = RwSignal::new(None::<OutboxList>);
    let open = RwSignal::new(None::<OutboxMessage>);
    let errors = Errors::new();
    let load = move |before: Option<i64>| {
        let params =
            OutboxListParams { state: DeliveryStateApi::parse(&state.get_untracked()), before, limit: Some(50) };
        let url = api_url("/outbox", &params);
        spawn_local(async move {
            match net::get_url::<OutboxList>(&url).await {
                Ok(found) => {
                    errors.clear();
                    list.set(Some(found));
                }
                Err(e) => errors.api(e, &[]),
            }
        });
    };
    load(None);
    let open_message = move |id: i64| {
        spawn_local(async move {
            match net::get::<OutboxMessage>(&format!("/outbox/{id}")).await {
                Ok(message) => open.set(Some(message)),
                Err(e) => errors.api(e, &[]),
            }
        });
    };
    let counts = move || {
        list.get().map(|l| {
            let lang = ctx.lang.get();
            let c = l.counts;
            format!(
                "{}: {} · {}: {} · {}: {} · {}: {}",
                hi::delivery(lang, DeliveryStateApi::Queued),
                c.queued,
                hi::delivery(lang, DeliveryStateApi::Failing),
                c.failing,
                hi::delivery(lang, DeliveryStateApi::Sent),
                c.sent,
                hi::delivery(lang, DeliveryStateApi::GivenUp),
                c.given_up
            )
        })
    };
    let rows = move || {
        list.get().map(|l| {
            let lang = ctx.lang.get();
            l.messages
                .into_iter()
                .map(|m| {
                    let id = m.id;
                    let label = format!("{} {} {id}", ht(lang, H::Open), ht(lang, H::Message));
                    view! {
                        <tr>
                            <td>{id}</td>
                            <td>{time_text(m.queued_at_ms)}</td>
                            <td>{hi::purpose(lang, m.purpose)}</td>
                            <td>{hi::channel(lang, m.channel)}</td>
                            <td>{m.recipient}</td>
                            <td>{m.subject}</td>
                            <td>{hi::delivery(lang, m.state)}</td>
                            <td>{m.attempts}</td>
                            <td><button type="button" class="secondary" aria-label=label on:click=move |_| open_message(id)>{ht(lang, H::Open)}</button></td>
                        </tr>
                    }
                })
                .collect_view()
        })
    };
    let next = move || list.with(|l| l.as_ref().and_then(|l| l.next_before));
    view! {
        <form class="inline" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); load(None); }>
            <div class="field">
                <label for="outbox-state">{t(H::Filter)}</label>
                <select id="outbox-state" prop:value=state on:change=move |ev| { state.set(event_target_value(&ev)); load(None); }>
                    <option value="">{t(H::AllStates)}</option>
                    {STATES.into_iter().map(|s| view! { <option value=s.name()>{move || hi::delivery(ctx.lang.get(), s)}</option> }).collect_view()}
                </select>
            </div>
            <button type="submit">{t(H::Show)}</button>
        </form>
        {outcome(errors)}
        <p role="status" id="outbox-counts">{counts}</p>
        <div class="scroll"><table class="outbox">
            <thead><tr>
                <th scope="col">"N."</th><th scope="col">{t(H::Recorded)}</th><th scope="col">{t(H::Purpose)}</th>
                <th scope="col">{t(H::Channel)}</th><th scope="col">{t(H::Recipient)}</th><th scope="col">{t(H::Subject)}</th>
                <th scope="col">{t(H::State)}</th><th scope="col">{t(H::Attempts)}</th>{actions_header()}
            </tr></thead>
            <tbody>{rows}</tbody>
        </table></div>
        <button type="button" class="secondary" hidden=move || next().is_none()
            on:click=move |_| load(next())>{t(H::OlderMessages)}</button>
        {move || open.get().map(|m| view! { <MessageCard message=m open=open reload=Callback::new(move |()| load(None))/> })}
    }
}

#[component]
fn MessageCard(message: OutboxMessage, open: RwSignal<Option<OutboxMessage>>, reload: Callback<()>) -> impl IntoView {
    let ctx = ctx();
    let errors = Errors::new();
    let id = message.id;
    let retry = move |_| {
        let csrf = ctx.csrf();
        spawn_local(async move {
            match net::post_empty::<OutboxMessage>(&format!("/outbox/{id}/retry"), &csrf).await {
                Ok(again) => {
                    errors.ok(hi::delivery(ctx.lang.get_untracked(), again.state));
                    open.set(Some(again));
                    reload.run(());
                }
                Err(e) => errors.api(e, &[]),
            }
        });
    };
    let given_up = message.state == DeliveryStateApi::GivenUp;
    let state = message.state;
    view! {
        <article class="card message" aria-labelledby="message-title">
            <h2 id="message-title">{format!("{} {id}: {}", ht(ctx.lang.get_untracked(), H::Message), message.subject)}</h2>
            <dl class="pairs">
                <dt>{t(H::Recipient)}</dt><dd>{message.recipient.clone()}</dd>
                <dt>{t(H::State)}</dt><dd>{move || hi::delivery(ctx.lang.get(), state)}</dd>
                <dt>{t(H::Attempts)}</dt><dd>{message.attempts}</dd>
                <dt>{t(H::LastError)}</dt><dd>{message.last_error.clone().unwrap_or_else(|| "—".into())}</dd>
                <dt>{move || ctx.lang.get().pick("Riferimento", "Reference")}</dt><dd>{message.reference.clone()}</dd>
            </dl>
            <pre class="message-text" tabindex="0">{message.body_text.clone()}</pre>
            {outcome(errors)}
            <div class="buttons">
                <button type="button" hidden=!given_up on:click=retry>{t(H::Retry)}</button>
                <button type="button" class="secondary" on:click=move |_| open.set(None)>{t(H::Close)}</button>
            </div>
        </article>
    }
}
