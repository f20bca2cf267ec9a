//! The console and a report in a real browser: headless Chromium (Debian's `chromium`) driven by
//! `tests/browser/console_and_report.mjs` through playwright-core (pinned in
//! `tests/browser/package-lock.json`). It posts a customer CSV through the console's form,
//! watches the job's progress bar reach done, opens the report and checks that its charts are
//! drawn and its funnel holds the job's figures, with no console error and no request to another
//! origin. Screenshots go to `target/browser-artifacts/<backend>/`. Fails, never skips, when
//! node, Chromium or playwright-core is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::*;

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Node, Chromium and playwright-core, or a panic that says how to install what is missing.
fn tools() -> (String, String) {
    let node = std::env::var("ICP_NODE").unwrap_or_else(|_| "node".to_owned());
    let version = Command::new(&node).arg("--version").output();
    assert!(
        version.is_ok_and(|o| o.status.success()),
        "node is missing: `apt-get install -y --no-install-recommends nodejs npm` (or set ICP_NODE)"
    );
    let chromium = std::env::var("ICP_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        Path::new(&chromium).is_file(),
        "Chromium is missing at {chromium}: `apt-get install -y --no-install-recommends chromium` \
         (or set ICP_CHROMIUM)"
    );
    assert!(
        browser_dir()
            .join("node_modules/playwright-core/package.json")
            .is_file(),
        "playwright-core is missing: `npm ci --prefix tests/browser`"
    );
    (node, chromium)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_posts_a_job_and_its_report_draws_in_chromium() {
    let (node, chromium) = tools();
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .to_owned();
    // Two segments: the console lists their audiences' exports too.
    let (_, first) = segment_emails(3, 200);
    let (_, second) = segment_emails(0, 200);
    let lines: Vec<String> = first
        .iter()
        .map(|e| format!("{e},first"))
        .chain(second.iter().map(|e| format!("{e},second")))
        .collect();
    let csv = target.join("tmp/browser-customers.csv");
    std::fs::write(&csv, format!("email,segment\n{}\n", lines.join("\n"))).unwrap();
    for db in databases().await {
        let backend = if db.url().starts_with("postgres") {
            "postgres"
        } else {
            "sqlite"
        };
        let app = spawn_app(db).await;
        let artifacts = target.join("browser-artifacts").join(backend);
        run_browser(&app, &node, &chromium, &csv, &artifacts, None).await;
        if backend == "sqlite" {
            // With a key: the console asks for it and opens the report from a blob URL.
            let issued = icp_server::auth::key::issue();
            app.store
                .create_api_key(&issued.id, Some("browser"), &issued.secret_hash)
                .await
                .unwrap();
            let artifacts = target.join("browser-artifacts").join("sqlite-key");
            let summary = run_browser(
                &app,
                &node,
                &chromium,
                &csv,
                &artifacts,
                Some(&issued.token),
            )
            .await;
            assert!(
                summary["reportUrl"].as_str().unwrap().starts_with("blob:"),
                "{summary}"
            );
        }
        app.shutdown().await;
    }
}

/// Runs the script against `app`, with `key` when the service has keys, and checks its summary.
async fn run_browser(
    app: &TestApp,
    node: &str,
    chromium: &str,
    csv: &Path,
    artifacts: &Path,
    key: Option<&str>,
) -> Value {
    let mut command = Command::new(node);
    command
        .arg(browser_dir().join("console_and_report.mjs"))
        .arg(&app.base)
        .arg(artifacts)
        .arg(csv)
        .env("ICP_CHROMIUM", chromium)
        .env_remove("ICP_KEY");
    if let Some(key) = key {
        command.env("ICP_KEY", key);
    }
    let output = tokio::task::spawn_blocking(move || command.output().expect("run node"))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{}: {stdout}", artifacts.display());
    let summary: Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no summary from the browser run:\n{stdout}\n{stderr}"));
    assert!(
        output.status.success() && summary["ok"] == true,
        "the browser run in {} found problems: {:#}\n{stderr}",
        artifacts.display(),
        summary["problems"]
    );
    // The run saw the job before it was done, and at done.
    let progress = summary["progress"].as_array().unwrap();
    assert!(progress.len() >= 2, "{summary}");
    assert_eq!(progress.last().unwrap(), "succeeded:100", "{summary}");
    assert_eq!(summary["charts"].as_array().unwrap().len(), 5, "{summary}");
    // Three downloads for every audience of the result: planned, ranked, each segment's and the
    // combined one.
    let id = summary["job"].as_str().unwrap();
    let mut request = app.client.get(app.url(&format!("/v1/jobs/{id}/result")));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let result: Value = request.send().await.unwrap().json().await.unwrap();
    let listed = |v: &Value| v.as_array().map_or(0, Vec::len);
    let segments: usize = result["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| listed(&s["audiences"]))
        .sum();
    assert!(segments > 0, "{result}");
    let audiences = listed(&result["audiences"])
        + listed(&result["ranked"]["tiers"])
        + segments
        + usize::from(result["combined_audience"].is_object());
    assert_eq!(summary["exportLinks"], 3 * audiences, "{summary}");
    for name in ["console.png", "report.png"] {
        let shot = artifacts.join(name);
        let bytes = std::fs::read(&shot).unwrap_or_else(|e| panic!("{}: {e}", shot.display()));
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
            "{}",
            shot.display()
        );
        println!("screenshot: {}", shot.display());
    }
    summary
}

/// The console's event-stream parser, in node: the console follows job events with it, and a
/// branch whose service serves no events would otherwise never run it.
#[test]
fn the_consoles_event_parser_reads_the_standard_format() {
    let (node, _) = tools();
    let output = Command::new(node)
        .arg(browser_dir().join("sse_parser.mjs"))
        .output()
        .expect("run node");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
