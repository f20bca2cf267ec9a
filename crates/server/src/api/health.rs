//! Liveness and readiness.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::problem::ApiError;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` when the check passed.
    pub status: &'static str,
    /// The population provider in use (`embedded`, `watt`).
    pub provider: &'static str,
    /// The job store's backend (`sqlite`, `postgres`).
    pub database: &'static str,
}

fn health(state: &AppState) -> Health {
    let database = match state.store.backend() {
        icp_store::Backend::Sqlite => "sqlite",
        icp_store::Backend::Postgres => "postgres",
    };
    Health {
        status: "ok",
        provider: state.provider.name(),
        database,
    }
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
async fn healthz(State(state): State<AppState>) -> Json<Health> {
    Json(health(&state))
}

/// The process can serve: its database answers.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, body = Health),
        (status = 503, description = "The database does not answer", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.store.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check: database unreachable");
        ApiError::Unavailable("the database does not answer".to_owned())
    })?;
    Ok(Json(health(&state)))
}
