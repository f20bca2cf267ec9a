//! The five stages of a job. Each stage checkpoints what it produced, so a job picked up again
//! after a crash resumes where it stopped instead of redoing finished work.

use std::time::Instant;

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
    let metrics = ctx.metrics.clone();
    let timed =
        |stage: &'static str, started: Instant| metrics.observe_stage(stage, started.elapsed());
    let started = Instant::now();
    let resolved = run.resolve_and_enrich().await?;
    timed("resolve_enrich", started);
    let started = Instant::now();
    let analyzed = run.analyze().await?;
    timed("analyze", started);
    let started = Instant::now();
    let mapped = run.map(analyzed).await?;
    timed("map", started);
    let started = Instant::now();
    let audiences = run.find(&mapped, &resolved).await?;
    let ranked = run.ranked(&mapped, &resolved, &audiences).await?;
    run.finish(icp_store::Stage::Find).await?;
    timed("find", started);
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
