//! The values the store hands out and takes in.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// Where a job is in its life. `succeeded`, `failed` and `cancelled` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 5] = [
        Self::Queued,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether the job is finished and will never change status again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// One of the six pipeline stages, in order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Resolve,
    Enrich,
    Analyze,
    Map,
    Find,
    /// The audiences set against the customers (a sample of each enriched), when the job asks.
    Validate,
}

impl Stage {
    /// Every stage in pipeline order.
    pub const ALL: [Stage; 6] = [
        Self::Resolve,
        Self::Enrich,
        Self::Analyze,
        Self::Map,
        Self::Find,
        Self::Validate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Resolve => "resolve",
            Self::Enrich => "enrich",
            Self::Analyze => "analyze",
            Self::Map => "map",
            Self::Find => "find",
            Self::Validate => "validate",
        }
    }
}

/// A status or stage name that is not one of the known ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownName {
    pub kind: &'static str,
    pub value: String,
}

impl FromStr for JobStatus {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownName {
                kind: "job status",
                value: s.to_owned(),
            })
    }
}

impl FromStr for Stage {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|stage| stage.as_str() == s)
            .ok_or_else(|| UnknownName {
                kind: "stage",
                value: s.to_owned(),
            })
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job as stored, without its input and result (read those with `job_input` / `job_result`).
///
/// Timestamps have millisecond precision: the store keeps unix milliseconds, so a value read back
/// compares equal to itself when used as a list cursor.
/// The queue at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueStats {
    /// Jobs queued (new, or waiting out a retry's delay).
    pub queued: u64,
    /// When the oldest queued job was created; `None` when none is queued.
    pub oldest_created_at: Option<OffsetDateTime>,
}

/// A connection pool at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections open, in use or idle.
    pub open: u32,
    /// Open connections not in use.
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub id: Uuid,
    pub owner: Option<String>,
    pub status: JobStatus,
    pub stage: Option<Stage>,
    pub progress: serde_json::Value,
    pub workflow_id: Option<String>,
    pub options: serde_json::Value,
    /// How many times the job was claimed; the current lease's fencing token.
    pub attempt: i32,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<OffsetDateTime>,
    pub run_after: OffsetDateTime,
    pub cancel_requested: bool,
    pub idempotency_key: Option<String>,
    pub request_hash: String,
    pub resolution: Option<serde_json::Value>,
    /// The final error of a failed job, or the last error of a job waiting to be retried.
    pub error: Option<serde_json::Value>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
    pub expires_at: OffsetDateTime,
}

/// A job to create. `input` is the customer identifiers (personal data, stored apart and purged
/// when the job ends); `request_hash` identifies the request body for idempotency.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: Uuid,
    pub owner: Option<String>,
    pub options: serde_json::Value,
    /// The progress document the job starts with (the API keeps what it learnt at creation there).
    pub progress: serde_json::Value,
    pub input: serde_json::Value,
    pub idempotency_key: Option<String>,
    pub request_hash: String,
    pub expires_at: OffsetDateTime,
}

/// The outcome of `create_job`: `created` is false when an idempotent retry found the job that
/// the same key and body created before.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatedJob {
    pub job: JobRecord,
    pub created: bool,
}

/// A page of jobs, newest first. `before` is the `(created_at, id)` of the last job of the
/// previous page: the page holds the jobs strictly older than it.
#[derive(Debug, Clone, Default)]
pub struct ListJobs {
    pub owner: Option<String>,
    pub status: Option<JobStatus>,
    pub limit: u32,
    pub before: Option<(OffsetDateTime, Uuid)>,
}

/// A worker's hold on a job. Every write a worker makes names its lease; the store refuses it
/// (`LeaseLost`) unless the job is still running under this worker id and attempt.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lease {
    pub job_id: Uuid,
    pub worker_id: String,
    pub attempt: i32,
}

/// What a heartbeat learned: whether someone asked for the job to be cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    pub cancel_requested: bool,
}

/// One upstream call's trace id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceRecord {
    pub stage: Stage,
    pub tool: String,
    pub tool_trace_id: String,
    pub at: OffsetDateTime,
}

/// An API key as stored: never the key itself, only a hash of its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// The public part of the key, and the `owner` of the jobs it creates.
    pub id: String,
    pub name: Option<String>,
    /// A PHC string (Argon2id) of the key's secret part.
    pub secret_hash: String,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// A job's end message claimed for delivery: what to send where, and the claim that fences
/// the attempt's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    /// The message id (`webhook-id`): the same for every attempt.
    pub id: String,
    pub job_id: Uuid,
    /// The job's owner: whose signing secret signs the message (`None`: the service's).
    pub owner: Option<String>,
    /// `job.succeeded`, `job.failed` or `job.cancelled`.
    pub event: String,
    /// The job's `callback_url`. May carry a token in its query: never log it.
    pub url: String,
    /// When the job ended (the message was written).
    pub created_at: OffsetDateTime,
    /// Attempts made before this one.
    pub attempts: i32,
    /// The worker holding the claim.
    pub worker_id: String,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WebhookOutcome {
    /// The receiver answered 2xx: done.
    Delivered,
    /// Failed; tried again at `next_attempt_at`.
    Retry,
    /// The receiver answered 410 Gone: no more attempts.
    Gone,
    /// Failed, and the time for retries is over: no more attempts.
    Abandoned,
    /// The URL's host resolved to an address the service may not call: no more attempts.
    Refused,
}

impl WebhookOutcome {
    pub const ALL: [WebhookOutcome; 5] = [
        Self::Delivered,
        Self::Retry,
        Self::Gone,
        Self::Abandoned,
        Self::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retry => "retry",
            Self::Gone => "gone",
            Self::Abandoned => "abandoned",
            Self::Refused => "refused",
        }
    }
}

impl FromStr for WebhookOutcome {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| UnknownName {
                kind: "webhook outcome",
                value: s.to_owned(),
            })
    }
}

/// One delivery attempt as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAttempt {
    /// 1 for the first attempt of a message.
    pub attempt: i32,
    pub at: OffsetDateTime,
    /// The receiver's status, when it answered.
    pub status_code: Option<i32>,
    /// Why no answer came (`timeout`, `connect`, `dns`, `refused_address` …).
    pub error_kind: Option<String>,
    pub duration_ms: u64,
    /// When the next attempt is due; `None` when there is none.
    pub next_attempt_at: Option<OffsetDateTime>,
    pub outcome: WebhookOutcome,
}
