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
    pub(super) fn baseline(&self) -> Option<Baseline> {
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
}
