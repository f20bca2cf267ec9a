//! Stage 3: what the customers have in common.

use std::collections::BTreeMap;

use icp_analysis::{Analyzer, DEFAULT_SMOOTHING};
use icp_store::Stage;

use super::checkpoint::{Analyzed, AnalyzedCheckpoint, Run};
use super::error::{StageError, corrupt, stopped};
use super::feeder::add_profiles;

impl Run<'_> {
    /// Stage 3: what the customers have in common. Mining is CPU-bound (off the async
    /// threads); between mining and ranking, the population sizes of every trait the report
    /// can mention are listed, so pairs and clusters are ranked against the population over
    /// everything mined — not re-ranked from a pool cut among customers alone, which can lose
    /// the segment (its traits are common among customers, rare in the population).
    pub(super) async fn analyze(&mut self) -> Result<Analyzed, StageError> {
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
                let config = self.options.analysis_config();
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
        let ranked = self.options.may_rank();
        // The ranked audiences' weights: every listed value of every attribute the baseline
        // covers, the customers' exact counts against the clusters' sizes.
        let (analysis, weights) = tokio::task::spawn_blocking(move || match baseline {
            Some(baseline) => {
                let weights = ranked.then(|| mined.lookalike_weights(&baseline, DEFAULT_SMOOTHING));
                (mined.analysis_with(&baseline), weights)
            }
            None => (mined.analysis(), None),
        })
        .await
        .map_err(stopped)?;
        let done = Analyzed {
            analysis,
            clusters: listed.clusters.into_values().collect(),
            population_size: listed.population_size,
            weights,
        };
        self.save_final(Stage::Analyze, &done).await?;
        self.finish(Stage::Analyze).await?;
        Ok(done)
    }
}
