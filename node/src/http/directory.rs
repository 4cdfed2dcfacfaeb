//! Families, consumers and services (tariffs, floors), with the CSV import.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use saldo_api::ApiError;
use saldo_api::directory::{
    ContactsUpdate, Family, FamilyList, FamilyListParams, ImportReport, ServiceList, ServiceUpdate, ServiceView,
};
use saldo_sync::{FamilyId, ServiceId};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, Everyone, HubStaff};
use super::error::{ApiJson, HttpError, HttpResult};
use super::raw::{path_id, raw_body, require_content_type};

/// This module's routes, merged into the API (and its OpenAPI document).
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(families))
        .routes(routes!(family))
        .routes(routes!(set_contacts))
        .routes(routes!(import_families))
        .routes(routes!(services))
        .routes(routes!(set_service))
}

/// A page of the realm's families in payer surname order, or the families
/// of the children a search finds.
#[utoipa::path(get, path = "/families", tag = "directory", params(FamilyListParams),
    security(("session" = ["administrator", "clerk"])),
    responses((status = 200, body = FamilyList), (status = 400, body = ApiError)))]
async fn families(
    State(state): State<AppState>,
    _caller: Caller<HubStaff>,
    query: Result<Query<FamilyListParams>, QueryRejection>,
) -> HttpResult<Json<FamilyList>> {
    let Query(params) = query.map_err(|e| HttpError(ApiError::invalid("q", e.body_text())))?;
    Ok(Json(state.service.families(params).await?))
}

/// One family: the payer with contacts (kept at the hub only) and the
/// children with their wallets.
#[utoipa::path(get, path = "/families/{family}", tag = "directory",
    params(("family" = String, Path, description = "the family's id (hex)")),
    security(("session" = ["administrator", "clerk"])),
    responses((status = 200, body = Family), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
async fn family(
    State(state): State<AppState>,
    _caller: Caller<HubStaff>,
    Path(id): Path<String>,
) -> HttpResult<Json<Family>> {
    let family = path_id(&id, "family", "a family id: 32 hexadecimal digits, as a search gives", FamilyId::from_hex)?;
    Ok(Json(state.service.family(family).await?))
}

/// Replaces the payer's contacts and the family's choice of channels
/// (receipts and reminders by e-mail, SMS, both or none) and language.
#[utoipa::path(put, path = "/families/{family}/contacts", tag = "directory", request_body = ContactsUpdate,
    params(("family" = String, Path, description = "the family's id (hex)")),
    security(("session" = ["administrator", "clerk"])),
    responses((status = 200, body = Family), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
async fn set_contacts(
    State(state): State<AppState>,
    _caller: Caller<HubStaff>,
    Path(id): Path<String>,
    ApiJson(update): ApiJson<ContactsUpdate>,
) -> HttpResult<Json<Family>> {
    let family = path_id(&id, "family", "a family id: 32 hexadecimal digits, as a search gives", FamilyId::from_hex)?;
    Ok(Json(state.service.set_contacts(family, update).await?))
}

/// Imports families from a CSV file (the body, `text/csv`): one row per
/// child. Each good row goes in whole; each bad one is answered with its
/// line, column and what to fix, and changes nothing.
#[utoipa::path(post, path = "/families/import", tag = "directory",
    request_body(content = String, content_type = "text/csv", description = "one row per child, with a header line"),
    security(("session" = ["administrator", "clerk"])),
    responses((status = 200, body = ImportReport), (status = 400, body = ApiError)))]
async fn import_families(
    State(state): State<AppState>,
    _caller: Caller<HubStaff>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> HttpResult<Json<ImportReport>> {
    require_content_type(&headers, &["text/csv"], "the CSV file")?;
    let csv = raw_body(body, super::BODY_BYTES_MAX)?;
    Ok(Json(state.service.import_families(csv).await?))
}

/// The realm's services with their tariffs and floors.
#[utoipa::path(get, path = "/services", tag = "directory", security(("session" = ["administrator", "clerk", "cashier"])),
    responses((status = 200, body = ServiceList)))]
async fn services(State(state): State<AppState>, _caller: Caller<Everyone>) -> HttpResult<Json<ServiceList>> {
    Ok(Json(state.service.services().await?))
}

/// Creates a service or changes its name, floor or tariff.
#[utoipa::path(put, path = "/services/{service}", tag = "directory", request_body = ServiceUpdate,
    params(("service" = String, Path, description = "the service's id, like mensa")),
    security(("session" = ["administrator", "clerk"])),
    responses((status = 200, body = ServiceView), (status = 400, body = ApiError)))]
async fn set_service(
    State(state): State<AppState>,
    _caller: Caller<HubStaff>,
    Path(id): Path<String>,
    ApiJson(update): ApiJson<ServiceUpdate>,
) -> HttpResult<Json<ServiceView>> {
    let service =
        path_id(&id, "service", "a service id: lowercase letters, digits and dashes, like mensa", ServiceId::parse)?;
    Ok(Json(state.service.set_service(service, update).await?))
}
