//! Exclusions: `options.exclude` traits become `AND NOT` terms of every audience, whose members
//! then never hold them, and leave their holders out of the ranked tiers; customers left out
//! are counted out of `total`.

use serde_json::json;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excluded_traits_leave_every_audience_and_totals_count_without_customers() {
    let (_, emails) = segment_emails(2, 600);
    let defining = defining_traits(2);
    for db in databases().await {
        let app = spawn_app(db).await;
        let options = json!({"min_support": 0.05, "ranked": false});
        let (_, _, plain) = finished_job(&app, &job_body(&emails, options)).await;
        // A trait common among the customers but not one that defines their segment, so it
        // overlaps the audiences without emptying them.
        let common = plain["top_attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| {
                let t = (
                    a["name"].as_str().unwrap().to_owned(),
                    a["value"].as_str().unwrap().to_owned(),
                );
                !defining.contains(&t) && a["frequency"].as_f64().unwrap() > 0.2
            })
            .expect("a common trait outside the segment's")
            .clone();
        let (name, value) = (
            common["name"].as_str().unwrap(),
            common["value"].as_str().unwrap(),
        );
        let excluded = format!("{name}={value}");
        let options = json!({
            "min_support": 0.05,
            "exclude": [excluded, "no_such_attribute=anything"],
        });
        let (id, job, result) = finished_job(&app, &job_body(&emails, options)).await;
        assert_eq!(job["options"]["exclude"][0], excluded.as_str());
        let hash = result["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name && c["value"] == value)
            .expect("the exclusion's cluster is in the result")["cluster_hash"]
            .as_str()
            .unwrap()
            .to_owned();
        let with_trait = population_selects(&hash);
        let notes = result["audience_notes"].as_array().unwrap();
        assert!(
            notes.iter().any(|n| n["code"] == "exclusion_unknown"
                && n["message"].as_str().unwrap().contains("no_such_attribute")),
            "{notes:?}"
        );
        let audiences = result["audiences"].as_array().unwrap();
        assert!(!audiences.is_empty(), "{result}");
        let mut removed = 0;
        for a in audiences {
            let strategy = a["strategy"].as_str().unwrap();
            let expression = a["expression"].as_str().unwrap();
            let tail = format!(" AND NOT {hash})");
            assert!(expression.ends_with(&tail), "{expression}");
            assert!(
                a["description"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!(" AND NOT {excluded})")),
                "{a}"
            );
            // The planner counted what was sent: the provider's count is what it expected.
            if a.get("expected").is_some() {
                assert_eq!(a["expected"]["size"], a["total_with_customers"], "{a}");
            }
            let people = audience_members(&app, &id, strategy).await;
            assert!(people.is_disjoint(&with_trait), "{strategy}");
            // Not truncated: the total is what was exported, customers counted out.
            assert_eq!(a["truncated"], false);
            assert_eq!(a["total_exact"], true);
            assert_eq!(a["total"], a["exported"], "{a}");
            assert_eq!(people.len() as u64, a["exported"].as_u64().unwrap());
            assert_eq!(
                a["total_with_customers"].as_u64().unwrap(),
                a["total"].as_u64().unwrap() + a["excluded_customers"].as_u64().unwrap(),
                "{a}"
            );
            let base = &expression[1..expression.len() - tail.len()];
            let without = population_selects(base);
            removed += without.intersection(&with_trait).count();
        }
        assert!(
            removed > 0,
            "the exclusion removed nobody: pick a commoner trait"
        );
        // The ranked tiers leave the trait's holders out too: they are not even eligible.
        let ranked = &result["ranked"];
        let eligible = ranked["eligible"].as_u64().expect("ranked tiers") as usize;
        assert!(
            eligible <= population().len() - with_trait.len(),
            "{eligible} eligible with {} holding the excluded trait",
            with_trait.len()
        );
        for tier in ranked["tiers"].as_array().unwrap() {
            let name = tier["name"].as_str().unwrap();
            let people = audience_members(&app, &id, name).await;
            assert_eq!(
                people.len() as u64,
                tier["size"].as_u64().unwrap(),
                "{name}"
            );
            assert!(people.is_disjoint(&with_trait), "{name}");
        }
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limited_export_counts_its_customers_out_of_the_total() {
    let (_, emails) = segment_emails(2, 300);
    let app = spawn_app(databases().await.remove(0)).await;
    let options = json!({"strategies": ["reach"], "audience_limit": 50, "ranked": false});
    let (_, _, result) = finished_job(&app, &job_body(&emails, options)).await;
    let a = &result["audiences"][0];
    assert_eq!(a["exported"], 50, "{a}");
    assert_eq!(a["truncated"], true, "{a}");
    let with = a["total_with_customers"].as_u64().unwrap();
    let expression = a["expression"].as_str().unwrap();
    assert_eq!(with, population().count(expression).unwrap(), "{a}");
    assert_eq!(
        a["total"].as_u64().unwrap(),
        with - a["excluded_customers"].as_u64().unwrap(),
        "{a}"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_exclusions_are_refused_with_their_pointer() {
    for db in databases().await {
        let app = spawn_app_without_workers(db).await;
        let emails = ["a@example.com".to_owned()];
        for (exclude, pointer) in [
            (json!(["homeowner"]), "/options/exclude/0"),
            (json!(["a=b", "=x"]), "/options/exclude/1"),
            (json!(["a=b", "y= "]), "/options/exclude/1"),
            (json!(vec!["a=b"; 21]), "/options/exclude"),
        ] {
            let body = job_body(&emails, json!({ "exclude": exclude }));
            let problem = assert_problem(app.post_json("/v1/jobs", &body).await, 422).await;
            let errors = problem["errors"].as_array().expect("errors");
            assert!(
                errors.iter().any(|e| e["location"] == pointer),
                "{pointer}: {problem}"
            );
        }
        app.shutdown().await;
    }
}
