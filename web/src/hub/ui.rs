//! What every hub screen shares (wasm32 only): the screen for a route, a
//! labelled input with its mistake shown beside it, and how an answer's
//! error is split between the fields and the form.

use leptos::prelude::*;
use saldo_api::ApiError;

use super::i18n::{H, ht};
use super::logic::FieldError;
use super::{Screen, screen as screen_of};
use crate::app::ctx;

/// The screen a hub route names (the app's router calls this for `hub/…`).
pub fn screen(route: &str) -> AnyView {
    let Some(found) = screen_of(route) else { return ().into_any() };
    let ctx = ctx();
    let title = move || found.title(ctx.lang.get());
    let body = match found.id {
        Screen::Families => super::families::Families().into_any(),
        Screen::Services => super::services::Services().into_any(),
        Screen::CashPoints => super::cash_points::CashPoints().into_any(),
        Screen::Operators => super::operators::Operators().into_any(),
        Screen::Flagged => super::flagged::Flagged().into_any(),
        Screen::Outbox => super::outbox::Outbox().into_any(),
        Screen::Reports => super::reports::Reports().into_any(),
    };
    view! {
        <section class="hub" aria-labelledby="hub-title">
            <h1 id="hub-title" tabindex="-1">{title}</h1>
            {body}
        </section>
    }
    .into_any()
}

/// A hub text that follows the language.
pub fn t(text: H) -> impl Fn() -> &'static str + Copy + Send + Sync + 'static {
    let ctx = ctx();
    move || ht(ctx.lang.get(), text)
}

/// The header of a table's column of buttons: named for screen readers.
pub fn actions_header() -> impl IntoView {
    view! { <th scope="col"><span class="visually-hidden">{t(H::Actions)}</span></th> }
}

/// A form's mistakes: per field, and the rest for the whole form.
#[derive(Debug, Clone, Copy)]
pub struct Errors {
    pub fields: RwSignal<Vec<FieldError>>,
    pub form: RwSignal<Option<String>>,
    pub done: RwSignal<Option<String>>,
}

impl Default for Errors {
    fn default() -> Self {
        Errors::new()
    }
}

impl Errors {
    pub fn new() -> Errors {
        Errors { fields: RwSignal::new(Vec::new()), form: RwSignal::new(None), done: RwSignal::new(None) }
    }

    pub fn clear(&self) {
        self.fields.set(Vec::new());
        self.form.set(None);
        self.done.set(None);
    }

    /// Shows each mistake beside its field when the form has it, else above
    /// the form's buttons.
    pub fn show(&self, errors: Vec<FieldError>, known: &[&str]) {
        let (fields, rest): (Vec<_>, Vec<_>) = errors.into_iter().partition(|e| known.contains(&e.field.as_str()));
        self.fields.set(fields);
        self.done.set(None);
        self.form.set((!rest.is_empty()).then(|| rest.into_iter().map(|e| e.message).collect::<Vec<_>>().join(" · ")));
    }

    pub fn api(&self, error: ApiError, known: &[&str]) {
        self.show(vec![FieldError::from(error)], known);
    }

    pub fn ok(&self, message: impl Into<String>) {
        self.fields.set(Vec::new());
        self.form.set(None);
        self.done.set(Some(message.into()));
    }

    pub fn of(self, field: &'static str) -> impl Fn() -> Option<String> + Copy + Send + Sync + 'static {
        let fields = self.fields;
        move || fields.with(|all| all.iter().find(|e| e.field == field).map(|e| e.message.clone()))
    }
}

/// The form's outcome: what was done, or the mistakes that belong to no field.
pub fn outcome(errors: Errors) -> impl IntoView {
    view! {
        <p class="done" role="status">{move || errors.done.get()}</p>
        <p class="error" role="alert">{move || errors.form.get()}</p>
    }
}

/// A labelled input with help and its mistake beside it, described to
/// screen readers (`aria-describedby`) and marked invalid in words too.
pub fn field(
    id: String,
    label: H,
    help: Option<H>,
    kind: &'static str,
    value: RwSignal<String>,
    errors: Errors,
    name: &'static str,
) -> impl IntoView {
    let error = errors.of(name);
    let (help_id, error_id) = (format!("{id}-help"), format!("{id}-error"));
    let described = if help.is_some() { format!("{help_id} {error_id}") } else { error_id.clone() };
    view! {
        <div class="field">
            <label for=id.clone()>{t(label)}</label>
            <input id=id type=kind autocomplete="off" aria-describedby=described
                aria-invalid=move || if error().is_some() { "true" } else { "false" }
                prop:value=value on:input=move |ev| value.set(event_target_value(&ev)) />
            {help.map(|h| view! { <p class="help" id=help_id>{t(h)}</p> })}
            <p class="error" id=error_id>{error}</p>
        </div>
    }
}
