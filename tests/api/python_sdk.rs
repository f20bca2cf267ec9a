//! Interop with MCP software this project did not write: the official MCP Python SDK (`mcp`,
//! pinned in `tests/interop/requirements.txt`, installed by `.ci/run`).
//!
//! - Jobs run end to end against an upstream built on the SDK's FastMCP server
//!   (`tests/interop/fastmcp_upstream.py`), which passes each call on to the embedded population
//!   served over MCP: tools that return JSON strings (the SDK's `{"result": …}` wrapper), tools
//!   that return objects, SSE and plain JSON answers, a session it forgets, 429s with
//!   `Retry-After`. The result must equal the embedded provider's.
//! - The SDK's client (`ClientSession` over streamable HTTP, `tests/interop/official_client.py`)
//!   lists the tools of `icp mcp-serve`'s router with their input schemas and calls each one.
//!
//! Python: `$ICP_PYTHON` or an environment of the tests' own (`python_env.rs`). An SDK that
//! cannot be had fails these tests; it never skips them.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::common::*;
use crate::python_env::PythonNeed;
use icp_contract::PopulationProvider;
use icp_mcp::faults::{FaultConfig, FaultyUpstream};
use icp_population::EmbeddedProvider;
use serde_json::Value;

/// A Python with the pinned SDK, found or made once (`python_env.rs`).
fn python() -> String {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            PythonNeed {
                probe: "import mcp.server.fastmcp, mcp.client.streamable_http",
                requirements: &interop_script("requirements.txt"),
                venv: "interop-venv",
            }
            .python()
        })
        .clone()
}

fn interop_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(name)
}

const NO_SDK: &str = "the interop tests need the MCP Python SDK pinned in \
                      tests/interop/requirements.txt, from PyPI";

/// A FastMCP upstream in a child process, killed when dropped; the faults it injected are
/// counted from the lines it prints.
struct FastMcpUpstream {
    child: Child,
    url: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl FastMcpUpstream {
    fn start(backend: &str, args: &[&str]) -> Self {
        let mut child = Command::new(python())
            .arg(interop_script("fastmcp_upstream.py"))
            .args(["--backend", backend])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}; {NO_SDK}", python()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (first_tx, first_rx) = std::sync::mpsc::channel();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let seen = lines.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout).lines();
            let _ = first_tx.send(reader.next());
            for line in reader.map_while(Result::ok) {
                seen.lock().unwrap().push(line);
            }
        });
        let first = first_rx.recv_timeout(Duration::from_secs(60));
        let addr = match first {
            Ok(Some(Ok(line))) if line.starts_with("listening ") => {
                line["listening ".len()..].to_owned()
            }
            other => {
                let _ = child.kill();
                panic!("the FastMCP upstream did not start ({other:?}); {NO_SDK}");
            }
        };
        Self {
            child,
            url: format!("http://{addr}/mcp"),
            lines,
        }
    }

    /// How many faults of `kind` (`429`, `404`) it injected.
    fn injected(&self, kind: &str) -> usize {
        let fault = format!("fault {kind}");
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with(&fault))
            .count()
    }
}

impl Drop for FastMcpUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_over_a_fastmcp_upstream_give_the_embedded_result() {
    let db = || async { databases().await.remove(0) };
    let app = spawn_app(db().await).await;
    let (embedded, _) = run_normalized_job(&app, 1200).await;
    app.shutdown().await;
    let embedded = without_ranked(embedded);

    // The embedded population over MCP, behind the FastMCP upstream.
    let backend: Arc<dyn PopulationProvider> = Arc::new(EmbeddedProvider::new(population()));
    let (backend_addr, backend_calls) = FaultyUpstream::start(backend, FaultConfig::default())
        .await
        .expect("start the backend");
    let backend_url = format!("http://{backend_addr}/mcp");

    let variants: [(&str, &[&str]); 2] = [
        ("JSON strings over SSE", &["--shape", "string"]),
        (
            "objects as plain JSON, a forgetful session, 429s",
            &[
                "--shape",
                "object",
                "--json-response",
                "--forget-session-every",
                "4",
                "--rate-limit-every",
                "3",
            ],
        ),
    ];
    for (name, args) in variants {
        let calls_before = backend_calls.total_calls();
        let upstream = FastMcpUpstream::start(&backend_url, args);
        let provider = watt_provider(&upstream.url).await;
        let app = spawn_app_over(db().await, provider).await;
        let (over_fastmcp, traces) = run_normalized_job(&app, 1200).await;
        app.shutdown().await;
        assert_eq!(over_fastmcp, embedded, "{name}: the result changed");
        assert!(
            backend_calls.total_calls() > calls_before,
            "{name}: the backend was never called"
        );
        assert!(!traces.is_empty(), "{name}: no tool traces kept");
        if args.contains(&"--rate-limit-every") {
            assert!(upstream.injected("429") > 0, "{name}: no 429 was sent");
            assert!(
                upstream.injected("404") > 0,
                "{name}: no session was forgotten"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_python_client_calls_every_tool_of_icp_mcp_serve() {
    let provider: Arc<dyn PopulationProvider> = Arc::new(EmbeddedProvider::new(population()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = icp_mcp::mcp_router(provider, icp_mcp::ServeConfig::default());
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let (_, emails) = segment_emails(0, 1);
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .arg(interop_script("official_client.py"))
            .args([
                "--url",
                &format!("http://{addr}/mcp"),
                "--email",
                &emails[0],
            ])
            .output()
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("running {}: {e}; {NO_SDK}", python()));
    server.abort();
    assert!(
        out.status.success(),
        "the official client failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        NO_SDK
    );
    let answer: Value = serde_json::from_slice(&out.stdout).expect("the client's summary");

    let tools: BTreeSet<&str> = answer["tools"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(tools, icp_mcp::TOOL_NAMES.into_iter().collect());
    for (tool, param) in [
        ("resolve_identities", "multi_identifiers"),
        ("get_person", "person_ids"),
        ("list_clusters", "cluster_names"),
        ("get_cluster", "cluster_hash"),
        ("find_persons", "expression"),
        ("submit_feedback", "message"),
    ] {
        let params = answer["tools"][tool].as_array().unwrap();
        assert!(params.iter().any(|p| p == param), "{tool}: {params:?}");
    }
    assert_eq!(answer["resolved"], 1, "{answer}");
    assert_eq!(answer["profiles"], 1, "{answer}");
    assert_eq!(answer["profile_person"], answer["person"], "{answer}");
    assert!(answer["clusters"].as_u64().unwrap() > 0, "{answer}");
    assert_eq!(answer["cluster_size"], answer["first_size"], "{answer}");
    // An audience of one cluster is that cluster.
    assert_eq!(answer["found"], answer["first_size"], "{answer}");
    assert!(
        (1..=10).contains(&answer["sample"].as_u64().unwrap()),
        "{answer}"
    );
    assert_eq!(answer["feedback"], true, "{answer}");
}
