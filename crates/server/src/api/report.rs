//! `GET /v1/jobs/{id}/report`: a succeeded job's result as an HTML page with its charts
//! (`crate::report`), under a Content-Security-Policy that allows its inline style and nothing
//! else.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::jobs::succeeded_result;
use super::path_params::JobId;
use crate::auth::Caller;
use crate::model::{Job, JobResult};
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(job_report))
}

/// The ICP of a finished job as a page for people: the resolution funnel, the top traits
/// against the population, the lift of the top pairs as a heat map, the clusters, and each
/// audience with its size, expected index, rationale and export links.
///
/// The page is self-contained: charts are inline SVG, the style is inline, there is no script,
/// and its `Content-Security-Policy` allows no request to the network.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}/report",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The report", body = String, content_type = "text/html"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job has not succeeded (yet)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn job_report(
    State(state): State<AppState>,
    caller: Caller,
    JobId(id): JobId,
) -> Result<Response, ApiError> {
    let (record, result) = succeeded_result(&state, &caller, id).await?;
    let result: JobResult = serde_json::from_value(result).map_err(ApiError::internal)?;
    let job = Job::from_record(record, None);
    let html = crate::report::render(&job, &result);
    let mut response = html.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&crate::report::content_security_policy())
            .map_err(ApiError::internal)?,
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    harden(h);
    Ok(response)
}

/// Headers every page and file of the browser side carries: no sniffing, no referrer.
pub(super) fn harden(h: &mut HeaderMap) {
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}
