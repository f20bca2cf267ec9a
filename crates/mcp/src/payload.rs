//! Reading a `tools/call` answer: the payload wherever the server put it, and every failure as a
//! typed [`ProviderError`] that says whether a retry can help.

use std::time::Duration;

use icp_contract::ProviderError;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::jsonrpc::{INTERNAL_ERROR, INVALID_PARAMS};

/// A `tools/call` result, read only as far as finding the payload: the parts stay unparsed
/// slices of the answer until one of them is chosen.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolResult<'a> {
    #[serde(default, borrow)]
    structured_content: Option<&'a RawValue>,
    #[serde(default, borrow)]
    content: Option<Vec<ContentBlock<'a>>>,
    #[serde(default)]
    is_error: Option<bool>,
}

#[derive(Deserialize)]
struct ContentBlock<'a> {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default, borrow)]
    text: Option<&'a RawValue>,
}

impl ToolResult<'_> {
    /// The first text content, unescaped.
    fn text(&self) -> Option<String> {
        self.content
            .iter()
            .flatten()
            .filter(|c| c.kind.as_deref() == Some("text"))
            .find_map(|c| serde_json::from_str::<String>(c.text?.get()).ok())
    }
}

fn shape_error(e: serde_json::Error) -> ProviderError {
    ProviderError::protocol(format!("answered an unexpected shape: {e}"))
}

/// The payload of a `tools/call` answer, parsed into `T`:
///
/// 1. `structuredContent` when it has the tool's shape (it parses as `T`);
/// 2. unwrapped from `structuredContent: {"result": X}`, X the payload or a string holding its
///    JSON: the official Python SDK (FastMCP) wraps every return value that is not an object so,
///    a tool that returns its JSON as a string included;
/// 3. JSON text in the first text content;
/// 4. the bare result (older servers put the payload there).
///
/// `isError: true` is a typed tool failure.
pub(crate) fn tool_payload<T: DeserializeOwned>(result: &RawValue) -> Result<T, ProviderError> {
    let r: ToolResult<'_> = serde_json::from_str(result.get()).map_err(shape_error)?;
    if r.is_error == Some(true) {
        let structured = r
            .structured_content
            .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok());
        return Err(tool_error(
            structured.as_ref(),
            r.text().as_deref().unwrap_or(""),
        ));
    }
    // Why the structured content was passed over, reported if the text does not serve either.
    let mut passed_over = None;
    if let Some(raw) = r.structured_content {
        match structured_payload(raw) {
            Ok(payload) => return Ok(payload),
            Err(e) => passed_over = Some(e),
        }
    }
    if r.content.is_none() {
        if let Some(e) = passed_over {
            return Err(e);
        }
        return serde_json::from_str(result.get()).map_err(shape_error);
    }
    match (r.text(), passed_over) {
        (Some(t), passed_over) => serde_json::from_str(&t).map_err(|e| match passed_over {
            Some(structured) => structured,
            None => ProviderError::protocol(format!("tool answered text that is not JSON: {e}")),
        }),
        (None, Some(structured)) => Err(structured),
        (None, None) => Err(ProviderError::protocol(
            "tool answered neither structuredContent nor text content",
        )),
    }
}

/// `structuredContent: {"result": X}` and nothing else: the Python SDK's wrapper.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wrapped<'a> {
    #[serde(borrow)]
    result: &'a RawValue,
}

/// The payload in `structuredContent`: the content itself when it has the tool's shape, else
/// what a `{"result": X}` wrapper holds (X the payload, or a string holding its JSON).
fn structured_payload<T: DeserializeOwned>(raw: &RawValue) -> Result<T, ProviderError> {
    // The wrapper first: a payload whose fields all have defaults would also parse from it.
    if let Ok(Wrapped { result }) = serde_json::from_str::<Wrapped<'_>>(raw.get()) {
        let parsed = match serde_json::from_str::<String>(result.get()) {
            Ok(text) => serde_json::from_str(&text),
            Err(_) => serde_json::from_str(result.get()),
        };
        return parsed.map_err(|e| {
            ProviderError::protocol(format!(
                "answered an unexpected shape in structuredContent.result: {e}"
            ))
        });
    }
    serde_json::from_str(raw.get()).map_err(shape_error)
}

