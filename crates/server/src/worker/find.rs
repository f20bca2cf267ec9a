//! Stage 5: each audience found, counted and exported in full into the store.

use std::collections::{BTreeMap, HashMap, HashSet};

use futures::{StreamExt, TryStreamExt};
use icp_analysis::{AudienceConfig, Strategy};
use icp_contract::{AudienceExport, Cluster, FindPersonsRequest, PersonId, RANKED_FRACTIONS};
use icp_store::{Part, Stage};

use super::checkpoint::{Mapped, Resolved, Run};
use super::error::{StageError, corrupt, provider};
use crate::export_tally::ExportTally;
use crate::model::{AudienceExports, AudienceResult, CUSTOMERS_EXPORT, strategy_name};

/// The find stage's checkpoints from here on are the ranked audiences' (`ranked.rs`); the
/// boolean audiences take the sequence numbers below, one a plan.
pub(super) const RANKED_SEQ: i64 = 1_000;

/// Segment `k`'s audience `i` (in its plans' order) is checkpointed at
/// `SEGMENT_SEQ + SEGMENT_SEQ_STRIDE · k + i`, the combined audience at `COMBINED_SEQ`: between
/// the whole list's (one a plan, at most four) and the ranked ones.
pub(super) const SEGMENT_SEQ: i64 = 100;
pub(super) const SEGMENT_SEQ_STRIDE: i64 = 8;
pub(super) const COMBINED_SEQ: i64 = RANKED_SEQ - 1;
/// Person ids a chunk of `CUSTOMERS_EXPORT` holds.
const CUSTOMER_IDS_PER_CHUNK: usize = 100_000;

/// The most export chunks stored in one transaction, and held while they wait for it.
pub(super) const CHUNKS_PER_WRITE: usize = 8;

/// The segments' audiences the find stage builds: each segment's planned ones, and the
/// combined one when a segment has a precision audience.
pub(super) fn segment_audience_count(mapped: &Mapped) -> usize {
    let plans = mapped
        .segments
        .iter()
        .filter_map(|s| s.planning.as_ref())
        .map(|p| p.plans.len());
    let combined = mapped
        .segments
        .iter()
        .filter_map(|s| s.planning.as_ref())
        .any(|p| {
            p.plans
                .iter()
                .any(|plan| plan.strategy == Strategy::Precision)
        });
    plans.sum::<usize>() + usize::from(combined)
}

