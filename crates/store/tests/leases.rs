//! Claiming, leases and fencing, on every configured backend.

use std::collections::HashSet;
use std::time::Duration;

use icp_store::test_support::{TestDatabase, job_footprint, new_job};
use icp_store::{Backend, JobStatus, Stage, Store, StoreError};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn claims_oldest_first_and_respects_run_after() {
    for db in TestDatabase::all().await {
        let store = db.store().await;
        assert!(store.claim_next("w", LEASE).await.unwrap().is_none());
        let mut ids = Vec::new();
        for i in 0..3 {
            ids.push(
                store
                    .create_job(new_job(None, None, &i.to_string()))
                    .await
                    .unwrap()
                    .job
                    .id,
            );
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        let (first, lease) = store.claim_next("w", LEASE).await.unwrap().unwrap();
        assert_eq!(first.id, ids[0]);
        assert_eq!(first.status, JobStatus::Running);
        assert_eq!(first.attempt, 1);
        assert_eq!(lease.attempt, 1);
        assert_eq!(first.lease_owner.as_deref(), Some("w"));
        assert!(first.started_at.is_some());
        assert!(
            first.lease_expires_at.unwrap()
                > OffsetDateTime::now_utc() + time::Duration::seconds(50)
        );

        // Retried later: not claimable before run_after, the next job goes first.
        // Long enough that the claims below finish first, even on a loaded machine.
        let run_after = OffsetDateTime::now_utc() + time::Duration::seconds(1);
        store
            .retry_later(&lease, json!({"title": "upstream 503"}), run_after)
            .await
            .unwrap();
        let waiting = store.get_job(ids[0], None).await.unwrap().unwrap();
        assert_eq!(waiting.status, JobStatus::Queued);
        assert_eq!(waiting.lease_owner, None);
        assert_eq!(waiting.lease_expires_at, None);
        assert_eq!(waiting.error, Some(json!({"title": "upstream 503"})));
        // Its input stays: the next attempt needs it.
        assert!(store.job_input(ids[0]).await.unwrap().is_some());

        let (second, _) = store.claim_next("w", LEASE).await.unwrap().unwrap();
        assert_eq!(second.id, ids[1]);
        let (third, _) = store.claim_next("w", LEASE).await.unwrap().unwrap();
        assert_eq!(third.id, ids[2]);
        // Jobs two and three run under live leases and job one is not due: nothing to claim.
        assert!(store.claim_next("w", LEASE).await.unwrap().is_none());

        let due_in = run_after - OffsetDateTime::now_utc() + time::Duration::milliseconds(20);
        tokio::time::sleep(due_in.try_into().unwrap_or_default()).await;
        let (again, lease) = store.claim_next("w2", LEASE).await.unwrap().unwrap();
        assert_eq!(again.id, ids[0]);
        assert_eq!(again.attempt, 2);
        assert_eq!(
            again.started_at, first.started_at,
            "started_at is the first claim's"
        );
        store.complete(&lease, json!({"n": 1})).await.unwrap();
        let done = store.get_job(ids[0], None).await.unwrap().unwrap();
        assert_eq!(done.status, JobStatus::Succeeded);
        assert_eq!(done.error, None, "a success clears the last retry error");
        assert_eq!(
            store.job_result(ids[0]).await.unwrap(),
            Some(json!({"n": 1}))
        );
    }
}

/// Claims from `tasks` concurrent claimers on `stores` (round robin) until the queue is empty.
async fn drain_concurrently(stores: &[Store], tasks: usize) -> Vec<Uuid> {
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let store = stores[t % stores.len()].clone();
            tokio::spawn(async move {
                let worker = format!("worker-{t}");
                let mut claimed = Vec::new();
                while let Some((job, lease)) = store.claim_next(&worker, LEASE).await.unwrap() {
                    assert_eq!(lease.worker_id, worker);
                    claimed.push(job.id);
                    tokio::task::yield_now().await;
                }
                claimed
            })
        })
        .collect();
    let mut all = Vec::new();
    for handle in handles {
        all.extend(handle.await.unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_never_get_the_same_job() {
    for db in TestDatabase::all().await {
        let store = db.store().await;
        let mut created = HashSet::new();
        for i in 0..300 {
            created.insert(
                store
                    .create_job(new_job(None, None, &i.to_string()))
                    .await
                    .unwrap()
                    .job
                    .id,
            );
        }
        let claimed = drain_concurrently(std::slice::from_ref(&store), 16).await;
        let unique: HashSet<Uuid> = claimed.iter().copied().collect();
        assert_eq!(
            claimed.len(),
            300,
            "{:?}: a job was claimed twice or lost",
            db.backend()
        );
        assert_eq!(unique, created);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_postgres_pools_share_one_queue() {
    let Some(db) = TestDatabase::postgres().await else {
        eprintln!(
            "ICP_TEST_DATABASE_URL not set: the two-process Postgres test has nothing to run on"
        );
        return;
    };
    // Two stores = two pools = what two `icp serve` processes would hold.
    let first = db.store().await;
    let second = Store::connect(db.url()).await.unwrap();
    second.migrate().await.unwrap(); // a second process migrating is a no-op
    assert_eq!(second.backend(), Backend::Postgres);
    let mut created = HashSet::new();
    for i in 0..200 {
        let store = if i % 2 == 0 { &first } else { &second };
        created.insert(
            store
                .create_job(new_job(None, None, &i.to_string()))
                .await
                .unwrap()
                .job
                .id,
        );
    }
    let claimed = drain_concurrently(&[first.clone(), second.clone()], 16).await;
    let unique: HashSet<Uuid> = claimed.iter().copied().collect();
    assert_eq!(claimed.len(), 200, "a job was claimed twice or lost");
    assert_eq!(unique, created);
    first.close().await;
    second.close().await;
    db.cleanup().await;
}

#[tokio::test]
async fn an_expired_lease_is_reclaimed_and_the_stale_worker_is_fenced_off() {
    for db in TestDatabase::all().await {
        let store = db.store().await;
        let job = store
            .create_job(new_job(None, None, "h"))
            .await
            .unwrap()
            .job;

        let (_, stale) = store
            .claim_next("old", Duration::from_millis(30))
            .await
            .unwrap()
            .unwrap();
        store
            .put_checkpoint(&stale, Stage::Resolve, 0, "before")
            .await
            .unwrap();
        // (That a live lease is not taken over is checked in claims_oldest_first_…, with a
        // lease long enough not to expire on a loaded machine.)
        tokio::time::sleep(Duration::from_millis(60)).await;

        let (job_again, fresh) = store.claim_next("new", LEASE).await.unwrap().unwrap();
        assert_eq!(job_again.id, job.id);
        assert_eq!(fresh.attempt, stale.attempt + 1);
        assert_eq!(job_again.lease_owner.as_deref(), Some("new"));
        // The new attempt resumes from what the old one checkpointed.
        assert_eq!(
            store.checkpoints(job.id, Stage::Resolve).await.unwrap(),
            vec![(0, "before".to_owned())]
        );

        // Every write of the stale worker is refused.
        let lost = |r: Result<(), StoreError>| matches!(r, Err(StoreError::LeaseLost));
        assert!(matches!(
            store.heartbeat(&stale, LEASE).await,
            Err(StoreError::LeaseLost)
        ));
        assert!(lost(
            store.set_stage(&stale, Stage::Enrich, json!({})).await
        ));
        assert!(lost(store.set_progress(&stale, json!({"x": 1})).await));
        assert!(lost(store.set_workflow_id(&stale, "wf-old").await));
        assert!(lost(
            store.set_resolution(&stale, json!({"resolved": 0})).await
        ));
        assert!(lost(
            store
                .put_checkpoint(&stale, Stage::Resolve, 0, "stale")
                .await
        ));
        assert!(lost(
            store.put_export_chunk(&stale, "reach", 0, "stale").await
        ));
        assert!(lost(store.clear_exports(&stale, "reach").await));
        assert!(lost(
            store
                .add_trace(&stale, Stage::Resolve, "resolve_identities", "t")
                .await
        ));
        assert!(lost(
            store
                .retry_later(&stale, json!({}), OffsetDateTime::now_utc())
                .await
        ));
        assert!(lost(store.fail(&stale, json!({"title": "stale"})).await));
        assert!(lost(store.mark_cancelled(&stale).await));
        assert!(lost(store.complete(&stale, json!({"stale": true})).await));

        // Same worker id but the old attempt number is just as stale.
        let mut same_name = stale.clone();
        same_name.worker_id = "new".into();
        assert!(lost(store.set_progress(&same_name, json!({})).await));

        // Nothing the stale worker tried is visible; the new one works normally.
        let now = store.get_job(job.id, None).await.unwrap().unwrap();
        assert_eq!(now.status, JobStatus::Running);
        assert_eq!(now.workflow_id, None);
        assert_eq!(now.stage, None);
        assert_eq!(
            store.checkpoints(job.id, Stage::Resolve).await.unwrap(),
            vec![(0, "before".to_owned())]
        );
        assert!(store.traces(job.id).await.unwrap().is_empty());
        let (_, no_traces) = store.get_job_detail(job.id, None).await.unwrap().unwrap();
        assert!(no_traces.is_empty());
        store.set_workflow_id(&fresh, "wf-1").await.unwrap();
        store
            .set_stage(&fresh, Stage::Enrich, json!({"enrich": {"done": 0}}))
            .await
            .unwrap();
        store
            .set_progress(&fresh, json!({"enrich": {"done": 5}}))
            .await
            .unwrap();
        store
            .set_resolution(&fresh, json!({"resolved": 2}))
            .await
            .unwrap();
        let heartbeat = store.heartbeat(&fresh, LEASE).await.unwrap();
        assert!(!heartbeat.cancel_requested);
        let now = store.get_job(job.id, None).await.unwrap().unwrap();
        assert_eq!(now.workflow_id.as_deref(), Some("wf-1"));
        assert_eq!(now.stage, Some(Stage::Enrich));
        assert_eq!(now.progress, json!({"enrich": {"done": 5}}));
        assert_eq!(now.resolution, Some(json!({"resolved": 2})));

        // Once finished, even the lease that finished it can write no more.
        store
            .fail(&fresh, json!({"title": "permanent"}))
            .await
            .unwrap();
        assert!(lost(store.set_progress(&fresh, json!({})).await));
        let failed = store.get_job(job.id, None).await.unwrap().unwrap();
        assert_eq!(failed.status, JobStatus::Failed);
        assert_eq!(failed.error, Some(json!({"title": "permanent"})));
        assert!(failed.finished_at.is_some());
        let footprint = job_footprint(&store, job.id).await;
        assert_eq!(
            (footprint.inputs, footprint.checkpoints),
            (0, 0),
            "{:?}",
            db.backend()
        );
    }
}

#[tokio::test]
async fn checkpoints_exports_and_traces_round_trip() {
    for db in TestDatabase::all().await {
        let store = db.store().await;
        let job = store
            .create_job(new_job(None, None, "h"))
            .await
            .unwrap()
            .job;
        let (_, lease) = store.claim_next("w", LEASE).await.unwrap().unwrap();

        // Checkpoints: ordered by seq whatever the write order, upserted, per stage.
        store
            .put_checkpoint(&lease, Stage::Enrich, 2, "two")
            .await
            .unwrap();
        store
            .put_checkpoint(&lease, Stage::Enrich, 1, "one")
            .await
            .unwrap();
        store
            .put_checkpoint(&lease, Stage::Enrich, 1, "one, again")
            .await
            .unwrap();
        // One as stored before checkpoints were compressed reads back beside the others.
        icp_store::test_support::put_plain_checkpoint(&store, job.id, Stage::Enrich, 3, "three")
            .await;
        let big = "é".repeat(200_000);
        store
            .put_checkpoint(&lease, Stage::Resolve, 0, &big)
            .await
            .unwrap();
        assert_eq!(
            store.checkpoints(job.id, Stage::Enrich).await.unwrap(),
            vec![
                (1, "one, again".to_owned()),
                (2, "two".to_owned()),
                (3, "three".to_owned())
            ]
        );
        assert_eq!(
            store.checkpoints(job.id, Stage::Resolve).await.unwrap(),
            vec![(0, big)]
        );
        assert!(
            store
                .checkpoints(job.id, Stage::Map)
                .await
                .unwrap()
                .is_empty()
        );

        // Export chunks: upserted, per strategy, cleared per strategy.
        let chunk =
            async |strategy: &str, no: i64| store.export_chunk(job.id, strategy, no).await.unwrap();
        store
            .put_export_chunk(&lease, "reach", 0, "r0")
            .await
            .unwrap();
        store
            .put_export_chunk(&lease, "reach", 1, "r1")
            .await
            .unwrap();
        store
            .put_export_chunk(&lease, "reach", 1, "r1b")
            .await
            .unwrap();
        store
            .put_export_chunk(&lease, "precision", 0, "p0")
            .await
            .unwrap();
        assert_eq!(chunk("reach", 0).await.as_deref(), Some("r0"));
        assert_eq!(chunk("reach", 1).await.as_deref(), Some("r1b"));
        assert_eq!(chunk("reach", 2).await, None);
        assert_eq!(store.export_chunk_count(job.id, "reach").await.unwrap(), 2);
        store.clear_exports(&lease, "reach").await.unwrap();
        assert_eq!(chunk("reach", 0).await, None);
        assert_eq!(store.export_chunk_count(job.id, "reach").await.unwrap(), 0);
        assert_eq!(chunk("precision", 0).await.as_deref(), Some("p0"));
        // A chunk as stored before chunks were compressed still reads back; a large one
        // goes through compression whole; several go in one write.
        icp_store::test_support::put_plain_export_chunk(&store, job.id, "hybrid", 0, "h0").await;
        let large: String = (0..20_000)
            .map(|i| format!("{{\"person_id\":{i}}}\n"))
            .collect();
        store
            .put_export_chunks(&lease, "hybrid", &[(1, b"first"), (2, b"h2")])
            .await
            .unwrap();
        store
            .put_export_chunks(&lease, "hybrid", &[(1, large.as_bytes())])
            .await
            .unwrap();
        assert_eq!(chunk("hybrid", 0).await.as_deref(), Some("h0"));
        assert_eq!(chunk("hybrid", 1).await, Some(large));
        assert_eq!(chunk("hybrid", 2).await.as_deref(), Some("h2"));
        assert_eq!(store.export_chunk_count(job.id, "hybrid").await.unwrap(), 3);
        // Bodies are checked as text when read back: bytes that are not UTF-8 are an error.
        store
            .put_export_chunks(&lease, "hybrid", &[(2, b"\xff\xfe")])
            .await
            .unwrap();
        assert!(matches!(
            store.export_chunk(job.id, "hybrid", 2).await,
            Err(icp_store::StoreError::InvalidData(_))
        ));
        store
            .put_export_chunks(&lease, "hybrid", &[(2, b"h2")])
            .await
            .unwrap();

        // Traces in recording order.
        store
            .add_trace(&lease, Stage::Resolve, "resolve_identities", "t-1")
            .await
            .unwrap();
        store
            .add_trace(&lease, Stage::Enrich, "get_person", "t-2")
            .await
            .unwrap();
        let traces = store.traces(job.id).await.unwrap();
        assert_eq!(
            traces
                .iter()
                .map(|t| (t.stage, t.tool.as_str(), t.tool_trace_id.as_str()))
                .collect::<Vec<_>>(),
            vec![
                (Stage::Resolve, "resolve_identities", "t-1"),
                (Stage::Enrich, "get_person", "t-2")
            ]
        );
        assert!(traces[0].at <= traces[1].at);
        // A poll reads the job and its traces in one query; it must agree with both reads.
        let (detail_job, detail_traces) =
            store.get_job_detail(job.id, None).await.unwrap().unwrap();
        assert_eq!(detail_traces, traces);
        assert_eq!(
            detail_job,
            store.get_job(job.id, None).await.unwrap().unwrap()
        );
        assert!(
            store
                .get_job_detail(job.id, Some("someone-else"))
                .await
                .unwrap()
                .is_none()
        );

        // Completing purges input and checkpoints (person ids) but keeps the deliverables.
        store
            .complete(&lease, json!({"audience": {"total": 2}}))
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
            // precision's one chunk and hybrid's three
            (1, 0, 0, 4, 2),
            "{:?}",
            db.backend()
        );
        assert_eq!(store.job_input(job.id).await.unwrap(), None);
        assert_eq!(
            store.job_result(job.id).await.unwrap(),
            Some(json!({"audience": {"total": 2}}))
        );
    }
}

#[tokio::test]
async fn a_reclaimed_job_carries_a_pending_cancel() {
    for db in TestDatabase::all().await {
        let store = db.store().await;
        let job = store
            .create_job(new_job(None, None, "h"))
            .await
            .unwrap()
            .job;
        let (_, _dead) = store
            .claim_next("dead", Duration::from_millis(10))
            .await
            .unwrap()
            .unwrap();
        store.request_cancel(job.id, None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        let (again, lease) = store.claim_next("next", LEASE).await.unwrap().unwrap();
        assert!(again.cancel_requested);
        store.mark_cancelled(&lease).await.unwrap();
        assert_eq!(
            store.get_job(job.id, None).await.unwrap().unwrap().status,
            JobStatus::Cancelled
        );
    }
}

#[tokio::test]
async fn a_released_job_is_claimed_again_at_once_and_its_old_lease_is_fenced_off() {
    for db in TestDatabase::all().await {
        let store = db.store().await;
        let job = store
            .create_job(new_job(None, None, "h"))
            .await
            .unwrap()
            .job;
        let (_, stopping) = store.claim_next("stopping", LEASE).await.unwrap().unwrap();
        store
            .put_checkpoint(&stopping, Stage::Resolve, 1, "part one")
            .await
            .unwrap();
        store.release(&stopping).await.unwrap();

        let released = store.get_job(job.id, None).await.unwrap().unwrap();
        assert_eq!(released.status, JobStatus::Queued, "{:?}", db.backend());
        assert_eq!(released.lease_owner, None);
        assert_eq!(released.attempt, stopping.attempt);
        // Claimable now, though the released lease had a minute to run.
        let (again, next) = store.claim_next("next", LEASE).await.unwrap().unwrap();
        assert_eq!(again.id, job.id);
        assert_eq!(next.attempt, stopping.attempt + 1);
        assert_eq!(
            store.checkpoints(job.id, Stage::Resolve).await.unwrap(),
            vec![(1, "part one".to_owned())]
        );
        // The released lease writes nothing more, nor releases the new one.
        assert!(matches!(
            store.release(&stopping).await,
            Err(StoreError::LeaseLost)
        ));
        assert!(matches!(
            store
                .put_checkpoint(&stopping, Stage::Resolve, 2, "late")
                .await,
            Err(StoreError::LeaseLost)
        ));
        let running = store.get_job(job.id, None).await.unwrap().unwrap();
        assert_eq!(running.status, JobStatus::Running);
        assert_eq!(running.lease_owner.as_deref(), Some("next"));
    }
}
