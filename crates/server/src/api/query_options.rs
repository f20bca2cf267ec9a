//! The bounds of every query parameter and header a handler checks, stated in the spec: the
//! page size and token of `GET /v1/jobs`, a CSV upload's options (the same bounds as
//! `JobOptions::validate`), an export's format, the `Idempotency-Key`, the `Last-Event-ID`
//! and the job id.
//!
//! Two rules of `POST /v1/jobs` span parameters and no OpenAPI parameter can state them: a
//! location needs `latitude`, `longitude` and `radius` together, and query parameters go with a
//! CSV body only. Their descriptions say so.

use icp_analysis::Strategy;
use icp_contract::{DOMAINS, DistanceUnit, IdType};
use serde_json::{Value, json};

use super::doc_json::{operation_mut, set, set_param_schema};
use super::events::LAST_EVENT_ID_PATTERN;
use super::identifier_schema::space_class;
use super::jobs::{MAX_IDEMPOTENCY_KEY_LEN, MAX_PAGE_SIZE, PAGE_TOKEN_LEN, PAGE_TOKEN_PATTERN};
use super::path_params::audience_name_pattern;
use crate::callback::{CALLBACK_URL_PATTERN, MAX_CALLBACK_URL_LEN};
use crate::model::strategy_name;
use crate::options::{AUDIENCE_ID_TYPES, MAX_AUDIENCE_LIMIT, MAX_RADIUS};

pub fn document(doc: &mut Value) {
    let list = operation_mut(doc, "/v1/jobs", "get");
    set_param_schema(
        list,
        "page_size",
        json!({"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": 20}),
    );
    set_param_schema(
        list,
        "page_token",
        json!({"type": "string", "pattern": PAGE_TOKEN_PATTERN,
               "minLength": PAGE_TOKEN_LEN, "maxLength": PAGE_TOKEN_LEN}),
    );

    let create = operation_mut(doc, "/v1/jobs", "post");
    for (name, schema) in csv_options() {
        set_param_schema(create, name, schema);
    }
    for name in ["latitude", "longitude", "radius"] {
        describe_param(
            create,
            name,
            "With a CSV body. `latitude`, `longitude` and `radius` come together or not at all.",
        );
    }
    set_param_schema(
        create,
        "Idempotency-Key",
        json!({"type": "string", "maxLength": MAX_IDEMPOTENCY_KEY_LEN,
               "pattern": "^[\\t -~]*[!-~][\\t -~]*$"}),
    );

    set_param_schema(
        operation_mut(doc, "/v1/jobs/{id}/events", "get"),
        "Last-Event-ID",
        json!({"type": "string", "pattern": LAST_EVENT_ID_PATTERN}),
    );

    let export = operation_mut(doc, "/v1/jobs/{id}/audiences/{strategy}/export", "get");
    set_param_schema(
        export,
        "format",
        json!({"type": "string", "enum": ["csv", "json", "jsonl"], "default": "csv"}),
    );
    set_param_schema(
        export,
        "strategy",
        json!({"type": "string", "pattern": audience_name_pattern()}),
    );

    // A job id is a UUID; anything else is a job that does not exist (404).
    for (path, method) in [
        ("/v1/jobs/{id}", "get"),
        ("/v1/jobs/{id}", "delete"),
        ("/v1/jobs/{id}/cancel", "post"),
        ("/v1/jobs/{id}/result", "get"),
        ("/v1/jobs/{id}/events", "get"),
        ("/v1/jobs/{id}/feedback", "post"),
        ("/v1/jobs/{id}/deliveries", "get"),
        ("/v1/jobs/{id}/audiences/{strategy}/export", "get"),
    ] {
        set_param_schema(
            operation_mut(doc, path, method),
            "id",
            json!({"type": "string", "format": "uuid"}),
        );
    }
}

/// A callback URL's shape, as `callback::parse_callback_url` reads it. Where its host may
/// point (not a private address unless allowed, never the service) no schema can state.
pub(super) fn callback_url_schema() -> Value {
    json!({"type": "string", "maxLength": MAX_CALLBACK_URL_LEN,
           "pattern": CALLBACK_URL_PATTERN})
}

