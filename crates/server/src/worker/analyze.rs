//! Stage 3: what the customers have in common.

use std::sync::{Arc, Mutex};

use icp_analysis::{
    Analysis, Analyzer, AudiencePlanning, Baseline, DEFAULT_PENALTY, DEFAULT_SMOOTHING, MAX_ROWS,
    Mined, SAMPLE_SEED, TraitWeight, logistic_weights,
};
use icp_contract::{Cluster, FindPersonsRequest, ProviderError, SampleTraitsRequest};
use icp_store::Stage;

use super::checkpoint::{Analyzed, AnalyzedCheckpoint, EnrichedPart, Resolved, Run};
use super::clusters::Listed;
use super::error::{StageError, corrupt, provider, stopped};
use super::feeder::add_profiles;
use crate::model::RankedModel;

impl Run<'_> {
    /// Stage 3: what the customers have in common. Mining is CPU-bound (off the async
    /// threads); between mining and ranking, the population sizes of every trait the report
    /// can mention are listed, so pairs and clusters are ranked against the population over
    /// everything mined — not re-ranked from a pool cut among customers alone, which can lose
    /// the segment (its traits are common among customers, rare in the population).
    pub(super) async fn analyze(&mut self, resolved: &Resolved) -> Result<Analyzed, StageError> {
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
                        let part: EnrichedPart = serde_json::from_str(body).map_err(corrupt)?;
                        add_profiles(&mut analyzer, &part.into_parts().1);
                    }
                    Ok::<_, StageError>(analyzer)
                })
                .await
                .map_err(stopped)??
            }
        };
        let (mined, listed) = self.mine_and_list(analyzer).await?;
        let baseline = listed.baseline();
        let ranked = self.options.may_rank() && baseline.is_some();
        // The ranked audiences' weights: every listed value of every attribute the baseline
        // covers; naive Bayes from the customers' exact counts against the clusters' sizes (a
        // few loops over the listed traits), or, given a sample, logistic regression over the
        // same traits. The logistic model's counter-examples: a seeded sample of the
        // population as the traits each holds, the customers left out, where the provider can
        // draw one (else naive Bayes).
        let naive_bayes = match &baseline {
            Some(baseline) if ranked => Some(mined.lookalike_weights(baseline, DEFAULT_SMOOTHING)),
            _ => None,
        };
        let sample = match &naive_bayes {
            Some(traits) => self.population_sample(resolved, traits).await?,
            None => None,
        };
        // The logistic fit (most of this stage's time when it ranks) runs on a thread of its
        // own while the report is ranked and the audiences planned, which need only the lattice.
        let (mined, fitting, model) = match (naive_bayes, sample) {
            (Some(nb), Some(sample)) => {
                let (mined, customers) = tokio::task::spawn_blocking(move || {
                    let customers = mined.customer_rows(&nb);
                    (mined, (nb, customers))
                })
                .await
                .map_err(stopped)?;
                let (nb, customers) = customers;
                let fitting = tokio::task::spawn_blocking(move || {
                    logistic_weights(&nb, &customers, &sample, DEFAULT_PENALTY, MAX_ROWS)
                });
                (
                    mined,
                    Fitting::Logistic(fitting),
                    RankedModel::LogisticRegression,
                )
            }
            (Some(nb), None) => (mined, Fitting::Done(Some(nb)), RankedModel::NaiveBayes),
            (None, _) => (mined, Fitting::Done(None), RankedModel::NaiveBayes),
        };
        let (mined, analysis, baseline) = tokio::task::spawn_blocking(move || {
            let analysis = match &baseline {
                Some(baseline) => mined.analysis_with(baseline),
                None => mined.analysis(),
            };
            (mined, analysis, baseline)
        })
        .await
        .map_err(stopped)?;
        let clusters: Vec<Cluster> = listed.clusters.into_values().collect();
        let planning = match baseline {
            Some(baseline) => {
                self.plan_audiences(mined, &analysis, baseline, &clusters)
                    .await?
            }
            None => None,
        };
        let weights = match fitting {
            Fitting::Logistic(handle) => Some(handle.await.map_err(stopped)?),
            Fitting::Done(weights) => weights,
        };
        let segments = self.analyze_segments(resolved).await?;
        let done = Analyzed {
            analysis,
            clusters,
            population_size: listed.population_size,
            weights,
            model,
            planning,
            segments,
        };
        self.save_final(Stage::Analyze, &done).await?;
        self.finish(Stage::Analyze).await?;
        Ok(done)
    }
}

/// The ranked audiences' weights: being fitted, or known.
enum Fitting {
    Logistic(tokio::task::JoinHandle<Vec<TraitWeight>>),
    Done(Option<Vec<TraitWeight>>),
}

