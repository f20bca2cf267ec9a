//! Creating, reading, listing, cancelling and deleting jobs, on every configured backend.

use std::time::Duration;

use icp_store::test_support::{TestDatabase, job_footprint, new_job};
use icp_store::{Backend, JobStatus, ListJobs, Stage, Store, StoreError};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn create_get_and_list_with_cursor_and_filters() {
    for db in TestDatabase::all().await {
        let store = db.store().await;
        let mut alice = Vec::new();
        for i in 0..5 {
            let created = store
                .create_job(new_job(Some("alice"), None, &format!("h{i}")))
                .await
                .unwrap();
            assert!(created.created);
            assert_eq!(created.job.status, JobStatus::Queued);
            assert_eq!(created.job.attempt, 0);
            alice.push(created.job);
            // Distinct milliseconds, so "newest first" has one right answer.
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        let bob = store
            .create_job(new_job(Some("bob"), None, "hb"))
            .await
            .unwrap()
            .job;

        // Read back exactly what create returned; another owner sees nothing; no owner = any.
        let got = store.get_job(alice[0].id, Some("alice")).await.unwrap();
        assert_eq!(got.as_ref(), Some(&alice[0]));
        assert_eq!(store.get_job(alice[0].id, Some("bob")).await.unwrap(), None);
        assert!(store.get_job(alice[0].id, None).await.unwrap().is_some());
        assert_eq!(store.get_job(Uuid::new_v4(), None).await.unwrap(), None);
        assert_eq!(
            store.job_input(alice[0].id).await.unwrap(),
            Some(json!({ "emails": ["a@example.com", "b@example.com"] }))
        );

        // Pages of two, newest first, following the cursor to the end.
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let page = store
                .list_jobs(ListJobs {
                    owner: Some("alice".into()),
                    status: None,
                    limit: 2,
                    before,
                })
                .await
                .unwrap();
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 2);
            let last = page.last().unwrap();
            before = Some((last.created_at, last.id));
            seen.extend(page.into_iter().map(|job| job.id));
        }
        let newest_first: Vec<Uuid> = alice.iter().rev().map(|job| job.id).collect();
        assert_eq!(seen, newest_first, "{:?}", db.backend());

        // Without an owner filter bob's job is the newest of all.
        let all = store
            .list_jobs(ListJobs {
                limit: 100,
                ..ListJobs::default()
            })
            .await
            .unwrap();
        assert_eq!(all.len(), 6);
        assert_eq!(all[0].id, bob.id);

        // Status filter: only the claimed (oldest) job is running.
        let (claimed, _) = store.claim_next("w1", LEASE).await.unwrap().unwrap();
        assert_eq!(claimed.id, alice[0].id);
        let running = store
            .list_jobs(ListJobs {
                owner: Some("alice".into()),
                status: Some(JobStatus::Running),
                limit: 10,
                before: None,
            })
            .await
            .unwrap();
        assert_eq!(
            running.iter().map(|j| j.id).collect::<Vec<_>>(),
            vec![alice[0].id]
        );
        let queued_for_bob = store
            .list_jobs(ListJobs {
                owner: Some("bob".into()),
                status: Some(JobStatus::Queued),
                limit: 10,
                before: None,
            })
            .await
            .unwrap();
        assert_eq!(queued_for_bob.len(), 1);
        let counts = store.count_by_status().await.unwrap();
        assert!(counts.contains(&(JobStatus::Queued, 5)));
        assert!(counts.contains(&(JobStatus::Running, 1)));
    }
}

