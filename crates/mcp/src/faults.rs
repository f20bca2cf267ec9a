//! A test upstream that misbehaves the way remote APIs do, on purpose and reproducibly.
//!
//! [`FaultyUpstream::start`] serves a provider through [`mcp_router`] on `127.0.0.1:0` and, in
//! front of it, fails a configurable share of tool calls and export downloads. Which arrival
//! gets which fault follows from the seed alone (a hash of the seed and the arrival number), so a
//! run is as repeatable as its arrival order.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use futures::stream;
use icp_contract::{
    AudienceExport, FeedbackRequest, FeedbackResponse, FindPersonsRequest, FindPersonsResponse,
    GetClusterRequest, GetClusterResponse, GetPersonRequest, GetPersonResponse,
    ListClustersRequest, ListClustersResponse, PopulationProvider, ProviderError, ResolveRequest,
    ResolveResponse,
};
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::server::{ServeConfig, mcp_router};
use crate::streamable_http::SESSION_HEADER;

/// One way a call can go wrong (or, for `SseAnswer`, merely differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// 500, 502 or 503, in turn.
    ServerError,
    /// 429 with `Retry-After`.
    RateLimited,
    /// No answer for [`FaultConfig::hang`] (meant to outlast the client's timeout), then 504.
    Hang,
    /// The connection breaks off after the headers.
    DropConnection,
    /// A correct answer, framed as an SSE stream (`event: message`) rather than JSON.
    SseAnswer,
    /// 404 on a valid session id, as when the server lost its sessions.
    LostSession,
    /// An export URL answers 410 Gone or 403 Forbidden, in turn.
    ExpiredExport,
}

impl FaultKind {
    pub const ALL: [FaultKind; 7] = [
        FaultKind::ServerError,
        FaultKind::RateLimited,
        FaultKind::Hang,
        FaultKind::DropConnection,
        FaultKind::SseAnswer,
        FaultKind::LostSession,
        FaultKind::ExpiredExport,
    ];

    fn applies_to_exports(self) -> bool {
        self == FaultKind::ExpiredExport
    }
}

#[derive(Debug, Clone)]
pub struct FaultConfig {
    pub seed: u64,
    /// Share (0..=1) of tool calls and of export downloads that get a fault.
    pub failure_rate: f64,
    /// The first this many tool calls, and the first this many export downloads, always get a
    /// fault: a test that needs one fault at a known place sets this and a zero rate.
    pub fail_first: u64,
    /// The faults drawn from, uniformly; those that do not apply to a request are skipped.
    pub kinds: Vec<FaultKind>,
    /// How long after it arrived every tool call and export download is answered (for a
    /// download: its status and headers; the body then streams). The upstream's own work counts
    /// within it, as a remote server's does: an answer whose work takes longer leaves as soon as
    /// it is ready, late by that much.
    pub latency: Duration,
    /// The `Retry-After` of a 429 (whole seconds on the wire).
    pub retry_after: Duration,
    /// How long a hang lasts.
    pub hang: Duration,
    /// Answer `list_clusters` without `population_size`, as the reference upstream does (it
    /// gives each cluster's size only).
    pub strip_population_size: bool,
    pub serve: ServeConfig,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            failure_rate: 0.0,
            fail_first: 0,
            kinds: FaultKind::ALL.to_vec(),
            latency: Duration::ZERO,
            retry_after: Duration::from_secs(1),
            hang: Duration::from_secs(5),
            strip_population_size: false,
            serve: ServeConfig::default(),
        }
    }
}

#[derive(Default)]
struct Tally {
    calls: BTreeMap<String, u64>,
    faults: BTreeMap<FaultKind, u64>,
    export_downloads: u64,
}

struct FaultState {
    cfg: FaultConfig,
    mcp_arrivals: AtomicU64,
    export_arrivals: AtomicU64,
    tally: Mutex<Tally>,
    /// Tool calls and export downloads received and not yet answered, and the most seen.
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
}

impl FaultState {
    /// Counts a request in flight until the guard is dropped.
    fn enter(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(self)
    }

