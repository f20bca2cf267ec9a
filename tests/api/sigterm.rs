//! `SIGTERM` on the real binary: the process stops claiming, gives its running job back to the
//! queue and exits, soon and cleanly; a second process takes the job up at once — not once the
//! first one's lease would have run out — and finishes it with the result of an undisturbed
//! run, without redoing what the first one stored.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use icp_store::JobStatus;
use icp_store::test_support::TestDatabase;
use uuid::Uuid;

use crate::call_log::start_upstream;
use crate::child::{ChildConfig, ChildService, job_outcome, json_diff};
use crate::crash_kill::requests;
use crate::stored_work::{assert_units_match_calls, durable_work};

const LATENCY: Duration = Duration::from_millis(150);
/// The lease the processes hold: the service's default, far longer than the test waits.
const LEASE_SECS: u64 = 30;

async fn stopped_mid_job(db: TestDatabase) {
    let backend = db.backend();
    let (log, upstream_url, _upstream) = start_upstream(LATENCY).await;
    let config = ChildConfig {
        workers: 1,
        lease_secs: LEASE_SECS,
        ..ChildConfig::new(db.url(), &upstream_url)
    };
    let output = Arc::new(Mutex::new(String::new()));
    let store = db.store().await;
    let body = requests().remove(0);

    log.next_run();
    let mut first = ChildService::start(&config, output.clone()).await;
    let reference = first.post_job(&body).await;
    first.wait_for(&reference, Duration::from_secs(60)).await;
    let undisturbed = job_outcome(&first, &reference).await;

    // The same request again, stopped while its enrichment has a call out.
    let run = log.next_run();
    let id = first.post_job(&body).await;
    let job_id: Uuid = id.parse().unwrap();
    let waiting = Instant::now();
    while log.count(run, "get_person") < 3 {
        assert!(
            waiting.elapsed() < Duration::from_secs(60),
            "no enrichment call"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let attempt = store.get_job(job_id, None).await.unwrap().unwrap().attempt;
    first.terminate();
    let signalled = Instant::now();
    let status = first
        .exited_within(Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("no exit within 10 s of SIGTERM:\n{}", first.log()));
    let exit_secs = signalled.elapsed().as_secs_f64();
    assert!(status.success(), "exit status {status}:\n{}", first.log());

    // Back in the queue, lease and attempt as a claim needs them.
    let left = store.get_job(job_id, None).await.unwrap().unwrap();
    assert_eq!(left.status, JobStatus::Queued, "{backend:?}");
    assert_eq!(left.lease_owner, None);
    assert_eq!(left.attempt, attempt);
    let stored = durable_work(&store, &[job_id]).await;
    assert!(
        !stored.units.is_empty(),
        "the first process stored nothing before it stopped"
    );

    let run = log.next_run();
    let second = ChildService::start(&config, output.clone()).await;
    let listening = Instant::now();
    loop {
        let job = store.get_job(job_id, None).await.unwrap().unwrap();
        if job.attempt > attempt {
            break;
        }
        // A lease left to run out would hold the job for 30 s.
        assert!(
            listening.elapsed() < Duration::from_secs(5),
            "the second process did not take the job within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let taken_secs = listening.elapsed().as_secs_f64();
    let job = second.wait_for(&id, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let outcome = job_outcome(&second, &id).await;
    let diff = json_diff(&outcome.0, &undisturbed.0, 10);
    assert!(diff.is_empty(), "the result differs:\n{}", diff.join("\n"));
    assert!(outcome.1 == undisturbed.1, "the exports differ");

    let calls = log.calls();
    assert_units_match_calls(&stored, &calls);
    let redone = calls
        .iter()
        .filter(|c| c.run == run && stored.covers(c))
        .count();
    assert_eq!(redone, 0, "the second process redid stored work");
    assert!(
        first.log().contains("job released"),
        "the first process did not say it released the job"
    );
    eprintln!(
        "SIGTERM on {backend:?}: exited in {exit_secs:.2} s with {status}; the next process took \
         the job {taken_secs:.2} s after it listened (lease {LEASE_SECS} s) and redid none of \
         the {} units stored",
        stored.units.len()
    );
    store.close().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_releases_the_job_and_exits_soon_and_the_next_process_finishes_it() {
    for db in TestDatabase::all().await {
        stopped_mid_job(db).await;
    }
}
