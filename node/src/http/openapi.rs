//! The OpenAPI 3.1 document's frame: title, version, the session security
//! scheme. The paths come from the handlers themselves (`utoipa-axum`).

use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Saldo", description = "The operators' API of a Saldo node: counters, the municipality's office, administrators. Log in with POST /session; send the csrf_token it gives in the X-CSRF-Token header of every change; send an Idempotency-Key header with every request that records money. The security scopes of an operation name the roles that may call it."),
    modifiers(&SessionCookie),
    tags((name = "session"), (name = "counter"), (name = "status"))
)]
pub struct ApiDoc;

struct SessionCookie;

impl utoipa::Modify for SessionCookie {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                super::SESSION_COOKIE,
                "the session cookie set by POST /session",
            ))),
        );
    }
}