    fn tally(&self, f: impl FnOnce(&mut Tally)) {
        f(&mut self.tally.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// The fault for this arrival, if any: a pure function of the seed and the arrival number.
    fn draw(&self, arrival: u64, for_exports: bool) -> Option<FaultKind> {
        let x = splitmix64(self.cfg.seed ^ arrival.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let uniform = (x >> 11) as f64 / (1u64 << 53) as f64;
        if arrival >= self.cfg.fail_first && uniform >= self.cfg.failure_rate {
            return None;
        }
        let kinds: Vec<FaultKind> = self
            .cfg
            .kinds
            .iter()
            .copied()
            .filter(|k| k.applies_to_exports() == for_exports)
            .collect();
        if kinds.is_empty() {
            return None;
        }
        let pick = splitmix64(x) % kinds.len() as u64;
        Some(kinds[pick as usize])
    }
}

struct InFlight<'a>(&'a FaultState);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The faulty upstream while it runs; dropping the handle stops it.
pub struct FaultyUpstreamHandle {
    state: Arc<FaultState>,
    task: JoinHandle<()>,
}

impl FaultyUpstreamHandle {
    /// Tool calls received per tool (faulted ones included).
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.state
            .tally
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .calls
            .clone()
    }

    /// Tool calls received over all tools.
    pub fn total_calls(&self) -> u64 {
        self.calls().values().sum()
    }

    /// Faults injected, per kind.
    pub fn faults(&self) -> BTreeMap<FaultKind, u64> {
        self.state
            .tally
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .faults
            .clone()
    }

    /// The most tool calls and export downloads that were in flight at once (received and not
    /// yet answered; a download is answered when its body starts).
    pub fn max_in_flight(&self) -> u64 {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// Export downloads received (expired ones included).
    pub fn export_downloads(&self) -> u64 {
        self.state
            .tally
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .export_downloads
    }
}

impl Drop for FaultyUpstreamHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub struct FaultyUpstream;

impl FaultyUpstream {
    /// Serves `provider` over MCP on `127.0.0.1:0` behind the fault layer. The MCP endpoint is
    /// `http://{addr}/mcp`.
    pub async fn start(
        provider: Arc<dyn PopulationProvider>,
        cfg: FaultConfig,
    ) -> std::io::Result<(SocketAddr, FaultyUpstreamHandle)> {
        let state = Arc::new(FaultState {
            mcp_arrivals: AtomicU64::new(0),
            export_arrivals: AtomicU64::new(0),
            tally: Mutex::new(Tally::default()),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            cfg: cfg.clone(),
        });
        let provider: Arc<dyn PopulationProvider> = if cfg.strip_population_size {
            Arc::new(WithoutPopulationSize(provider))
        } else {
            provider
        };
        let app = faulty_router(provider, state.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "faulty upstream stopped");
            }
        });
        Ok((addr, FaultyUpstreamHandle { state, task }))
    }
}

/// A provider whose `list_clusters` answers carry no population size; everything else is
/// passed through.
struct WithoutPopulationSize(Arc<dyn PopulationProvider>);

#[async_trait::async_trait]
impl PopulationProvider for WithoutPopulationSize {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    async fn resolve_identities(
        &self,
        req: ResolveRequest,
    ) -> Result<ResolveResponse, ProviderError> {
        self.0.resolve_identities(req).await
    }

    async fn resolve_persons(&self, req: ResolveRequest) -> Result<ResolveResponse, ProviderError> {
        self.0.resolve_persons(req).await
    }

    async fn get_person(&self, req: GetPersonRequest) -> Result<GetPersonResponse, ProviderError> {
        self.0.get_person(req).await
    }

    async fn list_clusters(
        &self,
        req: ListClustersRequest,
    ) -> Result<ListClustersResponse, ProviderError> {
        let mut page = self.0.list_clusters(req).await?;
        page.population_size = None;
        Ok(page)
    }

    async fn get_cluster(
        &self,
        req: GetClusterRequest,
    ) -> Result<GetClusterResponse, ProviderError> {
        self.0.get_cluster(req).await
    }

    async fn find_persons(
        &self,
        req: FindPersonsRequest,
    ) -> Result<FindPersonsResponse, ProviderError> {
        self.0.find_persons(req).await
    }

    async fn export_persons(
        &self,
        req: FindPersonsRequest,
    ) -> Result<AudienceExport, ProviderError> {
        self.0.export_persons(req).await
    }

    async fn submit_feedback(
        &self,
        req: FeedbackRequest,
    ) -> Result<FeedbackResponse, ProviderError> {
        self.0.submit_feedback(req).await
    }

    fn drain_traces(&self, workflow_id: &str, tool: &str) -> Option<Vec<(String, String)>> {
        self.0.drain_traces(workflow_id, tool)
    }
}

fn faulty_router(provider: Arc<dyn PopulationProvider>, state: Arc<FaultState>) -> axum::Router {
    mcp_router(provider, state.cfg.serve.clone())
        .layer(middleware::from_fn_with_state(state, inject))
}

fn status(code: StatusCode) -> Response {
    (code, "injected fault").into_response()
}

async fn inject(State(state): State<Arc<FaultState>>, req: Request, next: Next) -> Response {
    let deadline = Instant::now() + state.cfg.latency;
    let path = req.uri().path().to_owned();
    if req.method() == Method::GET && path.starts_with("/exports/") {
        state.tally(|t| t.export_downloads += 1);
        let _in_flight = state.enter();
        let resp = download(&state, req, next).await;
        tokio::time::sleep_until(deadline).await;
        return resp;
    }
    if req.method() != Method::POST || path != "/mcp" {
        return next.run(req).await;
    }
    let _in_flight = state.enter();
    let (resp, timed) = tool_call(&state, req, next).await;
    if timed {
        tokio::time::sleep_until(deadline).await;
    }
    resp
}

