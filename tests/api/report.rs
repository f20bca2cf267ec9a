//! `GET /v1/jobs/{id}/report`: a succeeded job's page. Its data comes from an upstream and is
//! untrusted: an imported population whose trait values are markup must come out as text, and
//! the page must name no other origin than the service's. Before the job succeeds, and for no
//! such job, it answers like `/result`.

use serde_json::{Value, json};

use crate::common::*;

/// Trait values a page would run or load if they were not escaped.
const HOSTILE: [&str; 3] = [
    "<script>alert(\"report\")</script>",
    "\"><img src=//evil.example/x.png onerror=alert(1)>",
    "</svg><style>@import url(https://evil.example/x.css)</style>",
];

/// Every value of `attribute="…"` in `html`.
fn attribute_values<'a>(html: &'a str, attribute: &str) -> Vec<&'a str> {
    let needle = format!(" {attribute}=\"");
    html.match_indices(&needle)
        .map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            &rest[..rest.find('"').expect("a closed attribute")]
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_escapes_hostile_traits_and_names_no_other_origin() {
    use std::fmt::Write as _;
    // Persons 0..400 share a hostile motto and two more traits; the first 200 are the customers.
    let mut csv = String::from(
        "email,lifestyle:motto,demographic:gender,interest:interested_fitness,lifestyle:pet_owner\n",
    );
    for i in 0..1_500usize {
        let (motto, gender, fitness, pet) = if i < 400 {
            (HOSTILE[i % HOSTILE.len()], "Female", "Yes", "Yes")
        } else {
            (
                ["calm", "bold", "kind"][i % 3],
                ["Female", "Male"][i % 2],
                ["Yes", "No", "No"][i % 3],
                ["Yes", "No"][i / 3 % 2],
            )
        };
        let motto = motto.replace('"', "\"\"");
        writeln!(csv, "p{i}@example.com,\"{motto}\",{gender},{fitness},{pet}").unwrap();
    }
    let provider = imported_provider(&csv);
    let customers: Vec<String> = (0..200).map(|i| format!("p{i}@example.com")).collect();
    for db in databases().await {
        let opts = AppOptions {
            provider: Some(provider.clone()),
            ..AppOptions::default()
        };
        let app = spawn_app_with(db, opts).await;
        let body = job_body(&customers, json!({"min_support": 0.1}));
        let (id, job) = post_and_wait(&app, &body).await;
        assert_eq!(job["status"], "succeeded", "{job}");

        let response = app.get(&format!("/v1/jobs/{id}/report")).await;
        assert_eq!(response.status().as_u16(), 200);
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("default-src 'none';"), "{csp}");
        assert!(
            !csp.contains("script-src") && !csp.contains("http") && !csp.contains("unsafe"),
            "{csp}"
        );
        let html = response.text().await.unwrap();

        // The hostile values are on the page, as text.
        for value in HOSTILE {
            let escaped = value
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;");
            assert!(
                html.contains(&escaped),
                "{value} is not on the page as text"
            );
        }
        let lower = html.to_ascii_lowercase();
        for markup in [
            "<script",
            "<img",
            "<iframe",
            "<object",
            "<link rel=\"stylesheet",
        ] {
            assert!(!lower.contains(markup), "the page holds {markup}");
        }
        assert_eq!(
            lower.matches("<style").count(),
            1,
            "one style, the page's own"
        );
        assert_eq!(
            lower.matches("</svg>").count(),
            lower.matches("<svg").count()
        );
        // No other origin: every link is a path of the service (or the empty icon), no style
        // loads anything, and no attribute carries a handler.
        for attribute in ["href", "src", "action", "xlink:href"] {
            for value in attribute_values(&html, attribute) {
                assert!(
                    value == "data:," || (value.starts_with('/') && !value.starts_with("//")),
                    "{attribute}={value:?}"
                );
            }
        }
        assert!(!attribute_values(&html, "href").is_empty());
        assert!(!lower.contains("<style>@import"), "a style from the data");
        // Escaped text holds no `<`: every `<` opens a tag the page wrote, none with a handler.
        for tag in lower.split('<').skip(1) {
            let tag = &tag[..tag.find('>').expect("a closed tag")];
            assert!(!tag.contains(" on"), "a handler in <{tag}>");
        }

        // The funnel shows the job's resolution, and every chart is on the page.
        for step in ["requested", "resolved", "persons", "accepted"] {
            let expected = job["resolution"][step].as_u64().unwrap();
            assert!(expected > 0, "{step}: {job}");
            assert!(
                html.contains(&format!("data-funnel=\"{step}\" data-value=\"{expected}\"")),
                "{step} = {expected} is not in the funnel"
            );
        }
        for chart in [
            "funnel-chart",
            "traits-chart",
            "lift-chart",
            "clusters-chart",
            "audiences-chart",
        ] {
            assert!(html.contains(&format!("id=\"{chart}\"")), "{chart} missing");
        }
        // Each audience with its export links.
        let result: Value = app.get_json(&format!("/v1/jobs/{id}/result")).await;
        let audiences = result["audiences"].as_array().unwrap();
        assert!(!audiences.is_empty(), "{result}");
        for audience in audiences {
            let csv = audience["exports"]["csv"].as_str().unwrap();
            assert!(html.contains(&format!("href=\"{csv}\"")), "{csv}");
        }
        app.shutdown().await;
    }
}

