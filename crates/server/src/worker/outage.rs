//! Riding out a database outage. A worker whose database is out of reach (no connection, a
//! dropped one, SQLite's write lock held by another process) waits for it to answer again and
//! carries on with the same attempt: the job pauses instead of failing, and is not left for
//! another worker to start over.

use std::future::Future;
use std::time::Duration;

use icp_store::{Store, StoreError};
use tokio_util::sync::CancellationToken;

/// How soon a paused worker first asks whether the database is back…
const FIRST_LOOK: Duration = Duration::from_millis(250);
/// …and how long it waits between asks at most, however long the outage.
const LOOK_AT_MOST_EVERY: Duration = Duration::from_secs(5);

/// Waits until the database takes work again (`Store::ping`); false if `stop` comes first.
pub(super) async fn database_back(store: &Store, stop: &CancellationToken) -> bool {
    let mut every = FIRST_LOOK;
    loop {
        if stop.is_cancelled() {
            return false;
        }
        if store.ping().await.is_ok() {
            return true;
        }
        tokio::select! {
            _ = stop.cancelled() => return false,
            _ = tokio::time::sleep(every) => {}
        }
        every = (every * 2).min(LOOK_AT_MOST_EVERY);
    }
}

/// Makes `write` until it does not fail for want of the database, waiting for the database
/// between tries: a job's outcome (succeeded, failed, retried) is recorded once the database is
/// back rather than lost with the lease. Gives up with the last error when `stop` comes.
pub(super) async fn until_written<T, F, Fut>(
    store: &Store,
    stop: &CancellationToken,
    mut write: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    loop {
        match write().await {
            Err(err) if err.is_unavailable() => {
                tracing::warn!(error = %err, "database unavailable; waiting to record a job's outcome");
                if !database_back(store, stop).await {
                    return Err(err);
                }
            }
            done => return done,
        }
    }
}
