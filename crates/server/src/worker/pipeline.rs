//! The five stages of a job. Each stage checkpoints what it produced, so a job picked up again
//! after a crash resumes where it stopped instead of redoing finished work.

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
    let resolved = run.resolve_and_enrich().await?;
    let analyzed = run.analyze().await?;
    let mapped = run.map(analyzed).await?;
    let audiences = run.find(&mapped, &resolved).await?;
    let audience_notes = mapped.planning.map(|p| p.notes).unwrap_or_default();
    let result = JobResult {
        job_id: job.id,
        workflow_id: run.workflow_id.clone(),
        resolution: resolved.resolution,
        analysis: mapped.analysis,
        clusters: mapped.clusters,
        audiences,
        audience_notes,
    };
    serde_json::to_value(result).map_err(corrupt)
}
