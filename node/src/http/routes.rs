//! The endpoints: each checks the role, parses into `saldo-api` types and
//! makes one call of the service. Every route is registered through
//! [`OpenApiRouter`], so the OpenAPI document describes each one; the roles
//! that may call it are its security scopes (`session: [cashier, ...]`),
//! which the tests read to try every role on every route.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use saldo_api::consumers::{ConsumerDetail, SearchParams, SearchResults};
use saldo_api::payments::TopUpRequest;
use saldo_api::receipt::{Paper, Receipt, TextWidth, Verification};
use saldo_api::session::{LoginRequest, Me, NodeKind, PasswordChange};
use saldo_api::status::{Event, Status};
use saldo_api::{ApiError, ErrorKind};
use saldo_sync::{ConsumerId, OpId};
use tokio_stream::StreamExt as _;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{self, Caller, ClientAddr, Everyone};
use super::error::{ApiJson, HttpError, HttpResult};
use super::openapi::ApiDoc;

/// Every route under `/api/v1`, with the OpenAPI document served beside them.
pub fn api(state: AppState) -> Router {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(login, logout, me))
        .routes(routes!(change_password))
        .routes(routes!(search))
        .routes(routes!(consumer))
        .routes(routes!(top_up))
        .routes(routes!(receipt))
        .routes(routes!(verify))
        .routes(routes!(status))
        .routes(routes!(events))
        .merge(super::money::routes())
        .merge(super::directory::routes())
        .merge(super::devices::routes())
        .merge(super::accounts::routes())
        .merge(super::reports::routes())
        .merge(super::outbox::routes())
        .split_for_parts();
    let doc = std::sync::Arc::new(doc);
    Router::new()
        .nest(saldo_api::API_PREFIX, router.route("/openapi.json", get(move || async move { Json((*doc).clone()) })))
        .with_state(state)
        .layer(axum::extract::DefaultBodyLimit::max(super::BODY_BYTES_MAX))
}

/// Health, readiness and metrics: for the machine that runs the node.
pub fn outside_the_api(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/v/{code}", get(verify_page))
        .with_state(state)
}

async fn ready(State(state): State<AppState>) -> Response {
    match state.service.ready().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")).into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let extra = state.service.metrics_text().await.unwrap_or_default();
    let body = state.metrics.encode(&extra);
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body).into_response()
}

fn me_of(state: &AppState, session: &auth::Session) -> HttpResult<Me> {
    let operator = &session.operator;
    Ok(Me {
        login: saldo_api::operators::Login::parse(&operator.login)
            .map_err(|e| HttpError::new(ErrorKind::Internal, e.to_string()))?,
        name: operator.name.clone(),
        role: operator.role,
        cash_point: operator.cash_point_name.clone(),
        node: if state.service.about().is_hub { NodeKind::Hub } else { NodeKind::CashPoint },
        csrf_token: session.csrf.clone(),
        must_change_password: operator.must_change_password,
    })
}

/// Logs in: sets the session cookie and answers who is logged in, with the
/// CSRF token to send on every change.
#[utoipa::path(post, path = "/session", tag = "session", request_body = LoginRequest,
    responses((status = 200, body = Me), (status = 401, body = ApiError), (status = 429, body = ApiError)))]
async fn login(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    ApiJson(request): ApiJson<LoginRequest>,
) -> HttpResult<Response> {
    request.validate()?;
    state.login_limits.attempt(address, request.login.as_str())?;
    let operator = state.service.authenticate(&request.login, &request.password).await?;
    let (token, session) = state.sessions.open(operator);
    let cookie = auth::session_cookie(Some(&token), state.secure);
    let mut response = Json(me_of(&state, &session)?).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie)
            .map_err(|e| HttpError::new(ErrorKind::Internal, format!("session cookie: {e}")))?,
    );
    Ok(response)
}

/// Logs out: ends the session.
#[utoipa::path(delete, path = "/session", tag = "session", security(("session" = ["administrator", "clerk", "cashier"])),
    responses((status = 204), (status = 401, body = ApiError)))]
async fn logout(State(state): State<AppState>, caller: Caller<Everyone>) -> HttpResult<Response> {
    state.sessions.close(&caller.authed.token);
    let cookie = auth::session_cookie(None, state.secure);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// Replaces the password of the operator logged in (at the hub, which
/// keeps the accounts), given the one they logged in with: how a one-time
/// password is replaced. Their other sessions end. Counted against the
/// login limits, as a login is.
#[utoipa::path(post, path = "/session/password", tag = "session", request_body = PasswordChange,
    security(("session" = ["administrator", "clerk", "cashier"])),
    responses((status = 200, body = Me), (status = 400, body = ApiError), (status = 403, body = ApiError),
        (status = 429, body = ApiError)))]
