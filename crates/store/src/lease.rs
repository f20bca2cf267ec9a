//! The worker side: claiming jobs, holding the lease, and every write made under it.

use std::time::Duration;

use sqlx::types::Json;
use time::OffsetDateTime;

use crate::connect::{Backend, Store};
use crate::error::{Result, StoreError};
use crate::model::{Heartbeat, JobRecord, Lease, Stage};
use crate::row::{JobRow, job_columns, millis_after, now_millis, to_millis};
use crate::webhooks::enqueue_webhook;

/// The claim, less its final clause: the oldest runnable job (queued and due, or running under
/// an expired lease) becomes running under the caller's lease, with the attempt — the fencing
/// token — bumped. `$1` worker id, `$2` lease expiry, `$3` now.
macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE jobs SET status = 'running', lease_owner = $1, lease_expires_at = $2, \
             attempt = attempt + 1, started_at = COALESCE(started_at, $3), updated_at = $3 \
             WHERE id = (SELECT id FROM jobs \
                 WHERE status IN ('queued', 'running') \
                 AND ((status = 'queued' AND run_after <= $3) \
                      OR (status = 'running' AND lease_expires_at <= $3)) \
                 ORDER BY created_at, id LIMIT 1",
            $lock,
            ") RETURNING ",
            job_columns!()
        )
    };
}

/// Deletes the personal data a job held while it ran: its input and its checkpoints.
macro_rules! purge_personal_data {
    ($tx:ident, $id:expr) => {
        sqlx::query("DELETE FROM job_inputs WHERE job_id = $1")
            .bind($id)
            .execute(&mut *$tx)
            .await?;
        sqlx::query("DELETE FROM job_checkpoints WHERE job_id = $1")
            .bind($id)
            .execute(&mut *$tx)
            .await?;
    };
}

fn fenced(rows_affected: u64) -> Result<()> {
    if rows_affected == 0 {
        Err(StoreError::LeaseLost)
    } else {
        Ok(())
    }
}

impl Store {
    /// Claims the oldest job that is queued and due (`run_after <= now`), or running under an
    /// expired lease, for `lease` from now. The job comes back running, with `attempt` bumped
    /// and `started_at` set on its first claim. `None` when nothing is runnable.
    ///
    /// A reclaimed job can carry `cancel_requested = true` (the cancel came while its previous
    /// worker was gone): the caller should then `mark_cancelled` instead of running it.
    pub async fn claim_next(
        &self,
        worker_id: &str,
        lease: Duration,
    ) -> Result<Option<(JobRecord, Lease)>> {
        let now = now_millis();
        let expires = millis_after(now, lease);
        // SQLite runs the whole statement under its single write lock: no two claims overlap.
        // On Postgres, SKIP LOCKED: concurrent claimers (in this or another process) pass over
        // a row another one is taking instead of queueing behind it.
        let sql = match self.backend() {
            Backend::Sqlite => claim_sql!(""),
            Backend::Postgres => claim_sql!(" FOR UPDATE SKIP LOCKED"),
        };
        let row: Option<JobRow> = in_tx!(self, tx => {
            let row: Option<JobRow> = sqlx::query_as(sql)
                .bind(worker_id)
                .bind(expires)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(row) = &row {
                append_event!(tx, row.id, "status", now);
            }
            row
        });
        let Some(row) = row else {
            return Ok(None);
        };
        let job = JobRecord::try_from(row)?;
        let lease = Lease {
            job_id: job.id,
            worker_id: worker_id.to_owned(),
            attempt: job.attempt,
        };
        Ok(Some((job, lease)))
    }

