//! The ceiling for the HTTP benchmark: a bare axum handler answering a job-sized JSON document
//! from memory, with no database and no middleware. `benches/http.sh` loads it beside the real
//! `GET /v1/jobs/{id}` in the same run.

use axum::{Json, Router, extract::Path, routing::get};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8099".to_owned());
    let app = Router::new().route(
        "/v1/jobs/{id}",
        get(|Path(id): Path<String>| async move {
            Json(serde_json::json!({
                "id": id, "status": "succeeded", "stage": "find",
                "progress": {"resolve": {"done": 100, "total": 100}, "enrich": {"done": 100, "total": 100}},
                "workflow_id": "0f8fad5b-d9cb-469f-a165-70867728950e", "attempt": 1,
            }))
        }),
    );
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    axum::serve(listener, app).await
}
