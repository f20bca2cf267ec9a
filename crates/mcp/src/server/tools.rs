//! `tools/call`: arguments parsed into the contract's requests, answers as `structuredContent`
//! plus the same JSON as text, failures as `isError` results that say what kind they are.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::HeaderMap;
use bytes::Bytes;
use futures::TryStreamExt;
use icp_contract::{
    AudienceStream, ExportFormat, ExportRef, FeedbackRequest, FindPersonsRequest,
    GetClusterRequest, GetPersonRequest, Identity, ListClustersRequest, ProviderError, RecordBatch,
    ResolveRequest, Traced,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::exports::ExportBody;
use super::state::ServerState;
use super::token::random_token;
use crate::export_rows::{
    ExportRow, add_audience_columns, content_type, encode, write_audience_csv_header,
    write_audience_csv_rows,
};
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

/// The body of an audience export: the provider's records as they stream. JSON Lines and JSON
/// are the records' own JSON, joined; CSV rows are written from the parsed records, under the
/// columns of all of them, which a first pass over the audience finds (the served population does
/// not change, so both passes see the same records): the file streams in every format rather
/// than being built whole in memory.
pub(crate) async fn audience_file(
    state: &ServerState,
    request: FindPersonsRequest,
    format: ExportFormat,
) -> Result<(Body, &'static str), ProviderError> {
    let shape: Box<dyn FileShape> = match format {
        ExportFormat::Csv => {
            let mut columns = BTreeSet::new();
            let mut first = state
                .provider
                .export_persons(request.clone())
                .await?
                .records;
            while let Some(batch) = first.try_next().await? {
                add_audience_columns(&mut columns, &batch.decode()?);
            }
            Box::new(CsvRows { columns })
        }
        ExportFormat::Jsonl => Box::new(Joined::LINES),
        ExportFormat::Json | ExportFormat::None => Box::new(Joined::ARRAY),
    };
    let records = state.provider.export_persons(request).await?.records;
    Ok((
        Body::from_stream(stream_file(shape, records)),
        content_type(format),
    ))
}

/// How an export file is written around and between its records.
trait FileShape: Send + 'static {
    fn open(&mut self, out: &mut Vec<u8>) -> Result<(), ProviderError>;
    fn records(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), ProviderError>;
    fn close(&mut self, out: &mut Vec<u8>);
}

/// Records' JSON, joined.
#[derive(Clone, Copy)]
struct Joined {
    open: &'static [u8],
    between: &'static [u8],
    after_each: &'static [u8],
    close: &'static [u8],
    any: bool,
}

impl Joined {
    const LINES: Joined = Joined {
        open: b"",
        between: b"",
        after_each: b"\n",
        close: b"",
        any: false,
    };
    const ARRAY: Joined = Joined {
        open: b"[",
        between: b",",
        after_each: b"",
        close: b"]",
        any: false,
    };
}

impl FileShape for Joined {
    fn open(&mut self, out: &mut Vec<u8>) -> Result<(), ProviderError> {
        out.extend_from_slice(self.open);
        Ok(())
    }

    fn records(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), ProviderError> {
        for (_, json) in batch.iter() {
            if self.any {
                out.extend_from_slice(self.between);
            }
            out.extend_from_slice(json);
            out.extend_from_slice(self.after_each);
            self.any = true;
        }
        Ok(())
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.close);
    }
}

/// CSV rows under a header of every column.
struct CsvRows {
    columns: BTreeSet<String>,
}

impl FileShape for CsvRows {
    fn open(&mut self, out: &mut Vec<u8>) -> Result<(), ProviderError> {
        write_audience_csv_header(out, &self.columns)
    }

    fn records(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), ProviderError> {
        write_audience_csv_rows(out, &self.columns, &batch.decode()?)
    }

    fn close(&mut self, _: &mut Vec<u8>) {}
}

