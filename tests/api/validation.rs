//! The `validate` stage (Step 6 of the workflow): each audience's seeded sample enriched and set
//! against the customers. On customers drawn from a planted segment, the precision audience
//! must score closer to them than reach; the same job twice draws the same sample and scores
//! it the same; `validate: false` skips the stage; a job resumed mid-stage does not validate
//! an audience twice.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;
use icp_contract::*;

/// The segment the customers are drawn from, and how many.
const SEGMENT: usize = 3;
const CUSTOMERS: usize = 600;

fn body(options: Value) -> Value {
    let (_, emails) = segment_emails(SEGMENT, CUSTOMERS);
    let mut options = options;
    options["min_support"] = json!(0.05);
    job_body(&emails, options)
}

/// Every audience and ranked tier of `result` with its validation: (name, validation, rows
/// exported).
fn validated(result: &Value) -> Vec<(String, Value, u64)> {
    let mut out: Vec<(String, Value, u64)> = result["audiences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["strategy"].as_str().unwrap().to_owned(),
                a["validation"].clone(),
                a["exported"].as_u64().unwrap(),
            )
        })
        .collect();
    if let Some(tiers) = result["ranked"]["tiers"].as_array() {
        out.extend(tiers.iter().map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["validation"].clone(),
                t["size"].as_u64().unwrap(),
            )
        }));
    }
    out
}

