//! The hub's outbox for its staff: messages to families and their delivery
//! state, a retry by hand, and a receipt sent again.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use saldo_api::ApiError;
use saldo_api::outbox::{OutboxList, OutboxListParams, OutboxMessage, ResendReport, ResendRequest};
use saldo_sync::OpId;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, HubStaff};
use super::error::{ApiJson, HttpError, HttpResult};
use super::raw::path_id;

/// This module's routes, merged into the API (and its OpenAPI document).
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(outbox))
        .routes(routes!(outbox_message))
        .routes(routes!(retry_message))
        .routes(routes!(resend_receipt))
}

fn message_id(text: &str) -> HttpResult<i64> {
    path_id(text, "id", "a message number, as GET /outbox lists them", |t| {
        t.parse::<i64>().map_err(|_| ()).and_then(|n| if n > 0 { Ok(n) } else { Err(()) })
    })
}

/// The outbox, newest first: every receipt and reminder queued for the
/// families, with its delivery state and the count in each state.
#[utoipa::path(get, path = "/outbox", tag = "outbox", params(OutboxListParams),
    security(("session" = ["administrator", "clerk"])),
    responses((status = 200, body = OutboxList), (status = 400, body = ApiError)))]
async fn outbox(
    State(state): State<AppState>,
    _caller: Caller<HubStaff>,
    query: Result<Query<OutboxListParams>, QueryRejection>,
) -> HttpResult<Json<OutboxList>> {
    let Query(params) = query.map_err(|e| {
        HttpError(ApiError::invalid("state", format!("{}: state is queued, failing, sent or given_up", e.body_text())))
    })?;
    Ok(Json(state.service.outbox(params).await?))
}

/// One message of the outbox, with its bodies and the last error.
#[utoipa::path(get, path = "/outbox/{id}", tag = "outbox",
    params(("id" = i64, Path, description = "the message's number")),
    security(("session" = ["administrator", "clerk"])),
    responses((status = 200, body = OutboxMessage), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
async fn outbox_message(
    State(state): State<AppState>,
    _caller: Caller<HubStaff>,
    Path(id): Path<String>,
) -> HttpResult<Json<OutboxMessage>> {
    let id = message_id(&id)?;
    Ok(Json(state.service.outbox_message(id).await?))
}

/// Tries a message that is failing or was given up again, at once.
#[utoipa::path(post, path = "/outbox/{id}/retry", tag = "outbox",
    params(("id" = i64, Path, description = "the message's number")),
    security(("session" = ["administrator", "clerk"])),
    responses((status = 200, body = OutboxMessage), (status = 400, body = ApiError), (status = 404, body = ApiError),
        (status = 409, body = ApiError)))]
async fn retry_message(
    State(state): State<AppState>,
    _caller: Caller<HubStaff>,
    Path(id): Path<String>,
) -> HttpResult<Json<OutboxMessage>> {
    let id = message_id(&id)?;
    Ok(Json(state.service.retry_message(id).await?))
}

/// Sends the receipt of an operation again, on the channels asked for.
#[utoipa::path(post, path = "/receipts/{operation}/resend", tag = "outbox", request_body = ResendRequest,
    params(("operation" = String, Path, description = "the operation's id (hex)")),
    security(("session" = ["administrator", "clerk"])),
    responses((status = 200, body = ResendReport), (status = 400, body = ApiError), (status = 404, body = ApiError),
        (status = 409, body = ApiError)))]
async fn resend_receipt(
    State(state): State<AppState>,
    _caller: Caller<HubStaff>,
    Path(operation): Path<String>,
    ApiJson(request): ApiJson<ResendRequest>,
) -> HttpResult<Json<ResendReport>> {
    let op = path_id(&operation, "operation", "an operation id: 64 hexadecimal digits", OpId::from_hex)?;
    Ok(Json(state.service.resend_receipt(op, request).await?))
}
