//! A server that answers a tool call on an SSE stream it keeps open (closing it after the answer
//! is only a SHOULD), with a notification first: the client takes the answer as soon as its
//! event is complete instead of waiting for the stream to end.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
use icp_contract::{FeedbackRequest, PopulationProvider};
use icp_mcp::{Secret, WattConfig, WattProvider};
use serde_json::{Value, json};

async fn mcp(body: Bytes) -> Response {
    let msg: Value = serde_json::from_slice(&body).unwrap();
    let Some(id) = msg.get("id").cloned() else {
        return StatusCode::ACCEPTED.into_response();
    };
    if msg["method"] == "initialize" {
        let answer = json!({"jsonrpc": "2.0", "id": id, "result": {
            "protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
            "serverInfo": {"name": "open-stream", "version": "0"}}});
        return (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::HeaderName::from_static("mcp-session-id"), "s-1"),
            ],
            answer.to_string(),
        )
            .into_response();
    }
    let payload = json!({"accepted": true, "tool_trace_id": "t-1", "workflow_id": "w-1"});
    let answer = json!({"jsonrpc": "2.0", "id": id, "result": {
        "content": [{"type": "text", "text": payload.to_string()}],
        "structuredContent": payload}})
    .to_string();
    // The answer's data split over two lines and two network chunks, after a notification.
    // (split between two JSON tokens: the line break joining them is whitespace)
    let (head, tail) = answer.split_at(answer.find("\"result\"").unwrap());
    let events = vec![
        "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n".to_owned(),
        format!("event: message\ndata: {head}\n"),
        format!("data: {tail}\n\n"),
    ];
    let stream = futures::stream::iter(
        events
            .into_iter()
            .map(|e| Ok::<_, std::io::Error>(Bytes::from(e))),
    )
    .chain(futures::stream::pending());
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(stream),
    )
        .into_response()
}

#[tokio::test]
async fn an_answer_on_an_sse_stream_left_open_is_taken_at_once() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, Router::new().route("/mcp", post(mcp)))
            .await
            .unwrap();
    });
    let mut cfg = WattConfig::new(format!("http://{addr}/mcp"), Secret::new("k"));
    cfg.timeout = Duration::from_secs(20);
    cfg.max_retries = 0;
    let client = WattProvider::connect(cfg).await.unwrap();
    let started = Instant::now();
    let answer = client
        .submit_feedback(FeedbackRequest {
            workflow_id: Some("w-1".into()),
            tool_trace_ids: vec![],
            rating: Some(5),
            message: "fine".into(),
        })
        .await
        .unwrap();
    assert!(answer.accepted);
    assert_eq!(answer.tool_trace_id.as_deref(), Some("t-1"));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "waited for the stream to end: {:?}",
        started.elapsed()
    );
}
