//! Load: 1,000 small jobs posted by 50 clients at once all finish, none lost, none run twice,
//! each with the result an undisturbed run of the same list gives — on every configured backend.
//! Clients behave as the API asks: an `Idempotency-Key` on every post, and a refused post (429,
//! 503) made again after `Retry-After`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::*;
use icp_contract::{GetPersonRequest, ProviderError, ResolveRequest};
use icp_store::test_support::TestDatabase;
use serde_json::{Value, json};

const CLIENTS: usize = 50;
const JOBS_PER_CLIENT: usize = 20;
/// Distinct customer lists the jobs are drawn from (job `n` posts list `n % LISTS`).
const LISTS: usize = 10;
/// How long the whole load may take before the test gives up on it (a bound, not a measure).
const LOAD_TIMEOUT: Duration = Duration::from_secs(240);

/// Counts the provider calls that do per-job work: a job run twice, even in part, calls again.
#[derive(Default)]
pub struct Calls {
    pub resolves: AtomicUsize,
    pub enrichments: AtomicUsize,
}

impl Calls {
    fn now(&self) -> (usize, usize) {
        (
            self.resolves.load(Ordering::SeqCst),
            self.enrichments.load(Ordering::SeqCst),
        )
    }
}

impl Tap for Calls {
    fn on_resolve(&self, _req: &ResolveRequest) -> Result<(), ProviderError> {
        self.resolves.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn on_get_person(&self, _req: &GetPersonRequest) -> Result<(), ProviderError> {
        self.enrichments.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Small list `i`: 30 to 57 customers of one segment, a seed of its own.
pub fn small_list(i: usize) -> Value {
    let pop = population();
    let segments = pop.segments();
    let name = segments[i % segments.len()].name.clone();
    let emails: Vec<String> = pop
        .sample_customers(30 + 3 * i, Some(&name), 100 + i as u64)
        .expect("sample customers")
        .into_iter()
        .filter_map(|c| c.email)
        .collect();
    job_body(
        &emails,
        // The queue under load, not the ranking (each ranked job stores a tenth of the
        // population) nor the validation: `ranked.rs` and `validation.rs` cover those.
        json!({"min_support": 0.1, "audience_limit": 50, "strategies": ["precision"],
               "ranked": false, "validate": false}),
    )
}

/// Posts `body` as a client should: with an idempotency key, again after `Retry-After` when
/// refused for load or unavailability. Returns the job's id and how many posts were refused.
pub async fn post_politely(app: &TestApp, body: &Value, key: &str) -> (String, usize) {
    let mut refused = 0;
    loop {
        let response = app
            .client
            .post(app.url("/v1/jobs"))
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .expect("POST /v1/jobs");
        let status = response.status().as_u16();
        if status == 429 || status == 503 {
            refused += 1;
            let wait = retry_after(&response);
            assert_problem(response, status).await;
            tokio::time::sleep(wait).await;
            continue;
        }
        assert_eq!(status, 202, "{}", response.text().await.unwrap_or_default());
        let job: Value = response.json().await.unwrap();
        return (job["id"].as_str().unwrap().to_owned(), refused);
    }
}

/// The `Retry-After` of a refusal (which must have one), in whole seconds.
pub fn retry_after(response: &reqwest::Response) -> Duration {
    let secs: u64 = response
        .headers()
        .get("retry-after")
        .unwrap_or_else(|| panic!("a {} without Retry-After", response.status()))
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds");
    Duration::from_secs(secs)
}

/// Polls a job until it is finished, every `every`, taking 503s in stride.
async fn finished(app: &TestApp, id: &str, every: Duration, deadline: Instant) -> Value {
    loop {
        let response = app.get(&format!("/v1/jobs/{id}")).await;
        if response.status().as_u16() == 200 {
            let job: Value = response.json().await.unwrap();
            if !matches!(job["status"].as_str(), Some("queued" | "running")) {
                return job;
            }
        } else {
            assert_problem(response, 503).await;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} unfinished at the deadline"
        );
        tokio::time::sleep(every).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_jobs_from_fifty_clients_on_sqlite() {
    load(TestDatabase::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_jobs_from_fifty_clients_on_postgres() {
    if let Some(db) = TestDatabase::postgres().await {
        load(db).await;
    }
}

/// All finish, once each, with the counts an undisturbed run of their list gives.
async fn load(db: TestDatabase) {
    let backend = db.backend();
    let calls = Tapped::new(Calls::default());
    let app = Arc::new(
        spawn_app_with(
            db,
            AppOptions {
                workers: 4,
                provider: Some(calls.clone()),
                // The per-key limit is not what is measured here (clients would wait it out
                // all the same).
                max_jobs_in_flight: Some(0),
                ..AppOptions::default()
            },
        )
        .await,
    );

    // Each list once, undisturbed: its result and the provider calls it takes.
    let mut reference = Vec::new();
    let mut calls_per_list = Vec::new();
    for i in 0..LISTS {
        let before = calls.tap.now();
        let (id, _) = post_politely(&app, &small_list(i), &format!("reference-{i}")).await;
        let job = app.wait_for(&id, Duration::from_secs(60)).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let result = app.get_json(&format!("/v1/jobs/{id}/result")).await;
        reference.push(comparable_result(result));
        let after = calls.tap.now();
        calls_per_list.push((after.0 - before.0, after.1 - before.1));
    }
    let before_load = calls.tap.now();
    let bodies: Arc<Vec<Value>> = Arc::new((0..LISTS).map(small_list).collect());
    let reference = Arc::new(reference);

    let started = Instant::now();
    let deadline = started + LOAD_TIMEOUT;
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let (app, bodies, reference) = (app.clone(), bodies.clone(), reference.clone());
        clients.spawn(async move {
            // Post every job first, then follow each to its end.
            let mut posted = Vec::new();
            let mut refused = 0;
            for j in 0..JOBS_PER_CLIENT {
                let list = (client * JOBS_PER_CLIENT + j) % LISTS;
                let key = format!("load-{client}-{j}");
                let (id, r) = post_politely(&app, &bodies[list], &key).await;
                refused += r;
                posted.push((id, list));
            }
            let mut jobs = Vec::new();
            for (id, list) in posted {
                let job = finished(&app, &id, Duration::from_secs(1), deadline).await;
                assert_eq!(job["status"], "succeeded", "{job}");
                assert_eq!(job["attempt"], 1, "job {id} was run more than once: {job}");
                let result = app.get_json(&format!("/v1/jobs/{id}/result")).await;
                assert_eq!(
                    comparable_result(result),
                    reference[list],
                    "job {id} of list {list}: its result differs from an undisturbed run"
                );
                jobs.push((id, list));
            }
            (jobs, refused)
        });
    }
    let mut jobs = Vec::new();
    let mut refused = 0;
    while let Some(done) = clients.join_next().await {
        let (mine, r) = done.expect("a client panicked");
        jobs.extend(mine);
        refused += r;
    }
    let elapsed = started.elapsed();

    // None lost, none created twice: one job per post, all distinct, and no others.
    assert_eq!(jobs.len(), CLIENTS * JOBS_PER_CLIENT);
    let ids: BTreeSet<&str> = jobs.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), jobs.len(), "two posts got the same job");
    let by_status: HashMap<String, u64> = app
        .store
        .count_by_status()
        .await
        .unwrap()
        .into_iter()
        .map(|(status, n)| (status.as_str().to_owned(), n))
        .collect();
    assert_eq!(
        by_status,
        HashMap::from([("succeeded".to_owned(), (LISTS + jobs.len()) as u64)]),
        "jobs in the store"
    );
    // None run twice: every job's provider calls made exactly once.
    let mut expected = (0, 0);
    let mut per_list: BTreeMap<usize, usize> = BTreeMap::new();
    for (_, list) in &jobs {
        expected.0 += calls_per_list[*list].0;
        expected.1 += calls_per_list[*list].1;
        *per_list.entry(*list).or_default() += 1;
    }
    let after = calls.tap.now();
    assert_eq!(
        (after.0 - before_load.0, after.1 - before_load.1),
        expected,
        "(resolve, get_person) calls under load vs once per job"
    );
    eprintln!(
        "load on {backend:?}: {} jobs from {CLIENTS} clients ({} lists, {:?} jobs each) \
         finished in {:.1} s; {refused} posts refused (503/429) and made again",
        jobs.len(),
        LISTS,
        per_list.values().collect::<Vec<_>>(),
        elapsed.as_secs_f64()
    );
    Arc::into_inner(app)
        .expect("every client is done")
        .shutdown()
        .await;
}
