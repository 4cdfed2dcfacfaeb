//! Families and consumers: search, open a family, edit its contacts, notify
//! channels and language, and import families from a CSV file, each refused
//! row shown with its line and what to fix.

use leptos::prelude::*;
use leptos::task::spawn_local;
use saldo_api::Lang;
use saldo_api::directory::{Family, FamilyList, ImportReport};

use super::i18n::{self as hi, H, ht};
use super::logic::{self, families_url, refused_row};
use super::net::{self, Method};
use super::ui::{Errors, actions_header, field, outcome, t};
use crate::app::ctx;
use crate::i18n::lang_code;

#[component]
pub fn Families() -> impl IntoView {
    let ctx = ctx();
    let query = RwSignal::new(String::new());
    let list = RwSignal::new(None::<FamilyList>);
    let open = RwSignal::new(None::<Family>);
    let errors = Errors::new();
    let find = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let url = families_url(&query.get_untracked());
        spawn_local(async move {
            match net::get_url::<FamilyList>(&url).await {
                Ok(found) => {
                    errors.clear();
                    list.set(Some(found));
                }
                Err(e) => errors.api(e, &["q"]),
            }
        });
    };
    let open_family = move |id: String| {
        spawn_local(async move {
            match net::get::<Family>(&format!("/families/{id}")).await {
                Ok(family) => {
                    errors.clear();
                    open.set(Some(family));
                }
                Err(e) => errors.api(e, &[]),
            }
        });
    };
    let rows = move || {
        list.get().map(|list| {
            let lang = ctx.lang.get();
            let rows = list
                .families
                .into_iter()
                .map(|f| {
                    let id = f.id.to_hex();
                    let who = format!("{} {}", f.payer_surname.as_str(), f.payer_name.as_str());
                    let label = format!("{} {who}", ht(lang, H::Open));
                    view! {
                        <tr>
                            <td>{who}</td>
                            <td>{f.consumers}</td>
                            <td><button type="button" class="secondary" aria-label=label
                                on:click=move |_| open_family(id.clone())>{ht(lang, H::Open)}</button></td>
                        </tr>
                    }
                })
                .collect_view();
            view! {
                <p>{format!("{} {}", list.total, ht(lang, H::AllFamilies))}</p>
                <div class="scroll"><table class="families">
                    <thead><tr><th scope="col">{ht(lang, H::Payer)}</th><th scope="col">{ht(lang, H::Children)}</th>{actions_header()}</tr></thead>
                    <tbody>{rows}</tbody>
                </table></div>
            }
        })
    };
    view! {
        <form role="search" on:submit=find>
            {field("families-q".into(), H::Search, Some(H::SearchFamiliesHelp), "search", query, errors, "q")}
            <button type="submit">{t(H::Find)}</button>
        </form>
        {outcome(errors)}
        {rows}
        {move || open.get().map(|family| view! { <FamilyCard family=family open=open/> })}
        <Import/>
    }
}

#[component]
fn FamilyCard(family: Family, open: RwSignal<Option<Family>>) -> impl IntoView {
    let ctx = ctx();
    let payer = &family.payer;
    let email = RwSignal::new(payer.email.as_ref().map(|e| e.as_str().to_owned()).unwrap_or_default());
    let phone = RwSignal::new(payer.phone.as_ref().map(|e| e.as_str().to_owned()).unwrap_or_default());
    let notify = RwSignal::new(logic::notify_code(payer.notify).to_owned());
    let language = RwSignal::new(payer.language);
    let errors = Errors::new();
    let id = family.id.to_hex();
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let update = logic::contacts(
            &email.get_untracked(),
            &phone.get_untracked(),
            logic::notify_of(&notify.get_untracked()),
            language.get_untracked(),
        );
        let (path, csrf) = (format!("/families/{id}/contacts"), ctx.csrf());
        spawn_local(async move {
            match net::send::<_, Family>(Method::Put, &path, &update, &csrf).await {
                // The boxes already show what was saved; the card stays, with its message.
                Ok(_) => errors.ok(ht(ctx.lang.get_untracked(), H::Saved)),
                Err(e) => errors.api(e, &["email", "phone", "notify", "language"]),
            }
        });
    };
    let title = format!("{} {}", payer.surname.as_str(), payer.name.as_str());
    let fiscal = payer.fiscal_code.as_str().to_owned();
    let children = family
        .consumers
        .iter()
        .map(|c| {
            let wallets = c
                .wallets
                .iter()
                .map(|w| {
                    let text =
                        crate::i18n::balance(ctx.lang.get_untracked(), w.provisional, w.provisional != w.confirmed);
                    format!("{}: {text}", w.service.as_str())
                })
                .collect::<Vec<_>>()
                .join(" · ");
            let school = [c.school.as_ref(), c.class.as_ref()]
                .into_iter()
                .flatten()
                .map(|l| l.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            view! {
                <li><strong>{format!("{} {}", c.surname.as_str(), c.name.as_str())}</strong>
                    {format!(" · {} · {} · {}", c.fiscal_code.as_str(), c.pan_masked, school)}
                    <br/>{wallets}
                    <br/><small>{format!("id {}", c.consumer.to_hex())}</small></li>
            }
        })
        .collect_view();
    view! {
        <article class="card family" aria-labelledby="family-title">
            <h2 id="family-title">{title}</h2>
            <p>{move || ht(ctx.lang.get(), H::FiscalCode)}": "{fiscal}</p>
            <h3>{t(H::Children)}</h3>
            <ul>{children}</ul>
            <form on:submit=save>
                {field("family-email".into(), H::Email, None, "email", email, errors, "email")}
                {field("family-phone".into(), H::Phone, None, "tel", phone, errors, "phone")}
                <div class="field">
                    <label for="family-notify">{t(H::Notify)}</label>
                    <select id="family-notify" prop:value=notify on:change=move |ev| notify.set(event_target_value(&ev))>
                        {["", "email", "sms", "email_and_sms", "none"].into_iter().map(|code| {
                            view! { <option value=code>{move || hi::notify(ctx.lang.get(), logic::notify_of(code))}</option> }
                        }).collect_view()}
                    </select>
                </div>
                <div class="field">
                    <label for="family-language">{t(H::MessagesLanguage)}</label>
                    <select id="family-language" prop:value=move || lang_code(language.get())
                        on:change=move |ev| language.set(crate::i18n::lang_from_code(Some(event_target_value(&ev).as_str())))>
                        <option value="it">"Italiano"</option>
                        <option value="en">"English"</option>
                    </select>
                </div>
                {outcome(errors)}
                <div class="buttons">
                    <button type="submit">{t(H::Save)}</button>
                    <button type="button" class="secondary" on:click=move |_| open.set(None)>{t(H::Close)}</button>
                </div>
            </form>
        </article>
    }
}

