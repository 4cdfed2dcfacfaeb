//! The operators' web UI in a real browser (issue 14's acceptance): headless
//! Chromium (Debian's `chromium` and `chromium-driver`, installed by
//! `scripts/browser-setup`) driven over WebDriver with fantoccini, against
//! real `saldo hub` and `saldo cashpoint` processes. The counter is driven
//! by keyboard alone (the tests count the Enter presses and never click);
//! axe-core checks the main screens; screenshots go to `target/screenshots/`.

mod common;
#[path = "browser/counter.rs"]
mod counter;
#[path = "browser/harness.rs"]
mod harness;
#[path = "browser/hub.rs"]
mod hub;
