//! One audience on the page, whichever made it (the whole list's planner, a segment's, the
//! combined one, a custom expression): what it is, its size and expected figures, its
//! validation and its downloads.

use maud::{Markup, html};

use super::format::{count, percent, ratio};
use crate::model::{AudienceExports, AudienceResult, CustomAudience, Validation};

/// A planned audience under `title`; `key` names it in `data-audience` (its export name).
pub(super) fn audience(au: &AudienceResult, title: &str, key: &str) -> Markup {
    html! {
        article.audience data-audience=(key) {
            h3 { (title) }
            p.expression { (au.description) }
            @if !au.rationale.is_empty() { p { (au.rationale) } }
            dl {
                (sizes(au.total, au.exported, au.truncated, au.excluded_customers))
                @if let Some(e) = &au.expected {
                    dt { "Expected index" } dd { (ratio(e.index)) }
                    dt { "Expected reach" } dd {
                        (percent(e.customer_share)) " of the customers in "
                        (percent(e.population_share)) " of the population"
                        @if !e.size_exact { " (size estimated)" }
                    }
                }
            }
            @if let Some(v) = &au.validation { (validation(v)) }
            (exports(&au.exports))
        }
    }
}

/// An audience written by hand on the finished job.
pub(super) fn custom(au: &CustomAudience) -> Markup {
    html! {
        article.audience data-audience=(au.id) {
            h3 { (au.id) }
            p.expression { (au.description) }
            dl { (sizes(au.total, au.exported, au.truncated, au.excluded_customers)) }
            @if let Some(v) = &au.validation { (validation(v)) }
            (exports(&au.exports))
        }
    }
}

/// An audience's size and what its export holds.
fn sizes(total: u64, exported: u64, truncated: bool, customers_out: u64) -> Markup {
    html! {
        dt { "Size" } dd { (count(total)) " people" }
        dt { "Exported" } dd {
            (count(exported))
            @if truncated { " (cut at the audience limit)" }
            @if customers_out > 0 { " · " (count(customers_out)) " customers left out" }
        }
    }
}

/// An audience's sample set against the customers: the score and each trait side by side.
pub(super) fn validation(v: &Validation) -> Markup {
    let share = |f: Option<f64>| f.map(percent).unwrap_or_else(|| "unknown".to_owned());
    html! {
        div.validation {
            p {
                "Similarity to the customers: "
                strong { (v.similarity.map(|s| format!("{s:.2}")).unwrap_or_else(|| "unknown".to_owned())) }
                @if let Some(p) = v.population_similarity { " (the population: " (format!("{p:.2}")) ")" }
                " · a sample of " (count(v.sample_size)) ", " (count(v.enriched)) " enriched"
            }
            @if !v.traits.is_empty() {
                table {
                    thead { tr { th { "Trait" } th { "Customers" } th { "Sample" } th { "Population" } } }
                    tbody {
                        @for t in &v.traits {
                            tr {
                                td { (t.name) " = " (t.value) }
                                td.num { (percent(t.customers)) }
                                td.num { (percent(t.sample)) }
                                td.num { (share(t.population)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub(super) fn exports(e: &AudienceExports) -> Markup {
    html! {
        span.exports {
            "Download: "
            a href=(e.csv) download { "CSV" } " "
            a href=(e.json) download { "JSON" } " "
            a href=(e.jsonl) download { "JSON lines" }
        }
    }
}
