use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{ExportFormat, PersonId, person_id_as_string};

/// The most person ids one `get_person` call may carry.
pub const MAX_PERSON_IDS_PER_CALL: usize = 1000;

/// The domains `get_person` knows, in the upstream's spelling.
pub const DOMAINS: [&str; 18] = [
    "address",
    "affinity",
    "content",
    "demographic",
    "email",
    "employment",
    "financial",
    "household",
    "id",
    "intent_category",
    "intent_topic",
    "interest",
    "lifestyle",
    "maid",
    "name",
    "phone",
    "political",
    "purchase",
];

/// Domains that hold contact and identity data rather than traits.
pub const CONTACT_DOMAINS: [&str; 6] = ["address", "email", "id", "maid", "name", "phone"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GetPersonRequest {
    pub person_ids: Vec<PersonId>,
    /// Restrict the answer to these domains; all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domains: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ExportFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProfileMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality_score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

/// One enriched person: a flat `attribute → value` map, contact fields numbered (`email1`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Profile {
    #[serde(serialize_with = "person_id_as_string")]
    #[schema(value_type = String)]
    pub person_id: PersonId,
    #[serde(default)]
    pub metadata: ProfileMetadata,
    #[serde(default)]
    pub domains: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GetPersonResponse {
    pub profiles: Vec<Profile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_trace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
}
