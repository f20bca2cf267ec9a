//! JSON-RPC 2.0 as MCP uses it (one message a request, no batches): the messages the client
//! writes and reads, the answers the server writes, and the error codes both sides give a
//! meaning to. Depends on nothing else in the crate.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

/// The `jsonrpc` member of every message.
const VERSION: &str = "2.0";

/// The body is not JSON.
pub(crate) const PARSE_ERROR: i64 = -32700;
/// JSON, but not one JSON-RPC request (a batch, a missing session).
pub(crate) const INVALID_REQUEST: i64 = -32600;
pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
/// The request's fault (an unknown tool, arguments of the wrong shape): a retry cannot help.
pub(crate) const INVALID_PARAMS: i64 = -32602;
/// The server's fault: a retry may pass.
pub(crate) const INTERNAL_ERROR: i64 = -32603;

/// A request, or with no `id` a notification, as the client sends it.
#[derive(Serialize)]
pub(crate) struct Request<'a, P: Serialize> {
    jsonrpc: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    method: &'a str,
    params: P,
}

impl<'a, P: Serialize> Request<'a, P> {
    /// A request the server answers under `id`.
    pub(crate) fn call(id: u64, method: &'a str, params: P) -> Self {
        Self {
            jsonrpc: VERSION,
            id: Some(id),
            method,
            params,
        }
    }

    /// A notification: the server answers nothing.
    pub(crate) fn notification(method: &'a str, params: P) -> Self {
        Self {
            jsonrpc: VERSION,
            id: None,
            method,
            params,
        }
    }
}

/// A JSON-RPC message from the server, read only as far as deciding whether it answers us.
#[derive(Deserialize)]
pub(crate) struct Envelope<'a> {
    #[serde(default)]
    pub(crate) id: Option<Value>,
    #[serde(default)]
    pub(crate) method: Option<String>,
    #[serde(default, borrow)]
    pub(crate) result: Option<&'a RawValue>,
    #[serde(default)]
    pub(crate) error: Option<RpcError>,
}

/// The `error` member of an answer.
#[derive(Deserialize)]
pub(crate) struct RpcError {
    pub(crate) code: i64,
    #[serde(default)]
    pub(crate) message: String,
}

/// The answer to request `id`: `result`.
pub(crate) fn result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": VERSION, "id": id, "result": result})
}

/// The answer to request `id`: an error.
pub(crate) fn error(id: &Value, code: i64, message: impl Into<String>) -> Value {
    json!({"jsonrpc": VERSION, "id": id, "error": {"code": code, "message": message.into()}})
}

/// The answer to request `id` (as JSON text) written straight into `out`, its `result` by
/// `write_result`: for answers too large to build as a [`Value`] first.
pub(crate) fn write_result(out: &mut Vec<u8>, id: &str, write_result: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(br#"{"jsonrpc":""#);
    out.extend_from_slice(VERSION.as_bytes());
    out.extend_from_slice(br#"","id":"#);
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(br#","result":"#);
    write_result(out);
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_written_in_place_is_the_answer_built() {
        let id = json!("7");
        let mut out = Vec::new();
        write_result(&mut out, &id.to_string(), |out| {
            out.extend_from_slice(br#"{"x":[1]}"#)
        });
        let written: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(written, result(&id, json!({"x": [1]})));
    }
}
