//! The console: one page at `/` (and `/ui`) that lists the caller's jobs with live progress,
//! posts a customer CSV and links each report and export. Static files embedded in the binary;
//! they hold no data, so they need no key: the page asks for one when the API answers 401 and
//! sends it on every request it makes. Outside `/v1` and the OpenAPI document, like `/docs`.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;

const HTML: &str = include_str!("../../assets/console.html");
const SCRIPT: &str = include_str!("../../assets/console.js");
const SSE: &str = include_str!("../../assets/sse.js");
const STYLE: &str = include_str!("../../assets/console.css");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(page))
        .route("/ui", get(page))
        .route(
            "/ui/console.js",
            get(|| asset(SCRIPT, "text/javascript; charset=utf-8")),
        )
        .route(
            "/ui/sse.js",
            get(|| asset(SSE, "text/javascript; charset=utf-8")),
        )
        .route(
            "/ui/console.css",
            get(|| asset(STYLE, "text/css; charset=utf-8")),
        )
}

/// The console's Content-Security-Policy: scripts, styles and connections of this origin only,
/// no inline script; and the report's inline style, since a report the console opens from a
/// blob URL (with the key) keeps the console's policy.
fn content_security_policy() -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self' {}; connect-src 'self'; \
         img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        crate::report::style_hash()
    )
}

async fn page() -> Response {
    let mut response = asset(HTML, "text/html; charset=utf-8").await;
    if let Ok(csp) = HeaderValue::from_str(&content_security_policy()) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    super::report::harden(h);
    response
}
