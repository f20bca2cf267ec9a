//! Any [`PopulationProvider`] served as an MCP server over Streamable HTTP (spec 2025-06-18),
//! with the upstream's tool names and shapes: `POST /mcp` for JSON-RPC, `DELETE /mcp` to end a
//! session, `GET /exports/{token}` for the files that answers with a `format` point to.
//!
//! Hand-written on axum rather than rmcp's server: the tools take and give the contract's serde
//! types as they are, and the fault layer and export downloads share the same router.
//!
//! Its files, bottom-up: `token` (random ids), `schemas` (`tools/list`), `audience_file` (an
//! audience export written as it is downloaded), `exports` (the files handed out by URL),
//! `state` (configuration, sessions, the key check), `tools` (`tools/call`), `rpc` (`POST /mcp`);
//! this file only wires the routes.

mod audience_file;
mod exports;
mod rpc;
mod schemas;
mod state;
mod token;
mod tools;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use icp_contract::PopulationProvider;

use crate::streamable_http::SESSION_HEADER;
use exports::{ExportBody, Lookup};
pub use schemas::TOOL_NAMES;
pub use state::ServeConfig;
use state::{ServerState, unauthorized};

/// The MCP server's routes: `/mcp` and `/exports/{token}`.
pub fn mcp_router(provider: Arc<dyn PopulationProvider>, cfg: ServeConfig) -> Router {
    let max_request_bytes = cfg.max_request_bytes;
    Router::new()
        .route(
            "/mcp",
            post(rpc::handle_post).delete(end_session).get(no_stream),
        )
        .route("/exports/{token}", get(download))
        .layer(DefaultBodyLimit::max(max_request_bytes))
        .with_state(Arc::new(ServerState::new(provider, cfg)))
}

async fn end_session(State(state): State<Arc<ServerState>>, headers: HeaderMap) -> Response {
    if !state.authorized(&headers) {
        return unauthorized();
    }
    let Some(id) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
        return (StatusCode::BAD_REQUEST, "Mcp-Session-Id header required").into_response();
    };
    if state.end_session(id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

/// This server never pushes messages outside a request, so it offers no standalone SSE stream.
async fn no_stream() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, HeaderValue::from_static("POST, DELETE"))],
    )
        .into_response()
}

async fn download(State(state): State<Arc<ServerState>>, Path(token): Path<String>) -> Response {
    // The token is the credential, as a presigned URL's signature is: no Bearer key needed.
    let (body, content_type) = match state.exports.get(&token) {
        Lookup::Found(ExportBody::Written {
            bytes,
            content_type,
        }) => (Body::from(bytes), content_type),
        Lookup::Found(ExportBody::Audience { request, format }) => {
            match audience_file::open(&*state.provider, request, format).await {
                Ok(file) => file,
                Err(e) => {
                    let code = if e.is_retryable() {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::INTERNAL_SERVER_ERROR
                    };
                    return (code, e.to_string()).into_response();
                }
            }
        }
        Lookup::Expired => return (StatusCode::GONE, "export expired").into_response(),
        Lookup::Unknown => return (StatusCode::NOT_FOUND, "no such export").into_response(),
    };
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}
