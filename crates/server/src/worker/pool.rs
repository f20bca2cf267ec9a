//! The worker pool: N Tokio tasks that claim jobs from the store, hold a lease by heartbeat and
//! run the pipeline. Any number of processes may run workers against one Postgres database.

use std::sync::Arc;
use std::time::Duration;

use icp_store::{Lease, StoreError};
use rand::Rng;
use time::OffsetDateTime;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::context::WorkerContext;
use super::error::StageError;
use super::{outage, pipeline};

/// How many times one attempt pauses for the database and runs on from its checkpoints before
/// an unavailable database counts as a failed attempt like any other (a database that answers
/// pings but keeps dropping the job's writes must not hold it forever).
const MAX_PAUSES: u32 = 20;
/// How soon a failed heartbeat is tried again (at most: never later than a regular beat), so
/// that the lease is renewed as soon as the database is back.
const HEARTBEAT_RETRY: Duration = Duration::from_secs(1);
/// The longest a worker waits between claims that fail (the database out of reach).
const CLAIM_BACKOFF_CAP: Duration = Duration::from_secs(5);

/// Starts `config.workers` workers; they stop when `shutdown` is cancelled.
pub fn spawn_pool(ctx: WorkerContext, shutdown: CancellationToken) -> JoinSet<()> {
    let mut set = JoinSet::new();
    let process = uuid::Uuid::new_v4().simple().to_string();
    for n in 0..ctx.config.workers {
        let worker_id = format!("{}-{n}", &process[..12]);
        set.spawn(run_worker(ctx.clone(), worker_id, shutdown.clone()));
    }
    set
}

async fn run_worker(ctx: WorkerContext, worker_id: String, shutdown: CancellationToken) {
    tracing::debug!(worker = %worker_id, "worker started");
    let mut failed_claims = 0u32;
    while !shutdown.is_cancelled() {
        let claimed = ctx.store.claim_next(&worker_id, ctx.config.lease).await;
        if claimed.is_ok() {
            failed_claims = 0;
        }
        match claimed {
            Ok(Some((job, lease))) => {
                tracing::info!(job = %job.id, attempt = lease.attempt, worker = %worker_id, "job claimed");
                let span = tracing::info_span!("job", job_id = %job.id, attempt = lease.attempt);
                run_claimed(&ctx, job, lease, &shutdown)
                    .instrument(span)
                    .await;
            }
            Ok(None) => {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = ctx.wake.notified() => {}
                    _ = tokio::time::sleep(jittered(ctx.config.poll_interval)) => {}
                }
            }
            Err(err) => {
                // Doubling while the database stays out of reach, from four polls up to a cap.
                failed_claims = failed_claims.saturating_add(1);
                let delay = (ctx.config.poll_interval * 4)
                    .saturating_mul(1 << failed_claims.min(6).saturating_sub(1))
                    .min(CLAIM_BACKOFF_CAP.max(ctx.config.poll_interval));
                tracing::warn!(worker = %worker_id, error = %err, "claiming a job failed");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(jittered(delay)) => {}
                }
            }
        }
    }
    tracing::debug!(worker = %worker_id, "worker stopped");
}

/// Why a running job stopped before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interrupt {
    /// The user asked to cancel.
    Cancelled,
    /// The lease is gone (expired and taken by another worker): stop without writing.
    LeaseLost,
    /// The process is shutting down: the job is released for another worker to resume.
    Shutdown,
}

