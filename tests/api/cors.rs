//! Dashboards in a browser: the origins named in `ICP_CORS_ORIGINS` get their preflights
//! answered and may read the answers (errors included) and the headers a client needs; every
//! other origin, and every origin when none is configured, gets no CORS header at all, so a
//! browser keeps the answer from the page.

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::json;

use crate::common::*;
use icp_server::cors::CorsOrigins;

const DASHBOARD: &str = "http://dash.test:5173";

fn allowed_origin(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap())
}

fn listed(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .flat_map(|v| v.to_str().unwrap().split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .collect()
}

async fn app_for(db: icp_store::test_support::TestDatabase, origins: &'static str) -> TestApp {
    let opts = AppOptions {
        configure: Some(Box::new(move |c| {
            c.cors_origins = CorsOrigins::parse(origins).unwrap();
        })),
        ..AppOptions::default()
    };
    spawn_app_with(db, opts).await
}

async fn get_from(app: &TestApp, path: &str, origin: &str) -> reqwest::Response {
    let request = app.client.get(app.url(path)).header("origin", origin);
    request.send().await.unwrap()
}

async fn preflight(app: &TestApp, origin: &str, method: &str) -> reqwest::Response {
    app.client
        .request(Method::OPTIONS, app.url("/v1/jobs"))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header(
            "access-control-request-headers",
            "authorization,content-type,idempotency-key",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_configured_dashboard_may_call_and_read_the_service() {
    for db in databases().await {
        let app = app_for(db, "https://other.test, http://Dash.test:5173/").await;

        let pre = preflight(&app, DASHBOARD, "POST").await;
        assert!(pre.status().is_success(), "{}", pre.status());
        let h = pre.headers();
        assert_eq!(allowed_origin(h), Some(DASHBOARD));
        let methods = listed(h, "access-control-allow-methods");
        for m in ["get", "post", "delete"] {
            assert!(methods.contains(&m.to_owned()), "{methods:?}");
        }
        let allowed = listed(h, "access-control-allow-headers");
        for name in ["authorization", "content-type", "idempotency-key"] {
            assert!(allowed.contains(&name.to_owned()), "{allowed:?}");
        }
        assert_eq!(h["access-control-max-age"], "3600");
        assert!(h.contains_key("x-request-id"), "a preflight carries its id");
        assert!(
            !h.contains_key("access-control-allow-credentials"),
            "keys go in Authorization, never cookies"
        );

        // A created job: the page can read where it is.
        let (_, emails) = segment_emails(0, 20);
        let created = app
            .client
            .post(app.url("/v1/jobs"))
            .header("origin", DASHBOARD)
            .json(&job_body(&emails, json!({})))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 202);
        let h = created.headers();
        assert_eq!(allowed_origin(h), Some(DASHBOARD));
        assert!(listed(h, "vary").contains(&"origin".to_owned()), "{h:?}");
        let exposed = listed(h, "access-control-expose-headers");
        for name in [
            "location",
            "retry-after",
            "x-request-id",
            "content-disposition",
        ] {
            assert!(exposed.contains(&name.to_owned()), "{exposed:?}");
        }

        // An error is readable too: the page shows the problem, not a network error.
        let missing = get_from(
            &app,
            &format!("/v1/jobs/{}", uuid::Uuid::new_v4()),
            DASHBOARD,
        )
        .await;
        assert_eq!(allowed_origin(missing.headers()), Some(DASHBOARD));
        assert_problem(missing, 404).await;

        // Any other origin gets nothing a browser would let through.
        let pre = preflight(&app, "http://evil.test", "POST").await;
        assert_eq!(allowed_origin(pre.headers()), None);
        let other = get_from(&app, "/healthz", "http://evil.test").await;
        assert_eq!(other.status(), 200);
        assert_eq!(allowed_origin(other.headers()), None);
        app.shutdown().await;
    }
}

#[tokio::test]
async fn no_origin_may_unless_configured() {
    for db in databases().await {
        let app = spawn_app(db).await;
        let pre = preflight(&app, DASHBOARD, "POST").await;
        assert_eq!(allowed_origin(pre.headers()), None);
        assert!(!pre.headers().contains_key("access-control-allow-methods"));
        let got = get_from(&app, "/healthz", DASHBOARD).await;
        assert_eq!(got.status(), 200);
        assert_eq!(allowed_origin(got.headers()), None);
        app.shutdown().await;
    }
}

#[tokio::test]
async fn a_star_lets_any_page_call_a_keyed_service() {
    for db in databases().await {
        let app = app_for(db, "*").await;
        let pre = preflight(&app, "http://anywhere.test", "DELETE").await;
        assert!(pre.status().is_success());
        assert_eq!(allowed_origin(pre.headers()), Some("*"));
        app.shutdown().await;
    }
}
