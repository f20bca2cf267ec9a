//! Jobs as the API sees them: create (idempotently), read, list, cancel, delete, expire.

use sqlx::AssertSqlSafe;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::connect::{Pool, Store};
use crate::error::{Result, StoreError};
use crate::model::{CreatedJob, JobRecord, JobStatus, ListJobs, NewJob, QueueStats, TraceRecord};
use crate::row::{JobDetailRow, JobRow, from_millis, job_columns, now_millis, to_millis};
use crate::webhooks::enqueue_webhook;

/// Final statuses, as SQL, for the retention sweep.
macro_rules! terminal_statuses {
    () => {
        "('succeeded', 'failed', 'cancelled')"
    };
}

impl Store {
    /// Creates a queued job with its input, or — when `(owner, idempotency_key)` was used
    /// before — returns that job (`created: false`) if `request_hash` matches, and
    /// `IdempotencyConflict` if it does not. Keys live as long as the job they created.
    pub async fn create_job(&self, new: NewJob) -> Result<CreatedJob> {
        let now = now_millis();
        let expires_at = to_millis(new.expires_at);
        let created = in_tx!(self, tx => {
            // DO NOTHING without a conflict target covers both the primary key and the
            // idempotency index; which one fired is sorted out below.
            let inserted: Option<JobRow> = sqlx::query_as(concat!(
                "INSERT INTO jobs (id, owner, status, progress, options, attempt, run_after, \
                 cancel_requested, idempotency_key, request_hash, created_at, updated_at, expires_at) \
                 VALUES ($1, $2, 'queued', $3, $4, 0, $5, FALSE, $6, $7, $5, $5, $8) \
                 ON CONFLICT DO NOTHING RETURNING ",
                job_columns!()
            ))
            .bind(new.id)
            .bind(new.owner.as_deref())
            .bind(Json(&new.progress))
            .bind(Json(&new.options))
            .bind(now)
            .bind(new.idempotency_key.as_deref())
            .bind(new.request_hash.as_str())
            .bind(expires_at)
            .fetch_optional(&mut *tx)
            .await?;

            if let Some(row) = inserted {
                sqlx::query("INSERT INTO job_inputs (job_id, input) VALUES ($1, $2)")
                    .bind(new.id)
                    .bind(Json(&new.input))
                    .execute(&mut *tx)
                    .await?;
                append_event!(tx, new.id, "status", now);
                CreatedJob { job: row.try_into()?, created: true }
            } else {
                let Some(key) = new.idempotency_key.as_deref() else {
                    return Err(StoreError::DuplicateId(new.id));
                };
                let existing: Option<JobRow> = sqlx::query_as(concat!(
                    "SELECT ", job_columns!(), " FROM jobs \
                     WHERE COALESCE(owner, '') = COALESCE($1, '') AND idempotency_key = $2"
                ))
                .bind(new.owner.as_deref())
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(existing) = existing else {
                    return Err(StoreError::DuplicateId(new.id));
                };
                let job: JobRecord = existing.try_into()?;
                if job.request_hash != new.request_hash {
                    return Err(StoreError::IdempotencyConflict);
                }
                CreatedJob { job, created: false }
            }
        });
        Ok(created)
    }

    /// The job, if it exists and (when `owner` is given) belongs to that owner.
    pub async fn get_job(&self, id: Uuid, owner: Option<&str>) -> Result<Option<JobRecord>> {
        let row: Option<JobRow> = on_pool!(self, pool => {
            sqlx::query_as(concat!(
                "SELECT ", job_columns!(), " FROM jobs WHERE id = $1 AND ($2 IS NULL OR owner = $2)"
            ))
            .bind(id)
            .bind(owner)
            .fetch_optional(pool)
            .await?
        });
        row.map(JobRecord::try_from).transpose()
    }

