//! The durable job store of the ICP service: jobs, their leases, checkpoints and exports.
//!
//! One [`Store`] over either SQLite (the embedded default: one file, no server) or PostgreSQL
//! (production; several service processes share one queue). The schema is the same on both
//! (`migrations/sqlite`, `migrations/postgres`, same version numbers); SQL is written once where
//! the dialects agree (both accept `$n` placeholders) and per backend only where they differ.
//!
//! Conventions:
//! - Timestamps are stored as unix milliseconds and exposed as [`time::OffsetDateTime`] (UTC,
//!   millisecond precision). "Now" is the application's clock, so leases compare the same way on
//!   both backends; keep the clocks of several Postgres-sharing processes in sync (NTP).
//! - `owner: Option<&str>` arguments restrict to that owner's jobs; `None` means no restriction
//!   (auth disabled, or an operator).
//! - Workers hold a [`Lease`]; every write they make is fenced by (job id, worker id, attempt,
//!   `running`), so a worker whose lease expired and was reclaimed gets [`StoreError::LeaseLost`]
//!   instead of overwriting the newer attempt.
//! - Every write that changes a job's status, stage or progress appends a row to `job_events`
//!   in its own transaction: what `GET /v1/jobs/{id}/events` streams, on any process.
//! - The job input and checkpoints (personal data) are deleted the moment a job reaches a final
//!   status; `delete_job` / `purge_expired` remove everything else.

/// Runs `$body` once per backend with `$pool` bound to a connection of the concrete backend, so
/// one piece of code (with `$n` placeholders both dialects accept) serves both. The connection is
/// waited for only as long as the store's wait (`Store::with_wait`).
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::connect::Pool::Sqlite(pool) => {
                let mut conn = $store.acquire(pool, $store.deadline()).await?;
                let $pool = &mut *conn;
                $body
            }
            $crate::connect::Pool::Postgres(pool) => {
                let mut conn = $store.acquire(pool, $store.deadline()).await?;
                let $pool = &mut *conn;
                $body
            }
        }
    };
}

/// [`on_pool!`] for a statement that writes: on SQLite it waits for this process's other writers
/// first (see `Store::sqlite_writes`) and runs in a transaction that holds the write lock, so
/// the wait for a lock another process holds is the store's to bound, not SQLite's.
macro_rules! write_on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::connect::Pool::Sqlite(pool) => {
                let deadline = $store.deadline();
                let _writing = $store.write_turn(deadline).await?;
                let mut tx = $store.begin_immediate(pool, deadline).await?;
                let out = {
                    let $pool = &mut *tx;
                    $body
                };
                tx.commit().await?;
                out
            }
            $crate::connect::Pool::Postgres(pool) => {
                let mut conn = $store.acquire(pool, $store.deadline()).await?;
                let $pool = &mut *conn;
                $body
            }
        }
    };
}

/// Runs `$body` in a transaction (`$tx`), committing when the body finishes; an early return or
/// `?` drops the transaction, which rolls it back. On SQLite the transaction waits for this
/// process's other writers first (see `Store::sqlite_writes`) and takes the write lock up front
/// (`Store::begin_immediate`).
macro_rules! in_tx {
    ($store:expr, $tx:ident => $body:expr) => {
        match &$store.pool {
            $crate::connect::Pool::Sqlite(pool) => {
                let deadline = $store.deadline();
                let _writing = $store.write_turn(deadline).await?;
                let mut $tx = $store.begin_immediate(pool, deadline).await?;
                let out = $body;
                $tx.commit().await?;
                out
            }
            $crate::connect::Pool::Postgres(pool) => {
                let conn = $store.acquire(pool, $store.deadline()).await?;
                let mut $tx = sqlx::Transaction::begin(conn, None).await?;
                let out = $body;
                $tx.commit().await?;
                out
            }
        }
    };
}

/// The fencing condition of every worker write: parameters `$1`–`$3` are the lease's job id,
/// worker id and attempt (bind them with `bind_lease!`).
macro_rules! fence {
    () => {
        "id = $1 AND lease_owner = $2 AND attempt = $3 AND status = 'running'"
    };
}

macro_rules! bind_lease {
    ($query:expr, $lease:expr) => {
        $query
            .bind($lease.job_id)
            .bind($lease.worker_id.as_str())
            .bind($lease.attempt)
    };
}

/// Appends the job's event `$kind` (`status`, `stage` or `progress`) inside transaction `$tx`,
/// after the write that changed it: the job's status, stage and progress as they now stand,
/// numbered one past its last event. The write before it holds the job row (Postgres's row
/// lock, SQLite's write lock), so two writers of one job number their events in turn.
macro_rules! append_event {
    ($tx:ident, $id:expr, $kind:literal, $now:expr) => {
        sqlx::query(concat!(
            "INSERT INTO job_events (job_id, seq, kind, status, stage, progress, at) \
             SELECT id, COALESCE((SELECT MAX(seq) FROM job_events WHERE job_id = $1), 0) + 1, '",
            $kind,
            "', status, stage, progress, $2 FROM jobs WHERE id = $1"
        ))
        .bind($id)
        .bind($now)
        .execute(&mut *$tx)
        .await?;
    };
}

mod artifacts;
mod connect;
mod error;
mod events;
mod jobs;
mod keys;
mod lease;
mod model;
mod row;
#[cfg(feature = "test-support")]
pub mod test_support;
mod webhooks;

pub use artifacts::Part;
pub use connect::{Backend, Store};
pub use error::{Result, StoreError};
pub use events::{EventKind, JobEvent, JobEvents};
pub use model::{
    ApiKeyRecord, CreatedJob, Heartbeat, JobRecord, JobStatus, Lease, ListJobs, NewJob, PoolStats,
    QueueStats, Stage, TraceRecord, UnknownName, WebhookAttempt, WebhookDelivery, WebhookOutcome,
};
