//! Operators (administrators only): the list, adding one (login, name,
//! role, the cash point of a cashier, a first password), setting a new
//! password, disabling and enabling.

use leptos::prelude::*;
use leptos::task::spawn_local;
use saldo_api::Lang;
use saldo_api::cash_points::CashPointList;
use saldo_api::operators::{OperatorList, OperatorUpdate, OperatorView};
use saldo_api::session::OperatorRole;

use super::i18n::{self as hi, H, ht};
use super::logic::{self, OperatorForm};
use super::net::{self, Method};
use super::ui::{Errors, field, outcome, t};
use crate::app::ctx;

const FIELDS: &[&str] = &["login", "name", "role", "cash_point", "password"];

fn load(list: RwSignal<Option<OperatorList>>, errors: Errors) {
    spawn_local(async move {
        match net::get::<OperatorList>("/operators").await {
            Ok(found) => list.set(Some(found)),
            Err(e) => errors.api(e, &[]),
        }
    });
}

#[component]
pub fn Operators() -> impl IntoView {
    let list = RwSignal::new(None::<OperatorList>);
    let errors = Errors::new();
    load(list, errors);
    let rows = move || {
        list.get().map(|found| {
            found.operators.into_iter().map(|op| view! { <OperatorRow operator=op list=list/> }).collect_view()
        })
    };
    view! {
        {outcome(errors)}
        <div class="scroll"><table class="operators">
            <thead><tr>
                <th scope="col">{t(H::Login)}</th><th scope="col">{t(H::Name)}</th><th scope="col">{t(H::Role)}</th>
                <th scope="col">{t(H::CashPoint)}</th><th scope="col">{t(H::State)}</th><th scope="col">{t(H::SetPassword)}</th>
            </tr></thead>
            <tbody>{rows}</tbody>
        </table></div>
        <NewOperator list=list/>
    }
}

#[component]
fn OperatorRow(operator: OperatorView, list: RwSignal<Option<OperatorList>>) -> impl IntoView {
    let ctx = ctx();
    let login = operator.login.as_str().to_owned();
    let password = RwSignal::new(String::new());
    let errors = Errors::new();
    let disabled = operator.disabled;
    let change = move |login: String, update: OperatorUpdate| {
        let (path, csrf, lang) = (format!("/operators/{login}"), ctx.csrf(), ctx.lang.get_untracked());
        spawn_local(async move {
            match net::send::<_, OperatorView>(Method::Patch, &path, &update, &csrf).await {
                Ok(view) => {
                    errors.ok(with_one_time_password(lang, ht(lang, H::Saved).to_owned(), &view));
                    password.set(String::new());
                    load(list, errors);
                }
                Err(e) => errors.api(e, &["password"]),
            }
        });
    };
    let set_password = {
        let login = login.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            match logic::new_password(&password.get_untracked()) {
                Ok(update) => change(login.clone(), update),
                Err(e) => errors.show(vec![e], &["password"]),
            }
        }
    };
    let toggle = {
        let login = login.clone();
        move |_| change(login.clone(), OperatorUpdate { disabled: Some(!disabled), ..OperatorUpdate::default() })
    };
    let id = format!("password-{login}");
    let toggle_label = move || {
        let lang = ctx.lang.get();
        if disabled { ht(lang, H::Enable) } else { ht(lang, H::Disable) }
    };
    view! {
        <tr>
            <td>{login.clone()}</td>
            <td>{operator.name.as_str().to_owned()}</td>
            <td>{move || hi::role(ctx.lang.get(), operator.role)}</td>
            <td>{operator.cash_point_name.clone().unwrap_or_default()}</td>
            <td>
                {move || ht(ctx.lang.get(), if disabled { H::Disabled } else { H::Enabled })}
                " "
                <button type="button" class="secondary" on:click=toggle
                    aria-label=move || format!("{} {}", toggle_label(), login)>{toggle_label}</button>
            </td>
            <td>
                <form on:submit=set_password class="inline">
                    {field(id, H::NewPassword, None, "password", password, errors, "password")}
                    <button type="submit">{t(H::SetPassword)}</button>
                    {outcome(errors)}
                </form>
            </td>
        </tr>
    }
}

