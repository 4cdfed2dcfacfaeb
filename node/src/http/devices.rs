//! Cash points (enrolment tokens, limits, escrow, revocation), flagged operations and their review, bundles up and down.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use saldo_api::ApiError;
use saldo_api::bundles::{BundleParams, BundleReport};
use saldo_api::cash_points::{
    CashPointList, EnrolmentTokenRequest, EnrolmentTokenResponse, EscrowGrant, EscrowRequest, Limits, LimitsUpdate,
    RevocationRecorded, RevokeRequest,
};
use saldo_api::review::{FlaggedList, ReviewOutcome, ReviewRequest};
use saldo_sync::{AuthorId, OpId};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Administrators, Caller, HubStaff};
use super::error::{ApiJson, HttpError, HttpResult};
use super::raw::{path_id, raw_body};

/// This module's routes, merged into the API (and its OpenAPI document).
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(cash_points))
        .routes(routes!(enrolment_token))
        .routes(routes!(change_limits))
        .routes(routes!(grant_escrow))
        .routes(routes!(revoke))
        .routes(routes!(flagged))
        .routes(routes!(review))
        .routes(routes!(bundle_for_device))
        .routes(routes!(bundle_for_frontier))
        .merge(
            // A bundle may be far larger than any other body.
            OpenApiRouter::new()
                .routes(routes!(import_bundle))
                .layer(axum::extract::DefaultBodyLimit::max(super::BUNDLE_BYTES_MAX)),
        )
}

fn device(text: &str) -> HttpResult<AuthorId> {
    path_id(text, "device", "a device id: 64 hexadecimal digits, as the list of cash points gives", AuthorId::from_hex)
}

/// The enrolled cash points and school devices: name, limits, revocation,
/// when the hub last heard from each, what awaits its verdict.
#[utoipa::path(get, path = "/cash-points", tag = "devices", security(("session" = ["administrator", "clerk"])),
    responses((status = 200, body = CashPointList)))]
async fn cash_points(State(state): State<AppState>, _caller: Caller<HubStaff>) -> HttpResult<Json<CashPointList>> {
    Ok(Json(state.service.cash_points().await?))
}

/// A one-time enrolment token for a new cash point (or a replacement):
/// what `saldo cashpoint --join` takes.
#[utoipa::path(post, path = "/cash-points/tokens", tag = "devices", request_body = EnrolmentTokenRequest,
    security(("session" = ["administrator"])),
    responses((status = 200, body = EnrolmentTokenResponse), (status = 400, body = ApiError), (status = 409, body = ApiError)))]
async fn enrolment_token(
    State(state): State<AppState>,
    _caller: Caller<Administrators>,
    ApiJson(request): ApiJson<EnrolmentTokenRequest>,
) -> HttpResult<Json<EnrolmentTokenResponse>> {
    Ok(Json(state.service.enrolment_token(request).await?))
}

/// Changes some of a device's limits while offline; answers those in force
/// (the device applies them once it syncs).
#[utoipa::path(put, path = "/cash-points/{device}/limits", tag = "devices", request_body = LimitsUpdate,
    params(("device" = String, Path, description = "the device's id (hex)")),
    security(("session" = ["administrator"])),
    responses((status = 200, body = Limits), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
async fn change_limits(
    State(state): State<AppState>,
    _caller: Caller<Administrators>,
    Path(id): Path<String>,
    ApiJson(update): ApiJson<LimitsUpdate>,
) -> HttpResult<Json<Limits>> {
    let device = device(&id)?;
    Ok(Json(state.service.change_limits(device, update).await?))
}

/// Lets a device charge a wallet this much more, offline included; the
/// amount is reserved against the wallet.
#[utoipa::path(post, path = "/cash-points/{device}/escrow", tag = "devices", request_body = EscrowRequest,
    params(("device" = String, Path, description = "the device's id (hex)")),
    security(("session" = ["administrator"])),
    responses((status = 200, body = EscrowGrant), (status = 400, body = ApiError), (status = 409, body = ApiError)))]
async fn grant_escrow(
    State(state): State<AppState>,
    _caller: Caller<Administrators>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<EscrowRequest>,
) -> HttpResult<Json<EscrowGrant>> {
    let device = device(&id)?;
    Ok(Json(state.service.grant_escrow(device, request).await?))
}

