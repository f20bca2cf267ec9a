//! The database out of reach while jobs run: requests answer 503 problem+json with
//! `Retry-After` within a second instead of hanging, running jobs pause and resume with the
//! same attempt, and the service recovers by itself once the database is back — every job then
//! finishes with the result an undisturbed run gives.
//!
//! SQLite: another connection holds the file's write lock (as another process would); no
//! permission stops root, and a file renamed away stays open under its descriptors, so the lock
//! is what makes the file unwritable here. Postgres: a proxy between the service and the
//! machine's Postgres refuses connections and cuts those it carries (the server itself serves
//! other tests and is never stopped).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::load::{post_politely, retry_after};
use crate::tcp_proxy::TcpProxy;
use icp_store::test_support::{TestDatabase, lock_sqlite_writes};
use serde_json::{Value, json};

/// How long the database stays out of reach.
const OUTAGE: Duration = Duration::from_secs(4);
/// What "at once" means for a refusal.
const ANSWER_WITHIN: Duration = Duration::from_secs(1);

/// The embedded population, every call passed through (the enrichment gate is what is used).
struct Untouched;
impl Tap for Untouched {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_locked_sqlite_file_pauses_jobs_and_answers_503_until_released() {
    let db = TestDatabase::sqlite().await;
    let path = db.url().to_owned();
    let lock = Arc::new(tokio::sync::Mutex::new(None));
    let (taken, released) = (lock.clone(), lock);
    let figures = ride_out(
        db,
        None,
        || async move {
            *taken.lock().await = Some(lock_sqlite_writes(&path).await);
        },
        || async move {
            released.lock().await.take().unwrap().release().await;
        },
    )
    .await;
    eprintln!("write-locked SQLite file: {figures}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_out_of_reach_pauses_jobs_and_answers_503_until_back() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let proxy = Arc::new(TcpProxy::start(TcpProxy::upstream_of(db.url())).await);
    let through = proxy.url_through(db.url());
    let (down, up) = (proxy.clone(), proxy);
    let figures = ride_out(
        db,
        Some(through),
        || async move { down.down().await },
        || async move { up.up().await },
    )
    .await;
    eprintln!("Postgres out of reach: {figures}");
}

/// Runs jobs through an outage that `take_down` starts and `bring_back` ends; returns the
/// figures seen.
async fn ride_out<D, DF, U, UF>(
    db: TestDatabase,
    db_url: Option<String>,
    take_down: D,
    bring_back: U,
) -> String
where
    D: FnOnce() -> DF,
    DF: Future<Output = ()>,
    U: FnOnce() -> UF,
    UF: Future<Output = ()>,
{
    let reads_go_on = db.backend() == icp_store::Backend::Sqlite;
    let provider = Tapped::new(Untouched);
    let app = spawn_app_with(
        db,
        AppOptions {
            workers: 2,
            provider: Some(provider.clone()),
            // Several resolve calls and two enrichment batches: checkpoints to resume from.
            resolve_chunk: Some(300),
            db_url,
            max_jobs_in_flight: Some(0),
            configure: Some(Box::new(|config| {
                // Shorter than the outage: a worker's write gives up, and the job pauses until
                // the database answers (rather than the write simply waiting it out).
                config.worker.db_wait = Duration::from_secs(1);
            })),
            ..AppOptions::default()
        },
    )
    .await;
    let (_, emails) = segment_emails(3, 1200);
    let body = job_body(&emails, json!({"min_support": 0.05, "audience_limit": 500}));
    let (reference, _) = run_job_body(&app, &body).await;

    // Two jobs running (one per worker), held in enrichment with resolve checkpointed, and a
    // third queued behind them.
    provider.enrich_gate.close();
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(post_politely(&app, &body, &format!("before-{n}")).await.0);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let running = loop {
        let mut running = Vec::new();
        for id in &ids {
            let job: Value = app.get_json(&format!("/v1/jobs/{id}")).await;
            if job["status"] == "running" && job["progress"]["resolve"]["finished_at"].is_string() {
                running.push(id.clone());
            }
        }
        if running.len() == 2 {
            break running;
        }
        assert!(
            Instant::now() < deadline,
            "two jobs never reached enrichment"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    take_down().await;
    let down_at = Instant::now();
    // The held calls answer now: the jobs' next writes find the database gone.
    provider.enrich_gate.open();

    let mut slowest = Duration::ZERO;
    let mut refusals = 0;
    let mut n = 0;
    while down_at.elapsed() < OUTAGE {
        let posted = timed(
            app.client
                .post(app.url("/v1/jobs"))
                .header("Idempotency-Key", format!("during-{n}"))
                .json(&body)
                .send(),
        )
        .await;
        let ready = timed(app.client.get(app.url("/readyz")).send()).await;
        let polled = timed(
            app.client
                .get(app.url(&format!("/v1/jobs/{}", running[0])))
                .send(),
        )
        .await;
        n += 1;
        let mut refused = vec![posted, ready];
        if reads_go_on {
            // A lock on writes leaves reads alone: the job is seen, still running.
            let (elapsed, response) = polled;
            slowest = slowest.max(elapsed);
            assert_eq!(response.status().as_u16(), 200);
            let job: Value = response.json().await.unwrap();
            assert_eq!(job["status"], "running", "{job}");
        } else {
            refused.push(polled);
        }
        for (elapsed, response) in refused {
            slowest = slowest.max(elapsed);
            assert!(
                elapsed < ANSWER_WITHIN,
                "{} took {elapsed:?} to answer",
                response.url()
            );
            assert!(retry_after(&response) >= Duration::from_secs(1));
            assert_problem(response, 503).await;
            refusals += 1;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    bring_back().await;
    let back_at = Instant::now();
    // Recovered by itself: ready again, and posts accepted, without a restart.
    loop {
        let response = app.get("/readyz").await;
        if response.status().as_u16() == 200 {
            break;
        }
        assert_problem(response, 503).await;
        assert!(
            back_at.elapsed() < Duration::from_secs(20),
            "still not ready {:?} after the database came back",
            back_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ready_after = back_at.elapsed();
    ids.push(post_politely(&app, &body, "after").await.0);

    for id in &ids {
        let job = app.wait_for(id, Duration::from_secs(120)).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["attempt"], 1, "job {id} started over: {job}");
        let result = app.get_json(&format!("/v1/jobs/{id}/result")).await;
        assert_eq!(
            comparable_result(result),
            reference,
            "job {id}: not the undisturbed result"
        );
    }
    let figures = format!(
        "{refusals} requests refused with 503 in {OUTAGE:?} (slowest answer {slowest:?}); \
         ready again {ready_after:?} after the database came back; {} jobs finished on their \
         first attempt with the undisturbed result",
        ids.len()
    );
    app.shutdown().await;
    figures
}

async fn timed(
    request: impl Future<Output = reqwest::Result<reqwest::Response>>,
) -> (Duration, reqwest::Response) {
    let started = Instant::now();
    let response = request.await.expect("an answer");
    (started.elapsed(), response)
}
