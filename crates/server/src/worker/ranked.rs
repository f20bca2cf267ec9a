//! Stage 5, after the boolean audiences: the ranked audiences. Every person is scored by the
//! lookalike weights the analyze stage fitted (the sum of the weights of their traits) and the
//! best 1 %, 2 %, 5 % and 10 % are exported like the other audiences.
//!
//! A provider that holds its population ranks all of it (`rank_persons`, scope `population`),
//! asked as the find stage begins so the ranking runs while the boolean audiences are written.
//! One that cannot (the Watt Data upstream answers only its tools) gets the candidates scored
//! here (scope `candidates`): the persons of the boolean audiences this job exported, their
//! profiles fetched with `get_person` 1000 at a time, each batch checkpointed so that a resumed
//! job fetches only what it lacks. Each finished tier is checkpointed with its export stored,
//! so a resumed job does not redo it. Scores never leave the service: a tier shows its cut-off.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::StreamExt;
use icp_analysis::TraitWeight;
use icp_contract::{
    GetPersonRequest, MAX_PERSON_IDS_PER_CALL, PersonId, ProviderError, RANKED_FRACTIONS,
    RankPersonsRequest, RankPersonsResponse, RankWeight, RankedTierAnswer, RecordBatch, tier_size,
};
use icp_store::Stage;
use serde::{Deserialize, Serialize};

use super::checkpoint::{Mapped, Resolved, Run};
use super::error::{StageError, corrupt, provider, stopped};
use super::find::{CHUNKS_PER_WRITE, RANKED_SEQ};
use crate::model::{
    AudienceExports, AudienceResult, RankedResult, RankedScope, RankedTier, RankedTrait,
    ranked_tier_name, strategy_name,
};

/// Candidate batch *i* is checkpointed at `CANDIDATES_SEQ + i`; tier *i* at `RANKED_SEQ + i`.
const CANDIDATES_SEQ: i64 = RANKED_SEQ + 1_000;

/// The most traits a tier names.
const TOP_TRAITS: usize = 5;

/// A finished tier, as checkpointed.
#[derive(Debug, Serialize, Deserialize)]
struct TierDone {
    scope: RankedScope,
    eligible: u64,
    weighted_traits: u64,
    tier: RankedTier,
}

/// One candidate batch: each person and the weighted traits they hold (indices into the
/// weights).
type CandidateBatch = Vec<(PersonId, Vec<u32>)>;

/// The provider's ranking, asked for ahead of the boolean audiences ([`Run::rank_ahead`]);
/// aborted if the stage ends without taking it.
pub(super) struct RankAhead(
    tokio::task::JoinHandle<Option<Result<RankPersonsResponse, ProviderError>>>,
);

impl Drop for RankAhead {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A ranking before it is stored.
struct Ranking {
    scope: RankedScope,
    eligible: u64,
    tiers: Vec<RankedTierAnswer>,
    /// The largest tier's records, best first.
    records: RecordBatch,
}

impl Run<'_> {
    /// Asks the provider to rank its population before the boolean audiences are found, so
    /// that the ranking (CPU work of the provider's) runs while they are exported (database
    /// work) rather than after: [`Run::ranked`] takes its answer. `None` when the job does
    /// not rank, or every tier is already stored (a resumed job).
    pub(super) async fn rank_ahead(
        &self,
        mapped: &Mapped,
        resolved: &Resolved,
    ) -> Result<Option<RankAhead>, StageError> {
        let Some(weights) = mapped.weights.as_ref().filter(|_| self.options.may_rank()) else {
            return Ok(None);
        };
        let stored = self
            .store()
            .checkpoints(self.job.id, Stage::Find)
            .await?
            .iter()
            .filter(|(seq, _)| (RANKED_SEQ..CANDIDATES_SEQ).contains(seq))
            .count();
        if stored >= RANKED_FRACTIONS.len() {
            return Ok(None);
        }
        let request = self.rank_request(weights, resolved);
        let upstream = Arc::clone(&self.ctx.provider);
        Ok(Some(RankAhead(tokio::spawn(async move {
            upstream.rank_persons(request).await
        }))))
    }

