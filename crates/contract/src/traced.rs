//! The tracing fields every upstream answer carries.

use crate::{
    FeedbackResponse, FindPersonsResponse, GetClusterResponse, GetPersonResponse,
    ListClustersResponse, ResolveResponse,
};

/// An answer with the upstream's `tool_trace_id` and `workflow_id`: the server fills them in,
/// the client records them.
pub trait Traced {
    /// `(tool_trace_id, workflow_id)`.
    fn trace_fields(&self) -> (Option<&str>, Option<&str>);
    /// `(tool_trace_id, workflow_id)`, to fill in.
    fn trace_fields_mut(&mut self) -> (&mut Option<String>, &mut Option<String>);
}

macro_rules! traced {
    ($($t:ty),*) => {$(
        impl Traced for $t {
            fn trace_fields(&self) -> (Option<&str>, Option<&str>) {
                (self.tool_trace_id.as_deref(), self.workflow_id.as_deref())
            }
            fn trace_fields_mut(&mut self) -> (&mut Option<String>, &mut Option<String>) {
                (&mut self.tool_trace_id, &mut self.workflow_id)
            }
        }
    )*};
}

traced!(
    ResolveResponse,
    GetPersonResponse,
    ListClustersResponse,
    GetClusterResponse,
    FindPersonsResponse,
    FeedbackResponse
);
