//! The counter screen: search, amounts, method, receipt, by keyboard. The
//! keys' meaning is [`crate::counter`]'s; this module draws its state and
//! does its effects (a search, a recording, the focus).

use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;
use saldo_api::consumers::{ConsumerDetail, ConsumerSummary, SearchResults};
use saldo_api::directory::ServiceList;
use saldo_api::money::{format_amount, format_eur, format_eur_cents};
use saldo_api::receipt::{Receipt, TextWidth, render_text};
use saldo_api::status::BalanceChanged;
use saldo_sync::Balance;

use super::{api, ctx};
use crate::counter::{Counter, Effect, Key, Row, Step};
use crate::i18n::{self, Text};

/// The rows of a search: each child's wallets (the services the child is
/// enrolled in); every service, at zero, for a child with none yet.
fn rows_of(consumers: &[ConsumerSummary], services: &ServiceList) -> Vec<Row> {
    let mut rows = Vec::new();
    for c in consumers {
        let child = format!("{} {}", c.surname, c.name);
        let row = |service, confirmed, provisional| Row {
            consumer: c.consumer,
            family: c.family,
            child: child.clone(),
            service,
            confirmed,
            provisional,
        };
        for w in &c.wallets {
            rows.push(row(w.service.clone(), w.confirmed, w.provisional));
        }
        // A child enrolled in no service yet may start any of them.
        if c.wallets.is_empty() {
            for s in &services.services {
                rows.push(row(s.id.clone(), Balance::ZERO, Balance::ZERO));
            }
        }
    }
    rows
}

fn focus_later(el: NodeRef<html::Input>) {
    request_animation_frame(move || {
        if let Some(el) = el.get_untracked() {
            let _ = el.focus();
            el.select();
        }
    });
}

fn focus_element_later<E>(el: NodeRef<E>)
where
    E: leptos::html::ElementType,
    E::Output: wasm_bindgen::JsCast + Clone + 'static,
{
    request_animation_frame(move || {
        if let Some(el) = el.get_untracked() {
            use wasm_bindgen::JsCast;
            if let Some(el) = el.dyn_ref::<web_sys::HtmlElement>() {
                let _ = el.focus();
            }
        }
    });
}

/// Reads the wallets of `consumers` again, as balance events.
async fn reread_balances(ctx: super::Ctx, consumers: Vec<saldo_sync::ConsumerId>) {
    for consumer in consumers {
        let Ok(detail) = api::get::<ConsumerDetail>(&format!("/consumers/{}", consumer.to_hex())).await else {
            continue;
        };
        for wallet in detail.wallets {
            ctx.balance_changed(BalanceChanged {
                consumer,
                service: wallet.service,
                confirmed: wallet.confirmed,
                provisional: wallet.provisional,
            });
        }
    }
}

