//! Operations the hub flagged, and their review: accept (confirming when a
//! wallet would go below its floor) or reject with a note the cash point sees.

use leptos::prelude::*;
use leptos::task::spawn_local;
use saldo_api::money::format_eur;
use saldo_api::review::{FlaggedList, FlaggedOperation, ReviewOutcome};

use super::i18n::{self as hi, H, ht};
use super::logic::{self, short_id, time_text};
use super::net::{self, Method};
use super::ui::{Errors, field, outcome, t};
use crate::app::ctx;

fn load(list: RwSignal<Option<FlaggedList>>, errors: Errors) {
    spawn_local(async move {
        match net::get::<FlaggedList>("/flagged").await {
            Ok(found) => list.set(Some(found)),
            Err(e) => errors.api(e, &[]),
        }
    });
}

#[component]
pub fn Flagged() -> impl IntoView {
    let ctx = ctx();
    let list = RwSignal::new(None::<FlaggedList>);
    let errors = Errors::new();
    load(list, errors);
    view! {
        {outcome(errors)}
        {move || list.get().map(|l| {
            if l.operations.is_empty() {
                view! { <p>{ht(ctx.lang.get(), H::NothingFlagged)}</p> }.into_any()
            } else {
                l.operations.into_iter().map(|op| view! { <FlaggedCard operation=op list=list/> }).collect_view().into_any()
            }
        })}
    }
}

#[component]
fn FlaggedCard(operation: FlaggedOperation, list: RwSignal<Option<FlaggedList>>) -> impl IntoView {
    let ctx = ctx();
    let hex = operation.operation.to_hex();
    let note = RwSignal::new(String::new());
    let confirm = RwSignal::new(false);
    let errors = Errors::new();
    let decide = {
        let hex = hex.clone();
        move |accept: bool| {
            let request = match logic::review(accept, &note.get_untracked(), confirm.get_untracked()) {
                Ok(request) => request,
                Err(e) => return errors.show(vec![e], &["note", "confirm_below_floor"]),
            };
            let (path, csrf, lang) = (format!("/flagged/{hex}/review"), ctx.csrf(), ctx.lang.get_untracked());
            spawn_local(async move {
                match net::send::<_, ReviewOutcome>(Method::Post, &path, &request, &csrf).await {
                    Ok(outcome) => {
                        errors.ok(ht(lang, if outcome.accepted { H::Accepted } else { H::Rejected }));
                        load(list, errors);
                    }
                    Err(e) => errors.api(e, &["note", "confirm_below_floor"]),
                }
            });
        }
    };
    let below = operation.below_floor_if_accepted.clone();
    let has_below = !below.is_empty();
    let below_list = below
        .into_iter()
        .map(|w| {
            view! { <li>{format!("{} · {} · {} → {} ({})", w.consumer_name, w.service.as_str(), format_eur(w.floor), format_eur(w.after), format_eur(w.short))}</li> }
        })
        .collect_view();
    let title_id = format!("flag-{hex}");
    let confirm_id = format!("confirm-{hex}");
    let (labelled, confirm_for) = (title_id.clone(), confirm_id.clone());
    let reason = operation.reason;
    let details = move || {
        let lang = ctx.lang.get();
        vec![
            (ht(lang, H::Reason), hi::flag_reason(lang, reason).to_owned()),
            (
                ht(lang, H::Author),
                operation.author_name.clone().unwrap_or_else(|| short_id(&operation.author.to_hex())),
            ),
            (ht(lang, H::Kind), operation.kind.clone()),
            (ht(lang, H::Receipt), operation.receipt.map(|r| r.to_string()).unwrap_or_else(|| "—".into())),
            (ht(lang, H::Amount), format_eur(operation.amount)),
            (ht(lang, H::Recorded), time_text(operation.recorded_at_ms)),
            (ht(lang, H::Detail), operation.detail.clone()),
        ]
        .into_iter()
        .map(|(k, v)| view! { <dt>{k}</dt><dd>{v}</dd> })
        .collect_view()
    };
    let accept = decide.clone();
    view! {
        <article class="card flagged" aria-labelledby=labelled>
            <h2 id=title_id>{format!("{} {}", ht(ctx.lang.get_untracked(), H::Operation), short_id(&hex))}</h2>
            <dl class="pairs">{details}</dl>
            <div hidden=!has_below class="warning" role="note">
                <p><strong>"⚠ "</strong>{t(H::BelowFloorWarning)}</p>
                <ul>{below_list}</ul>
                <label for=confirm_for>
                    <input type="checkbox" id=confirm_id prop:checked=confirm on:change=move |ev| confirm.set(event_target_checked(&ev)) />
                    " " {t(H::ConfirmBelowFloor)}
                </label>
                <p class="error">{errors.of("confirm_below_floor")}</p>
            </div>
            <form on:submit=|ev: leptos::ev::SubmitEvent| ev.prevent_default()>
                {field(format!("note-{}", short_id(&hex).trim_end_matches('…')), H::Note, Some(H::NoteHelp), "text", note, errors, "note")}
                {outcome(errors)}
                <div class="buttons">
                    <button type="button" on:click=move |_| accept(true)>{t(H::Accept)}</button>
                    <button type="button" class="danger" on:click=move |_| decide(false)>{t(H::Reject)}</button>
                </div>
            </form>
        </article>
    }
}
