//! OpenAPI links from the job `POST /v1/jobs` answers to every operation on that job, so that a
//! client (or a fuzzer's stateful phase) can follow a new job through its life.

use icp_analysis::Strategy;
use serde_json::{Value, json};

use super::doc_json::operation_mut;

/// `(link name, operationId)` of each operation on one job.
const JOB_OPERATIONS: &[(&str, &str)] = &[
    ("GetJob", "get_job"),
    ("JobResult", "job_result"),
    ("CancelJob", "cancel_job"),
    ("DeleteJob", "delete_job"),
    ("JobFeedback", "job_feedback"),
];

pub fn document(doc: &mut Value) {
    let mut links = serde_json::Map::new();
    for (name, operation_id) in JOB_OPERATIONS {
        links.insert(
            (*name).to_owned(),
            json!({"operationId": operation_id, "parameters": {"id": "$response.body#/id"}}),
        );
    }
    for strategy in Strategy::ALL.map(Strategy::name) {
        let mut name = String::from("Export");
        name.push_str(&strategy[..1].to_ascii_uppercase());
        name.push_str(&strategy[1..]);
        links.insert(
            name,
            json!({"operationId": "export_audience",
                   "parameters": {"id": "$response.body#/id", "strategy": strategy}}),
        );
    }
    let create = operation_mut(doc, "/v1/jobs", "post");
    let accepted = &mut create["responses"]["202"];
    assert!(accepted.is_object(), "POST /v1/jobs describes its 202");
    accepted["links"] = Value::Object(links);
}