async fn change_password(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    caller: Caller<Everyone>,
    ApiJson(change): ApiJson<PasswordChange>,
) -> HttpResult<Json<Me>> {
    let login = caller.operator().login.clone();
    // What can be refused without a password checked does not count.
    change.validate()?;
    state.login_limits.attempt(address, &login)?;
    state.service.change_own_password(&login, change).await?;
    let session = state
        .sessions
        .password_changed(&caller.authed.token)
        .ok_or_else(|| HttpError::new(ErrorKind::Unauthenticated, "your session ended: log in again"))?;
    Ok(Json(me_of(&state, &session)?))
}

/// Who is logged in.
#[utoipa::path(get, path = "/session", tag = "session", security(("session" = ["administrator", "clerk", "cashier"])),
    responses((status = 200, body = Me), (status = 401, body = ApiError)))]
async fn me(State(state): State<AppState>, caller: Caller<Everyone>) -> HttpResult<Json<Me>> {
    Ok(Json(me_of(&state, &caller.authed.session)?))
}

/// Finds consumers by PAN, codice fiscale or the start of a name.
#[utoipa::path(get, path = "/consumers", tag = "counter", params(SearchParams),
    security(("session" = ["administrator", "clerk", "cashier"])),
    responses((status = 200, body = SearchResults), (status = 400, body = ApiError)))]
async fn search(
    State(state): State<AppState>,
    _caller: Caller<Everyone>,
    query: Result<Query<SearchParams>, axum::extract::rejection::QueryRejection>,
) -> HttpResult<Json<SearchResults>> {
    let Query(params) = query.map_err(|e| HttpError(ApiError::invalid("q", e.body_text())))?;
    Ok(Json(state.service.search(params).await?))
}

/// One consumer: wallets with confirmed and provisional balances, last
/// movements, and the family's other children.
#[utoipa::path(get, path = "/consumers/{consumer}", tag = "counter",
    params(("consumer" = String, Path, description = "the consumer's id (hex)")),
    security(("session" = ["administrator", "clerk", "cashier"])),
    responses((status = 200, body = ConsumerDetail), (status = 404, body = ApiError)))]
async fn consumer(
    State(state): State<AppState>,
    _caller: Caller<Everyone>,
    Path(consumer): Path<String>,
) -> HttpResult<Json<ConsumerDetail>> {
    let consumer = parse_consumer(&consumer, "consumer")?;
    Ok(Json(state.service.consumer(consumer).await?))
}

pub(super) fn parse_consumer(text: &str, field: &str) -> HttpResult<ConsumerId> {
    ConsumerId::from_hex(text).map_err(|_| {
        HttpError(ApiError::invalid(
            field,
            format!("{text:?} is not a consumer id: 32 hexadecimal digits, as search gives"),
        ))
    })
}

/// The node's status: online or offline, unconfirmed operations, last
/// contact with the hub, peers.
#[utoipa::path(get, path = "/status", tag = "status", security(("session" = ["administrator", "clerk", "cashier"])),
    responses((status = 200, body = Status)))]
async fn status(State(state): State<AppState>, _caller: Caller<Everyone>) -> HttpResult<Json<Status>> {
    Ok(Json(state.service.status().await?))
}

/// Server-sent events: the status whenever it changes, and every balance
/// change (a top-up recorded, a balance turning confirmed).
#[utoipa::path(get, path = "/events", tag = "status", security(("session" = ["administrator", "clerk", "cashier"])),
    responses((status = 200, content_type = "text/event-stream", body = Event)))]
async fn events(State(state): State<AppState>, _caller: Caller<Everyone>) -> HttpResult<Response> {
    let stream = state.service.events().await?.map(|event| {
        let sse = match &event {
            Some(event) => SseEvent::default().event(event.name()).json_data(event),
            // The listener fell behind: the page reloads what it shows.
            None => Ok(SseEvent::default().event("lagged").data("reload")),
        };
        Ok::<_, Infallible>(sse.unwrap_or_else(|_| SseEvent::default().event("lagged").data("reload")))
    });
    let mut response = Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response();
    response.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

pub(super) fn idempotency_key(headers: &HeaderMap) -> HttpResult<String> {
    let field = saldo_api::IDEMPOTENCY_KEY_HEADER;
    let value = headers.get(field).ok_or_else(|| {
        HttpError(ApiError::invalid(
            field,
            format!("send an {field} header (a new UUID per payment) so that a retried request records nothing twice"),
        ))
    })?;
    let value = value.to_str().map_err(|_| HttpError(ApiError::invalid(field, "use visible ASCII characters")))?;
    saldo_api::check_idempotency_key(value)?;
    Ok(value.to_string())
}

/// Records a top-up of one or more children of one family (and one or more
/// services) on one receipt. Send an `Idempotency-Key`: a retried request
/// returns the first one's receipt and records nothing new.
#[utoipa::path(post, path = "/topups", tag = "counter", request_body = TopUpRequest,
    params(("Idempotency-Key" = String, Header, description = "a new UUID per payment")),
    security(("session" = ["administrator", "clerk", "cashier"])),
    responses((status = 200, body = Receipt), (status = 400, body = ApiError), (status = 409, body = ApiError)))]
