//! Every error leaves as the same JSON body ([`saldo_api::ApiError`]) with
//! the status its kind names; a request body that does not parse is refused
//! naming the field (`lines[1].amount`) and what was expected.

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use saldo_api::{ApiError, ErrorKind};
use serde::de::DeserializeOwned;

use crate::service::ServiceError;

/// An error answer.
#[derive(Debug)]
pub struct HttpError(pub ApiError);

impl From<ServiceError> for HttpError {
    fn from(error: ServiceError) -> HttpError {
        if error.kind == ErrorKind::Internal {
            // Details stay in the node's log.
            tracing::error!("{error}");
            return HttpError(ApiError::internal());
        }
        HttpError(error.to_api())
    }
}

impl From<ApiError> for HttpError {
    fn from(error: ApiError) -> HttpError {
        HttpError(error)
    }
}

impl HttpError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> HttpError {
        HttpError(ApiError::new(kind, message))
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.0)).into_response()
    }
}

pub type HttpResult<T> = Result<T, HttpError>;

/// A JSON request body, refused with the path of the field that is wrong.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = HttpError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json =
            request.headers().get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
                v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !json {
            return Err(HttpError::new(
                ErrorKind::InvalidInput,
                "send the request body as JSON, with the header Content-Type: application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                HttpError::new(ErrorKind::InvalidInput, "the request body is too large")
            } else {
                HttpError::new(ErrorKind::InvalidInput, format!("cannot read the request body: {rejection}"))
            }
        })?;
        parse_json(&bytes).map(ApiJson).map_err(HttpError)
    }
}

/// Parses `bytes` as a `T`, saying which field is wrong and how.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let what = inner.to_string();
        // serde_json adds " at line 1 column 17": the field says where.
        let what = what.split(" at line ").next().unwrap_or(&what).to_string();
        let whole = path == "." || path.is_empty() || inner.is_syntax() || inner.is_eof();
        let message = if inner.is_syntax() || inner.is_eof() {
            format!("the request body is not valid JSON: {what}")
        } else if whole {
            format!("the request body is not what this endpoint takes: {what}")
        } else {
            format!("{path}: {what}")
        };
        // A missing field is named by serde in the message only.
        let missing = what.strip_prefix("missing field `").and_then(|rest| rest.split('`').next());
        let field = match missing {
            Some(name) if whole => Some(name.to_string()),
            Some(name) => Some(format!("{path}.{name}")),
            None => (!whole).then_some(path),
        };
        let message = match missing {
            Some(name) => format!("{name} is missing: this request needs it"),
            None => message,
        };
        ApiError { kind: ErrorKind::InvalidInput, message, field }
    })?;
    deserializer.end().map_err(|e| {
        ApiError::new(ErrorKind::InvalidInput, format!("the request body has more after its JSON value: {e}"))
    })?;
    Ok(value)
}