    /// The job with its provider traces (in the order they were recorded), read in one query:
    /// this is what every poll of a job costs, so it is one round trip, not two.
    pub async fn get_job_detail(
        &self,
        id: Uuid,
        owner: Option<&str>,
    ) -> Result<Option<(JobRecord, Vec<TraceRecord>)>> {
        let deadline = self.deadline();
        let row: Option<JobDetailRow> = match &self.pool {
            Pool::Sqlite(pool) => {
                let mut conn = self.acquire(pool, deadline).await?;
                sqlx::query_as(concat!(
                    "SELECT ",
                    job_columns!(),
                    ", (SELECT json_group_array(json_object(\
                     'stage', stage, 'tool', tool, 'tool_trace_id', tool_trace_id, 'at', at)) \
                     FROM (SELECT * FROM job_traces WHERE job_id = jobs.id ORDER BY id)) AS traces \
                     FROM jobs WHERE id = $1 AND ($2 IS NULL OR owner = $2)"
                ))
                .bind(id)
                .bind(owner)
                .fetch_optional(&mut *conn)
                .await?
            }
            Pool::Postgres(pool) => {
                let mut conn = self.acquire(pool, deadline).await?;
                sqlx::query_as(concat!(
                    // `json_agg` of the row type costs Postgres a third less than building
                    // each object with `json_build_object` (pgbench); no traces gives NULL.
                    "SELECT ",
                    job_columns!(),
                    ", (SELECT json_agg(t ORDER BY t.id) FROM \
                     (SELECT id, stage, tool, tool_trace_id, at FROM job_traces \
                     WHERE job_id = jobs.id) t) AS traces \
                     FROM jobs WHERE id = $1 AND ($2::text IS NULL OR owner = $2)"
                ))
                .bind(id)
                .bind(owner)
                .fetch_optional(&mut *conn)
                .await?
            }
        };
        let Some(row) = row else { return Ok(None) };
        let traces = row
            .traces
            .map(|json| json.0)
            .unwrap_or_default()
            .into_iter()
            .map(TraceRecord::try_from)
            .collect::<Result<Vec<_>>>()?;
        Ok(Some((row.job.try_into()?, traces)))
    }

    /// A page of jobs, newest first (`created_at` then `id`, both descending), filtered by owner
    /// and status, starting strictly after the `before` cursor.
    pub async fn list_jobs(&self, q: ListJobs) -> Result<Vec<JobRecord>> {
        // Only the filters in use go into the SQL, so each shape can use its index.
        let mut sql = String::from(concat!("SELECT ", job_columns!(), " FROM jobs WHERE TRUE"));
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        if q.owner.is_some() {
            sql += &format!(" AND owner = ${}", next());
        }
        if q.status.is_some() {
            sql += &format!(" AND status = ${}", next());
        }
        if q.before.is_some() {
            let (at, id) = (next(), next());
            sql += &format!(" AND (created_at < ${at} OR (created_at = ${at} AND id < ${id}))");
        }
        sql += &format!(" ORDER BY created_at DESC, id DESC LIMIT ${}", next());

        let rows: Vec<JobRow> = on_pool!(self, pool => {
            let mut query = sqlx::query_as(AssertSqlSafe(sql.clone()));
            if let Some(owner) = &q.owner {
                query = query.bind(owner.clone());
            }
            if let Some(status) = q.status {
                query = query.bind(status.as_str());
            }
            if let Some((at, id)) = q.before {
                query = query.bind(to_millis(at)).bind(id);
            }
            query.bind(i64::from(q.limit)).fetch_all(pool).await?
        });
        rows.into_iter().map(JobRecord::try_from).collect()
    }

    /// The job's input, while it still has one (it is purged when the job finishes).
    pub async fn job_input(&self, id: Uuid) -> Result<Option<serde_json::Value>> {
        let input: Option<Json<serde_json::Value>> = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT input FROM job_inputs WHERE job_id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(input.map(|json| json.0))
    }

    /// The result of a succeeded job.
    pub async fn job_result(&self, id: Uuid) -> Result<Option<serde_json::Value>> {
        let result: Option<Option<Json<serde_json::Value>>> = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT result FROM jobs WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(result.flatten().map(|json| json.0))
    }

