//! `saldo-node`: a Saldo node (the `saldo` binary and its library).
//!
//! - [`store`]: all SQL (SQLite, WAL, versioned migrations);
//! - [`writers`]: a waiting top-up goes before the next transaction of bulk work;
//! - [`state`]: applying a verified operation and its effects;
//! - [`ledger`]: the hub's rules and what counts, as pure functions;
//! - [`directory`]: families, consumers, contacts and services as Automerge documents;
//! - [`search`]: finding a consumer by PAN, codice fiscale or name prefix;
//! - [`node`]: a node's identity, store and operations;
//! - [`import`], [`generate`]: CSV import and synthetic realms;
//! - [`backup`]: a data directory in one file, and back;
//! - [`service`]: the one handle every front end calls (one writer, reads on their own connections, events);
//! - [`delivery`]: the hub's sender: the outbox's messages by e-mail (SMTP) and SMS (an HTTP gateway);
//! - [`http`]: the operators' HTTP API under `/api/v1` (axum), over the service layer;
//! - [`cli`]: the `saldo` command line; [`out_file`]: the files it writes (`--out`).

pub mod backup;
pub mod cli;
pub mod delivery;
pub mod directory;
pub mod generate;
pub mod http;
pub mod import;
pub mod ledger;
pub mod net;
pub mod node;
pub mod out_file;
pub mod outbox;
pub mod reports_csv;
pub mod search;
pub mod service;
pub mod state;
pub mod store;
pub mod writers;

pub use node::{Clock, Node, NodeError, SystemClock};
