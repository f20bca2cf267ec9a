//! The whole pipeline through the real HTTP API: customers drawn from one known segment of the
//! generated population must come back as that segment's ICP and a lookalike audience of it.

use std::collections::HashSet;
use std::time::Duration;

use crate::common::*;
use icp_contract::{AudienceRecord, PersonId};
use serde_json::{Value, json};

const JOB_TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_comes_back_as_its_icp_and_lookalikes() {
    for db in databases().await {
        let app = spawn_app(db).await;
        run_segment_job(&app).await;
        app.shutdown().await;
    }
}

async fn run_segment_job(app: &TestApp) {
    let pop = population();
    let segment = 0;
    let (segment_name, emails) = segment_emails(segment, 1500);
    let defining = defining_traits(segment);
    assert!(
        defining.len() >= 3,
        "segment {segment_name} needs 3+ defining traits"
    );

    let response = app
        .post_json("/v1/jobs", &job_body(&emails, json!({"min_support": 0.05})))
        .await;
    assert_eq!(response.status().as_u16(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(response.headers().contains_key("retry-after"));
    let job: Value = response.json().await.unwrap();
    let id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/v1/jobs/{id}"));
    assert_eq!(job["status"], "queued");

    let job = app.wait_for(&id, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(job["workflow_id"].as_str().is_some_and(|w| !w.is_empty()));
    // Every stage ran, in order: each started after the previous one finished, but for
    // enrichment, which begins while resolve answers still come in (never before resolve
    // began, never finishing before it).
    let at = |s: &Value| {
        time::OffsetDateTime::parse(
            s.as_str().expect("a timestamp"),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    let stages = ["resolve", "enrich", "analyze", "map", "find", "validate"];
    for stage in stages {
        let p = &job["progress"][stage];
        assert_eq!(p["done"], p["total"], "stage {stage} unfinished: {job}");
        assert!(
            at(&p["started_at"]) <= at(&p["finished_at"]),
            "stage {stage}: {p}"
        );
    }
    for pair in stages.windows(2) {
        let (before, after) = (&job["progress"][pair[0]], &job["progress"][pair[1]]);
        if pair[1] == "enrich" {
            assert!(
                at(&before["started_at"]) <= at(&after["started_at"]),
                "{job}"
            );
            assert!(
                at(&before["finished_at"]) <= at(&after["finished_at"]),
                "{job}"
            );
        } else {
            assert!(
                at(&before["finished_at"]) <= at(&after["started_at"]),
                "stage {} overlaps: {job}",
                pair[1]
            );
        }
    }
    assert_eq!(
        job["progress"]["resolve"]["total"].as_u64(),
        Some(emails.len() as u64)
    );
    assert!(
        job["resolution"]["accepted"].as_u64().unwrap() as f64 >= 0.9 * emails.len() as f64,
        "{job}"
    );
    let traces = job["tool_traces"].as_array().unwrap();
    for tool in [
        "resolve_identities",
        "get_person",
        "list_clusters",
        "find_persons",
    ] {
        assert!(
            traces.iter().any(|t| t["tool"] == tool),
            "no trace of {tool}"
        );
    }
    // 1500 customers → 2 get_person calls of at most 1000 ids each (the validate stage's own
    // calls are under its name).
    assert_eq!(
        traces
            .iter()
            .filter(|t| t["tool"] == "get_person" && t["stage"] == "enrich")
            .count(),
        2
    );

    let result: Value = app.get_json(&format!("/v1/jobs/{id}/result")).await;
    // The ICP: a multi-attribute cluster made of 3+ of the segment's defining traits.
    let clusters = result["multi_attribute_clusters"]
        .as_array()
        .expect("clusters");
    let overlap = |c: &Value| {
        c["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| {
                defining.contains(&(
                    i["name"].as_str().unwrap().to_owned(),
                    i["value"].as_str().unwrap().to_owned(),
                ))
            })
            .count()
    };
    // Ranked against the population, the segment comes first.
    assert!(
        clusters.first().map(overlap).unwrap_or(0) >= 3,
        "the best cluster does not name 3 of {segment_name}'s traits {defining:?}: clusters {clusters:?}, top attributes {}",
        result["top_attributes"]
    );
    for ranked in clusters
        .iter()
        .chain(result["top_intersections"].as_array().unwrap())
    {
        assert!(
            ranked["index"].as_f64().is_some_and(|i| i > 0.0),
            "no population index: {ranked}"
        );
    }
    // Frequencies with the population index filled in by the map stage.
    let top = result["top_attributes"].as_array().unwrap();
    assert!(!top.is_empty());
    assert!(
        top.iter()
            .all(|a| a["index"].as_f64().is_some_and(|i| i > 0.0)),
        "index missing: {top:?}"
    );
    assert!(!result["top_intersections"].as_array().unwrap().is_empty());
    let mapped = result["clusters"].as_array().unwrap();
    assert!(
        mapped
            .iter()
            .all(|c| c["cluster_hash"].as_str().is_some_and(|h| h.len() == 32))
    );

    let audiences = result["audiences"].as_array().unwrap();
    let strategies: Vec<&str> = audiences
        .iter()
        .map(|a| a["strategy"].as_str().unwrap())
        .collect();
    // All four by default, nested from the smallest; hybrid only where a second combination
    // adds customer-like people (else a note says why).
    let without_hybrid: Vec<&str> = strategies
        .iter()
        .copied()
        .filter(|s| *s != "hybrid")
        .collect();
    assert_eq!(without_hybrid, ["precision", "standard", "reach"]);
    if !strategies.contains(&"hybrid") {
        assert!(
            result["audience_notes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["strategy"] == "hybrid"),
            "{}",
            result["audience_notes"]
        );
    } else {
        assert_eq!(strategies, ["precision", "standard", "hybrid", "reach"]);
    }
    let customer_ids: HashSet<u64> = pop
        .sample_customers(1500, Some(&segment_name), 11)
        .unwrap()
        .iter()
        .map(|c| c.person_id.0)
        .collect();
    for audience in audiences {
        let strategy = audience["strategy"].as_str().unwrap();
        let exported = audience["exported"].as_u64().unwrap();
        assert!(audience["total"].as_u64().unwrap() >= exported);
        assert!(audience["sample"].as_array().unwrap().len() <= 10);
        let jsonl = app
            .get(&format!(
                "/v1/jobs/{id}/audiences/{strategy}/export?format=jsonl"
            ))
            .await;
        assert_eq!(jsonl.status().as_u16(), 200);
        assert_eq!(jsonl.headers()["content-type"], "application/x-ndjson");
        let text = jsonl.text().await.unwrap();
        let records: Vec<AudienceRecord> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(records.len() as u64, exported);
        assert!(
            records
                .iter()
                .all(|r| !customer_ids.contains(&r.person_id.0)),
            "a customer is in the {strategy} audience"
        );
        assert!(records.iter().all(|r| r.identifiers.contains_key("email")));

        let json: Vec<AudienceRecord> = app
            .get_json(&format!(
                "/v1/jobs/{id}/audiences/{strategy}/export?format=json"
            ))
            .await;
        assert_eq!(json, records);
        let csv = app
            .get(&format!(
                "/v1/jobs/{id}/audiences/{strategy}/export?format=csv"
            ))
            .await
            .text()
            .await
            .unwrap();
        let mut lines = csv.lines();
        assert!(lines.next().unwrap().starts_with("person_id,email1"));
        assert_eq!(lines.count() as u64, exported);

        if strategy == "precision" {
            assert!(exported > 0, "empty precision audience");
            let members = records
                .iter()
                .filter(|r| pop.segment_of(PersonId(r.person_id.0)) == Some(segment))
                .count();
            assert!(
                members as f64 > 0.5 * records.len() as f64,
                "only {members} of {} precision lookalikes are in {segment_name}",
                records.len()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_upload_runs_with_query_options() {
    let db = databases().await.remove(0);
    let app = spawn_app(db).await;
    let pop = population();
    let customers = pop
        .sample_customers(400, Some(&pop.segments()[1].name), 5)
        .unwrap();
    let mut csv = Vec::new();
    icp_population::write_customer_csv(&customers, &mut csv).unwrap();
    let response = app
        .client
        .post(app.url("/v1/jobs?strategies=reach&identifier_type=phone&audience_limit=50"))
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let job: Value = response.json().await.unwrap();
    assert_eq!(job["options"]["strategies"], json!(["reach"]));
    let job = app.wait_for(job["id"].as_str().unwrap(), JOB_TIMEOUT).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let result: Value = app
        .get_json(&format!("/v1/jobs/{}/result", job["id"].as_str().unwrap()))
        .await;
    let audiences = result["audiences"].as_array().unwrap();
    assert_eq!(audiences.len(), 1);
    assert_eq!(audiences[0]["exported"], 50);
    assert_eq!(audiences[0]["truncated"], true);
    // The limit cuts the export, not the audience: its size is the whole reach.
    let total = audiences[0]["total"].as_u64().unwrap();
    assert!(
        total > 50 + audiences[0]["excluded_customers"].as_u64().unwrap(),
        "{total}"
    );
    app.shutdown().await;
}

/// An idle worker claims a job the moment this process creates it, not at its next poll (here
/// an hour away).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_job_wakes_an_idle_worker() {
    for db in databases().await {
        let app = spawn_app_with(
            db,
            AppOptions {
                workers: 1,
                poll_interval: Some(Duration::from_secs(3600)),
                ..AppOptions::default()
            },
        )
        .await;
        // The worker has looked once, found nothing, and sleeps.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (_, emails) = segment_emails(0, 300);
        let body = job_body(&emails, json!({"min_support": 0.05}));
        let job: Value = app.post_json("/v1/jobs", &body).await.json().await.unwrap();
        let job = app
            .wait_for(job["id"].as_str().unwrap(), Duration::from_secs(60))
            .await;
        assert_eq!(job["status"], "succeeded", "{job}");
        app.shutdown().await;
    }
}
