//! Reading a `tools/call` answer: the payload wherever the server put it, and every failure as a
//! typed [`ProviderError`] that says whether a retry can help.

use std::time::Duration;

use icp_contract::ProviderError;
use rmcp::model::{CallToolResult, ErrorCode, ErrorData, ServerResult};
use rmcp::service::ServiceError;
use rmcp::transport::streamable_http_client::{
    AuthRequiredError, HttpStatusError, InsufficientScopeError, StreamableHttpError,
};
use serde_json::Value;

/// The payload of a `tools/call` answer, read from `structuredContent`, then from JSON text in
/// the first text content, then from a bare result (older servers put the payload there).
pub(crate) fn unwrap_result(result: ServerResult) -> Result<Value, ProviderError> {
    match result {
        ServerResult::CallToolResult(r) => unwrap_call_tool_result(r),
        ServerResult::CustomResult(custom) => Ok(custom.0),
        other => Err(ProviderError::protocol(format!(
            "tools/call answered with an unexpected result kind: {}",
            result_kind(&other)
        ))),
    }
}

fn result_kind(r: &ServerResult) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| {
            v.as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>().join(","))
        })
        .unwrap_or_default()
}

pub(crate) fn unwrap_call_tool_result(r: CallToolResult) -> Result<Value, ProviderError> {
    let text = r
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.as_str()))
        .next();
    if r.is_error == Some(true) {
        return Err(tool_error(
            r.structured_content.as_ref(),
            text.unwrap_or(""),
        ));
    }
    if let Some(v) = r.structured_content
        && !v.is_null()
    {
        return Ok(v);
    }
    match text {
        Some(t) => serde_json::from_str(t).map_err(|e| {
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
pub(crate) fn rpc_error(e: &ErrorData) -> ProviderError {
    let message = format!("JSON-RPC error {}: {}", e.code.0, e.message);
    if e.code == ErrorCode::INVALID_PARAMS {
        ProviderError::Validation { message }
    } else if e.code == ErrorCode::INTERNAL_ERROR {
        ProviderError::Unavailable { message }
    } else {
        ProviderError::Protocol { message }
    }
}

/// Classifies an rmcp failure by walking its source chain for the HTTP status it carries.
pub(crate) fn service_error(e: &ServiceError) -> ProviderError {
    match e {
        ServiceError::McpError(data) => rpc_error(data),
        ServiceError::Timeout { timeout } => {
            ProviderError::unavailable(format!("no answer within {timeout:?}"))
        }
        ServiceError::TransportClosed => ProviderError::unavailable("MCP session closed"),
        ServiceError::TransportSend(err) => transport_error(err.error.as_ref()),
        ServiceError::UnexpectedResponse => {
            ProviderError::protocol("the server answered with an unexpected response type")
        }
        other => ProviderError::protocol(other.to_string()),
    }
}

/// An error raised below JSON-RPC: an HTTP status, an auth refusal, or a broken connection.
pub(crate) fn transport_error(err: &(dyn std::error::Error + 'static)) -> ProviderError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        if let Some(status) = current.downcast_ref::<HttpStatusError>() {
            return http_status(status.status, status.retry_after.as_deref());
        }
        // `HttpStatus` is a transparent variant: its status never shows up as a `source()`.
        if let Some(StreamableHttpError::HttpStatus(status)) =
            current.downcast_ref::<StreamableHttpError<reqwest::Error>>()
        {
            return http_status(status.status, status.retry_after.as_deref());
        }
        if current.downcast_ref::<AuthRequiredError>().is_some()
            || current.downcast_ref::<InsufficientScopeError>().is_some()
        {
            return ProviderError::Unauthorized {
                message: "the upstream refused the API key".into(),
            };
        }
        source = current.source();
    }
    // Dropped connections, truncated bodies, lost sessions that could not be recovered: all
    // transient from where we stand.
    ProviderError::unavailable(format!("transport failure: {err}"))
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

/// `Retry-After` as delay-seconds. The HTTP-date form is rare on APIs; it falls back to backoff.
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

    fn server_result(v: Value) -> ServerResult {
        serde_json::from_value(v).unwrap()
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
        let payload = json!({"total": 3, "sample": []});
        let structured = server_result(json!({
            "content": [{"type": "text", "text": "ignored"}],
            "structuredContent": payload,
        }));
        assert_eq!(unwrap_result(structured).unwrap(), payload);
        let text = server_result(json!({
            "content": [{"type": "text", "text": payload.to_string()}],
        }));
        assert_eq!(unwrap_result(text).unwrap(), payload);
        let bare = server_result(json!({"total": 3, "sample": [], "workflow_id": "w"}));
        assert_eq!(unwrap_result(bare).unwrap()["workflow_id"], "w");
    }

    #[test]
    fn tool_errors_are_typed_and_validation_is_not_retryable() {
        let declared = server_result(json!({
            "isError": true,
            "content": [{"type": "text", "text": "x"}],
            "structuredContent": {"error": {"kind": "not_found", "message": "no cluster 7"}},
        }));
        assert_eq!(
            unwrap_result(declared).unwrap_err(),
            ProviderError::not_found("no cluster 7")
        );
        let plain = server_result(json!({
            "isError": true,
            "content": [{"type": "text", "text": "expression has no positive term"}],
        }));
        let err = unwrap_result(plain).unwrap_err();
        assert!(matches!(err, ProviderError::Validation { .. }));
        assert!(!err.is_retryable());
        let transient = server_result(json!({
            "isError": true,
            "content": [{"type": "text", "text": "backend temporarily unavailable"}],
        }));
        assert!(unwrap_result(transient).unwrap_err().is_retryable());
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