/// Revokes a device: what it recorded until now keeps counting; anything
/// later is flagged for review.
#[utoipa::path(post, path = "/cash-points/{device}/revoke", tag = "devices", request_body = RevokeRequest,
    params(("device" = String, Path, description = "the device's id (hex)")),
    security(("session" = ["administrator"])),
    responses((status = 200, body = RevocationRecorded), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
async fn revoke(
    State(state): State<AppState>,
    _caller: Caller<Administrators>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<RevokeRequest>,
) -> HttpResult<Json<RevocationRecorded>> {
    let device = device(&id)?;
    Ok(Json(state.service.revoke(device, request).await?))
}

/// The operations awaiting review, oldest first, with the wallets that
/// accepting each would take below their floors.
#[utoipa::path(get, path = "/flagged", tag = "review", security(("session" = ["administrator", "clerk"])),
    responses((status = 200, body = FlaggedList)))]
async fn flagged(State(state): State<AppState>, _caller: Caller<HubStaff>) -> HttpResult<Json<FlaggedList>> {
    Ok(Json(state.service.flagged().await?))
}

/// Accepts or rejects a flagged operation, in the operator's name.
/// Accepting one that takes wallets below their floors needs
/// `confirm_below_floor`.
#[utoipa::path(post, path = "/flagged/{operation}/review", tag = "review", request_body = ReviewRequest,
    params(("operation" = String, Path, description = "the flagged operation's id (hex)")),
    security(("session" = ["administrator", "clerk"])),
    responses((status = 200, body = ReviewOutcome), (status = 400, body = ApiError), (status = 404, body = ApiError),
        (status = 409, body = ApiError)))]
async fn review(
    State(state): State<AppState>,
    caller: Caller<HubStaff>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<ReviewRequest>,
) -> HttpResult<Json<ReviewOutcome>> {
    let operation = path_id(&id, "operation", "an operation id: 64 hexadecimal digits", OpId::from_hex)?;
    Ok(Json(state.service.review(caller.operator(), operation, request).await?))
}

fn bundle_file(bytes: Vec<u8>, name: &str) -> HttpResult<Response> {
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .map_err(|e| HttpError::new(saldo_api::ErrorKind::Internal, format!("a file name: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream")),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

/// A bundle file of everything a device lacks when it holds nothing yet (the
/// hub's log and its own), for a site without a network.
#[utoipa::path(get, path = "/bundle", tag = "bundles", params(BundleParams),
    security(("session" = ["administrator", "clerk"])),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, body = ApiError), (status = 404, body = ApiError)))]
async fn bundle_for_device(
    State(state): State<AppState>,
    _caller: Caller<HubStaff>,
    query: Result<Query<BundleParams>, QueryRejection>,
) -> HttpResult<Response> {
    let Query(params) = query.map_err(|e| HttpError(ApiError::invalid("device", e.body_text())))?;
    let device = device(&params.device)?;
    let bytes = state.service.bundle_for_device(device).await?;
    bundle_file(bytes, &format!("saldo-{}.bundle", device.short()))
}

/// A bundle file of what the holder of a frontier file (sent as the body,
/// written by `saldo bundle frontier`) lacks.
#[utoipa::path(post, path = "/bundles/export", tag = "bundles",
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "a frontier file"),
    security(("session" = ["administrator", "clerk"])),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, body = ApiError)))]
async fn bundle_for_frontier(
    State(state): State<AppState>,
    _caller: Caller<HubStaff>,
    body: Result<Bytes, BytesRejection>,
) -> HttpResult<Response> {
    let frontier = raw_body(body, super::BODY_BYTES_MAX)?;
    let bytes = state.service.bundle_for_frontier(frontier).await?;
    bundle_file(bytes, "saldo.bundle")
}

/// Imports a bundle file (the body): each operation verified and stored as
/// if a peer had sent it; a bundle whose signature fails changes nothing.
#[utoipa::path(post, path = "/bundles", tag = "bundles",
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "a bundle file"),
    security(("session" = ["administrator", "clerk"])),
    responses((status = 200, body = BundleReport), (status = 400, body = ApiError)))]
async fn import_bundle(
    State(state): State<AppState>,
    _caller: Caller<HubStaff>,
    body: Result<Bytes, BytesRejection>,
) -> HttpResult<Json<BundleReport>> {
    let bytes = raw_body(body, super::BUNDLE_BYTES_MAX)?;
    Ok(Json(state.service.import_bundle(bytes).await?))
}