    /// The ranked audiences, when the job asked for them and its analysis fitted weights;
    /// `ahead`, the ranking [`Run::rank_ahead`] asked for.
    pub(super) async fn ranked(
        &mut self,
        mapped: &Mapped,
        resolved: &Resolved,
        audiences: &[AudienceResult],
        ahead: Option<RankAhead>,
    ) -> Result<Option<RankedResult>, StageError> {
        if !self.options.may_rank() {
            return Ok(None);
        }
        let Some(weights) = mapped.weights.as_ref() else {
            tracing::warn!(job = %self.job.id, "the job was analysed without lookalike weights; no ranked audiences");
            return Ok(None);
        };
        let mut done: BTreeMap<usize, TierDone> = BTreeMap::new();
        for (seq, body) in self.store().checkpoints(self.job.id, Stage::Find).await? {
            if (RANKED_SEQ..CANDIDATES_SEQ).contains(&seq) {
                let tier = serde_json::from_str(&body).map_err(corrupt)?;
                done.insert((seq - RANKED_SEQ) as usize, tier);
            }
        }
        if done.len() < RANKED_FRACTIONS.len() {
            let Some(ranking) = self.rank(weights, resolved, audiences, ahead).await? else {
                return Ok(None);
            };
            for (i, answer) in ranking.tiers.iter().enumerate() {
                if done.contains_key(&i) {
                    continue;
                }
                let tier = self.store_tier(weights, &ranking.records, answer).await?;
                let tier = TierDone {
                    scope: ranking.scope,
                    eligible: ranking.eligible,
                    weighted_traits: weights.len() as u64,
                    tier,
                };
                let body = serde_json::to_string(&tier).map_err(corrupt)?;
                let progress = self.progress.find.done + 1;
                self.save_part(Stage::Find, RANKED_SEQ + i as i64, &body, &[], progress)
                    .await?;
                done.insert(i, tier);
            }
        }
        let Some(first) = done.values().next() else {
            return Ok(None);
        };
        Ok(Some(RankedResult {
            model: mapped.model,
            scope: first.scope,
            eligible: first.eligible,
            weighted_traits: first.weighted_traits,
            tiers: done.into_values().map(|t| t.tier).collect(),
        }))
    }

    /// The provider ranks its population, or, when it cannot and the job asked for ranked
    /// audiences in so many words, the candidates are scored here.
    async fn rank(
        &mut self,
        weights: &[TraitWeight],
        resolved: &Resolved,
        audiences: &[AudienceResult],
        ahead: Option<RankAhead>,
    ) -> Result<Option<Ranking>, StageError> {
        let answer = match ahead {
            Some(mut ahead) => (&mut ahead.0).await.map_err(stopped)?,
            None => {
                let request = self.rank_request(weights, resolved);
                self.ctx.provider.rank_persons(request).await
            }
        };
        match answer {
            Some(answer) => {
                let answer = answer.map_err(provider("find"))?;
                self.trace(Stage::Find, "rank_persons", answer.tool_trace_id.as_ref())
                    .await?;
                Ok(Some(Ranking {
                    scope: RankedScope::Population,
                    eligible: answer.eligible,
                    tiers: answer.tiers,
                    records: answer.records,
                }))
            }
            None if self.options.ranked == Some(true) => {
                Ok(Some(self.rank_candidates(weights, audiences).await?))
            }
            None => Ok(None),
        }
    }

    /// What the provider is asked to rank: the job's weights, its customers and excluded
    /// traits left out, within its location.
    fn rank_request(&self, weights: &[TraitWeight], resolved: &Resolved) -> RankPersonsRequest {
        let exclude = if self.options.exclude_customers {
            resolved.all.clone()
        } else {
            Vec::new()
        };
        RankPersonsRequest {
            weights: weights
                .iter()
                .map(|w| RankWeight {
                    name: w.name.clone(),
                    value: w.value.clone(),
                    weight: w.weight,
                })
                .collect(),
            fractions: RANKED_FRACTIONS.to_vec(),
            exclude,
            exclude_traits: self
                .options
                .exclusion_items()
                .into_iter()
                .map(|i| (i.name, i.value))
                .collect(),
            location: self.options.location,
            identifier_type: self.options.identifier_type,
            workflow_id: self.workflow_id.clone(),
        }
    }

