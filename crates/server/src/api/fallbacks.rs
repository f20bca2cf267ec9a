//! The router's fallbacks and the layer that turns every error response — axum's own
//! rejections included — into problem+json (the problem type itself is `crate::problem`).

use axum::body::to_bytes;
use axum::http::{Uri, header};
use axum::response::{IntoResponse, Response};

use crate::problem::{ApiError, Problem, problem_response};

/// The longest plain-text error body carried over as the problem's `detail`.
const MAX_DETAIL: usize = 1024;

pub async fn not_found(uri: Uri) -> Response {
    ApiError::NotFound(format!("no route for {}", uri.path())).into_response()
}

pub async fn method_not_allowed() -> Response {
    let problem = Problem::new(
        "method-not-allowed",
        "Method Not Allowed",
        405,
        "this method is not supported on this resource",
    );
    problem_response(&problem)
}

/// Rewrites an error response that is not problem+json yet (an extractor's rejection, a
/// layer's 413 or 408) into one, keeping its status and a short text as the detail.
pub async fn ensure_problem_json(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/problem+json"));
    if is_problem {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = to_bytes(body, MAX_DETAIL * 4).await.unwrap_or_default();
    let detail = if status.is_server_error() {
        "an internal error occurred; it has been logged".to_owned()
    } else {
        let t = String::from_utf8_lossy(&text).trim().to_owned();
        if t.is_empty() {
            status.canonical_reason().unwrap_or("error").to_owned()
        } else {
            t.chars().take(MAX_DETAIL).collect()
        }
    };
    let slug = status
        .canonical_reason()
        .unwrap_or("error")
        .to_ascii_lowercase()
        .replace(' ', "-");
    let problem = Problem::new(
        &slug,
        status.canonical_reason().unwrap_or("Error"),
        status.as_u16(),
        detail,
    );
    let mut out = problem_response(&problem);
    // Keep headers such as Retry-After or Allow; the body and its type are ours now.
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    *out.status_mut() = status;
    out
}
