//! A succeeded job's report as one HTML page: the resolution funnel, the top traits against the
//! population, the lift of the top pairs, the clusters, the audiences (planned, ranked and
//! custom) with their exports and their validation (a sample set against the customers), and
//! a job's segments side by side.
//!
//! Self-contained: the style is inline (allowed by its hash in the page's Content-Security-Policy),
//! the charts are SVG drawn here (`charts.rs`), there is no script and no request to the network.
//! Everything from the data is escaped by maud: attribute names and values come from an upstream.

mod audiences;
mod charts;
mod format;
mod segments;

use std::sync::OnceLock;

use base64::Engine as _;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use sha2::{Digest, Sha256};

use crate::model::{Job, JobResult};
use audiences::{audience, custom, exports};
use charts::{AudienceBar, Step};
use format::{count, percent};
use segments::segments;

/// The page's style, inline so that a report opened from a blob URL (the console does that when
/// the service has keys) looks the same.
pub const REPORT_CSS: &str = include_str!("../../assets/report.css");

/// Top traits drawn; pairs in the heat map; clusters drawn.
const TOP_TRAITS: usize = 15;
const TOP_PAIRS: usize = 12;
const TOP_CLUSTERS: usize = 10;

/// `'sha256-…'` of `REPORT_CSS`: the one style a report page may apply.
pub fn style_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let digest = Sha256::digest(REPORT_CSS.as_bytes());
        format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        )
    })
}

/// The Content-Security-Policy of a report: its inline style and nothing else — no script, no
/// connection, no image but an inline one, no frame, no form.
pub fn content_security_policy() -> String {
    format!(
        "default-src 'none'; style-src {}; img-src data:; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'",
        style_hash()
    )
}

/// The report of the succeeded job `job`, whose result is `result`.
pub fn render(job: &Job, result: &JobResult) -> String {
    page(job, result).into_string()
}

fn page(job: &Job, result: &JobResult) -> Markup {
    let r = &result.resolution;
    let a = &result.analysis;
    let steps = [
        Step {
            key: "requested",
            label: "identifiers sent",
            value: r.requested,
        },
        Step {
            key: "resolved",
            label: "identifiers resolved",
            value: r.resolved,
        },
        Step {
            key: "persons",
            label: "distinct persons",
            value: r.persons,
        },
        Step {
            key: "accepted",
            label: "customers analysed",
            value: r.accepted,
        },
    ];
    let top_traits = &a.top_attributes[..a.top_attributes.len().min(TOP_TRAITS)];
    let pairs = &a.top_intersections[..a.top_intersections.len().min(TOP_PAIRS)];
    let clusters =
        &a.multi_attribute_clusters[..a.multi_attribute_clusters.len().min(TOP_CLUSTERS)];
    let mut bars: Vec<AudienceBar> = result
        .audiences
        .iter()
        .map(|au| AudienceBar {
            name: au.strategy.name().to_owned(),
            size: au.total,
            index: au.expected.as_ref().map(|e| e.index),
        })
        .collect();
    if let Some(ranked) = &result.ranked {
        bars.extend(ranked.tiers.iter().map(|t| AudienceBar {
            name: t.name.clone(),
            size: t.size,
            index: None,
        }));
    }
    let id = job.id;
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { "ICP report · job " (id) }
                link rel="icon" href="data:,";
                style { (PreEscaped(REPORT_CSS)) }
            }
            body {
                header {
                    h1 { "Ideal Customer Profile" }
                    p.meta {
                        "Job " code { (id) }
                        " · created " (rfc3339(job.created_at))
                        @if let Some(at) = job.finished_at { " · finished " (rfc3339(at)) }
                        " · " (count(a.customers)) " customers analysed"
                    }
                    nav {
                        a href={ "/v1/jobs/" (id) "/result" } { "Result (JSON)" }
                        " · "
                        a href={ "/v1/jobs/" (id) } { "Job (JSON)" }
                        " · "
                        a href="/" { "Console" }
                    }
                }
                @if !result.warnings.is_empty() {
                    section #warnings {
                        h2 { "Warnings" }
                        ul {
                            @for w in &result.warnings {
                                li { code { (w.code.as_str()) } " " (w.message) }
                            }
                        }
                    }
                }
                section #funnel {
                    h2 { "Resolution" }
                    p { (percent(r.rate)) " of the identifiers sent were matched to a person." }
                    (charts::funnel(&steps))
                }
                section #traits {
                    h2 { "Top traits" }
                    @if top_traits.is_empty() {
                        p.empty { "No trait was found among the customers." }
                    } @else {
                        p { "How common each trait is among the customers, against its share of the population." }
                        (charts::traits(top_traits))
                    }
                }
                section #pairs {
                    h2 { "Traits that go together" }
                    @if pairs.is_empty() {
                        p.empty { "No pair of traits reached the minimum support." }
                    } @else {
                        p { "Lift of the top pairs: how much more often the two traits meet among the customers than chance would have them." }
                        (charts::lift_heat_map(pairs))
                    }
                }
                section #clusters {
                    h2 { "Clusters" }
                    @if clusters.is_empty() {
                        p.empty { "No set of three or more traits reached the minimum support." }
                    } @else {
                        (charts::clusters(clusters))
                    }
                }
                section #audiences {
                    h2 { "Audiences" }
                    @if bars.is_empty() {
                        p.empty { "The job built no audience." }
                    } @else {
                        (charts::audiences(&bars))
                    }
                    @for au in &result.audiences {
                        (audience(au, au.strategy.name(), au.strategy.name()))
                    }
                    @if let Some(ranked) = &result.ranked {
                        article.audience data-audience="ranked" {
                            h3 { "Ranked tiers" }
                            p { "The " (count(ranked.eligible)) " persons scored, best first, on " (count(ranked.weighted_traits)) " weighted traits." }
                            table {
                                thead { tr { th { "Tier" } th { "Share" } th { "Size" } th { "Top traits" } th { "Similarity" } th { "Export" } } }
                                tbody {
                                    @for t in &ranked.tiers {
                                        tr data-audience=(t.name) {
                                            td { (t.name) }
                                            td { (percent(t.share)) }
                                            td.num { (count(t.size)) }
                                            td { (t.top_traits.iter().map(|tr| format!("{} = {}", tr.name, tr.value)).collect::<Vec<_>>().join(", ")) }
                                            td.num { (t.validation.as_ref().and_then(|v| v.similarity).map(|s| format!("{s:.2}")).unwrap_or_default()) }
                                            td { (exports(&t.exports)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @if !result.custom_audiences.is_empty() {
                        h3 { "Custom audiences" }
                        @for au in &result.custom_audiences { (custom(au)) }
                    }
                }
                @if !result.segments.is_empty() { (segments(result)) }
                @if !a.notes.messages.is_empty() || !result.audience_notes.is_empty() {
                    section #notes {
                        h2 { "Notes" }
                        ul {
                            @for m in &a.notes.messages { li { (m) } }
                            @for n in &result.audience_notes { li { (n.message) } }
                        }
                    }
                }
            }
        }
    }
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
