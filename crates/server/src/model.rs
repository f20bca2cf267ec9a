//! What the API answers with: jobs, their progress and their results.

use icp_analysis::{Analysis, AudienceNote, DistinguishingTrait, Expected, Strategy};
use icp_contract::{AudienceRecord, Cluster};
use icp_store::{JobRecord, JobStatus, Stage, TraceRecord, WebhookAttempt, WebhookOutcome};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::normalization::Normalization;
use crate::options::JobOptions;
use crate::problem::Problem;
use crate::warning::Warning;

/// How far one stage has come, and when it ran (absent until it starts / finishes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StageProgress {
    pub done: u64,
    pub total: u64,
    /// When a worker first entered the stage (a retried job keeps the first time).
    #[serde(
        default,
        with = "crate::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub started_at: Option<OffsetDateTime>,
    #[serde(
        default,
        with = "crate::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub finished_at: Option<OffsetDateTime>,
}

/// Every stage's progress, in pipeline order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Progress {
    pub resolve: StageProgress,
    pub enrich: StageProgress,
    pub analyze: StageProgress,
    pub map: StageProgress,
    pub find: StageProgress,
    /// Absent in jobs whose progress was written before the stage existed.
    #[serde(default)]
    pub validate: StageProgress,
    /// What normalisation did when the job was created: kept in the progress document, which
    /// the job is created with and every worker writes back whole, and shown as the job's
    /// `normalization` (absent for jobs created before it was reported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub normalization: Option<Normalization>,
    /// The job's warnings so far, kept in the progress document for the same reason and
    /// shown as the job's `warnings`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(ignore)]
    pub warnings: Vec<Warning>,
}

impl Progress {
    pub fn stage_mut(&mut self, stage: Stage) -> &mut StageProgress {
        match stage {
            Stage::Resolve => &mut self.resolve,
            Stage::Enrich => &mut self.enrich,
            Stage::Analyze => &mut self.analyze,
            Stage::Map => &mut self.map,
            Stage::Find => &mut self.find,
            Stage::Validate => &mut self.validate,
        }
    }
}

/// What identity resolution found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Resolution {
    /// Identifiers submitted.
    pub requested: u64,
    /// Identifiers the provider matched to a person.
    pub resolved: u64,
    /// `resolved / requested`.
    pub rate: f64,
    /// Distinct persons matched.
    pub persons: u64,
    /// Distinct persons at or above `min_quality_score`: the customers analysed.
    pub accepted: u64,
}

/// One provider call's trace id, for support and feedback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ToolTrace {
    pub stage: Stage,
    pub tool: String,
    pub tool_trace_id: String,
    #[serde(with = "crate::rfc3339")]
    pub at: OffsetDateTime,
}

impl From<TraceRecord> for ToolTrace {
    fn from(t: TraceRecord) -> Self {
        Self {
            stage: t.stage,
            tool: t.tool,
            tool_trace_id: t.tool_trace_id,
            at: t.at,
        }
    }
}

/// A job as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Job {
    pub id: Uuid,
    pub status: JobStatus,
    /// The stage running now, or the last one reached.
    pub stage: Option<Stage>,
    pub progress: Progress,
    /// The upstream workflow id every provider call of this job carries.
    pub workflow_id: Option<String>,
    pub options: JobOptions,
    /// What normalisation did to the identifiers submitted, per `(id_type, hash_type)`.
    pub normalization: Option<Normalization>,
    pub resolution: Option<Resolution>,
    /// What the job found that may explain a poor match rate, an empty or tiny audience, or
    /// what its analysis could not measure: from the identifiers when the job is created, then
    /// from each stage as it ends. Empty when there is nothing to say.
    pub warnings: Vec<Warning>,
    /// How many times a worker has picked the job up.
    pub attempt: i32,
    pub cancel_requested: bool,
    /// Why the job failed, or why its last attempt failed when it is queued for a retry.
    pub error: Option<Problem>,
    #[serde(with = "crate::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "crate::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "crate::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// When the job and all its data are purged.
    #[serde(with = "crate::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Provider trace ids, in the detail view only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_traces: Option<Vec<ToolTrace>>,
    /// Every attempt to deliver the job's end to its `callback_url`, oldest first: in the
    /// detail view of a job that has a `callback_url` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<Vec<Delivery>>,
    pub links: JobLinks,
}

