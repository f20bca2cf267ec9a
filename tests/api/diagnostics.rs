//! Warnings a user can act on: hashed phones sent as plaintext named as the cause of a low match
//! rate, a list with malformed emails and duplicates, audiences emptied by their location with
//! each term's size, and a job that resolves nobody failing with the same diagnosis.

use crate::common::*;
use icp_contract::{HashType, digest_hex};
use serde_json::{Value, json};

/// The job's warnings of `code`.
fn warnings<'a>(job: &'a Value, code: &str) -> Vec<&'a Value> {
    job["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("no warnings: {job}"))
        .iter()
        .filter(|w| w["code"] == code)
        .collect()
}

fn warning<'a>(job: &'a Value, code: &str) -> &'a Value {
    let found = warnings(job, code);
    assert_eq!(found.len(), 1, "one {code} warning: {}", job["warnings"]);
    found[0]
}

fn contacts(segment: usize, n: usize, seed: u64) -> (Vec<String>, Vec<String>) {
    let pop = population();
    let name = pop.segments()[segment].name.clone();
    let customers = pop.sample_customers(n, Some(&name), seed).unwrap();
    let emails = customers.iter().filter_map(|c| c.email.clone()).collect();
    let phones = customers.iter().filter_map(|c| c.phone.clone()).collect();
    (emails, phones)
}

