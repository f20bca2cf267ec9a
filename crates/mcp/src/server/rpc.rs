//! The JSON-RPC side of `POST /mcp`: sessions, the handshake, and dispatch.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::state::{ServerState, unauthorized};
use super::{schemas, tools};
use crate::jsonrpc::{self, INTERNAL_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR};
use crate::streamable_http::{PROTOCOL_VERSIONS, SESSION_HEADER};

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

fn json_text_response(body: Vec<u8>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

pub(crate) async fn handle_post(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !state.authorized(&headers) {
        return unauthorized();
    }
    let msg: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &jsonrpc::error(&Value::Null, PARSE_ERROR, format!("not JSON: {e}")),
            );
        }
    };
    let Some(obj) = msg.as_object() else {
        // 2025-06-18 removed JSON-RPC batching.
        return json_response(
            StatusCode::BAD_REQUEST,
            &jsonrpc::error(
                &Value::Null,
                INVALID_REQUEST,
                "expected one JSON-RPC object",
            ),
        );
    };
    let id = obj.get("id").cloned();
    let method = obj.get("method").and_then(Value::as_str);
    let (Some(id), Some(method)) = (id, method) else {
        // Notifications and the client's responses need no answer.
        return StatusCode::ACCEPTED.into_response();
    };
    let params = obj.get("params").cloned().unwrap_or(Value::Null);

    if method == "initialize" {
        let asked = params.get("protocolVersion").and_then(Value::as_str);
        let version = asked
            .filter(|v| PROTOCOL_VERSIONS.contains(v))
            .unwrap_or(PROTOCOL_VERSIONS[0]);
        let session = state.new_session();
        let result = json!({
            "protocolVersion": version,
            "capabilities": {"tools": {"listChanged": false}},
            "serverInfo": {"name": "icp-mcp", "version": env!("CARGO_PKG_VERSION")},
            "instructions": "A population served with the Watt Data V1 tools: resolve_identities, get_person, list_clusters, get_cluster, find_persons, submit_feedback.",
        });
        let mut resp = json_response(StatusCode::OK, &jsonrpc::result(&id, result));
        if let Ok(v) = HeaderValue::from_str(&session) {
            resp.headers_mut().insert(SESSION_HEADER, v);
        }
        return resp;
    }

    let Some(session) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &jsonrpc::error(
                &id,
                INVALID_REQUEST,
                "Mcp-Session-Id header required; initialize first",
            ),
        );
    };
    if !state.touch_session(session) {
        return json_response(
            StatusCode::NOT_FOUND,
            &jsonrpc::error(
                &id,
                INVALID_REQUEST,
                "unknown or expired session; initialize again",
            ),
        );
    }

    let answer = match method {
        "ping" => jsonrpc::result(&id, json!({})),
        "tools/list" => jsonrpc::result(&id, json!({"tools": schemas::tools()})),
        "tools/call" => match tools::call(&state, &headers, &params).await {
            Ok(result) => {
                // Off the async threads, as the payload was: the body holds it twice.
                let answered = id.clone();
                let body =
                    tokio::task::spawn_blocking(move || tools::response_body(&answered, result));
                match body.await {
                    Ok(body) => return json_text_response(body),
                    Err(e) => {
                        jsonrpc::error(&id, INTERNAL_ERROR, format!("writing the answer: {e}"))
                    }
                }
            }
            Err((code, message)) => jsonrpc::error(&id, code, message),
        },
        other => jsonrpc::error(&id, METHOD_NOT_FOUND, format!("unknown method {other}")),
    };
    json_response(StatusCode::OK, &answer)
}
