//! Crash safety on the real binary: `icp serve` runs as a child process and is killed with
//! `SIGKILL` twenty times, each time while a chosen stage has a call out to the upstream; after
//! each restart the jobs go on. Every job must end with the result and the exports of an
//! undisturbed run of its request, and no work a checkpoint held at a kill may be done again.
//!
//! The kills are drawn from a seeded generator; the seed is printed, and `ICP_CRASH_SEED=<seed>`
//! replays a run's choices (the timing of the machine still varies).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use icp_store::test_support::TestDatabase;
use icp_store::{JobStatus, Store};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::call_log::{Call, TOOLS, start_upstream};
use crate::child::{ChildConfig, ChildService, Outcome, job_outcome, json_diff};
use crate::common::{job_body, segment_emails};
use crate::stored_work::{Durable, assert_units_match_calls, durable_work, per_tool};

const KILLS: usize = 20;
/// How long after it arrived the upstream answers each call: a call is out for this long, so a
/// kill soon after a call arrived lands in the middle of its stage.
const LATENCY: Duration = Duration::from_millis(150);
/// Jobs kept unfinished while the kills go on (as many as the child has workers).
const JOBS_IN_FLIGHT: usize = 3;

/// A job's request, and what its undisturbed run gave and called.
struct Request {
    body: Value,
    outcome: Outcome,
    /// Calls per tool of the undisturbed run.
    calls: BTreeMap<&'static str, u64>,
}

/// The requests the jobs are made of: two segments' customers, resolved in two calls each
/// (the first call of a job goes alone with 3,000 identifiers), enriched in four or five
/// batches, three audiences.
pub fn requests() -> Vec<Value> {
    let options = json!({"min_support": 0.05, "audience_limit": 2000});
    [(3, 4200), (1, 3600)]
        .into_iter()
        .map(|(segment, n)| job_body(&segment_emails(segment, n).1, options.clone()))
        .collect()
}

/// Jobs of `ids` not yet ended, as the child reports them.
async fn unfinished(child: &ChildService, ids: &[(Uuid, usize)]) -> usize {
    let mut n = 0;
    for (id, _) in ids {
        let job = child.get_json(&format!("/v1/jobs/{id}")).await;
        if matches!(job["status"].as_str(), Some("queued" | "running")) {
            n += 1;
        }
    }
    n
}

/// Stages the jobs were at in the database (the child is dead).
async fn stages_at_kill(store: &Store, ids: &[(Uuid, usize)]) -> Vec<String> {
    let mut stages = Vec::new();
    for (id, _) in ids {
        let job = store.get_job(*id, None).await.unwrap().unwrap();
        if matches!(job.status, JobStatus::Queued | JobStatus::Running) {
            stages.push(job.stage.map_or("queued", |s| s.as_str()).to_owned());
        }
    }
    stages
}

