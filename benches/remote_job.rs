//! A whole job (all five stages, over HTTP) of N customer emails (default 100,000) with the
//! Watt Data MCP client as the provider, against a test upstream that answers every tool call
//! and every export download a fixed latency (default 100 ms) after it arrived, its own work
//! included (a call whose work takes longer is answered late by that much). The upstream serves
//! the embedded population (default 1,000,000 persons) over MCP from this same process.
//!
//! For each concurrency (the provider's: tool calls and export downloads in flight at once,
//! which the upstream's own count of the most it saw in flight confirms; the job offers more,
//! `BENCH_JOB_FACTOR` times as many, so that an answer being parsed or stored does not leave a
//! slot idle) it prints the
//! wall time POST → `succeeded`, the calls the upstream counted, the ideal
//! `calls ÷ concurrency × latency` and the ratio; then each stage's own time against its own
//! ideal, how long stages overlapped, and where the time outside the stages went. The same job on the embedded provider (no MCP, no latency) runs first, in the same
//! process: the CPU the job costs when the network costs nothing.
//!
//! `cargo bench --bench remote_job` (env: `BENCH_CUSTOMERS`, `BENCH_POPULATION`,
//! `BENCH_LATENCY_MS`, `BENCH_CONCURRENCY` as a comma list, default `4,8,16`;
//! `BENCH_JOB_FACTOR`, default 2: the job's concurrency as a multiple of the provider's).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use icp_contract::PopulationProvider;
use icp_mcp::bench_env::{env_list, env_or};
use icp_mcp::faults::{FaultConfig, FaultyUpstream};
use icp_mcp::{Secret, WattConfig, WattProvider};
use icp_population::{EmbeddedProvider, GeneratorConfig, Population};
use icp_server::config::{ServiceConfig, WorkerConfig};
use icp_store::Store;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The service binary's allocator, so the bench measures what `icp serve` runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const STAGES: [&str; 6] = ["resolve", "enrich", "analyze", "map", "find", "validate"];

struct JobRun {
    wall: Duration,
    /// Records exported per audience.
    exported: String,
    /// Seconds each stage took, from the job's own progress timestamps.
    stages: BTreeMap<&'static str, f64>,
    /// Tool calls each stage made, from the job's traces.
    calls: BTreeMap<String, u64>,
    /// Seconds outside the stages: the POST until it answered, from the job's creation until
    /// its first stage began, from the end of its last stage until it succeeded, between the
    /// stages; and how long stages overlapped (enrichment begins before resolve ends).
    outside: [f64; 5],
}

async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    let resp = client.get(url).send().await.expect("GET");
    resp.json().await.expect("a JSON answer")
}

async fn run_job(
    provider: Arc<dyn PopulationProvider>,
    enrich_concurrency: usize,
    emails: &[String],
) -> JobRun {
    let dir = std::env::temp_dir().join(format!("icp-bench-{}", uuid::Uuid::new_v4()));
    let store = Store::connect(&format!("sqlite://{}/icp.db", dir.display()))
        .await
        .expect("open the store");
    store.migrate().await.expect("migrate");
    let config = ServiceConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        worker: WorkerConfig {
            workers: 1,
            poll_interval: Duration::from_millis(10),
            enrich_concurrency,
            ..WorkerConfig::default()
        },
        ..ServiceConfig::default()
    };
    let service = icp_server::start(config, store, provider)
        .await
        .expect("start the service");
    let base = format!("http://{}", service.addr);
    let client = reqwest::Client::new();
    let body = json!({"multi_identifiers": [
        {"id_type": "email", "hash_type": "plaintext", "values": emails}
    ]});

    let started = Instant::now();
    let job: Value = client
        .post(format!("{base}/v1/jobs"))
        .json(&body)
        .send()
        .await
        .expect("POST /v1/jobs")
        .json()
        .await
        .expect("job");
    let posted = started.elapsed();
    let id = job["id"].as_str().expect("job id").to_owned();
    let job = loop {
        let job = get_json(&client, &format!("{base}/v1/jobs/{id}")).await;
        match job["status"].as_str() {
            Some("queued" | "running") => tokio::time::sleep(Duration::from_millis(20)).await,
            _ => break job,
        }
    };
    let wall = started.elapsed();
    assert_eq!(job["status"], "succeeded", "{job}");
    let result = get_json(&client, &format!("{base}/v1/jobs/{id}/result")).await;
    let exported = result["audiences"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|a| format!("{} {}", a["strategy"], a["exported"]))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    service.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);

    let at = |v: &Value| OffsetDateTime::parse(v.as_str().expect("timestamp"), &Rfc3339).unwrap();
    let stages = STAGES
        .iter()
        .map(|&s| {
            let p = &job["progress"][s];
            (
                s,
                (at(&p["finished_at"]) - at(&p["started_at"])).as_seconds_f64(),
            )
        })
        .collect();
    // Before the first stage: the POST's own handling and the wait for a worker to claim the
    // job; after the last: storing the result and the poll that sees it.
    let stage_at = |s: &str, field: &str| at(&job["progress"][s][field]);
    let gaps: Vec<f64> = STAGES
        .windows(2)
        .map(|w| (stage_at(w[1], "started_at") - stage_at(w[0], "finished_at")).as_seconds_f64())
        .collect();
    let outside = [
        posted.as_secs_f64(),
        (stage_at("resolve", "started_at") - at(&job["created_at"])).as_seconds_f64(),
        (at(&job["finished_at"]) - stage_at("validate", "finished_at")).as_seconds_f64(),
        gaps.iter().filter(|g| **g > 0.0).sum(),
        -gaps.iter().filter(|g| **g < 0.0).sum::<f64>(),
    ];
    let mut calls = BTreeMap::new();
    for trace in job["tool_traces"].as_array().into_iter().flatten() {
        let stage = trace["stage"].as_str().unwrap_or_default().to_owned();
        *calls.entry(stage).or_default() += 1;
    }
    JobRun {
        wall,
        exported,
        stages,
        calls,
        outside,
    }
}

