//! Stages 1 and 2, which overlap: identifiers → persons (`resolve_identities`), persons →
//! profiles (`get_person`, at most 1000 a call).

use std::collections::{BTreeMap, HashSet, VecDeque};

use futures::{Stream, StreamExt};
use icp_contract::{
    GetPersonRequest, GetPersonResponse, IdentifierGroup, MAX_PERSON_IDS_PER_CALL, PersonId,
    ProviderError, ResolveRequest, ResolveResponse, count_values, plan_resolve_calls,
    plan_resolve_calls_opening_small,
};
use icp_store::Stage;

use super::accept::Acceptor;
use super::ahead::{Ahead, run_ahead};
use super::checkpoint::{FINAL, Resolved, ResolvedChunk, Run, SegmentMembers};
use super::error::{StageError, corrupt, provider};
use super::feeder::Feeder;
use crate::diagnostics::{group_resolution, replace_warnings, resolution_warning};
use crate::input::StoredInput;
use crate::model::Resolution;
use crate::warning::WarningCode;

/// Distinct identifiers an answer matched, by criterion type (`email_sha256`): as
/// `resolve_persons` counted them before dropping the matches, or from the matches.
fn matched_by_criterion(answer: &ResolveResponse) -> BTreeMap<String, u64> {
    if answer.matched_by_criterion.is_empty() {
        answer.count_matched()
    } else {
        answer.matched_by_criterion.clone()
    }
}

/// Which segment each resolve call's identifiers belong to: `owners[seq - 1]` is the part of
/// call `seq` (0: customers in no segment; `k`: segment `names[k - 1]`). Empty for a job without
/// segments.
#[derive(Debug, Default)]
pub(super) struct SegmentPlan {
    owners: Vec<usize>,
    names: Vec<String>,
}

/// Identifiers in a job's first resolve call, which goes alone (see
/// [`plan_resolve_calls_opening_small`]): one group of the upstream's.
pub(super) const OPENING_RESOLVE_CALL: usize = icp_contract::MAX_RESOLVE_VALUES_PER_GROUP;

/// A resolve call's answer: its number, how many identifiers it asked about, the answer.
pub(super) type ResolveAnswer = Result<(i64, u64, ResolveResponse), ProviderError>;