/// The file, in pieces of about `SEND_AT` bytes. An error breaks the body off: the download
/// fails rather than ending short.
fn stream_file(
    shape: Box<dyn FileShape>,
    records: AudienceStream,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    /// Bytes gathered before they are sent on.
    const SEND_AT: usize = 256 * 1024;
    let start = (shape, records, Vec::new(), false);
    futures::stream::unfold(Some(start), |state| async move {
        let (mut shape, mut records, mut out, opened) = state?;
        if !opened && let Err(e) = shape.open(&mut out) {
            return Some((Err(std::io::Error::other(e)), None));
        }
        loop {
            let written = match records.try_next().await {
                Ok(Some(batch)) => shape.records(&batch, &mut out),
                Ok(None) => {
                    shape.close(&mut out);
                    return Some((Ok(Bytes::from(out)), None));
                }
                Err(e) => Err(e),
            };
            if let Err(e) = written {
                return Some((Err(std::io::Error::other(e)), None));
            }
            if out.len() >= SEND_AT {
                let piece = Bytes::from(std::mem::take(&mut out));
                return Some((Ok(piece), Some((shape, records, out, true))));
            }
        }
    })
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use futures::StreamExt;
    use icp_contract::{AudienceRecord, PersonId};

    use super::*;

    fn record(id: u64, emails: usize) -> AudienceRecord {
        let emails: BTreeMap<String, String> = (1..=emails)
            .map(|n| (format!("email{n}"), format!("p{id}.{n}@x.io")))
            .collect();
        AudienceRecord {
            person_id: PersonId(id),
            identifiers: BTreeMap::from([("email".to_owned(), emails)]),
        }
    }

    /// Batches of records as a provider streams them.
    fn stream_of(batches: &[Vec<AudienceRecord>]) -> AudienceStream {
        let batches: Vec<Result<RecordBatch, ProviderError>> = batches
            .iter()
            .map(|rows| {
                let mut batch = RecordBatch::default();
                rows.iter().for_each(|r| batch.push_record(r));
                Ok(batch)
            })
            .collect();
        futures::stream::iter(batches).boxed()
    }

    /// The file, and how many pieces it came in.
    async fn file(shape: impl FileShape, records: AudienceStream) -> (Vec<u8>, usize) {
        let pieces: Vec<Bytes> = stream_file(Box::new(shape), records)
            .try_collect()
            .await
            .unwrap();
        (pieces.concat(), pieces.len())
    }

    /// Streamed a batch at a time, each format is the file written whole: a CSV's header holds
    /// a column only a later batch has, and enough rows go past a piece's size.
    #[tokio::test]
    async fn streamed_files_are_the_files_written_whole() {
        let mut batches: Vec<Vec<AudienceRecord>> = (0..80u64)
            .map(|b| {
                (0..200)
                    .map(|i| record(b * 200 + i, 1 + (i % 2) as usize))
                    .collect()
            })
            .collect();
        batches.push(vec![record(99_999, 3)]);
        let all: Vec<AudienceRecord> = batches.iter().flatten().cloned().collect();

        let mut columns = BTreeSet::new();
        for rows in &batches {
            add_audience_columns(&mut columns, rows);
        }
        let (csv, pieces) = file(CsvRows { columns }, stream_of(&batches)).await;
        assert!(pieces > 1, "{} bytes in one piece", csv.len());
        assert_eq!(csv, AudienceRecord::to_csv(&all).unwrap());
        for (shape, format) in [
            (Joined::LINES, ExportFormat::Jsonl),
            (Joined::ARRAY, ExportFormat::Json),
        ] {
            let (joined, _) = file(shape, stream_of(&batches)).await;
            assert_eq!(joined, encode(&all, format).unwrap().0, "{format:?}");
        }
        // An empty audience is still a whole file.
        assert_eq!(file(Joined::ARRAY, stream_of(&[])).await.0, b"[]");
        let (empty, _) = file(
            CsvRows {
                columns: BTreeSet::new(),
            },
            stream_of(&[]),
        )
        .await;
        assert_eq!(empty, AudienceRecord::to_csv(&[]).unwrap());
    }
}
