//! The ranked audiences (`options.ranked`): every person scored against the customers, the top
//! 1 %, 2 %, 5 % and 10 % exported like the boolean audiences. Customers are drawn from a
//! planted segment of the generated population, so the tiers can be measured against the truth.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::common::*;
use icp_contract::{
    GetPersonRequest, MAX_PERSON_IDS_PER_CALL, PersonId, PopulationProvider, ProviderError,
};
use icp_mcp::faults::{FaultConfig, FaultyUpstream};
use icp_population::EmbeddedProvider;
use icp_store::test_support::job_rows;
use serde_json::{Value, json};

/// The segment the customers are drawn from, and how many.
const SEGMENT: usize = 3;
const CUSTOMERS: usize = 1500;

/// The least share of the top 1 % that must belong to the planted segment. Measured on
/// 2026-12-06 (`cargo test --test api ranked -- --nocapture` prints it): 1.0 over the whole
/// population and over the candidates; the segment is about 8 % of the population.
const PLANTED_FLOOR: f64 = 0.9;

const TIERS: [(&str, f64); 4] = [
    ("ranked_1", 0.01),
    ("ranked_2", 0.02),
    ("ranked_5", 0.05),
    ("ranked_10", 0.10),
];

/// Without the validate stage: its `get_person` calls (samples of the audiences, never
/// customers) would count as candidate batches here; `validation.rs` validates the tiers.
fn ranked_body(emails: &[String]) -> Value {
    job_body(
        emails,
        json!({"min_support": 0.05, "ranked": true, "validate": false}),
    )
}

/// Runs a ranked job to success; its id and result.
async fn run_ranked(app: &TestApp, emails: &[String]) -> (String, Value) {
    let (id, _, result) = finished_job(app, &ranked_body(emails)).await;
    (id, result)
}

/// A tier's records, in the JSON export, best first.
async fn export_ids(app: &TestApp, id: &str, tier: &str) -> Vec<PersonId> {
    let response = app
        .get(&format!(
            "/v1/jobs/{id}/audiences/{tier}/export?format=json"
        ))
        .await;
    assert_eq!(response.status(), 200, "{tier}");
    let records: Vec<Value> = response.json().await.unwrap();
    records
        .iter()
        .map(|r| PersonId(r["person_id"].as_u64().expect("a person id")))
        .collect()
}

/// The share of `ids` in the planted segment.
fn planted_share(ids: &[PersonId]) -> f64 {
    let pop = population();
    let name = &pop.segments()[SEGMENT].name;
    let inside = ids
        .iter()
        .filter(|id| {
            pop.segment_of(**id)
                .is_some_and(|s| &pop.segments()[s].name == name)
        })
        .count();
    inside as f64 / ids.len().max(1) as f64
}

fn customers() -> (Vec<String>, HashSet<PersonId>) {
    let pop = population();
    let name = pop.segments()[SEGMENT].name.clone();
    let sampled = pop.sample_customers(CUSTOMERS, Some(&name), 11).unwrap();
    let ids = sampled.iter().map(|c| c.person_id).collect();
    let (_, emails) = segment_emails(SEGMENT, CUSTOMERS);
    (emails, ids)
}

