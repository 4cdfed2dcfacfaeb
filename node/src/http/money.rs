//! Money beyond the counter's top-up: payments of dues, reversals (*storno*), transfers and refunds (hub), the daily close and remittances.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use saldo_api::ApiError;
use saldo_api::payments::{
    DailyClose, DayParams, DuePaymentRequest, Recorded, RefundRequest, Remittance, RemittanceRequest, ReversalRequest,
    TransferRequest,
};
use saldo_api::receipt::Receipt;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, Cashiers, Everyone, HubStaff};
use super::error::{ApiJson, HttpError, HttpResult};
use super::routes::idempotency_key;

/// This module's routes, merged into the API (and its OpenAPI document).
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(due_payment))
        .routes(routes!(reversal))
        .routes(routes!(transfer))
        .routes(routes!(refund))
        .routes(routes!(close_day, daily_close))
        .routes(routes!(remittance))
}

/// Records the payment of a due (a quarterly bus fee) on one wallet, with
/// a receipt; an overpayment stays on the wallet as credit. A due paid
/// already is refused. Send an `Idempotency-Key`: a retried request returns
/// the first one's receipt and records nothing new.
#[utoipa::path(post, path = "/due-payments", tag = "counter", request_body = DuePaymentRequest,
    params(("Idempotency-Key" = String, Header, description = "a new UUID per payment")),
    security(("session" = ["administrator", "clerk", "cashier"])),
    responses((status = 200, body = Receipt), (status = 400, body = ApiError), (status = 409, body = ApiError)))]
async fn due_payment(
    State(state): State<AppState>,
    caller: Caller<Everyone>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<DuePaymentRequest>,
) -> HttpResult<Json<Receipt>> {
    let key = idempotency_key(&headers)?;
    request.validate()?;
    Ok(Json(state.service.due_payment(caller.operator(), request, Some(key)).await?))
}

/// Reverses (*storno*) a top-up: only at the cash point (or the office)
/// that recorded it, the same day, before its daily close; anything else
/// is refused, saying to ask the office for a refund. Answers the
/// reversal's receipt; the reversed receipt then names it (`reversed_by`).
#[utoipa::path(post, path = "/reversals", tag = "counter", request_body = ReversalRequest,
    params(("Idempotency-Key" = String, Header, description = "a new UUID per reversal")),
    security(("session" = ["administrator", "clerk", "cashier"])),
    responses((status = 200, body = Receipt), (status = 400, body = ApiError), (status = 409, body = ApiError)))]
async fn reversal(
    State(state): State<AppState>,
    caller: Caller<Everyone>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<ReversalRequest>,
) -> HttpResult<Json<Receipt>> {
    let key = idempotency_key(&headers)?;
    Ok(Json(state.service.reversal(caller.operator(), request, Some(key)).await?))
}

/// Moves money between two wallets of one family (siblings, or one child's
/// services), at the hub; the source's confirmed balance must cover it.
#[utoipa::path(post, path = "/transfers", tag = "money", request_body = TransferRequest,
    params(("Idempotency-Key" = String, Header, description = "a new UUID per transfer")),
    security(("session" = ["administrator", "clerk"])),
    responses((status = 200, body = Recorded), (status = 400, body = ApiError), (status = 409, body = ApiError)))]
async fn transfer(
    State(state): State<AppState>,
    caller: Caller<HubStaff>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<TransferRequest>,
) -> HttpResult<Json<Recorded>> {
    let key = idempotency_key(&headers)?;
    request.validate()?;
    Ok(Json(state.service.transfer(caller.operator(), request, Some(key)).await?))
}

/// Hands a wallet's money back to the family, at the hub, within its
/// confirmed balance.
#[utoipa::path(post, path = "/refunds", tag = "money", request_body = RefundRequest,
    params(("Idempotency-Key" = String, Header, description = "a new UUID per refund")),
    security(("session" = ["administrator", "clerk"])),
    responses((status = 200, body = Recorded), (status = 400, body = ApiError), (status = 409, body = ApiError)))]
async fn refund(
    State(state): State<AppState>,
    caller: Caller<HubStaff>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<RefundRequest>,
) -> HttpResult<Json<Recorded>> {
    let key = idempotency_key(&headers)?;
    request.validate()?;
    Ok(Json(state.service.refund(caller.operator(), request, Some(key)).await?))
}

fn day_of(query: Result<Query<DayParams>, QueryRejection>) -> HttpResult<DayParams> {
    let Query(day) = query.map_err(|e| HttpError(ApiError::invalid("day", e.body_text())))?;
    day.validate()?;
    Ok(day)
}

/// Closes a day at the cash point (*chiusura*), today unless `day` says
/// which: its receipts (first and last number), what they took in per
/// method net of reversals, and the reversals. The hub checks the figures.
#[utoipa::path(post, path = "/daily-close", tag = "money", params(DayParams,
        ("Idempotency-Key" = String, Header, description = "a new UUID per close")),
    security(("session" = ["cashier"])),
    responses((status = 200, body = DailyClose), (status = 400, body = ApiError), (status = 409, body = ApiError)))]
async fn close_day(
    State(state): State<AppState>,
    caller: Caller<Cashiers>,
    headers: HeaderMap,
    query: Result<Query<DayParams>, QueryRejection>,
) -> HttpResult<Json<DailyClose>> {
    let key = idempotency_key(&headers)?;
    let day = day_of(query)?;
    Ok(Json(state.service.close_day(caller.operator(), day, Some(key)).await?))
}

/// A day's close as recorded, or, while the day is open, what closing it
/// now would record (without `operation`). Records nothing.
#[utoipa::path(get, path = "/daily-close", tag = "money", params(DayParams),
    security(("session" = ["cashier"])),
    responses((status = 200, body = DailyClose), (status = 400, body = ApiError)))]
async fn daily_close(
    State(state): State<AppState>,
    _caller: Caller<Cashiers>,
    query: Result<Query<DayParams>, QueryRejection>,
) -> HttpResult<Json<DailyClose>> {
    let day = day_of(query)?;
    Ok(Json(state.service.daily_close(day).await?))
}

/// Records cash handed to the treasury (*versamento*) for the receipts of
/// closed days not remitted yet; the amount must be their cash.
#[utoipa::path(post, path = "/remittances", tag = "money", request_body = RemittanceRequest,
    params(("Idempotency-Key" = String, Header, description = "a new UUID per remittance")),
    security(("session" = ["cashier"])),
    responses((status = 200, body = Remittance), (status = 400, body = ApiError), (status = 409, body = ApiError)))]
async fn remittance(
    State(state): State<AppState>,
    caller: Caller<Cashiers>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<RemittanceRequest>,
) -> HttpResult<Json<Remittance>> {
    let key = idempotency_key(&headers)?;
    request.validate()?;
    Ok(Json(state.service.remittance(caller.operator(), request, Some(key)).await?))
}
