//! `tools/list`: the six tools with their input schemas, in the upstream's V1 names and shapes.

use serde_json::{Value, json};

/// The tools this server answers, by their upstream V1 names.
pub const TOOL_NAMES: [&str; 6] = [
    "resolve_identities",
    "get_person",
    "list_clusters",
    "get_cluster",
    "find_persons",
    "submit_feedback",
];

fn format_schema() -> Value {
    json!({"type": "string", "enum": ["none", "csv", "json", "jsonl"]})
}

fn strings() -> Value {
    json!({"type": "array", "items": {"type": "string"}})
}

pub(crate) fn tools() -> Value {
    let workflow = json!({"type": "string", "description": "Pass the first call's workflow_id through the whole workflow."});
    json!([
        {
            "name": "resolve_identities",
            "description": "Resolve emails, phones, addresses or mobile ad ids (plaintext or hashed) to person ids. At most 50 groups and 3,000 values per group a call; addresses in calls of their own.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "multi_identifiers": {
                        "type": "array",
                        "maxItems": 50,
                        "items": {
                            "type": "object",
                            "properties": {
                                "id_type": {"type": "string", "enum": ["email", "phone", "address", "maid"]},
                                "hash_type": {"type": "string", "enum": ["plaintext", "md5", "sha1", "sha256"]},
                                "values": {"type": "array", "maxItems": 3000, "items": {"type": "string"}}
                            },
                            "required": ["id_type", "hash_type", "values"]
                        }
                    },
                    "format": format_schema(),
                    "workflow_id": workflow
                },
                "required": ["multi_identifiers"]
            }
        },
        {
            "name": "get_person",
            "description": "Profiles of up to 1000 persons as flat attribute = value maps, optionally restricted to some domains.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "person_ids": {"type": "array", "maxItems": 1000, "items": {"type": ["integer", "string"]}},
                    "domains": {"type": "array", "items": {"type": "string", "enum": icp_contract::DOMAINS}},
                    "format": format_schema(),
                    "workflow_id": workflow
                },
                "required": ["person_ids"]
            }
        },
        {
            "name": "list_clusters",
            "description": "Clusters (one attribute = value each, with id, 32-hex hash, size and domain), filtered and paginated.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "cluster_names": strings(),
                    "cluster_ids": strings(),
                    "cluster_hashes": strings(),
                    "domains": strings(),
                    "limit": {"type": "integer", "minimum": 1, "maximum": icp_contract::MAX_CLUSTERS_PER_PAGE},
                    "offset": {"type": "integer", "minimum": 0},
                    "workflow_id": workflow
                }
            }
        },
        {
            "name": "get_cluster",
            "description": "One cluster by cluster_id or cluster_hash (exactly one of them).",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "cluster_id": {"type": "string"},
                    "cluster_hash": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                    "workflow_id": workflow
                }
            }
        },
        {
            "name": "find_persons",
            "description": "Persons matching a boolean expression over cluster ids or hashes (AND, OR, AND NOT, parentheses): the total, up to 10 sample records, and a download URL when a format is asked for.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "expression": {"type": "string"},
                    "identifier_type": {"type": "string", "enum": ["email", "phone", "address"]},
                    "location": {
                        "type": "object",
                        "properties": {
                            "latitude": {"type": "number"},
                            "longitude": {"type": "number"},
                            "radius": {"type": "number", "exclusiveMinimum": 0},
                            "unit": {"type": "string", "enum": ["miles", "km"]}
                        },
                        "required": ["latitude", "longitude", "radius"]
                    },
                    "audience_limit": {"type": "integer", "minimum": 0},
                    "format": format_schema(),
                    "workflow_id": workflow
                },
                "required": ["expression"]
            }
        },
        {
            "name": "submit_feedback",
            "description": "Report a data-quality issue or rate a workflow, citing its tool_trace_ids.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "workflow_id": workflow,
                    "tool_trace_ids": strings(),
                    "rating": {"type": "integer", "minimum": 1, "maximum": 5},
                    "message": {"type": "string"}
                },
                "required": ["message"]
            }
        }
    ])
}
