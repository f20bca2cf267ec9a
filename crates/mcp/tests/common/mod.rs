//! Shared set-up: a synthetic population served behind the fault layer, and a client to it.
#![allow(dead_code)] // each test binary uses a different part of it

use std::sync::Arc;
use std::time::Duration;

use icp_contract::{AudienceRecord, FindPersonsRequest, PopulationProvider};
use icp_mcp::faults::{FaultConfig, FaultyUpstream, FaultyUpstreamHandle};
use icp_mcp::testkit::SyntheticPopulation;
use icp_mcp::{Secret, WattConfig, WattProvider};

pub const KEY: &str = "sk-test-4f1d9c2b7a";

pub struct Upstream {
    pub direct: Arc<SyntheticPopulation>,
    pub client: WattProvider,
    pub handle: FaultyUpstreamHandle,
    pub cfg: WattConfig,
}

/// Patient enough for a loaded 2-core machine, quick enough that a hang costs little.
pub fn client_config(url: String) -> WattConfig {
    let mut cfg = WattConfig::new(url, Secret::new(KEY));
    cfg.timeout = Duration::from_secs(3);
    cfg.backoff_base = Duration::from_millis(10);
    cfg.backoff_cap = Duration::from_millis(100);
    cfg.max_retries = 8;
    cfg.concurrency = 4;
    cfg
}

/// `provider` served behind the fault layer, with [`KEY`] required, and a client connected to
/// it: the client, the fault layer's handle and the client's configuration.
pub async fn serve(
    provider: Arc<dyn PopulationProvider>,
    mut faults: FaultConfig,
) -> (WattProvider, FaultyUpstreamHandle, WattConfig) {
    faults.serve.api_key = Some(Secret::new(KEY));
    let (addr, handle) = FaultyUpstream::start(provider, faults).await.unwrap();
    let cfg = client_config(format!("http://{addr}/mcp"));
    let client = WattProvider::connect(cfg.clone()).await.unwrap();
    (client, handle, cfg)
}

/// A synthetic population of `persons` served as [`serve`] does.
pub async fn start(persons: u64, faults: FaultConfig) -> Upstream {
    let direct = Arc::new(SyntheticPopulation::new(persons));
    let (client, handle, cfg) = serve(direct.clone(), faults).await;
    Upstream {
        direct,
        client,
        handle,
        cfg,
    }
}

/// The whole audience `find` selects, as `provider` exports it.
pub async fn audience(
    provider: &dyn PopulationProvider,
    find: FindPersonsRequest,
) -> Vec<AudienceRecord> {
    provider
        .export_persons(find)
        .await
        .unwrap()
        .parsed_records()
        .await
        .unwrap()
}

/// Drops the per-call fields that legitimately differ between two runs of the same request.
pub fn normalized<T: serde::Serialize>(v: &T) -> serde_json::Value {
    let mut v = serde_json::to_value(v).unwrap();
    if let Some(o) = v.as_object_mut() {
        o.remove("tool_trace_id");
        o.remove("workflow_id");
    }
    v
}