async fn top_up(
    State(state): State<AppState>,
    caller: Caller<Everyone>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<TopUpRequest>,
) -> HttpResult<Json<Receipt>> {
    let operator = caller.operator().clone();
    let key = idempotency_key(&headers)?;
    request.validate()?;
    Ok(Json(state.service.top_up(&operator, request, Some(key)).await?))
}

/// How a receipt is wanted: JSON (default), plain text for a thermal
/// printer, or a printable HTML page.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReceiptFormat {
    /// `json`, `text` or `html`.
    #[serde(default)]
    format: Option<String>,
    /// Columns of a text receipt: 32, 42 or 48.
    #[serde(default)]
    width: Option<u16>,
    /// Paper of an HTML receipt: `a4`, `58mm` or `80mm`.
    #[serde(default)]
    paper: Option<String>,
    /// `it` (default) or `en`.
    #[serde(default)]
    lang: Option<String>,
}

/// A receipt, as JSON, text or printable HTML.
#[utoipa::path(get, path = "/receipts/{operation}", tag = "counter",
    params(("operation" = String, Path, description = "the operation's id (hex)"), ReceiptFormat),
    security(("session" = ["administrator", "clerk", "cashier"])),
    responses((status = 200, body = Receipt), (status = 404, body = ApiError)))]
async fn receipt(
    State(state): State<AppState>,
    _caller: Caller<Everyone>,
    Path(operation): Path<String>,
    Query(format): Query<ReceiptFormat>,
) -> HttpResult<Response> {
    let op = OpId::from_hex(&operation).map_err(|_| {
        HttpError(ApiError::invalid(
            "operation",
            format!("{operation:?} is not an operation id: 64 hexadecimal digits"),
        ))
    })?;
    let lang = match format.lang.as_deref() {
        None | Some("it") => saldo_api::Lang::It,
        Some("en") => saldo_api::Lang::En,
        Some(other) => return Err(HttpError(ApiError::invalid("lang", format!("{other:?}: use it or en")))),
    };
    let receipt = state.service.receipt(op).await?;
    match format.format.as_deref() {
        None | Some("json") => Ok(Json(receipt).into_response()),
        Some("text") => {
            let width = match format.width {
                None | Some(32) => TextWidth::Columns32,
                Some(42) => TextWidth::Columns42,
                Some(48) => TextWidth::Columns48,
                Some(other) => {
                    return Err(HttpError(ApiError::invalid("width", format!("{other} columns: use 32, 42 or 48"))));
                }
            };
            let text = saldo_api::receipt::render_text(&receipt, width, lang);
            Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
        }
        Some("html") => {
            let paper = match format.paper.as_deref() {
                None | Some("a4") => Paper::A4,
                Some("58mm") => Paper::Mm58,
                Some("80mm") => Paper::Mm80,
                Some(other) => {
                    return Err(HttpError(ApiError::invalid("paper", format!("{other:?}: use a4, 58mm or 80mm"))));
                }
            };
            let html = saldo_api::receipt::render_html(&receipt, paper, lang);
            Ok(axum::response::Html(html).into_response())
        }
        Some(other) => Err(HttpError(ApiError::invalid("format", format!("{other:?}: use json, text or html")))),
    }
}

/// Public: whether a receipt is genuine and where it stands; nothing
/// personal beyond what its paper shows. Rate-limited per address.
#[utoipa::path(get, path = "/verify/{code}", tag = "public",
    params(("code" = String, Path, description = "the code printed under the receipt's QR code")),
    responses((status = 200, body = Verification), (status = 429, body = ApiError)))]
async fn verify(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    Path(code): Path<String>,
) -> HttpResult<Json<Verification>> {
    state.verify_limits.attempt(address)?;
    Ok(Json(state.service.verify(code).await?))
}

/// The page a receipt's QR code opens.
async fn verify_page(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    Path(code): Path<String>,
) -> HttpResult<Response> {
    state.verify_limits.attempt(address)?;
    let verification = state.service.verify(code).await?;
    Ok(axum::response::Html(saldo_api::receipt::render_verification_html(&verification, saldo_api::Lang::It))
        .into_response())
}
