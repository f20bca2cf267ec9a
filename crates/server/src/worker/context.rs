//! What every worker of a process shares.

use std::sync::Arc;

use icp_contract::PopulationProvider;
use icp_store::Store;

use super::cluster_cache::ClusterCache;
use crate::config::WorkerConfig;
use crate::metrics::Metrics;

/// Everything a worker needs, shared by all workers of a process.
#[derive(Clone)]
pub struct WorkerContext {
    pub store: Store,
    pub provider: Arc<dyn PopulationProvider>,
    pub config: WorkerConfig,
    /// Notified when this process creates a job: an idle worker claims it at once.
    pub wake: Arc<tokio::sync::Notify>,
    /// The clusters jobs listed, kept a short while for the next jobs.
    pub clusters: Arc<ClusterCache>,
    pub metrics: Arc<Metrics>,
}
