//! A job with segments: in stage 3, each segment's own ICP (analysis, clusters, planned
//! audiences) and the traits that set it apart from the rest of the customers; in stage 5, the
//! segments' audiences and the combined one.

use std::collections::{BTreeMap, HashMap, HashSet};

use icp_analysis::{Analyzer, Strategy, TraitCounts, distinguishing_traits};
use icp_contract::{Cluster, PersonId};
use icp_store::Stage;

use super::checkpoint::{EnrichedPart, Mapped, Resolved, Run, SegmentAnalyzed};
use super::error::{StageError, corrupt, stopped};
use super::find::{COMBINED_SEQ, SEGMENT_SEQ, SEGMENT_SEQ_STRIDE};
use super::map::wanted_items;
use crate::model::{AudienceResult, COMBINED_AUDIENCE, segment_audience_name};

/// How many distinguishing traits each segment lists.
pub(super) const DISTINGUISHING_TRAITS: usize = 10;

impl Run<'_> {
    /// Each segment's ICP: its customers' profiles (read back from the enrich checkpoints,
    /// which name each profile's person for a job with segments) mined and ranked against the
    /// population like the whole list's, its audiences planned the same way, and its
    /// distinguishing traits against every other customer. Empty for a job without segments.
    pub(super) async fn analyze_segments(
        &mut self,
        resolved: &Resolved,
    ) -> Result<Vec<SegmentAnalyzed>, StageError> {
        if resolved.segments.is_empty() {
            return Ok(Vec::new());
        }
        let parts = self.store().checkpoints(self.job.id, Stage::Enrich).await?;
        let config = self.options.analysis_config();
        let mut membership: HashMap<PersonId, Vec<usize>> = HashMap::new();
        for (k, segment) in resolved.segments.iter().enumerate() {
            for id in &segment.persons {
                membership.entry(*id).or_default().push(k);
            }
        }
        let n = resolved.segments.len();
        let (analyzers, counts, all) = tokio::task::spawn_blocking(move || {
            let mut analyzers: Vec<Analyzer> =
                (0..n).map(|_| Analyzer::new(config.clone())).collect();
            let mut counts = vec![TraitCounts::new(&config.exclude_attributes); n];
            let mut all = TraitCounts::new(&config.exclude_attributes);
            for (_, body) in &parts {
                let part: EnrichedPart = serde_json::from_str(body).map_err(corrupt)?;
                let (Some(persons), profiles) = part.into_parts() else {
                    return Err(StageError::Corrupt(
                        "an enrich checkpoint of a job with segments does not name its persons"
                            .to_owned(),
                    ));
                };
                for (id, profile) in persons.iter().zip(&profiles) {
                    let fields = || profile.iter().map(|(k, v)| (k.as_str(), v.as_str()));
                    all.add(fields());
                    for &k in membership.get(id).into_iter().flatten() {
                        analyzers[k].add_profile(fields());
                        counts[k].add(fields());
                    }
                }
            }
            Ok((analyzers, counts, all))
        })
        .await
        .map_err(stopped)??;
        let min_share = self.options.min_support;
        let mut done = Vec::with_capacity(n);
        for ((segment, analyzer), counts) in resolved.segments.iter().zip(analyzers).zip(counts) {
            let distinguishing =
                distinguishing_traits(&counts, &all, min_share, DISTINGUISHING_TRAITS);
            let mut analyzed = SegmentAnalyzed {
                name: segment.name.clone(),
                requested: segment.requested,
                resolved: segment.resolved,
                customers: analyzer.customers(),
                analysis: None,
                clusters: Vec::new(),
                planning: None,
                distinguishing,
            };
            if analyzer.customers() > 0 {
                let (mined, listed) = self.mine_and_list(analyzer).await?;
                let baseline = listed.baseline();
                let ranked_with = baseline.clone();
                let (mined, analysis) = tokio::task::spawn_blocking(move || {
                    let analysis = match &ranked_with {
                        Some(baseline) => mined.analysis_with(baseline),
                        None => mined.analysis(),
                    };
                    (mined, analysis)
                })
                .await
                .map_err(stopped)?;
                let clusters: Vec<Cluster> = listed.clusters.values().cloned().collect();
                let planning = match baseline {
                    Some(baseline) => {
                        self.plan_audiences(mined, &analysis, baseline, &clusters)
                            .await?
                    }
                    None => None,
                };
                let mut shown: Vec<Cluster> =
                    wanted_items(&analysis, planning.as_ref(), &self.options)
                        .iter()
                        .filter_map(|i| {
                            listed
                                .clusters
                                .get(&(i.name.clone(), i.value.clone()))
                                .cloned()
                        })
                        .collect();
                shown.sort_by(|a, b| (&a.name, &a.value).cmp(&(&b.name, &b.value)));
                shown.dedup_by(|a, b| a.cluster_hash == b.cluster_hash);
                analyzed.analysis = Some(analysis);
                analyzed.clusters = shown;
                analyzed.planning = planning;
            }
            done.push(analyzed);
        }
        Ok(done)
    }
}

/// One audience of a segment to find: its checkpoint, strategy, export name, the expression in
/// cluster hashes and in `name=value` terms, and the planner's rationale and figures.
struct SegmentTodo {
    seq: i64,
    strategy: Strategy,
    name: String,
    expression: String,
    description: String,
    rationale: String,
    expected: Option<icp_analysis::Expected>,
}

