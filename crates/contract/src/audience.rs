use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{ExportFormat, ExportRef, IdType, PersonId};

/// The most records a `find_persons` sample holds.
pub const MAX_SAMPLE: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DistanceUnit {
    Miles,
    Km,
}

/// A circle on the earth; persons whose address lies inside it (great-circle distance).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
// Unknown fields are refused: a misspelt `units` must not quietly mean miles.
#[serde(deny_unknown_fields)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    pub radius: f64,
    #[serde(default = "default_unit")]
    pub unit: DistanceUnit,
}

fn default_unit() -> DistanceUnit {
    DistanceUnit::Miles
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FindPersonsRequest {
    /// Cluster ids or hashes joined by `AND`, `OR`, `AND NOT` and parentheses.
    pub expression: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier_type: Option<IdType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience_limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ExportFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
}

/// One person of an audience with the contact data `identifier_type` asked for:
/// `{"person_id": 1, "identifiers": {"email": {"email1": "…", "email2": "…"}}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AudienceRecord {
    pub person_id: PersonId,
    #[serde(default)]
    pub identifiers: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FindPersonsResponse {
    pub total: u64,
    #[serde(default)]
    pub sample: Vec<AudienceRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_trace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FeedbackRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_trace_ids: Vec<String>,
    /// 1 (poor) to 5 (excellent), where the caller rates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<u8>,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FeedbackResponse {
    #[serde(default)]
    pub accepted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_trace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
}
