//! A job's personal data goes when it should, asserted on the tables themselves (every table with
//! a `job_id` column, read from the schema): the customers' identifiers and the checkpoints
//! (person ids, profiles) when the job ends however it ends, everything on `DELETE` — also while
//! the job runs — and everything once the job is past its retention, by itself.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::load::post_politely;
use icp_store::test_support::{job_rows, job_tables, job_text};
use serde_json::{Value, json};
use uuid::Uuid;

struct Untouched;
impl Tap for Untouched {}

fn job_id(id: &str) -> Uuid {
    id.parse().expect("a job id")
}

/// Every table that can hold a job's data, with no row of this job.
async fn assert_nothing_left(app: &TestApp, id: &str) {
    let rows = job_rows(&app.store, job_id(id)).await;
    assert!(
        rows.values().all(|&n| n == 0),
        "job {id} left rows behind: {rows:?}"
    );
}

/// No row of any table holds one of `emails` for this job.
async fn assert_no_customer_in_store(app: &TestApp, id: &str, emails: &[String]) {
    let text = job_text(&app.store, job_id(id)).await.to_lowercase();
    assert!(!text.is_empty());
    for email in emails {
        assert!(
            !text.contains(&email.to_lowercase()),
            "a customer's email is still stored with job {id}"
        );
    }
}

fn rows_of(rows: &BTreeMap<String, i64>, table: &str) -> i64 {
    *rows
        .get(table)
        .unwrap_or_else(|| panic!("no table {table}: {rows:?}"))
}

/// Waits until the job has written its resolve stage and is held in enrichment.
async fn held_in_enrichment(app: &TestApp, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let job: Value = app.get_json(&format!("/v1/jobs/{id}")).await;
        if job["status"] == "running" && job["progress"]["resolve"]["finished_at"].is_string() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} never reached enrichment: {job}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn small_job() -> (Vec<String>, Value) {
    let (_, emails) = segment_emails(2, 400);
    let body = job_body(&emails, json!({"min_support": 0.05, "audience_limit": 300}));
    (emails, body)
}

/// However a job ends — succeeded, failed, cancelled while running — its input and checkpoints
/// are gone, and no customer's identifier is left anywhere in its rows; `DELETE` then removes
/// the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_ended_keeps_no_personal_data_and_delete_removes_the_rest() {
    for db in databases().await {
        let provider = Tapped::new(Untouched);
        let app = spawn_app_with(
            db,
            AppOptions {
                workers: 1,
                provider: Some(provider.clone()),
                configure: Some(Box::new(|config| {
                    // A heartbeat a second, so a cancel is seen within one.
                    config.worker.lease = Duration::from_secs(3);
                })),
                ..AppOptions::default()
            },
        )
        .await;
        let tables = job_tables(&app.store).await;
        for known in [
            "job_inputs",
            "job_checkpoints",
            "job_exports",
            "job_traces",
            "job_events",
        ] {
            assert!(
                tables.iter().any(|t| t == known),
                "{known} not in {tables:?}"
            );
        }

        // Succeeded: the result and the audiences' exports stay, until deleted.
        let (emails, body) = small_job();
        let (id, _) = post_politely(&app, &body, "succeeds").await;
        let queued = job_rows(&app.store, job_id(&id)).await;
        assert_eq!(rows_of(&queued, "job_inputs"), 1, "{queued:?}");
        let job = app.wait_for(&id, Duration::from_secs(60)).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let rows = job_rows(&app.store, job_id(&id)).await;
        assert_eq!(rows_of(&rows, "jobs"), 1);
        assert_eq!(rows_of(&rows, "job_inputs"), 0, "{rows:?}");
        assert_eq!(rows_of(&rows, "job_checkpoints"), 0, "{rows:?}");
        assert!(rows_of(&rows, "job_exports") > 0, "{rows:?}");
        assert_no_customer_in_store(&app, &id, &emails).await;
        assert_eq!(app.delete(&format!("/v1/jobs/{id}")).await.status(), 204);
        assert_nothing_left(&app, &id).await;

        // Failed: no identifier resolves.
        let nobody: Vec<String> = (0..50).map(|i| format!("nobody{i}@example.org")).collect();
        let (failed, _) = post_politely(&app, &job_body(&nobody, json!({})), "fails").await;
        let job = app.wait_for(&failed, Duration::from_secs(60)).await;
        assert_eq!(job["status"], "failed", "{job}");
        let rows = job_rows(&app.store, job_id(&failed)).await;
        assert_eq!(rows_of(&rows, "job_inputs"), 0, "{rows:?}");
        assert_eq!(rows_of(&rows, "job_checkpoints"), 0, "{rows:?}");
        assert_no_customer_in_store(&app, &failed, &nobody).await;

        // Cancelled while running, its resolve stage checkpointed.
        provider.enrich_gate.close();
        let (cancelled, _) = post_politely(&app, &body, "cancelled").await;
        held_in_enrichment(&app, &cancelled).await;
        let rows = job_rows(&app.store, job_id(&cancelled)).await;
        assert!(rows_of(&rows, "job_checkpoints") > 0, "{rows:?}");
        app.post(&format!("/v1/jobs/{cancelled}/cancel")).await;
        // The worker sees the cancel at its next heartbeat, still held in enrichment.
        let job = app.wait_for(&cancelled, Duration::from_secs(60)).await;
        assert_eq!(job["status"], "cancelled", "{job}");
        provider.enrich_gate.open();
        let rows = job_rows(&app.store, job_id(&cancelled)).await;
        assert_eq!(rows_of(&rows, "job_inputs"), 0, "{rows:?}");
        assert_eq!(rows_of(&rows, "job_checkpoints"), 0, "{rows:?}");
        assert_no_customer_in_store(&app, &cancelled, &emails).await;

        for id in [&failed, &cancelled] {
            assert_eq!(app.delete(&format!("/v1/jobs/{id}")).await.status(), 204);
            assert_nothing_left(&app, id).await;
        }
        app.shutdown().await;
    }
}

