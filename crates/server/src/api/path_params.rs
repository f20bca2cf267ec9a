//! Typed path parameters: a handler receives a parsed id, and a malformed one is answered the
//! way a missing one is.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use icp_analysis::Strategy;
use uuid::Uuid;

use crate::decode::shorten;
use crate::problem::ApiError;

/// The `{id}` of a `/v1/jobs/{id}…` route. Anything that is not a UUID is a 404, not a 400: no
/// job can have that id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobId(pub Uuid);

/// The `{strategy}` of an audience route: an unknown strategy is an audience that does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudienceStrategy(pub Strategy);

/// The raw value of the path parameter `name`.
async fn raw_param<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
    name: &str,
) -> Result<String, ApiError> {
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    params
        .iter()
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
        .ok_or_else(|| ApiError::internal(format!("the route has no {{{name}}} parameter")))
}

impl<S: Send + Sync> FromRequestParts<S> for JobId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = raw_param(parts, state, "id").await?;
        Uuid::parse_str(&raw).map(JobId).map_err(|_| {
            let shown = shorten(&raw, 64);
            ApiError::NotFound(format!("no job {shown:?} (job ids are UUIDs)"))
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AudienceStrategy {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = raw_param(parts, state, "strategy").await?;
        serde_json::from_value(serde_json::Value::String(raw.clone()))
            .map(AudienceStrategy)
            .map_err(|_| {
                let shown = shorten(&raw, 64);
                ApiError::NotFound(format!(
                    "no audience strategy {shown:?}; use precision, standard, hybrid or reach"
                ))
            })
    }
}