#[tokio::test]
async fn same_key_same_body_is_the_same_job_and_a_different_body_conflicts() {
    for db in TestDatabase::all().await {
        let store = db.store().await;
        let first = store
            .create_job(new_job(Some("alice"), Some("k1"), "hash-a"))
            .await
            .unwrap();
        assert!(first.created);

        let again = store
            .create_job(new_job(Some("alice"), Some("k1"), "hash-a"))
            .await
            .unwrap();
        assert!(!again.created);
        assert_eq!(again.job, first.job);

        let conflict = store
            .create_job(new_job(Some("alice"), Some("k1"), "hash-b"))
            .await;
        assert!(
            matches!(conflict, Err(StoreError::IdempotencyConflict)),
            "{conflict:?}"
        );

        // Keys are per owner.
        let bobs = store
            .create_job(new_job(Some("bob"), Some("k1"), "hash-b"))
            .await
            .unwrap();
        assert!(bobs.created);
        assert_ne!(bobs.job.id, first.job.id);

        // Without an owner, keys still deduplicate (NULL owners share one key space).
        let anon = store
            .create_job(new_job(None, Some("k2"), "h"))
            .await
            .unwrap();
        let anon_again = store
            .create_job(new_job(None, Some("k2"), "h"))
            .await
            .unwrap();
        assert!(anon.created && !anon_again.created);
        assert_eq!(anon.job.id, anon_again.job.id);

        // No key: every request is a new job.
        let a = store.create_job(new_job(None, None, "h")).await.unwrap();
        let b = store.create_job(new_job(None, None, "h")).await.unwrap();
        assert_ne!(a.job.id, b.job.id);

        // A reused id is refused with a clear error, not a generic database one.
        let mut dup = new_job(None, None, "h");
        dup.id = a.job.id;
        assert!(
            matches!(store.create_job(dup).await, Err(StoreError::DuplicateId(id)) if id == a.job.id)
        );

        // The idempotent retry did not leave a second input behind.
        assert_eq!(job_footprint(&store, first.job.id).await.inputs, 1);
        let all = store
            .list_jobs(ListJobs {
                limit: 100,
                ..ListJobs::default()
            })
            .await
            .unwrap();
        assert_eq!(all.len(), 5);
    }
}

#[tokio::test]
async fn concurrent_idempotent_creates_make_one_job() {
    for db in TestDatabase::all().await {
        let store = db.store().await;
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .create_job(new_job(Some("alice"), Some("race"), "same"))
                        .await
                })
            })
            .collect();
        let mut ids = Vec::new();
        let mut created = 0;
        for task in tasks {
            let outcome = task.await.unwrap().unwrap();
            created += usize::from(outcome.created);
            ids.push(outcome.job.id);
        }
        assert_eq!(created, 1, "{:?}", db.backend());
        ids.dedup();
        assert_eq!(ids.len(), 1);
    }
}

