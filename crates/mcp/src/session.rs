//! One MCP Streamable HTTP session (revision 2025-06-18) to the upstream, on reqwest: the
//! initialize handshake and `notifications/initialized`, `Mcp-Session-Id` echoed on every
//! request, `MCP-Protocol-Version` after the handshake, answers as JSON or as an SSE stream, a
//! fresh session when the server forgets ours (404), and the per-call timeout.
//!
//! Written here rather than through rmcp's client: rmcp reads every answer into its untagged
//! message enums and a `serde_json::Value` tree before the payload can be typed, which measured
//! ≈ 3.5× a typed parse of the same bytes, and a job's answers run to hundreds of megabytes
//! (BENCHMARKS.md, "A whole job over MCP"). Here the payload is parsed once, straight into the
//! contract's types, from the bytes it arrived in.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use icp_contract::ProviderError;
use reqwest::header::{self, HeaderValue};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::Mutex;

use crate::config::WattConfig;
use crate::jsonrpc::{Envelope, Request, RpcError};
use crate::payload;
use crate::stats::Counters;
use crate::streamable_http::{PROTOCOL_VERSIONS, SESSION_HEADER};

/// The revision this client speaks (initialize handshake, sessions).
const PROTOCOL_VERSION: &str = PROTOCOL_VERSIONS[0];
const VERSION_HEADER: &str = "mcp-protocol-version";
const ACCEPT: &str = "application/json, text/event-stream";

pub(crate) struct McpSession {
    cfg: WattConfig,
    http: reqwest::Client,
    next_id: AtomicU64,
    /// The live session and its generation; a lost session is replaced only once even when
    /// many calls notice it together.
    current: Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    generation: u64,
    session: Option<Arc<Session>>,
}

/// What the handshake settled: the server's session id (if it keeps sessions) and the
/// protocol revision it chose.
struct Session {
    id: Option<HeaderValue>,
    version: HeaderValue,
}

/// Why one HTTP exchange failed.
enum Failure {
    /// The server answered 404 to a request that carried our session id: it forgot the session.
    SessionLost,
    Other(ProviderError),
}

impl From<ProviderError> for Failure {
    fn from(e: ProviderError) -> Self {
        Failure::Other(e)
    }
}

#[derive(Serialize)]
struct ToolCall<'a> {
    name: &'a str,
    arguments: &'a Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InitializeResult {
    protocol_version: String,
}

impl McpSession {
    pub(crate) fn new(cfg: WattConfig, http: reqwest::Client) -> Self {
        Self {
            cfg,
            http,
            next_id: AtomicU64::new(1),
            current: Mutex::new(Slot::default()),
        }
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    async fn session(&self, counters: &Counters) -> Result<(u64, Arc<Session>), ProviderError> {
        let mut slot = self.current.lock().await;
        if let Some(session) = slot.session.as_ref() {
            return Ok((slot.generation, session.clone()));
        }
        slot.generation += 1;
        counters.session();
        let session = Arc::new(self.open().await?);
        slot.session = Some(session.clone());
        Ok((slot.generation, session))
    }

    /// The handshake: `initialize`, then `notifications/initialized` on the new session.
    async fn open(&self) -> Result<Session, ProviderError> {
        let id = self.next_id();
        let init = Request::call(
            id,
            "initialize",
            serde_json::json!({
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "icp-mcp", "version": env!("CARGO_PKG_VERSION")},
            }),
        );
        let exchange = async {
            let resp = self.post(&init, None).await?;
            let session_id = resp.headers().get(SESSION_HEADER).cloned();
            let answer: InitializeResult = self.read_answer(resp, id, false).await?;
            let version = HeaderValue::from_str(&answer.protocol_version).map_err(|_| {
                ProviderError::protocol("initialize answered an unusable protocol version")
            })?;
            let session = Session {
                id: session_id,
                version,
            };
            let initialized =
                Request::notification("notifications/initialized", serde_json::json!({}));
            let resp = self.post(&initialized, Some(&session)).await?;
            if !resp.status().is_success() {
                return Err(http_failure(&resp));
            }
            Ok(session)
        };
        match tokio::time::timeout(self.cfg.timeout, exchange).await {
            Ok(Ok(session)) => Ok(session),
            Ok(Err(Failure::Other(e))) => Err(e),
            Ok(Err(Failure::SessionLost)) => Err(ProviderError::unavailable(
                "the upstream forgot the session during the handshake",
            )),
            Err(_) => Err(ProviderError::unavailable(format!(
                "MCP initialize did not finish within {:?}",
                self.cfg.timeout
            ))),
        }
    }