/// One attempt to deliver a job's end message to its `callback_url`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    /// 1 for the first attempt.
    pub attempt: i32,
    #[serde(with = "crate::rfc3339")]
    pub at: OffsetDateTime,
    /// The receiver's HTTP status; null when it did not answer.
    pub status_code: Option<i32>,
    /// Why there was no answer, or why the URL was not called: `timeout`, `connect`, `dns`,
    /// `network`, `refused_address`, `refused_self`; null when the receiver answered.
    pub error_kind: Option<String>,
    /// How long the attempt took, in milliseconds.
    pub duration_ms: u64,
    /// When the next attempt is due; null when there is none.
    #[serde(with = "crate::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    /// `delivered` (2xx), `retry`, `gone` (410: no more attempts), `abandoned` (retried for
    /// the time allowed), `refused` (the URL may not be called).
    pub outcome: WebhookOutcome,
}

impl From<WebhookAttempt> for Delivery {
    fn from(a: WebhookAttempt) -> Self {
        Self {
            attempt: a.attempt,
            at: a.at,
            status_code: a.status_code,
            error_kind: a.error_kind,
            duration_ms: a.duration_ms,
            next_attempt_at: a.next_attempt_at,
            outcome: a.outcome,
        }
    }
}

/// The delivery attempts of a job's end message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobDeliveries {
    /// The job's `callback_url` is set.
    pub callback: bool,
    /// Every attempt, oldest first; empty until the job ends and the first attempt is made.
    pub deliveries: Vec<Delivery>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobLinks {
    #[serde(rename = "self")]
    pub this: String,
    pub result: String,
    pub cancel: String,
}

impl Job {
    pub fn from_record(r: JobRecord, traces: Option<Vec<TraceRecord>>) -> Self {
        let links = JobLinks {
            this: format!("/v1/jobs/{}", r.id),
            result: format!("/v1/jobs/{}/result", r.id),
            cancel: format!("/v1/jobs/{}/cancel", r.id),
        };
        let mut progress: Progress = serde_json::from_value(r.progress).unwrap_or_default();
        let normalization = progress.normalization.take();
        let warnings = std::mem::take(&mut progress.warnings);
        Self {
            id: r.id,
            status: r.status,
            stage: r.stage,
            progress,
            workflow_id: r.workflow_id,
            options: serde_json::from_value(r.options).unwrap_or_default(),
            normalization,
            warnings,
            resolution: r.resolution.and_then(|v| serde_json::from_value(v).ok()),
            attempt: r.attempt,
            cancel_requested: r.cancel_requested,
            error: r.error.and_then(|v| serde_json::from_value(v).ok()),
            created_at: r.created_at,
            updated_at: r.updated_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            expires_at: r.expires_at,
            tool_traces: traces.map(|t| t.into_iter().map(ToolTrace::from).collect()),
            deliveries: None,
            links,
        }
    }
}

/// A page of jobs, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobPage {
    pub jobs: Vec<Job>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
}