impl Run<'_> {
    /// Mines the customers' profiles (off the async threads) and lists the clusters of every
    /// trait the lattice can mention, the baseline to rank it against.
    pub(super) async fn mine_and_list(
        &mut self,
        analyzer: Analyzer,
    ) -> Result<(Mined, Listed), StageError> {
        let mined = tokio::task::spawn_blocking(move || analyzer.mine())
            .await
            .map_err(stopped)?
            .map_err(|e| StageError::Analysis(e.to_string()))?;
        // The exclusions' clusters too: the planner counts its candidates without them.
        let exclusions = self.options.exclusion_items();
        let listed = self
            .list_clusters(
                Stage::Analyze,
                mined.baseline_items().iter().chain(&exclusions),
            )
            .await?;
        Ok((mined, listed))
    }
}

/// Persons of the population the logistic model is fitted against: as many as it fits of the
/// customers at most (`MAX_ROWS`), drawn with the fixed `SAMPLE_SEED`.
const SAMPLE_SIZE: usize = MAX_ROWS;

impl Run<'_> {
    /// A seeded sample of the population, the job's matched persons left out, each person as
    /// the positions in `traits` of the traits they hold; `None` when the provider cannot draw
    /// one.
    async fn population_sample(
        &mut self,
        resolved: &Resolved,
        traits: &[TraitWeight],
    ) -> Result<Option<Vec<Vec<u32>>>, StageError> {
        let request = SampleTraitsRequest {
            size: SAMPLE_SIZE,
            seed: SAMPLE_SEED,
            traits: traits
                .iter()
                .map(|t| (t.name.clone(), t.value.clone()))
                .collect(),
            exclude: resolved.all.clone(),
            workflow_id: self.workflow_id.clone(),
        };
        let Some(answer) = self.ctx.provider.sample_traits(request).await else {
            return Ok(None);
        };
        let answer = answer.map_err(provider("analyze"))?;
        self.trace(
            Stage::Analyze,
            "sample_traits",
            answer.tool_trace_id.as_ref(),
        )
        .await?;
        Ok(Some(answer.rows))
    }
}

/// What the planner's counts asked of the provider: each answer's trace id, and the first
/// failure (which fails the stage, to be retried, rather than leave a size unmeasured).
#[derive(Default)]
struct Counted {
    traces: Vec<String>,
    failed: Option<ProviderError>,
}

impl Run<'_> {
    /// The audiences planned for their index within their size bands (`Mined::plan_audiences`),
    /// each candidate's population size a `find_persons` count (bounded by the configuration).
    /// The planner is synchronous CPU work: it runs on a blocking thread and waits there for each
    /// count. `None` when the baseline gives no population size to plan against.
    pub(super) async fn plan_audiences(
        &mut self,
        mined: Mined,
        analysis: &Analysis,
        baseline: Baseline,
        clusters: &[Cluster],
    ) -> Result<Option<AudiencePlanning>, StageError> {
        let hashes: std::collections::HashMap<(String, String), String> = clusters
            .iter()
            .map(|c| ((c.name.clone(), c.value.clone()), c.cluster_hash.clone()))
            .collect();
        // Every candidate is counted as the find stage sends it: with the exclusions'
        // `AND NOT` terms (those the provider has a cluster for).
        let exclude = self
            .options
            .exclusion(|i| hashes.contains_key(&(i.name.clone(), i.value.clone())));
        let config = icp_analysis::AudienceConfig {
            bands: self.ctx.config.audience_bands,
            min_audience_size: self.ctx.config.min_audience_size,
            exclude: exclude.clone(),
            ..self.options.audience_config()
        };
        let provider_ = Arc::clone(&self.ctx.provider);
        let workflow_id = self.workflow_id.clone();
        let identifier_type = Some(self.options.identifier_type);
        let analysis = analysis.clone();
        let counted = Arc::new(Mutex::new(Counted::default()));
        let log = Arc::clone(&counted);
        let handle = tokio::runtime::Handle::current();
        let planning = tokio::task::spawn_blocking(move || {
            let mut count = |expression: &icp_analysis::Expr| {
                let sent = match &exclude {
                    Some(exclude) => expression.clone().and_not(exclude),
                    None => expression.clone(),
                };
                let text =
                    sent.render(&|i| hashes.get(&(i.name.clone(), i.value.clone())).cloned())?;
                let mut log = log.lock().ok()?;
                if log.failed.is_some() {
                    return None;
                }
                // The band is a share of the whole population: counted without the location.
                let request = FindPersonsRequest {
                    expression: text,
                    identifier_type,
                    location: None,
                    audience_limit: None,
                    format: None,
                    workflow_id: workflow_id.clone(),
                };
                match handle.block_on(provider_.find_persons(request)) {
                    Ok(answer) => {
                        log.traces.extend(answer.tool_trace_id);
                        Some(answer.total)
                    }
                    Err(e) => {
                        log.failed = Some(e);
                        None
                    }
                }
            };
            mined.plan_audiences(&analysis, &baseline, &config, &mut count)
        })
        .await
        .map_err(stopped)?;
        let counted = std::mem::take(
            &mut *counted
                .lock()
                .map_err(|_| StageError::Analysis("the audience planner stopped".to_owned()))?,
        );
        if let Some(e) = counted.failed {
            return Err(provider("analyze")(e));
        }
        for id in &counted.traces {
            self.trace(Stage::Analyze, "find_persons", Some(id)).await?;
        }
        Ok(planning)
    }
}
