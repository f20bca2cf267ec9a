//! The bounds of the JSON bodies, stated in their schemas: what `JobOptions::validate`,
//! `input::check` and the feedback handler check, beyond what the derived schemas say.

use icp_contract::{DOMAINS, IdType};
use serde_json::{Value, json};

use super::doc_json::{property_mut, schema_mut, set};
use super::identifier_schema::{not_blank_pattern, space_class, usable_group_schema};
use super::jobs::MAX_FEEDBACK_LEN;
use crate::config::DEFAULT_MAX_IDENTIFIERS;
use crate::input::{MAX_SEGMENTS, SEGMENT_NAME_PATTERN};
use crate::options::{AUDIENCE_ID_TYPES, MAX_AUDIENCE_LIMIT, MAX_EXCLUSIONS, MAX_RADIUS};

pub fn document(doc: &mut Value) {
    let request = schema_mut(doc, "CreateJobRequest");
    set(
        property_mut(request, "multi_identifiers"),
        json!({
            "minItems": 1,
            "contains": usable_group_schema(),
            "description": "Customer identifiers, grouped by type and hashing, as `resolve_identities` \
                takes them. A value with no normal form is left out (the job's `normalization` counts \
                it); a request is refused when no value of any group has one. At most \
                `max_identifiers` (1,000,000 by default) values in all, segments included. With \
                `segments`, the customers in no segment (then optional).",
        }),
    );
    set(
        request,
        json!({"anyOf": [{"required": ["multi_identifiers"]}, {"required": ["segments"]}]}),
    );
    set(
        property_mut(request, "segments"),
        json!({
            "minProperties": 1,
            "maxProperties": MAX_SEGMENTS,
            "propertyNames": {"pattern": SEGMENT_NAME_PATTERN},
        }),
    );
    let segment = schema_mut(doc, "SegmentRequest");
    set(
        property_mut(segment, "multi_identifiers"),
        json!({"minItems": 1, "contains": usable_group_schema()}),
    );

    let group = schema_mut(doc, "IdentifierGroup");
    set(
        property_mut(group, "values"),
        json!({"minItems": 1, "maxItems": DEFAULT_MAX_IDENTIFIERS}),
    );
    // Addresses are matched in plaintext only.
    set(
        group,
        json!({"not": {
            "required": ["id_type", "hash_type"],
            "properties": {
                "id_type": {"const": IdType::Address.as_str()},
                "hash_type": {"enum": ["md5", "sha1", "sha256"]},
            },
        }}),
    );

    let options = schema_mut(doc, "JobOptions");
    set(
        property_mut(options, "min_support"),
        json!({"exclusiveMinimum": 0, "maximum": 1}),
    );
    if let Some(o) = property_mut(options, "min_support").as_object_mut() {
        o.remove("minimum");
    }
    set(
        property_mut(options, "audience_limit"),
        json!({"minimum": 1, "maximum": MAX_AUDIENCE_LIMIT}),
    );
    set(
        property_mut(options, "domains"),
        json!({"minItems": 1, "items": {"type": "string", "enum": DOMAINS}}),
    );
    set(
        property_mut(options, "strategies"),
        json!({"minItems": 1, "uniqueItems": true}),
    );
    let identifier_type = property_mut(options, "identifier_type");
    let description = identifier_type["description"].clone();
    *identifier_type = json!({
        "type": "string",
        "enum": AUDIENCE_ID_TYPES.map(IdType::as_str),
        "default": "email",
        "description": description,
    });

    set(
        property_mut(options, "exclude"),
        json!({"maxItems": MAX_EXCLUSIONS, "items": {"type": "string", "pattern": trait_pattern()}}),
    );

    let mut callback_url = super::query_options::callback_url_schema();
    callback_url.as_object_mut().map(|o| o.remove("type"));
    set(property_mut(options, "callback_url"), callback_url);

    let location = schema_mut(doc, "Location");
    set(
        property_mut(location, "latitude"),
        json!({"minimum": -90, "maximum": 90}),
    );
    set(
        property_mut(location, "longitude"),
        json!({"minimum": -180, "maximum": 180}),
    );
    set(
        property_mut(location, "radius"),
        json!({"exclusiveMinimum": 0, "maximum": MAX_RADIUS,
               "description": "In `unit`; at most 20,040 (half the earth's circumference in km)."}),
    );

    let feedback = schema_mut(doc, "JobFeedback");
    set(
        property_mut(feedback, "message"),
        json!({"minLength": 1, "maxLength": MAX_FEEDBACK_LEN, "pattern": not_blank_pattern()}),
    );
    set(
        property_mut(feedback, "rating"),
        json!({"minimum": 1, "maximum": 5}),
    );
}

/// An `attribute=value` trait (`options::parse_trait`): something but white space either side
/// of the first `=`.
pub fn trait_pattern() -> String {
    let class = space_class();
    let space = &class[1..class.len() - 1];
    format!("^[^=]*[^={space}][^=]*=[^\\x00]*[^{space}\\x00][^\\x00]*$")
}
