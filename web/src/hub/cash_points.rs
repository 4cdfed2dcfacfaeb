//! Cash points: the list with limits and state, a device's limits, an escrow
//! for one wallet, revoking a device with a reason, and a new device's
//! enrolment token shown with a QR code to scan on it.

use leptos::prelude::*;
use leptos::task::spawn_local;
use saldo_api::cash_points::{
    CashPoint, CashPointList, EnrolmentTokenResponse, EscrowGrant, Limits, RevocationRecorded,
};
use saldo_api::directory::ServiceList;
use saldo_api::money::{format_amount, format_eur};
use saldo_api::receipt::qr_svg;

use super::i18n::{H, ht};
use super::logic::{self, LimitsForm, time_text};
use super::net::{self, Method};
use super::ui::{Errors, actions_header, field, outcome, t};
use crate::app::ctx;

const LIMIT_FIELDS: &[&str] = &["per_operation", "unconfirmed_total", "offline_hours", "name"];

fn load(list: RwSignal<Option<CashPointList>>, errors: Errors) {
    spawn_local(async move {
        match net::get::<CashPointList>("/cash-points").await {
            Ok(found) => list.set(Some(found)),
            Err(e) => errors.api(e, &[]),
        }
    });
}

#[component]
pub fn CashPoints() -> impl IntoView {
    let ctx = ctx();
    let list = RwSignal::new(None::<CashPointList>);
    let open = RwSignal::new(None::<CashPoint>);
    let errors = Errors::new();
    load(list, errors);
    let rows = move || {
        list.get().map(|list| {
            let lang = ctx.lang.get();
            list.cash_points
                .into_iter()
                .map(|cp| {
                    let state = match &cp.revoked {
                        Some(_) => ht(lang, H::Revoked),
                        None => ht(lang, H::Active),
                    };
                    let limits = format!(
                        "{} · {} · {} h",
                        format_amount(cp.limits.per_operation),
                        format_eur(cp.limits.unconfirmed_total),
                        cp.limits.offline_hours
                    );
                    let seen = cp
                        .last_seen_ms
                        .map(time_text)
                        .unwrap_or_else(|| crate::i18n::tr(lang, crate::i18n::Text::Never).into());
                    let label = format!("{} {}", ht(lang, H::Open), cp.name);
                    let pick = cp.clone();
                    view! {
                        <tr>
                            <td>{cp.name.clone()}</td>
                            <td>{state}</td>
                            <td>{limits}</td>
                            <td>{seen}</td>
                            <td>{cp.unconfirmed_operations}</td>
                            <td><button type="button" class="secondary" aria-label=label
                                on:click=move |_| open.set(Some(pick.clone()))>{ht(lang, H::Open)}</button></td>
                        </tr>
                    }
                })
                .collect_view()
        })
    };
    view! {
        {outcome(errors)}
        <div class="scroll"><table class="cash-points">
            <thead><tr>
                <th scope="col">{t(H::CashPoint)}</th><th scope="col">{t(H::State)}</th>
                <th scope="col">{move || format!("{} ({} · {} · {})", ht(ctx.lang.get(), H::Limits), ht(ctx.lang.get(), H::PerOperation), ht(ctx.lang.get(), H::UnconfirmedTotal), ht(ctx.lang.get(), H::OfflineHours))}</th>
                <th scope="col">{t(H::LastSeen)}</th><th scope="col">{t(H::Unconfirmed)}</th>{actions_header()}
            </tr></thead>
            <tbody>{rows}</tbody>
        </table></div>
        {move || open.get().map(|cp| view! { <Device cash_point=cp list=list open=open/> })}
        <NewToken/>
    }
}

