//! `/v1/jobs`: create, poll, list, cancel, delete, result, feedback.

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use icp_contract::FeedbackRequest;
use icp_store::{JobStatus, ListJobs, NewJob};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::path_params::JobId;
use crate::auth::Caller;
use crate::callback::parse_callback_url;
use crate::decode::{parse_json, parse_query};
use crate::input::{self, CreateJobRequest, CsvOptionsQuery};
use crate::model::{Delivery, Job, JobDeliveries, JobPage, JobResult, Progress};
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// How long a client should wait before polling a new job, in seconds.
const RETRY_AFTER_SECS: u32 = 1;
const DEFAULT_PAGE_SIZE: u32 = 20;
pub(super) const MAX_PAGE_SIZE: u32 = 100;
pub(super) const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;
/// The longest feedback message, in characters.
pub(super) const MAX_FEEDBACK_LEN: usize = 10_000;
/// Digits of the milliseconds in a page token: fixed, so that the token has one length the spec
/// can state (14 digits reach the year 5138).
const CURSOR_MILLIS_DIGITS: usize = 14;
/// A page token: `<milliseconds, 14 digits>.<job id>`, the place in the newest-first order.
pub(super) const PAGE_TOKEN_PATTERN: &str =
    "^[0-9]{14}\\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";
pub(super) const PAGE_TOKEN_LEN: usize = CURSOR_MILLIS_DIGITS + 1 + 36;
/// How long a client over its limit of jobs in flight should wait: about a small job's run.
const JOBS_IN_FLIGHT_RETRY_AFTER_SECS: u32 = 5;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_job, list_jobs))
        .routes(routes!(get_job, delete_job))
        .routes(routes!(cancel_job))
        .routes(routes!(job_result))
        .routes(routes!(job_feedback))
        .routes(routes!(job_deliveries))
}

