//! `saldo-web`: the operators' web UI, a Leptos client-side app that every
//! node serves at `/` and that talks to the same node's `/api/v1`.
//!
//! It depends on `saldo-api` (the API's types, the search-box and amount
//! parsers, receipts) and `saldo-sync` (value types) only, never on the node.
//! What can be decided without a browser lives in plain modules with unit
//! tests that run natively: the texts in both languages ([`i18n`]), the
//! counter's keyboard state machine ([`counter`]) and the hub's screen list
//! ([`hub`]). The Leptos app itself ([`app`]) exists on wasm32 only.

pub mod counter;
pub mod hub;
pub mod i18n;

#[cfg(target_arch = "wasm32")]
mod app;

/// The browser calls this once the wasm is loaded (see the node's `index.html`).
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    app::mount();
}
