//! `saldo-api`: the operators' HTTP API as types, shared by the server (in
//! `saldo-node`) and the web UI (Leptos, wasm32), which never depends on the
//! node.
//!
//! Every request and response under [`API_PREFIX`] is a typed struct or enum
//! here, serialized in snake_case with amounts as strings (`"1234.50"`) and
//! ids as hex. Requests check themselves (`validate`) so the UI refuses
//! exactly what the server would, and so do the parsers of what operators
//! type: the search box ([`search`]) and amounts the Italian way ([`money`]).
//! Receipts render to text and printable HTML here ([`receipt`]), so a
//! receipt looks the same whoever prints it. Nothing here does I/O.
//!
//! With the feature `openapi`, every type also describes itself as an
//! OpenAPI schema (utoipa), for the server's `/api/v1/openapi.json`.

pub mod bundles;
pub mod cash_points;
pub mod consumers;
pub mod directory;
pub mod error;
pub mod lang;
pub mod money;
pub mod operators;
pub mod outbox;
pub mod payments;
pub mod receipt;
pub mod reports;
pub mod review;
pub mod search;
pub mod session;
pub mod status;

pub use error::{ApiError, ErrorKind};
pub use lang::Lang;

/// Where every endpoint lives.
pub const API_PREFIX: &str = "/api/v1";
/// The header that makes a request that records money safe to retry: a
/// second request with the same key gets the first one's answer.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";
/// The header that carries [`session::Me::csrf_token`] on every state change.
pub const CSRF_HEADER: &str = "X-CSRF-Token";
/// Longest idempotency key accepted, in bytes.
pub const IDEMPOTENCY_KEY_BYTES_MAX: usize = 128;
/// Shortest idempotency key accepted, in bytes (a UUID is 36).
pub const IDEMPOTENCY_KEY_BYTES_MIN: usize = 8;

/// Checks an `Idempotency-Key` header value: 8 to 128 visible ASCII
/// characters (a UUID fits).
pub fn check_idempotency_key(value: &str) -> Result<(), ApiError> {
    let field = IDEMPOTENCY_KEY_HEADER;
    if !(IDEMPOTENCY_KEY_BYTES_MIN..=IDEMPOTENCY_KEY_BYTES_MAX).contains(&value.len()) {
        return Err(ApiError::invalid(
            field,
            format!(
                "the {field} header is {} characters long: send {IDEMPOTENCY_KEY_BYTES_MIN} to {IDEMPOTENCY_KEY_BYTES_MAX}, such as a new UUID per payment",
                value.len()
            ),
        ));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid(
            field,
            format!("the {field} header may hold only visible ASCII characters, such as a UUID"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idempotency_key_is_a_bounded_visible_token() {
        assert!(check_idempotency_key("3f1c2d9e-8a7b-4c6d-9e0f-112233445566").is_ok());
        assert_eq!(check_idempotency_key("short").unwrap_err().field.as_deref(), Some(IDEMPOTENCY_KEY_HEADER));
        assert!(check_idempotency_key(&"x".repeat(IDEMPOTENCY_KEY_BYTES_MAX)).is_ok());
        assert!(check_idempotency_key(&"x".repeat(IDEMPOTENCY_KEY_BYTES_MAX + 1)).is_err());
        assert!(check_idempotency_key("with a space inside").is_err());
    }
}

/// The schemas, checked where the server builds them (feature `openapi`).
#[cfg(all(test, feature = "openapi"))]
mod openapi_tests {
    use utoipa::OpenApi;

    #[derive(OpenApi)]
    #[openapi(components(schemas(
        crate::ApiError,
        crate::session::Me,
        crate::session::LoginRequest,
        crate::consumers::SearchResults,
        crate::consumers::ConsumerDetail,
        crate::payments::TopUpRequest,
        crate::payments::DailyClose,
        crate::receipt::Receipt,
        crate::receipt::Verification,
        crate::status::Event,
        crate::directory::ImportReport,
        crate::cash_points::CashPointList,
        crate::cash_points::EnrolmentTokenRequest,
        crate::review::FlaggedList,
        crate::review::ReviewRequest,
        crate::operators::OperatorCreate,
        crate::bundles::BundleReport,
        crate::reports::DailyCloseReport,
        crate::reports::RemittanceReport,
        crate::reports::YearlyReport,
        crate::reports::MovementsReport,
    )))]
    struct Doc;

    #[test]
    fn amounts_ids_and_passwords_are_strings_in_the_openapi_document() {
        let doc = serde_json::to_value(Doc::openapi()).unwrap();
        let schemas = &doc["components"]["schemas"];
        // A property is inline, or a reference to a schema of its own.
        let property = |schema: &str, field: &str| {
            let value = schemas[schema]["properties"][field].clone();
            match value["$ref"].as_str() {
                Some(reference) => schemas[reference.trim_start_matches("#/components/schemas/")].clone(),
                None => value,
            }
        };
        assert_eq!(property("Receipt", "total")["type"], "string");
        assert_eq!(property("Receipt", "operation")["type"], "string");
        assert_eq!(property("Receipt", "receipt_number")["type"], "integer");
        assert_eq!(property("TopUpLineRequest", "amount")["type"], "string");
        assert_eq!(property("LoginRequest", "password")["format"], "password");
        // Optional (the node then generates a one-time password): a password or null.
        let optional = serde_json::to_string(&schemas["OperatorCreate"]["properties"]["password"]).unwrap();
        assert!(optional.contains("\"null\"") && optional.contains("Password"), "{optional}");
        assert_eq!(property("LoginRequest", "login")["type"], "string");
        let method = serde_json::to_string(&schemas["PaymentMethodApi"]).unwrap();
        assert!(method.contains("debit_card"), "{method}");
        assert_eq!(property("Tally", "total")["type"], "string");
        assert_eq!(property("RemittanceStatement", "owed")["type"], "string");
        assert_eq!(property("ChildYear", "consumer")["type"], "string");
        let event = serde_json::to_string(&schemas["Event"]).unwrap();
        assert!(event.contains("\"balance\"") && event.contains("\"status\""), "{event}");
    }
}
