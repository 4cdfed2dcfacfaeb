//! Calls to the node's `/api/v1`, from the page's origin: the session cookie
//! goes by itself, the CSRF token in its header on every change, and an
//! idempotency key on every request that records money.

use gloo_net::http::{Request, RequestBuilder, Response};
use saldo_api::{API_PREFIX, ApiError, CSRF_HEADER, ErrorKind, IDEMPOTENCY_KEY_HEADER};
use serde::Serialize;
use serde::de::DeserializeOwned;

fn url(path: &str) -> String {
    format!("{API_PREFIX}{path}")
}

/// The API's answer as `T`, or its error (the node's own, or one saying it
/// did not answer).
pub(crate) async fn answer<T: DeserializeOwned>(response: Result<Response, gloo_net::Error>) -> Result<T, ApiError> {
    let response =
        response.map_err(|e| ApiError::new(ErrorKind::Unavailable, format!("the node does not answer: {e}")))?;
    if response.ok() {
        return response
            .json::<T>()
            .await
            .map_err(|e| ApiError::new(ErrorKind::Internal, format!("unexpected answer: {e}")));
    }
    let status = response.status();
    Err(response
        .json::<ApiError>()
        .await
        .unwrap_or_else(|_| ApiError::new(ErrorKind::Internal, format!("the node answered {status}"))))
}

pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, ApiError> {
    answer(Request::get(&url(path)).send().await).await
}

/// A new idempotency key: 128 random bits from the browser, in hex.
pub fn new_key() -> String {
    let mut bytes = [0u8; 16];
    let crypto = web_sys::window().and_then(|w| w.crypto().ok());
    if let Some(crypto) = crypto {
        let _ = crypto.get_random_values_with_u8_array(&mut bytes);
    } else {
        // No Web Crypto (a very old browser): the key need only be unique.
        for pair in bytes.chunks_mut(8) {
            pair.copy_from_slice(&js_sys::Math::random().to_bits().to_le_bytes()[..pair.len()]);
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn with_headers(builder: RequestBuilder, csrf: &str, key: Option<&str>) -> RequestBuilder {
    let builder = builder.header(CSRF_HEADER, csrf);
    match key {
        Some(key) => builder.header(IDEMPOTENCY_KEY_HEADER, key),
        None => builder,
    }
}

/// A POST with a JSON body (`key`: the idempotency key of a payment).
pub async fn post<B: Serialize, T: DeserializeOwned>(
    path: &str,
    body: &B,
    csrf: &str,
    key: Option<&str>,
) -> Result<T, ApiError> {
    let request = with_headers(Request::post(&url(path)), csrf, key)
        .json(body)
        .map_err(|e| ApiError::new(ErrorKind::Internal, e.to_string()))?;
    answer(request.send().await).await
}

/// A POST without a body.
pub async fn post_empty<T: DeserializeOwned>(path: &str, csrf: &str, key: Option<&str>) -> Result<T, ApiError> {
    answer(with_headers(Request::post(&url(path)), csrf, key).send().await).await
}

/// Logs in (no CSRF token yet).
pub async fn login<T: DeserializeOwned, B: Serialize>(body: &B) -> Result<T, ApiError> {
    let request =
        Request::post(&url("/session")).json(body).map_err(|e| ApiError::new(ErrorKind::Internal, e.to_string()))?;
    answer(request.send().await).await
}

pub async fn logout(csrf: &str) {
    let _ = with_headers(Request::delete(&url("/session")), csrf, None).send().await;
}
