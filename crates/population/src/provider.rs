//! The embedded population behind the `PopulationProvider` trait.

use std::sync::Arc;

use futures::StreamExt;
use icp_contract::{
    AudienceExport, FeedbackRequest, FeedbackResponse, FindPersonsRequest, FindPersonsResponse,
    GetClusterRequest, GetClusterResponse, GetPersonRequest, GetPersonResponse,
    ListClustersRequest, ListClustersResponse, PopulationProvider, ProviderError,
    RankPersonsRequest, RankPersonsResponse, ResolveRequest, ResolveResponse, SampleTraitsRequest,
    SampleTraitsResponse,
};

use crate::columns::Population;

/// Records per message on an export stream: large enough to amortise the channel, small enough
/// to keep memory flat.
const EXPORT_CHUNK: usize = 2_048;
/// The most threads that build one export's records.
const MAX_LANES: usize = 4;

/// Serves a [`Population`]; the work runs on the blocking pool so it never stalls the runtime.
#[derive(Debug, Clone)]
pub struct EmbeddedProvider {
    population: Arc<Population>,
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn trace_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl EmbeddedProvider {
    pub fn new(population: Arc<Population>) -> Self {
        Self { population }
    }

    pub fn population(&self) -> &Arc<Population> {
        &self.population
    }

    async fn run<T, F>(&self, f: F) -> Result<T, ProviderError>
    where
        T: Send + 'static,
        F: FnOnce(&Population) -> Result<T, ProviderError> + Send + 'static,
    {
        let pop = Arc::clone(&self.population);
        tokio::task::spawn_blocking(move || f(&pop))
            .await
            .map_err(|e| {
                ProviderError::unavailable(format!("embedded population task failed: {e}"))
            })?
    }
}

/// The workflow id of a call: the caller's, or a fresh one.
fn workflow(given: &mut Option<String>) -> String {
    given.get_or_insert_with(new_id).clone()
}

#[async_trait::async_trait]
impl PopulationProvider for EmbeddedProvider {
    fn name(&self) -> &'static str {
        "embedded"
    }

    async fn resolve_identities(
        &self,
        mut req: ResolveRequest,
    ) -> Result<ResolveResponse, ProviderError> {
        let wf = workflow(&mut req.workflow_id);
        let mut out = self.run(move |p| p.resolve_identities(&req)).await?;
        out.workflow_id = Some(wf);
        out.tool_trace_id = Some(trace_id());
        Ok(out)
    }

    async fn get_person(
        &self,
        mut req: GetPersonRequest,
    ) -> Result<GetPersonResponse, ProviderError> {
        let wf = workflow(&mut req.workflow_id);
        let mut out = self.run(move |p| p.get_person(&req)).await?;
        out.workflow_id = Some(wf);
        out.tool_trace_id = Some(trace_id());
        Ok(out)
    }

    async fn list_clusters(
        &self,
        mut req: ListClustersRequest,
    ) -> Result<ListClustersResponse, ProviderError> {
        let wf = workflow(&mut req.workflow_id);
        let mut out = self.run(move |p| p.list_clusters(&req)).await?;
        out.workflow_id = Some(wf);
        out.tool_trace_id = Some(trace_id());
        Ok(out)
    }

    async fn get_cluster(
        &self,
        mut req: GetClusterRequest,
    ) -> Result<GetClusterResponse, ProviderError> {
        let wf = workflow(&mut req.workflow_id);
        let mut out = self.run(move |p| p.get_cluster(&req)).await?;
        out.workflow_id = Some(wf);
        out.tool_trace_id = Some(trace_id());
        Ok(out)
    }

    async fn find_persons(
        &self,
        mut req: FindPersonsRequest,
    ) -> Result<FindPersonsResponse, ProviderError> {
        let wf = workflow(&mut req.workflow_id);
        let mut out = self.run(move |p| p.find_persons(&req)).await?;
        out.workflow_id = Some(wf);
        out.tool_trace_id = Some(trace_id());
        Ok(out)
    }

    /// Selects the audience once, answers its count and sample, and streams its records in
    /// person id order: a bad expression fails the call itself; records are built on a blocking
    /// thread and sent in chunks, so memory stays flat however large the audience. Dropping the
    /// stream stops the producer.
    async fn export_persons(
        &self,
        mut req: FindPersonsRequest,
    ) -> Result<AudienceExport, ProviderError> {
        let wf = workflow(&mut req.workflow_id);
        let (audience, mut answer) = self
            .run(move |p| {
                let audience = p.audience(&req)?;
                let answer = p.answer(&audience, &req);
                Ok((audience, answer))
            })
            .await?;
        answer.workflow_id = Some(wf);
        answer.tool_trace_id = Some(trace_id());
        // One thread a core builds the records (a large audience's export went at the pace of
        // one thread), each every `lanes`-th chunk; they are read back a lane at a time, in turn,
        // so the stream keeps person id order.
        let lanes = std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_LANES));
        let audience = Arc::new(audience);
        let mut lane_rx = Vec::with_capacity(lanes);
        for lane in 0..lanes {
            let (tx, rx) = tokio::sync::mpsc::channel::<icp_contract::RecordBatch>(2);
            lane_rx.push(rx);
            let (pop, audience) = (Arc::clone(&self.population), Arc::clone(&audience));
            tokio::task::spawn_blocking(move || {
                for chunk in pop.audience_lane(&audience, EXPORT_CHUNK, lane, lanes) {
                    if tx.blocking_send(chunk).is_err() {
                        break;
                    }
                }
            });
        }
        // Chunk k comes from lane k mod lanes; the first lane to run dry ends the export.
        let records = futures::stream::unfold((lane_rx, 0), |(mut lanes, k)| async move {
            let chunk = lanes[k].recv().await?;
            let next = (k + 1) % lanes.len();
            Some((Ok(chunk), (lanes, next)))
        })
        .boxed();
        Ok(AudienceExport { answer, records })
    }

    /// Scores the whole population row by row (`Population::rank_persons`), on the blocking
    /// pool like every other call.
    async fn rank_persons(
        &self,
        mut req: RankPersonsRequest,
    ) -> Option<Result<RankPersonsResponse, ProviderError>> {
        let wf = workflow(&mut req.workflow_id);
        let answer = self
            .run(move |p| p.rank_persons(&req))
            .await
            .map(|mut out| {
                out.workflow_id = Some(wf);
                out.tool_trace_id = Some(trace_id());
                out
            });
        Some(answer)
    }

    async fn sample_traits(
        &self,
        mut req: SampleTraitsRequest,
    ) -> Option<Result<SampleTraitsResponse, ProviderError>> {
        let wf = workflow(&mut req.workflow_id);
        let answer = self
            .run(move |p| {
                Ok(SampleTraitsResponse {
                    rows: p.sample_traits(req.size, req.seed, &req.exclude, &req.traits),
                    population: p.len() as u64,
                    workflow_id: Some(wf),
                    tool_trace_id: Some(trace_id()),
                })
            })
            .await;
        Some(answer)
    }

    async fn submit_feedback(
        &self,
        mut req: FeedbackRequest,
    ) -> Result<FeedbackResponse, ProviderError> {
        let wf = workflow(&mut req.workflow_id);
        if let Some(r) = req.rating
            && !(1..=5).contains(&r)
        {
            return Err(ProviderError::validation(format!(
                "rating must be within 1..=5, got {r}"
            )));
        }
        Ok(FeedbackResponse {
            accepted: true,
            tool_trace_id: Some(trace_id()),
            workflow_id: Some(wf),
        })
    }
}