/// One audience the find stage built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AudienceResult {
    pub strategy: Strategy,
    /// The expression sent to `find_persons`, in cluster hashes.
    pub expression: String,
    /// The same expression in `name=value` terms, for people.
    pub description: String,
    /// People of the audience: the provider's count less the customers found in it and left
    /// out (`excluded_customers`). Equal to `exported` when the export is not truncated; when
    /// it is, exact only if `total_exact` (see there).
    pub total: u64,
    /// The provider's own count for the expression, customers included (absent in audiences
    /// found before it was kept apart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_with_customers: Option<u64>,
    /// Whether `total` is exact: the export held the whole audience, so every customer in it
    /// was seen. A limited export is asked for `audience_limit` + the customers' count rows and
    /// read to its end; only when the audience is larger still can customers lie past it, and
    /// then `total` is an upper bound.
    #[serde(default = "exact_by_default")]
    pub total_exact: bool,
    /// Customers found in the exported audience and left out of it.
    pub excluded_customers: u64,
    /// Rows in the export.
    pub exported: u64,
    /// Whether `audience_limit` cut the export short.
    pub truncated: bool,
    /// Up to 10 people of the audience (customers left out when excluded).
    pub sample: Vec<AudienceRecord>,
    /// Where to download the whole audience, by format.
    pub exports: AudienceExports,
    /// Why this audience, in a sentence a marketer can read.
    #[serde(default)]
    pub rationale: String,
    /// What the planner expected the audience to hold before it was fetched: its size, share of
    /// the population, the customers it holds and its index (absent for jobs planned without a
    /// population baseline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<Expected>,
    /// The audience's name in its export path when it is not its strategy's: a segment's
    /// (`segment.<name>.<strategy>`) or the segments' combined one (`combined`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A sample of the audience set against the customers it was made for: a segment's
    /// audience against that segment's, the others against the whole list's (the `validate`
    /// stage; absent when the job set `validate: false`, and in jobs found before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<Validation>,
}

/// The export name under which a job keeps its customers' person ids (one a line, never
/// served): a custom audience leaves them out.
pub const CUSTOMERS_EXPORT: &str = "_customers";

fn exact_by_default() -> bool {
    true
}

/// An audience set against the customers (Step 6 of the workflow: enrich the lookalikes and
/// compare them with the customers). A seeded sample of the audience's export is enriched with
/// `get_person` through the job's provider, over the job's domains, and each of the
/// customers' top traits is counted in it.
///
/// **The sample**: the `sample_target` persons of the export whose `splitmix64(person_id ⊕
/// splitmix64(seed))` is smallest (ties by id): the same audience always gives the same
/// sample, and of two nested audiences, each person of the larger one's sample that the
/// smaller one holds is in the smaller one's sample too.
///
/// **The traits**: the customers' top traits over-represented against the population (index
/// above 1), by `frequency · ln(index)` (the analysis' ranking rule), at most 10; when the
/// analysis has no index (no population baseline), its 10 most frequent traits.
///
/// **The score**: `similarity = 1 − mean over the traits of min(1, |sample − customers| /
/// max(customers, population))`, between 0 and 1. 1: the sample holds every trait as often as
/// the customers do. Each trait's gap is measured against the larger of its customer and
/// population frequency, so a trait the sample holds as seldom as the population does costs
/// `1 − 1/index`: the more a trait sets the customers apart, the more a sample that lacks it
/// loses. `population_similarity` is the score of the population itself
/// (its frequency in place of the sample's): what an audience no better than a random draw
/// scores, to read `similarity` against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Validation {
    /// The most persons a sample holds: 1,000 (the whole export when it is smaller).
    pub sample_target: u64,
    /// Persons drawn from the export.
    pub sample_size: u64,
    /// Of them, those the provider returned a profile for: the sample frequencies' denominator.
    pub enriched: u64,
    /// The seed of the draw.
    pub seed: u64,
    /// A digest of the persons drawn (16 hex digits): equal for the same sample.
    pub sample_digest: String,
    /// The traits compared, in the order chosen.
    pub traits: Vec<ValidationTrait>,
    /// Between 0 and 1, 1 the closest to the customers; absent when no profile was enriched
    /// or no trait could be compared.
    pub similarity: Option<f64>,
    /// The same score for the population itself (absent when a trait's population frequency
    /// is unknown).
    pub population_similarity: Option<f64>,
}

