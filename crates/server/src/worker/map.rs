//! Stage 4: every trait the result shows → its cluster.

use icp_analysis::{Analysis, AudiencePlanning, Item};
use icp_contract::Cluster;
use icp_store::Stage;

use super::checkpoint::{Analyzed, Mapped, Run};
use super::clusters::Listed;
use super::error::StageError;
use crate::options::JobOptions;

impl Run<'_> {
    /// Stage 4: every `name=value` the report and the audiences use → its cluster. The analyze
    /// stage listed the clusters of every trait it ranked; only what it lacks is listed here.
    pub(super) async fn map(&mut self, analyzed: Analyzed) -> Result<Mapped, StageError> {
        if let Some(done) = self.final_checkpoint::<Mapped>(Stage::Map).await? {
            return Ok(done);
        }
        let Analyzed {
            mut analysis,
            clusters,
            population_size,
            weights,
            model,
            planning,
            segments,
        } = analyzed;
        let mut known = Listed {
            clusters: clusters
                .into_iter()
                .map(|c| ((c.name.clone(), c.value.clone()), c))
                .collect(),
            population_size,
        };
        let wanted = wanted_items(&analysis, planning.as_ref(), &self.options);
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
        let done = Mapped {
            analysis,
            clusters,
            weights,
            model,
            planning,
            segments,
        };
        self.save_final(Stage::Map, &done).await?;
        self.finish(Stage::Map).await?;
        Ok(done)
    }
}

/// Every item whose cluster the result shows: the top attributes and all the audiences use.
pub(super) fn wanted_items(
    analysis: &Analysis,
    planning: Option<&AudiencePlanning>,
    options: &JobOptions,
) -> Vec<Item> {
    let mut items: Vec<Item> = analysis
        .top_attributes
        .iter()
        .map(|a| Item {
            name: a.name.clone(),
            value: a.value.clone(),
        })
        .collect();
    match planning {
        Some(planning) => items.extend(planning.items()),
        None => {
            for plan in analysis.audiences(&options.audience_config()) {
                items.extend(plan.items());
            }
        }
    }
    // The exclusions' clusters, for the `AND NOT` terms of every audience.
    items.extend(options.exclusion_items());
    items.sort();
    items.dedup();
    items
}