impl Run<'_> {
    /// The segments' audiences, after the whole list's: each segment's planned audiences
    /// (`segment.<name>.<strategy>`) and the combined one (`combined`), the segments' precision
    /// expressions ORed, each in parentheses. Each is found and exported like the whole list's
    /// and checkpointed on its own, so a resumed job finds only what is missing.
    pub(super) async fn find_segments(
        &mut self,
        mapped: &Mapped,
        resolved: &Resolved,
    ) -> Result<(Vec<Vec<AudienceResult>>, Option<AudienceResult>), StageError> {
        if mapped.segments.is_empty() {
            return Ok((Vec::new(), None));
        }
        let mut done: BTreeMap<i64, AudienceResult> = BTreeMap::new();
        for (seq, body) in self.store().checkpoints(self.job.id, Stage::Find).await? {
            if (SEGMENT_SEQ..=COMBINED_SEQ).contains(&seq) {
                done.insert(seq, serde_json::from_str(&body).map_err(corrupt)?);
            }
        }
        let mut todo = Vec::new();
        let mut precision: Vec<(String, String)> = Vec::new();
        for (k, segment) in mapped.segments.iter().enumerate() {
            let Some(planning) = &segment.planning else {
                continue;
            };
            let by_item: HashMap<(&str, &str), &str> = segment
                .clusters
                .iter()
                .map(|c| ((c.name.as_str(), c.value.as_str()), c.cluster_hash.as_str()))
                .collect();
            for (i, plan) in planning.plans.iter().enumerate() {
                let Some(expression) = plan.render(|item| {
                    by_item
                        .get(&(item.name.as_str(), item.value.as_str()))
                        .map(|h| (*h).to_owned())
                }) else {
                    tracing::warn!(job = %self.job.id, segment = k, strategy = ?plan.strategy, "an item of a segment's audience has no cluster; audience skipped");
                    continue;
                };
                let description = plan
                    .render(|item| Some(format!("{}={}", item.name, item.value)))
                    .unwrap_or_default();
                if plan.strategy == Strategy::Precision {
                    precision.push((expression.clone(), description.clone()));
                }
                todo.push(SegmentTodo {
                    seq: SEGMENT_SEQ + SEGMENT_SEQ_STRIDE * k as i64 + i as i64,
                    strategy: plan.strategy,
                    name: segment_audience_name(&segment.name, plan.strategy),
                    expression,
                    description,
                    rationale: format!("Segment {}: {}", segment.name, plan.rationale),
                    expected: plan.expected,
                });
            }
        }
        if !precision.is_empty() {
            let names: Vec<&str> = mapped
                .segments
                .iter()
                .filter(|s| {
                    s.planning.as_ref().is_some_and(|p| {
                        p.plans
                            .iter()
                            .any(|plan| plan.strategy == Strategy::Precision)
                    })
                })
                .map(|s| s.name.as_str())
                .collect();
            todo.push(SegmentTodo {
                seq: COMBINED_SEQ,
                strategy: Strategy::Precision,
                name: COMBINED_AUDIENCE.to_owned(),
                expression: or_of(precision.iter().map(|p| p.0.as_str())),
                description: or_of(precision.iter().map(|p| p.1.as_str())),
                rationale: format!(
                    "The precision audiences of the segments {} in one: a person in any of them.",
                    names.join(", ")
                ),
                expected: None,
            });
        }
        let customers: HashSet<PersonId> = if self.options.exclude_customers {
            resolved.all.iter().copied().collect()
        } else {
            HashSet::new()
        };
        let mut workflow = None;
        for t in todo {
            if done.contains_key(&t.seq) {
                continue;
            }
            let (mut audience, answered) = self
                .find_one(t.strategy, t.name, t.expression, t.description, &customers)
                .await?;
            audience.rationale = t.rationale;
            audience.expected = t.expected;
            workflow = workflow.or(answered);
            let body = serde_json::to_string(&audience).map_err(corrupt)?;
            let progress = self.progress.find.done + 1;
            self.save_part(Stage::Find, t.seq, &body, &[], progress)
                .await?;
            done.insert(t.seq, audience);
        }
        self.adopt_workflow(workflow.as_ref()).await?;
        let combined = done.remove(&COMBINED_SEQ);
        let mut per_segment: Vec<Vec<AudienceResult>> = vec![Vec::new(); mapped.segments.len()];
        for (seq, audience) in done {
            let k = ((seq - SEGMENT_SEQ) / SEGMENT_SEQ_STRIDE) as usize;
            if let Some(audiences) = per_segment.get_mut(k) {
                audiences.push(audience);
            }
        }
        Ok((per_segment, combined))
    }
}

/// Expressions ORed, each fully parenthesised: `(a) OR (b)`.
pub(super) fn or_of<'a>(expressions: impl IntoIterator<Item = &'a str>) -> String {
    expressions
        .into_iter()
        .map(|e| format!("({e})"))
        .collect::<Vec<_>>()
        .join(" OR ")
}

#[cfg(test)]
mod tests {
    use super::or_of;

    #[test]
    fn the_combined_expression_parenthesises_each_segment() {
        assert_eq!(
            or_of(["a AND b AND c", "d AND (e OR f)"]),
            "(a AND b AND c) OR (d AND (e OR f))"
        );
        assert_eq!(or_of(["a AND b"]), "(a AND b)");
    }
}