/// One trait's frequency among the customers, in the sample and in the population.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ValidationTrait {
    pub name: String,
    pub value: String,
    /// Share of the customers holding it.
    pub customers: f64,
    /// Share of the sample's enriched persons holding it (0 when none was enriched).
    pub sample: f64,
    /// Share of the customers expected to hold it were they like the population
    /// (`customers / index`: the prevalence when the provider gives its population size);
    /// absent when the index is unknown.
    pub population: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AudienceExports {
    pub csv: String,
    pub json: String,
    pub jsonl: String,
}

impl AudienceExports {
    pub fn for_job(id: Uuid, strategy: Strategy) -> Self {
        Self::named(id, strategy_name(strategy))
    }

    /// The export links of the audience `name` (a strategy, a ranked tier, a segment's audience
    /// or the combined one).
    pub fn named(id: Uuid, name: &str) -> Self {
        let base = format!("/v1/jobs/{id}/audiences/{name}/export");
        Self {
            csv: format!("{base}?format=csv"),
            json: format!("{base}?format=json"),
            jsonl: format!("{base}?format=jsonl"),
        }
    }
}

/// A strategy's name as it appears in paths and in the store.
pub fn strategy_name(strategy: Strategy) -> &'static str {
    strategy.name()
}

/// The export name of segment `segment`'s audience of `strategy`.
pub fn segment_audience_name(segment: &str, strategy: Strategy) -> String {
    format!("segment.{segment}.{}", strategy_name(strategy))
}

/// The export name of the segments' combined audience.
pub const COMBINED_AUDIENCE: &str = "combined";

/// The ICP and the audiences: what a finished job produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobResult {
    pub job_id: Uuid,
    pub workflow_id: Option<String>,
    pub resolution: Resolution,
    /// Frequencies, index, pairs and multi-attribute clusters of the customers.
    #[serde(flatten)]
    pub analysis: Analysis,
    /// The clusters the audiences use, as the provider maps them.
    pub clusters: Vec<Cluster>,
    /// Nested from the smallest to the widest where the expressions allow: precision ⊂
    /// standard ⊂ hybrid ⊂ reach.
    pub audiences: Vec<AudienceResult>,
    /// Where an audience could not meet its size band, was left out, or does not nest (stable
    /// codes), and how its figures were made.
    #[serde(default)]
    pub audience_notes: Vec<AudienceNote>,
    /// The ranked audiences, when the job asked for them (`options.ranked`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranked: Option<RankedResult>,
    /// The job's named segments side by side, in name order (absent: a job without segments).
    /// The fields above are the whole list's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<SegmentResult>,
    /// The segments' precision audiences in one: their expressions ORed, each in parentheses,
    /// `(…) OR (…)`; downloaded as the audience `combined`. Absent without segments, or when no
    /// segment has a precision audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combined_audience: Option<AudienceResult>,
    /// Audiences written by hand after the job ended (`POST /v1/jobs/{id}/audiences`), in the
    /// order they were added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_audiences: Vec<CustomAudience>,
    /// The job's warnings (as on the job).
    #[serde(default)]
    pub warnings: Vec<Warning>,
}

/// One named segment of the customer list: its own ICP and audiences, and the traits that set
/// it apart from the rest of the customers. A person resolved from identifiers of two segments
/// belongs to both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SegmentResult {
    pub name: String,
    /// The segment's identifiers asked about.
    pub requested: u64,
    /// Those that matched a person.
    pub resolved: u64,
    /// Its customers: the persons accepted (at or above `min_quality_score`) and analysed.
    pub customers: u64,
    /// The segment's ICP (top traits, pairs, clusters), ranked against the population like the
    /// whole list's; absent when none of its identifiers gave a customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Analysis>,
    /// The traits that set the segment apart from the customers outside it (at most 10, each
    /// held by at least `min_support` of the segment and more common in it than among the
    /// rest): `share` in the segment, `rest_share` among the rest, `index = share / rest_share`
    /// (the rest's share floored at half a customer, so a trait none of the rest holds stays
    /// finite), highest `score = share · ln(index)` first (the rule pairs and clusters are
    /// ranked by: a trait most of the segment holds before a rare one).
    pub distinguishing_traits: Vec<DistinguishingTrait>,
    /// The clusters the segment's analysis and audiences use.
    pub clusters: Vec<Cluster>,
    /// The segment's audiences, planned like the whole list's; each downloaded as
    /// `segment.<name>.<strategy>`.
    pub audiences: Vec<AudienceResult>,
    /// The planner's notes on the segment's audiences.
    #[serde(default)]
    pub audience_notes: Vec<AudienceNote>,
}