/// Submit a customer list; answers at once with the queued job.
///
/// The body is either JSON (`multi_identifiers` as `resolve_identities` takes them, plus
/// `options`) or a CSV upload (`Content-Type: text/csv`) whose header names identifier columns
/// (`email`, `phone`, `address`, `maid`, optionally suffixed `_md5`, `_sha1`, `_sha256`); a CSV's
/// options come from the query string. With an `Idempotency-Key`, the same key and body give the
/// same job; the same key with another body is refused.
#[utoipa::path(
    post,
    path = "/v1/jobs",
    tag = "jobs",
    params(
        CsvOptionsQuery,
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries of this request safe; kept at least 24 h"),
    ),
    request_body(
        description = "The customer identifiers and the job's options",
        content(
            (CreateJobRequest = "application/json", example = json!({
                "multi_identifiers": [
                    {"id_type": "email", "hash_type": "plaintext", "values": ["jane.smith@example.com"]},
                    {"id_type": "phone", "hash_type": "plaintext", "values": ["5551234567"]}
                ],
                "options": {"min_support": 0.05, "strategies": ["precision", "reach"]}
            })),
            (String = "text/csv", example = "email,phone\njane.smith@example.com,5551234567\n"),
        )
    ),
    responses(
        (status = 202, description = "Queued", body = Job,
            headers(("Location" = String, description = "The job's URL"), ("Retry-After" = u32, description = "Seconds before the first poll"))),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Neither JSON nor CSV", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The Idempotency-Key was used with another request", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request: it says what is wrong and where", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_job(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let idempotency_key = idempotency_key(&headers)?;
    let limit = state.config.max_body_bytes;
    // A declared length past the limit is refused before any of the body is awaited.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let bytes = to_bytes(body, limit)
        .await
        .map_err(|e| body_error(&e, limit))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let input = match content_type.as_str() {
        "application/json" | "" => {
            if query.as_deref().is_some_and(|q| !q.is_empty()) {
                return Err(ApiError::validation(
                    "query",
                    "a JSON body carries its options in `options`; query parameters are for CSV uploads",
                ));
            }
            input::from_json(&bytes, state.config.max_identifiers)?
        }
        "text/csv" | "application/csv" => {
            let options = CsvOptionsQuery::parse(query.as_deref())?;
            input::from_csv(&bytes, options, state.config.max_identifiers)?
        }
        other => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "Content-Type {other:?} is not accepted; send application/json or text/csv"
            )));
        }
    };
    if let Some(url) = &input.options.callback_url {
        let place = if content_type.ends_with("csv") {
            "query.callback_url"
        } else {
            "/options/callback_url"
        };
        check_callback_url(&state, url, place).await?;
    }
    let mut hasher = Sha256::new();
    hasher.update(content_type.as_bytes());
    hasher.update([0]);
    hasher.update(query.as_deref().unwrap_or("").as_bytes());
    hasher.update([0]);
    hasher.update(&bytes);
    let request_hash = hex::encode(hasher.finalize());

    check_jobs_in_flight(&state, &caller).await?;
    let now = OffsetDateTime::now_utc();
    let created = state
        .store
        .create_job(NewJob {
            id: Uuid::new_v4(),
            owner: caller.owner().map(str::to_owned),
            options: serde_json::to_value(&input.options).map_err(ApiError::internal)?,
            progress: serde_json::to_value(Progress {
                normalization: Some(input.normalization.clone()),
                warnings: input.warnings.clone(),
                ..Progress::default()
            })
            .map_err(ApiError::internal)?,
            input: serde_json::to_value(input.stored()).map_err(ApiError::internal)?,
            idempotency_key,
            request_hash,
            expires_at: now + state.config.retention,
        })
        .await?;
    let job = Job::from_record(created.job, None);
    if created.created {
        tracing::info!(job = %job.id, identifiers = input.identifier_count(), "job created");
        state.wake_workers.notify_one();
    }
    let mut response = (StatusCode::ACCEPTED, Json(&job)).into_response();
    let h = response.headers_mut();
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(&job.links.this).map_err(ApiError::internal)?,
    );
    h.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    if !created.created {
        h.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Refuses a callback URL the service may not call (422 saying why): its host resolves to a
/// private address (unless allowed) or to the service itself, or does not resolve. The URL's
/// shape was checked with the other options.
async fn check_callback_url(state: &AppState, url: &str, place: &str) -> Result<(), ApiError> {
    let parsed = parse_callback_url(url).map_err(|reason| ApiError::validation(place, reason))?;
    state
        .targets
        .check(&parsed)
        .await
        .map(drop)
        .map_err(|refusal| ApiError::validation(place, format!("is refused: {refusal}")))
}

/// Refuses a new job when the caller already has `max_jobs_in_flight` queued or running, so one
/// client cannot fill the queue for everyone. Two requests racing past the count may both get
/// in: the limit is a guard, not an exact quota.
async fn check_jobs_in_flight(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    let limit = state.config.max_jobs_in_flight;
    if limit == 0 {
        return Ok(());
    }
    let in_flight = state.store.count_jobs_in_flight(caller.owner()).await?;
    if in_flight >= limit {
        return Err(ApiError::TooManyRequests {
            message: format!(
                "{in_flight} of your jobs are queued or running, the most allowed at once is \
                 {limit}; wait for one to finish"
            ),
            retry_after: JOBS_IN_FLIGHT_RETRY_AFTER_SECS,
        });
    }
    Ok(())
}

fn too_large(limit: usize) -> ApiError {
    ApiError::PayloadTooLarge(format!("the body is larger than {limit} bytes"))
}

/// Why a body could not be read: past the limit (413), or broken on the wire (400).
fn body_error(err: &axum::Error, limit: usize) -> ApiError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return too_large(limit);
        }
        source = e.source();
    }
    ApiError::BadRequest(format!("the body could not be read: {err}"))
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(raw) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let raw = raw
        .to_str()
        .map_err(|_| ApiError::validation("header.Idempotency-Key", "must be visible ASCII"))?;
    let key = raw.trim();
    // The length as sent, spaces included: the bound the spec states.
    if key.is_empty() || raw.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(ApiError::validation(
            "header.Idempotency-Key",
            format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters"),
        ));
    }
    Ok(Some(key.to_owned()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only jobs in this status.
    status: Option<JobStatus>,
    /// Jobs per page (1–100, default 20).
    #[serde(default, deserialize_with = "crate::decode::optional_query_whole")]
    page_size: Option<u32>,
    /// `next_page_token` of the previous page.
    page_token: Option<String>,
}

/// List jobs, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/jobs",
    tag = "jobs",
    params(ListQuery),
    responses(
        (status = 200, body = JobPage),
        (status = 422, description = "Bad page size, status or token", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_jobs(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<JobPage>, ApiError> {
    let q: ListQuery = parse_query(query.as_deref())?;
    let page_size = q.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
        return Err(ApiError::validation(
            "query.page_size",
            format!("must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    let before = q.page_token.as_deref().map(decode_cursor).transpose()?;
    let mut records = state
        .store
        .list_jobs(ListJobs {
            owner: caller.owner().map(str::to_owned),
            status: q.status,
            limit: page_size + 1,
            before,
        })
        .await?;
    let more = records.len() > page_size as usize;
    records.truncate(page_size as usize);
    let next_page_token = if more {
        records.last().map(|r| encode_cursor(r.created_at, r.id))
    } else {
        None
    };
    Ok(Json(JobPage {
        jobs: records
            .into_iter()
            .map(|r| Job::from_record(r, None))
            .collect(),
        next_page_token,
    }))
}

fn encode_cursor(at: OffsetDateTime, id: Uuid) -> String {
    let millis = (at.unix_timestamp_nanos() / 1_000_000).max(0);
    format!("{millis:0width$}.{id}", width = CURSOR_MILLIS_DIGITS)
}

/// Reads exactly what `PAGE_TOKEN_PATTERN` describes: any such token is a place in the order,
/// whether this service issued it or not.
fn decode_cursor(token: &str) -> Result<(OffsetDateTime, Uuid), ApiError> {
    let bad = || {
        ApiError::validation(
            "query.page_token",
            "is not a page token (`next_page_token` of a previous page)",
        )
    };
    let (millis, id) = token.split_once('.').ok_or_else(bad)?;
    if millis.len() != CURSOR_MILLIS_DIGITS || !millis.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let millis: i128 = millis.parse().map_err(|_| bad())?;
    let at = OffsetDateTime::from_unix_timestamp_nanos(millis * 1_000_000).map_err(|_| bad())?;
    let id = Uuid::try_parse(id).map_err(|_| bad())?;
    // Only the hyphenated lower-case form, as issued and as the pattern says.
    if token.len() != PAGE_TOKEN_LEN
        || id.hyphenated().to_string() != token[CURSOR_MILLIS_DIGITS + 1..]
    {
        return Err(bad());
    }
    Ok((at, id))
}

/// A job's status, stage, progress, resolution and provider traces.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, body = Job),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_job(
    State(state): State<AppState>,
    caller: Caller,
    JobId(id): JobId,
) -> Result<Json<Job>, ApiError> {
    let (record, traces) = state
        .store
        .get_job_detail(id, caller.owner())
        .await?
        .ok_or_else(|| no_job(id))?;
    let mut job = Job::from_record(record, Some(traces));
    if job.options.callback_url.is_some() {
        job.deliveries = Some(deliveries(&state, &caller, id).await?);
    }
    Ok(Json(job))
}

async fn deliveries(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<Vec<Delivery>, ApiError> {
    Ok(state
        .store
        .webhook_attempts(id, caller.owner())
        .await?
        .ok_or_else(|| no_job(id))?
        .into_iter()
        .map(Delivery::from)
        .collect())
}

/// Every attempt to deliver the job's end to its `callback_url`: when, the receiver's status
/// or why there was none, and when the next attempt is due.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}/deliveries",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, body = JobDeliveries),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn job_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    JobId(id): JobId,
) -> Result<Json<JobDeliveries>, ApiError> {
    let record = state
        .store
        .get_job(id, caller.owner())
        .await?
        .ok_or_else(|| no_job(id))?;
    let callback = record
        .options
        .get("callback_url")
        .is_some_and(|url| url.is_string());
    Ok(Json(JobDeliveries {
        callback,
        deliveries: deliveries(&state, &caller, id).await?,
    }))
}

/// A job that has succeeded, with its stored result; 404 for no such job, 409 until it succeeds.
pub(crate) async fn succeeded_result(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<(icp_store::JobRecord, serde_json::Value), ApiError> {
    let record = state
        .store
        .get_job(id, caller.owner())
        .await?
        .ok_or_else(|| no_job(id))?;
    if record.status != JobStatus::Succeeded {
        return Err(ApiError::Conflict(format!(
            "the job is {}; its result and audiences exist once it has succeeded",
            record.status.as_str()
        )));
    }
    let result = state
        .store
        .job_result(id)
        .await?
        .ok_or_else(|| ApiError::internal("succeeded job without a result"))?;
    Ok((record, result))
}

pub(crate) fn no_job(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("no job {id}"))
}

/// Delete a job with everything it holds: identifiers, profiles, results and exports.
#[utoipa::path(
    delete,
    path = "/v1/jobs/{id}",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 204, description = "Deleted and purged"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn delete_job(
    State(state): State<AppState>,
    caller: Caller,
    JobId(id): JobId,
) -> Result<StatusCode, ApiError> {
    // A running job is cancelled first so its worker stops writing; the rows go either way.
    state.store.request_cancel(id, caller.owner()).await?;
    if state.store.delete_job(id, caller.owner()).await? {
        tracing::info!(job = %id, "job deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_job(id))
    }
}

/// Ask a queued or running job to stop.
#[utoipa::path(
    post,
    path = "/v1/jobs/{id}/cancel",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 202, description = "Cancelled, or cancellation requested from its worker", body = Job),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job already finished", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn cancel_job(
    State(state): State<AppState>,
    caller: Caller,
    JobId(id): JobId,
) -> Result<Response, ApiError> {
    let record = state
        .store
        .request_cancel(id, caller.owner())
        .await?
        .ok_or_else(|| no_job(id))?;
    if record.status.is_terminal() && record.status != JobStatus::Cancelled {
        return Err(ApiError::Conflict(format!(
            "the job already {}",
            record.status.as_str()
        )));
    }
    Ok((StatusCode::ACCEPTED, Json(Job::from_record(record, None))).into_response())
}

/// The ICP and the audiences of a finished job.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}/result",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, body = JobResult),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job has not succeeded (yet)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn job_result(
    State(state): State<AppState>,
    caller: Caller,
    JobId(id): JobId,
) -> Result<Response, ApiError> {
    let (_, result) = succeeded_result(&state, &caller, id).await?;
    Ok(Json(result).into_response())
}

/// Feedback on a job's data, passed to the provider with the job's workflow and trace ids.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobFeedback {
    /// 1 (poor) to 5 (excellent).
    #[serde(default, deserialize_with = "crate::decode::optional_whole")]
    pub rating: Option<u8>,
    /// What was right or wrong.
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FeedbackAccepted {
    pub accepted: bool,
    pub workflow_id: Option<String>,
    pub tool_trace_ids: Vec<String>,
}

#[utoipa::path(
    post,
    path = "/v1/jobs/{id}/feedback",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    request_body = JobFeedback,
    responses(
        (status = 200, body = FeedbackAccepted),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job has no workflow id yet", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider refused the feedback", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn job_feedback(
    State(state): State<AppState>,
    caller: Caller,
    JobId(id): JobId,
    body: axum::body::Bytes,
) -> Result<Json<FeedbackAccepted>, ApiError> {
    let feedback: JobFeedback = parse_json(&body)?;
    if feedback.message.trim().is_empty() || feedback.message.chars().count() > MAX_FEEDBACK_LEN {
        return Err(ApiError::validation(
            "/message",
            format!("must be 1 to {MAX_FEEDBACK_LEN} characters, not all white space"),
        ));
    }
    if feedback.rating.is_some_and(|r| !(1..=5).contains(&r)) {
        return Err(ApiError::validation("/rating", "must be between 1 and 5"));
    }
    let (record, traces) = state
        .store
        .get_job_detail(id, caller.owner())
        .await?
        .ok_or_else(|| no_job(id))?;
    let Some(workflow_id) = record.workflow_id else {
        return Err(ApiError::Conflict(
            "the job has not reached the provider yet".to_owned(),
        ));
    };
    let tool_trace_ids: Vec<String> = traces.into_iter().map(|t| t.tool_trace_id).collect();
    let answer = state
        .provider
        .submit_feedback(FeedbackRequest {
            workflow_id: Some(workflow_id.clone()),
            tool_trace_ids: tool_trace_ids.clone(),
            rating: feedback.rating,
            message: feedback.message,
        })
        .await
        .map_err(|e| ApiError::Upstream(format!("the provider refused the feedback: {e}")))?;
    Ok(Json(FeedbackAccepted {
        accepted: answer.accepted,
        workflow_id: Some(workflow_id),
        tool_trace_ids,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    #[test]
    fn cursor_round_trips() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_000_000).unwrap();
        let id = Uuid::new_v4();
        assert_eq!(decode_cursor(&encode_cursor(at, id)).unwrap(), (at, id));
        assert!(decode_cursor("garbage!").is_err());
        let forged = URL_SAFE_NO_PAD.encode(format!("{}:{id}", "9".repeat(38)));
        assert!(decode_cursor(&forged).is_err());
        let upper = format!("{:014}.{}", 1, id.hyphenated().to_string().to_uppercase());
        assert!(decode_cursor(&upper).is_err());
        let re = regex::Regex::new(PAGE_TOKEN_PATTERN).unwrap();
        assert!(re.is_match(&encode_cursor(at, id)));
        assert!(decode_cursor(&format!("99999999999999.{id}")).is_ok());
    }
}
