//! `tools/call`: arguments parsed into the contract's requests, answers as `structuredContent`
//! plus the same JSON as text, failures as `isError` results that say what kind they are.

use axum::http::HeaderMap;
use icp_contract::{
    ExportFormat, ExportRef, FeedbackRequest, FindPersonsRequest, GetClusterRequest,
    GetPersonRequest, Identity, ListClustersRequest, ProviderError, ResolveRequest, Traced,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::exports::ExportBody;
use super::state::ServerState;
use super::token::random_token;
use crate::export_rows::{ExportRow, encode};
use crate::jsonrpc::{self, INVALID_PARAMS};

/// What a tool answered: its payload as JSON text, or why it failed.
pub(crate) type ToolAnswer = Result<String, ProviderError>;

/// Runs one tool. `Err` is a protocol failure (JSON-RPC error); a tool failure is an answer
/// (an `isError` result).
pub(crate) async fn call(
    state: &ServerState,
    headers: &HeaderMap,
    params: &Value,
) -> Result<ToolAnswer, (i64, String)> {
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .ok_or((INVALID_PARAMS, "tools/call needs a tool name".to_owned()))?;
    let args = match params.get("arguments") {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err((INVALID_PARAMS, "arguments must be an object".to_owned())),
    };
    Ok(match name {
        "resolve_identities" => resolve(state, headers, args).await,
        "get_person" => run(args, |r: GetPersonRequest| state.provider.get_person(r)).await,
        "list_clusters" => {
            run(args, |r: ListClustersRequest| {
                state.provider.list_clusters(r)
            })
            .await
        }
        "get_cluster" => run(args, |r: GetClusterRequest| state.provider.get_cluster(r)).await,
        "find_persons" => find_persons(state, headers, args).await,
        "submit_feedback" => {
            run(args, |r: FeedbackRequest| state.provider.submit_feedback(r)).await
        }
        other => return Err((INVALID_PARAMS, format!("unknown tool {other}"))),
    })
}

/// The JSON-RPC response to a `tools/call`: `{"jsonrpc":"2.0","id":…,"result":…}`. A success
/// carries the payload as `structuredContent` and, for clients that read only text, the same
/// JSON as text content. Written once into a buffer of the final size: the payload is written
/// twice, one copy escaped, and growing a buffer of megabytes step by step cost more than the
/// tool did (each step a fresh allocation the kernel zeroes).
pub(crate) fn response_body(id: &Value, answer: ToolAnswer) -> Vec<u8> {
    let id = id.to_string();
    match answer {
        Ok(payload) => {
            let escapes = payload
                .bytes()
                .filter(|b| matches!(b, b'"' | b'\\'))
                .count();
            let mut out = Vec::with_capacity(2 * payload.len() + escapes + id.len() + 160);
            jsonrpc::write_result(&mut out, &id, |out| {
                out.extend_from_slice(br#"{"content":[{"type":"text","text":"#);
                // Writing a `str` to memory cannot fail.
                let _ = serde_json::to_writer(&mut *out, payload.as_str());
                out.extend_from_slice(br#"}],"structuredContent":"#);
                out.extend_from_slice(payload.as_bytes());
                out.extend_from_slice(br#","isError":false}"#);
            });
            out
        }
        Err(e) => {
            let mut out = Vec::with_capacity(256);
            jsonrpc::write_result(&mut out, &id, |out| {
                let _ = serde_json::to_writer(&mut *out, &failure(&e));
            });
            out
        }
    }
}

fn parse<T: DeserializeOwned>(args: Value) -> Result<T, ProviderError> {
    serde_json::from_value(args).map_err(|e| ProviderError::validation(format!("arguments: {e}")))
}

async fn run<Req, Resp, Fut>(
    args: Value,
    f: impl FnOnce(Req) -> Fut,
) -> Result<String, ProviderError>
where
    Req: DeserializeOwned + HasWorkflow,
    Resp: Traced + Serialize + Send + 'static,
    Fut: Future<Output = Result<Resp, ProviderError>>,
{
    let req: Req = parse(args)?;
    let workflow = req.workflow();
    let resp = f(req).await?;
    to_payload(resp, workflow).await
}

/// Every answer carries a `workflow_id` (the caller's, or a new one that starts the workflow)
/// and a `tool_trace_id`, as the upstream's do. Serialised straight from the typed answer (a
/// `Value` tree in between costs more than the tool itself on large answers), on the blocking
/// pool: a large answer is milliseconds of CPU that would hold up every connection served by
/// the async thread it ran on.
async fn to_payload<R>(mut resp: R, workflow: Option<String>) -> Result<String, ProviderError>
where
    R: Traced + Serialize + Send + 'static,
{
    let (trace, flow) = resp.trace_fields_mut();
    if flow.is_none() {
        *flow = Some(workflow.unwrap_or_else(random_token));
    }
    if trace.is_none() {
        *trace = Some(random_token());
    }
    tokio::task::spawn_blocking(move || serde_json::to_string(&resp))
        .await
        .map_err(|e| ProviderError::unavailable(format!("writing the answer stopped: {e}")))?
        .map_err(|e| ProviderError::protocol(format!("answer: {e}")))
}

fn wants_file(format: Option<ExportFormat>) -> Option<ExportFormat> {
    format.filter(|f| *f != ExportFormat::None)
}

fn store_export<T: ExportRow>(
    state: &ServerState,
    headers: &HeaderMap,
    rows: &[T],
    format: ExportFormat,
) -> Result<ExportRef, ProviderError> {
    let (bytes, content_type) = encode(rows, format)?;
    let size = bytes.len() as u64;
    let body = ExportBody::Written {
        bytes: bytes.into(),
        content_type,
    };
    Ok(ExportRef {
        size_bytes: Some(size),
        ..publish(state, headers, body, format, rows.len() as u64)
    })
}

/// Hands an export out under a URL, as the upstream's presigned ones.
fn publish(
    state: &ServerState,
    headers: &HeaderMap,
    body: ExportBody,
    format: ExportFormat,
    rows: u64,
) -> ExportRef {
    let token = state.exports.put(body);
    ExportRef {
        url: format!("{}/exports/{token}", state.export_base(headers)),
        format,
        rows: Some(rows),
        size_bytes: None,
        expires_at: None,
    }
}

/// With a file `format`, the identities go to an export and the answer keeps only the stats.
async fn resolve(
    state: &ServerState,
    headers: &HeaderMap,
    args: Value,
) -> Result<String, ProviderError> {
    let mut req: ResolveRequest = parse(args)?;
    let file = wants_file(req.format.take());
    let workflow = req.workflow_id.clone();
    let mut resp = state.provider.resolve_identities(req).await?;
    if let Some(format) = file {
        let rows: Vec<Identity> = std::mem::take(&mut resp.identities);
        resp.export = Some(store_export(state, headers, &rows, format)?);
    }
    to_payload(resp, workflow).await
}

/// With a file `format`, the answer points to an export of the whole audience, written as it
/// is downloaded (see [`super::exports`]); its rows are the answer's `total`, which honours
/// `location` and `audience_limit` as the export does.
async fn find_persons(
    state: &ServerState,
    headers: &HeaderMap,
    args: Value,
) -> Result<String, ProviderError> {
    let mut req: FindPersonsRequest = parse(args)?;
    let file = wants_file(req.format.take());
    let workflow = req.workflow_id.clone();
    let mut answer = state.provider.find_persons(req.clone()).await?;
    if let Some(format) = file {
        let body = ExportBody::Audience {
            request: FindPersonsRequest {
                workflow_id: answer.workflow_id.clone().or(req.workflow_id),
                ..req
            },
            format,
        };
        answer.export = Some(publish(state, headers, body, format, answer.total));
    }
    to_payload(answer, workflow).await
}

fn failure(e: &ProviderError) -> Value {
    let (kind, message) = match e {
        ProviderError::Validation { message } => ("validation", message.as_str()),
        ProviderError::NotFound { message } => ("not_found", message.as_str()),
        ProviderError::RateLimited { .. } => ("rate_limited", "rate limited"),
        ProviderError::Unavailable { message } => ("unavailable", message.as_str()),
        ProviderError::ExportExpired { message } => ("export_expired", message.as_str()),
        ProviderError::Protocol { message } => ("protocol", message.as_str()),
        ProviderError::Unauthorized { message } => ("unauthorized", message.as_str()),
    };
    json!({
        "content": [{"type": "text", "text": e.to_string()}],
        "structuredContent": {"error": {"kind": kind, "message": message, "retryable": e.is_retryable()}},
        "isError": true,
    })
}

/// Requests that carry a `workflow_id`.
trait HasWorkflow {
    fn workflow(&self) -> Option<String>;
}

macro_rules! has_workflow {
    ($($t:ty),*) => {$(
        impl HasWorkflow for $t {
            fn workflow(&self) -> Option<String> {
                self.workflow_id.clone()
            }
        }
    )*};
}
has_workflow!(
    GetPersonRequest,
    ListClustersRequest,
    GetClusterRequest,
    FeedbackRequest
);