#[tokio::test]
async fn cancel_queued_running_finished_and_missing() {
    for db in TestDatabase::all().await {
        let store = db.store().await;

        // Queued: cancelled at once, input gone.
        let queued = store
            .create_job(new_job(Some("alice"), None, "q"))
            .await
            .unwrap()
            .job;
        assert_eq!(
            store.request_cancel(queued.id, Some("bob")).await.unwrap(),
            None
        );
        let cancelled = store
            .request_cancel(queued.id, Some("alice"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(cancelled.status, JobStatus::Cancelled);
        assert!(cancelled.finished_at.is_some());
        assert_eq!(store.job_input(queued.id).await.unwrap(), None);
        assert!(store.claim_next("w", LEASE).await.unwrap().is_none());

        // Running: flagged; the worker learns it at its heartbeat and stops.
        let running = store
            .create_job(new_job(Some("alice"), None, "r"))
            .await
            .unwrap()
            .job;
        let (_, lease) = store.claim_next("w", LEASE).await.unwrap().unwrap();
        store
            .put_checkpoint(&lease, Stage::Resolve, 0, "ids")
            .await
            .unwrap();
        assert!(
            !store
                .heartbeat(&lease, LEASE)
                .await
                .unwrap()
                .cancel_requested
        );
        let flagged = store
            .request_cancel(running.id, None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(flagged.status, JobStatus::Running);
        assert!(flagged.cancel_requested);
        assert!(
            store
                .heartbeat(&lease, LEASE)
                .await
                .unwrap()
                .cancel_requested
        );
        store.mark_cancelled(&lease).await.unwrap();
        let after = store.get_job(running.id, None).await.unwrap().unwrap();
        assert_eq!(after.status, JobStatus::Cancelled);
        assert_eq!(after.lease_owner, None);
        let footprint = job_footprint(&store, running.id).await;
        assert_eq!((footprint.inputs, footprint.checkpoints), (0, 0));

        // Finished: unchanged.
        let done = store
            .create_job(new_job(None, None, "d"))
            .await
            .unwrap()
            .job;
        let (_, lease) = store.claim_next("w", LEASE).await.unwrap().unwrap();
        store.complete(&lease, json!({"ok": true})).await.unwrap();
        let before = store.get_job(done.id, None).await.unwrap().unwrap();
        let unchanged = store.request_cancel(done.id, None).await.unwrap().unwrap();
        assert_eq!(unchanged, before);
        assert_eq!(unchanged.status, JobStatus::Succeeded);
        assert!(!unchanged.cancel_requested);

        assert_eq!(
            store.request_cancel(Uuid::new_v4(), None).await.unwrap(),
            None
        );
    }
}

#[tokio::test]
async fn delete_removes_every_row_of_the_job() {
    for db in TestDatabase::all().await {
        let store = db.store().await;
        let job = store
            .create_job(new_job(Some("alice"), Some("k"), "h"))
            .await
            .unwrap()
            .job;
        let other = store
            .create_job(new_job(Some("alice"), None, "h2"))
            .await
            .unwrap()
            .job;
        let (_, lease) = store.claim_next("w", LEASE).await.unwrap().unwrap();
        assert_eq!(lease.job_id, job.id);
        store
            .put_checkpoint(&lease, Stage::Enrich, 1, "profiles")
            .await
            .unwrap();
        store
            .put_export_chunk(&lease, "reach", 0, "a\nb\n")
            .await
            .unwrap();
        store
            .add_trace(&lease, Stage::Find, "find_persons", "t-1")
            .await
            .unwrap();
        let footprint = job_footprint(&store, job.id).await;
        assert_eq!(
            (
                footprint.jobs,
                footprint.inputs,
                footprint.checkpoints,
                footprint.exports,
                footprint.traces
            ),
            (1, 1, 1, 1, 1)
        );

        assert!(!store.delete_job(job.id, Some("bob")).await.unwrap());
        assert!(store.delete_job(job.id, Some("alice")).await.unwrap());
        assert!(
            job_footprint(&store, job.id).await.is_empty(),
            "{:?}",
            db.backend()
        );
        assert!(!store.delete_job(job.id, None).await.unwrap());
        // The worker still running it is fenced off rather than resurrecting rows.
        assert!(matches!(
            store.put_checkpoint(&lease, Stage::Enrich, 2, "x").await,
            Err(StoreError::LeaseLost)
        ));
        assert!(job_footprint(&store, job.id).await.is_empty());
        // The idempotency key died with the job: it can be used again.
        assert!(
            store
                .create_job(new_job(Some("alice"), Some("k"), "new"))
                .await
                .unwrap()
                .created
        );
        // Other jobs are untouched.
        assert_eq!(job_footprint(&store, other.id).await.inputs, 1);
    }
}

#[tokio::test]
async fn purge_expired_removes_only_finished_expired_jobs_with_all_their_data() {
    for db in TestDatabase::all().await {
        let store = db.store().await;
        let past = OffsetDateTime::now_utc() - time::Duration::hours(1);
        let mut expired = new_job(None, None, "e");
        expired.expires_at = past;
        let expired = store.create_job(expired).await.unwrap().job;
        let (_, lease) = store.claim_next("w", LEASE).await.unwrap().unwrap();
        store
            .put_export_chunk(&lease, "precision", 0, "rows")
            .await
            .unwrap();
        store
            .add_trace(&lease, Stage::Resolve, "resolve_identities", "t")
            .await
            .unwrap();
        store
            .complete(&lease, json!({"audience": 2}))
            .await
            .unwrap();

        // Expired but still running: kept (the worker still needs it).
        let mut running = new_job(None, None, "r");
        running.expires_at = past;
        let running = store.create_job(running).await.unwrap().job;
        let (_, running_lease) = store.claim_next("w", LEASE).await.unwrap().unwrap();
        assert_eq!(running_lease.job_id, running.id);

        // Finished but not expired: kept.
        let fresh = store
            .create_job(new_job(None, None, "f"))
            .await
            .unwrap()
            .job;
        let (_, lease) = store.claim_next("w", LEASE).await.unwrap().unwrap();
        store.fail(&lease, json!({"title": "boom"})).await.unwrap();

        assert_eq!(
            store
                .purge_expired(OffsetDateTime::now_utc())
                .await
                .unwrap(),
            1
        );
        assert!(
            job_footprint(&store, expired.id).await.is_empty(),
            "{:?}",
            db.backend()
        );
        assert_eq!(job_footprint(&store, running.id).await.jobs, 1);
        assert_eq!(job_footprint(&store, fresh.id).await.jobs, 1);
        assert_eq!(
            store
                .purge_expired(OffsetDateTime::now_utc())
                .await
                .unwrap(),
            0
        );
    }
}

#[tokio::test]
async fn urls_pick_the_backend_and_bad_ones_are_refused() {
    let memory = Store::connect("sqlite::memory:").await.unwrap();
    memory.migrate().await.unwrap();
    assert_eq!(memory.backend(), Backend::Sqlite);
    // One shared in-memory database: what one call writes the next one reads.
    let job = memory
        .create_job(new_job(None, None, "h"))
        .await
        .unwrap()
        .job;
    assert!(memory.get_job(job.id, None).await.unwrap().is_some());
    memory.ping().await.unwrap();

    // A bare path in a directory that does not exist yet: both are created.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/deeper/icp.db");
    let file = Store::connect(path.to_str().unwrap()).await.unwrap();
    file.migrate().await.unwrap();
    file.migrate().await.unwrap(); // idempotent
    assert!(path.exists());
    let url = format!("sqlite://{}", dir.path().join("other.db").display());
    Store::connect(&url).await.unwrap().ping().await.unwrap();

    let refused = Store::connect("mysql://user:secret@host/db").await;
    match refused {
        Err(StoreError::InvalidUrl(message)) => assert!(!message.contains("secret")),
        other => panic!("expected InvalidUrl, got {other:?}"),
    }
    assert!(matches!(
        Store::connect("").await,
        Err(StoreError::InvalidUrl(_))
    ));

    if let Some(db) = TestDatabase::postgres().await {
        let store = db.store().await;
        assert_eq!(store.backend(), Backend::Postgres);
        store.ping().await.unwrap();
        store.close().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn paging_is_exact_when_many_jobs_share_a_millisecond() {
    for db in TestDatabase::all().await {
        let store = db.store().await;
        let mut jobs = Vec::new();
        for i in 0..40 {
            jobs.push(
                store
                    .create_job(new_job(None, None, &i.to_string()))
                    .await
                    .unwrap()
                    .job,
            );
        }
        // The expected order: created_at then id (byte order), both descending.
        jobs.sort_by_key(|job| std::cmp::Reverse((job.created_at, job.id)));
        let mut paged = Vec::new();
        let mut before = None;
        loop {
            let page = store
                .list_jobs(ListJobs {
                    limit: 3,
                    before,
                    ..ListJobs::default()
                })
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            before = Some((last.created_at, last.id));
            paged.extend(page);
        }
        assert_eq!(paged, jobs, "{:?}", db.backend());
    }
}
