//! What every request handler shares.

use std::sync::Arc;

use icp_contract::PopulationProvider;
use icp_store::Store;

use crate::auth::Auth;
use crate::callback::TargetPolicy;
use crate::config::ServiceConfig;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub provider: Arc<dyn PopulationProvider>,
    pub config: Arc<ServiceConfig>,
    pub auth: Arc<Auth>,
    /// Wakes an idle worker of this process when a job is created, rather than leaving the job
    /// to the next poll (workers of other processes still find it by polling).
    pub wake_workers: Arc<tokio::sync::Notify>,
    pub metrics: Arc<Metrics>,
    /// One permit per open event stream (`ServiceConfig::max_event_streams`).
    pub event_streams: Arc<tokio::sync::Semaphore>,
    /// Cancelled when the service stops: open event streams end, so the server can.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Where a job's `callback_url` may point (checked when the job is posted).
    pub targets: Arc<TargetPolicy>,
}
