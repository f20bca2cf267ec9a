//! Starts the real service on 127.0.0.1:0 against a real database, one database per test.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use icp_contract::{
    AudienceExport, FeedbackRequest, FeedbackResponse, FindPersonsRequest, FindPersonsResponse,
    GetClusterRequest, GetClusterResponse, GetPersonRequest, GetPersonResponse,
    ListClustersRequest, ListClustersResponse, PopulationProvider, ProviderError,
    RankPersonsRequest, RankPersonsResponse, ResolveRequest, ResolveResponse, SampleTraitsRequest,
    SampleTraitsResponse,
};
use icp_mcp::{Secret, WattConfig, WattProvider};
use icp_population::{EmbeddedProvider, GeneratorConfig, Population};
use icp_server::{RunningService, ServiceConfig, WorkerConfig};
use icp_store::Store;
use icp_store::test_support::TestDatabase;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Persons in the tests' population: large enough for real segments, quick to generate.
pub const TEST_POPULATION: usize = 60_000;
pub const TEST_SEED: u64 = 42;

/// One population per test binary, shared by its tests (it is read-only).
pub fn population() -> Arc<Population> {
    static POPULATION: OnceLock<Arc<Population>> = OnceLock::new();
    POPULATION
        .get_or_init(|| {
            Arc::new(Population::generate(&GeneratorConfig {
                persons: TEST_POPULATION,
                seed: TEST_SEED,
            }))
        })
        .clone()
}

/// The embedded provider over a population imported from `csv` (the import's format).
pub fn imported_provider(csv: &str) -> Arc<dyn PopulationProvider> {
    let population = Population::from_csv_reader(csv.as_bytes()).expect("import the population");
    Arc::new(EmbeddedProvider::new(Arc::new(population)))
}

/// SQLite always; Postgres too when `ICP_TEST_DATABASE_URL` is set (and then it must work).
pub async fn databases() -> Vec<TestDatabase> {
    let mut dbs = vec![TestDatabase::sqlite().await];
    if let Some(pg) = TestDatabase::postgres().await {
        dbs.push(pg);
    }
    dbs
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Store,
    pub db_url: String,
    service: Option<RunningService>,
    _db: TestDatabase,
}

/// A change to the service's configuration, made by a test.
pub type Configure = Box<dyn FnOnce(&mut ServiceConfig) + Send>;

pub struct AppOptions {
    pub workers: usize,
    /// The provider the service uses; the embedded test population when absent.
    pub provider: Option<Arc<dyn icp_contract::PopulationProvider>>,
    /// Identifiers per `resolve_identities` call; the service's default when absent.
    pub resolve_chunk: Option<usize>,
    /// The first delay before a failed job is tried again; the service's default when absent.
    pub retry_base: Option<Duration>,
    /// How long an idle worker waits before it looks for work again; 50 ms when absent.
    pub poll_interval: Option<Duration>,
    /// Jobs one key may have in flight; the service's default when absent.
    pub max_jobs_in_flight: Option<u64>,
    /// Changes the service's configuration once the fields above are applied (limits, timeouts).
    pub service: Option<fn(&mut ServiceConfig)>,
    /// The URL the service connects to instead of the test database's own (a proxy in front
    /// of it).
    pub db_url: Option<String>,
    /// Changes the service's configuration last, after the options above.
    pub configure: Option<Configure>,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            workers: 2,
            provider: None,
            resolve_chunk: None,
            retry_base: None,
            poll_interval: None,
            max_jobs_in_flight: None,
            service: None,
            db_url: None,
            configure: None,
        }
    }
}

pub async fn spawn_app(db: TestDatabase) -> TestApp {
    spawn_app_with(db, AppOptions::default()).await
}

/// The service without workers: a created job stays queued until the test acts on it.
pub async fn spawn_app_without_workers(db: TestDatabase) -> TestApp {
    let opts = AppOptions {
        workers: 0,
        ..AppOptions::default()
    };
    spawn_app_with(db, opts).await
}

