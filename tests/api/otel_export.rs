//! OpenTelemetry export: the real binary, given `OTEL_EXPORTER_OTLP_ENDPOINT`, sends its spans
//! over OTLP/HTTP to a receiver that decodes them with the OpenTelemetry project's own protobuf
//! classes (`tests/interop/otlp_receiver.py`, `opentelemetry-proto` pinned in
//! `tests/interop/requirements.txt`): the request, the job and each stage under the job, with
//! their ids, flushed when the service stops, and not one customer identifier among them.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use icp_store::test_support::TestDatabase;
use serde_json::{Value, json};

use crate::call_log::start_upstream;
use crate::child::{ChildConfig, ChildService};
use crate::common::segment_emails;
use crate::python_env::PythonNeed;

fn interop_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

fn python() -> String {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            PythonNeed {
                probe: "import opentelemetry.proto.collector.trace.v1.trace_service_pb2",
                requirements: &interop_dir().join("requirements.txt"),
                venv: "interop-venv",
            }
            .python()
        })
        .clone()
}

/// The receiver, running; killed when dropped.
struct Receiver {
    process: Child,
    port: u16,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    fn start() -> Self {
        let mut process = Command::new(python())
            .arg(interop_dir().join("otlp_receiver.py"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the OTLP receiver");
        let mut out = BufReader::new(process.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first)
            .expect("the receiver's first line");
        let port = first
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the receiver said {first:?}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in out.lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        Self {
            process,
            port,
            lines,
        }
    }

    fn spans(&self) -> Vec<Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_of_requests_jobs_and_stages_reach_an_otlp_receiver() {
    let receiver = Receiver::start();
    let db = TestDatabase::sqlite().await;
    let (_upstream, url, _handle) = start_upstream(Duration::ZERO).await;
    let mut config = ChildConfig::new(db.url(), &url);
    config.env.push((
        "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
        format!("http://127.0.0.1:{}", receiver.port),
    ));
    let output = Arc::new(Mutex::new(String::new()));
    let mut child = ChildService::start(&config, output.clone()).await;

    let (_, emails) = segment_emails(0, 200);
    let body = json!({
        "multi_identifiers": [{"id_type": "email", "hash_type": "plaintext", "values": emails}],
    });
    let response = child
        .client
        .post(child.url("/v1/jobs"))
        .header("x-request-id", "otel-4711")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let job = child.wait_for(&id, Duration::from_secs(120)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let workflow = job["workflow_id"].as_str().unwrap().to_owned();

    // Stopping flushes what the batch exporter still holds.
    child.terminate();
    let exited = child.exited_within(Duration::from_secs(60)).await;
    assert!(exited.is_some_and(|s| s.success()), "{}", child.log());
    // Every span was answered before the exporter returned; the receiver's lines may still be
    // on their way through its pipe.
    let wanted = |spans: &[Value]| {
        spans
            .iter()
            .filter(|s| s["name"] == "stage" && s["attributes"]["stage"] == "find")
            .count()
            > 0
    };
    let started = Instant::now();
    while !wanted(&receiver.spans()) && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let spans = receiver.spans();
    let text = receiver.lines.lock().unwrap().join("\n");
    assert!(
        spans.iter().all(|s| s.get("error").is_none()),
        "the receiver could not decode an export:\n{text}"
    );
    assert!(
        spans.iter().all(|s| s["service_name"] == "icp-service"),
        "{text}"
    );

    let request = spans
        .iter()
        .find(|s| s["name"] == "request" && s["attributes"]["request_id"] == "otel-4711")
        .unwrap_or_else(|| panic!("no request span:\n{text}"));
    assert_eq!(request["attributes"]["method"], "POST");
    assert_eq!(request["attributes"]["path"], "/v1/jobs");

    let job_span = spans
        .iter()
        .find(|s| s["name"] == "job" && s["attributes"]["job_id"] == id.as_str())
        .unwrap_or_else(|| panic!("no span of job {id}:\n{text}"));
    for stage in ["resolve_enrich", "analyze", "map", "find"] {
        let span = spans
            .iter()
            .find(|s| s["name"] == "stage" && s["attributes"]["stage"] == stage)
            .unwrap_or_else(|| panic!("no span of stage {stage}:\n{text}"));
        assert_eq!(
            span["parent_span_id"], job_span["span_id"],
            "{stage}: {text}"
        );
        assert_eq!(span["trace_id"], job_span["trace_id"], "{stage}");
        if stage != "resolve_enrich" {
            assert_eq!(
                span["attributes"]["workflow_id"],
                workflow.as_str(),
                "{stage}"
            );
        }
    }
    for email in &emails {
        assert!(!text.contains(email.as_str()), "an identifier was exported");
    }
}
