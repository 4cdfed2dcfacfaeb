//! E-mail through SMTP (`lettre`): plain text with an HTML alternative, the
//! `Message-ID` set to the outbox row's reference, so the one copy a crash
//! may send twice is recognisably the same message.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::Failure;
use super::config::{ConfigError, EmailSettings, Env, Security};
use crate::store::outbox::OutboxRow;

pub const SMTP_TIMEOUT_MS_DEFAULT: u64 = 20_000;
pub const SMTP_CONNECTIONS_MAX_DEFAULT: u32 = 4;

/// A configured SMTP server.
#[derive(Clone)]
pub struct EmailSender {
    builder: AsyncSmtpTransportBuilder,
    /// Built in the runtime on first use (its pool runs a task there).
    transport: std::sync::Arc<std::sync::OnceLock<AsyncSmtpTransport<Tokio1Executor>>>,
    from: Mailbox,
    /// `host:port (security)`, for messages to the operator.
    server: String,
}

impl std::fmt::Debug for EmailSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EmailSender({})", self.server)
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl EmailSender {
    /// Checks `[email]` and builds the transport (no connection yet).
    /// Secrets may come from the environment: `SALDO_SMTP_USERNAME`,
    /// `SALDO_SMTP_PASSWORD` override what the file says.
    pub fn new(settings: &EmailSettings, env: Env<'_>) -> Result<EmailSender, ConfigError> {
        let host = settings.host.as_deref().map(str::trim).filter(|h| !h.is_empty()).ok_or_else(|| {
            ConfigError::new(
                "[email] host",
                "missing: write the SMTP server's name, e.g. host = \"smtp.comune.example\"",
            )
        })?;
        let from = settings.from.as_deref().ok_or_else(|| {
            ConfigError::new(
                "[email] from",
                "missing: write the sender, e.g. from = \"Comune di Esempio <servizi@comune.example>\"",
            )
        })?;
        let from: Mailbox = from.parse().map_err(|e| {
            ConfigError::new(
                "[email] from",
                format!("{from:?} is not an e-mail address ({e}): write \"Name <a@b.example>\""),
            )
        })?;
        let username = env("SALDO_SMTP_USERNAME").or_else(|| settings.username.clone());
        let password = env("SALDO_SMTP_PASSWORD").or_else(|| settings.password.clone());
        let credentials = match (username, password) {
            (Some(user), Some(password)) => Some(Credentials::new(user, password)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "[email] password",
                    "a username is given without a password: set SALDO_SMTP_PASSWORD (or password)",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "[email] username",
                    "a password is given without a username: write username",
                ));
            }
        };
        if settings.security == Security::Plain && credentials.is_some() && !is_loopback(host) {
            return Err(ConfigError::new(
                "[email] security",
                format!(
                    "\"plain\" would send the password to {host} unencrypted: write security = \"starttls\" or \"tls\", \
                     or use plain only for a relay on this machine"
                ),
            ));
        }
        let tls = || {
            TlsParameters::new(host.to_string())
                .map_err(|e| ConfigError::new("[email] host", format!("cannot set up TLS for {host:?}: {e}")))
        };
        let (tls, port) = match settings.security {
            Security::Starttls => (Tls::Required(tls()?), 587),
            Security::Tls => (Tls::Wrapper(tls()?), 465),
            Security::Plain => (Tls::None, 25),
        };
        let port = settings.port.unwrap_or(port);
        let timeout_ms = settings.timeout_ms.unwrap_or(SMTP_TIMEOUT_MS_DEFAULT);
        if !(100..=300_000).contains(&timeout_ms) {
            return Err(ConfigError::new("[email] timeout_ms", "write a number from 100 to 300000 (default 20000)"));
        }
        let connections = settings.connections_max.unwrap_or(SMTP_CONNECTIONS_MAX_DEFAULT);
        if !(1..=64).contains(&connections) {
            return Err(ConfigError::new("[email] connections_max", "write a number from 1 to 64 (default 4)"));
        }
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .tls(tls)
            .timeout(Some(Duration::from_millis(timeout_ms)))
            .pool_config(PoolConfig::new().max_size(connections));
        if let Some(credentials) = credentials {
            builder = builder.credentials(credentials);
        }
        let security = match settings.security {
            Security::Starttls => "starttls",
            Security::Tls => "tls",
            Security::Plain => "plain",
        };
        Ok(EmailSender {
            builder,
            transport: std::sync::Arc::default(),
            from,
            server: format!("{host}:{port} ({security})"),
        })
    }

    /// The transport (with its pool of connections), inside a runtime.
    fn transport(&self) -> &AsyncSmtpTransport<Tokio1Executor> {
        self.transport.get_or_init(|| self.builder.clone().build())
    }

    /// The server, as the operator configured it.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Connects and says hello, to report a wrong host or port when the
    /// hub starts rather than at the first receipt.
    pub async fn check(&self) -> Result<(), String> {
        match self.transport().test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!("the SMTP server {} does not answer as one should", self.server)),
            Err(e) => Err(explain(&self.server, &e)),
        }
    }

    /// Hands `row` to the server.
    pub async fn send(&self, row: &OutboxRow) -> Result<(), Failure> {
        let message = self.message(row)?;
        match self.transport().send(message).await {
            Ok(_) => Ok(()),
            // A refusal of the recipient (550 no such user) will not change
            // by waiting; anything else (auth, a full mailbox, a network
            // fault) may, once the operator fixes it.
            Err(e) => {
                let permanent = e.is_permanent() && e.status().is_some_and(|code| code.to_string().starts_with("55"));
                Err(Failure { error: explain(&self.server, &e), permanent })
            }
        }
    }

    fn message(&self, row: &OutboxRow) -> Result<Message, Failure> {
        let to: Mailbox = row.recipient.parse().map_err(|e| Failure {
            error: format!(
                "{:?} is not an e-mail address ({e}): correct the family's contact and send the receipt again",
                row.recipient
            ),
            permanent: true,
        })?;
        let reference =
            if row.reference.starts_with('<') { row.reference.clone() } else { format!("<{}>", row.reference) };
        let builder =
            Message::builder().from(self.from.clone()).to(to).subject(row.subject.clone()).message_id(Some(reference));
        let built = match &row.body_html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(row.body_text.clone(), html.clone())),
            None => {
                builder.singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(row.body_text.clone()))
            }
        };
        built.map_err(|e| Failure { error: format!("the message cannot be built: {e}"), permanent: true })
    }
}

/// What went wrong talking to the server, with what to check.
fn explain(server: &str, e: &lettre::transport::smtp::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    let hint = if e.is_permanent() {
        "the server refused it"
    } else if e.is_timeout() {
        "no answer in time: check [email] host and port in saldo.toml, and the network"
    } else if e.is_tls() {
        "check [email] security (starttls, tls or plain) and port in saldo.toml"
    } else if e.is_transient() {
        "the server asked to try later"
    } else {
        "check [email] host, port, security and the credentials in saldo.toml"
    };
    format!("SMTP {server}: {text} ({hint})")
}