    /// Opens the session now, so a wrong URL or key shows at start-up rather than mid-job.
    pub(crate) async fn ensure_open(&self, counters: &Counters) -> Result<(), ProviderError> {
        self.session(counters).await.map(|_| ())
    }

    /// One attempt at one tool call's exchange (retries are the caller's): the request out and
    /// the message that answers it in, whole and not yet parsed (see
    /// [`AnswerMessage::into_payload`]). A lost session is replaced and the call sent again
    /// once, within the same attempt: the server never ran it.
    pub(crate) async fn exchange_tool(
        &self,
        counters: &Counters,
        tool: &str,
        arguments: &Value,
    ) -> Result<AnswerMessage, ProviderError> {
        let mut lost_before = false;
        loop {
            let (generation, session) = self.session(counters).await?;
            let id = self.next_id();
            let request = Request::call(
                id,
                "tools/call",
                ToolCall {
                    name: tool,
                    arguments,
                },
            );
            let exchange = async {
                let resp = self.post(&request, Some(&session)).await?;
                self.read_message(resp, id).await
            };
            let outcome = tokio::time::timeout(self.cfg.timeout, exchange)
                .await
                .unwrap_or_else(|_| {
                    Err(Failure::Other(ProviderError::unavailable(format!(
                        "no answer within {:?}",
                        self.cfg.timeout
                    ))))
                });
            match outcome {
                Ok(bytes) => return Ok(AnswerMessage { bytes, id }),
                Err(Failure::Other(e)) => return Err(e),
                Err(Failure::SessionLost) => {
                    self.discard(generation).await;
                    if lost_before {
                        return Err(ProviderError::unavailable(
                            "the upstream lost the MCP session twice in one call",
                        ));
                    }
                    lost_before = true;
                }
            }
        }
    }

    async fn discard(&self, generation: u64) {
        let mut slot = self.current.lock().await;
        if slot.generation == generation {
            slot.session = None;
        }
    }

    async fn post<P: Serialize>(
        &self,
        message: &Request<'_, P>,
        session: Option<&Session>,
    ) -> Result<reqwest::Response, Failure> {
        let body = serde_json::to_vec(message)
            .map_err(|e| ProviderError::validation(format!("request not serialisable: {e}")))?;
        let mut req = self
            .http
            .post(self.cfg.url.as_str())
            .bearer_auth(self.cfg.api_key.expose())
            .header(header::ACCEPT, ACCEPT)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(s) = session {
            req = req.header(VERSION_HEADER, s.version.clone());
            if let Some(id) = &s.id {
                req = req.header(SESSION_HEADER, id.clone());
            }
        }
        let resp = req.send().await.map_err(|e| {
            ProviderError::unavailable(format!("MCP request failed: {}", e.without_url()))
        })?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND
            && session.is_some_and(|s| s.id.is_some())
        {
            return Err(Failure::SessionLost);
        }
        Ok(resp)
    }

    /// The answer to request `id`, parsed.
    async fn read_answer<T: DeserializeOwned>(
        &self,
        resp: reqwest::Response,
        id: u64,
        tool_result: bool,
    ) -> Result<T, Failure> {
        let message = self.read_message(resp, id).await?;
        Ok(decode_message(&message, id, tool_result)?)
    }

