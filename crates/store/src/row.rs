//! Rows as the database returns them, and their conversion into the public types.

use std::time::Duration;

use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::model::{JobRecord, JobStatus, Stage, TraceRecord};

/// The `jobs` columns a `JobRecord` is read from, in `JobRow` order. `result` is left out on
/// purpose: it can be large and is read only by `job_result`.
macro_rules! job_columns {
    () => {
        "id, owner, status, stage, progress, workflow_id, options, attempt, lease_owner, \
         lease_expires_at, run_after, cancel_requested, idempotency_key, request_hash, \
         resolution, error, created_at, updated_at, started_at, finished_at, expires_at"
    };
}
pub(crate) use job_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct JobRow {
    pub(crate) id: Uuid,
    owner: Option<String>,
    status: String,
    stage: Option<String>,
    progress: Json<serde_json::Value>,
    workflow_id: Option<String>,
    options: Json<serde_json::Value>,
    attempt: i32,
    lease_owner: Option<String>,
    lease_expires_at: Option<i64>,
    run_after: i64,
    cancel_requested: bool,
    idempotency_key: Option<String>,
    request_hash: String,
    resolution: Option<Json<serde_json::Value>>,
    error: Option<Json<serde_json::Value>>,
    created_at: i64,
    updated_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    expires_at: i64,
}

impl TryFrom<JobRow> for JobRecord {
    type Error = StoreError;

    fn try_from(row: JobRow) -> Result<Self> {
        Ok(JobRecord {
            id: row.id,
            owner: row.owner,
            status: row
                .status
                .parse::<JobStatus>()
                .map_err(|err| StoreError::InvalidData(err.to_string()))?,
            stage: row.stage.as_deref().map(parse_stage).transpose()?,
            progress: row.progress.0,
            workflow_id: row.workflow_id,
            options: row.options.0,
            attempt: row.attempt,
            lease_owner: row.lease_owner,
            lease_expires_at: row.lease_expires_at.map(from_millis).transpose()?,
            run_after: from_millis(row.run_after)?,
            cancel_requested: row.cancel_requested,
            idempotency_key: row.idempotency_key,
            request_hash: row.request_hash,
            resolution: row.resolution.map(|json| json.0),
            error: row.error.map(|json| json.0),
            created_at: from_millis(row.created_at)?,
            updated_at: from_millis(row.updated_at)?,
            started_at: row.started_at.map(from_millis).transpose()?,
            finished_at: row.finished_at.map(from_millis).transpose()?,
            expires_at: from_millis(row.expires_at)?,
        })
    }
}

/// A job row with its traces aggregated into one JSON array column, so a poll is one query.
#[derive(sqlx::FromRow)]
pub(crate) struct JobDetailRow {
    #[sqlx(flatten)]
    pub(crate) job: JobRow,
    /// A JSON array of trace objects; NULL (Postgres) or `[]` (SQLite) when there are none.
    pub(crate) traces: Option<Json<Vec<TraceRow>>>,
}

#[derive(sqlx::FromRow, serde::Deserialize)]
pub(crate) struct TraceRow {
    stage: String,
    tool: String,
    tool_trace_id: String,
    at: i64,
}

impl TryFrom<TraceRow> for TraceRecord {
    type Error = StoreError;

    fn try_from(row: TraceRow) -> Result<Self> {
        Ok(TraceRecord {
            stage: parse_stage(&row.stage)?,
            tool: row.tool,
            tool_trace_id: row.tool_trace_id,
            at: from_millis(row.at)?,
        })
    }
}

pub(crate) fn parse_stage(value: &str) -> Result<Stage> {
    value
        .parse::<Stage>()
        .map_err(|err| StoreError::InvalidData(err.to_string()))
}

/// Unix milliseconds, the unit both schemas store. Sub-millisecond digits are dropped (floor).
pub(crate) fn to_millis(at: OffsetDateTime) -> i64 {
    let millis = at.unix_timestamp_nanos().div_euclid(1_000_000);
    i64::try_from(millis).unwrap_or(if millis < 0 { i64::MIN } else { i64::MAX })
}

pub(crate) fn from_millis(millis: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .map_err(|_| StoreError::InvalidData(format!("timestamp {millis} ms is out of range")))
}

/// `now + span` in milliseconds, saturating instead of overflowing on absurd durations.
pub(crate) fn millis_after(now: i64, span: Duration) -> i64 {
    now.saturating_add(i64::try_from(span.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) fn now_millis() -> i64 {
    to_millis(OffsetDateTime::now_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_trip_drops_sub_millisecond_digits() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        let back = from_millis(to_millis(at)).unwrap();
        assert_eq!(to_millis(at), 1_700_000_000_123);
        assert_eq!(back.unix_timestamp_nanos(), 1_700_000_000_123_000_000);
        // Before the epoch the floor still goes towards the past, never towards the future.
        let before = OffsetDateTime::from_unix_timestamp_nanos(-1_500_000).unwrap();
        assert_eq!(to_millis(before), -2);
    }

    #[test]
    fn out_of_range_millis_is_an_error_not_a_panic() {
        assert!(matches!(
            from_millis(i64::MAX),
            Err(StoreError::InvalidData(_))
        ));
    }

    #[test]
    fn lease_arithmetic_saturates() {
        assert_eq!(millis_after(10, Duration::from_millis(5)), 15);
        assert_eq!(millis_after(10, Duration::MAX), i64::MAX);
    }
}