/// A tool failure (`isError: true`). Our own server says what kind it is in
/// `structuredContent.error.kind`; otherwise the message is all there is to go by, and a failure
/// that names no transient cause is taken as a property of the request, so it is not retried.
fn tool_error(structured: Option<&Value>, text: &str) -> ProviderError {
    let declared = structured
        .and_then(|v| v.get("error"))
        .and_then(|e| e.get("kind"))
        .and_then(Value::as_str);
    let message = structured
        .and_then(|v| v.get("error"))
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .unwrap_or(text)
        .to_owned();
    let lower = message.to_ascii_lowercase();
    let kind = declared.unwrap_or(if lower.contains("not found") {
        "not_found"
    } else if lower.contains("rate limit") || lower.contains("too many requests") {
        "rate_limited"
    } else if lower.contains("timeout")
        || lower.contains("timed out")
        || lower.contains("unavailable")
        || lower.contains("temporar")
    {
        "unavailable"
    } else if lower.contains("unauthori") || lower.contains("forbidden") {
        "unauthorized"
    } else {
        "validation"
    });
    match kind {
        "not_found" => ProviderError::NotFound { message },
        "rate_limited" => ProviderError::RateLimited { retry_after: None },
        "unavailable" => ProviderError::Unavailable { message },
        "unauthorized" => ProviderError::Unauthorized { message },
        "export_expired" => ProviderError::ExportExpired { message },
        "protocol" => ProviderError::Protocol { message },
        _ => ProviderError::Validation { message },
    }
}

/// A JSON-RPC `error` answer. Invalid params is the request's fault; an internal error may pass.
pub(crate) fn rpc_error(code: i64, message: &str) -> ProviderError {
    let message = format!("JSON-RPC error {code}: {message}");
    match code {
        INVALID_PARAMS => ProviderError::Validation { message },
        INTERNAL_ERROR => ProviderError::Unavailable { message },
        _ => ProviderError::Protocol { message },
    }
}

/// Maps an HTTP status to the error it means for a retry decision.
pub(crate) fn http_status(status: u16, retry_after: Option<&str>) -> ProviderError {
    match status {
        429 => ProviderError::RateLimited {
            retry_after: retry_after.and_then(parse_retry_after),
        },
        401 | 403 => ProviderError::Unauthorized {
            message: format!("HTTP {status}"),
        },
        500..=599 | 408 => ProviderError::unavailable(format!("HTTP {status}")),
        400 | 422 => ProviderError::validation(format!("HTTP {status}")),
        _ => ProviderError::protocol(format!("unexpected HTTP {status}")),
    }
}

