//! `ICP_LOG_FORMAT=json`: the real binary logs one JSON object a line, each with the spans it
//! sits in, so a log pipeline can find everything one request or one job logged: the request
//! by the id its client got back (`x-request-id`), the job by its id, each stage by name with
//! the job's workflow id.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use icp_store::test_support::TestDatabase;
use serde_json::{Value, json};

use crate::call_log::start_upstream;
use crate::child::{ChildConfig, ChildService};
use crate::common::segment_emails;

/// The spans of a JSON log line, by name (the innermost of a name wins).
fn spans(line: &Value) -> Vec<&Value> {
    line["spans"]
        .as_array()
        .map(|s| s.iter().collect())
        .unwrap_or_default()
}

fn in_span<'a>(line: &'a Value, name: &str) -> Option<&'a Value> {
    spans(line).into_iter().rev().find(|s| s["name"] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_request_id_the_job_and_its_stages() {
    let db = TestDatabase::sqlite().await;
    let (_upstream, url, _handle) = start_upstream(Duration::ZERO).await;
    let mut config = ChildConfig::new(db.url(), &url);
    config.log_format = Some("json".to_owned());
    let output = Arc::new(Mutex::new(String::new()));
    let child = ChildService::start(&config, output.clone()).await;

    let (_, emails) = segment_emails(0, 200);
    let body = json!({
        "multi_identifiers": [{"id_type": "email", "hash_type": "plaintext", "values": emails}],
    });
    let response = child
        .client
        .post(child.url("/v1/jobs"))
        .header("x-request-id", "dashboard-4711")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["x-request-id"], "dashboard-4711");
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let job = child.wait_for(&id, Duration::from_secs(120)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let workflow = job["workflow_id"].as_str().unwrap().to_owned();
    // The job's last lines are written as it ends; give them a moment to arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let log = output.lock().unwrap().clone();
    let mut lines = Vec::new();
    for text in log.lines() {
        // The one plain line is the banner the binary prints for whoever started it.
        if text.starts_with("icp-service listening on") {
            continue;
        }
        let line: Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {text}"));
        assert!(
            line["level"].is_string() && line["timestamp"].is_string(),
            "{text}"
        );
        lines.push(line);
    }

    let request = lines
        .iter()
        .find(|l| in_span(l, "request").is_some_and(|s| s["request_id"] == "dashboard-4711"));
    let request = request.unwrap_or_else(|| panic!("no line of the request:\n{log}"));
    let span = in_span(request, "request").unwrap();
    assert_eq!(span["method"], "POST");
    assert_eq!(span["path"], "/v1/jobs");

    for stage in ["resolve_enrich", "analyze", "map", "find"] {
        let found = lines.iter().any(|l| {
            in_span(l, "job").is_some_and(|s| s["job_id"] == id.as_str())
                && in_span(l, "stage").is_some_and(|s| {
                    s["stage"] == stage
                        && (stage == "resolve_enrich" || s["workflow_id"] == workflow.as_str())
                })
        });
        assert!(found, "no line of stage {stage} of job {id}:\n{log}");
    }
    drop(child);
}
