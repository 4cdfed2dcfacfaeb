//! `/metrics`: requests by route and status, and how long they took, as
//! Prometheus text (the `prometheus-client` crate).

use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::AppState;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteOnly {
    pub method: String,
    pub route: String,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RouteLabels, Counter>,
    seconds: Family<RouteOnly, Histogram>,
    in_flight: Gauge,
}

impl Metrics {
    pub fn new() -> Metrics {
        let requests = Family::<RouteLabels, Counter>::default();
        let seconds = Family::<RouteOnly, Histogram>::new_with_constructor(|| {
            Histogram::new([0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0])
        });
        let in_flight = Gauge::default();
        let mut registry = Registry::with_prefix("saldo_http");
        registry.register("requests", "HTTP requests answered, by route and status", requests.clone());
        registry.register("request_seconds", "Time from request to response, by route", seconds.clone());
        registry.register("requests_in_flight", "Requests being served", in_flight.clone());
        Metrics { registry: Mutex::new(registry), requests, seconds, in_flight }
    }

    /// The registry as Prometheus text, with `extra` lines appended (the
    /// node's own gauges, read when asked).
    pub fn encode(&self, extra: &str) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if prometheus_client::encoding::text::encode_registry(&mut out, &registry).is_err() {
            out.clear();
        }
        out.push_str(extra);
        prometheus_client::encoding::text::encode_eof(&mut out).ok();
        out
    }
}

/// Counts every request by its route (the pattern, not the path: ids stay out).
pub async fn count(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route =
        request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = request.method().to_string();
    let started = Instant::now();
    state.metrics.in_flight.inc();
    let response = next.run(request).await;
    state.metrics.in_flight.dec();
    let labels = RouteOnly { method: method.clone(), route: route.clone() };
    state.metrics.seconds.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
    state.metrics.requests.get_or_create(&RouteLabels { method, route, status: response.status().as_u16() }).inc();
    response
}
