//! What every request must pass before it reaches a route: headers of a sane size, a body in
//! no content coding, and an answer within the request timeout. Each refusal is a problem that
//! says what was wrong and where.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;

use crate::decode::shorten;
use crate::problem::{Problem, problem_response};

/// The most bytes of header names and values one request may carry. hyper refuses on its own,
/// for the connection and with a bare 431, past its read buffer (about 400 KiB) or 100
/// headers; under those, this limit answers with a problem naming the largest header.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Refuses oversized headers (431) and compressed bodies (415) before any route runs.
pub async fn headers_and_coding(request: Request, next: Next) -> Response {
    let headers = request.headers();
    // Each header also costs its `: ` and line end on the wire.
    let total: usize = headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    if total > MAX_HEADER_BYTES {
        let (name, value) = headers
            .iter()
            .max_by_key(|(_, v)| v.len())
            .map(|(n, v)| (n.as_str().to_owned(), v.len()))
            .unwrap_or_default();
        return problem_response(&Problem::new(
            "request-header-fields-too-large",
            "Request Header Fields Too Large",
            431,
            format!(
                "the request's headers take {total} bytes, more than the {MAX_HEADER_BYTES} \
                 accepted; the largest is {} ({value} bytes)",
                shorten(&name, 64)
            ),
        ));
    }
    if let Some(coding) = headers.get(header::CONTENT_ENCODING) {
        let coding = String::from_utf8_lossy(coding.as_bytes()).trim().to_owned();
        if !coding.eq_ignore_ascii_case("identity") {
            return problem_response(&Problem::new(
                "unsupported-media-type",
                "Unsupported Media Type",
                415,
                format!(
                    "Content-Encoding {:?} is not accepted; send the body uncompressed",
                    shorten(&coding, 64)
                ),
            ));
        }
    }
    next.run(request).await
}

/// Answers 408 when the route has not answered within `limit`, its body read included (a
/// slow-loris body). A download's body streams after its answer starts and is not cut.
pub async fn time_limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => problem_response(&Problem::new(
            "request-timeout",
            "Request Timeout",
            408,
            format!(
                "the request was not answered within {} s (the request timeout); its body \
                 must arrive within that time",
                limit.as_secs_f64()
            ),
        )),
    }
}