fn limits_fields(prefix: &str, form: LimitsForm, errors: Errors) -> (impl IntoView, impl Fn() -> LimitsForm + Copy) {
    let (per, total, hours) =
        (RwSignal::new(form.per_operation), RwSignal::new(form.unconfirmed_total), RwSignal::new(form.offline_hours));
    let view = view! {
        {field(format!("{prefix}-per-operation"), H::PerOperation, None, "text", per, errors, "per_operation")}
        {field(format!("{prefix}-unconfirmed"), H::UnconfirmedTotal, None, "text", total, errors, "unconfirmed_total")}
        {field(format!("{prefix}-hours"), H::OfflineHours, None, "number", hours, errors, "offline_hours")}
    };
    let read = move || LimitsForm {
        per_operation: per.get_untracked(),
        unconfirmed_total: total.get_untracked(),
        offline_hours: hours.get_untracked(),
    };
    (view, read)
}

#[component]
fn Device(
    cash_point: CashPoint,
    list: RwSignal<Option<CashPointList>>,
    open: RwSignal<Option<CashPoint>>,
) -> impl IntoView {
    let ctx = ctx();
    let device = cash_point.device.to_hex();
    let limit_errors = Errors::new();
    let (limits_view, read_limits) = limits_fields("device", LimitsForm::of(&cash_point.limits), limit_errors);
    let save_limits = {
        let device = device.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let lang = ctx.lang.get_untracked();
            let update = match read_limits().update(lang) {
                Ok(update) => update,
                Err(found) => return limit_errors.show(found, LIMIT_FIELDS),
            };
            let (path, csrf) = (format!("/cash-points/{device}/limits"), ctx.csrf());
            spawn_local(async move {
                match net::send::<_, Limits>(Method::Put, &path, &update, &csrf).await {
                    Ok(_) => {
                        limit_errors.ok(ht(lang, H::Saved));
                        load(list, limit_errors);
                    }
                    Err(e) => limit_errors.api(e, LIMIT_FIELDS),
                }
            });
        }
    };
    // Escrow for one wallet.
    let services = RwSignal::new(Vec::<String>::new());
    spawn_local(async move {
        if let Ok(list) = net::get::<ServiceList>("/services").await {
            services.set(list.services.into_iter().map(|s| s.id.as_str().to_owned()).collect());
        }
    });
    let (consumer, service, amount) =
        (RwSignal::new(String::new()), RwSignal::new(String::new()), RwSignal::new(String::new()));
    let escrow_errors = Errors::new();
    let grant = {
        let device = device.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let lang = ctx.lang.get_untracked();
            let chosen = service.get_untracked();
            let chosen =
                if chosen.is_empty() { services.get_untracked().first().cloned().unwrap_or_default() } else { chosen };
            let request = match logic::escrow(lang, &consumer.get_untracked(), &chosen, &amount.get_untracked()) {
                Ok(request) => request,
                Err(found) => return escrow_errors.show(found, &["consumer", "service", "amount"]),
            };
            let (path, csrf) = (format!("/cash-points/{device}/escrow"), ctx.csrf());
            spawn_local(async move {
                match net::send::<_, EscrowGrant>(Method::Post, &path, &request, &csrf).await {
                    Ok(g) => escrow_errors.ok(format!(
                        "{}: {} · {}",
                        ht(lang, H::Escrow),
                        g.wallet.service.as_str(),
                        format_amount(g.amount)
                    )),
                    Err(e) => escrow_errors.api(e, &["consumer", "service", "amount", "wallet"]),
                }
            });
        }
    };
    let reason = RwSignal::new(String::new());
    let revoke_errors = Errors::new();
    let revoke = {
        let device = device.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let request = match logic::revoke(&reason.get_untracked()) {
                Ok(request) => request,
                Err(e) => return revoke_errors.show(vec![e], &["reason"]),
            };
            let (path, csrf, lang) = (format!("/cash-points/{device}/revoke"), ctx.csrf(), ctx.lang.get_untracked());
            spawn_local(async move {
                match net::send::<_, RevocationRecorded>(Method::Post, &path, &request, &csrf).await {
                    Ok(r) => {
                        revoke_errors.ok(format!("{} · {}", ht(lang, H::Revoked), r.operation.to_hex()));
                        load(list, revoke_errors);
                    }
                    Err(e) => revoke_errors.api(e, &["reason"]),
                }
            });
        }
    };
    let revoked = cash_point.revoked.is_some();
    view! {
        <article class="card device" aria-labelledby="device-title">
            <h2 id="device-title">{cash_point.name.clone()}</h2>
            <p><small>{format!("id {device}")}</small></p>
            <form on:submit=save_limits class="grid" aria-labelledby="limits-title">
                <h3 id="limits-title">{t(H::Limits)}</h3>
                {limits_view}
                {outcome(limit_errors)}
                <button type="submit">{t(H::Save)}</button>
            </form>
            <form on:submit=grant class="grid" aria-labelledby="escrow-title">
                <h3 id="escrow-title">{t(H::Escrow)}</h3>
                <p class="help">{t(H::EscrowHelp)}</p>
                {field("escrow-consumer".into(), H::ConsumerId, None, "text", consumer, escrow_errors, "consumer")}
                <div class="field">
                    <label for="escrow-service">{t(H::Service)}</label>
                    <select id="escrow-service" prop:value=service on:change=move |ev| service.set(event_target_value(&ev))>
                        {move || services.get().into_iter().map(|s| view! { <option value=s.clone()>{s.clone()}</option> }).collect_view()}
                    </select>
                    <p class="error">{escrow_errors.of("service")}</p>
                </div>
                {field("escrow-amount".into(), H::Amount, None, "text", amount, escrow_errors, "amount")}
                {outcome(escrow_errors)}
                <button type="submit">{t(H::Escrow)}</button>
            </form>
            <form on:submit=revoke class="grid" aria-labelledby="revoke-title" hidden=revoked>
                <h3 id="revoke-title">{t(H::Revoke)}</h3>
                {field("revoke-reason".into(), H::RevokeReason, None, "text", reason, revoke_errors, "reason")}
                {outcome(revoke_errors)}
                <button type="submit" class="danger">{t(H::Revoke)}</button>
            </form>
            <button type="button" class="secondary" on:click=move |_| open.set(None)>{t(H::Close)}</button>
        </article>
    }
}

