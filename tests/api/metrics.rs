//! `/metrics` as a scraper reads it: the text parsed by the Prometheus project's own OpenMetrics
//! parser (Python `prometheus-client`, pinned in `tests/interop/requirements.txt`), and the
//! figures it shows set against what the test made the service do.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use icp_mcp::faults::{FaultConfig, FaultKind};
use serde_json::{Value, json};

use crate::call_log::start_upstream;
use crate::common::*;
use crate::python_env::PythonNeed;

fn python() -> String {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
            PythonNeed {
                probe: "import prometheus_client.openmetrics.parser",
                requirements: &dir.join("requirements.txt"),
                venv: "interop-venv",
            }
            .python()
        })
        .clone()
}

/// Every sample of a scrape: `(name, labels, value)`.
struct Scrape(Vec<(String, serde_json::Map<String, Value>, f64)>);

impl Scrape {
    async fn of(app: &TestApp) -> Self {
        let response = app.get("/metrics").await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        let text = response.text().await.unwrap();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/interop/parse_metrics.py"
        );
        let mut child = Command::new(python())
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "the OpenMetrics parser refused /metrics: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        let samples: Vec<(String, serde_json::Map<String, Value>, f64)> =
            serde_json::from_slice(&out.stdout).unwrap();
        Self(samples)
    }

    /// The sum of the samples named `name` whose labels include `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|(n, l, _)| {
                n == name && labels.iter().all(|(k, v)| l.get(*k) == Some(&json!(v)))
            })
            .map(|(_, _, v)| v)
            .sum()
    }

    fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.0
            .iter()
            .any(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k) == Some(&json!(v))))
    }
}

/// A job of `customers` of one segment, posted and waited for: its id and its final state.
async fn job_of(app: &TestApp, customers: usize) -> (String, Value) {
    let (_, emails) = segment_emails(0, customers);
    post_and_wait(app, &job_body(&emails, json!({}))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_shows_what_the_service_did() {
    for db in databases().await {
        let app = spawn_app(db).await;
        let (id, job) = job_of(&app, 300).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(
            app.get(&format!("/v1/jobs/{id}/result")).await.status(),
            200
        );
        assert_eq!(app.get("/v1/jobs/not-a-uuid").await.status(), 404);
        assert_eq!(app.get("/no/such/route").await.status(), 404);

        let m = Scrape::of(&app).await;
        let requests = "icp_http_requests_total";
        let created = [("method", "POST"), ("route", "/v1/jobs"), ("status", "202")];
        assert_eq!(m.sum(requests, &created), 1.0);
        let polled = [
            ("method", "GET"),
            ("route", "/v1/jobs/{id}"),
            ("status", "200"),
        ];
        assert!(m.sum(requests, &polled) >= 1.0);
        let bad = [("route", "/v1/jobs/{id}"), ("status", "404")];
        assert_eq!(m.sum(requests, &bad), 1.0);
        let unmatched = [("route", "unmatched"), ("status", "404")];
        assert_eq!(m.sum(requests, &unmatched), 1.0);
        assert!(m.sum("icp_http_request_duration_seconds_count", &created[..2]) >= 1.0);

        for tool in ["resolve_identities", "get_person", "list_clusters"] {
            let calls = m.sum("icp_provider_calls_total", &[("tool", tool)]);
            assert!(calls >= 1.0, "{tool}: {calls}");
            let timed = m.sum(
                "icp_provider_call_duration_seconds_count",
                &[("tool", tool)],
            );
            assert_eq!(timed, calls, "{tool}");
        }
        assert!(m.sum("icp_provider_calls_total", &[("tool", "export_persons")]) >= 1.0);
        assert_eq!(m.sum("icp_provider_errors_total", &[]), 0.0);
        assert_eq!(m.sum("icp_provider_retries_total", &[]), 0.0);
        for stage in ["resolve_enrich", "analyze", "map", "find"] {
            let count = m.sum("icp_stage_duration_seconds_count", &[("stage", stage)]);
            assert_eq!(count, 1.0, "{stage}");
        }
        assert_eq!(m.sum("icp_job_retries_total", &[]), 0.0);
        assert_eq!(m.sum("icp_jobs", &[("status", "succeeded")]), 1.0);
        for status in ["queued", "running", "failed", "cancelled"] {
            assert!(m.has("icp_jobs", &[("status", status)]), "{status}");
            assert_eq!(m.sum("icp_jobs", &[("status", status)]), 0.0, "{status}");
        }
        assert_eq!(m.sum("icp_queue_depth", &[]), 0.0);
        assert_eq!(m.sum("icp_queue_oldest_age_seconds", &[]), 0.0);
        assert!(m.sum("icp_db_pool_max_connections", &[]) >= 1.0);
        assert!(m.has("icp_db_pool_connections", &[("state", "idle")]));

        // Nothing a client sent becomes a label: no identifier, no job id.
        for (_, labels, _) in &m.0 {
            let text = Value::Object(labels.clone()).to_string();
            assert!(!text.contains('@') && !text.contains(&id), "{text}");
        }
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_shows_its_depth_and_the_age_of_its_oldest_job() {
    for db in databases().await {
        let app = spawn_app_without_workers(db).await;
        let (_, emails) = segment_emails(0, 20);
        for _ in 0..2 {
            let r = app
                .post_json("/v1/jobs", &job_body(&emails, json!({})))
                .await;
            assert_eq!(r.status(), 202);
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let m = Scrape::of(&app).await;
        assert_eq!(m.sum("icp_queue_depth", &[]), 2.0);
        assert_eq!(m.sum("icp_jobs", &[("status", "queued")]), 2.0);
        let age = m.sum("icp_queue_oldest_age_seconds", &[]);
        assert!((1.0..600.0).contains(&age), "{age}");
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_and_failures_of_a_remote_provider_are_counted() {
    // Two 429s the client waits out inside its calls: retries, not errors.
    let faults = FaultConfig {
        fail_first: 2,
        kinds: vec![FaultKind::RateLimited],
        retry_after: Duration::from_millis(0),
        ..FaultConfig::default()
    };
    let embedded: std::sync::Arc<dyn icp_contract::PopulationProvider> =
        std::sync::Arc::new(icp_population::EmbeddedProvider::new(population()));
    let (addr, _upstream) = icp_mcp::faults::FaultyUpstream::start(embedded, faults)
        .await
        .unwrap();
    let provider = watt_provider(&format!("http://{addr}/mcp")).await;
    let app = spawn_app_over(databases().await.remove(0), provider).await;
    run_normalized_job(&app, 200).await;
    let m = Scrape::of(&app).await;
    assert!(m.sum("icp_provider_retries_total", &[]) >= 2.0);
    assert_eq!(m.sum("icp_provider_errors_total", &[]), 0.0);
    app.shutdown().await;

    // An upstream that refuses every resolve: the failure is counted by tool and kind.
    let (log, url, _handle) = start_upstream(Duration::ZERO).await;
    *log.fail_resolve_with.lock().unwrap() = Some("refused".to_owned());
    let app = spawn_app_over(databases().await.remove(0), watt_provider(&url).await).await;
    let (_, job) = job_of(&app, 20).await;
    assert_eq!(job["status"], "failed", "{job}");
    let m = Scrape::of(&app).await;
    let failed = m.sum(
        "icp_provider_errors_total",
        &[("tool", "resolve_identities")],
    );
    assert!(failed >= 1.0, "{failed}");
    assert_eq!(m.sum("icp_jobs", &[("status", "failed")]), 1.0);
    app.shutdown().await;
}
