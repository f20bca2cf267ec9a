//! `icp`: the ICP service's one binary.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use icp_contract::PopulationProvider;
use icp_population::{EmbeddedProvider, GeneratorConfig, Population};
use icp_server::config::AudienceBands;
use icp_server::cors::CorsOrigins;
use icp_server::webhook_secret::WebhookSecret;
use icp_server::{ServiceConfig, WebhookConfig, WorkerConfig};
use icp_store::Store;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// A job allocates and frees megabytes of short-lived JSON and profile maps per upstream call;
/// glibc's malloc spent a quarter of a remote job's CPU on that (perf), mimalloc a fraction.
/// Built without transparent huge pages (`no_thp`): mimalloc asked the kernel for them, and every
/// fresh 2 MiB region it touched was zeroed whole — 39 % of the CPU of a remote job's resolve
/// stage went to `clear_page_erms` (perf), and the embedded 100k job ran 2.05–2.29 s with them,
/// 1.75–1.87 s without (`cargo bench --bench remote_job`).
mod keys;
mod otel;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "icp",
    version,
    about = "Customer list in, Ideal Customer Profile and lookalike audiences out"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

// Parsed once at start: the size of the serve variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API and the worker pool (the default).
    Serve(ServeArgs),
    /// Apply the database migrations and exit.
    Migrate(DatabaseArgs),
    /// Print the OpenAPI document.
    Openapi,
    /// Write a CSV of customers drawn from the embedded population, ready to post as a job.
    SampleCustomers(SampleArgs),
    /// Serve the embedded population over MCP (Streamable HTTP), as the upstream provider would.
    McpServe(McpServeArgs),
    /// Create, list or revoke API keys.
    Keys(keys::KeysArgs),
}

#[derive(Args, Clone)]
struct DatabaseArgs {
    /// `postgres://…` for Postgres, or a SQLite file (created on first run).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://icp.db")]
    database_url: String,
}

#[derive(Args, Clone)]
struct PopulationArgs {
    /// A CSV of your own people to use as the population instead of a generated one.
    #[arg(long, env = "ICP_POPULATION")]
    population: Option<PathBuf>,
    /// Persons in the generated population.
    #[arg(long, env = "ICP_POPULATION_SIZE", default_value_t = 1_000_000)]
    population_size: usize,
    /// Seed of the generated population: the same seed gives the same people.
    #[arg(long, env = "ICP_POPULATION_SEED", default_value_t = GeneratorConfig::default().seed)]
    population_seed: u64,
}

