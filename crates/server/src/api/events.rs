//! `GET /v1/jobs/{id}/events`: a job's changes as server-sent events, until it ends.
//!
//! Every write that changes a job's status, stage or progress appends a row to `job_events` in
//! its own transaction (`icp-store`), whichever process made it. A stream reads the rows after
//! the last one it sent, every `ServiceConfig::events_poll`, so it sees every change of every
//! replica, in order, and a client resuming with `Last-Event-ID` misses none. Each event is the
//! whole snapshot (status, stage, progress), so a client can draw the job from any one of them.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use icp_store::{EventKind, JobEvent, JobStatus, Stage, Store};
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::doc_json::operation_mut;
use super::jobs::no_job;
use super::path_params::JobId;
use crate::auth::Caller;
use crate::model::Progress;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// What `Last-Event-ID` may hold: an event's `id`, a whole number.
pub(super) const LAST_EVENT_ID_PATTERN: &str = "^[0-9]{1,18}$";
const LAST_EVENT_ID_MAX_DIGITS: usize = 18;
/// A comment line this often keeps proxies from closing a quiet stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Events read per look; a job has a few hundred at most.
const PAGE: u32 = 200;
/// How long a client over the limit of open streams should wait.
const STREAMS_RETRY_AFTER_SECS: u32 = 5;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(job_events))
}

/// The stream's schema as OpenAPI 3.1 reads an event stream: `schema` describes one event
/// (its `id`, `event` and `data` fields), the data being a `JobEventData` as JSON text.
pub fn document(doc: &mut Value) {
    let op = operation_mut(doc, "/v1/jobs/{id}/events", "get");
    let stream = &mut op["responses"]["200"]["content"]["text/event-stream"];
    assert!(stream.is_object(), "the events route describes its stream");
    stream["schema"] = json!({
        "type": "object",
        "required": ["id", "event", "data"],
        "properties": {
            "id": {"type": "string", "pattern": "^[1-9][0-9]{0,17}$",
                   "description": "The event's number: 1, 2, 3 … for this job"},
            "event": {"type": "string", "enum": EventKind::ALL.map(EventKind::as_str),
                      "description": "What changed"},
            "data": {"type": "string", "contentMediaType": "application/json",
                     "contentSchema": {"$ref": "#/components/schemas/JobEventData"},
                     "description": "The job after the change, one line of JSON"},
        },
    });
    stream["example"] = json!({
        "id": "1",
        "event": "status",
        "data": "{\"job_id\":\"7b0c7ad4-1c2e-4c8e-9d55-2d0f3f1f6a10\",\"status\":\"queued\",\"stage\":null,\"progress\":{\"resolve\":{\"done\":0,\"total\":0},\"enrich\":{\"done\":0,\"total\":0},\"analyze\":{\"done\":0,\"total\":0},\"map\":{\"done\":0,\"total\":0},\"find\":{\"done\":0,\"total\":0}},\"at\":\"2026-12-06T12:00:00.123Z\"}",
    });
}

/// The `data` of every event: the job as it stands after the change the event names.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobEventData {
    pub job_id: Uuid,
    pub status: JobStatus,
    pub stage: Option<Stage>,
    /// The same progress `GET /v1/jobs/{id}` shows.
    pub progress: Progress,
    /// When the change was made.
    #[serde(with = "crate::rfc3339")]
    pub at: OffsetDateTime,
}

/// Watch a job: its status, stage and progress changes as server-sent events, until it ends.
///
/// Each event has `id` (its number: 1, 2, 3 … for this job), `event` (`status`, `stage` or
/// `progress`: what changed) and `data`, one line of JSON: a `JobEventData`, the job's whole
/// state after the change. A job that has ended gets its events replayed, then the stream
/// closes; a running one's stream closes after the event of its final status. With
/// `Last-Event-ID` (as an `EventSource` sends when it reconnects) only the events after that
/// one are sent. A `: keep-alive` comment comes every 15 s of quiet.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}/events",
    tag = "jobs",
    params(
        ("id" = String, Path, description = "The job's id"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event (its `id`)"),
    ),
    responses(
        (status = 200, description = "The job's events; the stream closes once the job has ended",
            content((String = "text/event-stream"))),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn job_events(
    State(state): State<AppState>,
    caller: Caller,
    JobId(id): JobId,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let after = last_event_id(&headers)?;
    state
        .store
        .get_job(id, caller.owner())
        .await?
        .ok_or_else(|| no_job(id))?;
    let permit = state
        .event_streams
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::TooManyRequests {
            message: format!(
                "this server has {} event streams open, the most it keeps; try again later",
                state.config.max_event_streams
            ),
            retry_after: STREAMS_RETRY_AFTER_SECS,
        })?;
    let watch = Watch {
        store: state.store.clone(),
        id,
        last: after,
        pending: VecDeque::new(),
        done: false,
        poll: state.config.events_poll,
        shutdown: state.shutdown.clone(),
        _permit: permit,
    };
    let stream = events(watch);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
        .into_response())
}

