//! The client under the faults remote APIs have: same answers, bounded extra calls.

mod common;

use std::time::{Duration, Instant};

use common::{KEY, audience, client_config, normalized, start};
use icp_contract::*;
use icp_mcp::faults::{FaultConfig, FaultKind};
use icp_mcp::{Secret, WattProvider};
use serde_json::{Value, json};

const PERSONS: u64 = 12_000;
const JOBS: usize = 4;

/// A job's worth of calls: resolve, enrich, map, find, export, feedback. Returns every answer
/// (normalised) so two runs can be compared.
async fn workload(c: &WattProvider) -> Vec<Value> {
    let mut out = Vec::new();
    let resolve = ResolveRequest {
        multi_identifiers: vec![
            IdentifierGroup {
                id_type: IdType::Email,
                hash_type: HashType::Plaintext,
                values: (1..=PERSONS).map(|i| format!("p{i}@example.com")).collect(),
            },
            IdentifierGroup {
                id_type: IdType::Address,
                hash_type: HashType::Plaintext,
                values: (1..=300).map(|i| format!("{i} Main St")).collect(),
            },
        ],
        format: Some(ExportFormat::Jsonl),
        workflow_id: None,
    };
    let resolved = c.resolve_identities(resolve).await.unwrap();
    let workflow = resolved.workflow_id.clone();
    let ids: Vec<PersonId> = resolved.identities.iter().map(|i| i.person_id).collect();
    out.push(normalized(&resolved));
    let profiles = c
        .get_persons_batched(&ids, None, workflow.clone())
        .await
        .unwrap();
    out.push(normalized(&profiles));
    let clusters = c
        .list_clusters_all(ListClustersRequest {
            limit: Some(2),
            workflow_id: workflow.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    out.push(normalized(&clusters));
    for cl in clusters.clusters.iter().take(4) {
        let one = c
            .get_cluster(GetClusterRequest {
                cluster_hash: Some(cl.cluster_hash.clone()),
                workflow_id: workflow.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        out.push(normalized(&one));
    }
    let h = |i: usize| clusters.clusters[i].cluster_hash.clone();
    let find = FindPersonsRequest {
        expression: format!("{} AND {}", h(0), h(2)),
        identifier_type: Some(IdType::Email),
        location: None,
        audience_limit: None,
        format: None,
        workflow_id: workflow.clone(),
    };
    out.push(normalized(&c.find_persons(find.clone()).await.unwrap()));
    out.push(serde_json::to_value(audience(c, find).await).unwrap());
    let fb = c
        .submit_feedback(FeedbackRequest {
            workflow_id: workflow,
            tool_trace_ids: vec![],
            rating: Some(5),
            message: "fine".into(),
        })
        .await
        .unwrap();
    out.push(normalized(&fb));
    out
}

/// A fault of `kind` on the first tool call or download, and none after.
fn first_fails(kind: FaultKind) -> FaultConfig {
    FaultConfig {
        fail_first: 1,
        kinds: vec![kind],
        ..FaultConfig::default()
    }
}

fn cluster(id: &str) -> GetClusterRequest {
    GetClusterRequest {
        cluster_id: Some(id.to_owned()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_20_percent_faults_every_answer_is_the_same_within_1_5x_calls() {
    let clean = start(PERSONS, FaultConfig::default()).await;
    // Four jobs' worth, so that every kind of fault gets its turn.
    let mut expected = Vec::new();
    for _ in 0..JOBS {
        expected.extend(workload(&clean.client).await);
    }
    let clean_calls = clean.handle.total_calls();
    assert_eq!(
        clean.client.stats().retries,
        0,
        "{:?}",
        clean.client.stats()
    );

    let faulty = start(
        PERSONS,
        FaultConfig {
            seed: 20,
            failure_rate: 0.2,
            kinds: FaultKind::ALL.to_vec(),
            retry_after: Duration::ZERO,
            hang: Duration::from_secs(4),
            ..FaultConfig::default()
        },
    )
    .await;
    let mut got = Vec::new();
    for _ in 0..JOBS {
        got.extend(workload(&faulty.client).await);
    }
    assert_eq!(got, expected);
    let faulty_calls = faulty.handle.total_calls();
    let injected = faulty.handle.faults();
    eprintln!(
        "fault-free calls {clean_calls}, with faults {faulty_calls}, injected {injected:?}, client {:?}",
        faulty.client.stats()
    );
    // Every kind of fault really happened, or the test proves less than it claims.
    for kind in FaultKind::ALL {
        assert!(
            injected.get(&kind).copied().unwrap_or(0) > 0,
            "no {kind:?} injected"
        );
    }
    assert!(
        faulty_calls as f64 <= 1.5 * clean_calls as f64,
        "{faulty_calls} calls against {clean_calls} fault-free"
    );
}

#[tokio::test]
async fn a_validation_error_is_never_retried() {
    let up = start(100, FaultConfig::default()).await;
    let err = up
        .client
        .find_persons(FindPersonsRequest {
            expression: "AND OR".into(),
            identifier_type: None,
            location: None,
            audience_limit: None,
            format: None,
            workflow_id: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Validation { .. }), "{err:?}");
    assert_eq!(up.handle.calls().get("find_persons"), Some(&1));
    assert_eq!(up.client.stats().retries, 0);

    // Too many ids is refused before any call is made.
    let ids: Vec<PersonId> = (1..=1001).map(PersonId).collect();
    let err = up
        .client
        .get_person(GetPersonRequest {
            person_ids: ids,
            domains: None,
            format: None,
            workflow_id: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Validation { .. }));
    assert_eq!(up.handle.calls().get("get_person"), None);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let up = start(
        100,
        FaultConfig {
            retry_after: Duration::from_secs(1),
            ..first_fails(FaultKind::RateLimited)
        },
    )
    .await;
    let started = Instant::now();
    up.client.get_cluster(cluster("1000000000")).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(up.client.stats().retries, 1);
    assert_eq!(up.handle.calls().get("get_cluster"), Some(&2));
}

#[tokio::test]
async fn a_lost_session_is_reopened_and_the_call_replayed() {
    let up = start(100, first_fails(FaultKind::LostSession)).await;
    let got = up.client.get_cluster(cluster("1000000000")).await.unwrap();
    assert_eq!(got.cluster.cluster_id, "1000000000");
    assert_eq!(up.handle.faults().get(&FaultKind::LostSession), Some(&1));
    assert_eq!(up.handle.calls().get("get_cluster"), Some(&2));
}

#[tokio::test]
async fn an_expired_export_reruns_the_request() {
    let up = start(2_000, first_fails(FaultKind::ExpiredExport)).await;
    let find = FindPersonsRequest {
        expression: "1000000000 OR 1000000011".into(),
        identifier_type: Some(IdType::Address),
        location: None,
        audience_limit: None,
        format: None,
        workflow_id: None,
    };
    let got = audience(&up.client, find.clone()).await;
    let want = audience(up.direct.as_ref(), find).await;
    assert_eq!(got, want);
    assert_eq!(up.client.stats().export_reruns, 1);
    assert_eq!(up.handle.export_downloads(), 2);
    assert_eq!(up.handle.calls().get("find_persons"), Some(&2));
}

#[tokio::test]
async fn a_wrong_key_fails_at_connect_and_is_not_retried() {
    let up = start(10, FaultConfig::default()).await;
    let mut cfg = up.cfg.clone();
    cfg.api_key = Secret::new("wrong");
    let err = WattProvider::connect(cfg).await.unwrap_err();
    assert!(matches!(err, ProviderError::Unauthorized { .. }), "{err:?}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn batching_respects_the_call_limits() {
    let mut up = start(5_000, FaultConfig::default()).await;
    // Calls of 150,000 values take a while in a debug build on a shared machine.
    up.cfg.timeout = Duration::from_secs(60);
    let client = WattProvider::connect(up.cfg.clone()).await.unwrap();
    let c = &client;
    let r = c
        .resolve_identities(ResolveRequest {
            multi_identifiers: vec![
                IdentifierGroup {
                    id_type: IdType::Email,
                    hash_type: HashType::Plaintext,
                    values: (1..=160_000).map(|i| format!("p{i}@example.com")).collect(),
                },
                IdentifierGroup {
                    id_type: IdType::Address,
                    hash_type: HashType::Plaintext,
                    values: (1..=10).map(|i| format!("{i} Main St")).collect(),
                },
            ],
            format: None,
            workflow_id: None,
        })
        .await
        .unwrap();
    // 54 email groups of ≤ 3000 → 2 calls of ≤ 50 groups; the addresses → a call of their own.
    assert_eq!(up.handle.calls().get("resolve_identities"), Some(&3));
    assert_eq!(r.identities.len(), 5_000);
    assert_eq!(r.stats.requested, 160_010);
    assert_eq!(r.stats.resolved, 5_010);
    let ids: Vec<PersonId> = (1..=2_500).map(PersonId).collect();
    let p = c.get_persons_batched(&ids, None, None).await.unwrap();
    assert_eq!(p.profiles.len(), 2_500);
    assert!(
        p.profiles
            .iter()
            .map(|p| p.person_id)
            .eq(ids.iter().copied())
    );
    assert_eq!(up.handle.calls().get("get_person"), Some(&3));
    let all = c
        .list_clusters_all(ListClustersRequest {
            limit: Some(3),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.clusters.len() as u64, all.total);
    assert_eq!(
        up.handle.calls().get("list_clusters"),
        Some(&all.total.div_ceil(3))
    );
}

/// The key shows in no `Debug` output and in no log line, even at TRACE with retries happening.
#[test]
fn the_key_never_appears_in_debug_or_logs() {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let up = start(
            50,
            FaultConfig {
                failure_rate: 0.5,
                kinds: vec![FaultKind::ServerError, FaultKind::LostSession],
                ..FaultConfig::default()
            },
        )
        .await;
        for id in [
            "1000000000",
            "1000000001",
            "1000000010",
            "1000000011",
            "1000000012",
        ] {
            up.client.get_cluster(cluster(id)).await.unwrap();
        }
        assert!(up.client.stats().retries > 0 || !up.handle.faults().is_empty());
        let shown = format!(
            "{:?} {:?} {:?}",
            up.client,
            up.cfg,
            client_config("http://x".into())
        );
        assert!(!shown.contains(KEY), "{shown}");
    });
    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(!logs.is_empty(), "the test must see the logs it checks");
    assert!(!logs.contains(KEY), "key leaked into logs");
}

/// The server side, spoken to by hand: handshake, sessions, tool list, errors, export expiry.
#[tokio::test]
async fn the_server_speaks_streamable_http() {
    let up = start(
        100,
        FaultConfig {
            serve: icp_mcp::ServeConfig {
                export_ttl: Duration::from_millis(300),
                ..Default::default()
            },
            ..FaultConfig::default()
        },
    )
    .await;
    let url = up.cfg.url.clone();
    let http = reqwest::Client::new();
    let post = |body: Value, session: Option<String>| {
        let mut r = http
            .post(&url)
            .bearer_auth(KEY)
            .header("accept", "application/json, text/event-stream")
            .json(&body);
        if let Some(s) = session {
            r = r.header("mcp-session-id", s);
        }
        r.send()
    };
    let init = post(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}),
        None,
    )
    .await
    .unwrap();
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let init: Value = init.json().await.unwrap();
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
    let note = post(
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        Some(session.clone()),
    )
    .await
    .unwrap();
    assert_eq!(note.status(), 202);

    let list: Value = post(
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        Some(session.clone()),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, icp_mcp::TOOL_NAMES);
    assert!(
        list["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["inputSchema"]["type"] == "object")
    );

    let unknown: Value = post(
        json!({"jsonrpc": "2.0", "id": 3, "method": "nope"}),
        Some(session.clone()),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(unknown["error"]["code"], -32601);
    let bad_tool: Value = post(json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "drop_table"}}), Some(session.clone()))
        .await.unwrap().json().await.unwrap();
    assert_eq!(bad_tool["error"]["code"], -32602);
    let bad_args: Value = post(json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "get_person", "arguments": {"person_ids": "x"}}}), Some(session.clone()))
        .await.unwrap().json().await.unwrap();
    assert_eq!(bad_args["result"]["isError"], true);
    assert_eq!(
        bad_args["result"]["structuredContent"]["error"]["kind"],
        "validation"
    );

    assert_eq!(
        post(json!({"jsonrpc": "2.0", "id": 6, "method": "ping"}), None)
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        post(
            json!({"jsonrpc": "2.0", "id": 7, "method": "ping"}),
            Some("gone".into())
        )
        .await
        .unwrap()
        .status(),
        404
    );
    let no_key = http
        .post(&url)
        .json(&json!({"jsonrpc": "2.0", "id": 8, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 401);

    let found: Value = post(
        json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "find_persons",
        "arguments": {"expression": "1000000000", "format": "csv"}}}),
        Some(session.clone()),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let payload = &found["result"]["structuredContent"];
    assert_eq!(
        found["result"]["content"][0]["text"]
            .as_str()
            .map(|t| serde_json::from_str::<Value>(t).unwrap()),
        Some(payload.clone())
    );
    let export_url = payload["export"]["url"].as_str().unwrap().to_owned();
    let csv = http.get(&export_url).send().await.unwrap();
    assert_eq!(csv.status(), 200);
    assert!(csv.text().await.unwrap().starts_with("person_id,email1\n"));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(http.get(&export_url).send().await.unwrap().status(), 410);

    let end = http
        .delete(&url)
        .bearer_auth(KEY)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(end.status(), 204);
    assert_eq!(
        post(
            json!({"jsonrpc": "2.0", "id": 10, "method": "ping"}),
            Some(session)
        )
        .await
        .unwrap()
        .status(),
        404
    );
}
