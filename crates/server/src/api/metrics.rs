//! `GET /metrics` for Prometheus, and the middleware that counts every HTTP answer.
//!
//! The endpoint needs no key, like the health checks: a scraper rarely carries one, and what it
//! shows is counts and durations, never a job's data or who owns it.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::metrics::{CONTENT_TYPE, Metrics};
use crate::problem::ApiError;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// The service's metrics in the OpenMetrics text format, which Prometheus scrapes: HTTP
/// requests by route and status, provider calls by tool (latency, errors, retries), stage
/// durations, job retries, jobs by status, queue depth and the age of its oldest job, and the
/// database pool's use.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses(
        (status = 200, description = "The metrics", body = String, content_type = "application/openmetrics-text"),
        (status = 503, description = "The database does not answer", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let text = state.metrics.render(&state.store).await?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response())
}

/// Counts and times each answer under its route's template (`/v1/jobs/{id}`), never the path
/// itself, so that ids do not become series.
pub async fn record(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.observe_http(
        method.as_str(),
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}
