//! Webhooks end to end: a receiver on 127.0.0.1:0 in the test answers what the test scripts
//! (500, 500, then 200), keeps every request, and the signatures are checked by the Standard
//! Webhooks reference library (`standardwebhooks` from PyPI, pinned in
//! `tests/interop/requirements.txt`), not by code of this repository. Callback URLs the service
//! may not call are refused when the job is posted.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use icp_server::auth::key;
use icp_server::webhook_secret::WebhookSecret;
use icp_store::test_support::job_rows;
use serde_json::{Value, json};

use crate::common::*;
use crate::python_env::PythonNeed;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
    answered: u16,
}

#[derive(Clone, Default)]
struct Receiver {
    script: Arc<Mutex<VecDeque<u16>>>,
    got: Arc<Mutex<Vec<Received>>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let answer = r.script.lock().unwrap().pop_front().unwrap_or(200);
    r.got.lock().unwrap().push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body,
        answered: answer,
    });
    StatusCode::from_u16(answer).unwrap()
}

/// A receiver answering `script` in order (200 once it runs out), and its URL.
async fn receiver(script: &[u16]) -> (Receiver, String) {
    let r = Receiver::default();
    r.script.lock().unwrap().extend(script);
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (r, format!("http://{addr}/hook?token=not-for-logs"))
}

/// A Python with the Standard Webhooks library.
fn python() -> String {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            PythonNeed {
                probe: "import standardwebhooks",
                requirements: &interop_dir().join("requirements.txt"),
                venv: "interop-venv",
            }
            .python()
        })
        .clone()
}

fn interop_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// How many of `received` the reference library verifies with `secret`.
fn verified_by_reference(secret: &str, received: &[Received]) -> usize {
    let messages: Vec<Value> = received
        .iter()
        .map(|r| {
            json!({"headers": {"webhook-id": r.id, "webhook-timestamp": r.timestamp,
                               "webhook-signature": r.signature}, "body": r.body})
        })
        .collect();
    let mut child = Command::new(python())
        .arg(interop_dir().join("verify_webhooks.py"))
        .arg(secret)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    serde_json::to_writer(child.stdin.take().unwrap(), &messages).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let verdicts: Vec<bool> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdicts.len(), received.len());
    verdicts.into_iter().filter(|ok| *ok).count()
}

fn fast_webhooks(secret: WebhookSecret) -> Configure {
    Box::new(move |c| {
        c.webhooks.allow_private = true;
        c.webhooks.service_secret = secret;
        c.webhooks.retry_base = Duration::from_millis(20);
        c.webhooks.retry_cap = Duration::from_millis(100);
        c.webhooks.poll_interval = Duration::from_millis(20);
        c.webhooks.attempt_timeout = Duration::from_secs(5);
    })
}

