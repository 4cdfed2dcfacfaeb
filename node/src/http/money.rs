//! Money beyond the counter's top-up: payments of dues, reversals (*storno*), transfers and refunds (hub), the daily close and remittances.

use utoipa_axum::router::OpenApiRouter;

use super::AppState;

/// This module's routes, merged into the API (and its OpenAPI document).
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
