//! Typed configuration of the service: defaults here, overridden by flags and environment in the
//! binary.

use std::net::SocketAddr;
use std::time::Duration;

pub use icp_analysis::AudienceBands;

use crate::cors::CorsOrigins;
use crate::webhook_secret::WebhookSecret;

/// The most identifiers a job may carry unless configured otherwise.
pub const DEFAULT_MAX_IDENTIFIERS: usize = 1_000_000;

/// How the worker pool behaves.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Workers in this process; 0 runs the API only.
    pub workers: usize,
    /// How long a claim holds before another worker may take the job over.
    pub lease: Duration,
    /// How often an idle worker looks for work.
    pub poll_interval: Duration,
    /// Attempts before a job with a transient error fails for good.
    pub max_attempts: i32,
    /// First retry delay; doubles each attempt, with jitter.
    pub retry_base: Duration,
    /// Provider calls in flight at once for one job: resolve and `get_person` calls, and
    /// audiences found together.
    pub enrich_concurrency: usize,
    /// Identifiers per `resolve_identities` call, in groups of at most 3,000 (the upstream's
    /// limit, as is 50 groups a call). Each call is a checkpoint; several run at once.
    pub resolve_chunk: usize,
    /// Audience records per stored export chunk.
    pub export_chunk_rows: usize,
    /// How long the clusters a job listed serve the next jobs of this process instead of new
    /// `list_clusters` calls (ids and sizes can change upstream: keep it short); zero lists
    /// every time.
    pub cluster_cache_ttl: Duration,
    /// How long a worker's database operation waits to get in (a connection; on SQLite, the
    /// write lock) before the database counts as out of reach and the job pauses until it
    /// answers again. Longer than a request's wait: a worker has no client waiting on it.
    pub db_wait: Duration,
    /// The size band of each audience strategy, as shares of the population.
    pub audience_bands: AudienceBands,
    /// The smallest audience worth offering; `None`: 0.5 % of the population, at most 1,000.
    pub min_audience_size: Option<u64>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(250),
            max_attempts: 5,
            retry_base: Duration::from_secs(2),
            enrich_concurrency: 4,
            resolve_chunk: 30_000,
            export_chunk_rows: 5_000,
            cluster_cache_ttl: Duration::from_secs(600),
            db_wait: Duration::from_secs(15),
            audience_bands: AudienceBands::default(),
            min_audience_size: None,
        }
    }
}

/// The HTTP side and what both sides share.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub listen: SocketAddr,
    /// How long a job and its data are kept after it is created.
    pub retention: Duration,
    /// The largest request body accepted (a CSV of a million customers fits).
    pub max_body_bytes: usize,
    /// The most identifiers one job may carry, counted as submitted.
    pub max_identifiers: usize,
    /// How long a request may take to be answered, reading its body included: a client that
    /// sends slower than that (a slow-loris body) gets 408 instead of holding a connection.
    /// A download streams its body after the answer starts and is not cut by it.
    pub request_timeout: Duration,
    /// Jobs one API key may have queued or running at once; past it, 429. Zero: no limit.
    pub max_jobs_in_flight: u64,
    /// How long a request waits to get into the database (a connection; on SQLite, its turn
    /// to write and the write lock) before it answers 503 with `Retry-After`, so that a
    /// database out of reach fails requests fast instead of holding them. Workers wait longer
    /// and pause their jobs meanwhile (see `worker::outage`).
    pub db_wait: Duration,
    /// How often jobs past their retention are purged.
    pub purge_every: Duration,
    /// The browser origins that may call the service (`ICP_CORS_ORIGINS`); none by default.
    pub cors_origins: CorsOrigins,
    /// How often an open event stream (`GET /v1/jobs/{id}/events`) looks for the job's new
    /// events: one indexed query per look, on any replica.
    pub events_poll: Duration,
    /// Event streams this process keeps open at once; past it, 429 with `Retry-After`, so that
    /// watchers cannot take the database's connections from everything else.
    pub max_event_streams: usize,
    pub worker: WorkerConfig,
    pub webhooks: WebhookConfig,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            retention: Duration::from_secs(7 * 24 * 3600),
            max_body_bytes: 128 * 1024 * 1024,
            max_identifiers: DEFAULT_MAX_IDENTIFIERS,
            request_timeout: Duration::from_secs(60),
            max_jobs_in_flight: 100,
            db_wait: Duration::from_millis(500),
            purge_every: Duration::from_secs(60),
            cors_origins: CorsOrigins::None,
            events_poll: Duration::from_millis(250),
            max_event_streams: 256,
            worker: WorkerConfig::default(),
            webhooks: WebhookConfig::default(),
        }
    }
}

/// Where job-end webhooks may go and how they are delivered (see `callback` and `webhook`).
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Callback URLs may point at loopback, private, link-local and shared (CGNAT) addresses
    /// (`ICP_WEBHOOK_ALLOW_PRIVATE`); never at the service itself.
    pub allow_private: bool,
    /// Host names the service is known by besides its listening address (a load balancer's
    /// name): callback URLs naming them are refused (`ICP_WEBHOOK_SELF_HOSTS`).
    pub self_hosts: Vec<String>,
    /// Signs the messages of jobs without an owner (the service without API keys):
    /// `ICP_WEBHOOK_SECRET`, or one made at start (then no receiver can know it).
    pub service_secret: WebhookSecret,
    /// How long a message is retried after the job ended before it is abandoned.
    pub retry_for: Duration,
    /// The first retry's window; it doubles each attempt (full jitter), up to `retry_cap`.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// How long one attempt may take, connecting included.
    pub attempt_timeout: Duration,
    /// How often an idle delivery task looks for due messages.
    pub poll_interval: Duration,
    /// Deliveries in flight at once in this process.
    pub concurrency: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            allow_private: false,
            self_hosts: Vec::new(),
            service_secret: WebhookSecret::generate(),
            retry_for: Duration::from_secs(24 * 3600),
            retry_base: Duration::from_secs(5),
            retry_cap: Duration::from_secs(3600),
            attempt_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
            concurrency: 8,
        }
    }
}