/// A job deleted while a worker runs it: every row goes at once, and the worker, finding its
/// lease gone, writes nothing back (its next job runs as usual).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_deleted_while_running_leaves_nothing_behind() {
    for db in databases().await {
        let provider = Tapped::new(Untouched);
        let app = spawn_app_with(
            db,
            AppOptions {
                workers: 1,
                provider: Some(provider.clone()),
                ..AppOptions::default()
            },
        )
        .await;
        let (_, body) = small_job();
        provider.enrich_gate.close();
        let (id, _) = post_politely(&app, &body, "deleted").await;
        held_in_enrichment(&app, &id).await;
        let rows = job_rows(&app.store, job_id(&id)).await;
        assert_eq!(rows_of(&rows, "job_inputs"), 1, "{rows:?}");
        assert!(rows_of(&rows, "job_checkpoints") > 0, "{rows:?}");

        assert_eq!(app.delete(&format!("/v1/jobs/{id}")).await.status(), 204);
        assert_nothing_left(&app, &id).await;
        provider.enrich_gate.open();

        // The one worker is free again once it has given the deleted job up.
        let (next, _) = post_politely(&app, &body, "next").await;
        let job = app.wait_for(&next, Duration::from_secs(60)).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_nothing_left(&app, &id).await;
        assert_problem(app.get(&format!("/v1/jobs/{id}")).await, 404).await;
        app.shutdown().await;
    }
}

/// Past its retention a finished job goes with all its data, by itself; a job still running
/// past it is left alone until it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_purges_finished_jobs_by_itself() {
    const RETENTION: Duration = Duration::from_secs(1);
    for db in databases().await {
        let provider = Tapped::new(Untouched);
        let app = spawn_app_with(
            db,
            AppOptions {
                workers: 1,
                provider: Some(provider.clone()),
                configure: Some(Box::new(|config| {
                    config.retention = RETENTION;
                    config.purge_every = Duration::from_millis(100);
                })),
                ..AppOptions::default()
            },
        )
        .await;
        // Quick enough to be seen finished before it expires: no ranked audiences, no
        // validation.
        let (_, mut body) = small_job();
        body["options"]["ranked"] = json!(false);
        body["options"]["validate"] = json!(false);
        let (finished, _) = post_politely(&app, &body, "finished").await;
        let job = app.wait_for(&finished, Duration::from_secs(60)).await;
        assert_eq!(job["status"], "succeeded", "{job}");

        provider.enrich_gate.close();
        let (running, _) = post_politely(&app, &body, "running").await;
        held_in_enrichment(&app, &running).await;

        // The finished job goes; the running one, though expired too, stays.
        gone(&app, &finished).await;
        tokio::time::sleep(RETENTION).await;
        let rows = job_rows(&app.store, job_id(&running)).await;
        assert_eq!(
            rows_of(&rows, "jobs"),
            1,
            "a running job was purged: {rows:?}"
        );
        assert_eq!(rows_of(&rows, "job_inputs"), 1, "{rows:?}");

        // Once it ends, it goes too.
        provider.enrich_gate.open();
        gone(&app, &running).await;
        app.shutdown().await;
    }
}

/// Waits (a bounded while) until the job is purged: 404, and no row left anywhere.
async fn gone(app: &TestApp, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = job_rows(&app.store, job_id(id)).await;
        if rows.values().all(|&n| n == 0) {
            break;
        }
        assert!(Instant::now() < deadline, "job {id} not purged: {rows:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_problem(app.get(&format!("/v1/jobs/{id}")).await, 404).await;
}
