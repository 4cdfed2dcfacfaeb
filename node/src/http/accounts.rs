//! Operators' accounts (administrators only).

use utoipa_axum::router::OpenApiRouter;

use super::AppState;

/// This module's routes, merged into the API (and its OpenAPI document).
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
