//! The search-box parser lives in `saldo-api`, shared with the web UI so
//! that both understand what an operator types the same way.

pub use saldo_api::search::*;
