//! The hub screens' calls to the node (wasm32 only): the session cookie goes
//! by itself, the CSRF token in its header on every change. Beside the
//! counter's `GET` and `POST` these screens need `PUT`, `PATCH` and a CSV
//! body, so they have their own few lines rather than widening the counter's.

use crate::app::api::answer;
use gloo_net::http::{Request, RequestBuilder};
use saldo_api::{API_PREFIX, ApiError, CSRF_HEADER, ErrorKind};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// `GET` of a full URL (as `logic::api_url` makes them).
pub async fn get_url<T: DeserializeOwned>(url: &str) -> Result<T, ApiError> {
    answer(Request::get(url).send().await).await
}

/// `GET` of a path under the API.
pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, ApiError> {
    get_url(&format!("{API_PREFIX}{path}")).await
}

#[derive(Clone, Copy)]
pub enum Method {
    Post,
    Put,
    Patch,
}

fn builder(method: Method, path: &str, csrf: &str) -> RequestBuilder {
    let url = format!("{API_PREFIX}{path}");
    let builder = match method {
        Method::Post => Request::post(&url),
        Method::Put => Request::put(&url),
        Method::Patch => Request::patch(&url),
    };
    builder.header(CSRF_HEADER, csrf)
}

/// A change with a JSON body.
pub async fn send<B: Serialize, T: DeserializeOwned>(
    method: Method,
    path: &str,
    body: &B,
    csrf: &str,
) -> Result<T, ApiError> {
    let request =
        builder(method, path, csrf).json(body).map_err(|e| ApiError::new(ErrorKind::Internal, e.to_string()))?;
    answer(request.send().await).await
}

/// A `POST` without a body.
pub async fn post_empty<T: DeserializeOwned>(path: &str, csrf: &str) -> Result<T, ApiError> {
    answer(builder(Method::Post, path, csrf).send().await).await
}

/// A `POST` of a CSV file's text.
pub async fn post_csv<T: DeserializeOwned>(path: &str, csv: String, csrf: &str) -> Result<T, ApiError> {
    let request = builder(Method::Post, path, csrf)
        .header("Content-Type", "text/csv; charset=utf-8")
        .body(csv)
        .map_err(|e| ApiError::new(ErrorKind::Internal, e.to_string()))?;
    answer(request.send().await).await
}
