//! Delivering job-end messages to their `callback_url`: a task of every service process claims
//! due messages from the outbox (`webhook_deliveries`, written with the job's final status)
//! under a lease, so no message is attempted twice at once, and records every attempt.
//!
//! Each attempt checks the URL's host again and connects only to the addresses it checked
//! (`callback::TargetPolicy`), follows no redirect, and gives up after `attempt_timeout`. A 2xx
//! answer delivers the message; 410 stops it; anything else is tried again after a delay drawn
//! at random below a window that doubles each attempt (full jitter), until `retry_for` after
//! the job ended. The message is signed the Standard Webhooks way with the job owner's key's
//! secret (the service's for a job without owner). Neither the URL (its query may hold a token)
//! nor the body is logged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use icp_store::{Store, StoreError, WebhookAttempt, WebhookDelivery, WebhookOutcome};
use rand::Rng;
use serde_json::json;
use time::OffsetDateTime;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::callback::{Refusal, TargetPolicy, parse_callback_url};
use crate::config::WebhookConfig;
use crate::metrics::Metrics;
use crate::webhook_secret::WebhookSecret;

/// What a delivery task needs.
#[derive(Clone)]
pub struct WebhookContext {
    pub store: Store,
    pub config: WebhookConfig,
    pub policy: Arc<TargetPolicy>,
    pub metrics: Arc<Metrics>,
}

/// How long a claim holds past the attempt's own bound: time to resolve and to record.
const LEASE_SLACK: Duration = Duration::from_secs(30);

/// Starts this process's delivery task; it stops when `shutdown` is cancelled (attempts in
/// flight are dropped: their claims run out and another task makes them again).
pub fn spawn(ctx: WebhookContext, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let worker_id = format!("webhooks-{}", uuid::Uuid::new_v4().simple());
        let lease = ctx.config.attempt_timeout + LEASE_SLACK;
        let mut in_flight = JoinSet::new();
        loop {
            while in_flight.len() < ctx.config.concurrency.max(1) {
                match ctx.store.claim_webhook(&worker_id, lease).await {
                    Ok(Some(delivery)) => {
                        let ctx = ctx.clone();
                        in_flight.spawn(async move { deliver(&ctx, delivery).await });
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming a webhook delivery failed");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                _ = tokio::time::sleep(ctx.config.poll_interval) => {}
            }
        }
        in_flight.shutdown().await;
    })
}

/// What one attempt came to before its outcome is decided.
struct Tried {
    status_code: Option<u16>,
    error_kind: Option<&'static str>,
    /// The URL may not be called (any more): no retry.
    refused: bool,
}

impl Tried {
    fn error(kind: &'static str) -> Self {
        Self {
            status_code: None,
            error_kind: Some(kind),
            refused: false,
        }
    }
}

async fn deliver(ctx: &WebhookContext, delivery: WebhookDelivery) {
    let attempt = delivery.attempts + 1;
    let at = OffsetDateTime::now_utc();
    let started = Instant::now();
    let tried = attempt_once(ctx, &delivery).await;
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (outcome, next_attempt_at) = decide(&ctx.config, &delivery, &tried);
    let record = WebhookAttempt {
        attempt,
        at,
        status_code: tried.status_code.map(i32::from),
        error_kind: tried.error_kind.map(str::to_owned),
        duration_ms,
        next_attempt_at,
        outcome,
    };
    ctx.metrics.webhook_attempted(outcome.as_str());
    tracing::info!(
        job = %delivery.job_id,
        attempt,
        status = tried.status_code,
        error_kind = tried.error_kind,
        outcome = outcome.as_str(),
        duration_ms,
        "webhook attempt"
    );
    match ctx.store.record_webhook_attempt(&delivery, &record).await {
        Ok(()) => {}
        Err(StoreError::LeaseLost) => {
            tracing::warn!(job = %delivery.job_id, attempt, "webhook claim taken over; attempt not recorded");
        }
        Err(e) => {
            tracing::warn!(job = %delivery.job_id, error = %e, "recording a webhook attempt failed")
        }
    }
}

/// The attempt's outcome and, for a retry, when it is due.
fn decide(
    config: &WebhookConfig,
    delivery: &WebhookDelivery,
    tried: &Tried,
) -> (WebhookOutcome, Option<OffsetDateTime>) {
    match tried.status_code {
        Some(code) if (200..300).contains(&code) => return (WebhookOutcome::Delivered, None),
        Some(410) => return (WebhookOutcome::Gone, None),
        _ => {}
    }
    if tried.refused {
        return (WebhookOutcome::Refused, None);
    }
    let attempts = u32::try_from(delivery.attempts + 1).unwrap_or(u32::MAX);
    let next = backoff_after(
        OffsetDateTime::now_utc(),
        attempts,
        config.retry_base,
        config.retry_cap,
        rand::rng().random::<f64>(),
    );
    if next > delivery.created_at + config.retry_for {
        (WebhookOutcome::Abandoned, None)
    } else {
        (WebhookOutcome::Retry, Some(next))
    }
}