impl Run<'_> {
    /// Stage 5: each strategy's expression → its audience, exported in full into the store
    /// (the ranked audiences follow, `ranked.rs`; the pipeline marks the stage finished).
    /// The audiences are found together (up to the enrichment concurrency): each is one
    /// `find_persons` call and one download, so their round trips overlap, and one audience's
    /// records are stored while the next downloads.
    pub(super) async fn find(
        &mut self,
        mapped: &Mapped,
        resolved: &Resolved,
    ) -> Result<Vec<AudienceResult>, StageError> {
        let by_item: HashMap<(&str, &str), &Cluster> = mapped
            .clusters
            .iter()
            .map(|c| ((c.name.as_str(), c.value.as_str()), c))
            .collect();
        // The planned expressions carry the exclusions already (`analyze.rs`).
        let plans = match &mapped.planning {
            Some(planning) => planning.plans.clone(),
            None => mapped.analysis.audiences(&AudienceConfig {
                exclude: self
                    .options
                    .exclusion(|i| by_item.contains_key(&(i.name.as_str(), i.value.as_str()))),
                ..self.options.audience_config()
            }),
        };
        let customers: HashSet<PersonId> = if self.options.exclude_customers {
            resolved.all.iter().copied().collect()
        } else {
            HashSet::new()
        };
        self.keep_customers(&customers).await?;
        let ranked_tiers = if self.options.may_rank() {
            RANKED_FRACTIONS.len()
        } else {
            0
        };
        let segment_audiences = segment_audience_count(mapped);
        self.enter(
            Stage::Find,
            (plans.len() + ranked_tiers + segment_audiences) as u64,
        )
        .await?;
        let mut done: BTreeMap<i64, AudienceResult> = BTreeMap::new();
        for (seq, body) in self.store().checkpoints(self.job.id, Stage::Find).await? {
            // The segments' and the ranked audiences' checkpoints follow, from `SEGMENT_SEQ`.
            if (0..SEGMENT_SEQ).contains(&seq) {
                done.insert(seq, serde_json::from_str(&body).map_err(corrupt)?);
            }
        }
        let mut todo = Vec::new();
        for (i, plan) in plans.iter().enumerate() {
            let seq = i as i64;
            if done.contains_key(&seq) {
                continue;
            }
            let Some(expression) = plan.render(|item| {
                by_item
                    .get(&(item.name.as_str(), item.value.as_str()))
                    .map(|c| c.cluster_hash.clone())
            }) else {
                tracing::warn!(job = %self.job.id, strategy = ?plan.strategy, "an item of the audience has no cluster; audience skipped");
                continue;
            };
            let description = plan
                .render(|item| Some(format!("{}={}", item.name, item.value)))
                .unwrap_or_default();
            // Owned: a borrowed plan in the futures below makes the job's future not `Send`
            // for every lifetime, which the worker pool needs.
            let planned = (plan.rationale.clone(), plan.expected);
            todo.push((seq, plan.strategy, expression, description, planned));
        }
        // The audience likely largest goes first, its download being the longest: an OR of
        // traits (reach) holds more people than a mix (hybrid), a mix more than an AND
        // (precision). The result keeps the plans' order.
        todo.sort_by_key(|(_, strategy, ..)| match strategy {
            Strategy::Reach => 0,
            Strategy::Hybrid => 1,
            Strategy::Standard => 2,
            Strategy::Precision => 3,
        });

        // Every store write happens inside the audiences' futures: a write awaited beside them
        // could wait on the job row that a paused one's transaction holds (Postgres locks it
        // until commit), and that one would never be polled to commit.
        let mut progress = self.progress.clone();
        progress.stage_mut(Stage::Find).done = done.len() as u64;
        let progress = tokio::sync::Mutex::new(progress);
        let this = &*self;
        let customers = &customers;
        let progress_ref = &progress;
        let finished: Vec<(i64, AudienceResult, Option<String>)> =
            futures::stream::iter(todo.into_iter().map(
                |(seq, strategy, expression, description, planned)| async move {
                    let name = strategy_name(strategy).to_owned();
                    let (mut audience, workflow) = this
                        .find_one(strategy, name, expression, description, customers)
                        .await?;
                    (audience.rationale, audience.expected) = planned;
                    let body = serde_json::to_string(&audience).map_err(corrupt)?;
                    // Written under the lock, so the count a poller sees never goes back.
                    let mut p = progress_ref.lock().await;
                    p.stage_mut(Stage::Find).done += 1;
                    let value = serde_json::to_value(&*p).map_err(corrupt)?;
                    let part = Part {
                        stage: Stage::Find,
                        seq,
                        payload: &body,
                        traces: &[],
                        progress: Some(&value),
                    };
                    this.store().put_part(this.lease, part).await?;
                    drop(p);
                    Ok::<_, StageError>((seq, audience, workflow))
                },
            ))
            .buffer_unordered(self.ctx.config.enrich_concurrency.max(1))
            .try_collect()
            .await?;
        self.progress = progress.into_inner();
        let mut workflow = None;
        for (seq, audience, answered_workflow) in finished {
            done.insert(seq, audience);
            workflow = workflow.or(answered_workflow);
        }
        self.adopt_workflow(workflow.as_ref()).await?;
        Ok(done.into_values().collect())
    }

    /// The customers' person ids, kept with the job's exports (`CUSTOMERS_EXPORT`, never
    /// served) until the job is deleted or expires, so a custom audience added later leaves
    /// them out too. Written again, the same, when the stage resumes.
    async fn keep_customers(&self, customers: &HashSet<PersonId>) -> Result<(), StageError> {
        let mut ids: Vec<u64> = customers.iter().map(|p| p.0).collect();
        ids.sort_unstable();
        let chunks: Vec<(i64, Vec<u8>)> = ids
            .chunks(CUSTOMER_IDS_PER_CHUNK)
            .enumerate()
            .map(|(no, ids)| {
                let mut body = String::with_capacity(ids.len() * 12);
                for id in ids {
                    body.push_str(&id.to_string());
                    body.push('\n');
                }
                (no as i64, body.into_bytes())
            })
            .collect();
        for batch in chunks.chunks(CHUNKS_PER_WRITE) {
            let bodies: Vec<(i64, &[u8])> =
                batch.iter().map(|(no, b)| (*no, b.as_slice())).collect();
            self.store()
                .put_export_chunks(self.lease, CUSTOMERS_EXPORT, &bodies)
                .await?;
        }
        Ok(())
    }

    /// One audience: count, sample and every record from one `find_persons` export, customers
    /// dropped, the rest stored in chunks. Also answers the workflow id the call reported.
    pub(super) async fn find_one(
        &self,
        strategy: Strategy,
        name: String,
        expression: String,
        description: String,
        customers: &HashSet<PersonId>,
    ) -> Result<(AudienceResult, Option<String>), StageError> {
        // Ask for enough rows that the limit still holds once customers are dropped.
        let limit = self.options.audience_limit;
        let mut tally = ExportTally::new(customers, limit, self.ctx.config.export_chunk_rows);
        let request = FindPersonsRequest {
            expression: expression.clone(),
            identifier_type: Some(self.options.identifier_type),
            location: self.options.location,
            audience_limit: tally.asked(),
            format: None,
            workflow_id: self.workflow_id.clone(),
        };
        let count_request = request.clone();
        let export_name = name.as_str();
        self.store().clear_exports(self.lease, export_name).await?;
        let AudienceExport {
            answer,
            records: mut stream,
        } = self
            .ctx
            .provider
            .export_persons(request)
            .await
            .map_err(provider("find"))?;
        self.trace(Stage::Find, "find_persons", answer.tool_trace_id.as_ref())
            .await?;
        let workflow = answer.workflow_id.clone();
        // The records are read and the full chunks stored side by side: a chunk's write (a
        // commit of a megabyte) no longer stops the download, which waited on it.
        let (full, mut to_store) = tokio::sync::mpsc::channel::<(i64, Vec<u8>)>(CHUNKS_PER_WRITE);
        let read = async move {
            // Read to the end (at most the customers' count past the limit), so every customer
            // the export holds is counted out of `total`.
            while let Some(batch) = stream.try_next().await.map_err(provider("find"))? {
                for (person_id, json) in batch.iter() {
                    if let Some(chunk) = tally.take(person_id, json) {
                        // Fails only when the writer stopped, whose error `try_join` reports.
                        let _ = full.send(chunk).await;
                    }
                }
            }
            if let Some(chunk) = tally.finish() {
                let _ = full.send(chunk).await;
            }
            Ok::<_, StageError>(tally)
        };
        let write = async {
            // What piled up while the last write ran goes in one transaction.
            let mut batch = Vec::with_capacity(CHUNKS_PER_WRITE);
            while to_store.recv_many(&mut batch, CHUNKS_PER_WRITE).await > 0 {
                let bodies: Vec<(i64, &[u8])> = batch
                    .iter()
                    .map(|(no, chunk)| (*no, chunk.as_slice()))
                    .collect();
                self.store()
                    .put_export_chunks(self.lease, export_name, &bodies)
                    .await?;
                batch.clear();
            }
            Ok::<_, StageError>(())
        };
        let (tally, ()) = tokio::try_join!(read, write)?;
        // A limited export counts only what it returns; the audience's own size (and a sample
        // of all of it) takes a count without the limit.
        let counted = match limit {
            None => answer,
            Some(_) => {
                let counted = self
                    .ctx
                    .provider
                    .find_persons(FindPersonsRequest {
                        audience_limit: None,
                        ..count_request
                    })
                    .await
                    .map_err(provider("find"))?;
                self.trace(Stage::Find, "find_persons", counted.tool_trace_id.as_ref())
                    .await?;
                counted
            }
        };
        let sample = counted
            .sample
            .into_iter()
            .filter(|r| !customers.contains(&r.person_id))
            .collect();
        let result = AudienceResult {
            strategy,
            expression,
            description,
            total: counted.total.saturating_sub(tally.excluded),
            total_with_customers: Some(counted.total),
            total_exact: tally.exact(counted.total),
            excluded_customers: tally.excluded,
            exported: tally.exported,
            truncated: tally.truncated,
            sample,
            exports: AudienceExports::named(self.job.id, export_name),
            rationale: String::new(),
            expected: None,
            name: (export_name != strategy_name(strategy)).then_some(name.clone()),
            validation: None,
        };
        Ok((result, workflow))
    }
}
