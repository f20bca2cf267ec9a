//! The service with the Watt Data MCP client as its provider, pointed at the embedded population
//! served over MCP (`icp mcp-serve`'s router), behind a test upstream that can inject faults.
//! The ICP and the audiences must equal those of the embedded provider, with or without faults.

use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use icp_contract::PopulationProvider;
use icp_mcp::faults::{FaultConfig, FaultyUpstream, FaultyUpstreamHandle};
use icp_population::EmbeddedProvider;

async fn remote(faults: FaultConfig) -> (Arc<dyn PopulationProvider>, FaultyUpstreamHandle) {
    let embedded: Arc<dyn PopulationProvider> = Arc::new(EmbeddedProvider::new(population()));
    let (addr, handle) = FaultyUpstream::start(embedded, faults)
        .await
        .expect("start the test upstream");
    (watt_provider(&format!("http://{addr}/mcp")).await, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_provider_gives_the_embedded_result_even_at_20_percent_faults() {
    let db = || async { databases().await.remove(0) };

    let app = spawn_app(db().await).await;
    let (embedded, _) = run_normalized_job(&app, 1200).await;
    app.shutdown().await;
    assert!(
        embedded.get("ranked").is_some(),
        "the embedded job ranked no tiers"
    );
    let embedded = without_ranked(embedded);

    let (provider, clean) = remote(FaultConfig::default()).await;
    let app = spawn_app_over(db().await, provider).await;
    let (over_mcp, traces) = run_normalized_job(&app, 1200).await;
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
    // Each under the stage of its tool, though resolve and enrich overlap.
    for t in &traces {
        let stages: &[&str] = match t["tool"].as_str().unwrap() {
            "resolve_identities" => &["resolve"],
            "get_person" => &["enrich", "validate"],
            "list_clusters" => &["analyze", "map"],
            // The planner counts candidate audiences; the find stage exports them.
            "find_persons" => &["analyze", "find"],
            other => panic!("unexpected tool {other}: {traces:?}"),
        };
        assert!(stages.iter().any(|s| t["stage"] == *s), "{t}");
    }

    let faults = FaultConfig {
        seed: 20,
        failure_rate: 0.2,
        hang: Duration::from_secs(3),
        retry_after: Duration::from_secs(1),
        ..FaultConfig::default()
    };
    let (provider, faulty) = remote(faults).await;
    let app = spawn_app_over(db().await, provider).await;
    let (under_faults, _) = run_normalized_job(&app, 1200).await;
    app.shutdown().await;
    assert_eq!(under_faults, embedded, "faults changed the result");
    assert!(!faulty.faults().is_empty(), "no fault was injected");
    let calls = faulty.total_calls();
    assert!(
        calls as f64 <= 1.5 * fault_free_calls as f64,
        "{calls} calls under 20% faults against {fault_free_calls} fault-free (limit 1.5×)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_job_lists_no_cluster_the_first_one_listed() {
    let (provider, upstream) = remote(FaultConfig::default()).await;
    let app = spawn_app_over(databases().await.remove(0), provider).await;
    let listings = |traces: &[serde_json::Value]| {
        traces
            .iter()
            .filter(|t| t["tool"] == "list_clusters")
            .count() as u64
    };
    let (first, first_traces) = run_normalized_job(&app, 1200).await;
    let after_first = upstream.calls();
    let (second, second_traces) = run_normalized_job(&app, 1200).await;
    let after_second = upstream.calls();
    app.shutdown().await;
    eprintln!("upstream calls: first job {after_first:?}, both jobs {after_second:?}");

    assert_eq!(second, first, "the cached clusters changed the result");
    assert!(listings(&first_traces) > 0);
    assert_eq!(listings(&first_traces), after_first["list_clusters"]);
    assert_eq!(listings(&second_traces), 0, "{second_traces:?}");
    assert_eq!(after_second["list_clusters"], after_first["list_clusters"]);
    // Every other call is made again: only the listing is kept.
    for tool in ["resolve_identities", "get_person", "find_persons"] {
        assert_eq!(after_second[tool], 2 * after_first[tool], "{tool}");
    }
}
