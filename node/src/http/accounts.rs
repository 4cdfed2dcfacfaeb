//! Operators' accounts (administrators only).

use axum::Json;
use axum::extract::{Path, State};
use saldo_api::ApiError;
use saldo_api::operators::{Login, OperatorCreate, OperatorList, OperatorUpdate, OperatorView};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Administrators, Caller};
use super::error::{ApiJson, HttpError, HttpResult};

/// This module's routes, merged into the API (and its OpenAPI document).
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(operators, create_operator)).routes(routes!(update_operator))
}

/// Every operator's account: login, name, role, cash point, disabled.
#[utoipa::path(get, path = "/operators", tag = "operators", security(("session" = ["administrator"])),
    responses((status = 200, body = OperatorList)))]
async fn operators(State(state): State<AppState>, _caller: Caller<Administrators>) -> HttpResult<Json<OperatorList>> {
    Ok(Json(state.service.operator_accounts().await?))
}

/// Creates an account: an administrator or clerk at the hub, or a cashier
/// bound to one cash point (who can log in there once it has synced).
#[utoipa::path(post, path = "/operators", tag = "operators", request_body = OperatorCreate,
    security(("session" = ["administrator"])),
    responses((status = 200, body = OperatorView), (status = 400, body = ApiError), (status = 409, body = ApiError)))]
async fn create_operator(
    State(state): State<AppState>,
    _caller: Caller<Administrators>,
    ApiJson(request): ApiJson<OperatorCreate>,
) -> HttpResult<Json<OperatorView>> {
    Ok(Json(state.service.create_operator(request).await?))
}

/// Sets an account's password, and/or disables it (ending its sessions on
/// this node; a cash point stops it once it syncs) or enables it again.
#[utoipa::path(patch, path = "/operators/{login}", tag = "operators", request_body = OperatorUpdate,
    params(("login" = String, Path, description = "the operator's login")),
    security(("session" = ["administrator"])),
    responses((status = 200, body = OperatorView), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
async fn update_operator(
    State(state): State<AppState>,
    _caller: Caller<Administrators>,
    Path(login): Path<String>,
    ApiJson(update): ApiJson<OperatorUpdate>,
) -> HttpResult<Json<OperatorView>> {
    let login = Login::parse(&login).map_err(|e| HttpError(ApiError::invalid("login", e.to_string())))?;
    let view = state.service.update_operator(login, update).await?;
    if view.disabled {
        state.sessions.close_operator(view.login.as_str());
    }
    Ok(Json(view))
}
