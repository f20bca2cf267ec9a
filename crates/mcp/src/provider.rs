//! [`WattProvider`]: the upstream's MCP tools behind [`PopulationProvider`], with bounded
//! concurrency, retries with backoff, request splitting and export downloads.

use std::sync::Arc;
use std::time::Duration;

use futures::future::try_join_all;
use icp_contract::{
    AudienceExport, ExportFormat, ExportRef, FeedbackRequest, FeedbackResponse, FindPersonsRequest,
    FindPersonsResponse, GetClusterRequest, GetClusterResponse, GetPersonRequest,
    GetPersonResponse, Identity, IdentityMatch, ListClustersRequest, ListClustersResponse,
    MAX_PERSON_IDS_PER_CALL, PersonId, PopulationProvider, ProviderError, ResolveRequest,
    ResolveResponse, ResolveStats, Traced, audience_stream,
};
use rand::Rng;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::batching::{merge_resolve, plan_resolve_calls};
use crate::config::WattConfig;
use crate::download;
use crate::export_rows::ExportRow;
use crate::session::McpSession;
use crate::stats::{CallStats, Counters};
use crate::trace_log::{TraceEntry, TraceLog};

/// The Watt Data population, reached over MCP. Cheap to clone; clones share the session,
/// the concurrency bound and the counters.
#[derive(Clone)]
pub struct WattProvider {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: WattConfig,
    session: McpSession,
    http: reqwest::Client,
    permits: Semaphore,
    counters: Counters,
    traces: TraceLog,
}

impl Inner {
    /// A slot for one request to the upstream: `cfg.concurrency` are in flight at most.
    async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ProviderError> {
        self.permits
            .acquire()
            .await
            .map_err(|_| ProviderError::unavailable("provider shut down"))
    }
}

