//! Stage 6: each audience set against the customers it was made for (Step 6 of the workflow,
//! [`crate::validation`]): the whole list's audiences, its ranked tiers and the combined
//! audience against the whole list's top traits, each segment's audiences against that
//! segment's. Each audience's validation is checkpointed as one part, so a resumed job
//! validates only what it lacks: a boolean audience at its strategy's place in
//! `Strategy::ALL`, a ranked tier at `TIERS_SEQ` + its place, the combined audience at
//! `COMBINED_SEQ`, segment *k*'s audience at `SEGMENT_SEQ + SEGMENT_SEQ_STRIDE · k` + its
//! strategy's place.

use std::collections::BTreeMap;
use std::sync::Arc;

use icp_analysis::Strategy;
use icp_store::Stage;

use super::checkpoint::{Mapped, Run};
use super::error::{StageError, corrupt, provider};
use crate::model::{AudienceResult, RankedResult, Validation, ValidationTrait, strategy_name};
use crate::validation::{Enricher, chosen_traits, draw_export};

const TIERS_SEQ: i64 = 100;
const COMBINED_SEQ: i64 = 999;
const SEGMENT_SEQ: i64 = 1_000;
const SEGMENT_SEQ_STRIDE: i64 = 8;

/// One audience to validate: its checkpoint part, its export's name and which traits it is set
/// against (`None`: the whole list's, `Some(k)`: segment *k*'s).
struct Target {
    seq: i64,
    export: String,
    segment: Option<usize>,
}

/// The audiences a job found, to be validated in place.
pub(super) struct Found<'a> {
    pub audiences: &'a mut [AudienceResult],
    pub ranked: &'a mut Option<RankedResult>,
    pub segments: &'a mut [Vec<AudienceResult>],
    pub combined: &'a mut Option<AudienceResult>,
}

impl Run<'_> {
    /// Validates every audience, ranked tier, segment audience and the combined audience the
    /// job found, filling their `validation`.
    pub(super) async fn validate(
        &mut self,
        mapped: &Mapped,
        found: Found<'_>,
    ) -> Result<(), StageError> {
        let whole = |a: &AudienceResult| Target {
            seq: strategy_seq(a.strategy),
            export: strategy_name(a.strategy).to_owned(),
            segment: None,
        };
        let mut targets: Vec<Target> = found.audiences.iter().map(whole).collect();
        if let Some(ranked) = found.ranked.as_ref() {
            targets.extend(ranked.tiers.iter().enumerate().map(|(i, t)| Target {
                seq: TIERS_SEQ + i as i64,
                export: t.name.clone(),
                segment: None,
            }));
        }
        for (k, audiences) in found.segments.iter().enumerate() {
            targets.extend(audiences.iter().map(|a| Target {
                seq: segment_seq(k, a.strategy),
                export: export_name(a),
                segment: Some(k),
            }));
        }
        if let Some(combined) = found.combined.as_ref() {
            targets.push(Target {
                seq: COMBINED_SEQ,
                export: export_name(combined),
                segment: None,
            });
        }
        self.enter(Stage::Validate, targets.len() as u64).await?;
        let mut done: BTreeMap<i64, Validation> = BTreeMap::new();
        for (seq, body) in self
            .store()
            .checkpoints(self.job.id, Stage::Validate)
            .await?
        {
            done.insert(seq, serde_json::from_str(&body).map_err(corrupt)?);
        }
        let traits = chosen_traits(&mapped.analysis);
        let segment_traits: Vec<Vec<ValidationTrait>> = mapped
            .segments
            .iter()
            .map(|s| s.analysis.as_ref().map(chosen_traits).unwrap_or_default())
            .collect();
        let enricher = Enricher {
            provider: Arc::clone(&self.ctx.provider),
            domains: self
                .options
                .domains
                .clone()
                .unwrap_or_else(crate::options::trait_domains),
            workflow_id: self.workflow_id.clone(),
            concurrency: self.ctx.config.enrich_concurrency,
        };
        for target in &targets {
            if done.contains_key(&target.seq) {
                continue;
            }
            let traits = match target.segment {
                Some(k) => segment_traits.get(k).map_or(&[][..], Vec::as_slice),
                None => &traits,
            };
            let sample = draw_export(self.store(), self.job.id, &target.export).await?;
            let (validation, trace_ids) = enricher
                .validate(&sample, traits)
                .await
                .map_err(provider("validate"))?;
            let traces: Vec<(String, String)> = trace_ids
                .iter()
                .flat_map(|id| self.traces_of("get_person", id.as_ref()))
                .collect();
            let body = serde_json::to_string(&validation).map_err(corrupt)?;
            let progress = done.len() as u64 + 1;
            self.save_part(Stage::Validate, target.seq, &body, &traces, progress)
                .await?;
            done.insert(target.seq, validation);
        }
        for audience in found.audiences.iter_mut() {
            audience.validation = done.get(&strategy_seq(audience.strategy)).cloned();
        }
        if let Some(ranked) = found.ranked.as_mut() {
            for (i, tier) in ranked.tiers.iter_mut().enumerate() {
                tier.validation = done.get(&(TIERS_SEQ + i as i64)).cloned();
            }
        }
        for (k, audiences) in found.segments.iter_mut().enumerate() {
            for audience in audiences {
                audience.validation = done.get(&segment_seq(k, audience.strategy)).cloned();
            }
        }
        if let Some(combined) = found.combined.as_mut() {
            combined.validation = done.get(&COMBINED_SEQ).cloned();
        }
        self.finish(Stage::Validate).await
    }
}

/// A boolean audience's checkpoint part: its strategy's place in `Strategy::ALL`.
fn strategy_seq(strategy: Strategy) -> i64 {
    Strategy::ALL
        .iter()
        .position(|s| *s == strategy)
        .unwrap_or_default() as i64
}

/// Segment *k*'s audience of `strategy`: its checkpoint part.
fn segment_seq(k: usize, strategy: Strategy) -> i64 {
    SEGMENT_SEQ + SEGMENT_SEQ_STRIDE * k as i64 + strategy_seq(strategy)
}

/// The name an audience's records are stored under.
fn export_name(audience: &AudienceResult) -> String {
    audience
        .name
        .clone()
        .unwrap_or_else(|| strategy_name(audience.strategy).to_owned())
}