/// An audience written by hand on a finished job: its expression in `attribute = value` terms,
/// found and exported like the job's own (export name `id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CustomAudience {
    /// `custom-1`, `custom-2` …: its name in export paths.
    #[schema(example = "custom-1")]
    pub id: String,
    /// The expression as written.
    pub expression_text: String,
    /// The expression sent to `find_persons`, in cluster hashes (exclusions as `AND NOT`).
    pub expression: String,
    /// The same in `name=value` terms, fully parenthesised.
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<icp_contract::Location>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// The `attribute=value` traits left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// People of the audience, customers counted out (see `AudienceResult::total`).
    pub total: u64,
    /// The provider's count, customers included.
    pub total_with_customers: u64,
    pub total_exact: bool,
    /// Whether the job's customers were left out (the job's `exclude_customers`, and jobs that
    /// ended before their customers were kept cannot).
    pub customers_left_out: bool,
    pub excluded_customers: u64,
    pub exported: u64,
    pub truncated: bool,
    /// Up to 10 people of the audience.
    pub sample: Vec<AudienceRecord>,
    pub exports: AudienceExports,
    /// A sample of the audience set against the job's customers (absent when the request or
    /// the job set `validate: false`, and in audiences added before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<Validation>,
}

/// The model that scores persons for the ranked audiences.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RankedModel {
    /// Smoothed log-lift of each `attribute = value` among the customers against the
    /// population, summed over a person's traits: where the provider cannot draw a sample of
    /// its population (a remote upstream).
    #[default]
    NaiveBayes,
    /// L2-regularised logistic regression of the customers against a seeded sample of the
    /// population over the same traits, each trait's coefficient its weight: where the
    /// provider draws the sample (the embedded population). It weighs each trait given the
    /// others, where naive Bayes counts a segment's correlated traits over and over.
    LogisticRegression,
}

/// Who was scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RankedScope {
    /// Every person of the population (within `location`, customers left out when excluded).
    Population,
    /// The persons of the boolean audiences the job exported: the provider cannot rank its
    /// whole population, so the service scored these.
    Candidates,
}

/// The ranked audiences: the persons most like the customers, in nested tiers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RankedResult {
    pub model: RankedModel,
    pub scope: RankedScope,
    /// Persons scored.
    pub eligible: u64,
    /// `attribute = value` traits with a weight.
    pub weighted_traits: u64,
    /// Top 1 %, 2 %, 5 % and 10 %; each holds the ones before it.
    pub tiers: Vec<RankedTier>,
}

/// The best-scoring share of the eligible persons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RankedTier {
    /// `ranked_1`, `ranked_2`, `ranked_5` or `ranked_10`: its name in export paths.
    pub name: String,
    /// Its share of the eligible persons.
    pub share: f64,
    pub size: u64,
    /// The lowest score in the tier (absent when it is empty).
    pub cutoff: Option<f64>,
    /// The traits that add most to its members' scores (weight × share of members holding it),
    /// at most 5.
    pub top_traits: Vec<RankedTrait>,
    pub exports: AudienceExports,
    /// A sample of the tier set against the customers, like an audience's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<Validation>,
}

/// A weighted trait within a tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RankedTrait {
    pub name: String,
    pub value: String,
    pub weight: f64,
    /// The share of the tier's members holding it.
    pub share: f64,
}

/// The name of the ranked tier of `fraction`: `ranked_1` for the top 1 %.
pub fn ranked_tier_name(fraction: f64) -> String {
    format!("ranked_{}", (fraction * 100.0).round() as u64)
}
