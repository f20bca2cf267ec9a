//! One job's run and what it persists: progress, trace ids, the workflow id and each stage's
//! checkpoints. Every type written as a checkpoint is declared here, so a change to what is on
//! disk (which jobs written by an older build must still read) shows in one file.

use std::collections::BTreeMap;

use icp_analysis::{Analysis, Analyzer, AudiencePlanning, DistinguishingTrait, TraitWeight};
use icp_contract::{Cluster, PersonId};
use icp_store::{JobRecord, Lease, Part, Stage};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::context::WorkerContext;
use super::error::{StageError, corrupt};
use crate::diagnostics::replace_warnings;
use crate::model::{Progress, RankedModel, Resolution};
use crate::options::JobOptions;
use crate::warning::{Warning, WarningCode};

/// Sequence numbers of whole-stage checkpoints (chunked stages use 1.. for their parts).
pub(super) const FINAL: i64 = 0;

/// One job's run by one worker: the job, its lease, and what it has reached so far.
pub(super) struct Run<'a> {
    pub(super) ctx: &'a WorkerContext,
    pub(super) job: &'a JobRecord,
    pub(super) lease: &'a Lease,
    pub(super) options: JobOptions,
    pub(super) progress: Progress,
    pub(super) workflow_id: Option<String>,
    /// The analyzer the enrich stage fed as profiles arrived, when it ran whole in this run.
    pub(super) fed: Option<tokio::task::JoinHandle<Analyzer>>,
}

/// The analyze checkpoint as stored now, or as jobs written before the baseline moved into the
/// analyze stage stored it (the bare report; the map stage then lists every cluster itself).
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum AnalyzedCheckpoint {
    Current(Analyzed),
    ReportOnly(Analysis),
}

impl From<AnalyzedCheckpoint> for Analyzed {
    fn from(c: AnalyzedCheckpoint) -> Self {
        match c {
            AnalyzedCheckpoint::Current(done) => done,
            AnalyzedCheckpoint::ReportOnly(analysis) => Analyzed {
                analysis,
                clusters: Vec::new(),
                population_size: None,
                weights: None,
                model: RankedModel::NaiveBayes,
                planning: None,
                segments: Vec::new(),
            },
        }
    }
}

/// The checkpoint of one resolve call: enough to merge calls and to resume.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct ResolvedChunk {
    pub(super) requested: u64,
    pub(super) resolved: u64,
    /// Person id and the best `overall_quality_score` seen for them.
    pub(super) persons: Vec<(PersonId, f64)>,
    /// Distinct identifiers matched, by criterion type (`email_sha256`): each group's
    /// resolution (absent in checkpoints written before it was counted).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) matched: BTreeMap<String, u64>,
}

/// The finished resolve stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Resolved {
    pub(super) resolution: Resolution,
    /// Persons at or above the quality bar, in the order they are enriched (jobs resolved
    /// before enrichment overlapped resolve hold them ascending): the customers to enrich.
    pub(super) accepted: Vec<PersonId>,
    /// Every matched person, whatever the quality: excluded from audiences.
    pub(super) all: Vec<PersonId>,
    /// The job's segments and their accepted persons, in name order (absent: a job without
    /// segments, or resolved before they existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) segments: Vec<SegmentMembers>,
}

/// One segment's customers: the accepted persons resolved from its identifiers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SegmentMembers {
    pub(super) name: String,
    /// Identifiers of the segment asked about, and those that matched.
    pub(super) requested: u64,
    pub(super) resolved: u64,
    /// Accepted persons resolved from the segment's identifiers, ascending.
    pub(super) persons: Vec<PersonId>,
}

/// One segment analysed: carried on the analyze checkpoint, through the map stage, into the
/// result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SegmentAnalyzed {
    pub(super) name: String,
    /// The segment's identifiers asked about and matched.
    pub(super) requested: u64,
    pub(super) resolved: u64,
    /// Its accepted persons: the customers analysed.
    pub(super) customers: u64,
    /// Absent when none of its identifiers gave a customer.
    pub(super) analysis: Option<Analysis>,
    /// The clusters of the traits its analysis and audiences show.
    pub(super) clusters: Vec<Cluster>,
    pub(super) planning: Option<AudiencePlanning>,
    pub(super) distinguishing: Vec<DistinguishingTrait>,
}

/// An enrich checkpoint: a batch's profiles (jobs without segments, and every job enriched
/// before segments existed), or, for a job with segments, with the person of each profile, so
/// each segment finds its customers' profiles.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub(super) enum EnrichedPart {
    Profiles(Vec<BTreeMap<String, String>>),
    WithPersons {
        persons: Vec<PersonId>,
        profiles: Vec<BTreeMap<String, String>>,
    },
}

