//! `tools/call`: arguments parsed into the contract's requests, answers as `structuredContent`
//! plus the same JSON as text, failures as `isError` results that say what kind they are.

use axum::http::HeaderMap;
use futures::TryStreamExt;
use icp_contract::{
    AudienceExport, AudienceRecord, ExportFormat, ExportRef, FeedbackRequest, FindPersonsRequest,
    GetClusterRequest, GetPersonRequest, Identity, ListClustersRequest, ProviderError,
    ResolveRequest, Traced,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::ServerState;
use super::rpc::INVALID_PARAMS;
use crate::export_rows::{ExportRow, RowWriter, encode};

/// Runs one tool and answers the JSON of its `result`. `Err` is a protocol failure (JSON-RPC
/// error); a tool failure is `Ok` with `isError: true`.
pub(crate) async fn call(
    state: &ServerState,
    headers: &HeaderMap,
    params: &Value,
) -> Result<String, (i64, String)> {
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .ok_or((INVALID_PARAMS, "tools/call needs a tool name".to_owned()))?;
    let args = match params.get("arguments") {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err((INVALID_PARAMS, "arguments must be an object".to_owned())),
    };
    let answer = match name {
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
    };
    Ok(match answer.and_then(|payload: String| success(&payload)) {
        Ok(result) => result,
        Err(e) => failure(&e).to_string(),
    })
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
    Resp: Traced + Serialize,
    Fut: Future<Output = Result<Resp, ProviderError>>,
{
    let req: Req = parse(args)?;
    let workflow = req.workflow();
    let mut resp = f(req).await?;
    to_payload(&mut resp, workflow)
}

/// Every answer carries a `workflow_id` (the caller's, or a new one that starts the workflow)
/// and a `tool_trace_id`, as the upstream's do. Serialised straight from the typed answer: a
/// `Value` tree in between costs more than the tool itself on large answers.
fn to_payload(
    resp: &mut (impl Traced + Serialize),
    workflow: Option<String>,
) -> Result<String, ProviderError> {
    let (trace, flow) = resp.trace_fields_mut();
    if flow.is_none() {
        *flow = Some(workflow.unwrap_or_else(super::random_token));
    }
    if trace.is_none() {
        *trace = Some(super::random_token());
    }
    serde_json::to_string(resp).map_err(|e| ProviderError::protocol(format!("answer: {e}")))
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
    let (body, content_type) = encode(rows, format)?;
    Ok(publish(
        state,
        headers,
        body,
        content_type,
        format,
        rows.len() as u64,
    ))
}

/// Hands an export body out under a URL, as the upstream's presigned ones.
fn publish(
    state: &ServerState,
    headers: &HeaderMap,
    body: Vec<u8>,
    content_type: &'static str,
    format: ExportFormat,
    rows: u64,
) -> ExportRef {
    let size = body.len() as u64;
    let token = state.exports.put(body, content_type);
    ExportRef {
        url: format!("{}/exports/{token}", state.export_base(headers)),
        format,
        rows: Some(rows),
        size_bytes: Some(size),
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
    to_payload(&mut resp, workflow)
}

/// With a file `format`, the whole audience is written to an export the answer points to, as
/// the provider streams it (the audience is selected once for the count, sample and file).
async fn find_persons(
    state: &ServerState,
    headers: &HeaderMap,
    args: Value,
) -> Result<String, ProviderError> {
    let mut req: FindPersonsRequest = parse(args)?;
    let file = wants_file(req.format.take());
    let workflow = req.workflow_id.clone();
    let Some(format) = file else {
        let mut resp = state.provider.find_persons(req).await?;
        return to_payload(&mut resp, workflow);
    };
    let AudienceExport {
        mut answer,
        mut records,
    } = state.provider.export_persons(req).await?;
    let mut writer = RowWriter::<AudienceRecord>::new(format);
    while let Some(record) = records.try_next().await? {
        writer.push(&record)?;
    }
    let rows = writer.rows();
    let (body, content_type) = writer.finish()?;
    answer.export = Some(publish(state, headers, body, content_type, format, rows));
    to_payload(&mut answer, workflow)
}

/// The `result` of a successful call: the payload as `structuredContent` and, for clients that
/// read only text, the same JSON as text content. Written as text around the payload's JSON.
fn success(payload: &str) -> Result<String, ProviderError> {
    let text = serde_json::to_string(payload)
        .map_err(|e| ProviderError::protocol(format!("answer: {e}")))?;
    Ok(format!(
        r#"{{"content":[{{"type":"text","text":{text}}}],"structuredContent":{payload},"isError":false}}"#
    ))
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