    /// The message that answers request `id`, whole and not yet parsed: a JSON body, or the
    /// event that carries it on the SSE stream the server opened for the request (which may
    /// carry the server's own notifications first).
    async fn read_message(&self, resp: reqwest::Response, id: u64) -> Result<Vec<u8>, Failure> {
        if !resp.status().is_success() {
            return Err(http_failure(&resp));
        }
        let sse = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
        let max = self.cfg.max_response_bytes;
        if !sse {
            return Ok(read_body(resp, max).await?);
        }
        // SSE: events are read as they arrive and the answer taken as soon as it is complete;
        // a server may keep the stream open after it (closing it is only a SHOULD).
        let mut stream = resp.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        // What is left in `buf` holds no event boundary, so only bytes from here on (with the
        // two before them, which can start one) need searching.
        let mut fresh = 0usize;
        let mut ended = false;
        loop {
            let complete = if ended {
                buf.len()
            } else {
                let from = fresh.saturating_sub(2);
                match complete_events_end(&buf[from..]) {
                    0 => 0,
                    end => from + end,
                }
            };
            for data in sse_messages(&buf[..complete]) {
                if answers(&data, id)?.is_some() {
                    return Ok(data.into_owned());
                }
            }
            if ended {
                return Err(ProviderError::protocol(
                    "the SSE stream ended without an answer to the request",
                )
                .into());
            }
            buf.drain(..complete);
            fresh = buf.len();
            match stream.next().await {
                Some(chunk) => {
                    let chunk = chunk.map_err(|e| {
                        ProviderError::unavailable(format!(
                            "MCP answer cut off: {}",
                            e.without_url()
                        ))
                    })?;
                    if buf.len() + chunk.len() > max {
                        return Err(too_large(max).into());
                    }
                    buf.extend_from_slice(&chunk);
                }
                None => ended = true,
            }
        }
    }
}

/// A tool call's answer as it arrived, parsed apart from the exchange (see
/// `WattProvider::call`: the upstream is done with a call once its answer is in).
pub(crate) struct AnswerMessage {
    bytes: Vec<u8>,
    id: u64,
}

/// Answers up to this size are parsed where they arrived: a hop to the blocking pool would cost
/// more than the parse.
const PARSE_IN_PLACE_BYTES: usize = 64 * 1024;

impl AnswerMessage {
    pub(crate) fn payload<T: DeserializeOwned>(&self) -> Result<T, ProviderError> {
        decode_message(&self.bytes, self.id, true)
    }

    /// The payload, parsed on the blocking pool when the answer is large. A megabyte of JSON
    /// is milliseconds of CPU, and the task that awaits one call usually drives the others in
    /// flight too (a stage's calls share one stream): parsed there, the next request would
    /// not go out, nor the other answers be read, until the parse ended.
    pub(crate) async fn into_payload<T>(self) -> Result<T, ProviderError>
    where
        T: DeserializeOwned + Send + 'static,
    {
        if self.bytes.len() <= PARSE_IN_PLACE_BYTES {
            return self.payload();
        }
        tokio::task::spawn_blocking(move || self.payload())
            .await
            .map_err(|e| ProviderError::unavailable(format!("parsing the answer stopped: {e}")))?
    }
}

/// The payload of `message`, the answer to request `id`.
fn decode_message<T: DeserializeOwned>(
    message: &[u8],
    id: u64,
    tool_result: bool,
) -> Result<T, ProviderError> {
    let answer = answers(message, id)?
        .ok_or_else(|| ProviderError::protocol("the server answered another request's id"))?;
    decode(answer, tool_result)
}

/// The payload of an answer: a tool result unwrapped, or any other result as it is.
fn decode<T: DeserializeOwned>(answer: Answer<'_>, tool_result: bool) -> Result<T, ProviderError> {
    match answer {
        Answer::Result(raw) if tool_result => payload::tool_payload(raw),
        Answer::Result(raw) => serde_json::from_str(raw.get())
            .map_err(|e| ProviderError::protocol(format!("unexpected result shape: {e}"))),
        Answer::Error(e) => Err(payload::rpc_error(e.code, &e.message)),
    }
}

/// Where the last complete SSE event of `buf` ends (just past its blank line), or 0.
fn complete_events_end(buf: &[u8]) -> usize {
    (1..buf.len())
        .rev()
        .find(|&i| {
            buf[i] == b'\n'
                && (buf[i - 1] == b'\n' || (i >= 2 && buf[i - 1] == b'\r' && buf[i - 2] == b'\n'))
        })
        .map_or(0, |i| i + 1)
}

fn too_large(max: usize) -> ProviderError {
    ProviderError::protocol(format!("answer larger than the {max}-byte limit"))
}

enum Answer<'a> {
    Result(&'a RawValue),
    Error(RpcError),
}

