//! The served spec, fuzzed: schemathesis (pinned in `tests/fuzz/requirements.txt`) reads
//! `/openapi.json` from the real service and sends what it allows and what it forbids, with
//! every check on, links followed from `POST /v1/jobs`, against SQLite and Postgres. Any
//! finding fails the test: a 5xx, a status or body the spec does not list, a request the spec
//! allows and the service refuses, or one it forbids and the service accepts.
//!
//! Python: `$ICP_PYTHON` or an environment of the tests' own (`python_env.rs`); never skipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use icp_server::auth::key;

use crate::common::{databases, spawn_app};
use crate::python_env::PythonNeed;

/// Test cases per operation and phase: enough to reach every rule, few enough that a run per
/// backend takes about a minute.
const EXAMPLES: &str = "60";
/// The fuzzer's seed, so that CI repeats the same run; `ICP_FUZZ_SEED` picks another.
const SEED: &str = "20261206";

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz")
}

/// A Python with schemathesis, found or made once.
fn python() -> String {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            PythonNeed {
                probe: "import schemathesis.cli",
                requirements: &fuzz_dir().join("requirements.txt"),
                venv: "fuzz-venv",
            }
            .python()
        })
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_spec_survives_fuzzing() {
    let python = python();
    let seed = std::env::var("ICP_FUZZ_SEED").unwrap_or_else(|_| SEED.to_owned());
    for db in databases().await {
        let backend = if db.url().starts_with("postgres") {
            "postgres"
        } else {
            "sqlite"
        };
        let app = spawn_app(db).await;
        let issued = key::issue();
        app.store
            .create_api_key(&issued.id, Some("fuzz"), &issued.secret_hash)
            .await
            .unwrap();
        let spec_url = app.url("/openapi.json");
        let report = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("fuzz-{backend}"));
        // Run from there too: schemathesis keeps a cache of what it found in its working
        // directory, which belongs with the run's output, not in the source tree.
        std::fs::create_dir_all(&report).unwrap();
        let python = python.clone();
        let run_seed = seed.clone();
        let output = tokio::task::spawn_blocking(move || {
            Command::new(&python)
                .args(["-m", "schemathesis.cli", "run", &spec_url])
                .args([
                    "--header",
                    &format!("Authorization: Bearer {}", issued.token),
                ])
                .args(["--checks", "all"])
                .args(["--phases", "examples,coverage,fuzzing,stateful"])
                .args(["--max-examples", EXAMPLES, "--seed", &run_seed])
                .args(["--workers", "1", "--request-timeout", "30"])
                .args(["--report", "junit", "--report-dir"])
                .arg(&report)
                .arg("--no-color")
                .current_dir(&report)
                .env("SCHEMATHESIS_HOOKS", "hooks")
                .env("PYTHONPATH", fuzz_dir())
                .output()
                .expect("run schemathesis")
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        println!("{backend}: {stdout}");
        assert!(
            output.status.success(),
            "schemathesis found problems on {backend} (seed {seed}):\n{stdout}\n{stderr}"
        );
        // A run that tested nothing would pass too: it must have sent cases to every operation.
        let operations: usize =
            icp_server::api::openapi()["paths"]
                .as_object()
                .map_or(0, |paths| {
                    paths
                        .values()
                        .map(|item| item.as_object().map_or(0, |m| m.len()))
                        .sum()
                });
        assert!(
            stdout.contains(&format!("Tested: {operations}")) && stdout.contains("generated"),
            "schemathesis did not test every operation on {backend}:\n{stdout}"
        );
        app.shutdown().await;
    }
}