/// The `Last-Event-ID` header: absent is 0 (every event); anything but an event id is refused.
fn last_event_id(headers: &HeaderMap) -> Result<i64, ApiError> {
    let Some(raw) = headers.get("last-event-id") else {
        return Ok(0);
    };
    let bad = || {
        ApiError::BadRequest(format!(
            "header Last-Event-ID must be an event id: a whole number of 1 to \
             {LAST_EVENT_ID_MAX_DIGITS} digits"
        ))
    };
    let value = raw.to_str().map_err(|_| bad())?;
    if value.is_empty()
        || value.len() > LAST_EVENT_ID_MAX_DIGITS
        || !value.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    value.parse().map_err(|_| bad())
}

/// One open stream: where it is in the job's events and what it has read but not yet sent.
struct Watch {
    store: Store,
    id: Uuid,
    last: i64,
    pending: VecDeque<JobEvent>,
    done: bool,
    poll: Duration,
    shutdown: CancellationToken,
    /// Held while the stream is open.
    _permit: OwnedSemaphorePermit,
}

fn events(watch: Watch) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold(watch, |mut watch| async move {
        let event = watch.next().await?;
        let sse = to_sse(watch.id, event);
        Some((Ok(sse), watch))
    })
}

impl Watch {
    /// The next event to send; `None` once the job has ended and every event was sent, when the
    /// job is gone (deleted) or the service stops.
    async fn next(&mut self) -> Option<JobEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.done {
                return None;
            }
            match self.store.job_events(self.id, self.last, PAGE).await {
                Ok(None) => return None,
                Ok(Some(page)) => {
                    let full = page.events.len() >= PAGE as usize;
                    // The status comes from the same statement as the events: once it is final,
                    // the event of that status is among them, and no event comes after it.
                    self.done = page.status.is_terminal() && !full;
                    if let Some(last) = page.events.last() {
                        self.last = last.seq;
                        self.pending.extend(page.events);
                        continue;
                    }
                }
                Err(err) if err.is_transient() => {
                    tracing::warn!(job = %self.id, error = %err, "reading a job's events failed; trying again");
                }
                Err(err) => {
                    tracing::error!(job = %self.id, error = %err, "reading a job's events failed; closing its stream");
                    return None;
                }
            }
            if self.done {
                return None;
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return None,
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
    }
}

fn to_sse(job_id: Uuid, event: JobEvent) -> Event {
    let mut progress: Progress = serde_json::from_value(event.progress).unwrap_or_default();
    progress.normalization = None;
    let data = JobEventData {
        job_id,
        status: event.status,
        stage: event.stage,
        progress,
        at: event.at,
    };
    Event::default()
        .id(event.seq.to_string())
        .event(event.kind.as_str())
        .data(serde_json::to_string(&data).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_event_id_is_a_whole_number() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert("last-event-id", axum::http::HeaderValue::from_static(v));
            last_event_id(&h)
        };
        assert_eq!(last_event_id(&HeaderMap::new()).unwrap(), 0);
        assert_eq!(with("0").unwrap(), 0);
        assert_eq!(with("42").unwrap(), 42);
        assert_eq!(with("999999999999999999").unwrap(), 999_999_999_999_999_999);
        for bad in ["", "-1", "1.5", " 1", "abc", "1234567890123456789"] {
            assert!(matches!(with(bad), Err(ApiError::BadRequest(_))), "{bad:?}");
        }
        let re = regex::Regex::new(LAST_EVENT_ID_PATTERN).unwrap();
        assert!(re.is_match("42") && !re.is_match("1234567890123456789"));
    }
}