impl PopulationArgs {
    fn load(&self) -> anyhow::Result<Population> {
        let started = Instant::now();
        let population = match &self.population {
            Some(path) => Population::from_csv_path(path)
                .with_context(|| format!("importing the population {}", path.display()))?,
            None => Population::generate(&GeneratorConfig {
                persons: self.population_size,
                seed: self.population_seed,
            }),
        };
        tracing::info!(
            persons = population.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "population ready"
        );
        Ok(population)
    }
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
enum ProviderKind {
    /// The population held in this process (generated or imported).
    Embedded,
    /// The Watt Data MCP server at WATT_API_URL with WATT_API_KEY.
    Watt,
}

#[derive(Args, Clone)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "ICP_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    database: DatabaseArgs,
    #[arg(long, env = "ICP_PROVIDER", value_enum, default_value = "embedded")]
    provider: ProviderKind,
    #[command(flatten)]
    population: PopulationArgs,
    /// Workers running jobs in this process (0: API only).
    #[arg(long, env = "ICP_WORKERS", default_value_t = WorkerConfig::default().workers)]
    workers: usize,
    /// Provider calls in flight per job (resolve and `get_person` calls, audiences at once).
    #[arg(long, env = "ICP_ENRICH_CONCURRENCY", default_value_t = WorkerConfig::default().enrich_concurrency)]
    enrich_concurrency: usize,
    /// Seconds the clusters a job listed serve the next jobs instead of new `list_clusters`
    /// calls (0: list every time).
    #[arg(long, env = "ICP_CLUSTER_CACHE_SECS", default_value_t = WorkerConfig::default().cluster_cache_ttl.as_secs())]
    cluster_cache_secs: u64,
    /// Seconds a worker's claim on a job lasts; renewed every third of it while the job runs.
    /// A job whose process died is resumed by another once its lease ran out.
    #[arg(long, env = "ICP_LEASE_SECS", default_value_t = WorkerConfig::default().lease.as_secs())]
    lease_secs: u64,
    /// Hours a job and its data are kept.
    #[arg(long, env = "ICP_RETENTION_HOURS", default_value_t = 168)]
    retention_hours: u64,
    /// Seconds a request may take to be answered, its body read included (then 408).
    #[arg(long, env = "ICP_REQUEST_TIMEOUT_SECS", default_value_t = ServiceConfig::default().request_timeout.as_secs())]
    request_timeout_secs: u64,
    /// Jobs one API key may have queued or running at once (then 429); 0: no limit.
    #[arg(long, env = "ICP_MAX_JOBS_IN_FLIGHT", default_value_t = ServiceConfig::default().max_jobs_in_flight)]
    max_jobs_in_flight: u64,
    /// The largest request body accepted, in bytes (then 413).
    #[arg(long, env = "ICP_MAX_BODY_BYTES", default_value_t = ServiceConfig::default().max_body_bytes)]
    max_body_bytes: usize,
    /// The most identifiers one job may carry (then 422).
    #[arg(long, env = "ICP_MAX_IDENTIFIERS", default_value_t = ServiceConfig::default().max_identifiers)]
    max_identifiers: usize,
    /// Milliseconds a request waits to get into the database before it answers 503 with
    /// Retry-After (workers wait longer and pause their jobs while it is out of reach).
    #[arg(long, env = "ICP_DB_WAIT_MS", default_value_t = ServiceConfig::default().db_wait.as_millis() as u64)]
    db_wait_ms: u64,
    /// Browser origins (dashboards) allowed to call the service, comma-separated
    /// (`https://dash.example.com,http://localhost:5173`), or `*` for any; none by default.
    #[arg(long, env = "ICP_CORS_ORIGINS", default_value = "", value_parser = CorsOrigins::parse)]
    cors_origins: CorsOrigins,
    /// Milliseconds between two looks of an open event stream (`GET /v1/jobs/{id}/events`)
    /// for the job's new events.
    #[arg(long, env = "ICP_EVENTS_POLL_MS", default_value_t = ServiceConfig::default().events_poll.as_millis() as u64)]
    events_poll_ms: u64,
    /// Event streams this process keeps open at once (then 429 with Retry-After).
    #[arg(long, env = "ICP_MAX_EVENT_STREAMS", default_value_t = ServiceConfig::default().max_event_streams)]
    max_event_streams: usize,
    /// Audience size bands in percent of the population, `strategy=MIN-MAX`, comma-separated
    /// (`precision=0.05-0.5,reach=2-20`); unnamed strategies keep their defaults (precision
    /// 0.04-0.4, standard 0.2-2, hybrid 0.4-4, reach 2-25).
    #[arg(long, env = "ICP_AUDIENCE_BANDS", default_value = "", value_parser = AudienceBands::parse_percent)]
    audience_bands: AudienceBands,
    /// The smallest audience worth offering, in persons (default: 0.5 % of the population,
    /// at most 1,000).
    #[arg(long, env = "ICP_MIN_AUDIENCE_SIZE")]
    min_audience_size: Option<u64>,
    /// Let a job's `callback_url` point at loopback, private (RFC 1918, ULA), link-local and
    /// shared (CGNAT) addresses; never at the service itself. Off by default.
    #[arg(long, env = "ICP_WEBHOOK_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    webhook_allow_private: bool,
    /// Host names the service is known by (a load balancer's), comma-separated: callback URLs
    /// naming them are refused, as are its own listening address and port.
    #[arg(long, env = "ICP_WEBHOOK_SELF_HOSTS", value_delimiter = ',')]
    webhook_self_hosts: Vec<String>,
    /// Signs the webhooks of jobs made without an API key (`whsec_<base64>`); one is made at
    /// each start when unset. Jobs of a key are signed with that key's secret (`icp keys`).
    #[arg(long, env = "ICP_WEBHOOK_SECRET", hide_env_values = true, value_parser = WebhookSecret::parse)]
    webhook_secret: Option<WebhookSecret>,
    /// How long a job's webhook is retried after the job ended, in seconds.
    #[arg(long, env = "ICP_WEBHOOK_RETRY_SECS", default_value_t = WebhookConfig::default().retry_for.as_secs())]
    webhook_retry_secs: u64,
    /// How long one webhook attempt may take, in seconds.
    #[arg(long, env = "ICP_WEBHOOK_TIMEOUT_SECS", default_value_t = WebhookConfig::default().attempt_timeout.as_secs())]
    webhook_timeout_secs: u64,
}