/// When a message is due again after `attempts` failed attempts: a random point (`jitter` in
/// [0, 1)) of a window that starts at `base` and doubles each attempt, at most `cap`.
pub fn backoff_after(
    now: OffsetDateTime,
    attempts: u32,
    base: Duration,
    cap: Duration,
    jitter: f64,
) -> OffsetDateTime {
    let doublings = attempts.saturating_sub(1).min(30);
    let window = base.saturating_mul(1u32 << doublings).min(cap);
    now + window.mul_f64(jitter.clamp(0.0, 1.0))
}

async fn attempt_once(ctx: &WebhookContext, delivery: &WebhookDelivery) -> Tried {
    let refused = |kind| Tried {
        status_code: None,
        error_kind: Some(kind),
        refused: true,
    };
    let Ok(url) = parse_callback_url(&delivery.url) else {
        return refused("invalid_url");
    };
    let target = match ctx.policy.check(&url).await {
        Ok(target) => target,
        Err(Refusal::DoesNotResolve) => return Tried::error("dns"),
        Err(refusal) => return refused(refusal.kind()),
    };
    let secret = match signing_secret(ctx, delivery.owner.as_deref()).await {
        Ok(secret) => secret,
        Err(kind) => return Tried::error(kind),
    };
    let body = message_body(delivery);
    let timestamp = OffsetDateTime::now_utc().unix_timestamp();
    let signature = secret.sign(&delivery.id, timestamp, &body);
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(ctx.config.attempt_timeout)
        .connect_timeout(ctx.config.attempt_timeout)
        .no_proxy()
        .resolve_to_addrs(&target.host, &target.addrs)
        .user_agent(concat!(
            "icp-service/",
            env!("CARGO_PKG_VERSION"),
            " webhooks"
        ))
        .build()
    {
        Ok(client) => client,
        Err(_) => return Tried::error("client"),
    };
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &delivery.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(response) => Tried {
            status_code: Some(response.status().as_u16()),
            error_kind: None,
            refused: false,
        },
        Err(e) if e.is_timeout() => Tried::error("timeout"),
        Err(e) if e.is_connect() => Tried::error("connect"),
        Err(_) => Tried::error("network"),
    }
}

/// The owner's key's secret (made now if the key has none yet), or the service's.
async fn signing_secret(
    ctx: &WebhookContext,
    owner: Option<&str>,
) -> Result<WebhookSecret, &'static str> {
    let Some(key_id) = owner else {
        return Ok(ctx.config.service_secret.clone());
    };
    let candidate = WebhookSecret::generate().expose();
    match ctx.store.webhook_secret_or_init(key_id, &candidate).await {
        Ok(Some(text)) => WebhookSecret::parse(&text).map_err(|_| "secret"),
        Ok(None) => Err("no_key"),
        Err(_) => Err("store"),
    }
}

/// The message: its event, when the job ended, and where to read the job. Nothing the job was
/// given or found (no identifiers, no profiles).
pub fn message_body(delivery: &WebhookDelivery) -> Vec<u8> {
    let id = delivery.job_id;
    let status = delivery
        .event
        .strip_prefix("job.")
        .unwrap_or(&delivery.event);
    let body = json!({
        "type": delivery.event,
        "timestamp": crate::rfc3339::format(&delivery.created_at),
        "data": {
            "job_id": id,
            "status": status,
            "links": {
                "self": format!("/v1/jobs/{id}"),
                "result": format!("/v1/jobs/{id}/result"),
                "deliveries": format!("/v1/jobs/{id}/deliveries"),
            },
        },
    });
    serde_json::to_vec(&body).expect("a JSON value serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_its_window_up_to_the_cap() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let base = Duration::from_secs(5);
        let cap = Duration::from_secs(60);
        let at = |attempts, jitter| backoff_after(now, attempts, base, cap, jitter) - now;
        assert_eq!(at(1, 0.0), time::Duration::ZERO);
        assert_eq!(at(1, 0.999_999), time::Duration::seconds_f64(4.999_995));
        assert_eq!(at(3, 0.5), time::Duration::seconds(10));
        assert_eq!(at(10, 0.5), time::Duration::seconds(30));
        assert_eq!(at(1000, 1.0), time::Duration::seconds(60));
    }
}
