//! Starting and stopping the whole service: HTTP server, worker pool, webhook deliveries and
//! janitor.

use std::net::SocketAddr;
use std::sync::Arc;

use icp_contract::PopulationProvider;
use icp_store::Store;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::auth::Auth;
use crate::callback::TargetPolicy;
use crate::config::ServiceConfig;
use crate::metered::MeteredProvider;
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::webhook::WebhookContext;
use crate::worker::{ClusterCache, WorkerContext, spawn_pool};

/// A running service; dropping it does not stop it, `shutdown` does.
pub struct RunningService {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningService {
    /// Stops accepting requests, lets workers finish their current step, and waits.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }

    /// A token that stops the service when cancelled (for signal handlers).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until the service has stopped.
    pub async fn wait(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// The span of one request: its method, its path (no query string, no body) and its request
/// id, so that a client quoting the id finds every line the request logged.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = request.uri().path(),
        request_id = id,
    )
}

/// Binds `config.listen` and starts the API, `config.worker.workers` workers and the janitor.
pub async fn start(
    config: ServiceConfig,
    store: Store,
    provider: Arc<dyn PopulationProvider>,
) -> std::io::Result<RunningService> {
    // Requests wait for the database only briefly: an outage answers 503 at once (the key
    // checks of a request included).
    let api_store = store.with_wait(config.db_wait);
    let auth = Auth::new(api_store.clone())
        .await
        .map_err(std::io::Error::other)?;
    auth.check_listener(config.listen)
        .map_err(std::io::Error::other)?;
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let config = Arc::new(config);
    let wake_workers = Arc::new(tokio::sync::Notify::new());
    let metrics = Arc::new(Metrics::new(provider.clone()));
    let provider: Arc<dyn PopulationProvider> =
        Arc::new(MeteredProvider::new(provider, metrics.clone()));
    let targets = Arc::new(TargetPolicy {
        allow_private: config.webhooks.allow_private,
        listen: addr,
        self_hosts: config
            .webhooks
            .self_hosts
            .iter()
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
            .collect(),
    });
    let state = AppState {
        store: api_store,
        provider: provider.clone(),
        config: config.clone(),
        auth: Arc::new(auth),
        wake_workers: wake_workers.clone(),
        metrics: metrics.clone(),
        event_streams: Arc::new(tokio::sync::Semaphore::new(config.max_event_streams)),
        shutdown: shutdown.clone(),
        targets: targets.clone(),
    };
    let open = !state.auth.required();

    let app = crate::api::router(state).layer(CatchPanicLayer::new());
    // Inside the request id and trace layers, so a preflight is traced and carries its id;
    // outside every route and guard, so error answers are readable by an allowed page too.
    let app = match config.cors_origins.layer() {
        Some(cors) => app.layer(cors),
        None => app,
    };
    let app = app
        .layer(PropagateRequestIdLayer::x_request_id())
        // Paths and statuses only: bodies carry personal data and never reach the log.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid));

    let mut tasks = Vec::new();
    let http_shutdown = shutdown.clone();
    tasks.push(tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { http_shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "HTTP server stopped with an error");
        }
    }));

    tasks.push(crate::webhook::spawn(
        WebhookContext {
            store: store.with_wait(config.worker.db_wait),
            config: config.webhooks.clone(),
            policy: targets,
            metrics: metrics.clone(),
        },
        shutdown.clone(),
    ));

    let ctx = WorkerContext {
        store: store.with_wait(config.worker.db_wait),
        provider,
        config: config.worker.clone(),
        wake: wake_workers,
        clusters: Arc::new(ClusterCache::new(config.worker.cluster_cache_ttl)),
        metrics,
    };
    let mut pool = spawn_pool(ctx, shutdown.clone());
    tasks.push(tokio::spawn(async move {
        while pool.join_next().await.is_some() {}
    }));

    let janitor_shutdown = shutdown.clone();
    let purge_every = config.purge_every;
    tasks.push(tokio::spawn(async move {
        loop {
            match store.purge_expired(time::OffsetDateTime::now_utc()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(jobs = n, "expired jobs purged"),
                Err(e) => tracing::warn!(error = %e, "purging expired jobs failed"),
            }
            tokio::select! {
                _ = janitor_shutdown.cancelled() => break,
                _ = tokio::time::sleep(purge_every) => {}
            }
        }
    }));

    tracing::info!(%addr, workers = config.worker.workers, "icp-service listening");
    if open {
        tracing::warn!(
            %addr,
            "no API key exists: serving without authentication, on loopback only \
             (`icp keys create` makes one and closes the service to requests without it)"
        );
    }
    Ok(RunningService {
        addr,
        shutdown,
        tasks,
    })
}