impl Default for ServeArgs {
    fn default() -> Self {
        // Parsing no arguments applies the flags' defaults and the environment.
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            serve: ServeArgs,
        }
        Defaults::parse_from(["icp"]).serve
    }
}

#[derive(Args)]
struct SampleArgs {
    /// How many customers.
    #[arg(long, default_value_t = 2000)]
    count: usize,
    /// Draw them from this segment of the generated population (see --list-segments).
    #[arg(long)]
    segment: Option<String>,
    /// List the generated population's segments and exit.
    #[arg(long)]
    list_segments: bool,
    /// Seed of the draw.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Where to write the CSV (standard output when absent).
    #[arg(long, short)]
    output: Option<PathBuf>,
    #[command(flatten)]
    population: PopulationArgs,
}

#[derive(Args)]
struct McpServeArgs {
    /// Address to listen on.
    #[arg(long, env = "ICP_MCP_LISTEN", default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Require `Authorization: Bearer <key>` from clients.
    #[arg(long, env = "ICP_MCP_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    #[command(flatten)]
    population: PopulationArgs,
}

fn main() -> anyhow::Result<()> {
    // Read before the command line, which logging must already cover.
    let json_logs = match std::env::var("ICP_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") | Ok("") | Err(_) => false,
        Ok(other) => anyhow::bail!("ICP_LOG_FORMAT={other:?}: use text or json"),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,tower_http=info,sqlx=warn".into());
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = if json_logs {
        // One JSON object a line, with the fields of every span it sits in (job, stage,
        // request): what a log pipeline indexes.
        logs.json()
            .with_current_span(true)
            .with_span_list(true)
            .boxed()
    } else {
        logs.boxed()
    };
    let tracer = otel::provider()?;
    tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(tracer.as_ref().map(otel::layer))
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = match cli.command {
        None => runtime.block_on(serve(ServeArgs::default())),
        Some(Command::Serve(args)) => runtime.block_on(serve(args)),
        Some(Command::Migrate(args)) => runtime.block_on(async {
            let store = Store::connect(&args.database_url)
                .await
                .context("connecting to the database")?;
            store.migrate().await.context("applying migrations")?;
            tracing::info!("migrations applied");
            Ok(())
        }),
        Some(Command::Openapi) => {
            let spec = serde_json::to_string_pretty(&icp_server::api::openapi())?;
            println!("{spec}");
            Ok(())
        }
        Some(Command::SampleCustomers(args)) => sample_customers(args),
        Some(Command::McpServe(args)) => runtime.block_on(mcp_serve(args)),
        Some(Command::Keys(args)) => runtime.block_on(keys::run(args)),
    };
    // A stopped job's analysis may still be mining on a blocking thread, which dropping the
    // runtime would wait for: the process exits within a bounded time instead (that work is
    // lost either way; the job was released and resumes elsewhere from its checkpoints).
    runtime.shutdown_timeout(BLOCKING_WORK_GRACE);
    if let Some(tracer) = tracer {
        otel::shutdown(tracer);
    }
    outcome
}

