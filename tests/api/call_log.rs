//! An upstream that remembers every tool call it answered: the embedded test population served
//! over MCP (behind `FaultyUpstream`, for its latency), through a provider that notes each
//! call's tool, workflow, the unit of work it stands for, and which run of the service made it
//! (a test running the binary as a child process numbers the child's runs).
//!
//! A unit is named the way the job's checkpoint of it can be named again from the database, so
//! a test can tell whether a call redid work a checkpoint already held:
//! - `resolve_identities`: the person ids its answer matched (the resolve part stores them);
//! - `get_person`: the profiles' trait maps as the enrich part stores them, hashed;
//! - `find_persons`: the audience's expression (the find part stores it); both calls of an
//!   audience (its export and its count) are the one unit;
//! - `list_clusters`: the attribute names listed (the analyze checkpoint holds their clusters).

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use icp_contract::{
    AudienceExport, FeedbackRequest, FeedbackResponse, FindPersonsRequest, FindPersonsResponse,
    GetClusterRequest, GetClusterResponse, GetPersonRequest, GetPersonResponse,
    ListClustersRequest, ListClustersResponse, PopulationProvider, ProviderError, ResolveRequest,
    ResolveResponse,
};
use icp_mcp::faults::{FaultConfig, FaultyUpstream, FaultyUpstreamHandle};
use icp_population::EmbeddedProvider;

use crate::common::population;

/// The tools a job calls, in the order of its stages.
pub const TOOLS: [&str; 4] = [
    "resolve_identities",
    "get_person",
    "list_clusters",
    "find_persons",
];

/// One tool call the upstream answered.
#[derive(Debug, Clone)]
pub struct Call {
    /// The run of the service that made it (see [`CallLog::next_run`]).
    pub run: usize,
    pub tool: &'static str,
    pub workflow: String,
    /// The unit of work (see the module doc): what a checkpoint names.
    pub unit: String,
    /// The call itself: two calls with one key asked the same thing.
    pub key: String,
}

pub struct CallLog {
    inner: EmbeddedProvider,
    run: AtomicUsize,
    calls: Mutex<Vec<Call>>,
    /// When set, every `resolve_identities` call fails with this message (a permanent error).
    pub fail_resolve_with: Mutex<Option<String>>,
}

/// The call log, the MCP URL to give the service, and the upstream's handle (it stops when
/// dropped). Every tool call and export download is answered `latency` after it arrived.
pub async fn start_upstream(latency: Duration) -> (Arc<CallLog>, String, FaultyUpstreamHandle) {
    let log = Arc::new(CallLog {
        inner: EmbeddedProvider::new(population()),
        run: AtomicUsize::new(0),
        calls: Mutex::new(Vec::new()),
        fail_resolve_with: Mutex::new(None),
    });
    let faults = FaultConfig {
        latency,
        ..FaultConfig::default()
    };
    let provider: Arc<dyn PopulationProvider> = log.clone();
    let (addr, handle) = FaultyUpstream::start(provider, faults)
        .await
        .expect("start the test upstream");
    (log, format!("http://{addr}/mcp"), handle)
}

/// A short stable name of a text (units and keys are compared, never read back).
pub fn digest(text: &str) -> String {
    let mut h = std::hash::DefaultHasher::new();
    text.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// The unit of a resolve call: the persons it matched, sorted.
pub fn resolve_unit(ids: impl IntoIterator<Item = u64>) -> String {
    let ids: BTreeSet<u64> = ids.into_iter().collect();
    let joined: Vec<String> = ids.iter().map(u64::to_string).collect();
    digest(&joined.join(","))
}

/// The unit of a `list_clusters` call: the attribute names, sorted.
pub fn names_unit<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    let names: BTreeSet<&String> = names.into_iter().collect();
    let joined: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
    joined.join(",")
}

impl CallLog {
    /// Calls from now on belong to the next run; returns its number.
    pub fn next_run(&self) -> usize {
        self.run.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Calls of `tool` made in `run` so far.
    pub fn count(&self, run: usize, tool: &str) -> usize {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|c| c.run == run && c.tool == tool)
            .count()
    }

    fn note(
        &self,
        run: usize,
        tool: &'static str,
        workflow: &Option<String>,
        unit: String,
        key: String,
    ) {
        self.calls.lock().unwrap().push(Call {
            run,
            tool,
            workflow: workflow.clone().unwrap_or_default(),
            unit,
            key,
        });
    }
}

#[async_trait::async_trait]
impl PopulationProvider for CallLog {
    fn name(&self) -> &'static str {
        "call-log"
    }

    async fn resolve_identities(
        &self,
        req: ResolveRequest,
    ) -> Result<ResolveResponse, ProviderError> {
        let run = self.run.load(Ordering::SeqCst);
        if let Some(message) = self.fail_resolve_with.lock().unwrap().clone() {
            return Err(ProviderError::validation(message));
        }
        let answer = self.inner.resolve_identities(req).await?;
        let unit = resolve_unit(answer.identities.iter().map(|i| i.person_id.0));
        self.note(
            run,
            "resolve_identities",
            &answer.workflow_id,
            unit.clone(),
            unit,
        );
        Ok(answer)
    }

    async fn get_person(&self, req: GetPersonRequest) -> Result<GetPersonResponse, ProviderError> {
        let run = self.run.load(Ordering::SeqCst);
        let answer = self.inner.get_person(req).await?;
        let maps: Vec<_> = answer.profiles.iter().map(|p| &p.domains).collect();
        let unit = digest(&serde_json::to_string(&maps).unwrap());
        self.note(run, "get_person", &answer.workflow_id, unit.clone(), unit);
        Ok(answer)
    }

    async fn list_clusters(
        &self,
        req: ListClustersRequest,
    ) -> Result<ListClustersResponse, ProviderError> {
        let run = self.run.load(Ordering::SeqCst);
        let unit = names_unit(req.cluster_names.iter().flatten());
        let key = format!("{unit}@{}", req.offset.unwrap_or(0));
        let answer = self.inner.list_clusters(req).await?;
        self.note(run, "list_clusters", &answer.workflow_id, unit, key);
        Ok(answer)
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
        let run = self.run.load(Ordering::SeqCst);
        let unit = req.expression.clone();
        let key = format!("{unit}|{:?}|{:?}", req.audience_limit, req.format);
        let answer = self.inner.find_persons(req).await?;
        self.note(run, "find_persons", &answer.workflow_id, unit, key);
        Ok(answer)
    }

    /// An export's download (not a tool call).
    async fn export_persons(
        &self,
        req: FindPersonsRequest,
    ) -> Result<AudienceExport, ProviderError> {
        self.inner.export_persons(req).await
    }

    async fn submit_feedback(
        &self,
        req: FeedbackRequest,
    ) -> Result<FeedbackResponse, ProviderError> {
        self.inner.submit_feedback(req).await
    }
}