#[component]
fn NewToken() -> impl IntoView {
    let ctx = ctx();
    let name = RwSignal::new(String::new());
    let errors = Errors::new();
    let defaults =
        LimitsForm { per_operation: "500".into(), unconfirmed_total: "5000".into(), offline_hours: "72".into() };
    let (limits_view, read_limits) = limits_fields("token", defaults, errors);
    let token = RwSignal::new(None::<EnrolmentTokenResponse>);
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let lang = ctx.lang.get_untracked();
        let request = match read_limits().token(lang, &name.get_untracked()) {
            Ok(request) => request,
            Err(found) => return errors.show(found, LIMIT_FIELDS),
        };
        let csrf = ctx.csrf();
        spawn_local(async move {
            match net::send::<_, EnrolmentTokenResponse>(Method::Post, "/cash-points/tokens", &request, &csrf).await {
                Ok(made) => {
                    errors.clear();
                    token.set(Some(made));
                }
                Err(e) => errors.api(e, LIMIT_FIELDS),
            }
        });
    };
    let shown = move || {
        token.get().map(|made| {
            // The figure carries the label; the picture inside is hidden from screen readers.
            let qr = qr_svg(&made.token).unwrap_or_default().replacen("role=\"img\"", "aria-hidden=\"true\"", 1);
            view! {
                <div class="token" id="enrolment-token" role="status">
                    <h3>{move || format!("{} · {}", ht(ctx.lang.get(), H::TokenShown), made.name)}</h3>
                    <p class="help">{t(H::TokenScan)}</p>
                    <figure class="qr" role="img" aria-label=move || ht(ctx.lang.get(), H::TokenShown) inner_html=qr></figure>
                    <p><code class="token-text">{made.token.clone()}</code></p>
                </div>
            }
        })
    };
    view! {
        <section class="card" aria-labelledby="token-title">
            <h2 id="token-title">{t(H::NewToken)}</h2>
            <form on:submit=create class="grid">
                {field("token-name".into(), H::DeviceName, None, "text", name, errors, "name")}
                {limits_view}
                {outcome(errors)}
                <button type="submit" id="token-create">{t(H::Create)}</button>
            </form>
            {shown}
        </section>
    }
}