/// An export download, or the expired-URL fault in its place.
async fn download(state: &FaultState, req: Request, next: Next) -> Response {
    let arrival = state.export_arrivals.fetch_add(1, Ordering::Relaxed);
    if let Some(kind) = state.draw(arrival, true) {
        state.tally(|t| *t.faults.entry(kind).or_default() += 1);
        let code = if arrival.is_multiple_of(2) {
            StatusCode::GONE
        } else {
            StatusCode::FORBIDDEN
        };
        return status(code);
    }
    next.run(req).await
}

/// A POST to `/mcp`, faulted or not; `true` with a tool call (the handshake and notifications
/// are answered at once and never faulted).
async fn tool_call(state: &FaultState, req: Request, next: Next) -> (Response, bool) {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, state.cfg.serve.max_request_bytes).await else {
        return (status(StatusCode::PAYLOAD_TOO_LARGE), false);
    };
    let tool = serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| {
        (v.get("method")? == "tools/call")
            .then(|| v.get("params")?.get("name")?.as_str().map(str::to_owned))
            .flatten()
    });
    let has_session = parts.headers.contains_key(SESSION_HEADER);
    let req = Request::from_parts(parts, Body::from(bytes));
    // Only tool calls are faulted: they are what the client must survive, and the handshake has
    // its own recovery path (a fresh session) that a lost session already exercises.
    let Some(tool) = tool else {
        return (next.run(req).await, false);
    };
    state.tally(|t| *t.calls.entry(tool).or_default() += 1);
    let arrival = state.mcp_arrivals.fetch_add(1, Ordering::Relaxed);
    let kind = state
        .draw(arrival, false)
        .filter(|k| *k != FaultKind::LostSession || has_session);
    let resp = match kind {
        None => next.run(req).await,
        Some(kind) => fault(state, kind, arrival, req, next).await,
    };
    (resp, true)
}

/// Answers a tool call with `kind` of fault.
async fn fault(
    state: &FaultState,
    kind: FaultKind,
    arrival: u64,
    req: Request,
    next: Next,
) -> Response {
    state.tally(|t| *t.faults.entry(kind).or_default() += 1);
    match kind {
        FaultKind::ServerError => status(
            [
                StatusCode::INTERNAL_SERVER_ERROR,
                StatusCode::BAD_GATEWAY,
                StatusCode::SERVICE_UNAVAILABLE,
            ][(arrival % 3) as usize],
        ),
        FaultKind::RateLimited => {
            let mut resp = status(StatusCode::TOO_MANY_REQUESTS);
            let secs = state.cfg.retry_after.as_secs().to_string();
            if let Ok(v) = HeaderValue::from_str(&secs) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
        FaultKind::Hang => {
            tokio::time::sleep(state.cfg.hang).await;
            status(StatusCode::GATEWAY_TIMEOUT)
        }
        FaultKind::DropConnection => {
            let broken = stream::iter([
                Ok(Bytes::from_static(b"{\"jsonrpc\":\"2.0\",")),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected dropped connection",
                )),
            ]);
            let mut resp = Response::new(Body::from_stream(broken));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
        FaultKind::SseAnswer => {
            let resp = next.run(req).await;
            as_sse(resp).await
        }
        FaultKind::LostSession => status(StatusCode::NOT_FOUND),
        FaultKind::ExpiredExport => next.run(req).await,
    }
}

/// Re-frames a JSON answer as the one-event SSE stream a Streamable HTTP server may send.
async fn as_sse(resp: Response) -> Response {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(json) = to_bytes(body, usize::MAX).await else {
        return status(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let mut framed = b"event: message\ndata: ".to_vec();
    framed.extend_from_slice(&json);
    framed.extend_from_slice(b"\n\n");
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(framed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_draw_is_seeded_and_close_to_the_rate() {
        let state = |seed| FaultState {
            cfg: FaultConfig {
                seed,
                failure_rate: 0.2,
                ..FaultConfig::default()
            },
            mcp_arrivals: AtomicU64::new(0),
            export_arrivals: AtomicU64::new(0),
            tally: Mutex::new(Tally::default()),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
        };
        let (a, b) = (state(7), state(7));
        let draws_a: Vec<_> = (0..10_000).map(|n| a.draw(n, false)).collect();
        let draws_b: Vec<_> = (0..10_000).map(|n| b.draw(n, false)).collect();
        assert_eq!(draws_a, draws_b);
        let faulted = draws_a.iter().filter(|d| d.is_some()).count();
        assert!((1_800..2_200).contains(&faulted), "{faulted}");
        assert!(
            draws_a
                .iter()
                .flatten()
                .all(|k| *k != FaultKind::ExpiredExport)
        );
        assert!(
            (0..1000)
                .filter_map(|n| a.draw(n, true))
                .all(|k| k == FaultKind::ExpiredExport)
        );
    }
}