    /// Scores the persons of the boolean audiences: their records are the audiences' stored
    /// exports, their traits fetched with `get_person` (checkpointed a batch at a time).
    async fn rank_candidates(
        &mut self,
        weights: &[TraitWeight],
        audiences: &[AudienceResult],
    ) -> Result<Ranking, StageError> {
        let mut lines: BTreeMap<PersonId, String> = BTreeMap::new();
        for audience in audiences {
            self.read_export(strategy_name(audience.strategy), |id, line| {
                lines.entry(id).or_insert_with(|| line.to_owned());
            })
            .await?;
        }
        let ids: Vec<PersonId> = lines.keys().copied().collect();
        let mut batches: BTreeMap<usize, CandidateBatch> = BTreeMap::new();
        for (seq, body) in self.store().checkpoints(self.job.id, Stage::Find).await? {
            if seq >= CANDIDATES_SEQ {
                let batch = serde_json::from_str(&body).map_err(corrupt)?;
                batches.insert((seq - CANDIDATES_SEQ) as usize, batch);
            }
        }
        let index: HashMap<(&str, &str), u32> = weights
            .iter()
            .enumerate()
            .rev()
            .map(|(i, w)| ((w.name.as_str(), w.value.as_str()), i as u32))
            .collect();
        let domains = Some(
            self.options
                .domains
                .clone()
                .unwrap_or_else(crate::options::trait_domains),
        );
        let todo: Vec<(usize, Vec<PersonId>)> = ids
            .chunks(MAX_PERSON_IDS_PER_CALL)
            .enumerate()
            .filter(|(i, _)| !batches.contains_key(i))
            .map(|(i, chunk)| (i, chunk.to_vec()))
            .collect();
        // After a failure no further batch is asked for, but the ones under way are kept: a
        // resumed job asks only for what no attempt stored.
        let failed = std::sync::atomic::AtomicBool::new(false);
        let upstream = std::sync::Arc::clone(&self.ctx.provider);
        let workflow_id = self.workflow_id.clone();
        let calls = todo
            .into_iter()
            .take_while(|_| !failed.load(std::sync::atomic::Ordering::SeqCst))
            .map(|(i, person_ids)| {
                let (upstream, domains, workflow_id) =
                    (upstream.clone(), domains.clone(), workflow_id.clone());
                async move {
                    let answer = upstream
                        .get_person(GetPersonRequest {
                            person_ids,
                            domains,
                            format: None,
                            workflow_id,
                        })
                        .await;
                    (i, answer)
                }
            });
        let mut answers =
            futures::stream::iter(calls).buffered(self.ctx.config.enrich_concurrency.max(1));
        let mut first_error = None;
        while let Some((i, answer)) = answers.next().await {
            let answer = match answer {
                Ok(answer) => answer,
                Err(e) => {
                    failed.store(true, std::sync::atomic::Ordering::SeqCst);
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            let traces = self.traces_of("get_person", answer.tool_trace_id.as_ref());
            let batch: CandidateBatch = answer
                .profiles
                .iter()
                .map(|p| {
                    let held = p
                        .domains
                        .iter()
                        .filter_map(|(k, v)| index.get(&(k.as_str(), v.as_str())).copied())
                        .collect();
                    (p.person_id, held)
                })
                .collect();
            let body = serde_json::to_string(&batch).map_err(corrupt)?;
            let progress = self.progress.find.done;
            self.save_part(
                Stage::Find,
                CANDIDATES_SEQ + i as i64,
                &body,
                &traces,
                progress,
            )
            .await?;
            batches.insert(i, batch);
        }
        drop(answers);
        if let Some(e) = first_error {
            return Err(provider("find")(e));
        }

        // A candidate the provider gave no profile for holds no trait (scores 0).
        let mut held: HashMap<PersonId, Vec<u32>> = batches.into_values().flatten().collect();
        let mut scored: Vec<(f64, PersonId, Vec<u32>)> = ids
            .iter()
            .map(|id| {
                let traits = held.remove(id).unwrap_or_default();
                let score = traits.iter().map(|&t| weights[t as usize].weight).sum();
                (score, *id, traits)
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let eligible = scored.len() as u64;
        let sizes: Vec<usize> = RANKED_FRACTIONS
            .iter()
            .map(|&f| tier_size(f, eligible) as usize)
            .collect();
        let largest = sizes.iter().copied().max().unwrap_or(0);
        let mut counts = vec![0u64; weights.len()];
        let mut at_size: HashMap<usize, Vec<u64>> = HashMap::from([(0, counts.clone())]);
        let mut records = RecordBatch::default();
        for (n, (_, id, traits)) in scored.iter().take(largest).enumerate() {
            for &t in traits {
                counts[t as usize] += 1;
            }
            if sizes.contains(&(n + 1)) {
                at_size.insert(n + 1, counts.clone());
            }
            records.push_json(*id, lines[id].as_bytes());
        }
        let tiers = RANKED_FRACTIONS
            .iter()
            .zip(&sizes)
            .map(|(&fraction, &size)| RankedTierAnswer {
                fraction,
                size: size as u64,
                cutoff: size.checked_sub(1).map(|last| scored[last].0),
                trait_counts: at_size.remove(&size).unwrap_or_default(),
            })
            .collect();
        Ok(Ranking {
            scope: RankedScope::Candidates,
            eligible,
            tiers,
            records,
        })
    }

    /// Stores one tier's records (the first `size` of the ranking) as its export and says what
    /// it holds.
    async fn store_tier(
        &self,
        weights: &[TraitWeight],
        records: &RecordBatch,
        answer: &RankedTierAnswer,
    ) -> Result<RankedTier, StageError> {
        let name = ranked_tier_name(answer.fraction);
        self.store().clear_exports(self.lease, &name).await?;
        let rows = self.ctx.config.export_chunk_rows.max(1);
        let mut chunks: Vec<(i64, Vec<u8>)> = Vec::new();
        let mut chunk = Vec::new();
        let mut in_chunk = 0;
        let mut chunk_no = 0i64;
        for (_, json) in records.iter().take(answer.size as usize) {
            chunk.extend_from_slice(json);
            chunk.push(b'\n');
            in_chunk += 1;
            if in_chunk == rows {
                chunks.push((chunk_no, std::mem::take(&mut chunk)));
                chunk_no += 1;
                in_chunk = 0;
            }
        }
        if in_chunk > 0 {
            chunks.push((chunk_no, chunk));
        }
        for group in chunks.chunks(CHUNKS_PER_WRITE) {
            let bodies: Vec<(i64, &[u8])> = group.iter().map(|(n, c)| (*n, c.as_slice())).collect();
            self.store()
                .put_export_chunks(self.lease, &name, &bodies)
                .await?;
        }
        let size = answer.size.max(1) as f64;
        let mut top: Vec<RankedTrait> = weights
            .iter()
            .zip(&answer.trait_counts)
            .filter(|(w, count)| w.weight > 0.0 && **count > 0)
            .map(|(w, &count)| RankedTrait {
                name: w.name.clone(),
                value: w.value.clone(),
                weight: w.weight,
                share: count as f64 / size,
            })
            .collect();
        top.sort_by(|a, b| {
            (b.weight * b.share)
                .total_cmp(&(a.weight * a.share))
                .then_with(|| (&a.name, &a.value).cmp(&(&b.name, &b.value)))
        });
        top.truncate(TOP_TRAITS);
        Ok(RankedTier {
            exports: AudienceExports::named(self.job.id, &name),
            name,
            share: answer.fraction,
            size: answer.size,
            cutoff: answer.cutoff,
            top_traits: top,
            validation: None,
        })
    }
}
