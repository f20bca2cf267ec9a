//! Named segments of a customer list: each segment's own ICP and the traits that set it apart,
//! from JSON and from a CSV `segment` column; bad segment input refused with a pointer.

use serde_json::{Value, json};

use crate::common::*;

/// The population's segments the two job segments are drawn from.
const ALPHA: usize = 0;
const BETA: usize = 2;
const PER_SEGMENT: usize = 500;

fn trait_of(v: &Value) -> (String, String) {
    (
        v["name"].as_str().unwrap().to_owned(),
        v["value"].as_str().unwrap().to_owned(),
    )
}

/// Rows of an audience's JSON lines export.
async fn exported(app: &TestApp, id: &str, audience: &str) -> usize {
    let response = app
        .get(&format!(
            "/v1/jobs/{id}/audiences/{audience}/export?format=jsonl"
        ))
        .await;
    assert_eq!(response.status().as_u16(), 200, "{audience}");
    response.text().await.unwrap().lines().count()
}

/// The names of a result's segments, in its order.
fn segment_names(result: &Value) -> Vec<&str> {
    result["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect()
}

/// The segment named `name` of a result.
fn segment<'a>(result: &'a Value, name: &str) -> &'a Value {
    result["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no segment {name}: {}", result["segments"]))
}

/// Asserts a segment's ICP names the defining traits of the population's segment `drawn`
/// (its best cluster holds 3 of them) and its distinguishing traits rank them first.
fn assert_finds_its_own(result: &Value, name: &str, drawn: usize, other: usize) {
    let s = segment(result, name);
    let own = defining_traits(drawn);
    let theirs = defining_traits(other);
    assert!(
        s["customers"].as_u64().unwrap() as f64 >= 0.9 * PER_SEGMENT as f64,
        "{s}"
    );
    let clusters = s["analysis"]["multi_attribute_clusters"]
        .as_array()
        .expect("the segment's clusters");
    let best = clusters.first().expect("a cluster");
    let overlap = best["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| own.contains(&trait_of(i)))
        .count();
    assert!(
        overlap >= 3,
        "{name}'s best cluster does not name 3 of {own:?}: {best}"
    );
    let distinguishing = s["distinguishing_traits"].as_array().unwrap();
    assert!(distinguishing.len() >= 3, "{s}");
    for t in &distinguishing[..3] {
        let tr = trait_of(t);
        assert!(
            own.contains(&tr) && !theirs.contains(&tr),
            "{name}: {tr:?} ranks among the first distinguishing traits: {distinguishing:?}"
        );
        let (share, rest, index) = (
            t["share"].as_f64().unwrap(),
            t["rest_share"].as_f64().unwrap(),
            t["index"].as_f64().unwrap(),
        );
        assert!(share > rest && index > 2.0, "{t}");
    }
    // Ranked by score (share · ln index), highest first.
    let scores: Vec<f64> = distinguishing
        .iter()
        .map(|t| {
            let score = t["score"].as_f64().unwrap();
            let expected = t["share"].as_f64().unwrap() * t["index"].as_f64().unwrap().ln();
            assert!((score - expected).abs() < 1e-9, "{t}");
            score
        })
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
}

/// Asserts each of a segment's audiences is validated against that segment's customers: its
/// traits are the segment's top traits at the segment's frequencies, and its precision
/// audience holds them closer than a draw of the population does.
fn assert_validated_against_its_segment(s: &Value, name: &str, audiences: &[Value]) {
    let frequency: std::collections::HashMap<(String, String), f64> =
        s["analysis"]["top_attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (trait_of(a), a["frequency"].as_f64().unwrap()))
            .collect();
    for a in audiences {
        let v = &a["validation"];
        let traits = v["traits"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}'s {} is not validated: {a}", a["strategy"]));
        assert!(!traits.is_empty(), "{a}");
        for t in traits {
            let f = frequency.get(&trait_of(t)).copied();
            assert_eq!(
                f,
                t["customers"].as_f64(),
                "{name}: {t} is not at the segment's frequency"
            );
        }
        if a["strategy"] == "precision" {
            let (score, draw) = (
                v["similarity"].as_f64().unwrap(),
                v["population_similarity"].as_f64().unwrap(),
            );
            assert!(score > draw, "{name}'s precision: {score} vs {draw}: {v}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_segment_finds_its_own_icp_and_what_sets_it_apart() {
    let (_, alpha) = segment_emails(ALPHA, PER_SEGMENT);
    let (_, beta) = segment_emails(BETA, PER_SEGMENT);
    for db in databases().await {
        let app = spawn_app(db).await;
        let body = json!({
            "segments": {
                "beta": {"multi_identifiers": [{"id_type": "email", "hash_type": "plaintext", "values": beta}]},
                "alpha": {"multi_identifiers": [{"id_type": "email", "hash_type": "plaintext", "values": alpha}]},
            },
            "options": {"min_support": 0.05},
        });
        let (id, job, result) = finished_job(&app, &body).await;
        // The whole list resolved and analysed as one, as without segments.
        assert_eq!(
            job["progress"]["resolve"]["total"].as_u64(),
            Some(2 * PER_SEGMENT as u64),
            "{job}"
        );
        assert!(result["customers"].as_u64().unwrap() >= 900, "{result}");
        assert!(!result["audiences"].as_array().unwrap().is_empty());
        // Side by side, in name order.
        assert_eq!(segment_names(&result), ["alpha", "beta"]);
        assert_finds_its_own(&result, "alpha", ALPHA, BETA);
        assert_finds_its_own(&result, "beta", BETA, ALPHA);
        let mut precision = Vec::new();
        for name in ["alpha", "beta"] {
            let s = segment(&result, name);
            assert_eq!(s["requested"], PER_SEGMENT as u64, "{s}");
            assert_eq!(s["customers"], s["analysis"]["customers"], "{s}");
            // Its own audiences, each downloadable under its own name.
            let audiences = s["audiences"].as_array().unwrap();
            assert!(audiences.len() >= 3, "{s}");
            for a in audiences {
                let export = format!("segment.{name}.{}", a["strategy"].as_str().unwrap());
                assert_eq!(a["name"], export.as_str(), "{a}");
                let rows = exported(&app, &id, &export).await;
                assert_eq!(rows, a["exported"].as_u64().unwrap() as usize, "{a}");
            }
            let p = audiences
                .iter()
                .find(|a| a["strategy"] == "precision")
                .unwrap_or_else(|| panic!("{name} has no precision audience: {s}"));
            precision.push(p.clone());
            assert_validated_against_its_segment(s, name, audiences);
        }
        // The combined audience: the two precision expressions ORed, each in parentheses.
        let combined = &result["combined_audience"];
        let or = |field: &str| {
            format!(
                "({}) OR ({})",
                precision[0][field].as_str().unwrap(),
                precision[1][field].as_str().unwrap()
            )
        };
        assert_eq!(
            combined["expression"],
            or("expression").as_str(),
            "{combined}"
        );
        assert_eq!(combined["description"], or("description").as_str());
        assert_eq!(combined["name"], "combined");
        let total = combined["total"].as_u64().unwrap();
        for p in &precision {
            assert!(total >= p["total"].as_u64().unwrap(), "{combined} {p}");
        }
        assert!(exported(&app, &id, "combined").await > 0);
        // The combined audience is set against the whole list, as its own audiences are.
        let whole = &result["audiences"][0]["validation"];
        assert_eq!(
            combined["validation"]["traits"]
                .as_array()
                .expect("the combined audience's validation")
                .iter()
                .map(|t| (trait_of(t), t["customers"].clone()))
                .collect::<Vec<_>>(),
            whole["traits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| (trait_of(t), t["customers"].clone()))
                .collect::<Vec<_>>(),
            "{combined}"
        );
        // The validate stage took every audience: the whole list's, each segment's, the
        // combined one.
        let audiences = |v: &Value| v["audiences"].as_array().unwrap().len() as u64;
        let tiers = result["ranked"]["tiers"].as_array().map_or(0, Vec::len) as u64;
        let expected = audiences(&result)
            + tiers
            + audiences(segment(&result, "alpha"))
            + audiences(segment(&result, "beta"))
            + 1;
        assert_eq!(job["progress"]["validate"]["total"], expected, "{job}");
        assert_eq!(job["progress"]["validate"]["done"], expected, "{job}");
        // The whole list's audiences keep their names; an unknown segment has none.
        assert!(exported(&app, &id, "precision").await > 0);
        assert_problem(
            app.get(&format!(
                "/v1/jobs/{id}/audiences/segment.gamma.precision/export"
            ))
            .await,
            404,
        )
        .await;
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_segment_column_names_each_line_s_segment() {
    let (_, alpha) = segment_emails(ALPHA, 300);
    let (_, beta) = segment_emails(BETA, 300);
    let mut csv = String::from("Email,Segment,name\n");
    for e in &alpha {
        csv.push_str(&format!("{e},golf-fans,x\n"));
    }
    for e in &beta {
        csv.push_str(&format!("{e},b_2,x\n"));
    }
    // A line without a segment: a customer of the whole list only.
    csv.push_str(&format!("{},,x\n", beta[0]));
    for db in databases().await {
        let app = spawn_app(db).await;
        let response = app
            .client
            .post(app.url("/v1/jobs?min_support=0.05"))
            .header("content-type", "text/csv")
            .body(csv.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 202);
        let job: Value = response.json().await.unwrap();
        let id = job["id"].as_str().unwrap().to_owned();
        let job = app.wait_for(&id, std::time::Duration::from_secs(180)).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let result: Value = app.get_json(&format!("/v1/jobs/{id}/result")).await;
        assert_eq!(segment_names(&result), ["b_2", "golf-fans"]);
        assert_eq!(segment(&result, "golf-fans")["requested"], 300);
        assert_eq!(segment(&result, "b_2")["requested"], 300);
        assert!(segment(&result, "b_2")["customers"].as_u64().unwrap() >= 270);
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_segments_are_refused_with_a_pointer() {
    let group =
        |values: Value| json!([{"id_type": "email", "hash_type": "plaintext", "values": values}]);
    for db in databases().await {
        let app = spawn_app_without_workers(db).await;
        let cases: Vec<(Value, &str)> = vec![
            (
                json!({"segments": {"no spaces": {"multi_identifiers": group(json!(["a@x.com"]))}}}),
                "/segments",
            ),
            (json!({"segments": {}}), "/segments"),
            (
                json!({"segments": {"a": {"multi_identifiers": group(json!(["a@x.com"]))},
                                    "b": {"multi_identifiers": group(json!(["nobody"]))}}}),
                "/segments/b/multi_identifiers/0/values/0",
            ),
            (
                json!({"segments": {"a": {"multi_identifiers": [
                    {"id_type": "address", "hash_type": "sha256", "values": ["x"]}]}}}),
                "/segments/a/multi_identifiers/0/hash_type",
            ),
            (
                json!({"multi_identifiers": group(json!(["c@x.com"])),
                       "segments": {"a": {"multi_identifiers": []}}}),
                "/segments/a/multi_identifiers",
            ),
        ];
        for (body, pointer) in cases {
            let p = assert_problem(app.post_json("/v1/jobs", &body).await, 422).await;
            assert!(problem_locations(&p).contains(&pointer), "{body}: {p}");
        }
        let many: serde_json::Map<String, Value> = (0..21)
            .map(|i| {
                (
                    format!("s{i}"),
                    json!({"multi_identifiers": group(json!(["a@x.com"]))}),
                )
            })
            .collect();
        let p = assert_problem(
            app.post_json("/v1/jobs", &json!({"segments": many})).await,
            422,
        )
        .await;
        assert_eq!(p["errors"][0]["location"], "/segments", "{p}");
        let p = assert_problem(
            app.client
                .post(app.url("/v1/jobs"))
                .header("content-type", "text/csv")
                .body("email,segment\na@x.com,ok\nb@x.com,not/ok\n")
                .send()
                .await
                .unwrap(),
            422,
        )
        .await;
        assert_eq!(p["errors"][0]["location"], "line 3, column segment", "{p}");
        app.shutdown().await;
    }
}
