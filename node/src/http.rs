//! The operators' HTTP API under `/api/v1` (axum), served by `saldo hub`
//! and `saldo cashpoint`: a thin edge over the service layer. Each handler
//! checks the operator's role, parses its input into `saldo-api` types and
//! makes one call of the [`Service`]; the OpenAPI document at
//! `/api/v1/openapi.json` is generated from the same types and handlers.
//!
//! Served over HTTPS with a configured certificate, or over plain HTTP on
//! loopback behind a reverse proxy (a plain-HTTP address elsewhere is
//! refused unless asked for). `/healthz`, `/readyz` and `/metrics`
//! (Prometheus text) beside the API; bodies, concurrency and time are
//! bounded; SIGTERM finishes the requests in flight.

mod accounts;
mod auth;
mod devices;
mod directory;
mod error;
mod metrics;
mod money;
mod openapi;
mod outbox;
mod raw;
mod reports;
mod routes;
pub mod web;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, Request};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

pub use auth::{CSRF_HEADER, SESSION_COOKIE};
pub use error::{ApiJson, HttpError, HttpResult, parse_json};

use crate::service::Service;

/// Largest request body accepted (a CSV import of a few thousand families
/// fits; a bundle has its own, larger limit).
pub const BODY_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Largest bundle uploaded through the API.
pub const BUNDLE_BYTES_MAX: usize = 256 * 1024 * 1024;
/// Requests served at once; more wait their turn.
pub const CONCURRENT_REQUESTS_MAX: usize = 256;
/// Longest a request may take before it is answered 408.
pub const REQUEST_TIME_MAX: Duration = Duration::from_secs(30);

/// Where and how the API is served.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub addr: SocketAddr,
    /// Certificate chain and private key (PEM) to serve HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Serve plain HTTP on an address other than loopback (behind a
    /// reverse proxy on another machine): only when asked for.
    pub plain_http_beyond_loopback: bool,
}

impl HttpConfig {
    /// Refuses a plain-HTTP address beyond loopback unless asked for:
    /// passwords and session cookies would cross the network in clear.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.tls.is_none() && !self.addr.ip().is_loopback() && !self.plain_http_beyond_loopback {
            anyhow::bail!(
                "--http {}: plain HTTP beyond this machine would send passwords in clear; serve HTTPS with --tls-cert and --tls-key, or keep --http on 127.0.0.1 behind a reverse proxy (or add --plain-http if that proxy is on another machine of a trusted network)",
                self.addr
            );
        }
        Ok(())
    }

    /// Takes the address now, so that a node whose address is in use says
    /// so as it starts (rather than running without its API).
    pub fn bind(&self) -> anyhow::Result<std::net::TcpListener> {
        let listener = std::net::TcpListener::bind(self.addr).map_err(|e| {
            anyhow::anyhow!(
                "cannot serve the HTTP API on {}: {e} (another node runs here? choose another address with --http, or `http` in saldo.toml; port 0 picks a free one)",
                self.addr
            )
        })?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    }
}

/// What every handler reaches.
#[derive(Debug, Clone)]
pub struct AppState {
    pub service: Service,
    pub(crate) sessions: Arc<auth::Sessions>,
    pub(crate) login_limits: Arc<auth::LoginLimits>,
    pub(crate) verify_limits: Arc<auth::VerifyLimits>,
    pub(crate) metrics: Arc<metrics::Metrics>,
    /// Cookies marked Secure (served over TLS).
    pub(crate) secure: bool,
}

/// The whole router: the API, health, metrics. Tests call it directly.
pub fn router(service: Service, secure: bool) -> Router {
    let state = AppState {
        service,
        sessions: Arc::default(),
        login_limits: Arc::default(),
        verify_limits: Arc::default(),
        metrics: Arc::new(metrics::Metrics::new()),
        secure,
    };
    let request_id = HeaderName::from_static("x-request-id");
    routes::api(state.clone()).merge(routes::outside_the_api(state.clone())).merge(web::routes()).layer(
        tower::ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
            .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                tracing::info_span!("http", id = %id, method = %request.method(), path = %request.uri().path())
            }))
            .layer(PropagateRequestIdLayer::new(request_id))
            .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::count))
            .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                REQUEST_TIME_MAX,
            ))
            .layer(tower::limit::ConcurrencyLimitLayer::new(CONCURRENT_REQUESTS_MAX)),
    )
}

/// Serves the API until `shutdown` resolves, then finishes the requests in
/// flight (at most [`REQUEST_TIME_MAX`]).
///
/// With `public_url_from_address`, a hub's receipts' verification links
/// point at the address it listens on (no public URL was configured).
pub async fn serve(
    service: Service,
    config: HttpConfig,
    listener: std::net::TcpListener,
    public_url_from_address: bool,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.check()?;
    let app = router(service.clone(), config.tls.is_some()).into_make_service_with_connect_info::<SocketAddr>();
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(REQUEST_TIME_MAX));
    });
    match &config.tls {
        Some((cert, key)) => {
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key).await.map_err(|e| {
                anyhow::anyhow!("cannot use the certificate {} and key {}: {e}", cert.display(), key.display())
            })?;
            let server = axum_server::from_tcp_rustls(listener, tls)?.handle(handle.clone());
            announce(&service, &handle, "https", public_url_from_address).await;
            server.serve(app).await?;
        }
        None => {
            let server = axum_server::from_tcp(listener)?.handle(handle.clone());
            announce(&service, &handle, "http", public_url_from_address).await;
            server.serve(app).await?;
        }
    }
    Ok(())
}

/// Once the server listens: says where, puts it in the node's status
/// (`status.json`), and points a hub's verification links there if no
/// public URL was configured.
async fn announce(
    service: &Service,
    handle: &axum_server::Handle<SocketAddr>,
    scheme: &'static str,
    public_url_from_address: bool,
) {
    let (service, handle) = (service.clone(), handle.clone());
    tokio::spawn(async move {
        let Some(addr) = handle.listening().await else { return };
        let url = format!("{scheme}://{addr}");
        crate::net::say(format_args!("http: serving the API at {url}/api/v1"));
        service.run_status().lock().unwrap_or_else(std::sync::PoisonError::into_inner).http = Some(url.clone());
        if public_url_from_address
            && service.about().is_hub
            && let Err(e) = service.set_public_url(url).await
        {
            tracing::warn!("cannot keep the hub's address for receipts' links: {e}");
        }
    });
}