    /// Asks for a job to stop. A queued job is cancelled at once (and its input purged); a
    /// running one gets `cancel_requested`, which its worker sees at the next heartbeat; a
    /// finished one is left as it is. Returns the job as it now stands, `None` if there is no
    /// such job (for this owner).
    pub async fn request_cancel(&self, id: Uuid, owner: Option<&str>) -> Result<Option<JobRecord>> {
        let now = now_millis();
        let row: Option<JobRow> = in_tx!(self, tx => {
            // Two guarded updates rather than read-then-write: a concurrent claim turns the
            // queued case into the running one instead of being overwritten.
            let cancelled = sqlx::query(
                "UPDATE jobs SET status = 'cancelled', cancel_requested = TRUE, \
                 finished_at = $3, updated_at = $3 \
                 WHERE id = $1 AND ($2 IS NULL OR owner = $2) AND status = 'queued'",
            )
            .bind(id)
            .bind(owner)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if cancelled > 0 {
                append_event!(tx, id, "status", now);
                sqlx::query("DELETE FROM job_inputs WHERE job_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM job_checkpoints WHERE job_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                enqueue_webhook!(self, tx, id, now);
            } else {
                sqlx::query(
                    "UPDATE jobs SET cancel_requested = TRUE, updated_at = $3 \
                     WHERE id = $1 AND ($2 IS NULL OR owner = $2) AND status = 'running' \
                     AND NOT cancel_requested",
                )
                .bind(id)
                .bind(owner)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query_as(concat!(
                "SELECT ", job_columns!(), " FROM jobs WHERE id = $1 AND ($2 IS NULL OR owner = $2)"
            ))
            .bind(id)
            .bind(owner)
            .fetch_optional(&mut *tx)
            .await?
        });
        row.map(JobRecord::try_from).transpose()
    }

    /// Deletes a job and everything it owns (input, checkpoints, exports, traces, webhook
    /// deliveries and their attempts: the foreign
    /// keys cascade). Returns whether there was such a job. A worker still running it gets
    /// `LeaseLost` at its next write.
    pub async fn delete_job(&self, id: Uuid, owner: Option<&str>) -> Result<bool> {
        let deleted = write_on_pool!(self, pool => {
            sqlx::query("DELETE FROM jobs WHERE id = $1 AND ($2 IS NULL OR owner = $2)")
                .bind(id)
                .bind(owner)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(deleted > 0)
    }

    /// Deletes every finished job whose `expires_at` is before `now`, with all its data.
    /// Returns how many jobs went.
    pub async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64> {
        let deleted = write_on_pool!(self, pool => {
            sqlx::query(concat!(
                "DELETE FROM jobs WHERE status IN ", terminal_statuses!(), " AND expires_at < $1"
            ))
            .bind(to_millis(now))
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(deleted)
    }

    /// How many of this owner's jobs are queued or running (`None`: the jobs without an owner),
    /// for the limit on jobs in flight per API key.
    pub async fn count_jobs_in_flight(&self, owner: Option<&str>) -> Result<u64> {
        let count: i64 = on_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running') \
                 AND COALESCE(owner, '') = COALESCE($1, '')",
            )
            .bind(owner)
            .fetch_one(pool)
            .await?
        });
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Jobs waiting to run, and when the longest-waiting of them was created (for metrics).
    pub async fn queue_stats(&self) -> Result<QueueStats> {
        let (queued, oldest): (i64, Option<i64>) = on_pool!(self, pool => {
            sqlx::query_as("SELECT COUNT(*), MIN(created_at) FROM jobs WHERE status = 'queued'")
                .fetch_one(pool)
                .await?
        });
        Ok(QueueStats {
            queued: u64::try_from(queued).unwrap_or(0),
            oldest_created_at: oldest.map(from_millis).transpose()?,
        })
    }

    /// How many jobs are in each status (for metrics and readiness pages).
    pub async fn count_by_status(&self) -> Result<Vec<(JobStatus, u64)>> {
        let rows: Vec<(String, i64)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT status, COUNT(*) FROM jobs GROUP BY status ORDER BY status")
                .fetch_all(pool)
                .await?
        });
        rows.into_iter()
            .map(|(status, count)| {
                let status = status
                    .parse::<JobStatus>()
                    .map_err(|err| StoreError::InvalidData(err.to_string()))?;
                Ok((status, u64::try_from(count).unwrap_or(0)))
            })
            .collect()
    }
}
