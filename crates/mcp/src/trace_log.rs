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

    pub(crate) fn take(&self, workflow_id: &str) -> Vec<TraceEntry> {
        let mut inner = self.0.lock().unwrap_or_else(|p| p.into_inner());
        inner.order.retain(|w| w != workflow_id);
        inner.by_workflow.remove(workflow_id).unwrap_or_default()
    }
}