/// The schemas of a CSV upload's query options: what `CsvOptionsQuery::parse` and
/// `JobOptions::validate` accept.
fn csv_options() -> Vec<(&'static str, Value)> {
    let strategies = Strategy::ALL;
    let strategy_orders = orders(&strategies.map(strategy_name));
    vec![
        (
            "min_quality_score",
            json!({"type": "number", "minimum": 0, "maximum": 1}),
        ),
        (
            "min_support",
            json!({"type": "number", "exclusiveMinimum": 0, "maximum": 1}),
        ),
        (
            "max_cluster_size",
            json!({"type": "integer", "minimum": 3, "maximum": 8}),
        ),
        (
            "audience_limit",
            json!({"type": "integer", "minimum": 1, "maximum": MAX_AUDIENCE_LIMIT}),
        ),
        ("callback_url", callback_url_schema()),
        (
            "latitude",
            json!({"type": "number", "minimum": -90, "maximum": 90}),
        ),
        (
            "longitude",
            json!({"type": "number", "minimum": -180, "maximum": 180}),
        ),
        (
            "radius",
            json!({"type": "number", "exclusiveMinimum": 0, "maximum": MAX_RADIUS}),
        ),
        (
            "unit",
            json!({"type": "string", "enum": [DistanceUnit::Miles, DistanceUnit::Km], "default": "miles"}),
        ),
        (
            "identifier_type",
            json!({"type": "string", "enum": AUDIENCE_ID_TYPES.map(IdType::as_str), "default": "email"}),
        ),
        (
            "hash_identifiers",
            json!({"type": "string", "enum": ["none", "sha256"], "default": "none"}),
        ),
        (
            "exclude_customers",
            json!({"type": "boolean", "default": true}),
        ),
        ("ranked", json!({"type": "boolean"})),
        ("validate", json!({"type": "boolean", "default": true})),
        // Comma-separated, white space around each name ignored, empty items skipped.
        (
            "domains",
            json!({"type": "string", "pattern": comma_list(&[DOMAINS.join("|")])}),
        ),
        (
            "strategies",
            json!({"type": "string", "pattern": comma_list(&strategy_orders)}),
        ),
    ]
}

/// Every ordering of every non-empty subset of `names`, each as one `a,b,…` sequence of
/// alternatives: a list that names each at most once.
fn orders(names: &[&str]) -> Vec<String> {
    fn extend(prefix: &mut Vec<String>, rest: &[&str], out: &mut Vec<Vec<String>>) {
        for (i, name) in rest.iter().enumerate() {
            prefix.push((*name).to_owned());
            out.push(prefix.clone());
            let others: Vec<&str> = rest
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, n)| *n)
                .collect();
            extend(prefix, &others, out);
            prefix.pop();
        }
    }
    let mut sequences = Vec::new();
    extend(&mut Vec::new(), names, &mut sequences);
    sequences.into_iter().map(|s| s.join(",")).collect()
}

/// A pattern for a comma-separated list as `split_list` reads it (split at commas, each item
/// trimmed, empty items skipped) whose non-empty items are, in order, one of `sequences`
/// (`a,b`: `a` then `b`; an item of a sequence may itself be an alternation `x|y`).
fn comma_list(sequences: &[String]) -> String {
    let ws = space_class();
    let gap = format!("{ws}*(?:,{ws}*)*,{ws}*");
    let alternatives: Vec<String> = sequences
        .iter()
        .map(|s| {
            s.split(',')
                .map(|item| format!("(?:{item})"))
                .collect::<Vec<_>>()
                .join(&gap)
        })
        .collect();
    let list = if sequences.len() == 1 && !sequences[0].contains(',') {
        // Any number of items from one alternation (domains may repeat).
        format!("{0}(?:{gap}{0})*", alternatives[0])
    } else {
        format!("(?:{})", alternatives.join("|"))
    };
    format!("^(?:{ws}*,)*{ws}*{list}{ws}*(?:,{ws}*)*$")
}

fn describe_param(op: &mut Value, name: &str, description: &str) {
    if let Some(p) = op["parameters"]
        .as_array_mut()
        .and_then(|ps| ps.iter_mut().find(|p| p["name"] == name))
    {
        set(p, json!({"description": description}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::CsvOptionsQuery;
    use crate::problem::FieldError;
    use regex::Regex;

    fn accepted(query: &str) -> bool {
        CsvOptionsQuery::parse(Some(query)).is_ok_and(|o| {
            let mut errors: Vec<FieldError> = Vec::new();
            o.validate(&mut errors);
            errors.is_empty()
        })
    }

    #[test]
    fn list_patterns_agree_with_the_parser() {
        let options = csv_options();
        let pattern = |name: &str| {
            let schema = &options.iter().find(|(n, _)| *n == name).unwrap().1;
            Regex::new(schema["pattern"].as_str().unwrap()).unwrap()
        };
        let (strategies, domains) = (pattern("strategies"), pattern("domains"));
        for value in [
            "precision",
            " reach , hybrid ",
            ",,precision,,",
            "precision,reach,hybrid",
            "hybrid,precision",
            "precision,precision",
            "precision reach",
            "",
            " , ",
            "Precision",
            "reach,\u{3000}hybrid\n",
            "reach,bogus",
        ] {
            let query: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("strategies", value)
                .finish();
            assert_eq!(
                strategies.is_match(value),
                accepted(&query),
                "strategies {value:?}"
            );
        }
        for value in [
            "demographic",
            "demographic, interest,demographic",
            "id",
            "identity",
            "",
            ",",
            "interest lifestyle",
            " phone ,",
        ] {
            let query: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("domains", value)
                .finish();
            assert_eq!(
                domains.is_match(value),
                accepted(&query),
                "domains {value:?}"
            );
        }
    }

    #[test]
    fn every_order_of_the_strategies() {
        assert_eq!(orders(&["a", "b", "c"]).len(), 3 + 6 + 6);
    }
}
