//! `GET /v1/jobs/{id}/events`: every change of a job, in order, then the stream closes; a
//! client resuming with `Last-Event-ID` gets exactly the events after it; a client of a replica
//! that does not run the job sees every event too. Streams are read with `eventsource-stream`,
//! an SSE parser of the ecosystem's, not one of ours.

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::StreamExt;
use icp_store::test_support::TestDatabase;
use serde_json::{Value, json};

use crate::common::{
    AppOptions, TestApp, assert_problem, databases, job_body, segment_emails, spawn_app,
    spawn_app_with,
};

/// Long enough for any test job; only a service that never closes the stream gets near it.
const STREAM_LIMIT: Duration = Duration::from_secs(180);

/// One event as received.
#[derive(Debug, Clone, PartialEq)]
struct Received {
    id: i64,
    kind: String,
    data: Value,
}

fn small_job() -> Value {
    let (_, emails) = segment_emails(2, 300);
    job_body(&emails, json!({"min_support": 0.05, "audience_limit": 200}))
}

async fn post_job(app: &TestApp, body: &Value) -> String {
    let response = app.post_json("/v1/jobs", body).await;
    assert_eq!(response.status(), 202);
    let job: Value = response.json().await.unwrap();
    job["id"].as_str().unwrap().to_owned()
}

async fn open(app: &TestApp, id: &str, last_event_id: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url(&format!("/v1/jobs/{id}/events")));
    if let Some(last) = last_event_id {
        request = request.header("last-event-id", last);
    }
    request.send().await.expect("GET events")
}

/// Reads the stream of job `id` to its end: every event, parsed by `eventsource-stream`.
async fn read_events(app: &TestApp, id: &str, last_event_id: Option<&str>) -> Vec<Received> {
    let response = open(app, id, last_event_id).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut stream = response.bytes_stream().eventsource();
    let mut events = Vec::new();
    let read = async {
        while let Some(event) = stream.next().await {
            let event = event.expect("a well-formed event");
            events.push(Received {
                id: event.id.parse().expect("a numeric id"),
                kind: event.event,
                data: serde_json::from_str(&event.data).expect("JSON data"),
            });
        }
    };
    tokio::time::timeout(STREAM_LIMIT, read)
        .await
        .unwrap_or_else(|_| panic!("the stream of job {id} did not close: {events:?}"));
    events
}

/// What every complete stream of a job that succeeded must show: ids 1, 2, 3 … with no gap;
/// queued first, running, then the stages in pipeline order with progress between them, and
/// succeeded last; each event the whole snapshot of the job; the last one the job as served.
async fn assert_whole_life(app: &TestApp, id: &str, events: &[Received]) {
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    let expected: Vec<i64> = (1..=events.len() as i64).collect();
    assert_eq!(ids, expected, "{events:?}");
    for e in events {
        assert!(
            ["status", "stage", "progress"].contains(&e.kind.as_str()),
            "{e:?}"
        );
        assert_eq!(e.data["job_id"], id, "{e:?}");
        for stage in ["resolve", "enrich", "analyze", "map", "find", "validate"] {
            assert!(e.data["progress"][stage]["done"].is_u64(), "{e:?}");
        }
        assert!(e.data["progress"].get("normalization").is_none(), "{e:?}");
        assert!(
            time::OffsetDateTime::parse(
                e.data["at"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339
            )
            .is_ok(),
            "{e:?}"
        );
    }
    let statuses: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == "status")
        .map(|e| e.data["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.first(), Some(&"queued"), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&"succeeded"), "{statuses:?}");
    assert!(statuses.contains(&"running"), "{statuses:?}");
    assert_eq!(events.last().unwrap().kind, "status");

    let stages: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == "stage")
        .map(|e| e.data["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        ["resolve", "enrich", "analyze", "map", "find", "validate"],
        "{events:?}"
    );
    // A stage event names the stage it enters, and every event after it carries that stage
    // until the next one.
    let mut current = Value::Null;
    for e in events {
        if e.kind == "stage" {
            current = e.data["stage"].clone();
        }
        assert_eq!(e.data["stage"], current, "{e:?}");
    }
    assert!(
        events.iter().any(|e| e.kind == "progress"),
        "no progress event: {events:?}"
    );
    // Progress only grows: no stage's `done` ever goes back.
    for pair in events.windows(2) {
        for stage in ["resolve", "enrich", "analyze", "map", "find", "validate"] {
            let before = pair[0].data["progress"][stage]["done"].as_u64().unwrap();
            let after = pair[1].data["progress"][stage]["done"].as_u64().unwrap();
            assert!(before <= after, "{stage} went back: {pair:?}");
        }
    }
    let job: Value = app.get_json(&format!("/v1/jobs/{id}")).await;
    let last = &events.last().unwrap().data;
    assert_eq!(last["status"], job["status"]);
    assert_eq!(last["stage"], job["stage"]);
    assert_eq!(last["progress"], job["progress"]);
}

/// A stream opened as the job starts shows its whole life and closes; reconnecting with
/// `Last-Event-ID` gives exactly the events after it, and a finished job's stream replays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_shows_a_jobs_whole_life_in_order_and_resumes_without_loss() {
    for db in databases().await {
        let app = spawn_app(db).await;
        let id = post_job(&app, &small_job()).await;
        let events = read_events(&app, &id, None).await;
        assert_whole_life(&app, &id, &events).await;

        // The job has ended: the same events again, from the start or after any of them.
        assert_eq!(read_events(&app, &id, None).await, events);
        let n = events.len();
        for after in [1, n / 2, n - 1, n] {
            let resumed = read_events(&app, &id, Some(&after.to_string())).await;
            assert_eq!(resumed, events[after..].to_vec(), "after {after}");
        }
        let beyond = read_events(&app, &id, Some(&(n + 10).to_string())).await;
        assert!(beyond.is_empty(), "{beyond:?}");
        app.shutdown().await;
    }
}

/// Two services on one database, only one of them running jobs: a client of the other one
/// gets every event of a job, written by the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_another_replica_gets_every_event() {
    for db in databases().await {
        let runner = spawn_app(db).await;
        let own = if runner.db_url.starts_with("postgres") {
            TestDatabase::postgres().await.unwrap()
        } else {
            TestDatabase::sqlite().await
        };
        let watcher = spawn_app_with(
            own,
            AppOptions {
                workers: 0,
                db_url: Some(runner.db_url.clone()),
                ..AppOptions::default()
            },
        )
        .await;
        // Created through the watcher, which cannot run it: only the runner's workers can.
        let id = post_job(&watcher, &small_job()).await;
        let events = read_events(&watcher, &id, None).await;
        assert_whole_life(&watcher, &id, &events).await;
        // Both replicas tell the same story.
        assert_eq!(read_events(&runner, &id, None).await, events);
        watcher.shutdown().await;
        runner.shutdown().await;
    }
}

