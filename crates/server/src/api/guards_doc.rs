//! The statuses the guards in front of every route answer (`guards.rs`, and the body limits),
//! added to every operation of the assembled document the way `security_doc` adds the key:
//! 408 past the request timeout, 415 for a compressed body, 431 for oversized headers, and 413
//! where a body is read.

use serde_json::Value;

use super::doc_json::{add_response_ref, add_shared_response, operations_mut, problem};

pub fn document(doc: &mut Value) {
    for (name, description) in [
        (
            "RequestTimeout",
            "Not answered within the request timeout, the body's arrival included",
        ),
        (
            "UnsupportedMediaType",
            "The body is compressed (`Content-Encoding`) or of a type not accepted",
        ),
        (
            "HeaderFieldsTooLarge",
            "The request's headers are larger than 32 KiB",
        ),
        (
            "PayloadTooLarge",
            "The body is larger than the service accepts",
        ),
    ] {
        add_shared_response(doc, name, problem(description));
    }
    for (_, _, op) in operations_mut(doc) {
        add_response_ref(op, 408, "RequestTimeout");
        add_response_ref(op, 415, "UnsupportedMediaType");
        add_response_ref(op, 431, "HeaderFieldsTooLarge");
        if op.contains_key("requestBody") {
            add_response_ref(op, 413, "PayloadTooLarge");
        }
    }
}