pub async fn spawn_app_with(db: TestDatabase, opts: AppOptions) -> TestApp {
    let store = Store::connect(opts.db_url.as_deref().unwrap_or(db.url()))
        .await
        .expect("connect to the test database");
    store.migrate().await.expect("migrate the test database");
    let provider = opts
        .provider
        .unwrap_or_else(|| Arc::new(EmbeddedProvider::new(population())));
    let mut config = ServiceConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        worker: WorkerConfig {
            workers: opts.workers,
            poll_interval: opts.poll_interval.unwrap_or(Duration::from_millis(50)),
            resolve_chunk: opts
                .resolve_chunk
                .unwrap_or(WorkerConfig::default().resolve_chunk),
            retry_base: opts
                .retry_base
                .unwrap_or(WorkerConfig::default().retry_base),
            ..WorkerConfig::default()
        },
        max_jobs_in_flight: opts
            .max_jobs_in_flight
            .unwrap_or(ServiceConfig::default().max_jobs_in_flight),
        ..ServiceConfig::default()
    };
    if let Some(configure) = opts.service {
        configure(&mut config);
    }
    if let Some(configure) = opts.configure {
        configure(&mut config);
    }
    let service = icp_server::start(config, store.clone(), provider)
        .await
        .expect("start the service");
    TestApp {
        base: format!("http://{}", service.addr),
        client: reqwest::Client::new(),
        store,
        db_url: db.url().to_owned(),
        service: Some(service),
        _db: db,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    /// GETs `path` and decodes its JSON body, whatever its status.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> T {
        self.get(path).await.json().await.expect("a JSON body")
    }

    /// POSTs to `path` with no body (the job actions: cancel).
    pub async fn post(&self, path: &str) -> reqwest::Response {
        self.client.post(self.url(path)).send().await.expect("POST")
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .send()
            .await
            .expect("DELETE")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    /// Polls a job until it leaves queued/running, or panics after `timeout`.
    pub async fn wait_for(&self, id: &str, timeout: Duration) -> Value {
        let started = Instant::now();
        loop {
            let job: Value = self.get_json(&format!("/v1/jobs/{id}")).await;
            let status = job["status"].as_str().unwrap().to_owned();
            if status != "queued" && status != "running" {
                return job;
            }
            assert!(
                started.elapsed() < timeout,
                "job {id} still {status} after {timeout:?}: {job}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn shutdown(mut self) {
        if let Some(s) = self.service.take() {
            s.shutdown().await;
        }
    }
}

/// Asserts an RFC 9457 answer with this status, and returns its body.
pub async fn assert_problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status, "unexpected status");
    let ct = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(ct.as_deref(), Some("application/problem+json"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"].as_u64(), Some(status as u64), "{body}");
    assert!(
        body["type"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert!(
        body["detail"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    body
}

/// The `location` of each error a problem lists.
pub fn problem_locations(problem: &Value) -> Vec<&str> {
    problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["location"].as_str().unwrap())
        .collect()
}

/// Person ids of an audience's whole export (`name`: a strategy, a tier or a custom audience).
pub async fn audience_members(
    app: &TestApp,
    id: &str,
    name: &str,
) -> std::collections::HashSet<u64> {
    let body = app
        .get(&format!(
            "/v1/jobs/{id}/audiences/{name}/export?format=jsonl"
        ))
        .await
        .text()
        .await
        .unwrap();
    body.lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["person_id"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

/// Person ids the test population's expression `text` (cluster hashes) selects.
pub fn population_selects(text: &str) -> std::collections::HashSet<u64> {
    let pop = population();
    let e = pop
        .parse_expression(text)
        .expect("an expression of the population");
    pop.evaluate(&e)
        .iter()
        .map(|row| pop.person_id(row as usize).0)
        .collect()
}

/// Emails of `n` customers drawn from the population's segment `segment`.
pub fn segment_emails(segment: usize, n: usize) -> (String, Vec<String>) {
    let pop = population();
    let name = pop.segments()[segment].name.clone();
    let customers = pop
        .sample_customers(n, Some(&name), 11)
        .expect("sample customers");
    (
        name,
        customers.into_iter().filter_map(|c| c.email).collect(),
    )
}

/// The traits that define the population's segment `segment`.
pub fn defining_traits(segment: usize) -> std::collections::HashSet<(String, String)> {
    population().segments()[segment]
        .defining_traits
        .iter()
        .cloned()
        .collect()
}

pub fn job_body(emails: &[String], options: Value) -> Value {
    serde_json::json!({
        "multi_identifiers": [{"id_type": "email", "hash_type": "plaintext", "values": emails}],
        "options": options,
    })
}

/// Runs one job and returns its result without what legitimately differs between runs
/// (ids, workflow ids and the samples drawn for them), and the job's provider traces.
pub async fn run_normalized_job(app: &TestApp, customers: usize) -> (Value, Vec<Value>) {
    let (_, emails) = segment_emails(3, customers);
    let body = job_body(
        &emails,
        serde_json::json!({"min_support": 0.05, "audience_limit": 2000}),
    );
    run_job_body(app, &body).await
}

/// A job's result without what differs between runs of one request (ids, the workflow, the
/// samples drawn), as `run_job_body` and the child-process tests compare them.
pub fn comparable_result(mut result: Value) -> Value {
    let obj = result.as_object_mut().expect("a result object");
    obj.remove("job_id");
    obj.remove("workflow_id");
    // What the identifiers as submitted held (messy ones give the clean result, with warnings
    // about their form) and which criterion types a provider reports: not the result itself.
    obj.remove("warnings");
    for audience in obj["audiences"].as_array_mut().unwrap() {
        let a = audience.as_object_mut().unwrap();
        a.remove("sample");
        a.remove("exports");
    }
    if let Some(tiers) = obj
        .get_mut("ranked")
        .and_then(|r| r["tiers"].as_array_mut())
    {
        for tier in tiers {
            tier.as_object_mut().unwrap().remove("exports");
        }
    }
    result
}

/// A result of the embedded provider as a remote one gives it: the embedded population ranks
/// itself by default, a remote upstream cannot (and its candidates are scored only when a job
/// asks, `tests/api/ranked.rs`).
pub fn without_ranked(mut result: Value) -> Value {
    result.as_object_mut().unwrap().remove("ranked");
    result
}

/// Posts a job and waits until it ends, however it ends: its id and its final state.
pub async fn post_and_wait(app: &TestApp, body: &Value) -> (String, Value) {
    let job: Value = app.post_json("/v1/jobs", body).await.json().await.unwrap();
    let id = job["id"].as_str().unwrap().to_owned();
    let job = app.wait_for(&id, Duration::from_secs(180)).await;
    (id, job)
}

/// Posts a job that must succeed: its id, its final state and its result as served.
pub async fn finished_job(app: &TestApp, body: &Value) -> (String, Value, Value) {
    let (id, job) = post_and_wait(app, body).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let result = app.get_json(&format!("/v1/jobs/{id}/result")).await;
    (id, job, result)
}

/// `run_normalized_job` for a request body of the caller's.
pub async fn run_job_body(app: &TestApp, body: &Value) -> (Value, Vec<Value>) {
    let (_, job, result) = finished_job(app, body).await;
    let traces = job["tool_traces"].as_array().cloned().unwrap_or_default();
    (comparable_result(result), traces)
}

/// The Watt Data client pointed at the MCP endpoint `url`, with timeouts and backoff short
/// enough for tests and retries enough to ride out injected faults.
pub async fn watt_provider(url: &str) -> Arc<dyn PopulationProvider> {
    watt_provider_with(url, |_| {}).await
}

/// [`watt_provider`] with the configuration changed by `configure` before it connects.
pub async fn watt_provider_with(
    url: &str,
    configure: impl FnOnce(&mut WattConfig),
) -> Arc<dyn PopulationProvider> {
    let mut config = WattConfig::new(url.to_owned(), Secret::new("test-key"));
    config.timeout = Duration::from_secs(2);
    config.backoff_base = Duration::from_millis(20);
    config.backoff_cap = Duration::from_millis(200);
    config.max_retries = 8;
    configure(&mut config);
    let provider = WattProvider::connect(config)
        .await
        .expect("connect to the test upstream");
    Arc::new(provider)
}

/// The service with `provider`, asking it to resolve in several calls (the embedded run makes
/// one): the result must be the same, in one workflow.
pub async fn spawn_app_over(db: TestDatabase, provider: Arc<dyn PopulationProvider>) -> TestApp {
    let opts = AppOptions {
        workers: 2,
        provider: Some(provider),
        resolve_chunk: Some(500),
        ..AppOptions::default()
    };
    spawn_app_with(db, opts).await
}

/// What a test does before a resolve or enrichment call reaches the embedded population: watch
/// the request, or answer an error instead of the provider.
pub trait Tap: Send + Sync + 'static {
    fn on_resolve(&self, _req: &ResolveRequest) -> Result<(), ProviderError> {
        Ok(())
    }
    fn on_get_person(&self, _req: &GetPersonRequest) -> Result<(), ProviderError> {
        Ok(())
    }
    fn on_rank(&self) -> RankTap {
        RankTap::Pass
    }
    /// Whether `sample_traits` answers (false: "this provider cannot", as a remote upstream).
    fn samples(&self) -> bool {
        true
    }
}

/// What a [`Tap`] does with a `rank_persons` call.
pub enum RankTap {
    Pass,
    Fail(ProviderError),
    /// Answers "this provider cannot rank its population", as a remote upstream does.
    Cannot,
}

/// The embedded population behind a [`Tap`]; every other call passes straight through.
pub struct Tapped<T> {
    pub inner: EmbeddedProvider,
    pub tap: T,
    /// Holds `get_person` calls while closed (open unless a test closes it): jobs wait in the
    /// enrich stage, their resolve stage checkpointed, until the test lets them go.
    pub enrich_gate: Gate,
}

impl<T: Tap> Tapped<T> {
    pub fn new(tap: T) -> Arc<Self> {
        Arc::new(Self {
            inner: EmbeddedProvider::new(population()),
            tap,
            enrich_gate: Gate::default(),
        })
    }
}

/// A gate calls wait at while it is closed.
pub struct Gate(tokio::sync::watch::Sender<bool>);

impl Default for Gate {
    fn default() -> Self {
        Self(tokio::sync::watch::Sender::new(true))
    }
}

impl Gate {
    pub fn close(&self) {
        self.0.send_replace(false);
    }

    pub fn open(&self) {
        self.0.send_replace(true);
    }

    async fn pass(&self) {
        let mut open = self.0.subscribe();
        let _ = open.wait_for(|open| *open).await;
    }
}

#[async_trait::async_trait]
impl<T: Tap> PopulationProvider for Tapped<T> {
    fn name(&self) -> &'static str {
        "tapped"
    }
    async fn resolve_identities(
        &self,
        req: ResolveRequest,
    ) -> Result<ResolveResponse, ProviderError> {
        self.tap.on_resolve(&req)?;
        self.inner.resolve_identities(req).await
    }
    async fn resolve_persons(&self, req: ResolveRequest) -> Result<ResolveResponse, ProviderError> {
        self.tap.on_resolve(&req)?;
        self.inner.resolve_persons(req).await
    }
    async fn get_person(&self, req: GetPersonRequest) -> Result<GetPersonResponse, ProviderError> {
        self.enrich_gate.pass().await;
        self.tap.on_get_person(&req)?;
        self.inner.get_person(req).await
    }
    async fn list_clusters(
        &self,
        req: ListClustersRequest,
    ) -> Result<ListClustersResponse, ProviderError> {
        self.inner.list_clusters(req).await
    }
    async fn get_cluster(
        &self,
        req: GetClusterRequest,
    ) -> Result<GetClusterResponse, ProviderError> {
        self.inner.get_cluster(req).await
    }
    async fn find_persons(
        &self,
        req: FindPersonsRequest,
    ) -> Result<FindPersonsResponse, ProviderError> {
        self.inner.find_persons(req).await
    }
    async fn export_persons(
        &self,
        req: FindPersonsRequest,
    ) -> Result<AudienceExport, ProviderError> {
        self.inner.export_persons(req).await
    }
    async fn rank_persons(
        &self,
        req: RankPersonsRequest,
    ) -> Option<Result<RankPersonsResponse, ProviderError>> {
        match self.tap.on_rank() {
            RankTap::Pass => self.inner.rank_persons(req).await,
            RankTap::Fail(error) => Some(Err(error)),
            RankTap::Cannot => None,
        }
    }
    async fn sample_traits(
        &self,
        req: SampleTraitsRequest,
    ) -> Option<Result<SampleTraitsResponse, ProviderError>> {
        if self.tap.samples() {
            self.inner.sample_traits(req).await
        } else {
            None
        }
    }
    async fn submit_feedback(
        &self,
        req: FeedbackRequest,
    ) -> Result<FeedbackResponse, ProviderError> {
        self.inner.submit_feedback(req).await
    }
}