/// The next item of a stream that may not be there (then never).
pub(super) async fn next_of<S: Stream + Unpin>(stream: &mut Option<S>) -> Option<S::Item> {
    match stream {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

/// The enrich stage while its batches are being formed.
pub(super) struct Enrichment {
    /// Where batches go to be asked for; closed once the last one went.
    requests: Option<futures::channel::mpsc::UnboundedSender<(usize, GetPersonRequest)>>,
    /// The batches an earlier run of the job checkpointed.
    done_seqs: HashSet<i64>,
    feeder: Option<Feeder>,
    /// Persons enriched so far, checkpointed batches included.
    done: u64,
    /// Whether the stage has begun (its first batch formed).
    entered: bool,
    domains: Option<Vec<String>>,
    /// Whether each checkpoint names the persons of its profiles (a job with segments).
    segmented: bool,
    /// Which segment each resolve call's persons belong to.
    segments: SegmentPlan,
}

impl Run<'_> {
    /// Stages 1 and 2: identifiers → persons, in calls of at most `resolve_chunk` identifiers;
    /// persons → profiles, at most 1000 a call. Enrichment does not wait for the last resolve
    /// answer: each batch is asked for as soon as the answers before it accepted its persons
    /// (see [`Acceptor`]), so the calls of both stages share the provider's slots. A job whose
    /// resolve stage finished before a crash enriches what it accepted, in the same batches.
    pub(super) async fn resolve_and_enrich(&mut self) -> Result<Resolved, StageError> {
        let batch = MAX_PERSON_IDS_PER_CALL;
        let mut resolved = self.final_checkpoint::<Resolved>(Stage::Resolve).await?;
        let mut done_chunks: BTreeMap<i64, ResolvedChunk> = BTreeMap::new();
        let mut rounds: VecDeque<Vec<(i64, Vec<IdentifierGroup>)>> = VecDeque::new();
        let mut segments = SegmentPlan::default();
        let mut acceptor = match &resolved {
            Some(done) => Acceptor::resumed(done.accepted.clone(), batch),
            None => {
                let chunks;
                (chunks, segments) = self.plan_resolve(&mut done_chunks).await?;
                // Calls run several at once; each answer is checkpointed as it arrives. With no
                // workflow yet, the first call goes alone: every later one must carry the
                // workflow it opens (calls sent side by side would each open their own).
                let mut pending: Vec<(i64, Vec<IdentifierGroup>)> = chunks
                    .into_iter()
                    .enumerate()
                    .map(|(i, chunk)| (i as i64 + 1, chunk))
                    .filter(|(seq, _)| !done_chunks.contains_key(seq))
                    .collect();
                if self.workflow_id.is_none() && !pending.is_empty() {
                    rounds.push_back(vec![pending.remove(0)]);
                }
                if !pending.is_empty() {
                    rounds.push_back(pending);
                }
                let mut acceptor = Acceptor::new(self.options.min_quality_score, batch);
                acceptor.advance(|seq| done_chunks.get(&seq).map(|c| c.persons.as_slice()));
                acceptor
            }
        };

        let segmented =
            !segments.names.is_empty() || resolved.as_ref().is_some_and(|r| !r.segments.is_empty());
        let mut flow = self.start_enrichment(segmented).await?;
        flow.segments = segments;
        let (requests, calls) = futures::channel::mpsc::unbounded::<(usize, GetPersonRequest)>();
        flow.requests = Some(requests);
        let upstream = self.ctx.provider.clone();
        let concurrency = self.ctx.config.enrich_concurrency.max(1);
        let calls = calls
            .map(move |(i, req)| {
                let upstream = upstream.clone();
                async move {
                    let n = req.person_ids.len();
                    upstream.get_person(req).await.map(|answer| (i, n, answer))
                }
            })
            .buffer_unordered(concurrency);
        let mut profiles = run_ahead(calls, concurrency);

        let mut resolving = rounds.pop_front().map(|round| self.resolve_calls(round));
        if resolving.is_none() {
            self.end_resolve(&mut flow, &mut acceptor, &done_chunks, &mut resolved)
                .await?;
        } else {
            self.dispatch(&mut flow, &mut acceptor, false).await?;
        }
        loop {
            tokio::select! {
                biased;
                answer = next_of(&mut resolving), if resolving.is_some() => match answer {
                    Some(answer) => {
                        let (seq, requested, answer) = answer.map_err(provider("resolve"))?;
                        self.adopt_workflow(answer.workflow_id.as_ref()).await?;
                        let traces =
                            self.traces_of("resolve_identities", answer.tool_trace_id.as_ref());
                        let part = ResolvedChunk {
                            requested,
                            resolved: answer.stats.resolved,
                            persons: answer
                                .identities
                                .iter()
                                .map(|i| (i.person_id, i.overall_quality_score))
                                .collect(),
                            matched: matched_by_criterion(&answer),
                        };
                        let body = serde_json::to_string(&part).map_err(corrupt)?;
                        done_chunks.insert(seq, part);
                        let done = done_chunks.values().map(|c| c.requested).sum();
                        self.save_part(Stage::Resolve, seq, &body, &traces, done)
                            .await?;
                        // Taken only once checkpointed: a batch formed from an answer a crash
                        // lost could not be formed again the same way.
                        acceptor.advance(|seq| done_chunks.get(&seq).map(|c| c.persons.as_slice()));
                        self.dispatch(&mut flow, &mut acceptor, false).await?;
                    }
                    None => {
                        resolving = rounds.pop_front().map(|round| self.resolve_calls(round));
                        if resolving.is_none() {
                            self.end_resolve(&mut flow, &mut acceptor, &done_chunks, &mut resolved)
                .await?;
                        }
                    }
                },
                answer = profiles.next() => match answer {
                    Some(answer) => self.take_profiles(&mut flow, answer).await?,
                    // Ends only once the requests closed, when resolve closed.
                    None => break,
                },
            }
        }
        drop(profiles);
        self.fed = flow.feeder.map(Feeder::finish);
        self.finish(Stage::Enrich).await?;
        resolved.ok_or_else(|| StageError::Corrupt("enrichment ended before resolve".to_owned()))
    }

    /// The resolve calls to make, which segment each call's identifiers come from, and the
    /// answers an earlier run of the job checkpointed into `done`. A job with segments resolves
    /// the customers in no segment first, then each segment's in calls of their own, so that
    /// every person resolved knows their segment.
    pub(super) async fn plan_resolve(
        &mut self,
        done: &mut BTreeMap<i64, ResolvedChunk>,
    ) -> Result<(Vec<Vec<IdentifierGroup>>, SegmentPlan), StageError> {
        let input = self
            .store()
            .job_input(self.job.id)
            .await?
            .ok_or_else(|| StageError::Corrupt("the job's identifiers are gone".to_owned()))?;
        let stored: StoredInput = serde_json::from_value(input).map_err(corrupt)?;
        let (parts, names) = stored.parts();
        let mut chunks = Vec::new();
        let mut owners = Vec::new();
        for (p, groups) in parts.iter().enumerate() {
            let planned = if chunks.is_empty() {
                plan_resolve_calls_opening_small(
                    groups,
                    self.ctx.config.resolve_chunk,
                    OPENING_RESOLVE_CALL,
                )
            } else {
                plan_resolve_calls(groups, self.ctx.config.resolve_chunk)
            };
            owners.extend(std::iter::repeat_n(p, planned.len()));
            chunks.extend(planned);
        }
        let segments = if names.is_empty() {
            SegmentPlan::default()
        } else {
            SegmentPlan { owners, names }
        };
        let total: u64 = chunks.iter().map(|c| count_values(c) as u64).sum();
        self.enter(Stage::Resolve, total).await?;
        for (seq, body) in self
            .store()
            .checkpoints(self.job.id, Stage::Resolve)
            .await?
        {
            if seq != FINAL {
                done.insert(seq, serde_json::from_str(&body).map_err(corrupt)?);
            }
        }
        // Checkpoints from a run that chunked differently (another `resolve_chunk`) do not
        // line up with these chunks: start the stage over rather than merge mismatched parts,
        // and the enrichment too, whose batches those parts formed.
        let lines_up = done.iter().all(|(&seq, part)| {
            usize::try_from(seq - 1)
                .ok()
                .and_then(|i| chunks.get(i))
                .is_some_and(|c| count_values(c) as u64 == part.requested)
        });
        if !lines_up {
            done.clear();
            self.store()
                .clear_checkpoints(self.lease, Stage::Enrich)
                .await?;
        }
        Ok((chunks, segments))
    }

    /// One round of resolve calls, run ahead of the stage that stores their answers.
    pub(super) fn resolve_calls(
        &self,
        round: Vec<(i64, Vec<IdentifierGroup>)>,
    ) -> Ahead<ResolveAnswer> {
        let upstream = self.ctx.provider.clone();
        let workflow_id = self.workflow_id.clone();
        let calls = futures::stream::iter(round)
            .map(move |(seq, chunk)| {
                let upstream = upstream.clone();
                let workflow_id = workflow_id.clone();
                async move {
                    let requested = count_values(&chunk) as u64;
                    upstream
                        .resolve_persons(ResolveRequest {
                            multi_identifiers: chunk,
                            format: None,
                            workflow_id,
                        })
                        .await
                        .map(|answer| (seq, requested, answer))
                }
            })
            .buffer_unordered(self.ctx.config.enrich_concurrency.max(1));
        run_ahead(calls, self.ctx.config.enrich_concurrency)
    }

    /// Every resolve answer in: the last batch asked for, no more to come, and the stage
    /// closed unless an earlier run closed it.
    pub(super) async fn end_resolve(
        &mut self,
        flow: &mut Enrichment,
        acceptor: &mut Acceptor,
        chunks: &BTreeMap<i64, ResolvedChunk>,
        resolved: &mut Option<Resolved>,
    ) -> Result<(), StageError> {
        self.dispatch(flow, acceptor, true).await?;
        flow.requests = None;
        if resolved.is_none() {
            *resolved = Some(self.close_resolve(chunks, acceptor, &flow.segments).await?);
        }
        Ok(())
    }

    /// Every answer in: the resolution, and the persons to enrich checkpointed with it.
    pub(super) async fn close_resolve(
        &mut self,
        chunks: &BTreeMap<i64, ResolvedChunk>,
        acceptor: &Acceptor,
        segments: &SegmentPlan,
    ) -> Result<Resolved, StageError> {
        let (mut requested, mut resolved) = (0u64, 0u64);
        let mut matched: BTreeMap<String, u64> = BTreeMap::new();
        for chunk in chunks.values() {
            requested += chunk.requested;
            resolved += chunk.resolved;
            for (criterion, n) in &chunk.matched {
                *matched.entry(criterion.clone()).or_default() += n;
            }
        }
        let mut all: Vec<PersonId> = acceptor.matched().collect();
        all.sort_unstable();
        let accepted = acceptor.order().to_vec();
        let resolution = Resolution {
            requested,
            resolved,
            rate: if requested == 0 {
                0.0
            } else {
                resolved as f64 / requested as f64
            },
            persons: all.len() as u64,
            accepted: accepted.len() as u64,
        };
        self.store()
            .set_resolution(
                self.lease,
                serde_json::to_value(resolution).map_err(corrupt)?,
            )
            .await?;
        // Each group's rate, when the provider said which identifiers matched (chunks split
        // the distinct values, so their counts add up), and why it may be low.
        let groups = match &self.progress.normalization {
            Some(report) if resolved == 0 || matched.values().sum::<u64>() > 0 => {
                group_resolution(report, &matched)
            }
            _ => Vec::new(),
        };
        let low = resolution_warning(requested, resolved, &groups, &self.progress.warnings);
        replace_warnings(
            &mut self.progress.warnings,
            &[WarningCode::LowResolution],
            low.into_iter().collect(),
        );
        if accepted.is_empty() {
            let progress = serde_json::to_value(&self.progress).map_err(corrupt)?;
            self.store().set_progress(self.lease, progress).await?;
            return Err(StageError::NoCustomers {
                requested,
                resolved,
                min_quality: self.options.min_quality_score,
                warnings: self.progress.warnings.clone(),
            });
        }
        let done = Resolved {
            segments: segment_members(chunks, &accepted, segments),
            resolution,
            accepted,
            all,
        };
        self.save_final(Stage::Resolve, &done).await?;
        self.finish(Stage::Resolve).await?;
        Ok(done)
    }

    /// The enrich stage's state before its first batch: what an earlier run checkpointed.
    pub(super) async fn start_enrichment(&self, segmented: bool) -> Result<Enrichment, StageError> {
        let done_seqs: HashSet<i64> = self
            .store()
            .checkpoints(self.job.id, Stage::Enrich)
            .await?
            .into_iter()
            .map(|(seq, _)| seq)
            .collect();
        // A stage that starts from nothing feeds the analyzer as it goes; one resumed after a
        // crash leaves the analysis to read every checkpoint back.
        let feeder = done_seqs
            .is_empty()
            .then(|| Feeder::start(self.options.analysis_config()));
        Ok(Enrichment {
            requests: None,
            done_seqs,
            feeder,
            done: 0,
            entered: false,
            // Only trait domains: contact data of customers is never a trait, so it is not
            // fetched.
            domains: Some(
                self.options
                    .domains
                    .clone()
                    .unwrap_or_else(crate::options::trait_domains),
            ),
            segmented,
            segments: SegmentPlan::default(),
        })
    }

    /// Asks for every batch `acceptor` has ready (with `last`, the rest too); a batch an
    /// earlier run checkpointed is counted, not asked for again.
    pub(super) async fn dispatch(
        &mut self,
        flow: &mut Enrichment,
        acceptor: &mut Acceptor,
        last: bool,
    ) -> Result<(), StageError> {
        let ready: Vec<(usize, Vec<PersonId>)> =
            std::iter::from_fn(|| acceptor.next_batch(last).map(|(i, ids)| (i, ids.to_vec())))
                .collect();
        if ready.is_empty() {
            return Ok(());
        }
        let accepted = acceptor.order().len() as u64;
        if flow.entered {
            self.progress.stage_mut(Stage::Enrich).total = accepted;
        } else {
            self.enter(Stage::Enrich, accepted).await?;
            flow.entered = true;
        }
        for (i, ids) in ready {
            if flow.done_seqs.contains(&(i as i64)) {
                flow.done += ids.len() as u64;
                continue;
            }
            let request = GetPersonRequest {
                person_ids: ids,
                domains: flow.domains.clone(),
                format: None,
                workflow_id: self.workflow_id.clone(),
            };
            if let Some(requests) = &flow.requests {
                // Fails only when the calls stopped, which their stream then reports.
                let _ = requests.unbounded_send((i, request));
            }
        }
        Ok(())
    }

    /// One enrichment answer: checkpointed, and fed to the analyzer.
    pub(super) async fn take_profiles(
        &mut self,
        flow: &mut Enrichment,
        answer: Result<(usize, usize, GetPersonResponse), ProviderError>,
    ) -> Result<(), StageError> {
        let (i, n, answer) = answer.map_err(provider("enrich"))?;
        self.adopt_workflow(answer.workflow_id.as_ref()).await?;
        let traces = self.traces_of("get_person", answer.tool_trace_id.as_ref());
        let profiles: Vec<&BTreeMap<String, String>> =
            answer.profiles.iter().map(|p| &p.domains).collect();
        let body = if flow.segmented {
            let persons: Vec<PersonId> = answer.profiles.iter().map(|p| p.person_id).collect();
            serde_json::to_string(&serde_json::json!({"persons": persons, "profiles": profiles}))
        } else {
            serde_json::to_string(&profiles)
        }
        .map_err(corrupt)?;
        // Fed before it is stored, so the analyzer's thread works while the store does.
        if let Some(feeder) = flow.feeder.as_mut() {
            let batch = answer.profiles.into_iter().map(|p| p.domains).collect();
            feeder.add(i, batch).await;
        }
        flow.done += n as u64;
        self.save_part(Stage::Enrich, i as i64, &body, &traces, flow.done)
            .await
    }
}

/// Each segment's accepted persons and counts, from the resolve calls of its identifiers.
fn segment_members(
    chunks: &BTreeMap<i64, ResolvedChunk>,
    accepted: &[PersonId],
    segments: &SegmentPlan,
) -> Vec<SegmentMembers> {
    let accepted: HashSet<PersonId> = accepted.iter().copied().collect();
    let mut members: Vec<SegmentMembers> = segments
        .names
        .iter()
        .map(|name| SegmentMembers {
            name: name.clone(),
            requested: 0,
            resolved: 0,
            persons: Vec::new(),
        })
        .collect();
    for (&seq, chunk) in chunks {
        let part = usize::try_from(seq - 1)
            .ok()
            .and_then(|i| segments.owners.get(i))
            .copied()
            .unwrap_or(0);
        let Some(segment) = part.checked_sub(1).and_then(|k| members.get_mut(k)) else {
            continue;
        };
        segment.requested += chunk.requested;
        segment.resolved += chunk.resolved;
        segment.persons.extend(
            chunk
                .persons
                .iter()
                .map(|(id, _)| *id)
                .filter(|id| accepted.contains(id)),
        );
    }
    for segment in &mut members {
        segment.persons.sort_unstable();
        segment.persons.dedup();
    }
    members
}
