//! The worker pool: N Tokio tasks that claim jobs from the store, hold a lease by heartbeat and
//! run the pipeline. Any number of processes may run workers against one Postgres database.

use std::sync::Arc;
use std::time::Duration;

use icp_store::{Lease, StoreError};
use rand::Rng;
use time::OffsetDateTime;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::context::WorkerContext;
use super::error::StageError;
use super::pipeline;

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
    while !shutdown.is_cancelled() {
        match ctx.store.claim_next(&worker_id, ctx.config.lease).await {
            Ok(Some((job, lease))) => {
                tracing::info!(job = %job.id, attempt = lease.attempt, worker = %worker_id, "job claimed");
                run_claimed(&ctx, job, lease, &shutdown).await;
            }
            Ok(None) => {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = ctx.wake.notified() => {}
                    _ = tokio::time::sleep(jittered(ctx.config.poll_interval)) => {}
                }
            }
            Err(err) => {
                tracing::warn!(worker = %worker_id, error = %err, "claiming a job failed");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(ctx.config.poll_interval * 4) => {}
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
    let outcome = tokio::select! {
        r = pipeline::run(ctx, &job, &lease, &stop) => Some(r),
        _ = stop.cancelled() => None,
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
            ctx.store.mark_cancelled(&lease).await
        }
        // A pipeline that ended as the shutdown came has its outcome written like any other.
        (Some(Ok(result)), None | Some(Interrupt::Shutdown)) => {
            tracing::info!(job = %job.id, "job succeeded");
            ctx.store.complete(&lease, result).await
        }
        (Some(Err(err)), None | Some(Interrupt::Shutdown)) => {
            record_failure(ctx, &job, &lease, err).await
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

async fn record_failure(
    ctx: &WorkerContext,
    job: &icp_store::JobRecord,
    lease: &Lease,
    err: StageError,
) -> Result<(), StoreError> {
    let problem = err.to_problem();
    let problem_json = serde_json::to_value(&problem).unwrap_or_default();
    if err.is_retryable() && lease.attempt < ctx.config.max_attempts {
        let delay = backoff(ctx.config.retry_base, lease.attempt);
        tracing::warn!(job = %job.id, attempt = lease.attempt, delay_ms = delay.as_millis() as u64,
            error = %err, "job attempt failed; retrying later");
        let run_after = OffsetDateTime::now_utc() + delay;
        ctx.store.retry_later(lease, problem_json, run_after).await
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
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                interrupt.lock().expect("interrupt lock").get_or_insert(Interrupt::Shutdown);
                stop.cancel();
                return;
            }
            _ = tokio::time::sleep(every) => {}
        }
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
            // A passing database fault: keep working; the lease outlives a few missed beats.
            Err(err) => tracing::warn!(job = %lease.job_id, error = %err, "heartbeat failed"),
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