/// A cancelled job's stream ends with its cancellation; streams past the configured number are
/// refused with 429 and `Retry-After`, and a stream that ended frees its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_bounded_and_a_cancelled_job_closes_its_stream() {
    for db in databases().await {
        let app = spawn_app_with(
            db,
            AppOptions {
                workers: 0,
                configure: Some(Box::new(|config| config.max_event_streams = 1)),
                ..AppOptions::default()
            },
        )
        .await;
        let id = post_job(&app, &small_job()).await;
        let first = open(&app, &id, None).await;
        assert_eq!(first.status(), 200);
        let second = open(&app, &id, None).await;
        assert!(second.headers().contains_key("retry-after"));
        let problem = assert_problem(second, 429).await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("event streams"),
            "{problem}"
        );

        // Queued, so cancelled at once: the open stream gets that and closes.
        assert_eq!(
            app.post(&format!("/v1/jobs/{id}/cancel")).await.status(),
            202
        );
        let mut stream = first.bytes_stream().eventsource();
        let mut kinds = Vec::new();
        let read = async {
            while let Some(event) = stream.next().await {
                let event = event.unwrap();
                let data: Value = serde_json::from_str(&event.data).unwrap();
                kinds.push((event.id, event.event, data["status"].clone()));
            }
        };
        tokio::time::timeout(STREAM_LIMIT, read)
            .await
            .expect("the cancelled job's stream closes");
        assert_eq!(
            kinds,
            [
                ("1".to_owned(), "status".to_owned(), json!("queued")),
                ("2".to_owned(), "status".to_owned(), json!("cancelled")),
            ]
        );
        // Its place is free again.
        let again = read_events(&app, &id, Some("1")).await;
        assert_eq!(again.len(), 1, "{again:?}");
        app.shutdown().await;
    }
}

/// No such job: 404; a `Last-Event-ID` that is not an event id: 400 naming the header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_jobs_and_bad_last_event_ids_are_refused() {
    for db in databases().await {
        let app = spawn_app_with(
            db,
            AppOptions {
                workers: 0,
                ..AppOptions::default()
            },
        )
        .await;
        let unknown = uuid::Uuid::new_v4().to_string();
        assert_problem(open(&app, &unknown, None).await, 404).await;
        assert_problem(open(&app, "not-a-job", None).await, 404).await;

        let id = post_job(&app, &small_job()).await;
        for bad in ["-1", "abc", "1.5", "12345678901234567890"] {
            let problem = assert_problem(open(&app, &id, Some(bad)).await, 400).await;
            assert!(
                problem["detail"]
                    .as_str()
                    .unwrap()
                    .contains("Last-Event-ID"),
                "{bad}: {problem}"
            );
        }
        app.shutdown().await;
    }
}
