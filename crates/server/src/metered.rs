//! The population provider, timed and counted per tool for the metrics: every call of the API
//! and the workers goes through it. It answers exactly what the provider answers.

use std::sync::Arc;
use std::time::Instant;

use icp_contract::{
    AudienceExport, FeedbackRequest, FeedbackResponse, FindPersonsRequest, FindPersonsResponse,
    GetClusterRequest, GetClusterResponse, GetPersonRequest, GetPersonResponse,
    ListClustersRequest, ListClustersResponse, PopulationProvider, ProviderError,
    RankPersonsRequest, RankPersonsResponse, ResolveRequest, ResolveResponse, SampleTraitsRequest,
    SampleTraitsResponse,
};

use crate::metrics::Metrics;

pub struct MeteredProvider {
    inner: Arc<dyn PopulationProvider>,
    metrics: Arc<Metrics>,
}

impl MeteredProvider {
    pub fn new(inner: Arc<dyn PopulationProvider>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    async fn timed<T>(
        &self,
        tool: &str,
        call: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        let started = Instant::now();
        let answer = call.await;
        let error = answer.as_ref().err().map(ProviderError::kind);
        self.metrics.observe_call(tool, started.elapsed(), error);
        answer
    }
}

#[async_trait::async_trait]
impl PopulationProvider for MeteredProvider {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn resolve_identities(
        &self,
        req: ResolveRequest,
    ) -> Result<ResolveResponse, ProviderError> {
        self.timed("resolve_identities", self.inner.resolve_identities(req))
            .await
    }

    async fn resolve_persons(&self, req: ResolveRequest) -> Result<ResolveResponse, ProviderError> {
        self.timed("resolve_identities", self.inner.resolve_persons(req))
            .await
    }

    async fn get_person(&self, req: GetPersonRequest) -> Result<GetPersonResponse, ProviderError> {
        self.timed("get_person", self.inner.get_person(req)).await
    }

    async fn list_clusters(
        &self,
        req: ListClustersRequest,
    ) -> Result<ListClustersResponse, ProviderError> {
        self.timed("list_clusters", self.inner.list_clusters(req))
            .await
    }

    async fn get_cluster(
        &self,
        req: GetClusterRequest,
    ) -> Result<GetClusterResponse, ProviderError> {
        self.timed("get_cluster", self.inner.get_cluster(req)).await
    }

    async fn find_persons(
        &self,
        req: FindPersonsRequest,
    ) -> Result<FindPersonsResponse, ProviderError> {
        self.timed("find_persons", self.inner.find_persons(req))
            .await
    }

    async fn export_persons(
        &self,
        req: FindPersonsRequest,
    ) -> Result<AudienceExport, ProviderError> {
        self.timed("export_persons", self.inner.export_persons(req))
            .await
    }

    async fn submit_feedback(
        &self,
        req: FeedbackRequest,
    ) -> Result<FeedbackResponse, ProviderError> {
        self.timed("submit_feedback", self.inner.submit_feedback(req))
            .await
    }

    async fn rank_persons(
        &self,
        req: RankPersonsRequest,
    ) -> Option<Result<RankPersonsResponse, ProviderError>> {
        let started = Instant::now();
        let answer = self.inner.rank_persons(req).await?;
        let error = answer.as_ref().err().map(ProviderError::kind);
        self.metrics
            .observe_call("rank_persons", started.elapsed(), error);
        Some(answer)
    }

    async fn sample_traits(
        &self,
        req: SampleTraitsRequest,
    ) -> Option<Result<SampleTraitsResponse, ProviderError>> {
        let started = Instant::now();
        let answer = self.inner.sample_traits(req).await?;
        let error = answer.as_ref().err().map(ProviderError::kind);
        self.metrics
            .observe_call("sample_traits", started.elapsed(), error);
        Some(answer)
    }

    fn drain_traces(&self, workflow_id: &str, tool: &str) -> Option<Vec<(String, String)>> {
        self.inner.drain_traces(workflow_id, tool)
    }

    fn retried_attempts(&self) -> u64 {
        self.inner.retried_attempts()
    }
}

#[cfg(test)]
mod tests {
    /// A wrapper that forgets a method falls back to the trait's default and silently changes
    /// what the provider does: every method the trait has must be forwarded here.
    #[test]
    fn every_provider_method_is_forwarded() {
        let trait_src = include_str!("../../contract/src/provider.rs");
        let start = trait_src
            .find("pub trait PopulationProvider")
            .expect("the trait");
        let body = &trait_src[start..trait_src[start..].find("\n}\n").unwrap() + start];
        let here = include_str!("metered.rs");
        for line in body.lines() {
            let line = line.trim_start();
            let Some(rest) = line
                .strip_prefix("async fn ")
                .or_else(|| line.strip_prefix("fn "))
            else {
                continue;
            };
            let name = &rest[..rest.find(['(', '<']).unwrap()];
            assert!(
                here.contains(&format!("fn {name}(")),
                "MeteredProvider does not forward `{name}`"
            );
        }
    }
}
