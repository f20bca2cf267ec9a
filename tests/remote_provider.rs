//! The service with the Watt Data MCP client as its provider, pointed at the embedded population
//! served over MCP (`icp mcp-serve`'s router), behind a test upstream that can inject faults.
//! The ICP and the audiences must equal those of the embedded provider, with or without faults.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use icp_contract::PopulationProvider;
use icp_mcp::faults::{FaultConfig, FaultyUpstream, FaultyUpstreamHandle};
use icp_mcp::{Secret, WattConfig, WattProvider};
use icp_population::EmbeddedProvider;
use serde_json::{Value, json};

const JOB_TIMEOUT: Duration = Duration::from_secs(180);

async fn remote(faults: FaultConfig) -> (Arc<dyn PopulationProvider>, FaultyUpstreamHandle) {
    let embedded: Arc<dyn PopulationProvider> = Arc::new(EmbeddedProvider::new(population()));
    let (addr, handle) = FaultyUpstream::start(embedded, faults)
        .await
        .expect("start the test upstream");
    let mut config = WattConfig::new(format!("http://{addr}/mcp"), Secret::new("test-key"));
    config.timeout = Duration::from_secs(2);
    config.backoff_base = Duration::from_millis(20);
    config.backoff_cap = Duration::from_millis(200);
    config.max_retries = 8;
    let provider = WattProvider::connect(config)
        .await
        .expect("connect to the test upstream");
    (Arc::new(provider), handle)
}

/// Runs one job and returns its result without what legitimately differs between runs
/// (ids, workflow ids and the samples drawn for them), and the job's provider traces.
async fn run_job(app: &TestApp) -> (Value, Vec<Value>) {
    let (_, emails) = segment_emails(3, 1200);
    let body = job_body(
        &emails,
        json!({"min_support": 0.05, "audience_limit": 2000}),
    );
    let job: Value = app.post_json("/v1/jobs", &body).await.json().await.unwrap();
    let id = job["id"].as_str().unwrap().to_owned();
    let job = app.wait_for(&id, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let mut result: Value = app
        .get(&format!("/v1/jobs/{id}/result"))
        .await
        .json()
        .await
        .unwrap();
    let obj = result.as_object_mut().unwrap();
    obj.remove("job_id");
    obj.remove("workflow_id");
    for audience in obj["audiences"].as_array_mut().unwrap() {
        let a = audience.as_object_mut().unwrap();
        a.remove("sample");
        a.remove("exports");
    }
    let traces = job["tool_traces"].as_array().cloned().unwrap_or_default();
    (result, traces)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_provider_gives_the_embedded_result_even_at_20_percent_faults() {
    let db = || async { databases().await.remove(0) };

    let app = spawn_app(db().await).await;
    let (embedded, _) = run_job(&app).await;
    app.shutdown().await;

    let (provider, clean) = remote(FaultConfig::default()).await;
    let app = spawn_app_with(
        db().await,
        AppOptions {
            workers: 2,
            provider: Some(provider),
            // Several resolve calls (the embedded run makes one): same result, one workflow.
            resolve_chunk: Some(500),
        },
    )
    .await;
    let (over_mcp, traces) = run_job(&app).await;
    app.shutdown().await;
    assert_eq!(over_mcp, embedded, "the MCP round trip changed the result");
    let fault_free_calls = clean.total_calls();
    assert!(fault_free_calls > 0);
    // Every tool call the upstream answered is in the job's detail, with its stage — the
    // exports' own `find_persons` calls included.
    let mut traced: std::collections::BTreeMap<String, u64> = Default::default();
    for t in &traces {
        *traced
            .entry(t["tool"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(traced, clean.calls(), "traces {traces:?}");
    assert!(
        traces
            .iter()
            .any(|t| t["tool"] == "find_persons" && t["stage"] == "find")
    );

    let faults = FaultConfig {
        seed: 20,
        failure_rate: 0.2,
        hang: Duration::from_secs(3),
        retry_after: Duration::from_secs(1),
        ..FaultConfig::default()
    };
    let (provider, faulty) = remote(faults).await;
    let app = spawn_app_with(
        db().await,
        AppOptions {
            workers: 2,
            provider: Some(provider),
            // Several resolve calls (the embedded run makes one): same result, one workflow.
            resolve_chunk: Some(500),
        },
    )
    .await;
    let (under_faults, _) = run_job(&app).await;
    app.shutdown().await;
    assert_eq!(under_faults, embedded, "faults changed the result");
    assert!(!faulty.faults().is_empty(), "no fault was injected");
    let calls = faulty.total_calls();
    assert!(
        calls as f64 <= 1.5 * fault_free_calls as f64,
        "{calls} calls under 20% faults against {fault_free_calls} fault-free (limit 1.5×)"
    );
}
