//! Edits of the assembled OpenAPI document as JSON, for the rules utoipa's derives cannot state
//! (`contains`, `exclusiveMinimum`, patterns computed from code, links, shared responses). Each
//! edit names what it changes and panics when that is missing, so a renamed field or route
//! fails the spec test instead of quietly losing its rule.

use serde_json::{Map, Value, json};

/// Every operation as `(path, method, operation)`.
pub fn operations_mut(doc: &mut Value) -> Vec<(String, String, &mut Map<String, Value>)> {
    let mut out = Vec::new();
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            if let Some(item) = item.as_object_mut() {
                for (method, op) in item.iter_mut() {
                    if let Some(op) = op.as_object_mut() {
                        out.push((path.clone(), method.clone(), op));
                    }
                }
            }
        }
    }
    out
}

/// The operation `method path`.
pub fn operation_mut<'a>(doc: &'a mut Value, path: &str, method: &str) -> &'a mut Value {
    let op = &mut doc["paths"][path][method];
    assert!(op.is_object(), "the spec has no operation {method} {path}");
    op
}

/// Replaces the schema of parameter `name` of `op`.
pub fn set_param_schema(op: &mut Value, name: &str, schema: Value) {
    let param = op["parameters"]
        .as_array_mut()
        .and_then(|ps| ps.iter_mut().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("the operation has no parameter {name}"));
    param["schema"] = schema;
}

/// The component schema `name`.
pub fn schema_mut<'a>(doc: &'a mut Value, name: &str) -> &'a mut Value {
    let schema = &mut doc["components"]["schemas"][name];
    assert!(schema.is_object(), "the spec has no schema {name}");
    schema
}

/// Property `name` of an object schema.
pub fn property_mut<'a>(schema: &'a mut Value, name: &str) -> &'a mut Value {
    let property = &mut schema["properties"][name];
    assert!(property.is_object(), "the schema has no property {name}");
    property
}

/// Sets each `(key, value)` on `target`, an object.
pub fn set(target: &mut Value, entries: Value) {
    if let (Some(target), Value::Object(entries)) = (target.as_object_mut(), entries) {
        target.extend(entries);
    }
}

/// A problem+json response, as every error is answered.
pub fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    })
}

/// Adds `status` to `op`'s responses as a reference to the shared response `name`, unless the
/// route already describes that status itself.
pub fn add_response_ref(op: &mut Map<String, Value>, status: u16, name: &str) {
    let responses = op
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("responses is an object");
    responses
        .entry(status.to_string())
        .or_insert_with(|| json!({"$ref": format!("#/components/responses/{name}")}));
}

/// Registers the shared response `name`.
pub fn add_shared_response(doc: &mut Value, name: &str, response: Value) {
    doc["components"]["responses"][name] = response;
}
