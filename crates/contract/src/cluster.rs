use serde::{Deserialize, Serialize};

/// The most clusters one `list_clusters` page may hold.
pub const MAX_CLUSTERS_PER_PAGE: u64 = 10_000;

/// One `name = value` in the population, with its size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
// Named apart from the analysis's `Cluster` (a set of traits): one name for both made every
// reference to this one in the spec point at that one.
#[schema(as = PopulationCluster)]
pub struct Cluster {
    /// The provider's id; may change across rebuilds, so never cache it for long.
    pub cluster_id: String,
    /// 32 lower-case hex digits; stable across rebuilds.
    pub cluster_hash: String,
    pub name: String,
    pub value: String,
    pub size: u64,
    pub domain: String,
    /// `size / population size`, where the provider knows its population size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prevalence: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ListClustersRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_names: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_hashes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domains: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ListClustersResponse {
    pub clusters: Vec<Cluster>,
    pub total: u64,
    pub returned: u64,
    #[serde(default)]
    pub has_more: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u64>,
    /// The population size, where the provider tells it (the embedded one does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_trace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
}

/// Look one cluster up by id or by hash (exactly one of them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GetClusterRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GetClusterResponse {
    pub cluster: Cluster,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_trace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
}
