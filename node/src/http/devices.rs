//! Cash points (enrolment tokens, limits, escrow, revocation), flagged operations and their review, bundles up and down.

use utoipa_axum::router::OpenApiRouter;

use super::AppState;

/// This module's routes, merged into the API (and its OpenAPI document).
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
