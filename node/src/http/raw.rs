//! Bodies that are not JSON (a CSV file, a bundle, a frontier file) and ids
//! in paths: read or refused with a message naming what is wrong.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use saldo_api::{ApiError, ErrorKind};

use super::error::{HttpError, HttpResult};

/// Refuses a body whose `Content-Type` is none of `allowed`.
pub(super) fn require_content_type(headers: &HeaderMap, allowed: &[&str], what: &str) -> HttpResult<()> {
    let sent = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media = sent.split(';').next().unwrap_or("").trim();
    if allowed.iter().any(|a| media.eq_ignore_ascii_case(a)) {
        return Ok(());
    }
    Err(HttpError(ApiError::invalid(
        "Content-Type",
        format!("send {what} with the header Content-Type: {}", allowed.join(" or ")),
    )))
}

/// The body's bytes, or why they could not be read (too large: the limit named).
pub(super) fn raw_body(body: Result<Bytes, BytesRejection>, bytes_max: usize) -> HttpResult<Vec<u8>> {
    match body {
        Ok(bytes) if bytes.is_empty() => Err(HttpError(ApiError::invalid("body", "the request body is empty"))),
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(HttpError(ApiError::invalid(
            "body",
            format!("the request body is over {} MiB: split it", bytes_max >> 20),
        ))),
        Err(rejection) => {
            Err(HttpError::new(ErrorKind::InvalidInput, format!("cannot read the request body: {rejection}")))
        }
    }
}

/// An id given in the path, parsed by `parse`, or 400 naming the parameter.
pub(super) fn path_id<T, E>(
    text: &str,
    field: &str,
    what: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> HttpResult<T> {
    parse(text).map_err(|_| HttpError(ApiError::invalid(field, format!("{text:?} is not {what}"))))
}