fn similarity_of(result: &Value, strategy: &str) -> f64 {
    let audience = result["audiences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["strategy"] == strategy)
        .unwrap_or_else(|| panic!("no {strategy} audience: {result}"));
    audience["validation"]["similarity"]
        .as_f64()
        .unwrap_or_else(|| panic!("{strategy} has no similarity: {audience}"))
}

/// What every validation must hold: its sample and its figures within their bounds.
fn check_validation(name: &str, v: &Value, exported: u64) {
    assert!(v.is_object(), "{name} has no validation");
    assert_eq!(v["sample_target"], 1000, "{name}: {v}");
    assert_eq!(v["sample_size"], exported.min(1000), "{name}: {v}");
    // The embedded population has a profile for every person it exports.
    assert_eq!(v["enriched"], v["sample_size"], "{name}: {v}");
    assert!(v["seed"].is_u64(), "{name}: {v}");
    assert_eq!(
        v["sample_digest"].as_str().unwrap().len(),
        16,
        "{name}: {v}"
    );
    let traits = v["traits"].as_array().unwrap();
    assert!(!traits.is_empty() && traits.len() <= 10, "{name}: {v}");
    for t in traits {
        let customers = t["customers"].as_f64().unwrap();
        let population = t["population"].as_f64().unwrap();
        let sample = t["sample"].as_f64().unwrap();
        assert!(customers > population, "a trait not over-represented: {t}");
        assert!((0.0..=1.0).contains(&sample), "{t}");
    }
    let score = v["similarity"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&score), "{name}: {v}");
    let baseline = v["population_similarity"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&baseline), "{name}: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precision_scores_closer_to_the_customers_than_reach_and_the_same_twice() {
    for db in databases().await {
        let app = spawn_app(db).await;
        let (_, job, result) = finished_job(&app, &body(json!({}))).await;
        assert_eq!(job["options"]["validate"], true, "on by default");

        // Its own stage, after find: every audience and tier one step of it.
        let all = validated(&result);
        let p = &job["progress"]["validate"];
        assert_eq!(p["total"], all.len() as u64, "{job}");
        assert_eq!(p["done"], p["total"], "{job}");
        assert!(p["started_at"].is_string() && p["finished_at"].is_string());
        assert!(
            p["started_at"].as_str() >= job["progress"]["find"]["finished_at"].as_str(),
            "{job}"
        );
        let traces = job["tool_traces"].as_array().unwrap();
        let validating = traces
            .iter()
            .filter(|t| t["stage"] == "validate" && t["tool"] == "get_person")
            .count();
        assert_eq!(validating, all.len(), "one get_person a sample: {traces:?}");

        for (name, v, exported) in &all {
            check_validation(name, v, *exported);
        }
        let precision = similarity_of(&result, "precision");
        let reach = similarity_of(&result, "reach");
        println!("similarity: precision {precision:.3}, reach {reach:.3}");
        assert!(
            precision > reach,
            "precision {precision} not closer to the customers than reach {reach}"
        );
        // The audiences all beat a draw of the population on the same traits.
        let baseline = result["audiences"][0]["validation"]["population_similarity"]
            .as_f64()
            .unwrap();
        assert!(precision > baseline, "{precision} vs {baseline}");

        // The same request again: the same samples, the same figures.
        let (_, _, again) = finished_job(&app, &body(json!({}))).await;
        let twice = validated(&again);
        assert_eq!(twice.len(), all.len());
        for ((name, first, _), (_, second, _)) in all.iter().zip(&twice) {
            assert_eq!(first, second, "{name} validated otherwise the second time");
        }
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_false_skips_the_stage() {
    for db in databases().await {
        let app = spawn_app(db).await;
        let (_, job, result) = finished_job(&app, &body(json!({"validate": false}))).await;
        assert_eq!(job["options"]["validate"], false);
        for (name, v, _) in validated(&result) {
            assert!(v.is_null(), "{name} validated: {v}");
        }
        let p = &job["progress"]["validate"];
        assert_eq!(p["total"], 0, "{job}");
        assert!(p.get("started_at").is_none(), "{job}");
        assert!(
            job["tool_traces"]
                .as_array()
                .unwrap()
                .iter()
                .all(|t| t["stage"] != "validate"),
            "{job}"
        );

        // A CSV upload says it in the query; a value not a boolean is refused where it is.
        let (_, emails) = segment_emails(SEGMENT, 50);
        let csv = format!("email\n{}\n", emails.join("\n"));
        let response = app
            .client
            .post(app.url("/v1/jobs?validate=false&min_support=0.05"))
            .header("content-type", "text/csv")
            .body(csv.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        let created: Value = response.json().await.unwrap();
        assert_eq!(created["options"]["validate"], false, "{created}");
        let response = app
            .client
            .post(app.url("/v1/jobs?validate=maybe"))
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap();
        let problem = assert_problem(response, 422).await;
        assert!(problem.to_string().contains("validate"), "{problem}");
        let response = app
            .post_json("/v1/jobs", &body(json!({"validate": "yes"})))
            .await;
        let problem = assert_problem(response, 422).await;
        assert!(
            problem.to_string().contains("/options/validate"),
            "{problem}"
        );
        app.shutdown().await;
    }
}

/// Fails one `get_person` call of the validate stage (the enrich stage makes the first, the
/// customers being fewer than 1000), and records the persons of every call.
struct FailOneValidation {
    fail_call: usize,
    calls: AtomicUsize,
    asked: Mutex<Vec<Vec<u64>>>,
}

impl Tap for FailOneValidation {
    fn on_get_person(&self, req: &GetPersonRequest) -> Result<(), ProviderError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let mut ids: Vec<u64> = req.person_ids.iter().map(|p| p.0).collect();
        ids.sort_unstable();
        self.asked.lock().unwrap().push(ids);
        if n == self.fail_call {
            return Err(ProviderError::unavailable("injected failure of get_person"));
        }
        Ok(())
    }
}

async fn run_tapped(fail_call: usize) -> (Value, Vec<Vec<u64>>) {
    let tapped = Tapped::new(FailOneValidation {
        fail_call,
        calls: AtomicUsize::new(0),
        asked: Mutex::new(Vec::new()),
    });
    let app = spawn_app_with(
        databases().await.remove(0),
        AppOptions {
            workers: 1,
            provider: Some(tapped.clone()),
            retry_base: Some(Duration::from_millis(20)),
            ..AppOptions::default()
        },
    )
    .await;
    let (_, job, result) = finished_job(&app, &body(json!({}))).await;
    app.shutdown().await;
    let asked = tapped.tap.asked.lock().unwrap().clone();
    let attempts = job["attempt"].as_i64().unwrap();
    assert_eq!(attempts, if fail_call == 0 { 1 } else { 2 }, "{job}");
    (comparable_result(result), asked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_job_validates_only_what_it_lacks() {
    let (clean, clean_asked) = run_tapped(0).await;
    // Call 1 enriches the customers; calls 2 and 3 validate two audiences; call 4 fails.
    let (resumed, asked) = run_tapped(4).await;
    assert_eq!(resumed, clean, "the resumed job's result differs");
    // The failed call is asked again, and nothing else: the two validations before it were
    // checkpointed.
    assert_eq!(asked.len(), clean_asked.len() + 1);
    assert_eq!(asked[3], asked[4], "the failed sample asked for again");
    let mut once: Vec<Vec<u64>> = asked.clone();
    once.remove(3);
    assert_eq!(once, clean_asked, "other samples asked for");
}
