//! Resolve + enrich of N customers (default 100,000) through the MCP client against the fault
//! layer with a fixed latency per call (default 100 ms) and no failures, compared with the ideal
//! wall time `calls ÷ concurrency × latency`.
//!
//! `cargo bench -p icp-mcp --bench resolve_enrich` (env: `BENCH_PERSONS`, `BENCH_LATENCY_MS`,
//! `BENCH_CONCURRENCY` as a comma list, default `8,16`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use icp_contract::{
    ExportFormat, GetPersonRequest, GetPersonResponse, HashType, IdType, IdentifierGroup, PersonId,
    PopulationProvider, ResolveRequest,
};
use icp_mcp::bench_env::{env_list, env_or};
use icp_mcp::faults::{FaultConfig, FaultyUpstream};
use icp_mcp::testkit::SyntheticPopulation;
use icp_mcp::{Secret, WattConfig, WattProvider};

/// What parsing one `get_person` answer of 1000 profiles costs the client: through a generic
/// JSON-RPC message with a `Value` tree (what an SDK client such as rmcp does before the payload
/// can be typed) against the typed parse of the same bytes this client does.
async fn parse_cost(population: &SyntheticPopulation) {
    let answer = population
        .get_person(GetPersonRequest {
            person_ids: (1..=1000).map(PersonId).collect(),
            domains: None,
            format: None,
            workflow_id: Some("w".into()),
        })
        .await
        .expect("profiles");
    let payload = serde_json::to_string(&answer).expect("json");
    let text = serde_json::to_string(&payload).expect("json");
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":7,"result":{{"content":[{{"type":"text","text":{text}}}],"structuredContent":{payload},"isError":false}}}}"#
    );
    #[derive(serde::Deserialize)]
    struct Envelope {
        result: Result_,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Result_ {
        structured_content: GetPersonResponse,
    }
    const N: u32 = 30;
    let started = Instant::now();
    for _ in 0..N {
        let msg: serde_json::Value = serde_json::from_slice(body.as_bytes()).expect("parse");
        let structured = msg["result"]["structuredContent"].clone();
        let typed: GetPersonResponse = serde_json::from_value(structured).expect("typed");
        assert_eq!(typed.profiles.len(), 1000);
    }
    let via_value = started.elapsed() / N;
    let started = Instant::now();
    for _ in 0..N {
        let e: Envelope = serde_json::from_slice(body.as_bytes()).expect("typed parse");
        assert_eq!(e.result.structured_content.profiles.len(), 1000);
    }
    let direct = started.elapsed() / N;
    println!(
        "parse of one get_person answer ({} KiB, 1000 profiles): Value tree + typed {:.1} ms, \
         typed only {:.1} ms",
        body.len() / 1024,
        via_value.as_secs_f64() * 1e3,
        direct.as_secs_f64() * 1e3
    );
}

fn main() {
    let persons: u64 = env_or("BENCH_PERSONS", 100_000);
    let latency = Duration::from_millis(env_or("BENCH_LATENCY_MS", 100));
    let concurrencies = env_list("BENCH_CONCURRENCY", "8,16");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let population = Arc::new(SyntheticPopulation::new(persons));
        parse_cost(&population).await;
        let emails: Vec<String> = (1..=persons).map(|i| format!("p{i}@example.com")).collect();
        println!(
            "resolve+enrich {persons} customers, {} ms per call, no faults",
            latency.as_millis()
        );
        for concurrency in concurrencies {
            let provider: Arc<dyn PopulationProvider> = population.clone();
            let (addr, upstream) = FaultyUpstream::start(
                provider,
                FaultConfig {
                    latency,
                    ..FaultConfig::default()
                },
            )
            .await
            .expect("upstream");
            let mut cfg = WattConfig::new(format!("http://{addr}/mcp"), Secret::new("bench"));
            cfg.concurrency = concurrency;
            cfg.timeout = Duration::from_secs(60);
            let client = WattProvider::connect(cfg).await.expect("connect");

            let started = Instant::now();
            let resolved = client
                .resolve_identities(ResolveRequest {
                    multi_identifiers: vec![IdentifierGroup {
                        id_type: IdType::Email,
                        hash_type: HashType::Plaintext,
                        values: emails.clone(),
                    }],
                    format: Some(ExportFormat::Jsonl),
                    workflow_id: None,
                })
                .await
                .expect("resolve");
            let resolve_time = started.elapsed();
            let ids: Vec<PersonId> = resolved.identities.iter().map(|i| i.person_id).collect();
            let profiles = client
                .get_persons_batched(&ids, None, resolved.workflow_id.clone())
                .await
                .expect("enrich");
            let wall = started.elapsed();
            assert_eq!(profiles.profiles.len() as u64, persons);

            let calls = upstream.total_calls() + upstream.export_downloads();
            let ideal = latency.mul_f64(calls as f64 / concurrency as f64);
            println!(
                "concurrency {concurrency:>3}: {calls} calls ({:?}, {} export downloads), wall {:.3} s \
                 (resolve {:.3} s), ideal {:.3} s, ratio {:.2}",
                upstream.calls(),
                upstream.export_downloads(),
                wall.as_secs_f64(),
                resolve_time.as_secs_f64(),
                ideal.as_secs_f64(),
                wall.as_secs_f64() / ideal.as_secs_f64()
            );
        }
    });
}
