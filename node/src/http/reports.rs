//! The municipality's accounts: `GET /reports/daily-close`,
//! `/reports/remittances`, `/reports/yearly` and `/reports/movements`, as
//! JSON, CSV (`format=csv`) or, for one payer's year, printable HTML
//! (`format=html`). The hub's staff read them all; a cashier reads their
//! own cash point's daily close.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse as _, Response};
use saldo_api::reports::{
    DailyCloseParams, DailyCloseReport, MovementsReport, PeriodParams, RemittanceReport, ReportFormat, YearlyParams,
    YearlyReport, render_yearly_html,
};
use saldo_api::{ApiError, ErrorKind};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, Everyone, HubStaff};
use super::error::{HttpError, HttpResult};
use crate::reports_csv;

/// This module's routes, merged into the API (and its OpenAPI document).
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(daily_close_report))
        .routes(routes!(remittance_report))
        .routes(routes!(yearly_report))
        .routes(routes!(movements_report))
}

fn params<T>(query: Result<Query<T>, QueryRejection>) -> HttpResult<T> {
    query.map(|Query(params)| params).map_err(|e| HttpError(ApiError::invalid("query", e.body_text())))
}

fn text(content_type: &'static str, name: &str, body: String) -> HttpResult<Response> {
    let disposition = HeaderValue::from_str(&format!("inline; filename=\"{name}\""))
        .map_err(|e| HttpError::new(ErrorKind::Internal, format!("a file name: {e}")))?;
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type)), (header::CONTENT_DISPOSITION, disposition)],
        body,
    )
        .into_response())
}

fn answer<T: Serialize>(
    format: ReportFormat,
    name: &str,
    report: T,
    csv: impl FnOnce(&T) -> Result<String, csv::Error>,
) -> HttpResult<Response> {
    match format {
        ReportFormat::Csv => {
            let body = csv(&report).map_err(|e| HttpError::new(ErrorKind::Internal, format!("writing CSV: {e}")))?;
            text("text/csv; charset=utf-8", &format!("{name}.csv"), body)
        }
        _ => Ok(Json(report).into_response()),
    }
}

/// One day's close (*chiusura*) per cash point and operator: count and
/// total per method, first and last receipt, reversals, what awaits the
/// hub or is flagged. A cashier gets their own cash point's only.
#[utoipa::path(get, path = "/reports/daily-close", tag = "reports", params(DailyCloseParams),
    security(("session" = ["administrator", "clerk", "cashier"])),
    responses((status = 200, description = "the report (JSON, or CSV with format=csv)",
            content((DailyCloseReport = "application/json"), (String = "text/csv"))),
        (status = 400, body = ApiError), (status = 403, body = ApiError)))]
async fn daily_close_report(
    State(state): State<AppState>,
    caller: Caller<Everyone>,
    query: Result<Query<DailyCloseParams>, QueryRejection>,
) -> HttpResult<Response> {
    let params = params(query)?;
    let format = params.format;
    let report = state.service.report_daily_close(Some(caller.operator()), params).await?;
    let name = format!("chiusura-{}", report.day);
    answer(format, &name, report, reports_csv::daily_close)
}

/// Each cash point's remittance statement for a period (this month so far
/// by default): cash owed before, collected, remitted with the receipt
/// ranges, still owed: what the *agente contabile* signs.
#[utoipa::path(get, path = "/reports/remittances", tag = "reports", params(PeriodParams),
    security(("session" = ["administrator", "clerk"])),
    responses((status = 200, description = "the report (JSON, or CSV with format=csv)",
            content((RemittanceReport = "application/json"), (String = "text/csv"))),
        (status = 400, body = ApiError)))]
async fn remittance_report(
    State(state): State<AppState>,
    _caller: Caller<HubStaff>,
    query: Result<Query<PeriodParams>, QueryRejection>,
) -> HttpResult<Response> {
    let params = params(query)?;
    let format = params.format;
    let report = state.service.report_remittances(params).await?;
    let name = format!("versamenti-{}-{}", report.from, report.to);
    answer(format, &name, report, reports_csv::remittances)
}

/// What each payer (*adulto pagante*) paid in a year per child and service,
/// traceable and cash apart, with both codici fiscali; `format=html` with a
/// `payer` prints the attestation for the CAF (730, quadro E, code 12).
#[utoipa::path(get, path = "/reports/yearly", tag = "reports", params(YearlyParams),
    security(("session" = ["administrator", "clerk"])),
    responses((status = 200, description = "the report (JSON, CSV with format=csv, one payer's attestation with format=html)",
            content((YearlyReport = "application/json"), (String = "text/csv"), (String = "text/html"))),
        (status = 400, body = ApiError),
        (status = 404, body = ApiError)))]
async fn yearly_report(
    State(state): State<AppState>,
    _caller: Caller<HubStaff>,
    query: Result<Query<YearlyParams>, QueryRejection>,
) -> HttpResult<Response> {
    let params = params(query)?;
    let format = params.format;
    let report = state.service.report_yearly(params).await?;
    if format == ReportFormat::Html {
        let Some(payer) = report.payers.first() else {
            return Err(HttpError(ApiError::new(
                ErrorKind::NotFound,
                format!("no payment of this payer counts in {}: check the codice fiscale and the year", report.year),
            )));
        };
        let html = render_yearly_html(payer, report.year, &report.realm_name);
        return text("text/html; charset=utf-8", &format!("attestazione-{}.html", report.year), html);
    }
    let name = format!("pagamenti-{}", report.year);
    answer(format, &name, report, reports_csv::yearly)
}

/// The money moved per day, service and device (top-ups, payments of dues,
/// charges, reversals, refunds: counts and totals): what the web UI charts.
#[utoipa::path(get, path = "/reports/movements", tag = "reports", params(PeriodParams),
    security(("session" = ["administrator", "clerk"])),
    responses((status = 200, description = "the report (JSON, or CSV with format=csv)",
            content((MovementsReport = "application/json"), (String = "text/csv"))),
        (status = 400, body = ApiError)))]
async fn movements_report(
    State(state): State<AppState>,
    _caller: Caller<HubStaff>,
    query: Result<Query<PeriodParams>, QueryRejection>,
) -> HttpResult<Response> {
    let params = params(query)?;
    let format = params.format;
    let report = state.service.report_movements(params).await?;
    let name = format!("movimenti-{}-{}", report.from, report.to);
    answer(format, &name, report, reports_csv::movements)
}