/// `saved`, and the one-time password the node generated, if it did (shown
/// only in this answer).
fn with_one_time_password(lang: Lang, saved: String, view: &OperatorView) -> String {
    match &view.one_time_password {
        Some(password) => format!("{saved} — {}: {password}", ht(lang, H::OneTimePassword)),
        None => saved,
    }
}

fn role_code(role: OperatorRole) -> &'static str {
    match role {
        OperatorRole::Administrator => "administrator",
        OperatorRole::Clerk => "clerk",
        OperatorRole::Cashier => "cashier",
    }
}

fn role_of(code: &str) -> OperatorRole {
    match code {
        "administrator" => OperatorRole::Administrator,
        "clerk" => OperatorRole::Clerk,
        _ => OperatorRole::Cashier,
    }
}

#[component]
fn NewOperator(list: RwSignal<Option<OperatorList>>) -> impl IntoView {
    let ctx = ctx();
    let (login, name, password) =
        (RwSignal::new(String::new()), RwSignal::new(String::new()), RwSignal::new(String::new()));
    let role = RwSignal::new(OperatorRole::Cashier);
    let cash_point = RwSignal::new(String::new());
    let cash_points = RwSignal::new(Vec::<(String, String)>::new());
    spawn_local(async move {
        if let Ok(found) = net::get::<CashPointList>("/cash-points").await {
            let active = found.cash_points.into_iter().filter(|c| c.revoked.is_none());
            cash_points.set(active.map(|c| (c.device.to_hex(), c.name)).collect());
        }
    });
    let errors = Errors::new();
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let is_cashier = role.get_untracked() == OperatorRole::Cashier;
        let chosen = cash_point.get_untracked();
        let chosen = if is_cashier && chosen.is_empty() {
            cash_points.get_untracked().first().map(|c| c.0.clone()).unwrap_or_default()
        } else if is_cashier {
            chosen
        } else {
            String::new()
        };
        let form = OperatorForm {
            login: login.get_untracked(),
            name: name.get_untracked(),
            role: role.get_untracked(),
            cash_point: chosen,
            password: password.get_untracked(),
        };
        let request = match form.request() {
            Ok(request) => request,
            Err(found) => return errors.show(found, FIELDS),
        };
        let (csrf, lang) = (ctx.csrf(), ctx.lang.get_untracked());
        spawn_local(async move {
            match net::send::<_, OperatorView>(Method::Post, "/operators", &request, &csrf).await {
                Ok(made) => {
                    let saved = format!("{}: {}", ht(lang, H::Saved), made.login.as_str());
                    errors.ok(with_one_time_password(lang, saved, &made));
                    login.set(String::new());
                    name.set(String::new());
                    password.set(String::new());
                    load(list, errors);
                }
                Err(e) => errors.api(e, FIELDS),
            }
        });
    };
    let is_cashier = move || role.get() == OperatorRole::Cashier;
    view! {
        <section class="card" aria-labelledby="new-operator-title">
            <h2 id="new-operator-title">{t(H::NewOperator)}</h2>
            <form on:submit=add class="grid">
                {field("operator-login".into(), H::Login, None, "text", login, errors, "login")}
                {field("operator-name".into(), H::Name, None, "text", name, errors, "name")}
                <div class="field">
                    <label for="operator-role">{t(H::Role)}</label>
                    <select id="operator-role" prop:value=move || role_code(role.get())
                        on:change=move |ev| role.set(role_of(&event_target_value(&ev)))>
                        {[OperatorRole::Cashier, OperatorRole::Clerk, OperatorRole::Administrator].into_iter().map(|r| {
                            view! { <option value=role_code(r)>{move || hi::role(ctx.lang.get(), r)}</option> }
                        }).collect_view()}
                    </select>
                </div>
                <div class="field" hidden=move || !is_cashier()>
                    <label for="operator-cash-point">{t(H::CashPoint)}</label>
                    <select id="operator-cash-point" prop:value=cash_point aria-describedby="operator-cash-point-error"
                        on:change=move |ev| cash_point.set(event_target_value(&ev))>
                        {move || cash_points.get().into_iter().map(|(hex, name)| view! { <option value=hex>{name}</option> }).collect_view()}
                    </select>
                    <p class="error" id="operator-cash-point-error">{errors.of("cash_point")}</p>
                </div>
                {field("operator-password".into(), H::NewPassword, None, "password", password, errors, "password")}
                {outcome(errors)}
                <button type="submit">{t(H::Add)}</button>
            </form>
        </section>
    }
}
