//! SMS through an HTTP gateway, configured rather than coded, so any
//! provider can be plugged in: URL, method, headers, a body template with
//! placeholders (`{to}`, `{text}`, `{reference}`; `{token}` for a secret
//! from `SALDO_SMS_TOKEN`), and what counts as success.
//!
//! A placeholder is `{` + a lowercase name + `}`; any other `{` is literal,
//! so a JSON body is written as it is sent:
//! `{"to": "{to}", "text": "{text}"}`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::Failure;
use super::config::{BodyEncoding, ConfigError, Env, SmsSettings};
use crate::store::outbox::OutboxRow;

pub const SMS_TIMEOUT_MS_DEFAULT: u64 = 20_000;
/// How much of a gateway's reply is read (and quoted in an error).
pub const SMS_REPLY_BYTES_MAX: u64 = 64 * 1024;
const REPLY_QUOTED_CHARS_MAX: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    To,
    Text,
    Reference,
    Token,
}

impl Field {
    fn parse(name: &str) -> Option<Field> {
        match name {
            "to" => Some(Field::To),
            "text" => Some(Field::Text),
            "reference" => Some(Field::Reference),
            "token" => Some(Field::Token),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Field(Field),
}

/// A text with placeholders, parsed once when the hub starts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Template {
    parts: Vec<Part>,
}

/// The values a template is filled with.
struct Values<'a> {
    to: &'a str,
    text: &'a str,
    reference: &'a str,
    token: &'a str,
}

impl Template {
    /// Parses `text`, which may use the placeholders `allowed`.
    fn parse(text: &str, allowed: &[Field], key: &str) -> Result<Template, ConfigError> {
        let names = |allowed: &[Field]| {
            allowed
                .iter()
                .map(|f| match f {
                    Field::To => "{to}",
                    Field::Text => "{text}",
                    Field::Reference => "{reference}",
                    Field::Token => "{token}",
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            literal.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let name_len = after.find(|c: char| !(c.is_ascii_lowercase() || c == '_')).unwrap_or(after.len());
            if name_len == 0 {
                // `{"`, `{ `: a literal brace (JSON).
                literal.push('{');
                rest = after;
                continue;
            }
            let name = &after[..name_len];
            if !after[name_len..].starts_with('}') {
                return Err(ConfigError::new(
                    key,
                    format!(
                        "the placeholder {{{name} does not close: write {{{name}}} (placeholders: {})",
                        names(allowed)
                    ),
                ));
            }
            let field = Field::parse(name).filter(|f| allowed.contains(f)).ok_or_else(|| {
                ConfigError::new(key, format!("unknown placeholder {{{name}}}: write one of {}", names(allowed)))
            })?;
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            parts.push(Part::Field(field));
            rest = &after[name_len + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template { parts })
    }

    fn render(&self, values: &Values<'_>, escape: impl Fn(&str) -> String) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Field(field) => out.push_str(&escape(match field {
                    Field::To => values.to,
                    Field::Text => values.text,
                    Field::Reference => values.reference,
                    Field::Token => values.token,
                })),
            }
        }
        out
    }

    fn uses(&self, field: Field) -> bool {
        self.parts.contains(&Part::Field(field))
    }
}

fn json_escape(value: &str) -> String {
    let quoted = serde_json::to_string(value).expect("a string always serialises");
    quoted[1..quoted.len() - 1].to_string()
}

fn form_escape(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// A configured SMS gateway.
#[derive(Clone)]
pub struct SmsSender {
    agent: ureq::Agent,
    method: ureq::http::Method,
    url: Template,
    headers: Vec<(ureq::http::HeaderName, Template)>,
    body: Option<Template>,
    encoding: BodyEncoding,
    token: String,
    success_status: Vec<u16>,
    success_contains: Option<String>,
    /// The gateway's host, for messages to the operator.
    gateway: String,
}

impl std::fmt::Debug for SmsSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SmsSender({} {})", self.method, self.gateway)
    }
}

