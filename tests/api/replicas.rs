//! Two `icp serve` processes on one Postgres database, killed (`SIGKILL`) and restarted in turn,
//! and frozen (`SIGSTOP`) past their lease while they hold a job, then woken: no job is ever run
//! by two attempts at once, and no attempt writes a job once a later one has. Asserted on every
//! write the database took: a trigger (test-only SQL) logs each update of a job row and each
//! checkpoint, export chunk and trace stored, with the lease it was made under.
//!
//! Postgres only (SQLite is one process's file): skipped, saying so, without
//! `ICP_TEST_DATABASE_URL`; failing when it is set and the server cannot be reached.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use icp_store::test_support::TestDatabase;
use icp_store::{JobStatus, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::call_log::start_upstream;
use crate::child::{ChildConfig, ChildService, Outcome, job_outcome, json_diff};
use crate::crash_kill::requests;

const LATENCY: Duration = Duration::from_millis(150);
const LEASE_SECS: u64 = 1;
const KILLS: usize = 4;
const FREEZES: usize = 3;

/// The audit: every worker write with the lease it was made under. A claim is logged with the
/// new attempt and the lease it took over; any other update of a job row, and every artifact
/// stored, with the lease holding the row at that moment — the writer's own, as every worker
/// write takes the row under its lease first in the same transaction (the fence).
const AUDIT_SQL: &str = r#"
CREATE TABLE write_audit (
    seq         BIGSERIAL PRIMARY KEY,
    job_id      UUID NOT NULL,
    what        TEXT NOT NULL,
    writer      TEXT,
    attempt     INTEGER NOT NULL,
    old_status  TEXT,
    old_expires BIGINT,
    claimed_at  BIGINT,
    at_us       BIGINT NOT NULL DEFAULT (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT
);

CREATE FUNCTION audit_job_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.attempt <> OLD.attempt THEN
        INSERT INTO write_audit (job_id, what, writer, attempt, old_status, old_expires, claimed_at)
        VALUES (NEW.id, 'claim', NEW.lease_owner, NEW.attempt, OLD.status, OLD.lease_expires_at,
                NEW.updated_at);
    ELSIF OLD.lease_owner IS NOT NULL THEN
        INSERT INTO write_audit (job_id, what, writer, attempt, old_status)
        VALUES (NEW.id, 'job', OLD.lease_owner, OLD.attempt, OLD.status);
    END IF;
    RETURN NEW;
END $$;

CREATE FUNCTION audit_artifact() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO write_audit (job_id, what, writer, attempt, old_status)
    SELECT NEW.job_id, TG_ARGV[0], j.lease_owner, j.attempt, j.status FROM jobs j
    WHERE j.id = NEW.job_id;
    RETURN NEW;
END $$;

CREATE TRIGGER audit_jobs AFTER UPDATE ON jobs
    FOR EACH ROW EXECUTE FUNCTION audit_job_update();
CREATE TRIGGER audit_checkpoints AFTER INSERT OR UPDATE ON job_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_artifact('checkpoint');
CREATE TRIGGER audit_exports AFTER INSERT OR UPDATE ON job_exports
    FOR EACH ROW EXECUTE FUNCTION audit_artifact('export');
CREATE TRIGGER audit_traces AFTER INSERT ON job_traces
    FOR EACH ROW EXECUTE FUNCTION audit_artifact('trace');
"#;

/// One row of the audit.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Write {
    job_id: Uuid,
    what: String,
    writer: Option<String>,
    attempt: i32,
    old_status: Option<String>,
    old_expires: Option<i64>,
    claimed_at: Option<i64>,
    at_us: i64,
}

/// What the audit shows against fencing: for each job, in the order the writes were made
/// (the row lock orders them) —
/// - the attempt of successive writes never goes down: no attempt writes after a later one did;
/// - each attempt is claimed once and written by the worker that claimed it alone;
/// - a running job is claimed only once the lease of the attempt before had run out (a
///   released or retried job is queued and free);
/// - the lease windows (claim to last write) of two attempts do not overlap in time either.
fn fencing_violations(writes: &[Write]) -> Vec<String> {
    let mut by_job: BTreeMap<Uuid, Vec<&Write>> = BTreeMap::new();
    for w in writes {
        by_job.entry(w.job_id).or_default().push(w);
    }
    let mut found = Vec::new();
    for (job, writes) in by_job {
        let mut highest = 0;
        let mut owner: HashMap<i32, Option<&str>> = HashMap::new();
        let mut window: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
        for w in writes {
            if w.attempt < highest {
                found.push(format!(
                    "job {job}: a {} write of attempt {} after attempt {highest} wrote",
                    w.what, w.attempt
                ));
            }
            highest = highest.max(w.attempt);
            if w.what == "claim" {
                if owner.insert(w.attempt, w.writer.as_deref()).is_some() {
                    found.push(format!("job {job}: attempt {} claimed twice", w.attempt));
                }
                if w.old_status.as_deref() == Some("running")
                    && w.claimed_at.unwrap_or(i64::MIN) < w.old_expires.unwrap_or(i64::MAX)
                {
                    found.push(format!(
                        "job {job}: attempt {} claimed at {:?} while the lease before ran until {:?}",
                        w.attempt, w.claimed_at, w.old_expires
                    ));
                }
            } else {
                match owner.get(&w.attempt) {
                    None => found.push(format!(
                        "job {job}: a {} write of attempt {}, never claimed",
                        w.what, w.attempt
                    )),
                    Some(claimer) if *claimer != w.writer.as_deref() => found.push(format!(
                        "job {job}: attempt {} claimed by {claimer:?}, written by {:?}",
                        w.attempt, w.writer
                    )),
                    Some(_) => {}
                }
            }
            let span = window.entry(w.attempt).or_insert((w.at_us, w.at_us));
            span.1 = span.1.max(w.at_us);
        }
        let spans: Vec<(i32, (i64, i64))> = window.into_iter().collect();
        for pair in spans.windows(2) {
            let ((a, (_, a_last)), (b, (b_first, _))) = (pair[0], pair[1]);
            if a_last > b_first {
                found.push(format!(
                    "job {job}: attempt {a} wrote until {a_last} µs, after attempt {b} began at {b_first} µs"
                ));
            }
        }
    }
    found
}

/// The process a worker id belongs to, by the logs that name it.
fn process_of(owner: &str, logs: &[String]) -> Option<usize> {
    logs.iter().position(|log| log.contains(owner))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_killed_and_frozen_in_turn_never_run_one_job_at_once() {
    let Some(db) = TestDatabase::postgres().await else {
        eprintln!(
            "\n*** ICP_TEST_DATABASE_URL is not set: the two-process test did NOT run. It needs \
             Postgres (two processes cannot share a SQLite queue the same way); set \
             ICP_TEST_DATABASE_URL=postgres://… to run it. ***\n"
        );
        return;
    };
    let seed: u64 = rand::rng().random();
    eprintln!("two processes: seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let store = db.store().await;
    let pool = sqlx::PgPool::connect(db.url()).await.expect("connect");
    sqlx::raw_sql(AUDIT_SQL)
        .execute(&pool)
        .await
        .expect("install the audit");

    let (_log, upstream_url, _upstream) = start_upstream(LATENCY).await;
    let config = ChildConfig {
        lease_secs: LEASE_SECS,
        ..ChildConfig::new(db.url(), &upstream_url)
    };
    let fresh_log = || Arc::new(Mutex::new(String::new()));
    let mut children = [
        ChildService::start(&config, fresh_log()).await,
        ChildService::start(&config, fresh_log()).await,
    ];
    // Logs of every process started, the running ones last.
    let mut old_logs: Vec<String> = Vec::new();
    let bodies = requests();
    let mut jobs: Vec<(Uuid, usize)> = Vec::new();
    for i in 0..4 {
        let id = children[i % 2].post_job(&bodies[i % 2]).await;
        jobs.push((id.parse().unwrap(), i % 2));
    }

    let unfinished = |store: Store, ids: Vec<Uuid>| async move {
        let mut running = Vec::new();
        for id in ids {
            let job = store.get_job(id, None).await.unwrap().unwrap();
            if matches!(job.status, JobStatus::Queued | JobStatus::Running) {
                running.push(job);
            }
        }
        running
    };
    let mut events = Vec::new();
    let mut freezes = 0;
    let mut takeovers_of_frozen = 0;
    for round in 0..KILLS + FREEZES {
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..1500))).await;
        let ids: Vec<Uuid> = jobs.iter().map(|j| j.0).collect();
        let running = unfinished(store.clone(), ids).await;
        if running.len() < 3 {
            let which = jobs.len() % bodies.len();
            let id = children[round % 2].post_job(&bodies[which]).await;
            jobs.push((id.parse().unwrap(), which));
        }
        // Kills alternate between the two; a freeze goes to a process holding a job.
        let freeze = round % 2 == 1 && freezes < FREEZES;
        if !freeze {
            let victim = (round / 2) % 2;
            children[victim].kill();
            old_logs.push(children[victim].log());
            children[victim] = ChildService::start(&config, fresh_log()).await;
            events.push(format!("killed and restarted process {victim}"));
            continue;
        }
        // Right after a kill the jobs are still leased to the dead process: wait (bounded) for
        // a live one to hold a job, instead of judging from the snapshot taken before.
        let mut holder = None;
        let looking = Instant::now();
        while holder.is_none() && looking.elapsed() < Duration::from_secs(LEASE_SECS * 3) {
            let ids: Vec<Uuid> = jobs.iter().map(|j| j.0).collect();
            let running = unfinished(store.clone(), ids).await;
            let logs: Vec<String> = children.iter().map(ChildService::log).collect();
            holder = running
                .iter()
                .filter(|j| j.status == JobStatus::Running)
                .find_map(|j| {
                    let owner = j.lease_owner.clone()?;
                    Some((j.id, j.attempt, process_of(&owner, &logs)?))
                });
            if holder.is_none() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let Some((job_id, attempt, victim)) = holder else {
            events.push("no job held at a freeze: skipped".to_owned());
            continue;
        };
        freezes += 1;
        children[victim].signal("STOP");
        // Frozen past its lease, until the other process has taken the job over.
        let frozen = Instant::now();
        let mut taken = false;
        while frozen.elapsed() < Duration::from_secs(LEASE_SECS * 4) {
            let job = store.get_job(job_id, None).await.unwrap().unwrap();
            if job.attempt > attempt || job.status != JobStatus::Running {
                taken = job.attempt > attempt;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if taken {
            // Let the new attempt write a little before the old one wakes up.
            tokio::time::sleep(Duration::from_millis(300)).await;
            takeovers_of_frozen += 1;
        }
        children[victim].signal("CONT");
        events.push(format!(
            "froze process {victim} holding job {job_id} (attempt {attempt}) for {:.1} s; taken over: {taken}",
            frozen.elapsed().as_secs_f64()
        ));
    }

    // Both run on until every job is done.
    let watcher = &children[0];
    let mut outcomes: Vec<Vec<Outcome>> = vec![Vec::new(); bodies.len()];
    for (id, which) in &jobs {
        let job = watcher
            .wait_for(&id.to_string(), Duration::from_secs(120))
            .await;
        assert_eq!(job["status"], "succeeded", "{job}");
        outcomes[*which].push(job_outcome(watcher, &id.to_string()).await);
    }
    for same_request in &outcomes {
        for other in &same_request[1..] {
            let diff = json_diff(&other.0, &same_request[0].0, 10);
            assert!(
                diff.is_empty(),
                "results of one request differ:\n{}",
                diff.join("\n")
            );
            assert!(
                other.1 == same_request[0].1,
                "exports of one request differ"
            );
        }
    }
    old_logs.extend(children.iter().map(ChildService::log));
    drop(children);

    let writes: Vec<Write> = sqlx::query_as(
        "SELECT job_id, what, writer, attempt, old_status, old_expires, claimed_at, at_us \
         FROM write_audit ORDER BY seq",
    )
    .fetch_all(&pool)
    .await
    .expect("read the audit");
    let violations = fencing_violations(&writes);
    let claims = writes.iter().filter(|w| w.what == "claim").count();
    let processes_writing: std::collections::HashSet<&str> = writes
        .iter()
        .filter_map(|w| w.writer.as_deref())
        .filter_map(|w| w.rsplit_once('-').map(|(p, _)| p))
        .collect();
    let fenced_off = old_logs
        .iter()
        .map(|l| l.matches("lease lost").count())
        .sum::<usize>();
    eprintln!(
        "two processes ({:.1} s, seed {seed}): {} jobs, {} audited writes, {claims} claims by {} \
         processes; {}; {takeovers_of_frozen} frozen holders taken over, {fenced_off} stale \
         workers fenced off",
        started.elapsed().as_secs_f64(),
        jobs.len(),
        writes.len(),
        processes_writing.len(),
        events.join("; ")
    );
    assert!(
        violations.is_empty(),
        "{} fencing violations: {:#?}",
        violations.len(),
        &violations[..violations.len().min(10)]
    );
    // The audit saw what it was for: several processes writing, jobs changing hands, and a
    // frozen worker that woke up to find its lease taken.
    assert!(processes_writing.len() >= 3, "{processes_writing:?}");
    assert!(claims > jobs.len(), "no job changed hands");
    assert!(
        takeovers_of_frozen > 0,
        "no frozen process had its job taken over"
    );
    assert!(fenced_off > 0, "no stale worker was fenced off");
    pool.close().await;
    store.close().await;
    db.cleanup().await;
}

#[test]
fn the_audit_check_finds_a_stale_write_a_double_claim_and_an_early_takeover() {
    let job = Uuid::new_v4();
    let w = |what: &str, writer: &str, attempt, at_us| Write {
        job_id: job,
        what: what.to_owned(),
        writer: Some(writer.to_owned()),
        attempt,
        old_status: Some("queued".to_owned()),
        old_expires: None,
        claimed_at: Some(at_us),
        at_us,
    };
    let fenced = vec![
        w("claim", "a-0", 1, 10),
        w("checkpoint", "a-0", 1, 20),
        w("claim", "b-0", 2, 30),
        w("job", "b-0", 2, 40),
    ];
    assert!(fencing_violations(&fenced).is_empty());

    let mut stale = fenced.clone();
    stale.push(w("checkpoint", "a-0", 1, 50));
    assert_eq!(
        fencing_violations(&stale).len(),
        2,
        "{:?}",
        fencing_violations(&stale)
    );

    let mut shared = fenced.clone();
    shared.push(w("export", "a-0", 2, 50));
    assert_eq!(fencing_violations(&shared).len(), 1);

    let mut early = fenced.clone();
    early[2].old_status = Some("running".to_owned());
    early[2].old_expires = Some(35);
    assert_eq!(fencing_violations(&early).len(), 1);

    let mut twice = fenced;
    twice.push(w("claim", "c-0", 2, 50));
    assert!(!fencing_violations(&twice).is_empty());
}
