//! Helpers shared by the store's integration tests.

use icp_store::NewJob;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

/// A job to create, expiring in a day.
pub fn new_job(owner: Option<&str>, key: Option<&str>, hash: &str) -> NewJob {
    NewJob {
        id: Uuid::new_v4(),
        owner: owner.map(str::to_owned),
        options: json!({ "strategies": ["precision", "reach"] }),
        input: json!({ "emails": ["a@example.com", "b@example.com"] }),
        idempotency_key: key.map(str::to_owned),
        request_hash: hash.to_owned(),
        expires_at: OffsetDateTime::now_utc() + time::Duration::days(1),
    }
}
