//! The five stages of a job. Each stage checkpoints what it produced, so a job picked up again
//! after a crash resumes where it stopped instead of redoing finished work.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use futures::{Stream, StreamExt, TryStreamExt};
use icp_analysis::{Analysis, AnalysisConfig, Analyzer, AudienceConfig, Baseline, Item};
use icp_contract::{
    AudienceExport, Cluster, FindPersonsRequest, GetPersonRequest, GetPersonResponse,
    IdentifierGroup, ListClustersRequest, MAX_CLUSTERS_PER_PAGE, MAX_PERSON_IDS_PER_CALL, PersonId,
    ProviderError, ResolveRequest, ResolveResponse, count_values, plan_resolve_calls_opening_small,
};
use icp_store::{JobRecord, Lease, Part, Stage, StoreError};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::WorkerContext;
use super::accept::Acceptor;
use super::ahead::{Ahead, run_ahead};
use crate::model::{
    AudienceExports, AudienceResult, JobResult, Progress, Resolution, strategy_name,
};
use crate::options::JobOptions;

/// Why a stage could not finish.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{stage} stage: the provider answered: {source}")]
    Provider {
        stage: &'static str,
        source: ProviderError,
    },
    #[error(
        "no customer could be resolved with quality ≥ {min_quality}: {requested} identifiers, {resolved} matched"
    )]
    NoCustomers {
        requested: u64,
        resolved: u64,
        min_quality: f64,
    },
    #[error("analysis failed: {0}")]
    Analysis(String),
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    #[error("the job's stored data is unreadable: {0}")]
    Corrupt(String),
}

impl StageError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Provider { source, .. } => source.is_retryable(),
            Self::Store(StoreError::LeaseLost) => false,
            Self::Store(_) => true,
            Self::NoCustomers { .. } | Self::Analysis(_) | Self::Corrupt(_) => false,
        }
    }

    pub(super) fn slug(&self) -> &'static str {
        match self {
            Self::Provider { source, .. } if source.is_retryable() => "provider-unavailable",
            Self::Provider { .. } => "provider-rejected",
            Self::NoCustomers { .. } => "no-customers",
            Self::Analysis(_) => "analysis",
            Self::Store(_) => "storage",
            Self::Corrupt(_) => "corrupt",
        }
    }

    pub(super) fn title(&self) -> &'static str {
        match self {
            Self::Provider { .. } => "The population provider failed",
            Self::NoCustomers { .. } => "No customers resolved",
            Self::Analysis(_) => "The analysis failed",
            Self::Store(_) => "Storage failed",
            Self::Corrupt(_) => "Stored job data unreadable",
        }
    }
}

fn provider(stage: &'static str) -> impl Fn(ProviderError) -> StageError {
    move |source| StageError::Provider { stage, source }
}

fn corrupt(e: serde_json::Error) -> StageError {
    StageError::Corrupt(e.to_string())
}

fn stopped(e: tokio::task::JoinError) -> StageError {
    StageError::Analysis(format!("the analysis task stopped: {e}"))
}

/// The analyze checkpoint as stored now, or as jobs written before the baseline moved into the
/// analyze stage stored it (the bare report; the map stage then lists every cluster itself).
#[derive(Deserialize)]
#[serde(untagged)]
enum AnalyzedCheckpoint {
    Current(Analyzed),
    ReportOnly(Analysis),
}

impl From<AnalyzedCheckpoint> for Analyzed {
    fn from(c: AnalyzedCheckpoint) -> Self {
        match c {
            AnalyzedCheckpoint::Current(done) => done,
            AnalyzedCheckpoint::ReportOnly(analysis) => Analyzed {
                analysis,
                clusters: Vec::new(),
                population_size: None,
            },
        }
    }
}

/// The checkpoint of one resolve call: enough to merge calls and to resume.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ResolvedChunk {
    requested: u64,
    resolved: u64,
    /// Person id and the best `overall_quality_score` seen for them.
    persons: Vec<(u64, f64)>,
}

/// The finished resolve stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Resolved {
    resolution: Resolution,
    /// Persons at or above the quality bar, in the order they are enriched (jobs resolved
    /// before enrichment overlapped resolve hold them ascending): the customers to enrich.
    accepted: Vec<u64>,
    /// Every matched person, whatever the quality: excluded from audiences.
    all: Vec<u64>,
}

/// The finished map stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Mapped {
    analysis: Analysis,
    clusters: Vec<Cluster>,
}

/// The finished analyze stage: the report, ranked against the population, and the clusters of
/// every trait it can mention (the baseline it was ranked with, reused by the map stage).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Analyzed {
    analysis: Analysis,
    clusters: Vec<Cluster>,
    population_size: Option<u64>,
}

/// What a stage learnt of the population's clusters.
#[derive(Default)]
struct Listed {
    clusters: HashMap<(String, String), Cluster>,
    population_size: Option<u64>,
}

impl Listed {
    fn baseline(&self) -> Option<Baseline> {
        Some(Baseline {
            population_size: self.population_size?,
            sizes: self
                .clusters
                .iter()
                .map(|((name, value), c)| {
                    (
                        Item {
                            name: name.clone(),
                            value: value.clone(),
                        },
                        c.size,
                    )
                })
                .collect(),
        })
    }
}

