//! The four audiences in a job's result: each with its expected figures and a rationale,
//! nested from precision to reach, reach never most of the population, and the notes.

use serde_json::{Value, json};

use crate::common::*;

const STRATEGIES: [&str; 4] = ["precision", "standard", "hybrid", "reach"];
const CODES: [&str; 7] = [
    "band_unmet",
    "below_band",
    "no_lift",
    "not_nested",
    "population_estimated",
    "size_estimated",
    "exclusion_unknown",
];

/// A job of `n` customers of segment `segment` with `options`, run to success: its id, the job
/// and its result.
async fn segment_job(
    app: &TestApp,
    segment: usize,
    n: usize,
    options: Value,
) -> (String, Value, Value) {
    let (_, emails) = segment_emails(segment, n);
    finished_job(app, &job_body(&emails, options)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_four_audiences_come_with_their_expected_figures_nested() {
    for db in databases().await {
        let app = spawn_app(db).await;
        let (id, job, result) = segment_job(&app, 2, 600, json!({"min_support": 0.05})).await;
        assert_eq!(
            job["options"]["strategies"],
            json!(STRATEGIES),
            "all four by default"
        );
        let notes = result["audience_notes"].as_array().expect("audience notes");
        for note in notes {
            assert!(CODES.contains(&note["code"].as_str().unwrap()), "{note}");
            assert!(!note["message"].as_str().unwrap().is_empty());
        }
        let audiences = result["audiences"].as_array().unwrap();
        let order: Vec<&str> = audiences
            .iter()
            .map(|a| a["strategy"].as_str().unwrap())
            .collect();
        assert!(
            order.iter().all(|s| STRATEGIES.contains(s)) && order.len() >= 3,
            "{order:?} {notes:?}"
        );
        // A strategy left out says why.
        for s in STRATEGIES {
            if !order.contains(&s) {
                assert!(notes.iter().any(|n| n["strategy"] == s), "{s}: {notes:?}");
            }
        }
        let mut previous: Option<(String, std::collections::HashSet<u64>)> = None;
        for a in audiences {
            let strategy = a["strategy"].as_str().unwrap();
            let expected = &a["expected"];
            // The planner counted the expression: the provider's count is what it expected.
            assert_eq!(expected["size"], a["total_with_customers"], "{a}");
            assert_eq!(expected["size_exact"], true, "{a}");
            let share = expected["population_share"].as_f64().unwrap();
            assert!(share > 0.0 && share <= 1.0, "{a}");
            assert!(expected["index"].as_f64().unwrap() > 1.0, "{a}");
            assert!(expected["customers"].as_u64().unwrap() > 0, "{a}");
            assert!(a["rationale"].as_str().unwrap().len() > 20, "{a}");
            if strategy == "reach" {
                assert!(share <= 0.25, "reach is never most of the population: {a}");
            }
            // Customers are left out of the exports: nesting holds between the exports.
            let people = audience_members(&app, &id, strategy).await;
            if let Some((inner, inner_people)) = &previous {
                let nested = inner_people.is_subset(&people);
                let said = notes
                    .iter()
                    .any(|n| n["strategy"] == strategy && n["code"] == "not_nested");
                assert_eq!(nested, !said, "{inner} in {strategy}: {notes:?}");
            }
            previous = Some((strategy.to_owned(), people));
        }
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standard_audience_alone_can_be_asked_for_and_exported() {
    for db in databases().await {
        let app = spawn_app(db).await;
        let options = json!({"strategies": ["standard"], "min_support": 0.05});
        let (id, _, result) = segment_job(&app, 0, 300, options).await;
        let audiences = result["audiences"].as_array().unwrap();
        assert_eq!(audiences.len(), 1, "{result}");
        assert_eq!(audiences[0]["strategy"], "standard");
        let description = audiences[0]["description"].as_str().unwrap();
        assert_eq!(description.matches('=').count(), 2, "{description}");
        assert!(!description.contains(" OR "), "{description}");
        // Notes only for what was asked.
        for note in result["audience_notes"].as_array().unwrap() {
            assert!(
                note.get("strategy").is_none() || note["strategy"] == "standard",
                "{note}"
            );
        }
        let export = app
            .get(&format!(
                "/v1/jobs/{id}/audiences/standard/export?format=csv"
            ))
            .await;
        assert_eq!(export.status().as_u16(), 200);
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_sets_the_bands_and_the_audiences_keep_to_them() {
    let reach_share = |result: &Value| {
        result["audiences"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["strategy"] == "reach")
            .map(|a| a["expected"]["population_share"].as_f64().unwrap())
    };
    // With the default bands this job's reach is wider than the band set below, so the band
    // is what keeps it in.
    let app = spawn_app(databases().await.remove(0)).await;
    let (_, _, result) = segment_job(&app, 2, 600, json!({"min_support": 0.05})).await;
    let wide = reach_share(&result).expect("reach with the default bands");
    assert!(wide > 0.06, "{wide}");
    app.shutdown().await;

    for db in databases().await {
        let opts = AppOptions {
            configure: Some(Box::new(|c| {
                c.worker.audience_bands =
                    icp_analysis::AudienceBands::parse_percent("reach=2-6").unwrap();
            })),
            ..AppOptions::default()
        };
        let app = spawn_app_with(db, opts).await;
        let (_, _, result) = segment_job(&app, 2, 600, json!({"min_support": 0.05})).await;
        let reach = result["audiences"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["strategy"] == "reach");
        let notes = result["audience_notes"].as_array().unwrap();
        match reach {
            // Where reach is offered it keeps to the narrower band …
            Some(reach) => {
                let share = reach["expected"]["population_share"].as_f64().unwrap();
                assert!(share <= 0.06, "{reach}");
            }
            // … and where nothing fits, the notes say so.
            None => assert!(notes.iter().any(|n| n["strategy"] == "reach"), "{notes:?}"),
        }
        app.shutdown().await;
    }
}
