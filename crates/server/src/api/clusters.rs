//! `GET /v1/clusters`: the population's traits of one attribute with their sizes, through the
//! provider's `list_clusters` (one page, or the one value asked for), so a user can write a
//! custom audience's expression (`POST /v1/jobs/{id}/audiences`) or an exclusion.

use axum::Json;
use axum::extract::{RawQuery, State};
use icp_contract::{Cluster, ListClustersRequest, MAX_CLUSTERS_PER_PAGE};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::Caller;
use crate::decode::parse_query;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// The most clusters one answer holds.
pub const MAX_CLUSTER_LOOKUP: u64 = 500;
/// The longest attribute name or value looked up.
pub const MAX_TRAIT_LEN: usize = 200;
/// The most pages of an attribute read to find one value.
const MAX_PAGES_FOR_VALUE: usize = 20;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(lookup_clusters))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ClustersQuery {
    /// The attribute, e.g. `homeowner_status`.
    #[param(min_length = 1, max_length = 200, example = "homeowner_status")]
    name: String,
    /// Only this value of it (exact).
    #[param(min_length = 1, max_length = 200, example = "yes")]
    value: Option<String>,
    /// The most clusters answered (1–500, default 100); ignored with `value`.
    #[param(minimum = 1, maximum = 500)]
    #[serde(default, deserialize_with = "crate::decode::optional_query_whole")]
    limit: Option<u64>,
    /// Where the page starts (`next_offset` of the previous answer); ignored with `value`.
    #[param(minimum = 0)]
    #[serde(default, deserialize_with = "crate::decode::optional_query_whole")]
    offset: Option<u64>,
}

/// The traits of one attribute in the population.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterLookup {
    pub name: String,
    /// Each `name = value` with its cluster and its size (persons).
    pub clusters: Vec<Cluster>,
    /// Persons in the population, when the provider says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub population_size: Option<u64>,
    /// Whether more values follow (ask again from `next_offset`).
    pub has_more: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u64>,
}

/// Look up the traits of an attribute, with their sizes.
///
/// The values of the attribute `name` in the provider's population, each with its cluster
/// (the `cluster_hash` an expression sent upstream names) and its size, a page at a time; with
/// `value`, only that value (empty when the population has none).
#[utoipa::path(
    get,
    path = "/v1/clusters",
    tag = "audiences",
    params(ClustersQuery),
    responses(
        (status = 200, description = "The attribute's traits", body = ClusterLookup,
            example = json!({"name": "homeowner_status", "clusters": [{"cluster_id": "1000000027",
                "cluster_hash": "c66abc534ff0343376455cbdf0d91cdc", "name": "homeowner_status",
                "value": "Homeowner", "size": 638560, "domain": "household", "prevalence": 0.63856}],
                "population_size": 1000000, "has_more": false})),
        (status = 422, description = "A query parameter is missing or out of bounds", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider failed", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn lookup_clusters(
    State(state): State<AppState>,
    _caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<ClusterLookup>, ApiError> {
    let q: ClustersQuery = parse_query(query.as_deref())?;
    let text = |field: &str, s: &str| {
        if s.trim().is_empty() || s.len() > MAX_TRAIT_LEN {
            Err(ApiError::validation(
                format!("query.{field}"),
                format!("must be 1 to {MAX_TRAIT_LEN} characters, not blank"),
            ))
        } else {
            Ok(())
        }
    };
    text("name", &q.name)?;
    if let Some(v) = &q.value {
        text("value", v)?;
    }
    if let Some(limit) = q.limit
        && !(1..=MAX_CLUSTER_LOOKUP).contains(&limit)
    {
        return Err(ApiError::validation(
            "query.limit",
            format!("must be between 1 and {MAX_CLUSTER_LOOKUP}"),
        ));
    }
    let page = |offset: u64, limit: u64| ListClustersRequest {
        cluster_names: Some(vec![q.name.clone()]),
        limit: Some(limit),
        offset: Some(offset),
        ..ListClustersRequest::default()
    };
    let upstream =
        |e: icp_contract::ProviderError| ApiError::Upstream(format!("list_clusters: {}", e.kind()));
    let Some(value) = &q.value else {
        let offset = q.offset.unwrap_or(0);
        let answer = state
            .provider
            .list_clusters(page(offset, q.limit.unwrap_or(100)))
            .await
            .map_err(upstream)?;
        return Ok(Json(ClusterLookup {
            name: q.name,
            has_more: answer.has_more,
            next_offset: answer
                .next_offset
                .filter(|_| answer.has_more)
                .or_else(|| answer.has_more.then_some(offset + answer.returned)),
            population_size: answer.population_size,
            clusters: answer.clusters,
        }));
    };
    // One value: the attribute's pages read until it is found (bounded).
    let (mut offset, mut population_size) = (0, None);
    for _ in 0..MAX_PAGES_FOR_VALUE {
        let answer = state
            .provider
            .list_clusters(page(offset, MAX_CLUSTERS_PER_PAGE))
            .await
            .map_err(upstream)?;
        population_size = population_size.or(answer.population_size);
        let found: Vec<Cluster> = answer
            .clusters
            .iter()
            .filter(|c| c.value == *value)
            .cloned()
            .collect();
        let next = answer
            .next_offset
            .unwrap_or(offset + answer.clusters.len() as u64);
        if !found.is_empty() || !answer.has_more || next <= offset {
            return Ok(Json(ClusterLookup {
                name: q.name,
                clusters: found,
                population_size,
                has_more: false,
                next_offset: None,
            }));
        }
        offset = next;
    }
    Ok(Json(ClusterLookup {
        name: q.name,
        clusters: Vec::new(),
        population_size,
        has_more: false,
        next_offset: None,
    }))
}
