//! The real `icp` binary as a child process: `icp serve` on 127.0.0.1:0 with the Watt Data
//! provider pointed at a test upstream, its log captured, killed (`SIGKILL`) or stopped
//! (`SIGTERM`) the way a crash or an operator would.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::comparable_result;

/// How a child is configured (each becomes its environment variable).
#[derive(Debug, Clone)]
pub struct ChildConfig {
    pub database_url: String,
    /// The upstream's MCP endpoint (`WATT_API_URL`).
    pub upstream: String,
    pub workers: usize,
    /// `ICP_LEASE_SECS`: short, so a killed child's jobs are taken over soon.
    pub lease_secs: u64,
    pub enrich_concurrency: usize,
    /// `RUST_LOG`.
    pub log_filter: String,
    /// `ICP_LOG_FORMAT`, when set.
    pub log_format: Option<String>,
    /// Further variables (an OTLP endpoint …).
    pub env: Vec<(String, String)>,
}

impl ChildConfig {
    pub fn new(database_url: &str, upstream: &str) -> Self {
        Self {
            database_url: database_url.to_owned(),
            upstream: upstream.to_owned(),
            workers: 2,
            lease_secs: 2,
            enrich_concurrency: 2,
            log_filter: "info".to_owned(),
            log_format: None,
            env: Vec::new(),
        }
    }
}

pub struct ChildService {
    process: std::process::Child,
    pub base: String,
    pub client: reqwest::Client,
    log: Arc<Mutex<String>>,
}

/// Appends every line of `from` to `log`; a line announcing the address is also sent to `addr`.
fn capture(from: impl Read + Send + 'static, log: Arc<Mutex<String>>, addr: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("icp-service listening on http://").nth(1) {
                let _ = addr.send(rest.split_whitespace().next().unwrap_or("").to_owned());
            }
            let mut log = log.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
}

impl ChildService {
    /// Starts `icp serve` and waits until it listens; `log` collects its standard output and
    /// error (pass the previous child's to keep one log over restarts).
    pub async fn start(cfg: &ChildConfig, log: Arc<Mutex<String>>) -> Self {
        let mut process = Command::new(env!("CARGO_BIN_EXE_icp"))
            .arg("serve")
            // Nothing of the test's environment leaks in: the child runs on what is given here.
            .env_clear()
            .env("ICP_LISTEN", "127.0.0.1:0")
            .env("DATABASE_URL", &cfg.database_url)
            .env("ICP_PROVIDER", "watt")
            .env("WATT_API_URL", &cfg.upstream)
            .env("WATT_API_KEY", "test-key")
            .env("WATT_TIMEOUT_MS", "10000")
            .env("WATT_BACKOFF_BASE_MS", "20")
            .env("WATT_BACKOFF_CAP_MS", "200")
            .env("ICP_WORKERS", cfg.workers.to_string())
            .env("ICP_LEASE_SECS", cfg.lease_secs.to_string())
            .env("ICP_ENRICH_CONCURRENCY", cfg.enrich_concurrency.to_string())
            // Every job lists its own clusters, so the calls a job makes do not depend on
            // which jobs the same process ran before it.
            .env("ICP_CLUSTER_CACHE_SECS", "0")
            .env("RUST_LOG", &cfg.log_filter)
            .env("NO_COLOR", "1")
            .envs(cfg.log_format.iter().map(|f| ("ICP_LOG_FORMAT", f)))
            .envs(cfg.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the icp binary");
        let (tx, rx) = mpsc::channel();
        capture(process.stdout.take().unwrap(), log.clone(), tx.clone());
        capture(process.stderr.take().unwrap(), log.clone(), tx);
        let started = Instant::now();
        let addr = loop {
            if let Ok(addr) = rx.try_recv() {
                break addr;
            }
            if let Ok(Some(status)) = process.try_wait() {
                panic!(
                    "icp serve exited at start ({status}):\n{}",
                    log.lock().unwrap()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "icp serve did not listen within 60 s:\n{}",
                log.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        Self {
            process,
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// `SIGKILL`, and the process reaped.
    pub fn kill(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }

    /// Sends a signal by name (`TERM`, `STOP`, `CONT`).
    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{name} failed");
    }

    /// `SIGTERM`: the process is asked to stop.
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// The exit status, once the process has exited within `within`.
    pub async fn exited_within(&mut self, within: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < within {
            if let Some(status) = self.process.try_wait().expect("wait for the child") {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Everything the child (and the children before it sharing its log) wrote.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.client.get(self.url(path)).send().await.expect("GET");
        response.json().await.expect("a JSON body")
    }

    pub async fn get_text(&self, path: &str) -> String {
        let response = self.client.get(self.url(path)).send().await.expect("GET");
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.text().await.expect("a body")
    }

    /// Posts a job and returns its id.
    pub async fn post_job(&self, body: &Value) -> String {
        let response = self
            .client
            .post(self.url("/v1/jobs"))
            .json(body)
            .send()
            .await
            .expect("POST /v1/jobs");
        assert_eq!(response.status().as_u16(), 202, "POST /v1/jobs");
        let job: Value = response.json().await.unwrap();
        job["id"].as_str().unwrap().to_owned()
    }

    /// Polls a job until it has ended, or panics after `timeout`.
    pub async fn wait_for(&self, id: &str, timeout: Duration) -> Value {
        let started = Instant::now();
        loop {
            let job = self.get_json(&format!("/v1/jobs/{id}")).await;
            if !matches!(job["status"].as_str(), Some("queued" | "running")) {
                return job;
            }
            assert!(
                started.elapsed() < timeout,
                "job {id} still {} after {timeout:?}: {job}",
                job["status"]
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ChildService {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A finished job's comparable result and every audience's export (JSON Lines), by strategy.
pub type Outcome = (Value, Vec<(String, String)>);

/// The [`Outcome`] of the finished job `id`.
pub async fn job_outcome(child: &ChildService, id: &str) -> Outcome {
    let result = child.get_json(&format!("/v1/jobs/{id}/result")).await;
    let mut exports = Vec::new();
    for audience in result["audiences"].as_array().expect("audiences") {
        let strategy = audience["strategy"].as_str().unwrap().to_owned();
        let body = child
            .get_text(&format!(
                "/v1/jobs/{id}/audiences/{strategy}/export?format=jsonl"
            ))
            .await;
        exports.push((strategy, body));
    }
    (comparable_result(result), exports)
}

/// Where two JSON values differ: each path with both sides (at most `limit` of them), so a
/// failed comparison of two results shows what moved rather than two pages of JSON.
pub fn json_diff(a: &Value, b: &Value, limit: usize) -> Vec<String> {
    fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<String>, limit: usize) {
        if out.len() >= limit || a == b {
            return;
        }
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let (l, r) = (
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                    );
                    walk(&format!("{path}/{k}"), l, r, out, limit);
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (i, (l, r)) in x.iter().zip(y).enumerate() {
                    walk(&format!("{path}/{i}"), l, r, out, limit);
                }
            }
            _ => {
                let show = |v: &Value| {
                    let s = v.to_string();
                    if s.len() > 300 {
                        format!("{}…", &s[..300])
                    } else {
                        s
                    }
                };
                out.push(format!("{path}: {} != {}", show(a), show(b)));
            }
        }
    }
    let mut out = Vec::new();
    walk("", a, b, &mut out, limit);
    out
}
