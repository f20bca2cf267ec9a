//! What an operator watches, in the Prometheus exposition format (`GET /metrics`, OpenMetrics
//! text): HTTP requests by route and status, provider calls by tool with their latency, errors
//! and retries, how long each stage of a job takes, job retries, and, read from the database at
//! each scrape, jobs by status, the queue's depth and the age of its oldest job, and the
//! connection pool's use.
//!
//! One registry per service (not the process-global recorder of the `metrics` facade), so that
//! two services in one process — the test suite starts many — count apart. Counts and
//! durations only: no label carries an identifier, a job id or anything a client sent beyond
//! the route's template and the method.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use icp_contract::PopulationProvider;
use icp_store::{JobStatus, Store, StoreError};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    /// The route's template (`/v1/jobs/{id}`), or `unmatched`.
    route: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabels {
    tool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolErrorLabels {
    tool: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// 1 ms to about 33 s, doubling: HTTP answers and provider calls.
fn call_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// 10 ms to about 11 min, doubling: a stage of a job.
fn stage_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 17))
}

/// The service's metrics; cheap to share (`Arc`).
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Histograms<RouteLabels>,
    provider_calls: Family<ToolLabels, Counter>,
    provider_errors: Family<ToolErrorLabels, Counter>,
    provider_duration: Histograms<ToolLabels>,
    stage_duration: Histograms<StageLabels>,
    job_retries: Counter,
    jobs: Family<StatusLabels, Gauge>,
    queue_depth: Gauge,
    oldest_queued_age: Gauge<f64, AtomicU64>,
    pool_connections: Family<PoolLabels, Gauge>,
    pool_max: Gauge,
    webhook_attempts: Family<OutcomeLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// Reads the provider's own retry count at each scrape: retries happen inside a call, where
/// only the provider sees them.
struct ProviderRetries(Arc<dyn PopulationProvider>);

impl std::fmt::Debug for ProviderRetries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProviderRetries({})", self.0.name())
    }
}

impl Collector for ProviderRetries {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let retries = ConstCounter::new(self.0.retried_attempts());
        let metric = encoder.encode_descriptor(
            "icp_provider_retries",
            "Provider call attempts that repeated a failed attempt (inside one call)",
            None,
            retries.metric_type(),
        )?;
        retries.encode(metric)
    }
}

