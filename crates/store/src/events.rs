//! A job's events: the changes of its status, stage and progress, in the order they were made.
//! They are written by the writes that make the changes (`append_event!`, in `jobs.rs`,
//! `lease.rs` and `artifacts.rs`); this is the reading side.

use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::connect::Store;
use crate::error::{Result, StoreError};
use crate::model::{JobStatus, Stage};
use crate::row::{from_millis, parse_stage};

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Status,
    Stage,
    Progress,
}

impl EventKind {
    pub const ALL: [EventKind; 3] = [Self::Status, Self::Stage, Self::Progress];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::Stage => "stage",
            Self::Progress => "progress",
        }
    }

    fn parse(value: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == value)
            .ok_or_else(|| StoreError::InvalidData(format!("unknown event kind {value:?}")))
    }
}

/// One event: what changed, and the job's status, stage and progress just after.
#[derive(Debug, Clone, PartialEq)]
pub struct JobEvent {
    /// 1, 2, 3 … per job.
    pub seq: i64,
    pub kind: EventKind,
    pub status: JobStatus,
    pub stage: Option<Stage>,
    /// The progress document as stored.
    pub progress: serde_json::Value,
    pub at: OffsetDateTime,
}

/// The events of a job after some `seq`, and the job's status read in the same statement: once
/// that status is final and fewer events than asked for came back, there will be no more.
#[derive(Debug, Clone, PartialEq)]
pub struct JobEvents {
    pub status: JobStatus,
    pub events: Vec<JobEvent>,
}

/// The job's status with one event, or none (`seq` NULL) when it has no event after the cursor.
#[derive(sqlx::FromRow)]
struct EventRow {
    job_status: String,
    seq: Option<i64>,
    kind: Option<String>,
    status: Option<String>,
    stage: Option<String>,
    progress: Option<Json<serde_json::Value>>,
    at: Option<i64>,
}

fn parse_status(value: &str) -> Result<JobStatus> {
    value
        .parse::<JobStatus>()
        .map_err(|err| StoreError::InvalidData(err.to_string()))
}

impl Store {
    /// Up to `limit` events of job `id` after `after` (`seq` order), with the job's status;
    /// `None` when there is no such job (any more). One query, so that a stream waiting for
    /// the next event costs one round trip per look. The caller checks the job's owner first.
    pub async fn job_events(&self, id: Uuid, after: i64, limit: u32) -> Result<Option<JobEvents>> {
        let rows: Vec<EventRow> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT j.status AS job_status, e.seq, e.kind, e.status, e.stage, e.progress, e.at \
                 FROM jobs j LEFT JOIN job_events e ON e.job_id = j.id AND e.seq > $2 \
                 WHERE j.id = $1 ORDER BY e.seq LIMIT $3",
            )
            .bind(id)
            .bind(after)
            .bind(i64::from(limit.max(1)))
            .fetch_all(pool)
            .await?
        });
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let status = parse_status(&first.job_status)?;
        let events = rows
            .into_iter()
            .filter_map(|row| {
                let seq = row.seq?;
                Some((|| {
                    let missing = || StoreError::InvalidData(format!("event {seq} is incomplete"));
                    Ok(JobEvent {
                        seq,
                        kind: EventKind::parse(row.kind.as_deref().ok_or_else(missing)?)?,
                        status: parse_status(row.status.as_deref().ok_or_else(missing)?)?,
                        stage: row.stage.as_deref().map(parse_stage).transpose()?,
                        progress: row.progress.ok_or_else(missing)?.0,
                        at: from_millis(row.at.ok_or_else(missing)?)?,
                    })
                })())
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(JobEvents { status, events }))
    }
}