/// `Some` when the message is the answer to request `id`; `None` for anything else (the
/// server's notifications and requests, which this client does not act on).
fn answers(data: &[u8], id: u64) -> Result<Option<Answer<'_>>, ProviderError> {
    let msg: Envelope<'_> = serde_json::from_slice(data)
        .map_err(|e| ProviderError::protocol(format!("the answer is not JSON-RPC: {e}")))?;
    let ours = msg.method.is_none()
        && match &msg.id {
            Some(Value::Number(n)) => n.as_u64() == Some(id),
            Some(Value::String(s)) => s.parse() == Ok(id),
            _ => msg.error.is_some(),
        };
    if !ours {
        return Ok(None);
    }
    match (msg.result, msg.error) {
        (_, Some(e)) => Ok(Some(Answer::Error(e))),
        (Some(r), None) => Ok(Some(Answer::Result(r))),
        (None, None) => Err(ProviderError::protocol(
            "a JSON-RPC answer with neither result nor error",
        )),
    }
}

/// The `data` of each SSE event of type `message` (the default type); an event's several
/// `data:` lines are joined with `\n`, as the SSE rules say.
fn sse_messages(body: &[u8]) -> Vec<Cow<'_, [u8]>> {
    fn end_event<'a>(out: &mut Vec<Cow<'a, [u8]>>, data: &mut Vec<&'a [u8]>, is_message: bool) {
        if is_message && !data.is_empty() {
            out.push(match data.as_slice() {
                [one] => Cow::Borrowed(*one),
                many => Cow::Owned(many.join(&b'\n')),
            });
        }
        data.clear();
    }
    let mut out = Vec::new();
    let mut data: Vec<&[u8]> = Vec::new();
    let mut is_message = true;
    for line in body.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            end_event(&mut out, &mut data, is_message);
            is_message = true;
        } else if let Some(v) = line.strip_prefix(b"data:") {
            data.push(v.strip_prefix(b" ").unwrap_or(v));
        } else if let Some(v) = line.strip_prefix(b"event:") {
            is_message = v.trim_ascii() == b"message";
        }
    }
    end_event(&mut out, &mut data, is_message);
    out
}

fn http_failure(resp: &reqwest::Response) -> Failure {
    let retry_after = resp
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok());
    Failure::Other(payload::http_status(resp.status().as_u16(), retry_after))
}

/// The whole body, refused past `max` bytes (a runaway answer must not exhaust memory).
async fn read_body(resp: reqwest::Response, max: usize) -> Result<Vec<u8>, ProviderError> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_large(max));
    }
    let mut body = Vec::with_capacity(resp.content_length().unwrap_or(0) as usize);
    let mut chunks = resp.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| {
            ProviderError::unavailable(format!("MCP answer cut off: {}", e.without_url()))
        })?;
        if body.len() + chunk.len() > max {
            return Err(too_large(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_are_split_and_joined_as_the_rules_say() {
        let body = b"event: message\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\n: a comment\nevent: ping\ndata: x\n\ndata: {\"b\":2}\n";
        let events = sse_messages(body);
        let events: Vec<&[u8]> = events.iter().map(|e| &**e).collect();
        assert_eq!(events, vec![&b"{\"a\":\n1}"[..], &b"{\"b\":2}"[..]]);
    }

    #[test]
    fn complete_events_end_after_their_blank_line() {
        assert_eq!(complete_events_end(b""), 0);
        assert_eq!(complete_events_end(b"data: {\"a\""), 0);
        assert_eq!(complete_events_end(b"data: 1\n\ndata: 2"), 9);
        assert_eq!(complete_events_end(b"data: 1\r\n\r\n"), 11);
        assert_eq!(complete_events_end(b"data: 1\n"), 0);
    }

    #[test]
    fn only_the_answer_to_our_request_is_taken() {
        let note = br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#;
        assert!(answers(note, 3).unwrap().is_none());
        let other = br#"{"jsonrpc":"2.0","id":2,"result":{}}"#;
        assert!(answers(other, 3).unwrap().is_none());
        let ours = br#"{"jsonrpc":"2.0","id":"3","result":{"x":1}}"#;
        assert!(
            matches!(answers(ours, 3).unwrap(), Some(Answer::Result(r)) if r.get() == r#"{"x":1}"#)
        );
        let failed = br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32602,"message":"bad"}}"#;
        assert!(matches!(answers(failed, 3).unwrap(), Some(Answer::Error(e)) if e.code == -32602));
        assert!(answers(b"not json", 3).is_err());
    }
}