/// What every ranked block must satisfy, whichever the scope: named, shared and nested tiers
/// of their share of the eligible persons, no customer in them, the planted segment on top.
/// Returns the tiers' person ids.
async fn check_tiers(
    app: &TestApp,
    id: &str,
    ranked: &Value,
    scope: &str,
    customers: &HashSet<PersonId>,
) -> BTreeMap<String, Vec<PersonId>> {
    // The embedded population draws the logistic model's sample; a remote upstream cannot.
    let model = if scope == "population" {
        "logistic_regression"
    } else {
        "naive_bayes"
    };
    assert_eq!(ranked["model"], model, "{ranked}");
    assert_eq!(ranked["scope"], scope, "{ranked}");
    assert!(ranked["weighted_traits"].as_u64().unwrap() > 10, "{ranked}");
    let eligible = ranked["eligible"].as_u64().unwrap();
    let tiers = ranked["tiers"].as_array().unwrap();
    assert_eq!(tiers.len(), 4);
    let mut out = BTreeMap::new();
    let mut previous: Option<(f64, Vec<PersonId>)> = None;
    for (tier, (name, share)) in tiers.iter().zip(TIERS) {
        assert_eq!(tier["name"], name);
        assert_eq!(tier["share"], share);
        let size = (share * eligible as f64).ceil() as u64;
        assert_eq!(tier["size"], size, "{tier}");
        let top = tier["top_traits"].as_array().unwrap();
        assert!(!top.is_empty() && top.len() <= 5, "{tier}");
        assert!(top.iter().all(|t| t["weight"].as_f64().unwrap() > 0.0));
        assert_eq!(
            tier["exports"]["csv"],
            format!("/v1/jobs/{id}/audiences/{name}/export?format=csv")
        );
        let ids = export_ids(app, id, name).await;
        assert_eq!(ids.len() as u64, size, "{name}");
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
        assert!(
            ids.iter().all(|p| !customers.contains(p)),
            "a customer is in {name}"
        );
        let cutoff = tier["cutoff"].as_f64().unwrap();
        if let Some((before, smaller)) = &previous {
            assert!(cutoff <= *before, "{name}: cut-offs go up");
            assert_eq!(&ids[..smaller.len()], &smaller[..], "{name} does not nest");
        }
        previous = Some((cutoff, ids.clone()));
        out.insert(name.to_owned(), ids);
    }
    let share = planted_share(&out["ranked_1"]);
    let pop = population();
    let everyone: Vec<PersonId> = (0..pop.len()).map(|r| pop.person_id(r)).collect();
    eprintln!(
        "{scope}: the planted segment holds {share:.3} of ranked_1, {:.3} of ranked_10, {:.3} of the population",
        planted_share(&out["ranked_10"]),
        planted_share(&everyone)
    );
    assert!(
        share >= PLANTED_FLOOR,
        "ranked_1 holds {share:.3} of the planted segment (floor {PLANTED_FLOOR})"
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranked_tiers_hold_the_planted_segment_and_export_and_purge_like_audiences() {
    let (emails, customer_ids) = customers();
    for db in databases().await {
        let app = spawn_app(db).await;
        let (id, result) = run_ranked(&app, &emails).await;
        let ranked = &result["ranked"];
        let resolved = result["resolution"]["persons"].as_u64().unwrap();
        assert_eq!(
            ranked["eligible"].as_u64().unwrap(),
            TEST_POPULATION as u64 - resolved,
            "every person but the customers is scored"
        );
        check_tiers(&app, &id, ranked, "population", &customer_ids).await;

        // CSV too, a header and a row a person.
        let csv = app
            .get(&format!("/v1/jobs/{id}/audiences/ranked_2/export"))
            .await;
        assert_eq!(csv.status(), 200);
        assert!(
            csv.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        let text = csv.text().await.unwrap();
        assert!(text.starts_with("person_id,email1"), "{}", &text[..40]);
        assert_eq!(
            text.lines().count() as u64,
            ranked["tiers"][1]["size"].as_u64().unwrap() + 1
        );
        assert_problem(
            app.get(&format!("/v1/jobs/{id}/audiences/ranked_3/export"))
                .await,
            404,
        )
        .await;

        // A job that says `ranked: false` has no ranked block and no tier to export.
        let (_, plain_emails) = segment_emails(SEGMENT, 300);
        let plain: Value = app
            .post_json(
                "/v1/jobs",
                &job_body(&plain_emails, json!({"ranked": false})),
            )
            .await
            .json()
            .await
            .unwrap();
        let plain_id = plain["id"].as_str().unwrap();
        app.wait_for(plain_id, Duration::from_secs(120)).await;
        let plain_result: Value = app.get_json(&format!("/v1/jobs/{plain_id}/result")).await;
        assert!(plain_result.get("ranked").is_none(), "{plain_result}");
        assert_problem(
            app.get(&format!("/v1/jobs/{plain_id}/audiences/ranked_1/export"))
                .await,
            404,
        )
        .await;

        // Deleted with the job.
        assert!(
            job_rows(&app.store, id.parse().unwrap()).await["job_exports"] > 0,
            "the tiers' exports are stored"
        );
        assert_eq!(app.delete(&format!("/v1/jobs/{id}")).await.status(), 204);
        let rows = job_rows(&app.store, id.parse().unwrap()).await;
        assert!(rows.values().all(|&n| n == 0), "left behind: {rows:?}");
        app.shutdown().await;
    }
}

/// Hides the embedded population's ranking, as a remote upstream does, fails chosen calls of
/// the find stage once, and counts the candidates' `get_person` calls.
struct Remote {
    fail_rank: AtomicUsize,
    /// Fail this candidate batch (counted from 1 over all attempts) once.
    fail_candidate_call: usize,
    candidate_calls: AtomicUsize,
    hide: bool,
    customers: HashSet<PersonId>,
}

impl Tap for Remote {
    fn on_get_person(&self, req: &GetPersonRequest) -> Result<(), ProviderError> {
        // The candidates' calls ask for every trait domain; enrichment too, so they are told
        // apart by the ids: the customers are enriched, the candidates never customers.
        if req.person_ids.iter().any(|p| self.customers.contains(p)) {
            return Ok(());
        }
        let n = self.candidate_calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.fail_candidate_call {
            return Err(ProviderError::unavailable("injected failure of get_person"));
        }
        Ok(())
    }

    fn on_rank(&self) -> RankTap {
        if self.hide {
            return RankTap::Cannot;
        }
        let failing = self
            .fail_rank
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return RankTap::Fail(ProviderError::unavailable("injected failure of rank"));
        }
        RankTap::Pass
    }

    fn samples(&self) -> bool {
        !self.hide
    }
}

fn remote(hide: bool, fail_rank: usize, fail_candidate_call: usize) -> Arc<Tapped<Remote>> {
    Tapped::new(Remote {
        fail_rank: AtomicUsize::new(fail_rank),
        fail_candidate_call,
        candidate_calls: AtomicUsize::new(0),
        hide,
        customers: customers().1,
    })
}

async fn run_over(provider: Arc<Tapped<Remote>>, emails: &[String]) -> Value {
    let app = spawn_app_with(
        databases().await.remove(0),
        AppOptions {
            workers: 1,
            provider: Some(provider),
            retry_base: Some(Duration::from_millis(20)),
            ..AppOptions::default()
        },
    )
    .await;
    let (_, result) = run_ranked(&app, emails).await;
    app.shutdown().await;
    comparable_ranked(&result)
}

/// The ranked block without its links (which name the job).
fn comparable_ranked(result: &Value) -> Value {
    let mut ranked = result["ranked"].clone();
    for tier in ranked["tiers"].as_array_mut().unwrap() {
        tier.as_object_mut().unwrap().remove("exports");
    }
    ranked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_job_gives_the_same_tiers_on_either_path() {
    let (emails, _) = customers();
    // The population ranked by the provider; the ranking fails once, then runs again.
    let clean = run_over(remote(false, 0, 0), &emails).await;
    let failed = remote(false, 1, 0);
    assert_eq!(run_over(failed.clone(), &emails).await, clean);
    assert_eq!(
        failed.tap.fail_rank.load(Ordering::SeqCst),
        0,
        "no ranking failed"
    );

    // Candidates scored by the service; the second candidate batch fails once, and the
    // resumed attempt fetches only the batches it lacks: one call more than a clean run.
    let clean_candidates = remote(true, 0, 0);
    let clean = run_over(clean_candidates.clone(), &emails).await;
    assert_eq!(clean["scope"], "candidates");
    let calls = clean_candidates.tap.candidate_calls.load(Ordering::SeqCst);
    let eligible = clean["eligible"].as_u64().unwrap() as usize;
    assert_eq!(calls, eligible.div_ceil(MAX_PERSON_IDS_PER_CALL), "{clean}");
    assert!(
        calls >= 3,
        "too few candidate batches to resume between: {calls}"
    );
    let failed = remote(true, 0, 2);
    assert_eq!(run_over(failed.clone(), &emails).await, clean);
    assert_eq!(
        failed.tap.candidate_calls.load(Ordering::SeqCst),
        calls + 1,
        "a resumed job fetched a candidate batch again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_mcp_the_candidates_are_ranked() {
    let (emails, customer_ids) = customers();
    let embedded: Arc<dyn PopulationProvider> = Arc::new(EmbeddedProvider::new(population()));
    let (addr, upstream) = FaultyUpstream::start(embedded, FaultConfig::default())
        .await
        .expect("start the test upstream");
    let provider = watt_provider(&format!("http://{addr}/mcp")).await;
    for db in databases().await {
        let app = spawn_app_over(db, provider.clone()).await;
        let (id, result) = run_ranked(&app, &emails).await;
        let ranked = &result["ranked"];
        // The candidates are the persons of the boolean audiences, each once.
        let mut candidates = HashSet::new();
        for audience in result["audiences"].as_array().unwrap() {
            let name = audience["strategy"].as_str().unwrap();
            candidates.extend(export_ids(&app, &id, name).await);
        }
        assert_eq!(ranked["eligible"], candidates.len() as u64, "{ranked}");
        let tiers = check_tiers(&app, &id, ranked, "candidates", &customer_ids).await;
        assert!(tiers["ranked_10"].iter().all(|p| candidates.contains(p)));
        app.shutdown().await;
    }
    assert!(upstream.calls()["get_person"] > 0);
}