/// `Retry-After` as whole seconds or as an HTTP-date (RFC 9110 §10.2.3); a date in the past
/// means "now".
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload(v: Value) -> Result<Value, ProviderError> {
        let raw = RawValue::from_string(v.to_string()).unwrap();
        tool_payload(&raw)
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        let soon = std::time::SystemTime::now() + Duration::from_secs(30);
        let wait = parse_retry_after(&httpdate::fmt_http_date(soon)).unwrap();
        assert!(
            wait > Duration::from_secs(27) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn payload_is_read_from_structured_content_text_or_bare_result() {
        let want = json!({"total": 3, "sample": []});
        let structured = json!({
            "content": [{"type": "text", "text": "ignored"}],
            "structuredContent": want,
        });
        assert_eq!(payload(structured).unwrap(), want);
        let text = json!({
            "content": [{"type": "text", "text": want.to_string()}],
        });
        assert_eq!(payload(text).unwrap(), want);
        let bare = json!({"total": 3, "sample": [], "workflow_id": "w"});
        assert_eq!(payload(bare).unwrap()["workflow_id"], "w");
    }

    /// A payload with the shape of a tool's answer (not any JSON, as `Value` would be).
    #[derive(Debug, PartialEq, Deserialize)]
    struct Found {
        total: u64,
        #[serde(default)]
        workflow_id: Option<String>,
    }

    fn found(v: Value) -> Result<Found, ProviderError> {
        let raw = RawValue::from_string(v.to_string()).unwrap();
        tool_payload(&raw)
    }

    #[test]
    fn the_python_sdks_result_wrapper_is_unwrapped() {
        let want = Found {
            total: 3,
            workflow_id: Some("w".to_owned()),
        };
        let json = json!({"total": 3, "workflow_id": "w"});
        // A FastMCP tool that returns its JSON as a string: the string twice.
        let as_string = json!({
            "content": [{"type": "text", "text": json.to_string()}],
            "structuredContent": {"result": json.to_string()},
        });
        assert_eq!(found(as_string).unwrap(), want);
        // A tool whose return value is wrapped as it is.
        let as_value = json!({
            "content": [{"type": "text", "text": json.to_string()}],
            "structuredContent": {"result": json},
        });
        assert_eq!(found(as_value).unwrap(), want);
        // A typed object: structuredContent is the payload itself.
        let typed = json!({
            "content": [{"type": "text", "text": json.to_string()}],
            "structuredContent": json,
        });
        assert_eq!(found(typed).unwrap(), want);
        // Structured content of another shape: the text serves.
        let other = json!({
            "content": [{"type": "text", "text": json.to_string()}],
            "structuredContent": {"rows": []},
        });
        assert_eq!(found(other).unwrap(), want);
        // Neither serves: the structured content's fault is the one reported.
        let neither = json!({
            "content": [{"type": "text", "text": "done"}],
            "structuredContent": {"result": "{\"sample\": []}"},
        });
        let err = found(neither).unwrap_err();
        assert!(
            matches!(&err, ProviderError::Protocol { message } if message.contains("structuredContent.result") && message.contains("total")),
            "{err:?}"
        );
        let only_structured = json!({"structuredContent": {"sample": []}});
        assert!(matches!(
            found(only_structured).unwrap_err(),
            ProviderError::Protocol { .. }
        ));
    }

    #[test]
    fn python_sdk_tool_errors_keep_their_meaning() {
        // FastMCP answers a raised exception as text, prefixed with the tool's name.
        let error = |text: &str| {
            found(json!({
                "isError": true,
                "content": [{"type": "text", "text": format!("Error executing tool find_persons: {text}")}],
            }))
            .unwrap_err()
        };
        assert!(!error("expression has no positive term").is_retryable());
        assert!(error("upstream timed out").is_retryable());
        assert!(error("rate limit exceeded").is_retryable());
        assert!(matches!(
            error("cluster 9 not found"),
            ProviderError::NotFound { .. }
        ));
    }

    #[test]
    fn tool_errors_are_typed_and_validation_is_not_retryable() {
        let declared = json!({
            "isError": true,
            "content": [{"type": "text", "text": "x"}],
            "structuredContent": {"error": {"kind": "not_found", "message": "no cluster 7"}},
        });
        assert_eq!(
            payload(declared).unwrap_err(),
            ProviderError::not_found("no cluster 7")
        );
        let plain = json!({
            "isError": true,
            "content": [{"type": "text", "text": "expression has no positive term"}],
        });
        let err = payload(plain).unwrap_err();
        assert!(matches!(err, ProviderError::Validation { .. }));
        assert!(!err.is_retryable());
        let transient = json!({
            "isError": true,
            "content": [{"type": "text", "text": "backend temporarily unavailable"}],
        });
        assert!(payload(transient).unwrap_err().is_retryable());
    }

    #[test]
    fn http_statuses_map_to_retry_decisions() {
        assert_eq!(
            http_status(429, Some("3")),
            ProviderError::RateLimited {
                retry_after: Some(Duration::from_secs(3))
            }
        );
        assert!(http_status(503, None).is_retryable());
        assert!(!http_status(401, None).is_retryable());
        assert!(!http_status(400, None).is_retryable());
    }
}
