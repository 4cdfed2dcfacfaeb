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
mod raw;
mod routes;

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
    routes::api(state.clone()).merge(routes::outside_the_api(state.clone())).layer(
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
pub async fn serve(
    service: Service,
    config: HttpConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.check()?;
    let app = router(service, config.tls.is_some()).into_make_service_with_connect_info::<SocketAddr>();
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
            let server = axum_server::bind_rustls(config.addr, tls).handle(handle.clone());
            announce(&handle, "https").await;
            server.serve(app).await?;
        }
        None => {
            let server = axum_server::bind(config.addr).handle(handle.clone());
            announce(&handle, "http").await;
            server.serve(app).await?;
        }
    }
    Ok(())
}

async fn announce(handle: &axum_server::Handle<SocketAddr>, scheme: &'static str) {
    let handle = handle.clone();
    tokio::spawn(async move {
        if let Some(addr) = handle.listening().await {
            crate::net::say(format_args!("http: serving the API at {scheme}://{addr}/api/v1"));
        }
    });
}
