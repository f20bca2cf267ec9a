//! Webhooks: the outbox of messages a job's end leaves for its `callback_url`, the claim of a
//! due delivery under a lease, every attempt recorded, and the signing secret of each API key.
//!
//! The store knows one thing of the job's options: the `callback_url` field, read in SQL when
//! the job ends, so that the message is written in the same transaction as the final status.

use uuid::Uuid;

use crate::connect::{Backend, Store};
use crate::error::{Result, StoreError};
use crate::model::{WebhookAttempt, WebhookDelivery, WebhookOutcome};
use crate::row::{from_millis, millis_after, now_millis, to_millis};

/// Writes the message for the job's end, when its options name a `callback_url`: `$1` the job
/// id, `$2` the message id, `$3` now. Run in the transaction that sets the final status, after
/// it (the event is named after the status).
macro_rules! enqueue_sql {
    ($url:literal) => {
        concat!(
            "INSERT INTO webhook_deliveries (id, job_id, owner, event, url, created_at, state, \
             attempts, next_attempt_at) \
             SELECT $2, id, owner, 'job.' || status, ",
            $url,
            ", $3, 'pending', 0, $3 FROM jobs WHERE id = $1 AND ",
            $url,
            " IS NOT NULL ON CONFLICT DO NOTHING"
        )
    };
}

/// The enqueue statement for this store's backend.
pub(crate) fn enqueue_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => enqueue_sql!("json_extract(options, '$.callback_url')"),
        Backend::Postgres => enqueue_sql!("(options ->> 'callback_url')"),
    }
}

/// A new message id: `msg_` and 32 hex digits, the `webhook-id` of every attempt.
pub(crate) fn new_message_id() -> String {
    format!("msg_{}", Uuid::new_v4().simple())
}

/// Queues the job's end message in the transaction `$tx` (see `enqueue_sql`).
macro_rules! enqueue_webhook {
    ($store:expr, $tx:ident, $id:expr, $now:expr) => {
        sqlx::query(sqlx::AssertSqlSafe($crate::webhooks::enqueue_sql(
            $store.backend(),
        )))
        .bind($id)
        .bind($crate::webhooks::new_message_id())
        .bind($now)
        .execute(&mut *$tx)
        .await?;
    };
}
pub(crate) use enqueue_webhook;

/// A delivery that is due and not claimed by a live lease, `$now` naming the parameter that
/// holds now: the filter both the look and the claim use.
macro_rules! due_sql {
    ($now:literal) => {
        concat!(
            "state = 'pending' AND next_attempt_at <= ",
            $now,
            " AND (lease_expires_at IS NULL OR lease_expires_at <= ",
            $now,
            ")"
        )
    };
}

/// The claim of the due delivery that waited longest, less its lock clause. `$1` worker id,
/// `$2` lease expiry, `$3` now.
macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE webhook_deliveries SET lease_owner = $1, lease_expires_at = $2 \
             WHERE id = (SELECT id FROM webhook_deliveries \
                 WHERE ",
            due_sql!("$3"),
            " ORDER BY next_attempt_at, id LIMIT 1",
            $lock,
            ") RETURNING id, job_id, owner, event, url, created_at, attempts"
        )
    };
}

type DeliveryRow = (String, Uuid, Option<String>, String, String, i64, i32);

type AttemptRow = (
    i32,
    i64,
    Option<i32>,
    Option<String>,
    i64,
    Option<i64>,
    String,
);

impl Store {
    /// Claims the delivery that is due and waited longest for `lease` from now, so that no
    /// other worker (of this or another process) attempts it meanwhile. `None` when none is due.
    pub async fn claim_webhook(
        &self,
        worker_id: &str,
        lease: std::time::Duration,
    ) -> Result<Option<WebhookDelivery>> {
        let now = now_millis();
        // Look before claiming: the claim is a write, and on SQLite every write takes the one
        // write lock, which this poll (every process, every `poll_interval`) would otherwise
        // take even when nothing is due, in turn with the job workers' writes.
        let due: bool = on_pool!(self, pool => {
            sqlx::query_scalar(concat!(
                "SELECT EXISTS (SELECT 1 FROM webhook_deliveries WHERE ",
                due_sql!("$1"),
                ")"
            ))
            .bind(now)
            .fetch_one(pool)
            .await?
        });
        if !due {
            return Ok(None);
        }
        let sql = match self.backend() {
            Backend::Sqlite => claim_sql!(""),
            Backend::Postgres => claim_sql!(" FOR UPDATE SKIP LOCKED"),
        };
        let row: Option<DeliveryRow> = write_on_pool!(self, pool => {
            sqlx::query_as(sql)
                .bind(worker_id)
                .bind(millis_after(now, lease))
                .bind(now)
                .fetch_optional(pool)
                .await?
        });
        row.map(|(id, job_id, owner, event, url, created_at, attempts)| {
            Ok(WebhookDelivery {
                id,
                job_id,
                owner,
                event,
                url,
                created_at: from_millis(created_at)?,
                attempts,
                worker_id: worker_id.to_owned(),
            })
        })
        .transpose()
    }