async fn run_claimed(
    ctx: &WorkerContext,
    job: icp_store::JobRecord,
    lease: Lease,
    shutdown: &CancellationToken,
) {
    if job.cancel_requested {
        // Cancelled while its previous worker was gone: nothing to run.
        tracing::info!(job = %job.id, "job cancelled before it resumed");
        if let Err(err) = ctx.store.mark_cancelled(&lease).await {
            tracing::error!(job = %job.id, error = %err, "recording the cancellation failed");
        }
        return;
    }
    let stop = CancellationToken::new();
    let interrupt = Arc::new(std::sync::Mutex::new(None::<Interrupt>));
    let heartbeat = tokio::spawn(heartbeat(
        ctx.clone(),
        lease.clone(),
        stop.clone(),
        interrupt.clone(),
        shutdown.clone(),
    ));
    let mut job = job;
    let mut pauses = 0;
    let outcome = loop {
        let outcome = tokio::select! {
            r = pipeline::run(ctx, &job, &lease, &stop) => Some(r),
            _ = stop.cancelled() => None,
        };
        match outcome {
            Some(Err(StageError::Store(err))) if err.is_unavailable() && pauses < MAX_PAUSES => {
                pauses += 1;
                tracing::warn!(job = %job.id, attempt = lease.attempt, error = %err,
                    "database unavailable; job paused until it answers");
                match resume(ctx, &lease, &stop, &interrupt).await {
                    Some(now) => {
                        tracing::info!(job = %job.id, attempt = lease.attempt,
                            "database back; job resumes from its checkpoints");
                        job = now;
                    }
                    None => break None,
                }
            }
            other => break other,
        }
    };
    heartbeat.abort();
    let why = *interrupt.lock().expect("interrupt lock");
    let written = match (outcome, why) {
        // A stale worker (frozen past its lease, say) finds out at its next write: the job is
        // another's now, not failed, and there is nothing to record.
        (_, Some(Interrupt::LeaseLost))
        | (Some(Err(StageError::Store(StoreError::LeaseLost))), _) => {
            tracing::warn!(job = %job.id, "lease lost; another worker owns the job now");
            Ok(())
        }
        (_, Some(Interrupt::Cancelled)) => {
            tracing::info!(job = %job.id, "job cancelled");
            outage::until_written(&ctx.store, shutdown, || ctx.store.mark_cancelled(&lease)).await
        }
        // A pipeline that ended as the shutdown came has its outcome written like any other.
        (Some(Ok(result)), None | Some(Interrupt::Shutdown)) => {
            tracing::info!(job = %job.id, "job succeeded");
            outage::until_written(&ctx.store, shutdown, || {
                ctx.store.complete(&lease, result.clone())
            })
            .await
        }
        (Some(Err(err)), None | Some(Interrupt::Shutdown)) => {
            outage::until_written(&ctx.store, shutdown, || {
                record_failure(ctx, &job, &lease, &err)
            })
            .await
        }
        (None, Some(Interrupt::Shutdown) | None) => {
            // The stage stopped where it was: what it checkpointed stays, the calls in flight
            // are dropped. The job goes back to the queue at once, so another process resumes
            // it now instead of when the lease would have expired.
            tracing::info!(job = %job.id, "worker shutting down; job released for another worker");
            ctx.store.release(&lease).await
        }
    };
    match written {
        Ok(()) | Err(StoreError::LeaseLost) => {}
        Err(err) => {
            tracing::error!(job = %job.id, error = %err, "recording the job's outcome failed")
        }
    }
}

/// After the database came back from an outage: whether this worker still holds the job (a
/// heartbeat, which also renews the lease before anyone can take it over) and the job as it now
/// stands (progress, workflow id), to run on from its checkpoints. `None` when the job must
/// stop: the lease lost, a cancel asked for, the process shutting down.
async fn resume(
    ctx: &WorkerContext,
    lease: &Lease,
    stop: &CancellationToken,
    interrupt: &std::sync::Mutex<Option<Interrupt>>,
) -> Option<icp_store::JobRecord> {
    let stopping = |why| {
        interrupt.lock().expect("interrupt lock").get_or_insert(why);
        stop.cancel();
        None
    };
    loop {
        if !outage::database_back(&ctx.store, stop).await {
            return None;
        }
        match ctx.store.heartbeat(lease, ctx.config.lease).await {
            Ok(beat) if beat.cancel_requested => return stopping(Interrupt::Cancelled),
            Ok(_) => {}
            Err(StoreError::LeaseLost) => return stopping(Interrupt::LeaseLost),
            Err(_) => continue,
        }
        match ctx.store.get_job(lease.job_id, None).await {
            Ok(Some(job)) => return Some(job),
            Ok(None) => return stopping(Interrupt::LeaseLost),
            Err(_) => continue,
        }
    }
}

