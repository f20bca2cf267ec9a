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

/// The payload of a `tools/call` answer, parsed into `T` from `structuredContent`, else from
/// JSON text in the first text content, else from the bare result (older servers put the
/// payload there). `isError: true` is a typed tool failure.
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
    if let Some(raw) = r.structured_content {
        return serde_json::from_str(raw.get()).map_err(shape_error);
    }
    if r.content.is_none() {
        return serde_json::from_str(result.get()).map_err(shape_error);
    }
    match r.text() {
        Some(t) => serde_json::from_str(&t).map_err(|e| {
            ProviderError::protocol(format!("tool answered text that is not JSON: {e}"))
        }),
        None => Err(ProviderError::protocol(
            "tool answered neither structuredContent nor text content",
        )),
    }
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
