//! The status bar, always visible, fed by the node's event stream
//! (`/api/v1/events`, server-sent events; no polling): online or offline
//! with the hub, unconfirmed operations, last contact with the hub. Balance
//! events go to [`Ctx::balances`], where the screens read them.

use leptos::prelude::*;
use saldo_api::session::NodeKind;
use saldo_api::status::{Event, Status};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;

use super::{Ctx, ctx};
use crate::i18n::{Text, ago};

/// What the bar shows.
#[derive(Clone, Copy)]
struct Live {
    status: RwSignal<Option<Status>>,
    /// The stream to this node is open.
    connected: RwSignal<bool>,
    /// The browser's clock, ticking each second for "12 s ago".
    now_ms: RwSignal<u64>,
}

fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// Opens the event stream for as long as the session's screens are shown.
pub fn listen(ctx: Ctx) {
    let live = Live { status: RwSignal::new(None), connected: RwSignal::new(false), now_ms: RwSignal::new(now_ms()) };
    provide_context(live);
    let url = format!("{}/events", saldo_api::API_PREFIX);
    let Ok(source) = web_sys::EventSource::new(&url) else { return };
    let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |message: web_sys::MessageEvent| {
        let Some(data) = message.data().as_string() else { return };
        match serde_json::from_str::<Event>(&data) {
            Ok(Event::Status(status)) => {
                live.connected.set(true);
                live.status.set(Some(*status));
            }
            Ok(Event::Balance(change)) => ctx.balance_changed(change),
            Err(_) => {}
        }
    });
    for name in ["status", "balance"] {
        let _ = source.add_event_listener_with_callback(name, on_message.as_ref().unchecked_ref());
    }
    // The node could not list every wallet that moved (a catch-up moved
    // thousands, or this page fell behind): the screens read theirs again.
    let on_lagged = Closure::<dyn FnMut()>::new(move || ctx.lagged.update(|n| *n += 1));
    let _ = source.add_event_listener_with_callback("lagged", on_lagged.as_ref().unchecked_ref());
    let on_open = Closure::<dyn FnMut()>::new(move || live.connected.set(true));
    let on_error = Closure::<dyn FnMut()>::new(move || live.connected.set(false));
    source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    let tick = Closure::<dyn FnMut()>::new(move || live.now_ms.set(now_ms()));
    let interval = web_sys::window().and_then(|w| {
        w.set_interval_with_callback_and_timeout_and_arguments_0(tick.as_ref().unchecked_ref(), 1000).ok()
    });
    let keep = send_wrapper::SendWrapper::new((source, on_message, on_lagged, on_open, on_error, tick));
    on_cleanup(move || {
        let (source, ..) = &*keep;
        source.close();
        if let (Some(window), Some(id)) = (web_sys::window(), interval) {
            window.clear_interval_with_handle(id);
        }
    });
}

#[component]
pub fn StatusBar() -> impl IntoView {
    let ctx = ctx();
    let live = expect_context::<Live>();
    let online = move || live.connected.get() && live.status.with(|s| s.as_ref().is_some_and(|s| s.online));
    let state_text = move || if online() { ctx.t(Text::Online) } else { ctx.t(Text::Offline) };
    let hub = move || live.status.with(|s| s.as_ref().is_some_and(|s| s.node == NodeKind::Hub));
    let unconfirmed = move || live.status.with(|s| s.as_ref().map(|s| s.unconfirmed_operations).unwrap_or(0));
    let contact = move || {
        let lang = ctx.lang.get();
        let then = live.status.with(|s| s.as_ref().and_then(|s| s.last_hub_contact_ms));
        ago(lang, then, live.now_ms.get())
    };
    let device = move || live.status.with(|s| s.as_ref().map(|s| s.device_name.clone()).unwrap_or_default());
    view! {
        <div class="status" role="status" aria-live="polite" id="status">
            <strong class="device">{device}</strong>
            <span id="hub-state" class=move || if online() { "state online" } else { "state offline" }
                data-online=move || online().to_string()>
                <span aria-hidden="true">{move || if online() { "● " } else { "○ " }}</span>
                {state_text}
            </span>
            <Show when=move || !hub()>
                <span id="unconfirmed" data-count=move || unconfirmed().to_string()>
                    {move || format!("{} {}", unconfirmed(), ctx.t(Text::Unconfirmed))}
                </span>
                <span id="last-contact">{move || format!("{}: {}", ctx.t(Text::LastContact), contact())}</span>
            </Show>
        </div>
    }
}
