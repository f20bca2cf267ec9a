//! Counters of what the client did, for tests, benches and the job detail.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// A snapshot of one provider's activity since it was built.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CallStats {
    /// Attempts made per tool (a retried call counts once per attempt).
    pub calls: BTreeMap<String, u64>,
    /// Attempts that were repeats of a failed attempt.
    pub retries: u64,
    /// MCP sessions opened (initialize handshakes), the first one included.
    pub sessions: u64,
    /// Export files downloaded (successful opens).
    pub export_downloads: u64,
    /// Requests re-run because their export URL had expired or was refused.
    pub export_reruns: u64,
}

impl CallStats {
    /// Tool call attempts over all tools.
    pub fn total_calls(&self) -> u64 {
        self.calls.values().sum()
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters(Mutex<CallStats>);

impl Counters {
    fn with(&self, f: impl FnOnce(&mut CallStats)) {
        // A poisoned lock only means another thread panicked mid-increment: the counts stay usable.
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard);
    }

    pub(crate) fn call(&self, tool: &str) {
        self.with(|s| *s.calls.entry(tool.to_owned()).or_default() += 1);
    }

    pub(crate) fn retry(&self) {
        self.with(|s| s.retries += 1);
    }

    pub(crate) fn session(&self) {
        self.with(|s| s.sessions += 1);
    }

    pub(crate) fn export_download(&self) {
        self.with(|s| s.export_downloads += 1);
    }

    pub(crate) fn export_rerun(&self) {
        self.with(|s| s.export_reruns += 1);
    }

    pub(crate) fn snapshot(&self) -> CallStats {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