/// Like `/result`: no such job is 404, a job that has not succeeded is 409, both problem+json.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_waits_for_success() {
    for db in databases().await {
        let app = spawn_app_without_workers(db).await;
        let missing = app
            .get("/v1/jobs/5f0c6d2e-8a34-4c1b-9e7d-3b2a1f0e9d8c/report")
            .await;
        assert_problem(missing, 404).await;
        let (_, emails) = segment_emails(0, 20);
        let job: Value = app
            .post_json("/v1/jobs", &job_body(&emails, json!({})))
            .await
            .json()
            .await
            .unwrap();
        let id = job["id"].as_str().unwrap();
        let queued = app.get(&format!("/v1/jobs/{id}/report")).await;
        let problem = assert_problem(queued, 409).await;
        assert!(
            problem["detail"].as_str().unwrap().contains("queued"),
            "{problem}"
        );
        app.shutdown().await;
    }
}

/// The `<article …>` of the page whose `data-audience` is `key`.
fn article<'a>(html: &'a str, key: &str) -> &'a str {
    let at = html
        .find(&format!("data-audience=\"{key}\""))
        .unwrap_or_else(|| panic!("no article for {key}"));
    let rest = &html[at..];
    &rest[..rest.find("</article>").expect("a closed article")]
}

/// Asserts an audience of the result is on the page with its downloads and, when validated,
/// its similarity as the result gives it.
fn assert_shown(html: &str, key: &str, audience: &Value) {
    let shown = article(html, key);
    let csv = audience["exports"]["csv"].as_str().unwrap();
    assert!(shown.contains(&format!("href=\"{csv}\"")), "{key}: {csv}");
    let similarity = audience["validation"]["similarity"]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not validated: {audience}"));
    assert!(
        shown.contains(&format!("<strong>{similarity:.2}</strong>")),
        "{key} does not show its similarity {similarity:.2}"
    );
}

/// A job with segments and a custom audience: every segment with what sets it apart, each of
/// its audiences, the combined one and the custom one, each with its downloads and similarity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_shows_segments_side_by_side_and_custom_audiences() {
    let (_, alpha) = segment_emails(0, 300);
    let (_, beta) = segment_emails(2, 300);
    for db in databases().await {
        let app = spawn_app(db).await;
        let body = json!({
            "segments": {
                "alpha": {"multi_identifiers": [{"id_type": "email", "hash_type": "plaintext", "values": alpha}]},
                "beta": {"multi_identifiers": [{"id_type": "email", "hash_type": "plaintext", "values": beta}]},
            },
            "options": {"min_support": 0.05, "ranked": false},
        });
        let (id, _, result) = finished_job(&app, &body).await;
        let first = &result["top_attributes"][0];
        let expression = format!(
            "{} = {}",
            first["name"].as_str().unwrap(),
            first["value"].as_str().unwrap()
        );
        let added = app
            .post_json(
                &format!("/v1/jobs/{id}/audiences"),
                &json!({"expression": expression, "limit": 50}),
            )
            .await;
        assert_eq!(added.status().as_u16(), 201);
        let result: Value = app.get_json(&format!("/v1/jobs/{id}/result")).await;
        let html = app
            .get(&format!("/v1/jobs/{id}/report"))
            .await
            .text()
            .await
            .unwrap();
        assert!(html.contains("id=\"segments\""), "no segments section");
        for segment in result["segments"].as_array().unwrap() {
            let name = segment["name"].as_str().unwrap();
            let at = html
                .find(&format!("data-segment=\"{name}\""))
                .unwrap_or_else(|| panic!("segment {name} is not shown"));
            let shown = &html[at..];
            let top = &segment["distinguishing_traits"][0];
            let text = format!(
                "{} = {}",
                top["name"].as_str().unwrap(),
                top["value"].as_str().unwrap()
            );
            // As maud escapes text.
            let text = text
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            assert!(
                shown.contains(&text),
                "{name}'s first distinguishing trait {text} is not shown"
            );
            let audiences = segment["audiences"].as_array().unwrap();
            assert!(!audiences.is_empty(), "{segment}");
            for au in audiences {
                assert_shown(&html, au["name"].as_str().unwrap(), au);
            }
        }
        assert_shown(&html, "combined", &result["combined_audience"]);
        assert_shown(&html, "custom-1", &result["custom_audiences"][0]);
        for au in result["audiences"].as_array().unwrap() {
            assert_shown(&html, au["strategy"].as_str().unwrap(), au);
        }
        app.shutdown().await;
    }
}