impl std::fmt::Debug for WattProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WattProvider")
            .field("cfg", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

impl WattProvider {
    /// Builds the client and opens the MCP session (initialize handshake), so a wrong URL or
    /// key fails here. Transient failures of the handshake are retried like any call.
    pub async fn connect(cfg: WattConfig) -> Result<Self, ProviderError> {
        let http = reqwest::Client::builder()
            .connect_timeout(cfg.timeout)
            .pool_max_idle_per_host(cfg.concurrency.saturating_mul(2))
            .build()
            .map_err(|e| ProviderError::protocol(format!("HTTP client: {e}")))?;
        let provider = Self {
            inner: Arc::new(Inner {
                session: McpSession::new(cfg.clone(), http.clone()),
                permits: Semaphore::new(cfg.concurrency.max(1)),
                cfg,
                http,
                counters: Counters::default(),
                traces: TraceLog::default(),
            }),
        };
        let inner = &provider.inner;
        provider
            .with_retries(|| inner.session.ensure_open(&inner.counters))
            .await?;
        Ok(provider)
    }

    /// What the client has done so far: attempts per tool, retries, sessions, exports.
    pub fn stats(&self) -> CallStats {
        self.inner.counters.snapshot()
    }

    /// The `tool_trace_id`s of a workflow's calls of one tool since the last take, in arrival
    /// order. A job takes them as each stage goes to keep them with that stage and for
    /// `submit_feedback`.
    pub fn take_traces(&self, workflow_id: &str, tool: &str) -> Vec<TraceEntry> {
        self.inner.traces.take(workflow_id, tool)
    }

    /// `get_person` for any number of ids: calls of at most 1000 ids, run with the configured
    /// concurrency; profiles come back in the order of `ids`' chunks.
    pub async fn get_persons_batched(
        &self,
        ids: &[PersonId],
        domains: Option<Vec<String>>,
        workflow_id: Option<String>,
    ) -> Result<GetPersonResponse, ProviderError> {
        let mut chunks = ids.chunks(MAX_PERSON_IDS_PER_CALL);
        let request = |chunk: &[PersonId], workflow_id: Option<String>| GetPersonRequest {
            person_ids: chunk.to_vec(),
            domains: domains.clone(),
            format: None,
            workflow_id,
        };
        let mut answers = Vec::new();
        let mut workflow_id = workflow_id;
        if workflow_id.is_none()
            && let Some(first) = chunks.next()
        {
            // The first answer names the workflow every later call must carry.
            let answer = self.get_person(request(first, None)).await?;
            workflow_id = answer.workflow_id.clone();
            answers.push(answer);
        }
        let rest =
            try_join_all(chunks.map(|c| self.get_person(request(c, workflow_id.clone())))).await?;
        answers.extend(rest);
        let tool_trace_id = answers.iter().find_map(|a| a.tool_trace_id.clone());
        Ok(GetPersonResponse {
            profiles: answers.into_iter().flat_map(|a| a.profiles).collect(),
            tool_trace_id,
            workflow_id,
        })
    }

    /// Every cluster matching a filter, following `has_more` / `next_offset` page by page.
    pub async fn list_clusters_all(
        &self,
        mut req: ListClustersRequest,
    ) -> Result<ListClustersResponse, ProviderError> {
        let mut all: Option<ListClustersResponse> = None;
        loop {
            let page = self.list_clusters(req.clone()).await?;
            req.workflow_id = req.workflow_id.or_else(|| page.workflow_id.clone());
            let next = page.next_offset.filter(|_| page.has_more);
            match all.as_mut() {
                None => all = Some(page),
                Some(acc) => {
                    acc.clusters.extend(page.clusters);
                    acc.total = page.total;
                }
            }
            match next {
                // A server that repeats an offset would loop forever; stop instead.
                Some(n) if Some(n) != req.offset => req.offset = Some(n),
                _ => break,
            }
        }
        let mut all = all.ok_or_else(|| ProviderError::protocol("list_clusters gave no page"))?;
        all.returned = all.clusters.len() as u64;
        all.has_more = false;
        all.next_offset = None;
        Ok(all)
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retries are spent.
    async fn with_retries<T, F, Fut>(&self, mut attempt: F) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let cfg = &self.inner.cfg;
        let mut tries = 0u32;
        loop {
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(e)
                    if e.is_retryable()
                        && !matches!(e, ProviderError::ExportExpired { .. })
                        && tries < cfg.max_retries =>
                {
                    let delay = retry_delay(cfg, tries, &e);
                    tracing::debug!(
                        error = e.kind(),
                        ?delay,
                        attempt = tries + 1,
                        "retrying upstream call"
                    );
                    tries += 1;
                    self.inner.counters.retry();
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One tool call with retries; the answer parsed into `Resp`, its trace id recorded.
    async fn call<Req: Serialize, Resp: DeserializeOwned + Traced + Send + 'static>(
        &self,
        tool: &'static str,
        req: &Req,
    ) -> Result<Resp, ProviderError> {
        let arguments = match serde_json::to_value(req) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) | Err(_) => {
                return Err(ProviderError::validation(format!(
                    "{tool} arguments are not a JSON object"
                )));
            }
        };
        let requested_workflow = arguments
            .get("workflow_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let inner = &self.inner;
        let answer: Resp = self
            .with_retries(|| async {
                // The permit is held for one exchange only: not while a call waits out a
                // backoff, nor while its answer is parsed (the upstream is done with the call
                // by then, and another can go out).
                let message = {
                    let _permit = inner.permit().await?;
                    inner.counters.call(tool);
                    inner
                        .session
                        .exchange_tool(&inner.counters, tool, &arguments)
                        .await?
                };
                message.into_payload().await
            })
            .await
            .map_err(|e| match e {
                ProviderError::Protocol { message } => ProviderError::Protocol {
                    message: format!("{tool}: {message}"),
                },
                e => e,
            })?;
        let (trace, workflow) = answer.trace_fields();
        if let (Some(w), Some(t)) = (workflow.or(requested_workflow.as_deref()), trace) {
            inner.traces.record(w, tool, t);
        }
        Ok(answer)
    }

    /// Opens an export download, retrying transient faults; an expired URL is the caller's to
    /// handle (it must re-run the request for a fresh one).
    async fn open_export(&self, export: &ExportRef) -> Result<reqwest::Response, ProviderError> {
        let inner = &self.inner;
        let resp = self
            .with_retries(|| async {
                // A download counts as a call in flight until its body starts.
                let _permit = inner.permit().await?;
                download::open(&inner.http, &export.url, inner.cfg.timeout).await
            })
            .await?;
        inner.counters.export_download();
        Ok(resp)
    }

    async fn download_all<T: ExportRow>(
        &self,
        export: &ExportRef,
    ) -> Result<Vec<T>, ProviderError> {
        let inner = &self.inner;
        self.with_retries(|| async {
            let resp = {
                let _permit = inner.permit().await?;
                download::open(&inner.http, &export.url, inner.cfg.timeout).await?
            };
            inner.counters.export_download();
            download::read_all::<T>(resp, export.format).await
        })
        .await
    }

    /// One `resolve_identities` call that fits the limits, its export (if any) read inline.
    /// `lean`: the identities are read for their person id and score only (see
    /// [`PopulationProvider::resolve_persons`]).
    async fn resolve_one(
        &self,
        req: ResolveRequest,
        lean: bool,
    ) -> Result<ResolveResponse, ProviderError> {
        let mut reruns = 0;
        loop {
            let mut answer: ResolveResponse = if lean {
                self.call::<_, LeanResolveResponse>("resolve_identities", &req)
                    .await?
                    .into()
            } else {
                self.call("resolve_identities", &req).await?
            };
            let Some(export) = answer.export.take() else {
                return Ok(answer);
            };
            if !answer.identities.is_empty() {
                return Ok(answer);
            }
            match self.download_all::<Identity>(&export).await {
                Ok(rows) => {
                    answer.identities = rows;
                    return Ok(answer);
                }
                Err(ProviderError::ExportExpired { .. })
                    if reruns < self.inner.cfg.export_reruns =>
                {
                    reruns += 1;
                    self.inner.counters.export_rerun();
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A whole `resolve_identities` request in calls that fit the limits, merged. With no
    /// workflow yet, the first call goes alone so the others carry the workflow it opens.
    async fn resolve_planned(
        &self,
        req: ResolveRequest,
        lean: bool,
    ) -> Result<ResolveResponse, ProviderError> {
        let plan = plan_resolve_calls(&req.multi_identifiers);
        if plan.is_empty() {
            return Ok(ResolveResponse {
                identities: Vec::new(),
                stats: ResolveStats::default(),
                export: None,
                tool_trace_id: None,
                workflow_id: req.workflow_id,
                matched_by_criterion: Default::default(),
            });
        }
        let call = |groups: Vec<_>, workflow_id: Option<String>| ResolveRequest {
            multi_identifiers: groups,
            format: req.format,
            workflow_id,
        };
        let mut plan = plan.into_iter();
        let mut parts = Vec::new();
        let mut workflow_id = req.workflow_id.clone();
        if workflow_id.is_none()
            && let Some(first) = plan.next()
        {
            let answer = self.resolve_one(call(first, None), lean).await?;
            workflow_id = answer.workflow_id.clone();
            parts.push(answer);
        }
        let rest = try_join_all(plan.map(|g| self.resolve_one(call(g, workflow_id.clone()), lean)))
            .await?;
        parts.extend(rest);
        let mut merged = merge_resolve(parts);
        merged.workflow_id = merged.workflow_id.or(workflow_id);
        Ok(merged)
    }
}

/// A `resolve_identities` answer read for who matched and how well: each identity's
/// `identifiers` (every contact value the person has: the bulk of the answer) are skipped as
/// they are read, never built. The matches stay, so that a person found by several calls
/// scores as the whole request would (see `merge_resolve`).
#[derive(serde::Deserialize)]
struct LeanResolveResponse {
    #[serde(default)]
    identities: Vec<LeanIdentity>,
    stats: ResolveStats,
    #[serde(default)]
    export: Option<ExportRef>,
    #[serde(default)]
    tool_trace_id: Option<String>,
    #[serde(default)]
    workflow_id: Option<String>,
}

#[derive(serde::Deserialize)]
struct LeanIdentity {
    person_id: PersonId,
    overall_quality_score: f64,
    #[serde(default)]
    matches: Vec<IdentityMatch>,
}

impl Traced for LeanResolveResponse {
    fn trace_fields(&self) -> (Option<&str>, Option<&str>) {
        (self.tool_trace_id.as_deref(), self.workflow_id.as_deref())
    }

    fn trace_fields_mut(&mut self) -> (&mut Option<String>, &mut Option<String>) {
        (&mut self.tool_trace_id, &mut self.workflow_id)
    }
}

impl From<LeanResolveResponse> for ResolveResponse {
    fn from(lean: LeanResolveResponse) -> Self {
        ResolveResponse {
            identities: lean
                .identities
                .into_iter()
                .map(|i| Identity {
                    person_id: i.person_id,
                    overall_quality_score: i.overall_quality_score,
                    matches: i.matches,
                    identifiers: Default::default(),
                })
                .collect(),
            stats: lean.stats,
            export: lean.export,
            tool_trace_id: lean.tool_trace_id,
            workflow_id: lean.workflow_id,
            matched_by_criterion: Default::default(),
        }
    }
}

/// Exponential backoff with jitter in `[d/2, d]`, so clients that failed together do not retry
/// together; a `Retry-After` is honoured as given (up to `max_retry_after`).
fn retry_delay(cfg: &WattConfig, tries: u32, e: &ProviderError) -> Duration {
    if let ProviderError::RateLimited {
        retry_after: Some(after),
    } = e
    {
        return (*after).min(cfg.max_retry_after);
    }
    let exp = cfg
        .backoff_base
        .saturating_mul(2u32.saturating_pow(tries.min(16)))
        .min(cfg.backoff_cap);
    let half = exp / 2;
    let jitter = rand::rng().random_range(0..=half.as_micros().min(u64::MAX as u128) as u64);
    half + Duration::from_micros(jitter)
}

#[async_trait::async_trait]
impl PopulationProvider for WattProvider {
    fn name(&self) -> &'static str {
        "watt"
    }

    fn drain_traces(&self, workflow_id: &str, tool: &str) -> Option<Vec<(String, String)>> {
        Some(
            self.inner
                .traces
                .take(workflow_id, tool)
                .into_iter()
                .map(|e| (e.tool, e.tool_trace_id))
                .collect(),
        )
    }

    fn retried_attempts(&self) -> u64 {
        self.stats().retries
    }

    /// Splits the request into calls within the upstream's limits (first call alone when no
    /// workflow is set, so the rest carry its `workflow_id`), downloads exports, and merges.
    async fn resolve_identities(
        &self,
        req: ResolveRequest,
    ) -> Result<ResolveResponse, ProviderError> {
        self.resolve_planned(req, false).await
    }

    async fn resolve_persons(&self, req: ResolveRequest) -> Result<ResolveResponse, ProviderError> {
        let mut answer = self.resolve_planned(req, true).await?;
        answer.keep_persons_only();
        Ok(answer)
    }

    async fn get_person(&self, req: GetPersonRequest) -> Result<GetPersonResponse, ProviderError> {
        if req.person_ids.len() > MAX_PERSON_IDS_PER_CALL {
            return Err(ProviderError::validation(format!(
                "get_person takes at most {MAX_PERSON_IDS_PER_CALL} person ids a call, got {}",
                req.person_ids.len()
            )));
        }
        self.call("get_person", &req).await
    }

    async fn list_clusters(
        &self,
        req: ListClustersRequest,
    ) -> Result<ListClustersResponse, ProviderError> {
        let mut page: ListClustersResponse = self.call("list_clusters", &req).await?;
        // `WATT_POPULATION_SIZE` stands in for an upstream that gives none; the upstream's own
        // figure wins when it gives one.
        page.population_size = page.population_size.or(self.inner.cfg.population_size);
        Ok(page)
    }

    async fn get_cluster(
        &self,
        req: GetClusterRequest,
    ) -> Result<GetClusterResponse, ProviderError> {
        self.call("get_cluster", &req).await
    }

    async fn find_persons(
        &self,
        req: FindPersonsRequest,
    ) -> Result<FindPersonsResponse, ProviderError> {
        self.call("find_persons", &req).await
    }

    /// One `find_persons` with a JSON Lines export: its answer, and the records streamed as
    /// they download. An expired or refused URL re-runs `find_persons` (at most
    /// `export_reruns` times) for a fresh one.
    async fn export_persons(
        &self,
        mut req: FindPersonsRequest,
    ) -> Result<AudienceExport, ProviderError> {
        req.format = Some(ExportFormat::Jsonl);
        let mut reruns = 0;
        loop {
            let mut answer: FindPersonsResponse = self.call("find_persons", &req).await?;
            req.workflow_id = req.workflow_id.or_else(|| answer.workflow_id.clone());
            answer.workflow_id = answer.workflow_id.or_else(|| req.workflow_id.clone());
            let Some(export) = answer.export.take() else {
                // No file: the inline sample is the whole audience only if it says so.
                if answer.sample.len() as u64 >= answer.total {
                    let records = audience_stream(&answer.sample);
                    return Ok(AudienceExport { answer, records });
                }
                return Err(ProviderError::protocol(format!(
                    "find_persons asked for an export gave none ({} of {} records inline)",
                    answer.sample.len(),
                    answer.total
                )));
            };
            match self.open_export(&export).await {
                Ok(resp) => {
                    let records = download::record_lines(resp, export.format);
                    return Ok(AudienceExport { answer, records });
                }
                Err(ProviderError::ExportExpired { .. })
                    if reruns < self.inner.cfg.export_reruns =>
                {
                    reruns += 1;
                    self.inner.counters.export_rerun();
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn submit_feedback(
        &self,
        req: FeedbackRequest,
    ) -> Result<FeedbackResponse, ProviderError> {
        self.call("submit_feedback", &req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn backoff_doubles_within_jitter_and_honours_retry_after() {
        let mut cfg = WattConfig::new("http://x/mcp", Secret::new("k"));
        cfg.backoff_base = Duration::from_millis(100);
        cfg.backoff_cap = Duration::from_millis(350);
        let e = ProviderError::unavailable("x");
        for (tries, max) in [(0, 100), (1, 200), (2, 350), (5, 350)] {
            let d = retry_delay(&cfg, tries, &e);
            assert!(d <= Duration::from_millis(max), "{tries}: {d:?}");
            assert!(d >= Duration::from_millis(max / 2), "{tries}: {d:?}");
        }
        let limited = ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
        };
        assert_eq!(retry_delay(&cfg, 0, &limited), Duration::from_secs(2));
        cfg.max_retry_after = Duration::from_secs(1);
        assert_eq!(retry_delay(&cfg, 0, &limited), Duration::from_secs(1));
    }
}
