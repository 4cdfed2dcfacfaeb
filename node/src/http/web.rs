//! The operators' web UI (the `saldo-web` crate, built to wasm by
//! `node/build.rs`), served from the binary: the page at `/` and its assets
//! under `/app/{version}/`, where the version is a hash of the assets, so a
//! browser keeps them for good and a new binary's page asks for new ones.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One file of the app.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "saldo_web.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!(concat!(env!("OUT_DIR"), "/web/saldo_web.js")),
    },
    Asset {
        name: "saldo_web_bg.wasm",
        content_type: "application/wasm",
        bytes: include_bytes!(concat!(env!("OUT_DIR"), "/web/saldo_web_bg.wasm")),
    },
    Asset {
        name: "boot.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!(concat!(env!("OUT_DIR"), "/web/boot.js")),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!(concat!(env!("OUT_DIR"), "/web/app.css")),
    },
];

const INDEX: &str = include_str!(concat!(env!("OUT_DIR"), "/web/index.html"));

/// Scripts from this origin only (and the wasm they compile), no inline code.
const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The assets' version: the first 16 hex digits of their BLAKE3 hash.
fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut hasher = blake3::Hasher::new();
        for asset in ASSETS {
            hasher.update(asset.name.as_bytes());
            hasher.update(asset.bytes);
        }
        hasher.finalize().to_hex()[..16].to_owned()
    })
}

/// The page, with the assets' versioned paths.
fn index_html() -> &'static str {
    static PAGE: OnceLock<String> = OnceLock::new();
    PAGE.get_or_init(|| INDEX.replace("{version}", version()))
}

/// The size in bytes of the app's wasm, for the record.
pub fn wasm_bytes() -> usize {
    ASSETS.iter().find(|a| a.name.ends_with(".wasm")).map_or(0, |a| a.bytes.len())
}

/// `/` (and `/index.html`) and `/app/{version}/{file}`.
pub fn routes() -> Router {
    Router::new().route("/", get(page)).route("/index.html", get(page)).route("/app/{version}/{file}", get(asset))
}

async fn page() -> Response {
    let mut response = axum::response::Html(index_html()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

async fn asset(Path((wanted, file)): Path<(String, String)>) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == file) else {
        return (StatusCode::NOT_FOUND, "no such file\n").into_response();
    };
    // An old page asking for its own version gets today's files, not kept.
    let cache = if wanted == version() { "public, max-age=31536000, immutable" } else { "no-cache" };
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, cache),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        asset.bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_versioned_assets_that_exist() {
        let page = index_html();
        assert!(page.contains(&format!("/app/{}/boot.js", version())), "{page}");
        assert!(page.contains(&format!("/app/{}/app.css", version())), "{page}");
        // The wasm starts with its magic number; the glue exports its init.
        assert!(wasm_bytes() > 1_000);
        let wasm = ASSETS.iter().find(|a| a.name == "saldo_web_bg.wasm").unwrap();
        assert_eq!(&wasm.bytes[..4], b"\0asm");
        let glue = ASSETS.iter().find(|a| a.name == "saldo_web.js").unwrap();
        assert!(std::str::from_utf8(glue.bytes).unwrap().contains("as default"));
    }

    async fn get(path: &str) -> Response {
        use tower::ServiceExt as _;
        let request = axum::http::Request::get(path).body(axum::body::Body::empty()).unwrap();
        routes().oneshot(request).await.unwrap()
    }

    fn header(response: &Response, name: header::HeaderName) -> &str {
        response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    #[tokio::test]
    async fn the_page_and_its_assets_are_served_with_their_types_and_caching() {
        let page = get("/").await;
        assert_eq!(page.status(), StatusCode::OK);
        assert!(header(&page, header::CONTENT_TYPE).starts_with("text/html"));
        assert_eq!(header(&page, header::CACHE_CONTROL), "no-cache");
        assert!(header(&page, header::CONTENT_SECURITY_POLICY).contains("script-src 'self' 'wasm-unsafe-eval'"));
        let v = version();
        for (file, content_type) in [
            ("saldo_web_bg.wasm", "application/wasm"),
            ("saldo_web.js", "text/javascript; charset=utf-8"),
            ("boot.js", "text/javascript; charset=utf-8"),
            ("app.css", "text/css; charset=utf-8"),
        ] {
            let asset = get(&format!("/app/{v}/{file}")).await;
            assert_eq!(asset.status(), StatusCode::OK, "{file}");
            assert_eq!(header(&asset, header::CONTENT_TYPE), content_type, "{file}");
            assert!(header(&asset, header::CACHE_CONTROL).contains("immutable"), "{file}");
        }
        // An old page's version: today's files, not kept.
        let old = get("/app/0000000000000000/app.css").await;
        assert_eq!(header(&old, header::CACHE_CONTROL), "no-cache");
        assert_eq!(get(&format!("/app/{v}/secret.txt")).await.status(), StatusCode::NOT_FOUND);
        assert_eq!(get(&format!("/app/{v}/..%2F..%2FCargo.toml")).await.status(), StatusCode::NOT_FOUND);
    }
}
