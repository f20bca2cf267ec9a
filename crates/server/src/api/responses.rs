//! The statuses each route's handler can answer besides those its own annotation lists: 400
//! for a path or body that cannot be read, 503 while the database is out of reach. Every
//! operation must be in `ROUTES`, so a new route cannot go undescribed.

use serde_json::{Value, json};

use super::doc_json::{add_response_ref, add_shared_response, operations_mut, problem};
use crate::problem::UNAVAILABLE_RETRY_AFTER_SECS;

const BAD_REQUEST: &str = "BadRequest";
const UNAVAILABLE: &str = "ServiceUnavailable";

/// `(path, method, statuses)`: 400 where a path parameter or a body is read (a path that is
/// not UTF-8 once decoded, a body broken on the wire), 503 where the database is asked.
const ROUTES: &[(&str, &str, &[u16])] = &[
    ("/v1/jobs", "post", &[400, 503]),
    ("/v1/jobs", "get", &[503]),
    ("/v1/jobs/{id}", "get", &[400, 503]),
    ("/v1/jobs/{id}", "delete", &[400, 503]),
    ("/v1/jobs/{id}/cancel", "post", &[400, 503]),
    ("/v1/jobs/{id}/result", "get", &[400, 503]),
    ("/v1/jobs/{id}/events", "get", &[400, 503]),
    ("/v1/jobs/{id}/report", "get", &[400, 503]),
    ("/v1/jobs/{id}/feedback", "post", &[400, 503]),
    ("/v1/jobs/{id}/deliveries", "get", &[400, 503]),
    (
        "/v1/jobs/{id}/audiences/{strategy}/export",
        "get",
        &[400, 503],
    ),
    ("/v1/clusters", "get", &[503]),
    ("/v1/jobs/{id}/audiences", "post", &[400, 503]),
    ("/readyz", "get", &[503]),
    ("/healthz", "get", &[]),
    ("/metrics", "get", &[503]),
];

pub fn document(doc: &mut Value) {
    add_shared_response(
        doc,
        BAD_REQUEST,
        problem("The path or the body could not be read"),
    );
    let mut unavailable = problem("The database is out of reach for the moment; try again");
    unavailable["headers"] = json!({"Retry-After": {
        "description": format!("Seconds to wait ({UNAVAILABLE_RETRY_AFTER_SECS})"),
        "schema": {"type": "integer"},
    }});
    add_shared_response(doc, UNAVAILABLE, unavailable);
    for (path, method, op) in operations_mut(doc) {
        let (_, _, statuses) = ROUTES
            .iter()
            .find(|(p, m, _)| *p == path && *m == method)
            .unwrap_or_else(|| panic!("{method} {path} is missing from api::responses::ROUTES"));
        for &status in *statuses {
            let name = if status == 400 {
                BAD_REQUEST
            } else {
                UNAVAILABLE
            };
            add_response_ref(op, status, name);
        }
    }
}