/// How long an exiting process waits for work on blocking threads.
const BLOCKING_WORK_GRACE: Duration = Duration::from_secs(2);

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let store = Store::connect(&args.database.database_url)
        .await
        .context("connecting to the database")?;
    store.migrate().await.context("applying migrations")?;
    // Refuse an open service on a reachable address before spending seconds on a population
    // (`start` checks again, for callers of the library).
    icp_server::auth::Auth::new(store.clone())
        .await?
        .check_listener(args.listen)
        .map_err(anyhow::Error::msg)?;
    let provider: Arc<dyn PopulationProvider> = match args.provider {
        ProviderKind::Embedded => {
            Arc::new(EmbeddedProvider::new(Arc::new(args.population.load()?)))
        }
        ProviderKind::Watt => {
            let config =
                icp_mcp::WattConfig::from_env().context("configuring the Watt Data provider")?;
            Arc::new(
                icp_mcp::WattProvider::connect(config)
                    .await
                    .context("connecting to the Watt Data MCP server")?,
            )
        }
    };
    let webhooks = webhook_config(&args);
    let config = ServiceConfig {
        listen: args.listen,
        retention: Duration::from_secs(args.retention_hours.max(1) * 3600),
        request_timeout: Duration::from_secs(args.request_timeout_secs.max(1)),
        max_jobs_in_flight: args.max_jobs_in_flight,
        max_body_bytes: args.max_body_bytes.max(1),
        max_identifiers: args.max_identifiers.max(1),
        db_wait: Duration::from_millis(args.db_wait_ms.max(1)),
        cors_origins: args.cors_origins,
        events_poll: Duration::from_millis(args.events_poll_ms.max(10)),
        max_event_streams: args.max_event_streams,
        worker: WorkerConfig {
            workers: args.workers,
            enrich_concurrency: args.enrich_concurrency.max(1),
            cluster_cache_ttl: Duration::from_secs(args.cluster_cache_secs),
            lease: Duration::from_secs(args.lease_secs.max(1)),
            audience_bands: args.audience_bands,
            min_audience_size: args.min_audience_size.map(|n| n.max(1)),
            ..WorkerConfig::default()
        },
        webhooks,
        ..ServiceConfig::default()
    };
    let service = icp_server::start(config, store, provider)
        .await
        .context("starting the service")?;
    eprintln!(
        "icp-service listening on http://{} (API docs: http://{}/docs)",
        service.addr, service.addr
    );
    let stop = service.shutdown_token();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        stop.cancel();
    });
    service.wait().await;
    Ok(())
}

fn webhook_config(args: &ServeArgs) -> WebhookConfig {
    let service_secret = match &args.webhook_secret {
        Some(secret) => secret.clone(),
        None => {
            tracing::info!(
                "ICP_WEBHOOK_SECRET is unset: the webhooks of jobs without an API key are signed \
                 with a secret made for this run, which no receiver knows"
            );
            WebhookSecret::generate()
        }
    };
    WebhookConfig {
        allow_private: args.webhook_allow_private,
        self_hosts: args
            .webhook_self_hosts
            .iter()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .collect(),
        service_secret,
        retry_for: Duration::from_secs(args.webhook_retry_secs),
        attempt_timeout: Duration::from_secs(args.webhook_timeout_secs.max(1)),
        ..WebhookConfig::default()
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

fn sample_customers(args: SampleArgs) -> anyhow::Result<()> {
    let population = args.population.load()?;
    if args.list_segments {
        let mut out = std::io::stdout().lock();
        for s in population.segments() {
            let traits: Vec<String> = s
                .defining_traits
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            writeln!(out, "{}\t{}\t{}", s.name, s.description, traits.join(", "))?;
        }
        return Ok(());
    }
    if args.count == 0 {
        bail!("--count must be at least 1");
    }
    let customers = population.sample_customers(args.count, args.segment.as_deref(), args.seed)?;
    match &args.output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            icp_population::write_customer_csv(&customers, std::io::BufWriter::new(file))?;
            eprintln!("wrote {} customers to {}", customers.len(), path.display());
        }
        None => icp_population::write_customer_csv(&customers, std::io::stdout().lock())?,
    }
    Ok(())
}

async fn mcp_serve(args: McpServeArgs) -> anyhow::Result<()> {
    let provider: Arc<dyn PopulationProvider> =
        Arc::new(EmbeddedProvider::new(Arc::new(args.population.load()?)));
    let config = icp_mcp::ServeConfig {
        api_key: args.api_key.clone().map(icp_mcp::Secret::new),
        ..icp_mcp::ServeConfig::default()
    };
    let app = icp_mcp::mcp_router(provider, config);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    eprintln!(
        "MCP server listening on http://{}/mcp",
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}