impl Metrics {
    /// Metrics for a service over `provider` (the provider as built, before any wrapper: its
    /// retry count is read at each scrape).
    pub fn new(provider: Arc<dyn PopulationProvider>) -> Self {
        let mut registry = Registry::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "icp_http_requests",
            "HTTP requests answered, by method, route template and status",
            http_requests.clone(),
        );
        let http_duration: Histograms<RouteLabels> = Family::new_with_constructor(call_buckets);
        registry.register_with_unit(
            "icp_http_request_duration",
            "Time to answer an HTTP request (a download: until its body starts)",
            Unit::Seconds,
            http_duration.clone(),
        );
        let provider_calls = Family::<ToolLabels, Counter>::default();
        registry.register(
            "icp_provider_calls",
            "Population provider calls, by tool",
            provider_calls.clone(),
        );
        let provider_errors = Family::<ToolErrorLabels, Counter>::default();
        registry.register(
            "icp_provider_errors",
            "Population provider calls that failed, by tool and kind of failure",
            provider_errors.clone(),
        );
        let provider_duration: Histograms<ToolLabels> = Family::new_with_constructor(call_buckets);
        registry.register_with_unit(
            "icp_provider_call_duration",
            "Time a provider call took, retries inside it included (an export: until it starts)",
            Unit::Seconds,
            provider_duration.clone(),
        );
        registry.register_collector(Box::new(ProviderRetries(provider)));
        let stage_duration: Histograms<StageLabels> = Family::new_with_constructor(stage_buckets);
        registry.register_with_unit(
            "icp_stage_duration",
            "Time one attempt spent in a stage of a job that finished it (resolve_enrich: \
             the two overlap)",
            Unit::Seconds,
            stage_duration.clone(),
        );
        let job_retries = Counter::default();
        registry.register(
            "icp_job_retries",
            "Job attempts that failed and were queued to be tried again",
            job_retries.clone(),
        );
        let jobs = Family::<StatusLabels, Gauge>::default();
        registry.register("icp_jobs", "Jobs in the database, by status", jobs.clone());
        let queue_depth = Gauge::default();
        registry.register(
            "icp_queue_depth",
            "Jobs queued: new, or waiting out a retry's delay",
            queue_depth.clone(),
        );
        let oldest_queued_age = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "icp_queue_oldest_age",
            "Age of the oldest queued job (0 when none is queued)",
            Unit::Seconds,
            oldest_queued_age.clone(),
        );
        let pool_connections = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "icp_db_pool_connections",
            "This process's database connections, by state (in_use, idle)",
            pool_connections.clone(),
        );
        let pool_max = Gauge::default();
        registry.register(
            "icp_db_pool_max_connections",
            "The most connections this process's pool opens",
            pool_max.clone(),
        );
        let webhook_attempts = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "icp_webhook_attempts",
            "Webhook delivery attempts, by outcome (delivered, retry, gone, abandoned, refused)",
            webhook_attempts.clone(),
        );
        Self {
            registry,
            http_requests,
            http_duration,
            provider_calls,
            provider_errors,
            provider_duration,
            stage_duration,
            job_retries,
            jobs,
            queue_depth,
            oldest_queued_age,
            pool_connections,
            pool_max,
            webhook_attempts,
        }
    }

    pub fn observe_http(&self, method: &str, route: &str, status: u16, took: Duration) {
        let (method, route) = (method.to_owned(), route.to_owned());
        self.http_duration
            .get_or_create(&RouteLabels {
                method: method.clone(),
                route: route.clone(),
            })
            .observe(took.as_secs_f64());
        self.http_requests
            .get_or_create(&HttpLabels {
                method,
                route,
                status: status.to_string(),
            })
            .inc();
    }

    /// One provider call of `tool`; `error` is the failure's kind when it failed.
    pub fn observe_call(&self, tool: &str, took: Duration, error: Option<&str>) {
        let tool = tool.to_owned();
        self.provider_duration
            .get_or_create(&ToolLabels { tool: tool.clone() })
            .observe(took.as_secs_f64());
        if let Some(kind) = error {
            self.provider_errors
                .get_or_create(&ToolErrorLabels {
                    tool: tool.clone(),
                    kind: kind.replace(' ', "_"),
                })
                .inc();
        }
        self.provider_calls
            .get_or_create(&ToolLabels { tool })
            .inc();
    }

    pub fn observe_stage(&self, stage: &str, took: Duration) {
        self.stage_duration
            .get_or_create(&StageLabels {
                stage: stage.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn job_retried(&self) {
        self.job_retries.inc();
    }

    /// One webhook delivery attempt and what came of it.
    pub fn webhook_attempted(&self, outcome: &str) {
        self.webhook_attempts
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// The text a scrape gets: what was counted, and the database's state read now.
    pub async fn render(&self, store: &Store) -> Result<String, StoreError> {
        let by_status = store.count_by_status().await?;
        for status in JobStatus::ALL {
            let n = by_status
                .iter()
                .find(|(s, _)| *s == status)
                .map_or(0, |(_, n)| *n);
            self.jobs
                .get_or_create(&StatusLabels {
                    status: status.as_str().to_owned(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        let queue = store.queue_stats().await?;
        self.queue_depth
            .set(i64::try_from(queue.queued).unwrap_or(i64::MAX));
        let age = queue.oldest_created_at.map_or(0.0, |at| {
            (time::OffsetDateTime::now_utc() - at)
                .as_seconds_f64()
                .max(0.0)
        });
        self.oldest_queued_age.set(age);
        let pool = store.pool_stats();
        for (state, n) in [
            ("in_use", pool.open.saturating_sub(pool.idle)),
            ("idle", pool.idle),
        ] {
            self.pool_connections
                .get_or_create(&PoolLabels {
                    state: state.to_owned(),
                })
                .set(i64::from(n));
        }
        self.pool_max.set(i64::from(pool.max));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        Ok(text)
    }
}
