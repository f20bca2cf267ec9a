//! Every endpoint of the API, its errors included, on both database backends.

use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};

fn emails(n: usize) -> Vec<String> {
    let pop = population();
    pop.sample_customers(n, None, 3)
        .unwrap()
        .into_iter()
        .filter_map(|c| c.email)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness() {
    for db in databases().await {
        let app = spawn_app_without_workers(db).await;
        let health: Value = app.get_json("/healthz").await;
        assert_eq!(health["status"], "ok");
        assert_eq!(health["provider"], "embedded");
        let ready = app.get("/readyz").await;
        assert_eq!(ready.status().as_u16(), 200);
        let ready: Value = ready.json().await.unwrap();
        let expected = if app.db_url.starts_with("postgres") {
            "postgres"
        } else {
            "sqlite"
        };
        assert_eq!(ready["database"], expected);
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_and_spec_are_served() {
    let app = spawn_app_without_workers(databases().await.remove(0)).await;
    let spec: Value = app.get_json("/openapi.json").await;
    assert!(spec["paths"]["/v1/jobs"]["post"].is_object());
    let docs = app.get("/docs/").await;
    assert_eq!(docs.status().as_u16(), 200);
    assert!(
        docs.text().await.unwrap().contains("swagger"),
        "the docs page is Swagger UI"
    );
    app.shutdown().await;
}

#[test]
fn committed_openapi_matches_the_code() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .expect("openapi/openapi.json is committed");
    let committed: Value = serde_json::from_str(&committed).unwrap();
    let generated: Value = icp_server::api::openapi();
    assert!(
        committed == generated,
        "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json`"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_problem_details() {
    for db in databases().await {
        let app = spawn_app_without_workers(db).await;
        let post_raw = |ct: &'static str, body: &'static str| {
            app.client
                .post(app.url("/v1/jobs"))
                .header("content-type", ct)
                .body(body)
                .send()
        };
        assert_problem(
            post_raw("application/json", "{not json").await.unwrap(),
            422,
        )
        .await;
        assert_problem(post_raw("application/json", "").await.unwrap(), 422).await;
        assert_problem(post_raw("application/xml", "<a/>").await.unwrap(), 415).await;
        assert_problem(
            post_raw("text/csv", "name,city\nAnn,Paris\n")
                .await
                .unwrap(),
            422,
        )
        .await;
        let p = assert_problem(
            post_raw("text/csv", "email,phone\na@x.com\n")
                .await
                .unwrap(),
            422,
        )
        .await;
        assert_eq!(p["errors"][0]["location"], "line 2", "{p}");
        // A value with no normal form is left out; a file with nothing else is refused.
        let p = assert_problem(
            post_raw("text/csv", "email,phone\nnot-an-email,\nx,555-0134\n")
                .await
                .unwrap(),
            422,
        )
        .await;
        assert_eq!(p["errors"][0]["location"], "line 2, column email", "{p}");
        assert!(
            p["errors"][0]["message"]
                .as_str()
                .unwrap()
                .starts_with("2 of the 2 email")
        );
        assert_eq!(p["errors"][1]["location"], "line 3, column phone", "{p}");

        let bad_option = job_body(
            &emails(3),
            json!({"min_support": 2.0, "max_cluster_size": 1}),
        );
        let p = assert_problem(app.post_json("/v1/jobs", &bad_option).await, 422).await;
        let locations = problem_locations(&p);
        assert!(
            locations.contains(&"/options/min_support")
                && locations.contains(&"/options/max_cluster_size"),
            "{p}"
        );

        let unknown_field = json!({"multi_identifiers": [], "optoins": {}});
        assert_problem(app.post_json("/v1/jobs", &unknown_field).await, 422).await;
        let empty = json!({"multi_identifiers": []});
        assert_problem(app.post_json("/v1/jobs", &empty).await, 422).await;
        let bad_hash = json!({"multi_identifiers": [{"id_type": "email", "hash_type": "md5", "values": ["xyz"]}]});
        let p = assert_problem(app.post_json("/v1/jobs", &bad_hash).await, 422).await;
        assert_eq!(p["errors"][0]["location"], "/multi_identifiers/0/values/0");

        // Every route under a job answers a malformed id as it answers an unknown one.
        for (method, path) in [
            (reqwest::Method::GET, "/v1/jobs/not-a-uuid"),
            (reqwest::Method::DELETE, "/v1/jobs/not-a-uuid"),
            (reqwest::Method::POST, "/v1/jobs/not-a-uuid/cancel"),
            (reqwest::Method::GET, "/v1/jobs/not-a-uuid/result"),
            (reqwest::Method::POST, "/v1/jobs/not-a-uuid/feedback"),
            (
                reqwest::Method::GET,
                "/v1/jobs/not-a-uuid/audiences/precision/export",
            ),
        ] {
            let response = app
                .client
                .request(method, app.url(path))
                .send()
                .await
                .unwrap();
            let p = assert_problem(response, 404).await;
            assert_eq!(
                p["type"], "https://icp-service.dev/problems/not-found",
                "{path}"
            );
            assert!(
                p["detail"].as_str().unwrap().contains("not-a-uuid"),
                "{path}: {p}"
            );
        }
        assert_problem(
            app.get("/v1/jobs/00000000-0000-0000-0000-000000000000")
                .await,
            404,
        )
        .await;
        assert_problem(app.get("/v1/nowhere").await, 404).await;
        assert_problem(
            app.client.put(app.url("/v1/jobs")).send().await.unwrap(),
            405,
        )
        .await;
        assert_problem(app.get("/v1/jobs?page_size=0").await, 422).await;
        assert_problem(app.get("/v1/jobs?page_token=%%%").await, 422).await;
        assert_problem(app.get("/v1/jobs?status=sleeping").await, 422).await;
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_through_jobs_with_a_status_filter() {
    for db in databases().await {
        let app = spawn_app_without_workers(db).await;
        let mut ids = Vec::new();
        for _ in 0..5 {
            let job: Value = app
                .post_json("/v1/jobs", &job_body(&emails(2), json!({})))
                .await
                .json()
                .await
                .unwrap();
            ids.push(job["id"].as_str().unwrap().to_owned());
        }
        let cancelled = &ids[0];
        assert_eq!(
            app.post(&format!("/v1/jobs/{cancelled}/cancel"))
                .await
                .status()
                .as_u16(),
            202
        );

        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let path = match &token {
                Some(t) => format!("/v1/jobs?page_size=2&page_token={t}"),
                None => "/v1/jobs?page_size=2".to_owned(),
            };
            let page: Value = app.get_json(&path).await;
            let jobs = page["jobs"].as_array().unwrap();
            assert!(jobs.len() <= 2);
            seen.extend(jobs.iter().map(|j| j["id"].as_str().unwrap().to_owned()));
            match page["next_page_token"].as_str() {
                Some(t) => token = Some(t.to_owned()),
                None => break,
            }
        }
        let mut newest_first = ids.clone();
        newest_first.reverse();
        assert_eq!(seen, newest_first);

        let queued: Value = app.get_json("/v1/jobs?status=queued").await;
        assert_eq!(queued["jobs"].as_array().unwrap().len(), 4);
        let cancelled_page: Value = app.get_json("/v1/jobs?status=cancelled").await;
        assert_eq!(cancelled_page["jobs"][0]["id"], cancelled.as_str());
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_return_the_same_job_or_refuse_a_different_body() {
    for db in databases().await {
        let app = spawn_app_without_workers(db).await;
        let body = job_body(&emails(3), json!({}));
        let post = |body: Value| {
            app.client
                .post(app.url("/v1/jobs"))
                .header("idempotency-key", "order-42")
                .json(&body)
                .send()
        };
        let first: Value = post(body.clone()).await.unwrap().json().await.unwrap();
        let again = post(body.clone()).await.unwrap();
        assert_eq!(again.status().as_u16(), 202);
        assert_eq!(again.headers()["idempotent-replayed"], "true");
        let again: Value = again.json().await.unwrap();
        assert_eq!(first["id"], again["id"]);
        let other = job_body(&emails(4), json!({}));
        assert_problem(post(other).await.unwrap(), 409).await;
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_result_and_delete() {
    for db in databases().await {
        // No workers: the job stays queued until we act on it.
        let app = spawn_app_without_workers(db).await;
        let job: Value = app
            .post_json("/v1/jobs", &job_body(&emails(5), json!({})))
            .await
            .json()
            .await
            .unwrap();
        let id = job["id"].as_str().unwrap();
        assert_problem(app.get(&format!("/v1/jobs/{id}/result")).await, 409).await;
        assert_problem(
            app.get(&format!("/v1/jobs/{id}/audiences/precision/export"))
                .await,
            409,
        )
        .await;
        let cancel = app.post(&format!("/v1/jobs/{id}/cancel")).await;
        assert_eq!(cancel.status().as_u16(), 202);
        let job: Value = app.get_json(&format!("/v1/jobs/{id}")).await;
        assert_eq!(job["status"], "cancelled");
        assert_eq!(
            app.delete(&format!("/v1/jobs/{id}"))
                .await
                .status()
                .as_u16(),
            204
        );
        assert_problem(app.get(&format!("/v1/jobs/{id}")).await, 404).await;
        assert_problem(app.delete(&format!("/v1/jobs/{id}")).await, 404).await;
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_job_can_be_exported_given_feedback_and_purged() {
    for db in databases().await {
        let app = spawn_app(db).await;
        let (_, emails) = segment_emails(2, 300);
        let job: Value = app
            .post_json(
                "/v1/jobs",
                &job_body(
                    &emails,
                    json!({"strategies": ["precision"], "min_support": 0.1}),
                ),
            )
            .await
            .json()
            .await
            .unwrap();
        let id = job["id"].as_str().unwrap().to_owned();
        let job = app.wait_for(&id, Duration::from_secs(120)).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_problem(app.post(&format!("/v1/jobs/{id}/cancel")).await, 409).await;
        assert_problem(
            app.get(&format!("/v1/jobs/{id}/audiences/reach/export"))
                .await,
            404,
        )
        .await;
        assert_problem(
            app.get(&format!("/v1/jobs/{id}/audiences/nope/export"))
                .await,
            404,
        )
        .await;
        assert_problem(
            app.get(&format!(
                "/v1/jobs/{id}/audiences/precision/export?format=xml"
            ))
            .await,
            422,
        )
        .await;

        let feedback = app
            .post_json(
                &format!("/v1/jobs/{id}/feedback"),
                &json!({"rating": 4, "message": "good match"}),
            )
            .await;
        assert_eq!(feedback.status().as_u16(), 200);
        let feedback: Value = feedback.json().await.unwrap();
        assert_eq!(feedback["workflow_id"], job["workflow_id"]);
        assert!(!feedback["tool_trace_ids"].as_array().unwrap().is_empty());
        assert_problem(
            app.post_json(
                &format!("/v1/jobs/{id}/feedback"),
                &json!({"rating": 9, "message": "x"}),
            )
            .await,
            422,
        )
        .await;

        let uuid = uuid::Uuid::parse_str(&id).unwrap();
        assert!(
            app.store
                .export_chunk(uuid, "precision", 0)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(
            app.delete(&format!("/v1/jobs/{id}"))
                .await
                .status()
                .as_u16(),
            204
        );
        assert!(
            app.store
                .export_chunk(uuid, "precision", 0)
                .await
                .unwrap()
                .is_none(),
            "export survived deletion"
        );
        assert!(
            app.store.job_input(uuid).await.unwrap().is_none(),
            "identifiers survived deletion"
        );
        assert!(app.store.traces(uuid).await.unwrap().is_empty());
        app.shutdown().await;
    }
}
