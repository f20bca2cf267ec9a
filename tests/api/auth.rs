//! API keys: a job belongs to the key that made it; without a key in the database the service
//! is open but only on loopback; keys are managed with `icp keys`.

use std::process::Command;
use std::time::{Duration, Instant};

use icp_server::ServiceConfig;
use icp_server::auth::key;
use icp_store::Store;
use icp_store::test_support::TestDatabase;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{
    AppOptions, TestApp, assert_problem, databases, job_body, population, segment_emails,
    spawn_app_with, spawn_app_without_workers,
};

/// Stores a new key and returns it whole.
async fn new_key(store: &Store, name: &str) -> (String, String) {
    let issued = key::issue();
    store
        .create_api_key(&issued.id, Some(name), &issued.secret_hash)
        .await
        .unwrap();
    (issued.id, issued.token)
}

async fn send(app: &TestApp, method: Method, path: &str, key: Option<&str>) -> reqwest::Response {
    let mut request = app.client.request(method.clone(), app.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if method == Method::POST && path == "/v1/jobs" {
        let (_, emails) = segment_emails(1, 200);
        request = request.json(&job_body(&emails, json!({"min_support": 0.05})));
    } else if path.ends_with("/feedback") {
        request = request.json(&json!({"rating": 4, "message": "good"}));
    } else if path.ends_with("/audiences") {
        request = request.json(&json!({"expression": "a = b"}));
    }
    request.send().await.expect("request")
}

async fn wait_succeeded(app: &TestApp, id: &str, key: &str) {
    let started = Instant::now();
    loop {
        let job: Value = send(app, Method::GET, &format!("/v1/jobs/{id}"), Some(key))
            .await
            .json()
            .await
            .unwrap();
        match job["status"].as_str().unwrap() {
            "queued" | "running" => {}
            "succeeded" => return,
            other => panic!("job {id} {other}: {job}"),
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_job_belongs_to_the_key_that_made_it() {
    for db in databases().await {
        let app = spawn_app_with(db, AppOptions::default()).await;
        let (alice_id, alice) = new_key(&app.store, "alice").await;
        let (_, bob) = new_key(&app.store, "bob").await;
        // The service started open; it closes within seconds of the first key.
        let closed =
            eventually(|| async { app.get("/v1/jobs").await.status() == StatusCode::UNAUTHORIZED })
                .await;
        assert!(closed);

        // Without a key, or with a bad one: 401 with the scheme, and nothing is created.
        let forged = key::issue().token;
        let wrong_secret = format!("{}{}", &alice[..alice.len() - 4], "AAAA");
        for (header, says) in [
            (None, "needs an API key"),
            (Some(format!("Basic {alice}")), "Bearer <key>"),
            (Some("Bearer not-a-key".to_owned()), "not an icp API key"),
            (Some(format!("Bearer {forged}")), "not valid"),
            (Some(format!("Bearer {wrong_secret}")), "not valid"),
        ] {
            let mut request = app.client.post(app.url("/v1/jobs")).json(&json!({}));
            if let Some(h) = &header {
                request = request.header("authorization", h);
            }
            let response = request.send().await.unwrap();
            assert_eq!(
                response.headers()["www-authenticate"],
                "Bearer realm=\"icp\"",
                "{header:?}"
            );
            let problem = assert_problem(response, 401).await;
            assert!(
                problem["detail"].as_str().unwrap().contains(says),
                "{header:?}: {problem}"
            );
        }
        // Health, readiness, the docs, the spec and the console (it holds no data) need no key.
        for path in [
            "/healthz",
            "/readyz",
            "/openapi.json",
            "/docs/",
            "/",
            "/ui",
            "/ui/console.js",
            "/ui/sse.js",
            "/ui/console.css",
        ] {
            let status = app.get(path).await.status();
            assert_eq!(status, StatusCode::OK, "{path}");
        }

        let created: Value = send(&app, Method::POST, "/v1/jobs", Some(&alice))
            .await
            .json()
            .await
            .unwrap();
        let id = created["id"].as_str().unwrap().to_owned();
        wait_succeeded(&app, &id, &alice).await;
        let record = app.store.get_job(id.parse().unwrap(), None).await.unwrap();
        assert_eq!(record.unwrap().owner.as_deref(), Some(alice_id.as_str()));

        // Another key cannot see, read, report, export, give feedback on, add an audience to,
        // cancel or delete it.
        let job = format!("/v1/jobs/{id}");
        for (method, path) in [
            (Method::GET, job.clone()),
            (Method::GET, format!("{job}/result")),
            (Method::GET, format!("{job}/events")),
            (Method::GET, format!("{job}/report")),
            (Method::GET, format!("{job}/audiences/precision/export")),
            (Method::POST, format!("{job}/feedback")),
            (Method::POST, format!("{job}/audiences")),
            (Method::POST, format!("{job}/cancel")),
            (Method::DELETE, job.clone()),
        ] {
            let response = send(&app, method.clone(), &path, Some(&bob)).await;
            assert_problem(response, 404).await;
        }
        let bobs: Value = send(&app, Method::GET, "/v1/jobs", Some(&bob))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(bobs["jobs"], json!([]), "{bobs}");
        // The owner still has it all.
        let alices: Value = send(&app, Method::GET, "/v1/jobs", Some(&alice))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(alices["jobs"][0]["id"], id.as_str());
        for path in [
            job.clone(),
            format!("{job}/result"),
            format!("{job}/report"),
            format!("{job}/audiences/precision/export"),
        ] {
            let status = send(&app, Method::GET, &path, Some(&alice)).await.status();
            assert_eq!(status, StatusCode::OK, "{path}");
        }
        let deleted = send(&app, Method::DELETE, &job, Some(&alice)).await;
        assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
        app.shutdown().await;
    }
}

#[tokio::test]
async fn idempotency_keys_are_scoped_per_api_key() {
    for db in databases().await {
        let app = spawn_app_without_workers(db).await;
        let (_, alice) = new_key(&app.store, "alice").await;
        let (_, bob) = new_key(&app.store, "bob").await;
        let post = |key: &str, email: &str| {
            app.client
                .post(app.url("/v1/jobs"))
                .bearer_auth(key)
                .header("idempotency-key", "same-key")
                .json(&job_body(&[email.to_owned()], json!({})))
                .send()
        };
        // Each key has its own key space: the same Idempotency-Key with different bodies is
        // two jobs, not a conflict, and replaying one key's request gives its own job back.
        let a: Value = post(&alice, "a@example.com")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let b = post(&bob, "b@example.com").await.unwrap();
        assert_eq!(b.status(), StatusCode::ACCEPTED);
        let b: Value = b.json().await.unwrap();
        assert_ne!(a["id"], b["id"]);
        let again = post(&alice, "a@example.com").await.unwrap();
        assert_eq!(again.headers()["idempotent-replayed"], "true");
        let again: Value = again.json().await.unwrap();
        assert_eq!(again["id"], a["id"]);
        assert_problem(post(&alice, "other@example.com").await.unwrap(), 409).await;
        app.shutdown().await;
    }
}

#[tokio::test]
async fn a_key_past_its_jobs_in_flight_gets_429_and_others_do_not() {
    for db in databases().await {
        let options = AppOptions {
            workers: 0,
            max_jobs_in_flight: Some(2),
            ..AppOptions::default()
        };
        let app = spawn_app_with(db, options).await;
        let (_, alice) = new_key(&app.store, "alice").await;
        let (_, bob) = new_key(&app.store, "bob").await;
        for _ in 0..2 {
            let response = send(&app, Method::POST, "/v1/jobs", Some(&alice)).await;
            assert_eq!(response.status(), StatusCode::ACCEPTED);
        }
        let refused = send(&app, Method::POST, "/v1/jobs", Some(&alice)).await;
        assert_eq!(refused.headers()["retry-after"], "5");
        let problem = assert_problem(refused, 429).await;
        assert!(
            problem["detail"].as_str().unwrap().contains("at once is 2"),
            "{problem}"
        );
        let theirs = send(&app, Method::POST, "/v1/jobs", Some(&bob)).await;
        assert_eq!(theirs.status(), StatusCode::ACCEPTED);

        // A finished (here: cancelled) job frees its place.
        let list: Value = send(&app, Method::GET, "/v1/jobs", Some(&alice))
            .await
            .json()
            .await
            .unwrap();
        let first = list["jobs"][0]["id"].as_str().unwrap();
        let cancel_path = format!("/v1/jobs/{first}/cancel");
        let cancel = send(&app, Method::POST, &cancel_path, Some(&alice)).await;
        assert_eq!(cancel.status(), StatusCode::ACCEPTED);
        let response = send(&app, Method::POST, "/v1/jobs", Some(&alice)).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        app.shutdown().await;
    }
}

#[tokio::test]
async fn revoking_a_key_and_creating_the_first_take_effect_while_running() {
    for db in databases().await {
        let app = spawn_app_without_workers(db).await;
        // Open: no key in the database.
        assert_eq!(app.get("/v1/jobs").await.status(), StatusCode::OK);

        // The first key closes the service to requests without one, within seconds.
        let (id, token) = new_key(&app.store, "first").await;
        let closed =
            eventually(|| async { app.get("/v1/jobs").await.status() == StatusCode::UNAUTHORIZED })
                .await;
        assert!(
            closed,
            "requests without a key still served after a key was created"
        );
        let ok = send(&app, Method::GET, "/v1/jobs", Some(&token)).await;
        assert_eq!(ok.status(), StatusCode::OK);

        // Revoked: refused within seconds, and saying why.
        assert!(
            app.store
                .revoke_api_key(&id, time::OffsetDateTime::now_utc())
                .await
                .unwrap()
        );
        let refused = eventually(|| async {
            send(&app, Method::GET, "/v1/jobs", Some(&token))
                .await
                .status()
                == StatusCode::UNAUTHORIZED
        })
        .await;
        assert!(refused, "a revoked key still accepted");
        let problem =
            assert_problem(send(&app, Method::GET, "/v1/jobs", Some(&token)).await, 401).await;
        assert!(
            problem["detail"].as_str().unwrap().contains("revoked"),
            "{problem}"
        );
        // Revoking every key does not reopen the service.
        assert_eq!(app.get("/v1/jobs").await.status(), StatusCode::UNAUTHORIZED);
        app.shutdown().await;
    }
}

/// Whether `check` becomes true within 10 s (revocation and the first key reach a running
/// process within seconds, not at once).
async fn eventually<F, Fut>(check: F) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

#[tokio::test]
async fn without_a_key_the_service_refuses_to_listen_beyond_loopback() {
    let db = TestDatabase::sqlite().await;
    let store = Store::connect(db.url()).await.unwrap();
    store.migrate().await.unwrap();
    let provider = std::sync::Arc::new(icp_population::EmbeddedProvider::new(population()));
    let config = |listen: &str| ServiceConfig {
        listen: listen.parse().unwrap(),
        ..ServiceConfig::default()
    };
    let refused = icp_server::start(config("0.0.0.0:0"), store.clone(), provider.clone()).await;
    let message = refused
        .err()
        .expect("started open on all interfaces")
        .to_string();
    assert!(message.contains("icp keys create"), "{message}");

    // With a key it starts, on any interface.
    new_key(&store, "ops").await;
    let service = icp_server::start(config("0.0.0.0:0"), store.clone(), provider)
        .await
        .expect("starts with a key");
    service.shutdown().await;
}

/// `icp keys` and `icp serve` as an operator runs them.
#[test]
fn the_keys_command_creates_lists_and_revokes() {
    let dir = tempfile_dir();
    let url = format!("sqlite://{}/keys.db", dir.display());
    let icp = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_icp"))
            .args(args)
            .env("DATABASE_URL", &url)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run icp")
    };
    // Listening beyond loopback with no key: refused at once, saying how to make one.
    let serve = icp(&[
        "serve",
        "--listen",
        "0.0.0.0:0",
        "--population-size",
        "1000",
    ]);
    assert!(!serve.status.success());
    let said = String::from_utf8_lossy(&serve.stderr);
    assert!(said.contains("icp keys create"), "{said}");

    let created = icp(&["keys", "create", "--name", "dashboard"]);
    assert!(created.status.success(), "{created:?}");
    let token = String::from_utf8(created.stdout).unwrap().trim().to_owned();
    let presented = key::parse(&token).expect("prints a whole key");
    let listed = icp(&["keys", "list"]);
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(
        listed.contains(presented.id) && listed.contains("dashboard"),
        "{listed}"
    );
    assert!(
        !listed.contains(presented.secret),
        "list shows the secret: {listed}"
    );

    // --if-none makes nothing when a key exists.
    let again = icp(&["keys", "create", "--if-none"]);
    assert!(again.status.success());
    assert!(again.stdout.is_empty());

    assert!(icp(&["keys", "revoke", presented.id]).status.success());
    let twice = icp(&["keys", "revoke", presented.id]);
    assert!(!twice.status.success());
    let listed = String::from_utf8(icp(&["keys", "list"]).stdout).unwrap();
    let line = listed
        .lines()
        .find(|l| l.starts_with(presented.id))
        .unwrap();
    assert!(!line.contains("  -  "), "revocation not listed: {line}");
    std::fs::remove_dir_all(dir).unwrap();
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("icp-keys-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
