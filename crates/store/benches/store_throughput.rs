//! Storage throughput: job creation, claim + complete by concurrent workers, and `get_job`
//! latency, on SQLite (always) and Postgres (when `ICP_TEST_DATABASE_URL` is set).
//!
//! Bounded by job count, not time: `ICP_BENCH_JOBS` (default 2000) jobs, `ICP_BENCH_WORKERS`
//! (default 4) claimers, `ICP_BENCH_READS` (default 5000) reads.
//!
//! ```text
//! ICP_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo bench -p icp-store --features test-support --bench store_throughput
//! ```

use std::time::{Duration, Instant};

use icp_store::test_support::TestDatabase;
use icp_store::{NewJob, Store};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(60);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn new_job(i: usize) -> NewJob {
    NewJob {
        id: Uuid::new_v4(),
        owner: Some("bench".to_owned()),
        options: json!({ "strategies": ["precision", "reach", "hybrid"], "min_quality_score": 0.5 }),
        progress: json!({}),
        input: json!({ "emails": (0..100).map(|n| format!("person{n}-{i}@example.com")).collect::<Vec<_>>() }),
        idempotency_key: Some(format!("key-{i}")),
        request_hash: format!("{i:064x}"),
        expires_at: OffsetDateTime::now_utc() + time::Duration::days(1),
    }
}

/// Claim + complete until the queue is empty, `workers` at a time. Returns jobs done.
async fn drain(store: &Store, workers: usize) -> usize {
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let worker = format!("bench-{w}");
                let mut done = 0;
                while let Some((_, lease)) = store.claim_next(&worker, LEASE).await.expect("claim")
                {
                    store
                        .complete(&lease, json!({ "audience": { "total": 1234 } }))
                        .await
                        .expect("complete");
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut done = 0;
    for handle in handles {
        done += handle.await.expect("worker task");
    }
    done
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn main() {
    let jobs = env_usize("ICP_BENCH_JOBS", 2000);
    let workers = env_usize("ICP_BENCH_WORKERS", 4);
    let reads = env_usize("ICP_BENCH_READS", 5000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    runtime.block_on(async {
        for db in TestDatabase::all().await {
            let store = db.store().await;
            let backend = db.backend();

            let started = Instant::now();
            let mut ids = Vec::with_capacity(jobs);
            for i in 0..jobs {
                ids.push(store.create_job(new_job(i)).await.expect("create").job.id);
            }
            let create = started.elapsed();

            let started = Instant::now();
            let done = drain(&store, workers).await;
            let drain_time = started.elapsed();
            assert_eq!(done, jobs, "every job claimed and completed exactly once");

            let mut latencies = Vec::with_capacity(reads);
            for i in 0..reads {
                let id = ids[(i * 7919) % ids.len()];
                let started = Instant::now();
                let job = store.get_job(id, Some("bench")).await.expect("get");
                latencies.push(started.elapsed());
                assert!(job.is_some());
            }
            latencies.sort();
            let mean = latencies.iter().sum::<Duration>() / reads as u32;

            println!(
                "{backend:?}: create {jobs} jobs sequentially: {:.0} jobs/s | claim+complete, \
                 {workers} workers: {:.0} jobs/s ({:.2} s) | get_job x{reads}: mean {:?}, p50 {:?}, \
                 p99 {:?}",
                jobs as f64 / create.as_secs_f64(),
                jobs as f64 / drain_time.as_secs_f64(),
                drain_time.as_secs_f64(),
                mean,
                percentile(&latencies, 0.50),
                percentile(&latencies, 0.99),
            );
            store.close().await;
        }
    });
}
