//! The `tool_trace_id`s the upstream handed out, grouped by workflow, so a job can keep them with
//! its stage and pass them to `submit_feedback`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// One upstream call's trace: which tool answered and the id support needs to find it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TraceEntry {
    pub tool: String,
    pub tool_trace_id: String,
}

/// Workflows remembered at once; the oldest is forgotten past this, so a caller that never
/// collects its traces cannot grow the provider without bound.
const MAX_WORKFLOWS: usize = 4096;
/// Traces kept per workflow; later ones are dropped (a job makes a few hundred calls).
const MAX_TRACES_PER_WORKFLOW: usize = 100_000;

#[derive(Debug, Default)]
pub(crate) struct TraceLog(Mutex<Inner>);

#[derive(Debug, Default)]
struct Inner {
    by_workflow: HashMap<String, Vec<TraceEntry>>,
    order: VecDeque<String>,
}

impl TraceLog {
    pub(crate) fn record(&self, workflow_id: &str, tool: &str, tool_trace_id: &str) {
        let mut inner = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if !inner.by_workflow.contains_key(workflow_id) {
            if inner.order.len() >= MAX_WORKFLOWS
                && let Some(oldest) = inner.order.pop_front()
            {
                inner.by_workflow.remove(&oldest);
            }
            inner.order.push_back(workflow_id.to_owned());
        }
        let entries = inner.by_workflow.entry(workflow_id.to_owned()).or_default();
        if entries.len() < MAX_TRACES_PER_WORKFLOW {
            entries.push(TraceEntry {
                tool: tool.to_owned(),
                tool_trace_id: tool_trace_id.to_owned(),
            });
        }
    }

    /// The workflow's entries of one tool, oldest first; those of other tools stay (a job's
    /// stages may overlap, each taking its own tool's traces).
    pub(crate) fn take(&self, workflow_id: &str, tool: &str) -> Vec<TraceEntry> {
        let mut inner = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Some(entries) = inner.by_workflow.get_mut(workflow_id) else {
            return Vec::new();
        };
        let (taken, kept) = std::mem::take(entries)
            .into_iter()
            .partition(|e| e.tool == tool);
        *entries = kept;
        if entries.is_empty() {
            inner.by_workflow.remove(workflow_id);
            inner.order.retain(|w| w != workflow_id);
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_takes_its_own_traces_and_leaves_the_others() {
        let log = TraceLog::default();
        log.record("w", "resolve_identities", "r1");
        log.record("w", "get_person", "g1");
        log.record("w", "resolve_identities", "r2");
        let ids = |entries: Vec<TraceEntry>| {
            entries
                .into_iter()
                .map(|e| e.tool_trace_id)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(log.take("w", "resolve_identities")), ["r1", "r2"]);
        assert!(log.take("w", "resolve_identities").is_empty());
        assert_eq!(ids(log.take("w", "get_person")), ["g1"]);
        assert!(log.0.lock().unwrap().by_workflow.is_empty());
        assert!(log.take("unknown", "get_person").is_empty());
    }
}
