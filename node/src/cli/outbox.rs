//! `saldo outbox list / show / retry / resend`: the hub's messages to
//! families, where their delivery stands, a retry by hand, a receipt sent again.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Subcommand;
use saldo_api::outbox::{ChannelApi, DeliveryStateApi, OutboxListParams, OutboxMessage, ResendRequest};
use saldo_sync::OpId;

use super::args::{DataArg, JsonArg};
use super::render::print_json;
use super::{OutputError, Session};

#[derive(Debug, Subcommand)]
pub(super) enum OutboxCommand {
    /// On the hub: the messages to families, newest first, with their delivery state.
    List {
        #[command(flatten)]
        data: DataArg,
        /// Only messages in this state: queued, failing, sent or given-up.
        #[arg(long)]
        state: Option<String>,
        /// Only messages older than this number (the next page).
        #[arg(long)]
        before: Option<i64>,
        /// At most this many (1 to 500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        json: JsonArg,
    },
    /// On the hub: one message, with its text and last error.
    Show {
        #[command(flatten)]
        data: DataArg,
        id: i64,
        #[command(flatten)]
        json: JsonArg,
    },
    /// On the hub: try a message that is failing or was given up again, now.
    Retry {
        #[command(flatten)]
        data: DataArg,
        id: i64,
        #[command(flatten)]
        json: JsonArg,
    },
    /// On the hub: send the receipt of an operation again.
    Resend {
        #[command(flatten)]
        data: DataArg,
        /// The operation's id (hex), as the receipt's verification gives.
        operation: String,
        /// email, sms, or email,sms.
        #[arg(long, default_value = "email")]
        channels: String,
        #[command(flatten)]
        json: JsonArg,
    },
}

impl OutboxCommand {
    pub(super) fn data_dir(&self) -> PathBuf {
        match self {
            OutboxCommand::List { data, .. }
            | OutboxCommand::Show { data, .. }
            | OutboxCommand::Retry { data, .. }
            | OutboxCommand::Resend { data, .. } => data.data.clone(),
        }
    }
}

pub(super) fn run(command: OutboxCommand) -> Result<()> {
    match command {
        OutboxCommand::List { data, state, before, limit, json } => {
            let state = match state.as_deref() {
                None => None,
                Some(text) => match DeliveryStateApi::parse(text) {
                    Some(state) => Some(state),
                    None => bail!("--state {text:?} is not a state: queued, failing, sent or given-up"),
                },
            };
            let session = Session::open(&data.data)?;
            let params = OutboxListParams { state, before, limit: Some(limit) };
            let list = session.call(async |s| s.outbox(params).await)?;
            if json.json {
                print_json(&list)?;
                return Ok(());
            }
            let c = &list.counts;
            outln!("queued {}  failing {}  sent {}  given up {}", c.queued, c.failing, c.sent, c.given_up);
            for message in &list.messages {
                outln!("{}", line(message));
            }
            if let Some(before) = list.next_before {
                outln!("more: saldo outbox list --before {before}");
            }
        }
        OutboxCommand::Show { data, id, json } => {
            let session = Session::open(&data.data)?;
            let message = session.call(async |s| s.outbox_message(id).await)?;
            if json.json {
                print_json(&message)?;
            } else {
                outln!("{}", line(&message));
                outln!("reference {}", message.reference);
                if !message.subject.is_empty() {
                    outln!("subject: {}", message.subject);
                }
                outln!("{}", message.body_text);
            }
        }
        OutboxCommand::Retry { data, id, json } => {
            let session = Session::open(&data.data)?;
            let message = session.call(async |s| s.retry_message(id).await)?;
            if json.json {
                print_json(&message)?;
            } else {
                outln!("message {id} is queued again: {}", line(&message));
            }
        }
        OutboxCommand::Resend { data, operation, channels, json } => {
            let op = OpId::from_hex(operation.trim())
                .map_err(|_| anyhow::anyhow!("{operation:?} is not an operation id: 64 hexadecimal digits"))?;
            let mut wanted = Vec::new();
            for part in channels.split([',', '+']).map(str::trim).filter(|p| !p.is_empty()) {
                wanted.push(match part {
                    "email" | "e-mail" => ChannelApi::Email,
                    "sms" => ChannelApi::Sms,
                    other => bail!("--channels: {other:?} is not a channel: email, sms or email,sms"),
                });
            }
            let session = Session::open(&data.data)?;
            let report = session.call(async |s| s.resend_receipt(op, ResendRequest { channels: wanted }).await)?;
            if json.json {
                print_json(&report)?;
            } else {
                for message in &report.queued {
                    outln!("queued {}", line(message));
                }
            }
        }
    }
    Ok(())
}

fn line(m: &OutboxMessage) -> String {
    let channel = match m.channel {
        ChannelApi::Email => "email",
        ChannelApi::Sms => "sms",
    };
    let purpose = serde_json::to_value(m.purpose).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    let error = m.last_error.as_deref().map(|e| format!("  last error: {e}")).unwrap_or_default();
    format!(
        "{:>6}  {:<8} {:<8} {:<5} {:<32} attempts {}{error}",
        m.id,
        m.state.name(),
        purpose,
        channel,
        m.recipient,
        m.attempts
    )
}
