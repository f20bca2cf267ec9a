//! Typed path parameters: a handler receives a parsed id, and a malformed one is answered the
//! way a missing one is.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use icp_analysis::Strategy;
use uuid::Uuid;

use icp_contract::RANKED_FRACTIONS;

use crate::decode::shorten;
use crate::input::{SEGMENT_NAME_PATTERN, segment_name_problem};
use crate::model::{COMBINED_AUDIENCE, ranked_tier_name, strategy_name};
use crate::problem::ApiError;

/// The `{id}` of a `/v1/jobs/{id}…` route. Anything that is not a UUID is a 404, not a 400: no
/// job can have that id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobId(pub Uuid);

/// The `{strategy}` of an audience route: a boolean strategy or a ranked tier. Any other name is
/// an audience that does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudienceName {
    Strategy(Strategy),
    /// `ranked_1`, `ranked_2`, `ranked_5` or `ranked_10`.
    Ranked(String),
    /// A segment's audience, `segment.<name>.<strategy>`, or the segments' `combined` one.
    Segments(String),
    /// `custom-<n>`: an audience added to the finished job.
    Custom(String),
}

/// The names of custom audiences: `custom-` and a number from 1.
pub const CUSTOM_AUDIENCE_PATTERN: &str = "^custom-[1-9][0-9]{0,8}$";

fn is_custom(raw: &str) -> bool {
    raw.strip_prefix("custom-").is_some_and(|n| {
        (1..=9).contains(&n.len()) && !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Every audience name a path can hold, as a pattern: the strategies, the ranked tiers, the
/// segments' combined audience, each segment's (`segment.<name>.<strategy>`) and the custom
/// audiences (`custom-<n>`).
pub fn audience_name_pattern() -> String {
    let strategies = Strategy::ALL.map(strategy_name).join("|");
    let fixed: Vec<String> = AudienceName::all()
        .into_iter()
        .chain([COMBINED_AUDIENCE.to_owned()])
        .collect();
    let segment = SEGMENT_NAME_PATTERN
        .trim_start_matches('^')
        .trim_end_matches('$');
    let custom = CUSTOM_AUDIENCE_PATTERN
        .trim_start_matches('^')
        .trim_end_matches('$');
    format!(
        "^({}|segment\\.{segment}\\.({strategies})|{custom})$",
        fixed.join("|")
    )
}

impl AudienceName {
    /// Every audience name a path can hold.
    pub fn all() -> Vec<String> {
        Strategy::ALL
            .map(|s| strategy_name(s).to_owned())
            .into_iter()
            .chain(RANKED_FRACTIONS.map(ranked_tier_name))
            .collect()
    }

    /// The name in paths and in the store.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Strategy(s) => strategy_name(*s),
            Self::Ranked(name) | Self::Segments(name) | Self::Custom(name) => name,
        }
    }
}

/// Whether `raw` names a segment's audience: `segment.<name>.<strategy>`.
fn is_segment_audience(raw: &str) -> bool {
    let Some(rest) = raw.strip_prefix("segment.") else {
        return false;
    };
    let Some((name, strategy)) = rest.rsplit_once('.') else {
        return false;
    };
    segment_name_problem(name).is_none()
        && Strategy::ALL.iter().any(|s| strategy_name(*s) == strategy)
}

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

impl<S: Send + Sync> FromRequestParts<S> for AudienceName {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = raw_param(parts, state, "strategy").await?;
        if let Ok(strategy) = serde_json::from_value(serde_json::Value::String(raw.clone())) {
            return Ok(AudienceName::Strategy(strategy));
        }
        if RANKED_FRACTIONS.iter().any(|&f| ranked_tier_name(f) == raw) {
            return Ok(AudienceName::Ranked(raw));
        }
        if raw == COMBINED_AUDIENCE || is_segment_audience(&raw) {
            return Ok(AudienceName::Segments(raw));
        }
        if is_custom(&raw) {
            return Ok(AudienceName::Custom(raw));
        }
        let shown = shorten(&raw, 64);
        Err(ApiError::NotFound(format!(
            "no audience {shown:?}; use {}, {COMBINED_AUDIENCE}, segment.<name>.<strategy> or custom-<n>",
            Self::all().join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_audience_names_match_their_pattern() {
        let pattern = audience_name_pattern();
        assert!(
            pattern.contains("combined") && pattern.contains("ranked_10"),
            "{pattern}"
        );
        assert!(is_segment_audience("segment.golf-fans_2.precision"));
        assert!(is_segment_audience("segment.a.reach"));
        for bad in [
            "segment..precision",
            "segment.a.b.precision",
            "segment.a.best",
            "segment.a",
            "segments.a.precision",
        ] {
            assert!(!is_segment_audience(bad), "{bad}");
        }
    }
}
