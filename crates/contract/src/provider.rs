use futures::stream::BoxStream;

use crate::{
    AudienceRecord, FeedbackRequest, FeedbackResponse, FindPersonsRequest, FindPersonsResponse,
    GetClusterRequest, GetClusterResponse, GetPersonRequest, GetPersonResponse,
    ListClustersRequest, ListClustersResponse, ProviderError, RankPersonsRequest,
    RankPersonsResponse, RecordBatch, ResolveRequest, ResolveResponse, SampleTraitsRequest,
    SampleTraitsResponse,
};

/// The full audience of a `find_persons` call, some records at a time, in the provider's order.
pub type AudienceStream = BoxStream<'static, Result<RecordBatch, ProviderError>>;

/// An audience already in memory, as the stream of its records' JSON.
pub fn audience_stream(records: &[AudienceRecord]) -> AudienceStream {
    use futures::StreamExt;
    let mut batch = RecordBatch::default();
    for record in records {
        batch.push_record(record);
    }
    futures::stream::iter((!batch.is_empty()).then_some(Ok(batch))).boxed()
}

/// A whole audience from one `find_persons` call: its answer (`total`, `sample`, `workflow_id`,
/// `tool_trace_id`; `export` already consumed) and every record, streamed.
pub struct AudienceExport {
    pub answer: FindPersonsResponse,
    pub records: AudienceStream,
}

impl AudienceExport {
    /// Every record, parsed: for small audiences and tests (a large export is meant to move
    /// as the bytes it is).
    pub async fn parsed_records(self) -> Result<Vec<AudienceRecord>, ProviderError> {
        use futures::TryStreamExt;
        let batches: Vec<RecordBatch> = self.records.try_collect().await?;
        let mut records = Vec::new();
        for batch in &batches {
            records.extend(batch.decode()?);
        }
        Ok(records)
    }
}

impl std::fmt::Debug for AudienceExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudienceExport")
            .field("answer", &self.answer)
            .finish_non_exhaustive()
    }
}

/// A population: the five upstream operations (and feedback), whoever answers them.
///
/// Requests and answers are the upstream's shapes. Implementations handle their own transport
/// concerns (batching beyond a call's limits is the caller's job, except where noted):
/// - `resolve_identities` answers with every identity inline; a provider whose upstream hands out
///   an export URL downloads it before answering.
/// - `get_person` takes at most [`crate::MAX_PERSON_IDS_PER_CALL`] ids.
/// - `export_persons` is `find_persons` with the whole audience streamed: one call (one upstream
///   round trip) gives the count, the sample and every record, honouring `audience_limit`,
///   `location` and `identifier_type`; `format` is ignored.
#[async_trait::async_trait]
pub trait PopulationProvider: Send + Sync + 'static {
    /// A short name for logs and job details (`embedded`, `watt`).
    fn name(&self) -> &'static str;

    async fn resolve_identities(
        &self,
        req: ResolveRequest,
    ) -> Result<ResolveResponse, ProviderError>;

    /// `resolve_identities` for a caller that needs only who matched and how well: each
    /// identity's `person_id` and `overall_quality_score`, its `matches` and `identifiers` left
    /// empty. A provider that can skip building the rest does (an answer for 30,000 identifiers
    /// is megabytes of them); how many identifiers of each criterion type matched is kept
    /// (`matched_by_criterion`).
    async fn resolve_persons(&self, req: ResolveRequest) -> Result<ResolveResponse, ProviderError> {
        let mut answer = self.resolve_identities(req).await?;
        answer.keep_persons_only();
        Ok(answer)
    }

    async fn get_person(&self, req: GetPersonRequest) -> Result<GetPersonResponse, ProviderError>;

    async fn list_clusters(
        &self,
        req: ListClustersRequest,
    ) -> Result<ListClustersResponse, ProviderError>;

    async fn get_cluster(
        &self,
        req: GetClusterRequest,
    ) -> Result<GetClusterResponse, ProviderError>;

    async fn find_persons(
        &self,
        req: FindPersonsRequest,
    ) -> Result<FindPersonsResponse, ProviderError>;

    async fn export_persons(
        &self,
        req: FindPersonsRequest,
    ) -> Result<AudienceExport, ProviderError>;

    async fn submit_feedback(
        &self,
        req: FeedbackRequest,
    ) -> Result<FeedbackResponse, ProviderError>;

    /// Ranks the provider's whole population (see [`RankPersonsRequest`]). `None` when the
    /// provider cannot: an upstream that only answers the five tools (the caller then scores a
    /// candidate set it fetched itself).
    async fn rank_persons(
        &self,
        _req: RankPersonsRequest,
    ) -> Option<Result<RankPersonsResponse, ProviderError>> {
        None
    }

    /// A seeded sample of the population's persons, as the traits each holds (see
    /// [`SampleTraitsRequest`]). `None` when the provider cannot draw one: an upstream that
    /// only answers the five tools (the caller then fits a model that needs no sample).
    async fn sample_traits(
        &self,
        _req: SampleTraitsRequest,
    ) -> Option<Result<SampleTraitsResponse, ProviderError>> {
        None
    }

    /// `(tool, tool_trace_id)` of every call of `tool` made for the workflow since the last
    /// drain of that tool, oldest first, each handed out once — for providers that make calls
    /// whose answers do not reach the caller (the `find_persons` behind `export_persons`).
    /// `None` when the provider keeps no such log: the answers' own `tool_trace_id`s are then
    /// all there is.
    fn drain_traces(&self, _workflow_id: &str, _tool: &str) -> Option<Vec<(String, String)>> {
        None
    }

    /// Attempts this provider made that repeated a failed attempt (a 429, a dropped
    /// connection), since it was built: retries inside one call, which its caller never sees.
    /// Zero for a provider that does not retry.
    fn retried_attempts(&self) -> u64 {
        0
    }
}