async fn record_failure(
    ctx: &WorkerContext,
    job: &icp_store::JobRecord,
    lease: &Lease,
    err: &StageError,
) -> Result<(), StoreError> {
    let problem = err.to_problem();
    let problem_json = serde_json::to_value(&problem).unwrap_or_default();
    if err.is_retryable() && lease.attempt < ctx.config.max_attempts {
        let delay = backoff(ctx.config.retry_base, lease.attempt);
        tracing::warn!(job = %job.id, attempt = lease.attempt, delay_ms = delay.as_millis() as u64,
            error = %err, "job attempt failed; retrying later");
        let run_after = OffsetDateTime::now_utc() + delay;
        let queued = ctx.store.retry_later(lease, problem_json, run_after).await;
        if queued.is_ok() {
            ctx.metrics.job_retried();
        }
        queued
    } else {
        tracing::warn!(job = %job.id, attempt = lease.attempt, error = %err, "job failed");
        ctx.store.fail(lease, problem_json).await
    }
}

/// Renews the lease until the job ends; raises `stop` when the job must stop.
async fn heartbeat(
    ctx: WorkerContext,
    lease: Lease,
    stop: CancellationToken,
    interrupt: Arc<std::sync::Mutex<Option<Interrupt>>>,
    shutdown: CancellationToken,
) {
    let every = ctx.config.lease / 3;
    let mut wait = every;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                interrupt.lock().expect("interrupt lock").get_or_insert(Interrupt::Shutdown);
                stop.cancel();
                return;
            }
            _ = tokio::time::sleep(wait) => {}
        }
        wait = every;
        match ctx.store.heartbeat(&lease, ctx.config.lease).await {
            Ok(beat) if beat.cancel_requested => {
                interrupt
                    .lock()
                    .expect("interrupt lock")
                    .get_or_insert(Interrupt::Cancelled);
                stop.cancel();
                return;
            }
            Ok(_) => {}
            Err(StoreError::LeaseLost) => {
                interrupt
                    .lock()
                    .expect("interrupt lock")
                    .get_or_insert(Interrupt::LeaseLost);
                stop.cancel();
                return;
            }
            // A passing database fault: keep working; the lease outlives a few missed beats,
            // and the next beat comes sooner, to renew it as soon as the database is back.
            Err(err) => {
                tracing::warn!(job = %lease.job_id, error = %err, "heartbeat failed");
                wait = HEARTBEAT_RETRY.min(every);
            }
        }
    }
}

/// Exponential backoff with full jitter: a random delay in [base·2^(attempt-1) / 2, base·2^(attempt-1)].
fn backoff(base: Duration, attempt: i32) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.clamp(1, 10).saturating_sub(1));
    let cap = exp.min(Duration::from_secs(300));
    let half = cap / 2;
    half + half.mul_f64(rand::rng().random::<f64>())
}

fn jittered(d: Duration) -> Duration {
    d.mul_f64(0.75 + 0.5 * rand::rng().random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        let base = Duration::from_secs(1);
        for attempt in 1..20 {
            let d = backoff(base, attempt);
            let ceiling = base
                .saturating_mul(1 << (attempt.clamp(1, 10) - 1))
                .min(Duration::from_secs(300));
            assert!(
                d >= ceiling / 2 && d <= ceiling,
                "attempt {attempt}: {d:?} vs {ceiling:?}"
            );
        }
    }
}