#[component]
pub fn CounterScreen() -> impl IntoView {
    let ctx = ctx();
    let counter = RwSignal::new(Counter::default());
    let consumers = RwSignal::new(Vec::<ConsumerSummary>::new());
    let services = RwSignal::new(ServiceList { services: Vec::new() });
    let receipt = RwSignal::new(None::<Receipt>);
    // Balance events numbered above this one came after the top-up was sent.
    let sent_at_seq = RwSignal::new(0u64);
    let failure = RwSignal::new(None::<String>);
    let searched = RwSignal::new(false);
    let search_ref = NodeRef::<html::Input>::new();
    let amount_ref = NodeRef::<html::Input>::new();
    let method_ref = NodeRef::<html::Button>::new();
    let receipt_ref = NodeRef::<html::Section>::new();
    spawn_local(async move {
        if let Ok(list) = api::get::<ServiceList>("/services").await {
            services.set(list);
        }
    });
    // Balance events turn the rows' balances in place.
    leptos::prelude::Effect::new(move |_| {
        let changes = ctx.balances.get();
        counter.update(|c| {
            for (_, b) in &changes {
                c.balance(b.consumer, &b.service, b.confirmed, b.provisional);
            }
        });
    });
    // Balance events were lost: the balances shown are read again, and
    // reach the rows and the receipt as events do.
    leptos::prelude::Effect::new(move |seen: Option<u64>| {
        let lagged = ctx.lagged.get();
        if seen.is_some_and(|seen| seen != lagged) {
            let mut shown: Vec<saldo_sync::ConsumerId> =
                counter.with_untracked(|c| c.rows.iter().map(|r| r.consumer).collect());
            receipt.with_untracked(|r| shown.extend(r.iter().flat_map(|r| r.lines.iter().map(|l| l.consumer))));
            shown.sort_unstable();
            shown.dedup();
            spawn_local(reread_balances(ctx, shown));
        }
        lagged
    });
    focus_later(search_ref);

    let apply = move |effect: Effect| match effect {
        Effect::None | Effect::Pass => {}
        Effect::FocusSearch => {
            receipt.set(None);
            failure.set(None);
            if let Some(el) = search_ref.get_untracked() {
                el.set_value("");
            }
            if let Some(el) = amount_ref.get_untracked() {
                el.set_value("");
            }
            consumers.set(Vec::new());
            searched.set(false);
            focus_later(search_ref);
        }
        Effect::FocusAmount => {
            if let Some(el) = amount_ref.get_untracked() {
                el.set_value("");
            }
            focus_later(amount_ref);
        }
        Effect::RestoreAmount(text) => {
            if let Some(el) = amount_ref.get_untracked() {
                el.set_value(&text);
            }
            focus_later(amount_ref);
        }
        Effect::FocusMethod => {
            if let Some(el) = amount_ref.get_untracked() {
                el.set_value("");
            }
            focus_element_later(method_ref);
        }
        Effect::Search(q) => {
            let path = format!("/consumers?q={}", String::from(js_sys::encode_uri_component(&q)));
            spawn_local(async move {
                match api::get::<SearchResults>(&path).await {
                    Ok(results) => {
                        let rows = services.with_untracked(|s| rows_of(&results.consumers, s));
                        consumers.set(results.consumers);
                        searched.set(true);
                        let effect = counter.try_update(|c| c.results(rows)).unwrap_or(Effect::None);
                        if effect == Effect::FocusAmount {
                            focus_later(amount_ref);
                        }
                    }
                    Err(e) if e.kind == saldo_api::ErrorKind::Unauthenticated => ctx.me.set(None),
                    Err(e) => failure.set(Some(e.message)),
                }
            });
        }
        Effect::Record(request) => {
            let csrf = ctx.csrf();
            let key = api::new_key();
            failure.set(None);
            sent_at_seq.set(ctx.balance_seq.get_untracked());
            spawn_local(async move {
                match api::post::<_, Receipt>("/topups", &request, &csrf, Some(&key)).await {
                    Ok(recorded) => {
                        ctx.receipts.update(|all| all.push(recorded.clone()));
                        receipt.set(Some(recorded));
                        counter.update(Counter::recorded);
                        focus_element_later(receipt_ref);
                    }
                    Err(e) if e.kind == saldo_api::ErrorKind::Unauthenticated => ctx.me.set(None),
                    Err(e) => {
                        failure.set(Some(e.message));
                        counter.update(Counter::failed);
                        focus_element_later(method_ref);
                    }
                }
            });
        }
    };

    let on_key = move |ev: leptos::ev::KeyboardEvent, typed: String| {
        let step = counter.with_untracked(|c| c.step);
        let Some(key) = Key::from_dom(&ev.key(), step) else { return };
        let effect = counter.try_update(|c| c.key(key, &typed)).unwrap_or(Effect::Pass);
        if effect != Effect::Pass {
            ev.prevent_default();
        }
        apply(effect);
    };

    let lang = move || ctx.lang.get();
    let amount_error =
        move || counter.with(|c| c.refusal.as_ref().filter(|r| r.is_about_amount()).map(|r| r.message(lang())));
    let query_error =
        move || counter.with(|c| c.refusal.as_ref().filter(|r| !r.is_about_amount()).map(|r| r.message(lang())));
    let summary_of = move |row: &Row| consumers.with(|all| all.iter().find(|c| c.consumer == row.consumer).cloned());
    let service_name = move |id: &saldo_sync::ServiceId| {
        services.with(|s| {
            s.services.iter().find(|v| &v.id == id).map(|v| v.name.to_string()).unwrap_or_else(|| id.to_string())
        })
    };
    let results_view = move || {
        let c = counter.get();
        let focus = c.focus;
        let amount_step = c.step == Step::Amount;
        c.rows.iter().enumerate().map(|(index, row)| {
            let summary = summary_of(row);
            let focused = index == focus && amount_step;
            let school = summary.as_ref().and_then(|s| s.school.as_ref().map(ToString::to_string)).unwrap_or_default();
            let class = summary.as_ref().and_then(|s| s.class.as_ref().map(ToString::to_string)).unwrap_or_default();
            let pan = summary.as_ref().map(|s| s.pan_masked.clone()).unwrap_or_default();
            let on_receipt = c.lines.iter().find(|l| l.consumer == row.consumer && l.service == row.service).map(|l| format_amount(l.amount));
            view! {
                <tr class:focused=focused aria-selected=focused.to_string() id=format!("row-{index}")
                    data-consumer=row.consumer.to_hex() data-service=row.service.to_string() data-child=row.child.clone()>
                    <td>{if focused { "▶ " } else { "" }}{row.child.clone()}<br/><small>{pan}</small></td>
                    <td>{school}" "{class}</td>
                    <td>{service_name(&row.service)}</td>
                    <td class="balance" data-provisional=row.is_provisional().to_string()>
                        {i18n::balance(lang(), row.provisional, row.is_provisional())}
                    </td>
                    <td>{on_receipt.map(|a| format!("+ {a}"))}</td>
                </tr>
            }
        }).collect_view()
    };
    let lines_view =
        move || {
            counter.with(|c| {
                c.lines.iter().map(|l| view! {
                <li>{format!("{} · {} · {}", l.child, service_name(&l.service), format_amount(l.amount))}</li>
            }).collect_view()
            })
        };
    let step = move || counter.with(|c| c.step);
    let method = move || counter.with(|c| i18n::method(lang(), c.method));
    let total = move || counter.with(|c| format_eur_cents(c.total_cents()));
    let on_method_key = move |ev: leptos::ev::KeyboardEvent| on_key(ev, String::new());
    let on_receipt_key = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "p" || ev.key() == "P" {
            ev.prevent_default();
            if let Some(w) = web_sys::window() {
                let _ = w.print();
            }
            return;
        }
        on_key(ev, String::new());
    };
    let print = move |_| {
        if let Some(w) = web_sys::window() {
            let _ = w.print();
        }
    };
    let new_sale = move |_| {
        let effect = counter.try_update(|c| c.key(Key::Escape, "")).unwrap_or(Effect::None);
        apply(effect);
    };
    let receipt_view = move || {
        receipt.get().map(|r| {
            let balances = ctx.balances.get();
            let text = render_text(&r, TextWidth::Columns42, lang());
            let lines = r.lines.iter().enumerate().map(|(index, line)| {
                // Confirmed once an event that came after the top-up was sent
                // says the wallet holds nothing unconfirmed.
                let since = sent_at_seq.get_untracked();
                let event = balances
                    .iter()
                    .find(|(seq, b)| *seq > since && b.consumer == line.consumer && b.service == line.service)
                    .map(|(_, b)| b);
                let provisional = line.provisional && event.is_none_or(|b| b.confirmed != b.provisional);
                view! {
                    <li id=format!("receipt-line-{index}") data-provisional=provisional.to_string()>
                        <strong>{line.consumer_name.clone()}</strong>
                        {format!(" · {} · +{} · {}: ", line.service_name, format_amount(line.amount), i18n::tr(lang(), Text::Balance))}
                        <span class="new-balance">{i18n::balance(lang(), line.balance_after, provisional)}</span>
                    </li>
                }
            }).collect_view();
            view! {
                <h2>{format!("{} n. {} · {}", i18n::tr(lang(), Text::ReceiptTitle), r.receipt_number, format_eur(r.total))}</h2>
                <ul class="confirmation">{lines}</ul>
                <pre class="receipt-text" aria-label=i18n::tr(lang(), Text::ReceiptTitle)>{text}</pre>
            }
        })
    };

    view! {
        <section class="counter" aria-labelledby="counter-title">
            <h1 id="counter-title">{move || ctx.t(Text::Counter)}</h1>
            <div class="field">
                <label for="search">{move || ctx.t(Text::Search)}</label>
                <input id="search" node_ref=search_ref type="search" autocomplete="off" autofocus=true
                    aria-describedby="search-help search-error"
                    on:keydown=move |ev| { let typed = event_target_value(&ev); on_key(ev, typed) } />
                <p id="search-help" class="help">{move || ctx.t(Text::SearchHelp)}</p>
                <p id="search-error" class="error" role="alert">{query_error}</p>
            </div>
            <Show when=move || searched.get() && counter.with(|c| c.rows.is_empty())>
                <p class="empty">{move || ctx.t(Text::NoResults)}</p>
            </Show>
            <table class="results" aria-label=move || ctx.t(Text::Search) hidden=move || counter.with(|c| c.rows.is_empty())>
                <thead><tr>
                    <th scope="col">{move || ctx.t(Text::Child)}</th>
                    <th scope="col">{move || format!("{} / {}", ctx.t(Text::School), ctx.t(Text::Class))}</th>
                    <th scope="col">{move || ctx.t(Text::Service)}</th>
                    <th scope="col">{move || ctx.t(Text::Balance)}</th>
                    <th scope="col">{move || ctx.t(Text::Amount)}</th>
                </tr></thead>
                <tbody>{results_view}</tbody>
            </table>
            <div class="field amount" hidden=move || !matches!(step(), Step::Amount)>
                <label for="amount">
                    {move || ctx.t(Text::Amount)}
                    {move || counter.with(|c| c.focused().map(|r| format!(" · {} · {}", r.child, service_name(&r.service))))}
                </label>
                <input id="amount" node_ref=amount_ref inputmode="decimal" autocomplete="off"
                    aria-describedby="amount-error amount-help" aria-invalid=move || amount_error().is_some().to_string()
                    on:keydown=move |ev| { let typed = event_target_value(&ev); on_key(ev, typed) } />
                <p id="amount-error" class="error" role="alert">{amount_error}</p>
                <p id="amount-help" class="help">{move || ctx.t(Text::AmountHelp)}</p>
            </div>
            <div class="lines" hidden=move || counter.with(|c| c.lines.is_empty()) aria-live="polite">
                <h2>{move || ctx.t(Text::Lines)}</h2>
                <ul id="lines">{lines_view}</ul>
                <p>{move || ctx.t(Text::Total)}": "<strong id="total">{total}</strong></p>
            </div>
            <div class="field method" hidden=move || !matches!(step(), Step::Method | Step::Recording)>
                <p id="method-help" class="help">{move || ctx.t(Text::MethodHelp)}</p>
                <button id="record" type="button" node_ref=method_ref aria-describedby="method-help"
                    on:keydown=on_method_key
                    on:click=move |_| { let e = counter.try_update(|c| c.key(Key::Enter, "")).unwrap_or(Effect::None); apply(e) }>
                    {move || format!("{}: {} · {} {}", ctx.t(Text::Method), method(), ctx.t(Text::Record), total())}
                </button>
            </div>
            <p id="failure" class="error" role="alert">{move || failure.get()}</p>
            <section id="receipt" class="receipt" node_ref=receipt_ref tabindex="-1" hidden=move || receipt.with(Option::is_none)
                on:keydown=on_receipt_key aria-label=move || ctx.t(Text::ReceiptTitle)>
                {receipt_view}
                <button type="button" on:click=print>{move || format!("{} (P)", ctx.t(Text::Print))}</button>
                <button type="button" on:click=new_sale>{move || ctx.t(Text::NewSale)}</button>
            </section>
        </section>
    }
}
