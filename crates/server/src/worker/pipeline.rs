//! The six stages of a job. Each stage checkpoints what it produced, so a job picked up again
//! after a crash resumes where it stopped instead of redoing finished work.

use std::time::Instant;

use tracing::Instrument;

use icp_store::{JobRecord, Lease};

use super::checkpoint::Run;
use super::context::WorkerContext;
use super::error::{StageError, corrupt};
use crate::diagnostics::{analysis_warnings, replace_warnings};
use crate::model::{JobResult, SegmentResult};
use crate::options::JobOptions;
use crate::warning::WarningCode;
use icp_analysis::{AudienceNote, AudienceNoteCode};
use icp_contract::Cluster;

pub async fn run(
    ctx: &WorkerContext,
    job: &JobRecord,
    lease: &Lease,
    _stop: &tokio_util::sync::CancellationToken,
) -> Result<serde_json::Value, StageError> {
    let options: JobOptions = serde_json::from_value(job.options.clone()).map_err(corrupt)?;
    let mut run = Run {
        ctx,
        job,
        lease,
        options,
        progress: serde_json::from_value(job.progress.clone()).unwrap_or_default(),
        workflow_id: job.workflow_id.clone(),
        fed: None,
    };
    // A span per stage, under the worker's span of the job: every line a stage logs carries
    // the job id, the attempt, the stage and (once resolve has opened it) the workflow id.
    let span = |stage: &'static str, workflow_id: &Option<String>| {
        tracing::info_span!(
            "stage",
            stage,
            workflow_id = workflow_id.as_deref().unwrap_or("")
        )
    };
    let done = |span: &tracing::Span, stage: &'static str, started: Instant| {
        let took = started.elapsed();
        ctx.metrics.observe_stage(stage, took);
        span.in_scope(|| tracing::info!(ms = took.as_millis() as u64, "stage done"));
    };
    let (started, stage) = (Instant::now(), span("resolve_enrich", &job.workflow_id));
    let resolved = run.resolve_and_enrich().instrument(stage.clone()).await?;
    done(&stage, "resolve_enrich", started);
    let (started, stage) = (Instant::now(), span("analyze", &run.workflow_id));
    let analyzed = run.analyze(&resolved).instrument(stage.clone()).await?;
    done(&stage, "analyze", started);
    let (started, stage) = (Instant::now(), span("map", &run.workflow_id));
    let mapped = run.map(analyzed).instrument(stage.clone()).await?;
    run.note_warnings(&WarningCode::ANALYSIS, analysis_warnings(&mapped.analysis))
        .await?;
    done(&stage, "map", started);
    let (started, stage) = (Instant::now(), span("find", &run.workflow_id));
    let (mut audiences, (mut segment_audiences, mut combined_audience), mut ranked) = async {
        let ahead = run.rank_ahead(&mapped, &resolved).await?;
        let audiences = run.find(&mapped, &resolved).await?;
        let segments = run.find_segments(&mapped, &resolved).await?;
        let ranked = run.ranked(&mapped, &resolved, &audiences, ahead).await?;
        let diagnosed = run.diagnose_audiences(&mapped, &audiences).await?;
        replace_warnings(
            &mut run.progress.warnings,
            &WarningCode::AUDIENCES,
            diagnosed,
        );
        run.finish(icp_store::Stage::Find).await?;
        Ok::<_, StageError>((audiences, segments, ranked))
    }
    .instrument(stage.clone())
    .await?;
    done(&stage, "find", started);
    if run.options.validate {
        let (started, stage) = (Instant::now(), span("validate", &run.workflow_id));
        let found = super::validate::Found {
            audiences: &mut audiences,
            ranked: &mut ranked,
            segments: &mut segment_audiences,
            combined: &mut combined_audience,
        };
        run.validate(&mapped, found)
            .instrument(stage.clone())
            .await?;
        done(&stage, "validate", started);
    }
    let mut audience_notes = mapped.planning.map(|p| p.notes).unwrap_or_default();
    audience_notes.extend(unknown_exclusions(&run.options, &mapped.clusters));
    let mut segment_audiences = segment_audiences.into_iter();
    let segments = mapped
        .segments
        .into_iter()
        .map(|s| SegmentResult {
            name: s.name,
            requested: s.requested,
            resolved: s.resolved,
            customers: s.customers,
            analysis: s.analysis,
            distinguishing_traits: s.distinguishing,
            clusters: s.clusters,
            audiences: segment_audiences.next().unwrap_or_default(),
            audience_notes: s.planning.map(|p| p.notes).unwrap_or_default(),
        })
        .collect();
    let result = JobResult {
        job_id: job.id,
        workflow_id: run.workflow_id.clone(),
        resolution: resolved.resolution,
        analysis: mapped.analysis,
        clusters: mapped.clusters,
        audiences,
        ranked,
        custom_audiences: Vec::new(),
        audience_notes,
        segments,
        combined_audience,
        warnings: run.progress.warnings.clone(),
    };
    serde_json::to_value(result).map_err(corrupt)
}

/// A note for each exclusion whose trait has no cluster: it was left out of every expression.
fn unknown_exclusions(options: &JobOptions, clusters: &[Cluster]) -> Vec<AudienceNote> {
    options
        .exclusion_items()
        .into_iter()
        .filter(|i| {
            !clusters
                .iter()
                .any(|c| c.name == i.name && c.value == i.value)
        })
        .map(|i| AudienceNote {
            strategy: None,
            code: AudienceNoteCode::ExclusionUnknown,
            message: format!(
                "The exclusion {}={} names no trait the provider knows: it was left out.",
                i.name, i.value
            ),
        })
        .collect()
}
