//! The population's clusters of the traits a stage needs (`list_clusters`), shared by the
//! analyze and map stages.

use std::collections::{BTreeSet, HashMap};

use icp_analysis::{Baseline, Item};
use icp_contract::{Cluster, ListClustersRequest, MAX_CLUSTERS_PER_PAGE};
use icp_store::Stage;

use super::checkpoint::Run;
use super::error::{StageError, provider};

/// What a stage learnt of the population's clusters.
#[derive(Default)]
pub(super) struct Listed {
    pub(super) clusters: HashMap<(String, String), Cluster>,
    pub(super) population_size: Option<u64>,
}

impl Listed {
    /// The baseline the clusters give: against the population size when the provider gave one,
    /// else the known share (each attribute among the persons for whom it is known, the sum of
    /// its values' sizes: every value came back, as the clusters are listed by attribute name).
    /// None when there is neither a population size nor a cluster.
    pub(super) fn baseline(&self) -> Option<Baseline> {
        if self.population_size.is_none() && self.clusters.is_empty() {
            return None;
        }
        Some(Baseline {
            population_size: self.population_size,
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

impl Run<'_> {
    /// Every cluster of the items' attributes (each attribute listed once), all pages, traced
    /// under `stage`.
    pub(super) async fn list_clusters<'i>(
        &mut self,
        stage: Stage,
        items: impl IntoIterator<Item = &'i Item>,
    ) -> Result<Listed, StageError> {
        let names: Vec<String> = items
            .into_iter()
            .map(|i| i.name.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut listed = Listed::default();
        // What another job listed a moment ago is not asked for again.
        let mut missing = Vec::new();
        for name in names {
            match self.ctx.clusters.get(&name) {
                Some((clusters, population_size)) => {
                    listed.population_size = listed.population_size.or(population_size);
                    for c in clusters {
                        listed.clusters.insert((c.name.clone(), c.value.clone()), c);
                    }
                }
                None => missing.push(name),
            }
        }
        if missing.is_empty() {
            return Ok(listed);
        }
        let mut fresh = Vec::new();
        let mut fresh_population_size = None;
        let mut offset = 0;
        loop {
            let page = self
                .ctx
                .provider
                .list_clusters(ListClustersRequest {
                    cluster_names: Some(missing.clone()),
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
            fresh_population_size = fresh_population_size.or(page.population_size);
            let page_end = u64::try_from(page.clusters.len())
                .ok()
                .filter(|&n| n > 0)
                .map(|n| offset + n);
            fresh.extend(page.clusters);
            // The known share sums every value of an attribute: a page left unread would
            // shrink it. A provider that says `has_more` without `next_offset` is read on
            // from the end of this page.
            let next = page.next_offset.or(page_end);
            match next {
                Some(next) if page.has_more && next > offset => offset = next,
                _ => break,
            }
        }
        self.ctx
            .clusters
            .put(&missing, &fresh, fresh_population_size);
        listed.population_size = listed.population_size.or(fresh_population_size);
        for c in fresh {
            listed.clusters.insert((c.name.clone(), c.value.clone()), c);
        }
        Ok(listed)
    }
}
