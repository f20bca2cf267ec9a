//! Any [`PopulationProvider`] served as an MCP server over Streamable HTTP (spec 2025-06-18),
//! with the upstream's tool names and shapes: `POST /mcp` for JSON-RPC, `DELETE /mcp` to end a
//! session, `GET /exports/{token}` for the files that answers with a `format` point to.
//!
//! Hand-written on axum rather than rmcp's server: the tools take and give the contract's serde
//! types as they are, and the fault layer and export downloads share the same router.

mod exports;
mod rpc;
mod schemas;
mod tools;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use icp_contract::PopulationProvider;
use rand::Rng;

use crate::config::Secret;
use crate::streamable_http::SESSION_HEADER;
use exports::{ExportBody, ExportStore, Lookup};
pub use schemas::TOOL_NAMES;

/// How the MCP server behaves.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// When set, every request must carry `Authorization: Bearer <key>`.
    pub api_key: Option<Secret>,
    /// How long an export URL stays valid; after it, the download answers 410 Gone.
    pub export_ttl: Duration,
    /// The base of export URLs (`https://mcp.example.com`); when unset, `http://` and the
    /// request's `Host`.
    pub public_url: Option<String>,
    /// Largest request body accepted.
    pub max_request_bytes: usize,
    /// Sessions kept at once; the least recently used one is dropped past this.
    pub max_sessions: usize,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            api_key: None,
            export_ttl: Duration::from_secs(3600),
            public_url: None,
            max_request_bytes: 64 * 1024 * 1024,
            max_sessions: 10_000,
        }
    }
}

pub(crate) struct ServerState {
    provider: Arc<dyn PopulationProvider>,
    cfg: ServeConfig,
    sessions: Mutex<HashMap<String, Instant>>,
    exports: ExportStore,
}

/// The MCP server's routes: `/mcp` and `/exports/{token}`.
pub fn mcp_router(provider: Arc<dyn PopulationProvider>, cfg: ServeConfig) -> Router {
    let state = Arc::new(ServerState {
        provider,
        exports: ExportStore::new(cfg.export_ttl),
        sessions: Mutex::new(HashMap::new()),
        cfg: cfg.clone(),
    });
    Router::new()
        .route(
            "/mcp",
            post(rpc::handle_post).delete(end_session).get(no_stream),
        )
        .route("/exports/{token}", get(download))
        .layer(DefaultBodyLimit::max(cfg.max_request_bytes))
        .with_state(state)
}

pub(crate) fn random_token() -> String {
    format!("{:032x}", rand::rng().random::<u128>())
}

impl ServerState {
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(key) = &self.cfg.api_key else {
            return true;
        };
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| constant_time_eq(given.as_bytes(), key.expose().as_bytes()))
    }

    fn new_session(&self) -> String {
        let id = random_token();
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if sessions.len() >= self.cfg.max_sessions.max(1)
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, seen)| **seen)
                .map(|(k, _)| k.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(id.clone(), Instant::now());
        id
    }

    /// Marks a session as used; false when it is unknown (never opened, ended or dropped).
    fn touch_session(&self, id: &str) -> bool {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        match sessions.get_mut(id) {
            Some(seen) => {
                *seen = Instant::now();
                true
            }
            None => false,
        }
    }

    fn export_base(&self, headers: &HeaderMap) -> String {
        if let Some(base) = &self.cfg.public_url {
            return base.trim_end_matches('/').to_owned();
        }
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("127.0.0.1");
        format!("http://{host}")
    }
}

/// Compares keys in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
        "missing or wrong API key",
    )
        .into_response()
}

async fn end_session(State(state): State<Arc<ServerState>>, headers: HeaderMap) -> Response {
    if !state.authorized(&headers) {
        return unauthorized();
    }
    let Some(id) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
        return (StatusCode::BAD_REQUEST, "Mcp-Session-Id header required").into_response();
    };
    let removed = state
        .sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(id)
        .is_some();
    if removed {
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
            match tools::audience_file(&state, request, format).await {
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
