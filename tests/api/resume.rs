//! A job whose attempt fails part-way (a provider error the worker retries) resumes from its
//! checkpoints: it finishes with the result an uninterrupted run gives, and every batch of
//! persons it asks to enrich, in any attempt, is one an uninterrupted run asks for — the batches
//! are formed again the same way while resolve and enrichment overlap.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use icp_contract::*;

/// Fails chosen calls (counted over every attempt) with an error the worker retries, and
/// records every enrichment batch asked for.
struct Flaky {
    /// The `resolve_identities` call to fail, numbered from 1.
    fail_resolve: usize,
    /// Whether to fail the first request of the last, partial enrichment batch (formed only
    /// once every resolve answer is in, so the batches before it are likely checkpointed).
    fail_last_batch: bool,
    resolves: AtomicUsize,
    failed_batches: AtomicUsize,
    batches: Mutex<Vec<Vec<u64>>>,
}

impl Flaky {
    fn new(fail_resolve: usize, fail_last_batch: bool) -> Arc<Tapped<Self>> {
        Tapped::new(Self {
            fail_resolve,
            fail_last_batch,
            resolves: AtomicUsize::new(0),
            failed_batches: AtomicUsize::new(0),
            batches: Mutex::new(Vec::new()),
        })
    }

    fn batches(&self) -> BTreeSet<Vec<u64>> {
        self.batches.lock().unwrap().iter().cloned().collect()
    }
}

fn injected(what: &str) -> ProviderError {
    ProviderError::unavailable(format!("injected failure of {what}"))
}

impl Tap for Flaky {
    fn on_resolve(&self, _req: &ResolveRequest) -> Result<(), ProviderError> {
        if self.resolves.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_resolve {
            return Err(injected("resolve_identities"));
        }
        Ok(())
    }

    fn on_get_person(&self, req: &GetPersonRequest) -> Result<(), ProviderError> {
        let ids = req.person_ids.iter().map(|p| p.0).collect();
        self.batches.lock().unwrap().push(ids);
        if self.fail_last_batch
            && req.person_ids.len() < MAX_PERSON_IDS_PER_CALL
            && self.failed_batches.fetch_add(1, Ordering::SeqCst) == 0
        {
            return Err(injected("get_person"));
        }
        Ok(())
    }
}

/// 2,500 customers in resolve calls of 250: ten calls, three enrichment batches (the last one
/// partial), the first asked for while later resolve calls are still out.
async fn run(provider: Arc<Tapped<Flaky>>) -> serde_json::Value {
    let app = spawn_app_with(
        databases().await.remove(0),
        AppOptions {
            workers: 1,
            provider: Some(provider),
            resolve_chunk: Some(250),
            retry_base: Some(Duration::from_millis(20)),
            ..AppOptions::default()
        },
    )
    .await;
    // Without the validate stage, whose samples would count as enrichment batches here
    // (`validation.rs` resumes that stage).
    let (_, emails) = segment_emails(3, 2500);
    let body = job_body(
        &emails,
        serde_json::json!({"min_support": 0.05, "audience_limit": 2000, "validate": false}),
    );
    let (result, _) = run_job_body(&app, &body).await;
    app.shutdown().await;
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_resumed_after_failures_gives_the_uninterrupted_result() {
    let clean = Flaky::new(0, false);
    let uninterrupted = run(clean.clone()).await;
    let clean_batches = clean.tap.batches();
    assert_eq!(clean_batches.len(), 3, "{clean_batches:?}");
    assert_eq!(clean.tap.resolves.load(Ordering::SeqCst), 10);

    // The 9th resolve call fails (enrichment already under way), then the last enrichment
    // batch: three attempts, the second resumed mid-resolve, the third after resolve.
    let flaky = Flaky::new(9, true);
    let resumed = run(flaky.clone()).await;
    assert_eq!(resumed, uninterrupted, "the resumed job's result differs");
    assert!(
        flaky.tap.resolves.load(Ordering::SeqCst) > 10,
        "no resolve call failed"
    );
    assert!(
        flaky.tap.failed_batches.load(Ordering::SeqCst) > 1,
        "no enrichment call failed"
    );
    let asked = flaky.tap.batches();
    assert!(
        asked.is_subset(&clean_batches),
        "a resumed attempt formed other batches: {} vs {}",
        asked.len(),
        clean_batches.len()
    );
    assert_eq!(asked.len(), clean_batches.len());
}
