//! What the server keeps between requests: its configuration, the provider it serves, the open
//! sessions and the exports handed out, with the API key check.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use icp_contract::PopulationProvider;

use super::exports::ExportStore;
use super::token::random_token;
use crate::config::Secret;

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
    pub(super) provider: Arc<dyn PopulationProvider>,
    cfg: ServeConfig,
    sessions: Mutex<HashMap<String, Instant>>,
    pub(super) exports: ExportStore,
}

impl ServerState {
    pub(super) fn new(provider: Arc<dyn PopulationProvider>, cfg: ServeConfig) -> Self {
        Self {
            provider,
            exports: ExportStore::new(cfg.export_ttl),
            sessions: Mutex::new(HashMap::new()),
            cfg,
        }
    }

    pub(super) fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(key) = &self.cfg.api_key else {
            return true;
        };
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| constant_time_eq(given.as_bytes(), key.expose().as_bytes()))
    }

    pub(super) fn new_session(&self) -> String {
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
    pub(super) fn touch_session(&self, id: &str) -> bool {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        match sessions.get_mut(id) {
            Some(seen) => {
                *seen = Instant::now();
                true
            }
            None => false,
        }
    }

    /// Forgets a session; false when it was not open.
    pub(super) fn end_session(&self, id: &str) -> bool {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
            .is_some()
    }

    pub(super) fn export_base(&self, headers: &HeaderMap) -> String {
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

/// The answer to a request without the right key.
pub(super) fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
        "missing or wrong API key",
    )
        .into_response()
}