    /// Records one attempt of a claimed delivery and what follows from it: delivered, stopped,
    /// or due again at `attempt.next_attempt_at`. Fenced by the claim (worker id and attempts
    /// so far): a worker whose lease was taken over gets `LeaseLost` and records nothing.
    pub async fn record_webhook_attempt(
        &self,
        delivery: &WebhookDelivery,
        attempt: &WebhookAttempt,
    ) -> Result<()> {
        let next = attempt.next_attempt_at.map(to_millis);
        in_tx!(self, tx => {
            let updated = sqlx::query(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, state = $4, \
                 next_attempt_at = $5, lease_owner = NULL, lease_expires_at = NULL \
                 WHERE id = $1 AND lease_owner = $2 AND attempts = $3",
            )
            .bind(delivery.id.as_str())
            .bind(delivery.worker_id.as_str())
            .bind(delivery.attempts)
            .bind(attempt.outcome.state())
            .bind(next)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated == 0 {
                return Err(StoreError::LeaseLost);
            }
            sqlx::query(
                "INSERT INTO webhook_attempts (delivery_id, job_id, attempt, at, status_code, \
                 error_kind, duration_ms, next_attempt_at, outcome) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(delivery.id.as_str())
            .bind(delivery.job_id)
            .bind(attempt.attempt)
            .bind(to_millis(attempt.at))
            .bind(attempt.status_code)
            .bind(attempt.error_kind.as_deref())
            .bind(i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX))
            .bind(next)
            .bind(attempt.outcome.as_str())
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
    }

    /// Every delivery attempt of the job's messages, oldest first; `None` when there is no such
    /// job (for this owner).
    pub async fn webhook_attempts(
        &self,
        job_id: Uuid,
        owner: Option<&str>,
    ) -> Result<Option<Vec<WebhookAttempt>>> {
        let (exists, rows): (bool, Vec<AttemptRow>) = on_pool!(self, pool => {
            let exists: Option<i32> = sqlx::query_scalar(
                "SELECT 1 FROM jobs WHERE id = $1 AND ($2 IS NULL OR owner = $2)",
            )
            .bind(job_id)
            .bind(owner)
            .fetch_optional(&mut *pool)
            .await?;
            let rows = if exists.is_some() {
                sqlx::query_as(
                    "SELECT attempt, at, status_code, error_kind, duration_ms, next_attempt_at, \
                     outcome FROM webhook_attempts WHERE job_id = $1 \
                     ORDER BY at, delivery_id, attempt",
                )
                .bind(job_id)
                .fetch_all(&mut *pool)
                .await?
            } else {
                Vec::new()
            };
            (exists.is_some(), rows)
        });
        if !exists {
            return Ok(None);
        }
        rows.into_iter()
            .map(
                |(attempt, at, status_code, error_kind, duration_ms, next, outcome)| {
                    Ok(WebhookAttempt {
                        attempt,
                        at: from_millis(at)?,
                        status_code,
                        error_kind,
                        duration_ms: u64::try_from(duration_ms).unwrap_or(0),
                        next_attempt_at: next.map(from_millis).transpose()?,
                        outcome: outcome.parse().map_err(|e: crate::model::UnknownName| {
                            StoreError::InvalidData(e.to_string())
                        })?,
                    })
                },
            )
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// The key's webhook signing secret, setting `candidate` first when it has none (keys made
    /// before webhooks existed, or by a caller that set none). `None` when there is no such key.
    pub async fn webhook_secret_or_init(
        &self,
        key_id: &str,
        candidate: &str,
    ) -> Result<Option<String>> {
        let secret: Option<Option<String>> = in_tx!(self, tx => {
            sqlx::query(
                "UPDATE api_keys SET webhook_secret = $2 WHERE id = $1 AND webhook_secret IS NULL",
            )
            .bind(key_id)
            .bind(candidate)
            .execute(&mut *tx)
            .await?;
            sqlx::query_scalar("SELECT webhook_secret FROM api_keys WHERE id = $1")
                .bind(key_id)
                .fetch_optional(&mut *tx)
                .await?
        });
        Ok(secret.flatten())
    }

    /// Replaces the key's webhook signing secret. Returns false when there is no such key.
    pub async fn set_webhook_secret(&self, key_id: &str, secret: &str) -> Result<bool> {
        let updated = write_on_pool!(self, pool => {
            sqlx::query("UPDATE api_keys SET webhook_secret = $2 WHERE id = $1")
                .bind(key_id)
                .bind(secret)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(updated > 0)
    }

    /// Deliveries not finished yet (pending), for metrics and tests.
    pub async fn count_pending_webhooks(&self) -> Result<u64> {
        let count: i64 = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'pending'")
                .fetch_one(pool)
                .await?
        });
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

impl WebhookOutcome {
    /// The delivery's state after an attempt with this outcome.
    fn state(self) -> &'static str {
        match self {
            Self::Retry => "pending",
            other => other.as_str(),
        }
    }
}
