//! The six stages of a job. Each stage checkpoints what it produced, so a job picked up again
//! after a crash resumes where it stopped instead of redoing finished work.

use std::time::Instant;

use tracing::Instrument;

use icp_store::{JobRecord, Lease};

use super::checkpoint::Run;
use super::context::WorkerContext;
use super::error::{StageError, corrupt};
use crate::model::JobResult;
use crate::options::JobOptions;

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
    done(&stage, "map", started);
    let (started, stage) = (Instant::now(), span("find", &run.workflow_id));
    let (mut audiences, mut ranked) = async {
        let audiences = run.find(&mapped, &resolved).await?;
        let ranked = run.ranked(&mapped, &resolved, &audiences).await?;
        run.finish(icp_store::Stage::Find).await?;
        Ok::<_, StageError>((audiences, ranked))
    }
    .instrument(stage.clone())
    .await?;
    done(&stage, "find", started);
    if run.options.validate {
        let (started, stage) = (Instant::now(), span("validate", &run.workflow_id));
        run.validate(&mapped, &mut audiences, &mut ranked)
            .instrument(stage.clone())
            .await?;
        done(&stage, "validate", started);
    }
    let audience_notes = mapped.planning.map(|p| p.notes).unwrap_or_default();
    let result = JobResult {
        job_id: job.id,
        workflow_id: run.workflow_id.clone(),
        resolution: resolved.resolution,
        analysis: mapped.analysis,
        clusters: mapped.clusters,
        audiences,
        ranked,
        audience_notes,
    };
    serde_json::to_value(result).map_err(corrupt)
}