#[component]
fn Import() -> impl IntoView {
    let ctx = ctx();
    let report = RwSignal::new(None::<ImportReport>);
    let errors = Errors::new();
    let busy = RwSignal::new(false);
    let input = NodeRef::<leptos::html::Input>::new();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let file = input.get_untracked().and_then(|i| i.files()).and_then(|files| files.get(0));
        let Some(file) = file else {
            let lang = ctx.lang.get_untracked();
            errors.show(
                vec![logic::FieldError::new("file", lang.pick("scegli un file CSV", "choose a CSV file"))],
                &["file"],
            );
            return;
        };
        let csrf = ctx.csrf();
        busy.set(true);
        spawn_local(async move {
            let text = wasm_bindgen_futures::JsFuture::from(file.text()).await;
            let text = text.ok().and_then(|v| v.as_string()).unwrap_or_default();
            match net::post_csv::<ImportReport>("/families/import", text, &csrf).await {
                Ok(done) => {
                    errors.clear();
                    report.set(Some(done));
                }
                Err(e) => errors.api(e, &["file"]),
            }
            busy.set(false);
        });
    };
    let error = errors.of("file");
    let summary = move || {
        report.get().map(|r| {
            let lang = ctx.lang.get();
            let summary = match lang {
                Lang::It => format!(
                    "{}: {} righe, {} accettate, {} famiglie, {} bambini",
                    ht(lang, H::ImportDone),
                    r.rows,
                    r.accepted_rows,
                    r.families,
                    r.consumers
                ),
                Lang::En => format!(
                    "{}: {} rows, {} accepted, {} families, {} children",
                    ht(lang, H::ImportDone),
                    r.rows,
                    r.accepted_rows,
                    r.families,
                    r.consumers
                ),
            };
            let refused = if r.refused.is_empty() {
                view! { <p>{ht(lang, H::NoneRefused)}</p> }.into_any()
            } else {
                let rows = r
                    .refused
                    .iter()
                    .map(|row| {
                        let (line, column, message) = refused_row(row);
                        view! { <tr><td>{line}</td><td>{column}</td><td>{message}</td></tr> }
                    })
                    .collect_view();
                view! {
                    <div class="scroll"><table class="refused-rows" id="refused-rows">
                        <caption>{format!("{} ({})", ht(lang, H::RefusedRows), r.refused.len())}</caption>
                        <thead><tr><th scope="col">{ht(lang, H::Line)}</th><th scope="col">{ht(lang, H::Column)}</th><th scope="col">{ht(lang, H::Problem)}</th></tr></thead>
                        <tbody>{rows}</tbody>
                    </table></div>
                }
                .into_any()
            };
            view! { <div role="status" id="import-report"><p>{summary}</p>{refused}</div> }
        })
    };
    view! {
        <section class="card" aria-labelledby="import-title">
            <h2 id="import-title">{t(H::ImportTitle)}</h2>
            <form on:submit=submit>
                <div class="field">
                    <label for="import-file">{t(H::ImportFile)}</label>
                    <input id="import-file" type="file" accept=".csv,text/csv" node_ref=input
                        aria-describedby="import-help import-file-error"
                        aria-invalid=move || if error().is_some() { "true" } else { "false" } />
                    <p class="help" id="import-help">{t(H::ImportHelp)}</p>
                    <p class="error" id="import-file-error">{error}</p>
                </div>
                {outcome(errors)}
                <button type="submit" id="import-submit" disabled=busy>{t(H::Import)}</button>
            </form>
            {summary}
        </section>
    }
}
