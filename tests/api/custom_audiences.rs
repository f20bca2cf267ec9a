//! Traits looked up with their sizes (`GET /v1/clusters`), and audiences written by hand on a
//! finished job (`POST /v1/jobs/{id}/audiences`).

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traits_are_looked_up_with_their_sizes() {
    let (name, value) = defining_traits(0).into_iter().min().unwrap();
    for db in databases().await {
        let app = spawn_app_without_workers(db).await;
        let page: Value = app
            .get_json(&format!("/v1/clusters?name={name}&limit=500"))
            .await;
        let clusters = page["clusters"].as_array().unwrap();
        assert!(!clusters.is_empty(), "{page}");
        assert!(
            clusters.iter().all(|c| c["name"] == name.as_str()),
            "{page}"
        );
        assert!(
            clusters.iter().any(|c| c["value"] == value.as_str()),
            "{page}"
        );
        let one: Value = app
            .get_json(&format!("/v1/clusters?name={name}&value={value}"))
            .await;
        let found = one["clusters"].as_array().unwrap();
        assert_eq!(found.len(), 1, "{one}");
        let hash = found[0]["cluster_hash"].as_str().unwrap();
        assert_eq!(
            found[0]["size"].as_u64().unwrap(),
            population().count(hash).unwrap()
        );
        // A page at a time.
        let first: Value = app
            .get_json(&format!("/v1/clusters?name={name}&limit=1"))
            .await;
        assert_eq!(first["clusters"].as_array().unwrap().len(), 1, "{first}");
        if clusters.len() > 1 {
            assert_eq!(first["has_more"], true, "{first}");
            let next = first["next_offset"].as_u64().unwrap();
            let second: Value = app
                .get_json(&format!("/v1/clusters?name={name}&limit=1&offset={next}"))
                .await;
            assert_ne!(second["clusters"][0], first["clusters"][0]);
        }
        let none: Value = app.get_json("/v1/clusters?name=no_such_attribute").await;
        assert_eq!(none["clusters"].as_array().unwrap().len(), 0, "{none}");
        for (query, location) in [
            ("", "query"),
            ("?name=x&limit=0", "query.limit"),
            ("?name=x&limit=501", "query.limit"),
            ("?name=%20", "query.name"),
            ("?name=x&value=", "query.value"),
        ] {
            let problem = assert_problem(app.get(&format!("/v1/clusters{query}")).await, 422).await;
            assert_eq!(
                problem["errors"][0]["location"], location,
                "{query}: {problem}"
            );
        }
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audience_written_by_hand_is_found_exported_and_added() {
    let (segment, emails) = segment_emails(0, 300);
    let customers: HashSet<u64> = population()
        .sample_customers(300, Some(&segment), 11)
        .unwrap()
        .iter()
        .map(|c| c.person_id.0)
        .collect();
    let mut traits: Vec<(String, String)> = defining_traits(0).into_iter().collect();
    traits.sort();
    assert!(traits.len() >= 3, "{traits:?}");
    for db in databases().await {
        let app = spawn_app(db).await;
        let options = json!({"min_support": 0.05, "ranked": false});
        let (id, _, result) = finished_job(&app, &job_body(&emails, options)).await;
        // A common trait outside the segment's, to leave out.
        let other = result["top_attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["name"].as_str().unwrap().to_owned(),
                    a["value"].as_str().unwrap().to_owned(),
                )
            })
            .find(|t| !traits.contains(t) && traits.iter().all(|d| d.0 != t.0))
            .expect("a trait outside the segment's");
        let [a, b, c] = [&traits[0], &traits[1], &traits[2]];
        let expression = format!(
            "{} = {} AND ({} = {} OR {} = {}) AND NOT {} = {}",
            a.0, a.1, b.0, b.1, c.0, c.1, other.0, other.1
        );
        let response = app
            .post_json(
                &format!("/v1/jobs/{id}/audiences"),
                &json!({"expression": expression}),
            )
            .await;
        assert_eq!(response.status().as_u16(), 201);
        let added: Value = response.json().await.unwrap();
        assert_eq!(added["id"], "custom-1", "{added}");
        assert_eq!(added["expression_text"], expression.as_str());
        assert_eq!(added["customers_left_out"], true, "{added}");
        let hashes = added["expression"].as_str().unwrap();
        let truth = population_selects(hashes);
        // Every member satisfies the expression (the population's own evaluation of it, built
        // here from the traits independently of the service's mapping) …
        let hash_of = |t: &(String, String)| {
            let one: Vec<Value> = result["clusters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["name"] == t.0.as_str() && c["value"] == t.1.as_str())
                .cloned()
                .collect();
            one.first()
                .map(|c| c["cluster_hash"].as_str().unwrap().to_owned())
        };
        if let (Some(ha), Some(hb), Some(hc), Some(ho)) =
            (hash_of(a), hash_of(b), hash_of(c), hash_of(&other))
        {
            let mine = population_selects(&format!("{ha} AND ({hb} OR {hc}) AND NOT {ho}"));
            assert_eq!(mine, truth);
        }
        let members = audience_members(&app, &id, "custom-1").await;
        assert!(!members.is_empty());
        assert!(members.is_subset(&truth));
        // … and every person it has is exported, but the customers.
        assert!(members.is_disjoint(&customers));
        assert_eq!(
            truth.difference(&members).copied().collect::<HashSet<_>>(),
            truth.intersection(&customers).copied().collect()
        );
        assert_eq!(added["total"], added["exported"], "{added}");
        assert_eq!(
            added["total_with_customers"].as_u64().unwrap(),
            truth.len() as u64
        );
        // Validated as the job's own audiences are (the job's `validate`, on by default):
        // a sample of it set against the customers' top traits, which it was written from.
        let v = &added["validation"];
        assert_eq!(
            v["sample_size"].as_u64(),
            Some(members.len().min(1000) as u64),
            "{added}"
        );
        assert_eq!(v["enriched"], v["sample_size"], "{v}");
        let compared = |v: &Value| -> Vec<Value> {
            v["traits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| json!([t["name"], t["value"], t["customers"], t["population"]]))
                .collect()
        };
        assert_eq!(
            compared(v),
            compared(&result["audiences"][0]["validation"]),
            "the job's traits at the customers' frequencies"
        );
        let (score, draw) = (
            v["similarity"].as_f64().unwrap(),
            v["population_similarity"].as_f64().unwrap(),
        );
        assert!(score > draw, "{score} vs {draw}: {v}");
        // Kept in the result; a second one is numbered on.
        let result: Value = app.get_json(&format!("/v1/jobs/{id}/result")).await;
        assert_eq!(result["custom_audiences"][0]["id"], "custom-1");
        let second = app
            .post_json(
                &format!("/v1/jobs/{id}/audiences"),
                &json!({"expression": format!("{} = {}", a.0, a.1), "limit": 5,
                        "exclude": [format!("{}={}", other.0, other.1)], "validate": false}),
            )
            .await;
        assert_eq!(second.status().as_u16(), 201);
        let second: Value = second.json().await.unwrap();
        assert_eq!(second["id"], "custom-2");
        assert_eq!(second["exported"], 5);
        assert_eq!(second["truncated"], true);
        assert!(second.get("validation").is_none(), "{second}");
        let members = audience_members(&app, &id, "custom-2").await;
        assert_eq!(members.len(), 5);
        assert!(members.is_disjoint(&customers));
        let csv = app
            .get(&format!(
                "/v1/jobs/{id}/audiences/custom-2/export?format=csv"
            ))
            .await;
        assert_eq!(csv.status().as_u16(), 200);
        assert_problem(
            app.get(&format!("/v1/jobs/{id}/audiences/custom-3/export"))
                .await,
            404,
        )
        .await;
        // The customers kept for it are never served.
        assert_problem(
            app.get(&format!("/v1/jobs/{id}/audiences/_customers/export"))
                .await,
            404,
        )
        .await;

        // Errors point at the character, or at the field.
        for (body, location, says) in [
            (
                json!({"expression": format!("{} = {} AND", a.0, a.1)}),
                "/expression",
                "character",
            ),
            (
                json!({"expression": "NOT x = 1"}),
                "/expression",
                "at character 0",
            ),
            (
                json!({"expression": "(x = 1"}),
                "/expression",
                "at character 6",
            ),
            (
                json!({"expression": "no_such_attribute = 1"}),
                "/expression",
                "character 0",
            ),
            (
                json!({"expression": format!("{} = {}", a.0, a.1), "exclude": ["nope"]}),
                "/exclude/0",
                "attribute=value",
            ),
            (
                json!({"expression": format!("{} = {}", a.0, a.1), "exclude": ["no_such=1"]}),
                "/exclude/0",
                "cluster",
            ),
            (
                json!({"expression": format!("{} = {}", a.0, a.1), "limit": 0}),
                "/limit",
                "between",
            ),
            (
                json!({"expression": format!("{} = {}", a.0, a.1), "validate": "yes"}),
                "/validate",
                "bool",
            ),
        ] {
            let problem = assert_problem(
                app.post_json(&format!("/v1/jobs/{id}/audiences"), &body)
                    .await,
                422,
            )
            .await;
            let error = &problem["errors"][0];
            assert_eq!(error["location"], location, "{body}: {problem}");
            assert!(
                error["message"].as_str().unwrap().contains(says),
                "{body}: {problem}"
            );
        }
        let unknown = uuid_like();
        assert_problem(
            app.post_json(
                &format!("/v1/jobs/{unknown}/audiences"),
                &json!({"expression": "a = b"}),
            )
            .await,
            404,
        )
        .await;
        app.shutdown().await;
    }
}

fn uuid_like() -> &'static str {
    "00000000-0000-4000-8000-000000000000"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_job_takes_no_audience() {
    for db in databases().await {
        let app = spawn_app_without_workers(db).await;
        let job: Value = app
            .post_json(
                "/v1/jobs",
                &job_body(&["a@example.com".to_owned()], json!({})),
            )
            .await
            .json()
            .await
            .unwrap();
        let id = job["id"].as_str().unwrap();
        assert_problem(
            app.post_json(
                &format!("/v1/jobs/{id}/audiences"),
                &json!({"expression": "a = b"}),
            )
            .await,
            409,
        )
        .await;
        app.shutdown().await;
    }
}