async fn killed_twenty_times(db: TestDatabase) {
    let backend = db.backend();
    let seed: u64 = std::env::var("ICP_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!("crash test on {backend:?}: seed {seed} (ICP_CRASH_SEED={seed} replays it)");
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();

    let (log, upstream_url, _upstream) = start_upstream(LATENCY).await;
    let config = ChildConfig {
        workers: JOBS_IN_FLIGHT,
        lease_secs: 1,
        ..ChildConfig::new(db.url(), &upstream_url)
    };
    let output = Arc::new(Mutex::new(String::new()));
    let store = db.store().await;

    // Run 1, undisturbed: each request's result, exports and calls.
    let run = log.next_run();
    let child = ChildService::start(&config, output.clone()).await;
    let mut references = Vec::new();
    for body in requests() {
        let id = child.post_job(&body).await;
        references.push((id, body));
    }
    let mut requests = Vec::new();
    let mut reference_ids = Vec::new();
    for (id, _) in &references {
        child.wait_for(id, Duration::from_secs(60)).await;
    }
    let calls = log.calls();
    for (id, body) in references {
        let job = child.wait_for(&id, Duration::from_secs(60)).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let workflow = job["workflow_id"].as_str().unwrap();
        let mine = calls
            .iter()
            .filter(|c| c.run == run && c.workflow == workflow);
        requests.push(Request {
            body,
            outcome: job_outcome(&child, &id).await,
            calls: per_tool(mine),
        });
        reference_ids.push(id.parse::<Uuid>().unwrap());
    }
    drop(child);
    let mut after_run: BTreeMap<usize, Durable> = BTreeMap::new();
    after_run.insert(run, durable_work(&store, &reference_ids).await);
    let undisturbed_secs = started.elapsed().as_secs_f64();

    // Twenty runs, each killed while a call of its chosen tool is out.
    let mut plan: Vec<(&str, usize)> = (0..KILLS)
        .map(|i| {
            let tool = TOOLS[i % TOOLS.len()];
            let nth = match tool {
                "get_person" | "find_persons" => rng.random_range(1..=3),
                _ => 1,
            };
            (tool, nth)
        })
        .collect();
    plan.shuffle(&mut rng);
    let mut jobs: Vec<(Uuid, usize)> = Vec::new();
    let mut kills = Vec::new();
    for (tool, nth) in plan {
        let run = log.next_run();
        let child = ChildService::start(&config, output.clone()).await;
        let waiting = Instant::now();
        let mut checked = Instant::now() - Duration::from_secs(1);
        while log.count(run, tool) < nth {
            assert!(
                waiting.elapsed() < Duration::from_secs(90),
                "run {run}: no {tool} call #{nth} within 90 s"
            );
            if checked.elapsed() >= Duration::from_millis(250) {
                checked = Instant::now();
                if unfinished(&child, &jobs).await < JOBS_IN_FLIGHT {
                    let which = jobs.len() % requests.len();
                    let id = child.post_job(&requests[which].body).await;
                    jobs.push((id.parse().unwrap(), which));
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Within the first half of the call's time out, so it is still out when the kill lands.
        let wait = rng.random_range(0..LATENCY.as_millis() as u64 / 2);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let mut child = child;
        child.kill();
        // What the dead child had sent reaches the upstream before the next run is counted.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let ids: Vec<Uuid> = reference_ids
            .iter()
            .copied()
            .chain(jobs.iter().map(|(id, _)| *id))
            .collect();
        after_run.insert(run, durable_work(&store, &ids).await);
        let stages = stages_at_kill(&store, &jobs).await;
        kills.push(format!(
            "run {run} ({:.1} s): killed {wait} ms after {tool} call #{nth} arrived; jobs at {stages:?}",
            waiting.elapsed().as_secs_f64()
        ));
    }

    let all_jobs: Vec<Uuid> = reference_ids
        .iter()
        .copied()
        .chain(jobs.iter().map(|(id, _)| *id))
        .collect();
    // The last run finishes every job.
    let last = log.next_run();
    let child = ChildService::start(&config, output.clone()).await;
    for (id, which) in &jobs {
        let job = child
            .wait_for(&id.to_string(), Duration::from_secs(120))
            .await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let outcome = job_outcome(&child, &id.to_string()).await;
        let reference = &requests[*which].outcome;
        let diff = json_diff(&outcome.0, &reference.0, 10);
        assert!(
            diff.is_empty(),
            "job {id}: the result differs from the undisturbed run's (seed {seed}):\n{}",
            diff.join("\n")
        );
        assert_eq!(outcome.1.len(), reference.1.len());
        for ((strategy, got), (_, want)) in outcome.1.iter().zip(&reference.1) {
            assert!(
                got == want,
                "job {id}: the {strategy} export differs from the undisturbed run's"
            );
        }
    }
    drop(child);

    let calls = log.calls();
    let lease_losses = output.lock().unwrap().matches("lease lost").count();
    eprintln!("leases lost while a child ran: {lease_losses}");
    for durable in after_run.values() {
        assert_units_match_calls(durable, &calls);
    }
    // No finished work redone: a call of run r asking for a unit the database held when run
    // r - 1 was killed (a resolve answer, an enrichment batch, an audience stored; clusters the
    // stored analysis holds; anything of a job that had ended) is a stage's work done twice.
    let redone: Vec<&Call> = calls
        .iter()
        .filter(|c| c.run > 1)
        .filter(|c| after_run[&(c.run - 1)].covers(c))
        .collect();
    assert!(
        redone.is_empty(),
        "{} calls redid work a checkpoint held: {:?}",
        redone.len(),
        redone.iter().take(5).collect::<Vec<_>>()
    );

    // And in numbers, per tool. Each run's calls are of two kinds. `kept`: the first call of
    // each exact request whose unit the database held when the run ended — work done once and
    // kept, which an undisturbed run of the same jobs does too (each of its calls once). `lost`:
    // the rest — the calls of the interrupted stages that were out, or answered but not yet
    // stored, when the kill came (the calls in flight of each kill), and any second call of a
    // request within one run (a worker taking over a job whose lease ran out under load). No
    // run redoes what an earlier one kept (asserted above), so kept calls are at most the
    // undisturbed ones, and per tool:
    //
    //     calls of runs 2..=last ≤ undisturbed calls of the same jobs + Σ lost over the runs
    //
    // A resumed job that cut its work into other calls than an undisturbed run does (other
    // batches, other audiences) would break it; equality is the usual case.
    after_run.insert(last, durable_work(&store, &all_jobs).await);
    let mut lost: BTreeMap<&str, u64> = TOOLS.iter().map(|t| (*t, 0)).collect();
    for r in 2..=last {
        let durable = &after_run[&r];
        let mut kept: HashSet<(&str, &str, &str)> = HashSet::new();
        for c in calls.iter().filter(|c| c.run == r) {
            let first_of_kept_unit =
                durable.covers(c) && kept.insert((c.workflow.as_str(), c.tool, c.key.as_str()));
            if !first_of_kept_unit {
                *lost.get_mut(c.tool).unwrap() += 1;
            }
        }
    }
    let total = per_tool(calls.iter().filter(|c| c.run > 1));
    let mut undisturbed: BTreeMap<&str, u64> = TOOLS.iter().map(|t| (*t, 0)).collect();
    for (_, which) in &jobs {
        for (tool, n) in &requests[*which].calls {
            *undisturbed.get_mut(tool).unwrap() += n;
        }
    }
    eprintln!(
        "crash test on {backend:?} (seed {seed}): {} jobs over {KILLS} kills and {} runs in {:.1} s \
         (undisturbed reference {undisturbed_secs:.1} s)\n  {}\n  calls {total:?}\n  \
         undisturbed {undisturbed:?}\n  lost {lost:?}",
        jobs.len(),
        last - 1,
        started.elapsed().as_secs_f64(),
        kills.join("\n  "),
    );
    for tool in TOOLS {
        assert!(
            total[tool] <= undisturbed[tool] + lost[tool],
            "{tool}: {} calls over the kills > {} undisturbed + {} lost",
            total[tool],
            undisturbed[tool],
            lost[tool]
        );
    }
    store.close().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kills_change_no_result_and_redo_no_stored_work_on_sqlite() {
    killed_twenty_times(TestDatabase::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kills_change_no_result_and_redo_no_stored_work_on_postgres() {
    let Some(db) = TestDatabase::postgres().await else {
        eprintln!(
            "ICP_TEST_DATABASE_URL is not set: the crash test on Postgres did not run (it runs \
             on SQLite)"
        );
        return;
    };
    killed_twenty_times(db).await;
}