impl EnrichedPart {
    /// The profiles, and their persons when the part names them.
    pub(super) fn into_parts(self) -> (Option<Vec<PersonId>>, Vec<BTreeMap<String, String>>) {
        match self {
            Self::Profiles(profiles) => (None, profiles),
            Self::WithPersons { persons, profiles } => (Some(persons), profiles),
        }
    }
}

/// The finished map stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Mapped {
    pub(super) analysis: Analysis,
    pub(super) clusters: Vec<Cluster>,
    /// The lookalike weights, carried from the analyze stage (absent when the job did not ask
    /// for ranked audiences, and in jobs mapped before they existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) weights: Option<Vec<TraitWeight>>,
    /// The model that fitted `weights` (naive Bayes in jobs analysed before there was a
    /// choice).
    #[serde(default)]
    pub(super) model: RankedModel,
    /// The audiences planned in the analyze stage; absent for jobs analysed before planning
    /// (their audiences come from `Analysis::audiences`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) planning: Option<AudiencePlanning>,
    /// Each segment analysed on its own, from the analyze stage (absent: a job without
    /// segments).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) segments: Vec<SegmentAnalyzed>,
}

/// The finished analyze stage: the report, ranked against the population, and the clusters of
/// every trait it can mention (the baseline it was ranked with, reused by the map stage).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Analyzed {
    pub(super) analysis: Analysis,
    pub(super) clusters: Vec<Cluster>,
    pub(super) population_size: Option<u64>,
    /// The customers' lookalike weights against the same baseline, when the job asked for
    /// ranked audiences (absent in jobs analysed before they existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) weights: Option<Vec<TraitWeight>>,
    /// The model that fitted `weights` (see `Mapped::model`).
    #[serde(default)]
    pub(super) model: RankedModel,
    /// The audiences planned against the population (see `Mapped::planning`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) planning: Option<AudiencePlanning>,
    /// Each segment analysed on its own (absent: a job without segments).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) segments: Vec<SegmentAnalyzed>,
}