const OPTIONS: fn() -> Value =
    || json!({"min_support": 0.05, "audience_limit": 500, "ranked": false});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashed_phones_sent_as_plaintext_are_named_as_the_cause() {
    let (_, phones) = contacts(2, 700, 21);
    let (clean, hashed) = phones.split_at(150);
    // The customers' phones hashed as the upstream expects them, then sent as plaintext.
    let hashed: Vec<String> = hashed
        .iter()
        .map(|p| digest_hex(HashType::Sha256, p))
        .collect();
    assert!(hashed.len() > 300, "{}", hashed.len());
    for db in databases().await {
        let app = spawn_app(db).await;
        // Only hashed values: nothing to send, and the 422 says why at the group's hash type.
        let only_hashed = json!({"multi_identifiers": [
            {"id_type": "phone", "hash_type": "plaintext", "values": hashed},
        ]});
        let problem = assert_problem(app.post_json("/v1/jobs", &only_hashed).await, 422).await;
        let at_hash_type = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["location"] == "/multi_identifiers/0/hash_type")
            .unwrap_or_else(|| panic!("no error at the hash type: {problem}"));
        let message = at_hash_type["message"].as_str().unwrap();
        assert!(message.starts_with("hashed_sent_as_plaintext"), "{message}");
        assert!(message.contains("sha256"), "{message}");

        let mut values: Vec<String> = clean.to_vec();
        values.extend(hashed.iter().cloned());
        let body = json!({
            "multi_identifiers": [{"id_type": "phone", "hash_type": "plaintext", "values": values}],
            "options": OPTIONS(),
        });
        let created: Value = app.post_json("/v1/jobs", &body).await.json().await.unwrap();
        // Found when the job is created.
        let w = warning(&created, "hashed_sent_as_plaintext");
        assert_eq!(w["id_type"], "phone");
        assert_eq!(w["hash_type"], "plaintext");
        assert_eq!(w["looks_like"], "sha256");
        assert_eq!(w["count"].as_u64(), Some(hashed.len() as u64), "{w}");
        assert_eq!(w["of"].as_u64(), Some(values.len() as u64), "{w}");
        let id = created["id"].as_str().unwrap();
        let job = app.wait_for(id, std::time::Duration::from_secs(180)).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        // After resolve: the rate is low, the phone group's rate given, the cause named.
        let low = warning(&job, "low_resolution");
        assert!(low["rate"].as_f64().unwrap() < 0.5, "{low}");
        assert_eq!(low["left_out"].as_u64(), Some(hashed.len() as u64), "{low}");
        let causes: Vec<&str> = low["causes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert!(causes.contains(&"hashed_sent_as_plaintext"), "{low}");
        let group = &low["groups"][0];
        assert_eq!(
            (&group["id_type"], &group["hash_type"]),
            (&json!("phone"), &json!("plaintext"))
        );
        assert_eq!(group["sent"].as_u64(), Some(clean.len() as u64), "{group}");
        assert!(group["matched"].as_u64().unwrap() > 0, "{group}");
        // No identifier in any warning.
        let shown = job["warnings"].to_string();
        assert!(!shown.contains(&hashed[0]) && !shown.contains(&clean[0]));
        // The result and its report carry them too.
        let result: Value = app.get_json(&format!("/v1/jobs/{id}/result")).await;
        assert_eq!(result["warnings"], job["warnings"]);
        let page = app
            .get(&format!("/v1/jobs/{id}/report"))
            .await
            .text()
            .await
            .unwrap();
        assert!(
            page.contains("hashed_sent_as_plaintext"),
            "no warning in the report"
        );
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_match_list_names_malformed_emails_and_duplicates() {
    let (emails, _) = contacts(3, 200, 22);
    let mut values: Vec<String> = emails.clone();
    // Upper-cased repeats: duplicates once normalised.
    values.extend(emails[..60].iter().map(|e| e.to_uppercase()));
    // Malformed: sent (an @ but no domain dot), and left out (no @).
    values.extend((0..250).map(|i| format!("customer{i}@localhost")));
    values.extend((0..40).map(|i| format!("customer{i}.example.com")));
    let body = job_body(&values, OPTIONS());
    for db in databases().await {
        let app = spawn_app(db).await;
        let (_, job) = post_and_wait(&app, &body).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let malformed = warning(&job, "malformed_email");
        assert_eq!(malformed["count"].as_u64(), Some(290), "{malformed}");
        assert_eq!(malformed["left_out"].as_u64(), Some(40), "{malformed}");
        let duplicates = warning(&job, "duplicates");
        assert_eq!(duplicates["count"].as_u64(), Some(60), "{duplicates}");
        let low = warning(&job, "low_resolution");
        let group = &low["groups"][0];
        assert_eq!(group["id_type"], "email");
        // Sent: the customers and the malformed ones with an @; matched: customers only.
        assert_eq!(
            group["sent"].as_u64(),
            Some(emails.len() as u64 + 250),
            "{group}"
        );
        assert!(group["rate"].as_f64().unwrap() < 0.5, "{group}");
        assert_eq!(
            low["causes"],
            json!(["malformed_email", "duplicates"]),
            "{low}"
        );
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audiences_emptied_by_their_location_say_so_with_each_term() {
    let (_, emails) = segment_emails(1, 400);
    // A mile of the Pacific: nobody lives there.
    let mut options = OPTIONS();
    options["location"] = json!({"latitude": 0.0, "longitude": -140.0, "radius": 1.0});
    let body = job_body(&emails, options);
    for db in databases().await {
        let app = spawn_app(db).await;
        let (id, job, result) = finished_job(&app, &body).await;
        let empty = warnings(&job, "audience_empty");
        let audiences = result["audiences"].as_array().unwrap();
        assert!(!audiences.is_empty());
        assert_eq!(empty.len(), audiences.len(), "{}", job["warnings"]);
        for w in empty {
            let d = &w["audience"];
            assert_eq!(d["total"].as_u64(), Some(0), "{d}");
            assert_eq!(d["threshold"].as_u64(), Some(100), "{d}");
            let terms = d["terms"].as_array().unwrap();
            assert!(!terms.is_empty(), "{d}");
            for t in terms {
                assert!(t["term"].as_str().unwrap().contains('='), "{t}");
                assert_eq!(t["size"].as_u64(), Some(0), "{t}");
            }
            assert!(d["without_location"].as_u64().unwrap() > 0, "{d}");
            assert_eq!(d["emptied_by"], "location", "{d}");
            assert!(
                w["message"]
                    .as_str()
                    .unwrap()
                    .contains("widen the location"),
                "{w}"
            );
        }
        assert_eq!(result["warnings"], job["warnings"], "{id}");
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_resolves_nobody_fails_with_the_diagnosis() {
    // Nobody of the population, some malformed, some repeated.
    let mut values: Vec<String> = (0..300)
        .map(|i| format!("stranger{i}@example.invalid"))
        .collect();
    values.extend((0..100).map(|i| format!("stranger{i}@nowhere")));
    values.extend((0..50).map(|i| format!("STRANGER{i}@example.invalid")));
    let body = job_body(&values, OPTIONS());
    for db in databases().await {
        let app = spawn_app(db).await;
        let (_, job) = post_and_wait(&app, &body).await;
        assert_eq!(job["status"], "failed", "{job}");
        let error = &job["error"];
        assert!(
            error["type"]
                .as_str()
                .unwrap()
                .ends_with("job-no-customers"),
            "{error}"
        );
        assert!(
            error["detail"]
                .as_str()
                .unwrap()
                .contains("see the warnings"),
            "{error}"
        );
        // The problem carries the same diagnosis as the job.
        assert_eq!(error["warnings"], job["warnings"], "{job}");
        let low = warning(&job, "low_resolution");
        assert_eq!(low["rate"].as_f64(), Some(0.0), "{low}");
        assert_eq!(low["groups"][0]["matched"].as_u64(), Some(0), "{low}");
        assert_eq!(low["groups"][0]["sent"].as_u64(), Some(400), "{low}");
        assert_eq!(
            low["causes"],
            json!(["malformed_email", "duplicates"]),
            "{low}"
        );
        assert_eq!(
            warning(&job, "malformed_email")["count"].as_u64(),
            Some(100)
        );
        assert_eq!(warning(&job, "duplicates")["count"].as_u64(), Some(50));
        app.shutdown().await;
    }
}
