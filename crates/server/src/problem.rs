//! RFC 9457 problem details: the one error type of the HTTP layer and its mapping to responses.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::warning::Warning;

/// Base of the stable `type` URIs; each problem kind appends its own slug.
const TYPE_BASE: &str = "https://icp-service.dev/problems/";

/// Seconds a client should wait before trying again when the service is unavailable (its
/// database out of reach): long enough not to hammer a recovering database, short enough that
/// a blip costs a client little.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u32 = 1;

/// The stable `type` URI of a problem kind: the one place such URIs are built.
pub fn problem_type(slug: &str) -> String {
    format!("{TYPE_BASE}{slug}")
}

/// One thing wrong with a request, and where it is (a JSON pointer, a CSV line, a parameter).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// Where the problem is: `/options/min_support`, `line 7`, `query.page_size` …
    pub location: String,
    pub message: String,
}

impl FieldError {
    pub fn new(location: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            location: location.into(),
            message: message.into(),
        }
    }
}

/// An RFC 9457 `application/problem+json` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A stable URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// For validation failures: every field that was wrong.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// For a job that failed for a reason the service can explain (it resolved nobody): what it
    /// found, as on the job (`Job.warnings`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
}

impl Problem {
    /// A problem of kind `slug` with no field errors.
    pub fn new(
        slug: &str,
        title: impl Into<String>,
        status: u16,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            kind: problem_type(slug),
            title: title.into(),
            status,
            detail: Some(detail.into()),
            instance: None,
            errors: vec![],
            warnings: vec![],
        }
    }
}

/// Every error an HTTP handler can answer with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No API key, or one that is not valid: answered with `WWW-Authenticate: Bearer`.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    #[error("idempotency key reused with a different request")]
    IdempotencyMismatch,
    #[error("unprocessable: {0}")]
    Unprocessable(String),
    /// A limit reached; the client may retry after `retry_after` seconds.
    #[error("too many requests: {message}")]
    TooManyRequests { message: String, retry_after: u32 },
    /// Answered with `Retry-After`: the condition is expected to pass.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("upstream provider error: {0}")]
    Upstream(String),
    /// Details go to the log, never to the client.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn validation(location: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(location, message)])
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        Self::Internal(err.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) | Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            // The request is valid; the key is bound to another one: a conflict with state,
            // like a job that has not finished yet, not a fault of the request itself.
            Self::IdempotencyMismatch => StatusCode::CONFLICT,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn slug(&self) -> &'static str {
        match self {
            Self::Validation(_) => "validation",
            Self::BadRequest(_) => "bad-request",
            Self::Unauthorized(_) => "unauthorized",
            Self::NotFound(_) => "not-found",
            Self::TooManyRequests { .. } => "too-many-requests",
            Self::Conflict(_) => "conflict",
            Self::UnsupportedMediaType(_) => "unsupported-media-type",
            Self::PayloadTooLarge(_) => "payload-too-large",
            Self::IdempotencyMismatch => "idempotency-key-reused",
            Self::Unprocessable(_) => "unprocessable",
            Self::Unavailable(_) => "unavailable",
            Self::Upstream(_) => "upstream",
            Self::Internal(_) => "internal",
        }
    }

    pub fn to_problem(&self) -> Problem {
        let status = self.status();
        let (detail, errors) = match self {
            Self::Validation(errors) => {
                let detail = match errors.as_slice() {
                    [one] => format!("{}: {}", one.location, one.message),
                    many => format!("{} problems in the request; see `errors`", many.len()),
                };
                (Some(detail), errors.clone())
            }
            Self::IdempotencyMismatch => (
                Some(
                    "this Idempotency-Key was already used with a different request body; \
                     use a new key for a new request"
                        .to_owned(),
                ),
                vec![],
            ),
            Self::Internal(_) => (
                Some("an internal error occurred; it has been logged".to_owned()),
                vec![],
            ),
            Self::TooManyRequests { message, .. } => (Some(message.clone()), vec![]),
            Self::BadRequest(m)
            | Self::Unauthorized(m)
            | Self::NotFound(m)
            | Self::Conflict(m)
            | Self::UnsupportedMediaType(m)
            | Self::PayloadTooLarge(m)
            | Self::Unprocessable(m)
            | Self::Unavailable(m)
            | Self::Upstream(m) => (Some(m.clone()), vec![]),
        };
        Problem {
            kind: problem_type(self.slug()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            instance: None,
            errors,
            warnings: vec![],
        }
    }
}

/// Builds a problem response from any status, for rejections that do not pass through `ApiError`.
pub fn problem_response(problem: &Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(problem).unwrap_or_default();
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(detail) = &self {
            tracing::error!(error = %detail, "internal error answering a request");
        }
        let mut response = problem_response(&self.to_problem());
        match &self {
            Self::Unauthorized(_) => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"icp\""),
                );
            }
            Self::TooManyRequests { retry_after, .. } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            Self::Unavailable(_) => {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(UNAVAILABLE_RETRY_AFTER_SECS),
                );
            }
            _ => {}
        }
        response
    }
}

impl From<icp_store::StoreError> for ApiError {
    fn from(err: icp_store::StoreError) -> Self {
        match err {
            icp_store::StoreError::NotFound => Self::NotFound("no such job".to_owned()),
            icp_store::StoreError::IdempotencyConflict => Self::IdempotencyMismatch,
            // The database out of reach, or busy for a moment: the request may be made again.
            other if other.is_transient() => {
                tracing::warn!(error = %other, "database unavailable; answering 503");
                Self::Unavailable(
                    "the job store is unavailable for the moment; try again after Retry-After                      seconds"
                        .to_owned(),
                )
            }
            other => Self::Internal(other.to_string()),
        }
    }
}