impl Run<'_> {
    pub(super) fn store(&self) -> &icp_store::Store {
        &self.ctx.store
    }

    pub(super) async fn enter(&mut self, stage: Stage, total: u64) -> Result<(), StageError> {
        let p = self.progress.stage_mut(stage);
        p.total = total;
        p.done = p.done.min(total);
        p.started_at.get_or_insert_with(OffsetDateTime::now_utc);
        p.finished_at = None;
        let progress = serde_json::to_value(&self.progress).map_err(corrupt)?;
        self.store().set_stage(self.lease, stage, progress).await?;
        Ok(())
    }

    /// Replaces the job's warnings of `codes` with `new` and stores the progress that holds
    /// them.
    pub(super) async fn note_warnings(
        &mut self,
        codes: &[WarningCode],
        new: Vec<Warning>,
    ) -> Result<(), StageError> {
        let before = self.progress.warnings.clone();
        replace_warnings(&mut self.progress.warnings, codes, new);
        if self.progress.warnings != before {
            let progress = serde_json::to_value(&self.progress).map_err(corrupt)?;
            self.store().set_progress(self.lease, progress).await?;
        }
        Ok(())
    }

    /// Marks the stage complete: all done, and when it finished.
    pub(super) async fn finish(&mut self, stage: Stage) -> Result<(), StageError> {
        let p = self.progress.stage_mut(stage);
        p.done = p.total;
        p.finished_at = Some(OffsetDateTime::now_utc());
        let progress = serde_json::to_value(&self.progress).map_err(corrupt)?;
        self.store().set_progress(self.lease, progress).await?;
        Ok(())
    }

    /// The trace ids to keep for a stage's call: every call of the tool the provider logged for
    /// the workflow since the last time (it sees calls no answer reports, such as an export's
    /// own `find_persons`), or else the answer's own id.
    pub(super) fn traces_of(&self, tool: &str, id: Option<&String>) -> Vec<(String, String)> {
        let logged = self
            .workflow_id
            .as_deref()
            .and_then(|w| self.ctx.provider.drain_traces(w, tool));
        match logged {
            Some(entries) => entries,
            None => id
                .map(|id| vec![(tool.to_owned(), id.clone())])
                .unwrap_or_default(),
        }
    }

    /// Keeps the trace ids of a stage's call (see [`Run::traces_of`]).
    pub(super) async fn trace(
        &self,
        stage: Stage,
        tool: &str,
        id: Option<&String>,
    ) -> Result<(), StageError> {
        for (tool, id) in self.traces_of(tool, id) {
            self.store()
                .add_trace(self.lease, stage, &tool, &id)
                .await?;
        }
        Ok(())
    }

    /// Stores part `seq` of a chunked stage with the trace ids of the calls behind it and the
    /// stage's progress at `done`, in one transaction.
    pub(super) async fn save_part(
        &mut self,
        stage: Stage,
        seq: i64,
        payload: &str,
        traces: &[(String, String)],
        done: u64,
    ) -> Result<(), StageError> {
        self.progress.stage_mut(stage).done = done;
        let progress = serde_json::to_value(&self.progress).map_err(corrupt)?;
        let part = Part {
            stage,
            seq,
            payload,
            traces,
            progress: Some(&progress),
        };
        self.store().put_part(self.lease, part).await?;
        Ok(())
    }

    /// Reads every record of the stored export `name` (JSON Lines, chunk by chunk), handing
    /// each record's person id and line to `each`.
    pub(super) async fn read_export(
        &self,
        name: &str,
        each: impl FnMut(PersonId, &str),
    ) -> Result<(), StageError> {
        Ok(crate::export_tally::read_export(self.store(), self.job.id, name, each).await?)
    }

    pub(super) async fn adopt_workflow(
        &mut self,
        workflow_id: Option<&String>,
    ) -> Result<(), StageError> {
        if self.workflow_id.is_none()
            && let Some(id) = workflow_id
        {
            self.store().set_workflow_id(self.lease, id).await?;
            self.workflow_id = Some(id.clone());
        }
        Ok(())
    }

    pub(super) async fn final_checkpoint<T: serde::de::DeserializeOwned>(
        &self,
        stage: Stage,
    ) -> Result<Option<T>, StageError> {
        let parts = self.store().checkpoints(self.job.id, stage).await?;
        match parts.into_iter().find(|(seq, _)| *seq == FINAL) {
            Some((_, body)) => Ok(Some(serde_json::from_str(&body).map_err(corrupt)?)),
            None => Ok(None),
        }
    }

    pub(super) async fn save_final<T: Serialize>(
        &self,
        stage: Stage,
        value: &T,
    ) -> Result<(), StageError> {
        let body = serde_json::to_string(value).map_err(corrupt)?;
        self.store()
            .put_checkpoint(self.lease, stage, FINAL, &body)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checkpoints written before segments existed still read; a segmented job's name persons.
    #[test]
    fn resolve_and_enrich_checkpoints_of_either_shape_read() {
        let old: Resolved = serde_json::from_str(
            r#"{"resolution":{"requested":2,"resolved":1,"rate":0.5,"persons":1,"accepted":1},
                "accepted":[7],"all":[7]}"#,
        )
        .unwrap();
        assert!(old.segments.is_empty());
        let (persons, profiles) = serde_json::from_str::<EnrichedPart>(r#"[{"pet":"dog"}]"#)
            .unwrap()
            .into_parts();
        assert_eq!((persons, profiles[0]["pet"].as_str()), (None, "dog"));
        let (persons, profiles) =
            serde_json::from_str::<EnrichedPart>(r#"{"persons":[7],"profiles":[{"pet":"cat"}]}"#)
                .unwrap()
                .into_parts();
        assert_eq!(persons, Some(vec![PersonId(7)]));
        assert_eq!(profiles[0]["pet"], "cat");
    }

    /// A job resumed after its analysis was stored reads the report's figures back from JSON;
    /// they must come back to the bit, or a resumed job's indexes and scores differ in their
    /// last digit from those of a job that ran whole (a crash test caught 1.4510357077554004
    /// coming back as …006). serde_json parses floats exactly only with `float_roundtrip`.
    #[test]
    fn figures_come_back_from_a_checkpoint_to_the_bit() {
        let mut drifted = Vec::new();
        for count in 1..2000u64 {
            for size in [7u64, 13_083, 15_425, 44_140] {
                let index = (count as f64 / 4200.0) / (size as f64 / 60_000.0);
                let score = (count as f64 / 4200.0) * index.ln();
                for x in [index, score] {
                    let back: f64 =
                        serde_json::from_str(&serde_json::to_string(&x).unwrap()).unwrap();
                    if back.to_bits() != x.to_bits() {
                        drifted.push((x, back));
                    }
                }
            }
        }
        assert!(
            drifted.is_empty(),
            "{} of 15,992 figures changed through JSON, e.g. {:?}",
            drifted.len(),
            &drifted[..drifted.len().min(3)]
        );
    }
}