fn print_stages(run: &JobRun) -> String {
    STAGES
        .iter()
        .map(|s| format!("{s} {:.2}", run.stages[s]))
        .collect::<Vec<_>>()
        .join(", ")
}

fn main() {
    let customers: usize = env_or("BENCH_CUSTOMERS", 100_000);
    let persons: usize = env_or("BENCH_POPULATION", 1_000_000);
    let latency = Duration::from_millis(env_or("BENCH_LATENCY_MS", 100));
    let concurrencies = env_list("BENCH_CONCURRENCY", "4,8,16");
    let job_factor: usize = env_or("BENCH_JOB_FACTOR", 2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let population = Arc::new(Population::generate(&GeneratorConfig {
            persons,
            ..GeneratorConfig::default()
        }));
        let emails: Vec<String> = population
            .sample_customers(customers, None, 1)
            .expect("customers")
            .into_iter()
            .filter_map(|c| c.email)
            .collect();
        let embedded: Arc<dyn PopulationProvider> =
            Arc::new(EmbeddedProvider::new(population.clone()));
        println!(
            "a job of {} customer emails on a population of {persons}",
            emails.len()
        );

        let local = run_job(embedded.clone(), WorkerConfig::default().enrich_concurrency, &emails)
            .await;
        println!(
            "embedded provider (no MCP, no latency): wall {:.2} s  [stages s: {}]  [exported: {}]",
            local.wall.as_secs_f64(),
            print_stages(&local),
            local.exported
        );

        println!("MCP client, {} ms per call and per export download:", latency.as_millis());
        for concurrency in concurrencies {
            let (addr, upstream) = FaultyUpstream::start(
                embedded.clone(),
                FaultConfig {
                    latency,
                    ..FaultConfig::default()
                },
            )
            .await
            .expect("upstream");
            let mut config = WattConfig::new(format!("http://{addr}/mcp"), Secret::new("bench"));
            config.concurrency = concurrency;
            let client: Arc<dyn PopulationProvider> =
                Arc::new(WattProvider::connect(config).await.expect("connect"));
            let run = run_job(client, job_factor * concurrency, &emails).await;

            let calls = upstream.calls();
            let downloads = upstream.export_downloads();
            let total = calls.values().sum::<u64>() + downloads;
            let ideal = latency.mul_f64(total as f64 / concurrency as f64);
            println!(
                "concurrency {concurrency:>2}: wall {:.2} s, {total} calls {calls:?} + {downloads} export downloads, \
                 ideal {:.2} s, ratio {:.2}, most in flight at the upstream {}",
                run.wall.as_secs_f64(),
                ideal.as_secs_f64(),
                run.wall.as_secs_f64() / ideal.as_secs_f64(),
                upstream.max_in_flight()
            );
            let mut per_stage = run.calls.clone();
            // Export downloads follow the find stage's `find_persons` calls.
            *per_stage.entry("find".to_owned()).or_default() += downloads;
            for stage in STAGES {
                let n = per_stage.get(stage).copied().unwrap_or(0);
                let ideal = latency.as_secs_f64() * n as f64 / concurrency as f64;
                println!(
                    "    {stage:<8} {:>6.2} s  ({n} calls, ideal {ideal:.2} s)",
                    run.stages[stage]
                );
            }
            let [post, queued, closing, between, overlap] = run.outside;
            let accounted =
                post + queued + closing + between - overlap + run.stages.values().sum::<f64>();
            println!(
                "    stages overlapping: {overlap:.2} s (enrichment under way before resolve \
                 ended)"
            );
            println!(
                "    outside the stages: POST answered in {post:.2} s, first stage {queued:.2} s \
                 after creation, {between:.2} s between stages, success {closing:.2} s after \
                 the last stage; {:.2} s not accounted for (the poll, the commit of the result)",
                run.wall.as_secs_f64() - accounted
            );
        }
    });
}
