//! A store whose database cannot be entered fails within its wait, as unavailable, instead of
//! hanging, and works again by itself once the database is back.

use std::time::{Duration, Instant};

use icp_store::test_support::{TestDatabase, lock_sqlite_writes, new_job};

/// SQLite's write lock held by another connection: writes (and the readiness ping, which asks
/// for the lock) fail within the wait; reads go on; a store that waits longer gets in as soon
/// as the lock is released.
#[tokio::test]
async fn a_write_locked_sqlite_file_fails_writes_within_the_wait() {
    let db = TestDatabase::sqlite().await;
    let store = db.store().await.with_wait(Duration::from_millis(300));
    let job = store
        .create_job(new_job(None, None, "a"))
        .await
        .unwrap()
        .job;

    let lock = lock_sqlite_writes(db.url()).await;
    let started = Instant::now();
    let err = store
        .create_job(new_job(None, None, "b"))
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(err.is_transient(), "{err}");
    let err = store.ping().await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    // Two operations, each bounded by the wait (300 ms): well under two seconds together.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(store.get_job(job.id, None).await.unwrap().is_some());

    // A patient store (a worker's) waits the lock out.
    let patient = store.with_wait(Duration::from_secs(10));
    let writing = tokio::spawn(async move { patient.create_job(new_job(None, None, "c")).await });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        !writing.is_finished(),
        "the write did not wait for the lock"
    );
    lock.release().await;
    writing.await.unwrap().unwrap();
    store.ping().await.unwrap();
    store.create_job(new_job(None, None, "d")).await.unwrap();
}
