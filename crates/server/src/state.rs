//! What every request handler shares.

use std::sync::Arc;

use icp_contract::PopulationProvider;
use icp_store::Store;

use crate::config::ServiceConfig;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub provider: Arc<dyn PopulationProvider>,
    pub config: Arc<ServiceConfig>,
}