impl SmsSender {
    /// Checks `[sms]`: the templates parse, a JSON body is JSON once
    /// filled in, the URL is an http(s) URL.
    pub fn new(settings: &SmsSettings, env: Env<'_>) -> Result<SmsSender, ConfigError> {
        let url = settings.url.as_deref().ok_or_else(|| {
            ConfigError::new(
                "[sms] url",
                "missing: write the gateway's address, e.g. url = \"https://sms.example/send\"",
            )
        })?;
        let url = Template::parse(url, &[Field::To, Field::Text, Field::Reference, Field::Token], "[sms] url")?;
        let method = settings.method.as_deref().unwrap_or("POST").to_ascii_uppercase();
        let method = match method.as_str() {
            "GET" => ureq::http::Method::GET,
            "POST" => ureq::http::Method::POST,
            "PUT" => ureq::http::Method::PUT,
            other => {
                return Err(ConfigError::new("[sms] method", format!("{other:?}: write \"GET\", \"POST\" or \"PUT\"")));
            }
        };
        let body = match &settings.body {
            Some(body) if method == ureq::http::Method::GET => {
                let _ = body;
                return Err(ConfigError::new(
                    "[sms] body",
                    "a GET request has no body: put the placeholders in url, or write method = \"POST\"",
                ));
            }
            Some(body) => Some(Template::parse(body, &[Field::To, Field::Text, Field::Reference], "[sms] body")?),
            None if method == ureq::http::Method::GET => None,
            None => {
                return Err(ConfigError::new(
                    "[sms] body",
                    "missing: write what the gateway expects, e.g. body = '{\"to\": \"{to}\", \"text\": \"{text}\"}'",
                ));
            }
        };
        if !(url.uses(Field::Text) || body.as_ref().is_some_and(|b| b.uses(Field::Text))) {
            return Err(ConfigError::new("[sms] body", "{text} appears nowhere: the message would not be sent"));
        }
        if !(url.uses(Field::To) || body.as_ref().is_some_and(|b| b.uses(Field::To))) {
            return Err(ConfigError::new("[sms] body", "{to} appears nowhere: the gateway would not know the number"));
        }
        let mut headers = Vec::new();
        for (name, value) in &settings.headers {
            let key = format!("[sms] headers.{name}");
            let header = ureq::http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ConfigError::new(&key, "not a valid HTTP header name"))?;
            headers.push((header, Template::parse(value, &[Field::Token], &key)?));
        }
        let uses_token = url.uses(Field::Token) || headers.iter().any(|(_, t)| t.uses(Field::Token));
        let token = env("SALDO_SMS_TOKEN").unwrap_or_default();
        if uses_token && token.is_empty() {
            return Err(ConfigError::new(
                "[sms] headers",
                "{token} is used but SALDO_SMS_TOKEN is not set: set it in the hub's environment",
            ));
        }
        let sample = Values {
            to: "+393331234567",
            text: "Ricarica di 20,00 \u{20ac} \"mensa\"",
            reference: "r@x",
            token: &token,
        };
        let sample_url = url.render(&sample, form_escape);
        let parsed: ureq::http::Uri = sample_url
            .parse()
            .map_err(|e| ConfigError::new("[sms] url", format!("{sample_url:?} is not a URL once filled in: {e}")))?;
        if !matches!(parsed.scheme_str(), Some("http" | "https")) || parsed.host().is_none() {
            return Err(ConfigError::new("[sms] url", "write an http:// or https:// address with a host"));
        }
        let gateway = parsed.host().unwrap_or_default().to_string();
        for (name, template) in &headers {
            let value = template.render(&sample, str::to_string);
            ureq::http::HeaderValue::from_str(&value).map_err(|_| {
                ConfigError::new(&format!("[sms] headers.{name}"), "not a valid HTTP header value once filled in")
            })?;
        }
        if let (Some(body), BodyEncoding::Json) = (&body, settings.encoding) {
            let filled = body.render(&sample, json_escape);
            serde_json::from_str::<serde_json::Value>(&filled).map_err(|e| {
                ConfigError::new(
                    "[sms] body",
                    format!("not JSON once filled in ({e}): put each placeholder inside quotes, or write encoding = \"form\""),
                )
            })?;
        }
        let success_status = settings.success_status.clone().unwrap_or_default();
        if let Some(bad) = success_status.iter().find(|s| !(100..=599).contains(*s)) {
            return Err(ConfigError::new("[sms] success_status", format!("{bad} is not an HTTP status code")));
        }
        let timeout_ms = settings.timeout_ms.unwrap_or(SMS_TIMEOUT_MS_DEFAULT);
        if !(100..=300_000).contains(&timeout_ms) {
            return Err(ConfigError::new("[sms] timeout_ms", "write a number from 100 to 300000 (default 20000)"));
        }
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_millis(timeout_ms)))
                .http_status_as_error(false)
                .build(),
        );
        Ok(SmsSender {
            agent,
            method,
            url,
            headers,
            body,
            encoding: settings.encoding,
            token,
            success_status,
            success_contains: settings.success_contains.clone().filter(|s| !s.is_empty()),
            gateway,
        })
    }

    /// The gateway's host.
    pub fn gateway(&self) -> &str {
        &self.gateway
    }

    /// The request for `row`: method, URL, headers, body.
    fn request(&self, row: &OutboxRow) -> (String, BTreeMap<String, String>, Option<String>) {
        let values = Values { to: &row.recipient, text: &row.body_text, reference: &row.reference, token: &self.token };
        let url = self.url.render(&values, form_escape);
        let mut headers: BTreeMap<String, String> =
            self.headers.iter().map(|(name, t)| (name.to_string(), t.render(&values, str::to_string))).collect();
        let body = self.body.as_ref().map(|body| match self.encoding {
            BodyEncoding::Json => body.render(&values, json_escape),
            BodyEncoding::Form => body.render(&values, form_escape),
        });
        if body.is_some() && !headers.contains_key("content-type") {
            let kind = match self.encoding {
                BodyEncoding::Json => "application/json",
                BodyEncoding::Form => "application/x-www-form-urlencoded",
            };
            headers.insert("content-type".into(), kind.into());
        }
        (url, headers, body)
    }

    /// Hands `row` to the gateway (on a blocking thread: ureq is blocking).
    pub async fn send(&self, row: &OutboxRow) -> Result<(), Failure> {
        let (url, headers, body) = self.request(row);
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.send_blocking(url, headers, body))
            .await
            .unwrap_or_else(|e| Err(Failure { error: format!("the SMS request stopped: {e}"), permanent: false }))
    }

    fn send_blocking(
        &self,
        url: String,
        headers: BTreeMap<String, String>,
        body: Option<String>,
    ) -> Result<(), Failure> {
        let mut request = ureq::http::Request::builder().method(self.method.clone()).uri(&url);
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let failure = |error: String| Failure { error, permanent: false };
        let request = request
            .body(body.unwrap_or_default())
            .map_err(|e| failure(format!("SMS gateway {}: the request cannot be built: {e}", self.gateway)))?;
        let mut response = self.agent.run(request).map_err(|e| {
            failure(format!("SMS gateway {}: {e} (check [sms] url in saldo.toml, and the network)", self.gateway))
        })?;
        let status = response.status().as_u16();
        let reply = response
            .body_mut()
            .with_config()
            .limit(SMS_REPLY_BYTES_MAX)
            .read_to_string()
            .unwrap_or_else(|e| format!("(the reply could not be read: {e})"));
        let quoted: String = reply.chars().take(REPLY_QUOTED_CHARS_MAX).collect();
        let status_ok = if self.success_status.is_empty() {
            (200..300).contains(&status)
        } else {
            self.success_status.contains(&status)
        };
        if !status_ok {
            let hint = match status {
                401 | 403 => " (check the credentials: [sms] headers, SALDO_SMS_TOKEN)",
                404 | 405 => " (check [sms] url and method)",
                400 | 422 => " (check [sms] body and encoding against the gateway's manual)",
                _ => "",
            };
            return Err(failure(format!("SMS gateway {} answered {status}{hint}: {quoted}", self.gateway)));
        }
        if let Some(needle) = &self.success_contains
            && !reply.contains(needle.as_str())
        {
            return Err(failure(format!(
                "SMS gateway {} answered {status} without {needle:?} ([sms] success_contains): {quoted}",
                self.gateway
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn settings(body: &str) -> SmsSettings {
        SmsSettings { url: Some("http://127.0.0.1:9/send".into()), body: Some(body.into()), ..SmsSettings::default() }
    }

    fn row(text: &str) -> OutboxRow {
        OutboxRow {
            id: 1,
            about: vec![1; 32],
            purpose: crate::store::outbox::Purpose::Receipt,
            channel: crate::store::outbox::Channel::Sms,
            recipient: "+39 333 1234567".into(),
            language: "it".into(),
            subject: String::new(),
            body_text: text.into(),
            body_html: None,
            reference: "abc.receipt.sms".into(),
            recorded_ms: 0,
            queued_ms: 0,
            state: crate::store::outbox::DeliveryState::Queued,
            attempts: 0,
            next_attempt_ms: 0,
            last_error: None,
            sent_ms: None,
            notice: None,
        }
    }

    #[test]
    fn a_json_body_carries_the_text_escaped_and_a_form_body_encoded() {
        let sms = SmsSender::new(&settings(r#"{"to": "{to}", "text": "{text}", "ref": "{reference}"}"#), &no_env)
            .expect("valid");
        let (_, headers, body) = sms.request(&row("Ricarica \"mensa\" di 20,00 €\nsaldo"));
        let body: serde_json::Value = serde_json::from_str(&body.expect("a body")).expect("JSON");
        assert_eq!(body["text"], "Ricarica \"mensa\" di 20,00 €\nsaldo");
        assert_eq!(body["to"], "+39 333 1234567");
        assert_eq!(body["ref"], "abc.receipt.sms");
        assert_eq!(headers["content-type"], "application/json");

        let form = SmsSettings { encoding: BodyEncoding::Form, ..settings("to={to}&msg={text}") };
        let sms = SmsSender::new(&form, &no_env).expect("valid");
        let (_, headers, body) = sms.request(&row("a&b=c €"));
        assert_eq!(body.as_deref(), Some("to=%2B39+333+1234567&msg=a%26b%3Dc+%E2%82%AC"));
        assert_eq!(headers["content-type"], "application/x-www-form-urlencoded");
    }

    #[test]
    fn a_get_gateway_takes_the_values_in_its_url_and_the_token_from_the_environment() {
        let get = SmsSettings {
            url: Some("https://sms.example/send?to={to}&text={text}&key={token}".into()),
            method: Some("get".into()),
            headers: [("X-Ref".to_string(), "{token}".to_string())].into(),
            ..SmsSettings::default()
        };
        let env = |name: &str| (name == "SALDO_SMS_TOKEN").then(|| "s3cret".to_string());
        let sms = SmsSender::new(&get, &env).expect("valid");
        let (url, headers, body) = sms.request(&row("ciao mondo"));
        assert_eq!(url, "https://sms.example/send?to=%2B39+333+1234567&text=ciao+mondo&key=s3cret");
        assert_eq!((headers["x-ref"].as_str(), body), ("s3cret", None));
        let refused = SmsSender::new(&get, &no_env).expect_err("no token");
        assert!(refused.message.contains("SALDO_SMS_TOKEN"), "{refused}");
    }

    #[test]
    fn malformed_gateway_settings_are_refused_naming_the_key_and_what_to_write() {
        let check = |s: SmsSettings, key: &str, says: &str| {
            let e = SmsSender::new(&s, &no_env).expect_err("refused");
            assert_eq!(e.key, key, "{e}");
            assert!(e.message.contains(says), "{e} should say {says:?}");
        };
        check(settings(r#"{"to": "{to}", "text": "{txt}"}"#), "[sms] body", "unknown placeholder {txt}");
        check(settings(r#"{"to": "{to}", "text": "{text"}"#), "[sms] body", "does not close");
        check(settings(r#"{"to": {to}, "text": "{text}"}"#), "[sms] body", "not JSON once filled in");
        check(settings(r#"{"to": "{to}"}"#), "[sms] body", "{text} appears nowhere");
        check(SmsSettings { url: None, ..settings("{text}{to}") }, "[sms] url", "missing");
        check(SmsSettings { url: Some("ftp://x/{to}".into()), ..settings(r#"["{text}"]"#) }, "[sms] url", "http://");
        check(SmsSettings { method: Some("PATCH".into()), ..settings("{to}{text}") }, "[sms] method", "PATCH");
        check(
            SmsSettings { success_status: Some(vec![2000]), ..settings(r#"["{to}", "{text}"]"#) },
            "[sms] success_status",
            "2000",
        );
    }
}