    /// Extends the lease to `extend` from now and reports whether a cancel was requested.
    pub async fn heartbeat(&self, lease: &Lease, extend: Duration) -> Result<Heartbeat> {
        let now = now_millis();
        let cancel_requested: Option<bool> = write_on_pool!(self, pool => {
            bind_lease!(
                sqlx::query_scalar(concat!(
                    "UPDATE jobs SET lease_expires_at = $4, updated_at = $5 WHERE ",
                    fence!(),
                    " RETURNING cancel_requested"
                )),
                lease
            )
            .bind(millis_after(now, extend))
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        cancel_requested
            .map(|cancel_requested| Heartbeat { cancel_requested })
            .ok_or(StoreError::LeaseLost)
    }

    /// Moves the job to `stage`, replacing its progress document.
    pub async fn set_stage(
        &self,
        lease: &Lease,
        stage: Stage,
        progress: serde_json::Value,
    ) -> Result<()> {
        let now = now_millis();
        in_tx!(self, tx => {
            fenced(
                bind_lease!(
                    sqlx::query(concat!(
                        "UPDATE jobs SET stage = $4, progress = $5, updated_at = $6 WHERE ",
                        fence!()
                    )),
                    lease
                )
                .bind(stage.as_str())
                .bind(Json(&progress))
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
            )?;
            append_event!(tx, lease.job_id, "stage", now);
        });
        Ok(())
    }

    /// Replaces the job's progress document.
    pub async fn set_progress(&self, lease: &Lease, progress: serde_json::Value) -> Result<()> {
        let now = now_millis();
        in_tx!(self, tx => {
            fenced(
                bind_lease!(
                    sqlx::query(concat!(
                        "UPDATE jobs SET progress = $4, updated_at = $5 WHERE ",
                        fence!()
                    )),
                    lease
                )
                .bind(Json(&progress))
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
            )?;
            append_event!(tx, lease.job_id, "progress", now);
        });
        Ok(())
    }

    /// Records the upstream `workflow_id` the job passes through all its calls.
    pub async fn set_workflow_id(&self, lease: &Lease, workflow_id: &str) -> Result<()> {
        let now = now_millis();
        fenced(write_on_pool!(self, pool => {
            bind_lease!(
                sqlx::query(concat!(
                    "UPDATE jobs SET workflow_id = $4, updated_at = $5 WHERE ",
                    fence!()
                )),
                lease
            )
            .bind(workflow_id)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        }))
    }

    /// Records what identity resolution found (counts only: no person ids).
    pub async fn set_resolution(&self, lease: &Lease, resolution: serde_json::Value) -> Result<()> {
        let now = now_millis();
        fenced(write_on_pool!(self, pool => {
            bind_lease!(
                sqlx::query(concat!(
                    "UPDATE jobs SET resolution = $4, updated_at = $5 WHERE ",
                    fence!()
                )),
                lease
            )
            .bind(Json(&resolution))
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        }))
    }

    /// The job succeeded: stores its result, clears the lease and any earlier retry error,
    /// purges its input and checkpoints, and queues its `callback_url` message (as `fail` and
    /// `mark_cancelled` do).
    pub async fn complete(&self, lease: &Lease, result: serde_json::Value) -> Result<()> {
        let now = now_millis();
        in_tx!(self, tx => {
            fenced(
                bind_lease!(
                    sqlx::query(concat!(
                        "UPDATE jobs SET status = 'succeeded', result = $4, error = NULL, \
                         lease_owner = NULL, lease_expires_at = NULL, \
                         finished_at = $5, updated_at = $5 WHERE ",
                        fence!()
                    )),
                    lease
                )
                .bind(Json(&result))
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
            )?;
            append_event!(tx, lease.job_id, "status", now);
            purge_personal_data!(tx, lease.job_id);
            enqueue_webhook!(self, tx, lease.job_id, now);
        });
        Ok(())
    }

    /// The job failed for good: stores the error, clears the lease, purges input and checkpoints.
    pub async fn fail(&self, lease: &Lease, error: serde_json::Value) -> Result<()> {
        let now = now_millis();
        in_tx!(self, tx => {
            fenced(
                bind_lease!(
                    sqlx::query(concat!(
                        "UPDATE jobs SET status = 'failed', error = $4, \
                         lease_owner = NULL, lease_expires_at = NULL, \
                         finished_at = $5, updated_at = $5 WHERE ",
                        fence!()
                    )),
                    lease
                )
                .bind(Json(&error))
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
            )?;
            append_event!(tx, lease.job_id, "status", now);
            purge_personal_data!(tx, lease.job_id);
            enqueue_webhook!(self, tx, lease.job_id, now);
        });
        Ok(())
    }

    /// The attempt failed but the job may succeed later: back to queued, not claimable before
    /// `run_after`, lease cleared, `error` kept as the last error. Input and checkpoints stay so
    /// the next attempt resumes where this one stopped.
    pub async fn retry_later(
        &self,
        lease: &Lease,
        error: serde_json::Value,
        run_after: OffsetDateTime,
    ) -> Result<()> {
        let now = now_millis();
        in_tx!(self, tx => {
            fenced(
                bind_lease!(
                    sqlx::query(concat!(
                        "UPDATE jobs SET status = 'queued', error = $4, run_after = $5, \
                         lease_owner = NULL, lease_expires_at = NULL, updated_at = $6 WHERE ",
                        fence!()
                    )),
                    lease
                )
                .bind(Json(&error))
                .bind(to_millis(run_after))
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
            )?;
            append_event!(tx, lease.job_id, "status", now);
        });
        Ok(())
    }

    /// The worker is stopping (its process shuts down) before the job ends: the job goes back to
    /// the queue at once, lease cleared, so any worker resumes it from its checkpoints now rather
    /// than when the lease would have expired. Nothing else changes: the attempt stays (the next
    /// claim bumps it, as it would after an expiry), and the input and checkpoints stay.
    pub async fn release(&self, lease: &Lease) -> Result<()> {
        let now = now_millis();
        in_tx!(self, tx => {
            fenced(
                bind_lease!(
                    sqlx::query(concat!(
                        "UPDATE jobs SET status = 'queued', \
                         lease_owner = NULL, lease_expires_at = NULL, updated_at = $4 WHERE ",
                        fence!()
                    )),
                    lease
                )
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
            )?;
            append_event!(tx, lease.job_id, "status", now);
        });
        Ok(())
    }

    /// The worker stopped the job after a cancel request: cancelled, lease cleared, input and
    /// checkpoints purged.
    pub async fn mark_cancelled(&self, lease: &Lease) -> Result<()> {
        let now = now_millis();
        in_tx!(self, tx => {
            fenced(
                bind_lease!(
                    sqlx::query(concat!(
                        "UPDATE jobs SET status = 'cancelled', \
                         lease_owner = NULL, lease_expires_at = NULL, \
                         finished_at = $4, updated_at = $4 WHERE ",
                        fence!()
                    )),
                    lease
                )
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
            )?;
            append_event!(tx, lease.job_id, "status", now);
            purge_personal_data!(tx, lease.job_id);
            enqueue_webhook!(self, tx, lease.job_id, now);
        });
        Ok(())
    }
}