/// Sequence numbers of whole-stage checkpoints (chunked stages use 1.. for their parts).
const FINAL: i64 = 0;

/// Identifiers in a job's first resolve call, which goes alone (see
/// [`plan_resolve_calls_opening_small`]): one group of the upstream's.
const OPENING_RESOLVE_CALL: usize = icp_contract::MAX_RESOLVE_VALUES_PER_GROUP;

/// The most export chunks stored in one transaction, and held while they wait for it.
const CHUNKS_PER_WRITE: usize = 8;

struct Run<'a> {
    ctx: &'a WorkerContext,
    job: &'a JobRecord,
    lease: &'a Lease,
    options: JobOptions,
    progress: Progress,
    workflow_id: Option<String>,
    /// The analyzer the enrich stage fed as profiles arrived, when it ran whole in this run.
    fed: Option<tokio::task::JoinHandle<Analyzer>>,
}

/// A resolve call's answer: its number, how many identifiers it asked about, the answer.
type ResolveAnswer = Result<(i64, u64, ResolveResponse), ProviderError>;

/// The next item of a stream that may not be there (then never).
async fn next_of<S: Stream + Unpin>(stream: &mut Option<S>) -> Option<S::Item> {
    match stream {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

/// The enrich stage while its batches are being formed.
struct Enrichment {
    /// Where batches go to be asked for; closed once the last one went.
    requests: Option<futures::channel::mpsc::UnboundedSender<(usize, GetPersonRequest)>>,
    /// The batches an earlier run of the job checkpointed.
    done_seqs: HashSet<i64>,
    feeder: Option<Feeder>,
    /// Persons enriched so far, checkpointed batches included.
    done: u64,
    /// Whether the stage has begun (its first batch formed).
    entered: bool,
    domains: Option<Vec<String>>,
}

/// Feeds an [`Analyzer`] on a blocking thread while enrichment waits on the upstream, in batch
/// order whatever order the answers come in, so the analysis is the one a reload of the
/// checkpoints gives.
struct Feeder {
    tx: tokio::sync::mpsc::Sender<Vec<BTreeMap<String, String>>>,
    handle: tokio::task::JoinHandle<Analyzer>,
    next: usize,
    waiting: BTreeMap<usize, Vec<BTreeMap<String, String>>>,
}

impl Feeder {
    fn start(config: AnalysisConfig) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<BTreeMap<String, String>>>(8);
        let handle = tokio::task::spawn_blocking(move || {
            let mut analyzer = Analyzer::new(config);
            while let Some(batch) = rx.blocking_recv() {
                add_profiles(&mut analyzer, &batch);
            }
            analyzer
        });
        Self {
            tx,
            handle,
            next: 0,
            waiting: BTreeMap::new(),
        }
    }

    async fn add(&mut self, seq: usize, batch: Vec<BTreeMap<String, String>>) {
        self.waiting.insert(seq, batch);
        while let Some(batch) = self.waiting.remove(&self.next) {
            // A send fails only when the feeding thread died; `finish` reports that.
            let _ = self.tx.send(batch).await;
            self.next += 1;
        }
    }

    fn finish(self) -> tokio::task::JoinHandle<Analyzer> {
        self.handle
    }
}

pub async fn run(
    ctx: &WorkerContext,
    job: &JobRecord,
    lease: &Lease,
    _stop: &tokio_util::sync::CancellationToken,
) -> Result<serde_json::Value, StageError> {
    let options: JobOptions = serde_json::from_value(job.options.clone()).map_err(corrupt)?;
    let mut run = Run {
        ctx,
        job,
        lease,
        options,
        progress: serde_json::from_value(job.progress.clone()).unwrap_or_default(),
        workflow_id: job.workflow_id.clone(),
        fed: None,
    };
    let resolved = run.resolve_and_enrich().await?;
    let analyzed = run.analyze().await?;
    let mapped = run.map(analyzed).await?;
    let audiences = run.find(&mapped, &resolved).await?;
    let result = JobResult {
        job_id: job.id,
        workflow_id: run.workflow_id.clone(),
        resolution: resolved.resolution,
        analysis: mapped.analysis,
        clusters: mapped.clusters,
        audiences,
    };
    serde_json::to_value(result).map_err(corrupt)
}

impl Run<'_> {
    fn store(&self) -> &icp_store::Store {
        &self.ctx.store
    }

    async fn enter(&mut self, stage: Stage, total: u64) -> Result<(), StageError> {
        let p = self.progress.stage_mut(stage);
        p.total = total;
        p.done = p.done.min(total);
        p.started_at.get_or_insert_with(OffsetDateTime::now_utc);
        p.finished_at = None;
        let progress = serde_json::to_value(&self.progress).map_err(corrupt)?;
        self.store().set_stage(self.lease, stage, progress).await?;
        Ok(())
    }

    /// Marks the stage complete: all done, and when it finished.
    async fn finish(&mut self, stage: Stage) -> Result<(), StageError> {
        let p = self.progress.stage_mut(stage);
        p.done = p.total;
        p.finished_at = Some(OffsetDateTime::now_utc());
        let progress = serde_json::to_value(&self.progress).map_err(corrupt)?;
        self.store().set_progress(self.lease, progress).await?;
        Ok(())
    }

    /// The trace ids to keep for a stage's call: every call of the tool the provider logged for
    /// the workflow since the last time (it sees calls no answer reports, such as an export's
    /// own `find_persons`), or else the answer's own id.
    fn traces_of(&self, tool: &str, id: Option<&String>) -> Vec<(String, String)> {
        let logged = self
            .workflow_id
            .as_deref()
            .and_then(|w| self.ctx.provider.drain_traces(w, tool));
        match logged {
            Some(entries) => entries,
            None => id
                .map(|id| vec![(tool.to_owned(), id.clone())])
                .unwrap_or_default(),
        }
    }

    /// Keeps the trace ids of a stage's call (see [`Run::traces_of`]).
    async fn trace(&self, stage: Stage, tool: &str, id: Option<&String>) -> Result<(), StageError> {
        for (tool, id) in self.traces_of(tool, id) {
            self.store()
                .add_trace(self.lease, stage, &tool, &id)
                .await?;
        }
        Ok(())
    }

    /// Stores part `seq` of a chunked stage with the trace ids of the calls behind it and the
    /// stage's progress at `done`, in one transaction.
    async fn save_part(
        &mut self,
        stage: Stage,
        seq: i64,
        payload: &str,
        traces: &[(String, String)],
        done: u64,
    ) -> Result<(), StageError> {
        self.progress.stage_mut(stage).done = done;
        let progress = serde_json::to_value(&self.progress).map_err(corrupt)?;
        let part = Part {
            stage,
            seq,
            payload,
            traces,
            progress: Some(&progress),
        };
        self.store().put_part(self.lease, part).await?;
        Ok(())
    }

    async fn adopt_workflow(&mut self, workflow_id: Option<&String>) -> Result<(), StageError> {
        if self.workflow_id.is_none()
            && let Some(id) = workflow_id
        {
            self.store().set_workflow_id(self.lease, id).await?;
            self.workflow_id = Some(id.clone());
        }
        Ok(())
    }

    async fn final_checkpoint<T: serde::de::DeserializeOwned>(
        &self,
        stage: Stage,
    ) -> Result<Option<T>, StageError> {
        let parts = self.store().checkpoints(self.job.id, stage).await?;
        match parts.into_iter().find(|(seq, _)| *seq == FINAL) {
            Some((_, body)) => Ok(Some(serde_json::from_str(&body).map_err(corrupt)?)),
            None => Ok(None),
        }
    }

    async fn save_final<T: Serialize>(&self, stage: Stage, value: &T) -> Result<(), StageError> {
        let body = serde_json::to_string(value).map_err(corrupt)?;
        self.store()
            .put_checkpoint(self.lease, stage, FINAL, &body)
            .await?;
        Ok(())
    }

    /// Stages 1 and 2: identifiers → persons, in calls of at most `resolve_chunk` identifiers;
    /// persons → profiles, at most 1000 a call. Enrichment does not wait for the last resolve
    /// answer: each batch is asked for as soon as the answers before it accepted its persons
    /// (see [`Acceptor`]), so the calls of both stages share the provider's slots. A job whose
    /// resolve stage finished before a crash enriches what it accepted, in the same batches.
    async fn resolve_and_enrich(&mut self) -> Result<Resolved, StageError> {
        let batch = MAX_PERSON_IDS_PER_CALL;
        let mut resolved = self.final_checkpoint::<Resolved>(Stage::Resolve).await?;
        let mut done_chunks: BTreeMap<i64, ResolvedChunk> = BTreeMap::new();
        let mut rounds: VecDeque<Vec<(i64, Vec<IdentifierGroup>)>> = VecDeque::new();
        let mut acceptor = match &resolved {
            Some(done) => Acceptor::resumed(done.accepted.clone(), batch),
            None => {
                let chunks = self.plan_resolve(&mut done_chunks).await?;
                // Calls run several at once; each answer is checkpointed as it arrives. With no
                // workflow yet, the first call goes alone: every later one must carry the
                // workflow it opens (calls sent side by side would each open their own).
                let mut pending: Vec<(i64, Vec<IdentifierGroup>)> = chunks
                    .into_iter()
                    .enumerate()
                    .map(|(i, chunk)| (i as i64 + 1, chunk))
                    .filter(|(seq, _)| !done_chunks.contains_key(seq))
                    .collect();
                if self.workflow_id.is_none() && !pending.is_empty() {
                    rounds.push_back(vec![pending.remove(0)]);
                }
                if !pending.is_empty() {
                    rounds.push_back(pending);
                }
                let mut acceptor = Acceptor::new(self.options.min_quality_score, batch);
                acceptor.advance(|seq| done_chunks.get(&seq).map(|c| c.persons.as_slice()));
                acceptor
            }
        };

        let mut flow = self.start_enrichment().await?;
        let (requests, calls) = futures::channel::mpsc::unbounded::<(usize, GetPersonRequest)>();
        flow.requests = Some(requests);
        let upstream = self.ctx.provider.clone();
        let concurrency = self.ctx.config.enrich_concurrency.max(1);
        let calls = calls
            .map(move |(i, req)| {
                let upstream = upstream.clone();
                async move {
                    let n = req.person_ids.len();
                    upstream.get_person(req).await.map(|answer| (i, n, answer))
                }
            })
            .buffer_unordered(concurrency);
        let mut profiles = run_ahead(calls, concurrency);

        let mut resolving = rounds.pop_front().map(|round| self.resolve_calls(round));
        if resolving.is_none() {
            self.end_resolve(&mut flow, &mut acceptor, &done_chunks, &mut resolved)
                .await?;
        } else {
            self.dispatch(&mut flow, &mut acceptor, false).await?;
        }
        loop {
            tokio::select! {
                biased;
                answer = next_of(&mut resolving), if resolving.is_some() => match answer {
                    Some(answer) => {
                        let (seq, requested, answer) = answer.map_err(provider("resolve"))?;
                        self.adopt_workflow(answer.workflow_id.as_ref()).await?;
                        let traces =
                            self.traces_of("resolve_identities", answer.tool_trace_id.as_ref());
                        let part = ResolvedChunk {
                            requested,
                            resolved: answer.stats.resolved,
                            persons: answer
                                .identities
                                .iter()
                                .map(|i| (i.person_id.0, i.overall_quality_score))
                                .collect(),
                        };
                        let body = serde_json::to_string(&part).map_err(corrupt)?;
                        done_chunks.insert(seq, part);
                        let done = done_chunks.values().map(|c| c.requested).sum();
                        self.save_part(Stage::Resolve, seq, &body, &traces, done)
                            .await?;
                        // Taken only once checkpointed: a batch formed from an answer a crash
                        // lost could not be formed again the same way.
                        acceptor.advance(|seq| done_chunks.get(&seq).map(|c| c.persons.as_slice()));
                        self.dispatch(&mut flow, &mut acceptor, false).await?;
                    }
                    None => {
                        resolving = rounds.pop_front().map(|round| self.resolve_calls(round));
                        if resolving.is_none() {
                            self.end_resolve(&mut flow, &mut acceptor, &done_chunks, &mut resolved)
                                .await?;
                        }
                    }
                },
                answer = profiles.next() => match answer {
                    Some(answer) => self.take_profiles(&mut flow, answer).await?,
                    // Ends only once the requests closed, when resolve closed.
                    None => break,
                },
            }
        }
        drop(profiles);
        self.fed = flow.feeder.map(Feeder::finish);
        self.finish(Stage::Enrich).await?;
        resolved.ok_or_else(|| StageError::Corrupt("enrichment ended before resolve".to_owned()))
    }

    /// The resolve calls to make, and the answers an earlier run of the job checkpointed into
    /// `done`.
    async fn plan_resolve(
        &mut self,
        done: &mut BTreeMap<i64, ResolvedChunk>,
    ) -> Result<Vec<Vec<IdentifierGroup>>, StageError> {
        let input = self
            .store()
            .job_input(self.job.id)
            .await?
            .ok_or_else(|| StageError::Corrupt("the job's identifiers are gone".to_owned()))?;
        let groups: Vec<IdentifierGroup> = serde_json::from_value(input).map_err(corrupt)?;
        let chunks = plan_resolve_calls_opening_small(
            &groups,
            self.ctx.config.resolve_chunk,
            OPENING_RESOLVE_CALL,
        );
        let total: u64 = chunks.iter().map(|c| count_values(c) as u64).sum();
        self.enter(Stage::Resolve, total).await?;
        for (seq, body) in self
            .store()
            .checkpoints(self.job.id, Stage::Resolve)
            .await?
        {
            if seq != FINAL {
                done.insert(seq, serde_json::from_str(&body).map_err(corrupt)?);
            }
        }
        // Checkpoints from a run that chunked differently (another `resolve_chunk`) do not
        // line up with these chunks: start the stage over rather than merge mismatched parts,
        // and the enrichment too, whose batches those parts formed.
        let lines_up = done.iter().all(|(&seq, part)| {
            usize::try_from(seq - 1)
                .ok()
                .and_then(|i| chunks.get(i))
                .is_some_and(|c| count_values(c) as u64 == part.requested)
        });
        if !lines_up {
            done.clear();
            self.store()
                .clear_checkpoints(self.lease, Stage::Enrich)
                .await?;
        }
        Ok(chunks)
    }

    /// One round of resolve calls, run ahead of the stage that stores their answers.
    fn resolve_calls(&self, round: Vec<(i64, Vec<IdentifierGroup>)>) -> Ahead<ResolveAnswer> {
        let upstream = self.ctx.provider.clone();
        let workflow_id = self.workflow_id.clone();
        let calls = futures::stream::iter(round)
            .map(move |(seq, chunk)| {
                let upstream = upstream.clone();
                let workflow_id = workflow_id.clone();
                async move {
                    let requested = count_values(&chunk) as u64;
                    upstream
                        .resolve_persons(ResolveRequest {
                            multi_identifiers: chunk,
                            format: None,
                            workflow_id,
                        })
                        .await
                        .map(|answer| (seq, requested, answer))
                }
            })
            .buffer_unordered(self.ctx.config.enrich_concurrency.max(1));
        run_ahead(calls, self.ctx.config.enrich_concurrency)
    }

    /// Every resolve answer in: the last batch asked for, no more to come, and the stage
    /// closed unless an earlier run closed it.
    async fn end_resolve(
        &mut self,
        flow: &mut Enrichment,
        acceptor: &mut Acceptor,
        chunks: &BTreeMap<i64, ResolvedChunk>,
        resolved: &mut Option<Resolved>,
    ) -> Result<(), StageError> {
        self.dispatch(flow, acceptor, true).await?;
        flow.requests = None;
        if resolved.is_none() {
            *resolved = Some(self.close_resolve(chunks, acceptor).await?);
        }
        Ok(())
    }

    /// Every answer in: the resolution, and the persons to enrich checkpointed with it.
    async fn close_resolve(
        &mut self,
        chunks: &BTreeMap<i64, ResolvedChunk>,
        acceptor: &Acceptor,
    ) -> Result<Resolved, StageError> {
        let (mut requested, mut resolved) = (0u64, 0u64);
        for chunk in chunks.values() {
            requested += chunk.requested;
            resolved += chunk.resolved;
        }
        let mut all: Vec<u64> = acceptor.matched().collect();
        all.sort_unstable();
        let accepted = acceptor.order().to_vec();
        let resolution = Resolution {
            requested,
            resolved,
            rate: if requested == 0 {
                0.0
            } else {
                resolved as f64 / requested as f64
            },
            persons: all.len() as u64,
            accepted: accepted.len() as u64,
        };
        self.store()
            .set_resolution(
                self.lease,
                serde_json::to_value(resolution).map_err(corrupt)?,
            )
            .await?;
        if accepted.is_empty() {
            return Err(StageError::NoCustomers {
                requested,
                resolved,
                min_quality: self.options.min_quality_score,
            });
        }
        let done = Resolved {
            resolution,
            accepted,
            all,
        };
        self.save_final(Stage::Resolve, &done).await?;
        self.finish(Stage::Resolve).await?;
        Ok(done)
    }

    /// The enrich stage's state before its first batch: what an earlier run checkpointed.
    async fn start_enrichment(&self) -> Result<Enrichment, StageError> {
        let done_seqs: HashSet<i64> = self
            .store()
            .checkpoints(self.job.id, Stage::Enrich)
            .await?
            .into_iter()
            .map(|(seq, _)| seq)
            .collect();
        // A stage that starts from nothing feeds the analyzer as it goes; one resumed after a
        // crash leaves the analysis to read every checkpoint back.
        let feeder = done_seqs
            .is_empty()
            .then(|| Feeder::start(analysis_config(&self.options)));
        Ok(Enrichment {
            requests: None,
            done_seqs,
            feeder,
            done: 0,
            entered: false,
            // Only trait domains: contact data of customers is never a trait, so it is not
            // fetched.
            domains: Some(
                self.options
                    .domains
                    .clone()
                    .unwrap_or_else(crate::options::trait_domains),
            ),
        })
    }

    /// Asks for every batch `acceptor` has ready (with `last`, the rest too); a batch an
    /// earlier run checkpointed is counted, not asked for again.
    async fn dispatch(
        &mut self,
        flow: &mut Enrichment,
        acceptor: &mut Acceptor,
        last: bool,
    ) -> Result<(), StageError> {
        let ready: Vec<(usize, Vec<PersonId>)> = std::iter::from_fn(|| {
            acceptor
                .next_batch(last)
                .map(|(i, ids)| (i, ids.iter().copied().map(PersonId).collect()))
        })
        .collect();
        if ready.is_empty() {
            return Ok(());
        }
        let accepted = acceptor.order().len() as u64;
        if flow.entered {
            self.progress.stage_mut(Stage::Enrich).total = accepted;
        } else {
            self.enter(Stage::Enrich, accepted).await?;
            flow.entered = true;
        }
        for (i, ids) in ready {
            if flow.done_seqs.contains(&(i as i64)) {
                flow.done += ids.len() as u64;
                continue;
            }
            let request = GetPersonRequest {
                person_ids: ids,
                domains: flow.domains.clone(),
                format: None,
                workflow_id: self.workflow_id.clone(),
            };
            if let Some(requests) = &flow.requests {
                // Fails only when the calls stopped, which their stream then reports.
                let _ = requests.unbounded_send((i, request));
            }
        }
        Ok(())
    }

    /// One enrichment answer: checkpointed, and fed to the analyzer.
    async fn take_profiles(
        &mut self,
        flow: &mut Enrichment,
        answer: Result<(usize, usize, GetPersonResponse), ProviderError>,
    ) -> Result<(), StageError> {
        let (i, n, answer) = answer.map_err(provider("enrich"))?;
        self.adopt_workflow(answer.workflow_id.as_ref()).await?;
        let traces = self.traces_of("get_person", answer.tool_trace_id.as_ref());
        let profiles: Vec<&BTreeMap<String, String>> =
            answer.profiles.iter().map(|p| &p.domains).collect();
        let body = serde_json::to_string(&profiles).map_err(corrupt)?;
        // Fed before it is stored, so the analyzer's thread works while the store does.
        if let Some(feeder) = flow.feeder.as_mut() {
            let batch = answer.profiles.into_iter().map(|p| p.domains).collect();
            feeder.add(i, batch).await;
        }
        flow.done += n as u64;
        self.save_part(Stage::Enrich, i as i64, &body, &traces, flow.done)
            .await
    }

    /// Every cluster of the items' attributes (each attribute listed once), all pages, traced
    /// under `stage`.
    async fn list_clusters<'i>(
        &mut self,
        stage: Stage,
        items: impl IntoIterator<Item = &'i Item>,
    ) -> Result<Listed, StageError> {
        let names: Vec<String> = items
            .into_iter()
            .map(|i| i.name.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut listed = Listed::default();
        if names.is_empty() {
            return Ok(listed);
        }
        let mut offset = 0;
        loop {
            let page = self
                .ctx
                .provider
                .list_clusters(ListClustersRequest {
                    cluster_names: Some(names.clone()),
                    limit: Some(MAX_CLUSTERS_PER_PAGE),
                    offset: Some(offset),
                    workflow_id: self.workflow_id.clone(),
                    ..ListClustersRequest::default()
                })
                .await
                .map_err(provider(stage.as_str()))?;
            self.adopt_workflow(page.workflow_id.as_ref()).await?;
            self.trace(stage, "list_clusters", page.tool_trace_id.as_ref())
                .await?;
            listed.population_size = listed.population_size.or(page.population_size);
            for c in page.clusters {
                listed.clusters.insert((c.name.clone(), c.value.clone()), c);
            }
            match page.next_offset {
                Some(next) if page.has_more && next > offset => offset = next,
                _ => break,
            }
        }
        Ok(listed)
    }

    /// Stage 3: what the customers have in common. Mining is CPU-bound (off the async
    /// threads); between mining and ranking, the population sizes of every trait the report
    /// can mention are listed, so pairs and clusters are ranked against the population over
    /// everything mined — not re-ranked from a pool cut among customers alone, which can lose
    /// the segment (its traits are common among customers, rare in the population).
    async fn analyze(&mut self) -> Result<Analyzed, StageError> {
        if let Some(done) = self
            .final_checkpoint::<AnalyzedCheckpoint>(Stage::Analyze)
            .await?
        {
            return Ok(done.into());
        }
        self.enter(Stage::Analyze, 1).await?;
        let analyzer = match self.fed.take() {
            Some(fed) => fed.await.map_err(stopped)?,
            None => {
                let parts = self.store().checkpoints(self.job.id, Stage::Enrich).await?;
                let config = analysis_config(&self.options);
                tokio::task::spawn_blocking(move || {
                    let mut analyzer = Analyzer::new(config);
                    for (_, body) in &parts {
                        let profiles: Vec<BTreeMap<String, String>> =
                            serde_json::from_str(body).map_err(corrupt)?;
                        add_profiles(&mut analyzer, &profiles);
                    }
                    Ok::<_, StageError>(analyzer)
                })
                .await
                .map_err(stopped)??
            }
        };
        let mined = tokio::task::spawn_blocking(move || analyzer.mine())
            .await
            .map_err(stopped)?
            .map_err(|e| StageError::Analysis(e.to_string()))?;

        let listed = self
            .list_clusters(Stage::Analyze, &mined.baseline_items())
            .await?;
        let baseline = listed.baseline();
        let analysis = tokio::task::spawn_blocking(move || match baseline {
            Some(baseline) => mined.analysis_with(&baseline),
            None => mined.analysis(),
        })
        .await
        .map_err(stopped)?;
        let done = Analyzed {
            analysis,
            clusters: listed.clusters.into_values().collect(),
            population_size: listed.population_size,
        };
        self.save_final(Stage::Analyze, &done).await?;
        self.finish(Stage::Analyze).await?;
        Ok(done)
    }

    /// Stage 4: every `name=value` the report and the audiences use → its cluster. The analyze
    /// stage listed the clusters of every trait it ranked; only what it lacks is listed here.
    async fn map(&mut self, analyzed: Analyzed) -> Result<Mapped, StageError> {
        if let Some(done) = self.final_checkpoint::<Mapped>(Stage::Map).await? {
            return Ok(done);
        }
        let Analyzed {
            mut analysis,
            clusters,
            population_size,
        } = analyzed;
        let mut known = Listed {
            clusters: clusters
                .into_iter()
                .map(|c| ((c.name.clone(), c.value.clone()), c))
                .collect(),
            population_size,
        };
        let wanted = wanted_items(&analysis, &self.options);
        self.enter(Stage::Map, wanted.len() as u64).await?;
        let missing: Vec<&Item> = wanted
            .iter()
            .filter(|i| {
                !known
                    .clusters
                    .contains_key(&(i.name.clone(), i.value.clone()))
            })
            .collect();
        if !missing.is_empty() {
            let listed = self.list_clusters(Stage::Map, missing).await?;
            known.population_size = known.population_size.or(listed.population_size);
            known.clusters.extend(listed.clusters);
        }
        // Indexes for whatever the analyze stage could not cover; pairs and clusters were
        // ranked with the same sizes, so their order does not move.
        if let Some(baseline) = known.baseline() {
            analysis.apply_baseline(&baseline);
        }
        let mut clusters: Vec<Cluster> = wanted
            .iter()
            .filter_map(|i| {
                known
                    .clusters
                    .get(&(i.name.clone(), i.value.clone()))
                    .cloned()
            })
            .collect();
        clusters.sort_by(|a, b| (&a.name, &a.value).cmp(&(&b.name, &b.value)));
        clusters.dedup_by(|a, b| a.cluster_hash == b.cluster_hash);
        let done = Mapped { analysis, clusters };
        self.save_final(Stage::Map, &done).await?;
        self.finish(Stage::Map).await?;
        Ok(done)
    }

    /// Stage 5: each strategy's expression → its audience, exported in full into the store.
    /// The audiences are found together (up to the enrichment concurrency): each is one
    /// `find_persons` call and one download, so their round trips overlap, and one audience's
    /// records are stored while the next downloads.
    async fn find(
        &mut self,
        mapped: &Mapped,
        resolved: &Resolved,
    ) -> Result<Vec<AudienceResult>, StageError> {
        let plans = mapped.analysis.audiences(&audience_config(&self.options));
        let by_item: HashMap<(&str, &str), &Cluster> = mapped
            .clusters
            .iter()
            .map(|c| ((c.name.as_str(), c.value.as_str()), c))
            .collect();
        let customers: HashSet<u64> = if self.options.exclude_customers {
            resolved.all.iter().copied().collect()
        } else {
            HashSet::new()
        };
        self.enter(Stage::Find, plans.len() as u64).await?;
        let mut done: BTreeMap<i64, AudienceResult> = BTreeMap::new();
        for (seq, body) in self.store().checkpoints(self.job.id, Stage::Find).await? {
            done.insert(seq, serde_json::from_str(&body).map_err(corrupt)?);
        }
        let mut todo = Vec::new();
        for (i, plan) in plans.iter().enumerate() {
            let seq = i as i64;
            if done.contains_key(&seq) {
                continue;
            }
            let Some(expression) = plan.render(|item| {
                by_item
                    .get(&(item.name.as_str(), item.value.as_str()))
                    .map(|c| c.cluster_hash.clone())
            }) else {
                tracing::warn!(job = %self.job.id, strategy = ?plan.strategy, "an item of the audience has no cluster; audience skipped");
                continue;
            };
            let description = plan
                .render(|item| Some(format!("{}={}", item.name, item.value)))
                .unwrap_or_default();
            todo.push((seq, plan.strategy, expression, description));
        }
        // The audience likely largest goes first, its download being the longest: an OR of
        // traits (reach) holds more people than a mix (hybrid), a mix more than an AND
        // (precision). The result keeps the plans' order.
        todo.sort_by_key(|(_, strategy, ..)| match strategy {
            icp_analysis::Strategy::Reach => 0,
            icp_analysis::Strategy::Hybrid => 1,
            icp_analysis::Strategy::Precision => 2,
        });

        // Every store write happens inside the audiences' futures: a write awaited beside them
        // could wait on the job row that a paused one's transaction holds (Postgres locks it
        // until commit), and that one would never be polled to commit.
        let mut progress = self.progress.clone();
        progress.stage_mut(Stage::Find).done = done.len() as u64;
        let progress = tokio::sync::Mutex::new(progress);
        let this = &*self;
        let customers = &customers;
        let progress_ref = &progress;
        let finished: Vec<(i64, AudienceResult, Option<String>)> = futures::stream::iter(
            todo.into_iter()
                .map(|(seq, strategy, expression, description)| async move {
                    let (audience, workflow) = this
                        .find_one(strategy, expression, description, customers)
                        .await?;
                    let body = serde_json::to_string(&audience).map_err(corrupt)?;
                    // Written under the lock, so the count a poller sees never goes back.
                    let mut p = progress_ref.lock().await;
                    p.stage_mut(Stage::Find).done += 1;
                    let value = serde_json::to_value(&*p).map_err(corrupt)?;
                    let part = Part {
                        stage: Stage::Find,
                        seq,
                        payload: &body,
                        traces: &[],
                        progress: Some(&value),
                    };
                    this.store().put_part(this.lease, part).await?;
                    drop(p);
                    Ok::<_, StageError>((seq, audience, workflow))
                }),
        )
        .buffer_unordered(self.ctx.config.enrich_concurrency.max(1))
        .try_collect()
        .await?;
        self.progress = progress.into_inner();
        let mut workflow = None;
        for (seq, audience, answered_workflow) in finished {
            done.insert(seq, audience);
            workflow = workflow.or(answered_workflow);
        }
        self.adopt_workflow(workflow.as_ref()).await?;
        self.finish(Stage::Find).await?;
        Ok(done.into_values().collect())
    }

    /// One audience: count, sample and every record from one `find_persons` export, customers
    /// dropped, the rest stored in chunks. Also answers the workflow id the call reported.
    async fn find_one(
        &self,
        strategy: icp_analysis::Strategy,
        expression: String,
        description: String,
        customers: &HashSet<u64>,
    ) -> Result<(AudienceResult, Option<String>), StageError> {
        // Ask for enough rows that the limit still holds once customers are dropped.
        let limit = self.options.audience_limit;
        let request = FindPersonsRequest {
            expression: expression.clone(),
            identifier_type: Some(self.options.identifier_type),
            location: self.options.location,
            audience_limit: limit.map(|l| l.saturating_add(customers.len() as u64)),
            format: None,
            workflow_id: self.workflow_id.clone(),
        };
        let count_request = request.clone();
        let strategy_name = strategy_name(strategy);
        self.store()
            .clear_exports(self.lease, strategy_name)
            .await?;
        let AudienceExport {
            answer,
            records: mut stream,
        } = self
            .ctx
            .provider
            .export_persons(request)
            .await
            .map_err(provider("find"))?;
        self.trace(Stage::Find, "find_persons", answer.tool_trace_id.as_ref())
            .await?;
        let workflow = answer.workflow_id.clone();
        // The records are read and the full chunks stored side by side: a chunk's write (a
        // commit of a megabyte) no longer stops the download, which waited on it.
        let chunk_rows = self.ctx.config.export_chunk_rows;
        let (full, mut to_store) = tokio::sync::mpsc::channel::<(i64, Vec<u8>)>(CHUNKS_PER_WRITE);
        let read = async move {
            let (mut exported, mut excluded, mut chunk_no) = (0u64, 0u64, 0i64);
            let mut truncated = false;
            // JSON Lines: the records' JSON as the provider encoded it, a line each.
            let mut chunk: Vec<u8> = Vec::new();
            let mut rows_in_chunk = 0usize;
            'read: while let Some(batch) = stream.try_next().await.map_err(provider("find"))? {
                for (person_id, json) in batch.iter() {
                    if customers.contains(&person_id.0) {
                        excluded += 1;
                        continue;
                    }
                    if limit.is_some_and(|l| exported >= l) {
                        truncated = true;
                        break 'read;
                    }
                    chunk.extend_from_slice(json);
                    chunk.push(b'\n');
                    exported += 1;
                    rows_in_chunk += 1;
                    if rows_in_chunk == chunk_rows {
                        // Fails only when the writer stopped, whose error `try_join` reports.
                        let next = Vec::with_capacity(chunk.len());
                        let _ = full
                            .send((chunk_no, std::mem::replace(&mut chunk, next)))
                            .await;
                        rows_in_chunk = 0;
                        chunk_no += 1;
                    }
                }
            }
            if rows_in_chunk > 0 {
                let _ = full.send((chunk_no, chunk)).await;
            }
            Ok::<_, StageError>((exported, excluded, truncated))
        };
        let write = async {
            // What piled up while the last write ran goes in one transaction.
            let mut batch = Vec::with_capacity(CHUNKS_PER_WRITE);
            while to_store.recv_many(&mut batch, CHUNKS_PER_WRITE).await > 0 {
                let bodies: Vec<(i64, &[u8])> = batch
                    .iter()
                    .map(|(no, chunk)| (*no, chunk.as_slice()))
                    .collect();
                self.store()
                    .put_export_chunks(self.lease, strategy_name, &bodies)
                    .await?;
                batch.clear();
            }
            Ok::<_, StageError>(())
        };
        let ((exported, excluded, truncated), ()) = tokio::try_join!(read, write)?;
        // A limited export counts only what it returns; the audience's own size (and a sample
        // of all of it) takes a count without the limit.
        let counted = match limit {
            None => answer,
            Some(_) => {
                let counted = self
                    .ctx
                    .provider
                    .find_persons(FindPersonsRequest {
                        audience_limit: None,
                        ..count_request
                    })
                    .await
                    .map_err(provider("find"))?;
                self.trace(Stage::Find, "find_persons", counted.tool_trace_id.as_ref())
                    .await?;
                counted
            }
        };
        let sample = counted
            .sample
            .into_iter()
            .filter(|r| !customers.contains(&r.person_id.0))
            .collect();
        let result = AudienceResult {
            strategy,
            expression,
            description,
            total: counted.total,
            excluded_customers: excluded,
            exported,
            truncated,
            sample,
            exports: AudienceExports::for_job(self.job.id, strategy),
        };
        Ok((result, workflow))
    }
}

/// Every item whose cluster the result shows: the top attributes and all the audiences use.
fn wanted_items(analysis: &Analysis, options: &JobOptions) -> Vec<Item> {
    let mut items: Vec<Item> = analysis
        .top_attributes
        .iter()
        .map(|a| Item {
            name: a.name.clone(),
            value: a.value.clone(),
        })
        .collect();
    for plan in analysis.audiences(&audience_config(options)) {
        items.extend(plan.items());
    }
    items.sort();
    items.dedup();
    items
}

/// One enrichment batch's profiles (their flat `domains` maps) into the analyzer.
fn add_profiles(analyzer: &mut Analyzer, profiles: &[BTreeMap<String, String>]) {
    for profile in profiles {
        analyzer.add_profile(profile.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    }
}

fn analysis_config(options: &JobOptions) -> AnalysisConfig {
    AnalysisConfig {
        min_support: options.min_support,
        max_cluster_size: options.max_cluster_size,
        ..AnalysisConfig::default()
    }
}

fn audience_config(options: &JobOptions) -> AudienceConfig {
    AudienceConfig {
        strategies: options.strategies.clone(),
        ..AudienceConfig::default()
    }
}