/// Posts a job of `customers` customers with `url` as its callback; its id.
async fn post_with_callback(app: &TestApp, url: &str, customers: usize) -> String {
    let (_, emails) = segment_emails(0, customers);
    let created = app
        .post_json("/v1/jobs", &job_body(&emails, json!({"callback_url": url})))
        .await;
    assert_eq!(created.status(), 202);
    created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Polls the job's deliveries until one ends them (not `retry`), or panics after a minute.
async fn settled_deliveries(app: &TestApp, token: Option<&str>, id: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut req = app
            .client
            .get(app.url(&format!("/v1/jobs/{id}/deliveries")));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let page: Value = req.send().await.unwrap().json().await.unwrap();
        assert_eq!(page["callback"], true, "{page}");
        let deliveries = page["deliveries"].as_array().unwrap().clone();
        if deliveries.last().is_some_and(|d| d["outcome"] != "retry") {
            return deliveries;
        }
        assert!(
            Instant::now() < deadline,
            "job {id}: deliveries still unsettled: {page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_twice_gets_one_signed_delivery_and_the_job_shows_three_attempts() {
    for db in databases().await {
        let app = spawn_app_with(
            db,
            AppOptions {
                configure: Some(fast_webhooks(WebhookSecret::generate())),
                ..AppOptions::default()
            },
        )
        .await;
        let issued = key::issue();
        app.store
            .create_api_key(&issued.id, Some("hooks"), &issued.secret_hash)
            .await
            .unwrap();
        let secret = WebhookSecret::generate().expose();
        assert!(
            app.store
                .set_webhook_secret(&issued.id, &secret)
                .await
                .unwrap()
        );
        let (receiver, url) = receiver(&[500, 500, 200]).await;

        let (_, emails) = segment_emails(0, 40);
        let created = app
            .client
            .post(app.url("/v1/jobs"))
            .bearer_auth(&issued.token)
            .json(&job_body(&emails, json!({"callback_url": url})))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 202);
        let job: Value = created.json().await.unwrap();
        let id = job["id"].as_str().unwrap().to_owned();
        assert_eq!(job["options"]["callback_url"], url);

        let deliveries = settled_deliveries(&app, Some(&issued.token), &id).await;
        let outcomes: Vec<&str> = deliveries
            .iter()
            .map(|d| d["outcome"].as_str().unwrap())
            .collect();
        assert_eq!(outcomes, ["retry", "retry", "delivered"], "{deliveries:?}");
        let codes: Vec<i64> = deliveries
            .iter()
            .map(|d| d["status_code"].as_i64().unwrap())
            .collect();
        assert_eq!(codes, [500, 500, 200]);
        for (i, d) in deliveries.iter().enumerate() {
            assert_eq!(d["attempt"], i + 1);
            assert!(d["error_kind"].is_null());
            assert_eq!(d["next_attempt_at"].is_string(), i < 2, "{d}");
        }

        let got = receiver.got.lock().unwrap().clone();
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got.iter().filter(|r| r.answered == 200).count(), 1);
        assert!(
            got.iter()
                .all(|r| r.id == got[0].id && r.id.starts_with("msg_"))
        );
        // The reference library accepts every attempt with the key's secret, none with another.
        assert_eq!(verified_by_reference(&secret, &got), 3);
        let wrong = WebhookSecret::generate().expose();
        assert_eq!(verified_by_reference(&wrong, &got), 0);

        let body: Value = serde_json::from_str(&got[2].body).unwrap();
        assert_eq!(body["type"], "job.succeeded");
        assert_eq!(body["data"]["job_id"], id);
        assert_eq!(body["data"]["status"], "succeeded");
        assert_eq!(body["data"]["links"]["self"], format!("/v1/jobs/{id}"));
        assert!(!got[2].body.contains('@'), "an identifier in the body");

        // The detail view shows the same attempts.
        let detail: Value = app
            .client
            .get(app.url(&format!("/v1/jobs/{id}")))
            .bearer_auth(&issued.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(detail["deliveries"].as_array().unwrap(), &deliveries);

        // Another key sees no such job, nor its deliveries.
        let other = key::issue();
        app.store
            .create_api_key(&other.id, None, &other.secret_hash)
            .await
            .unwrap();
        let theirs = app
            .client
            .get(app.url(&format!("/v1/jobs/{id}/deliveries")))
            .bearer_auth(&other.token)
            .send()
            .await
            .unwrap();
        assert_problem(theirs, 404).await;

        // Deleted with the job.
        let rows = job_rows(&app.store, id.parse().unwrap()).await;
        assert_eq!(rows["webhook_attempts"], 3, "{rows:?}");
        assert_eq!(rows["webhook_deliveries"], 1, "{rows:?}");
        let deleted = app
            .client
            .delete(app.url(&format!("/v1/jobs/{id}")))
            .bearer_auth(&issued.token)
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.status(), 204);
        let rows = job_rows(&app.store, id.parse().unwrap()).await;
        assert!(rows.values().all(|&n| n == 0), "{rows:?}");
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_job_without_a_key_is_signed_with_the_service_secret_and_410_stops() {
    for db in databases().await {
        let secret = WebhookSecret::generate();
        let exposed = secret.expose();
        let app = spawn_app_with(
            db,
            AppOptions {
                workers: 0,
                configure: Some(fast_webhooks(secret)),
                ..AppOptions::default()
            },
        )
        .await;
        let (receiver, url) = receiver(&[410]).await;
        let id = post_with_callback(&app, &url, 5).await;
        assert_eq!(
            app.post(&format!("/v1/jobs/{id}/cancel")).await.status(),
            202
        );

        let deliveries = settled_deliveries(&app, None, &id).await;
        assert_eq!(deliveries.len(), 1, "{deliveries:?}");
        assert_eq!(deliveries[0]["outcome"], "gone");
        assert_eq!(deliveries[0]["status_code"], 410);
        assert!(deliveries[0]["next_attempt_at"].is_null());

        let got = receiver.got.lock().unwrap().clone();
        assert_eq!(got.len(), 1);
        let body: Value = serde_json::from_str(&got[0].body).unwrap();
        assert_eq!(body["type"], "job.cancelled");
        assert_eq!(verified_by_reference(&exposed, &got), 1);
        app.shutdown().await;
    }
}

/// The `/options/callback_url` (or `query.callback_url`) problem of a refused job.
async fn refused(app: &TestApp, url: &str) -> String {
    let (_, emails) = segment_emails(0, 5);
    let response = app
        .post_json("/v1/jobs", &job_body(&emails, json!({"callback_url": url})))
        .await;
    let problem = assert_problem(response, 422).await;
    let text = problem.to_string();
    assert!(text.contains("/options/callback_url"), "{text}");
    assert!(!url.contains("token") || !text.contains("token"), "{text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_urls_to_private_addresses_or_the_service_are_refused() {
    for db in databases().await {
        let app = spawn_app_without_workers(db).await;
        let own = app.url("/hook");
        for url in [
            "http://10.0.0.1/hook?token=secret",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]:9/hook",
            "http://[::ffff:10.0.0.1]/hook",
            own.as_str(),
        ] {
            let text = refused(&app, url).await;
            assert!(text.contains("refused"), "{url}: {text}");
        }
        for url in [
            "ftp://example.com/hook",
            "not a url",
            "http://user:token@example.com/",
        ] {
            refused(&app, url).await;
        }
        let long = format!("https://example.com/{}", "a".repeat(3000));
        refused(&app, &long).await;

        // A CSV upload names the query parameter.
        let csv = app
            .client
            .post(app.url("/v1/jobs?callback_url=http%3A%2F%2F10.0.0.1%2F"))
            .header("content-type", "text/csv")
            .body("email\nsomeone@example.com\n")
            .send()
            .await
            .unwrap();
        let problem = assert_problem(csv, 422).await;
        assert!(
            problem.to_string().contains("query.callback_url"),
            "{problem}"
        );
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_targets_allowed_still_refuse_the_service_itself() {
    for db in databases().await {
        let app = spawn_app_with(
            db,
            AppOptions {
                workers: 0,
                configure: Some(fast_webhooks(WebhookSecret::generate())),
                ..AppOptions::default()
            },
        )
        .await;
        let port = app.base.rsplit(':').next().unwrap().to_owned();
        for url in [
            app.url("/hook"),
            format!("http://localhost:{port}/v1/jobs"),
            format!("http://[::ffff:127.0.0.1]:{port}/"),
        ] {
            let text = refused(&app, &url).await;
            assert!(text.contains("this service itself"), "{url}: {text}");
        }
        let (_, url) = receiver(&[]).await;
        post_with_callback(&app, &url, 5).await;
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_left_in_the_outbox_is_delivered_by_a_process_started_later() {
    for db in databases().await {
        let secret = WebhookSecret::generate();
        let exposed = secret.expose();
        // The first process ends jobs but never looks for messages after it starts.
        let idle = secret.clone();
        let app = spawn_app_with(
            db,
            AppOptions {
                configure: Some(Box::new(move |c| {
                    fast_webhooks(idle)(c);
                    c.webhooks.poll_interval = Duration::from_secs(3600);
                })),
                ..AppOptions::default()
            },
        )
        .await;
        let (receiver, url) = receiver(&[]).await;
        let id = post_with_callback(&app, &url, 20).await;
        let job = app.wait_for(&id, Duration::from_secs(60)).await;
        assert_eq!(job["status"], "succeeded");
        assert_eq!(job["deliveries"], json!([]));
        assert_eq!(app.store.count_pending_webhooks().await.unwrap(), 1);
        assert!(receiver.got.lock().unwrap().is_empty());

        // Another process over the same database delivers it.
        let mut config = icp_server::ServiceConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..icp_server::ServiceConfig::default()
        };
        config.worker.workers = 0;
        fast_webhooks(secret)(&mut config);
        let provider = Arc::new(icp_population::EmbeddedProvider::new(population()));
        let later = icp_server::start(config, app.store.clone(), provider)
            .await
            .unwrap();
        let deliveries = settled_deliveries(&app, None, &id).await;
        assert_eq!(deliveries.len(), 1, "{deliveries:?}");
        assert_eq!(deliveries[0]["outcome"], "delivered");
        let got = receiver.got.lock().unwrap().clone();
        assert_eq!(got.len(), 1);
        assert_eq!(verified_by_reference(&exposed, &got), 1);
        later.shutdown().await;
        app.shutdown().await;
    }
}
