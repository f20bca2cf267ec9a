//! A job's named segments side by side: each one's customers, the traits that set it apart from
//! the rest of the customers, its own audiences, then the combined audience.

use maud::{Markup, html};

use super::audiences::audience;
use super::format::{count, percent, ratio};
use crate::model::{JobResult, strategy_name};

/// Distinguishing traits shown per segment.
const TOP_DISTINGUISHING: usize = 5;

pub(super) fn segments(result: &JobResult) -> Markup {
    html! {
        section #segments {
            h2 { "Segments" }
            p { "Each segment analysed on its own: what sets it apart from the rest of the customers, and its own audiences." }
            @for s in &result.segments {
                article.segment data-segment=(s.name) {
                    h3 { (s.name) }
                    p.meta {
                        (count(s.customers)) " customers analysed · "
                        (count(s.resolved)) " of " (count(s.requested)) " identifiers resolved"
                    }
                    @if s.distinguishing_traits.is_empty() {
                        p.empty { "No trait sets this segment apart." }
                    } @else {
                        table {
                            thead { tr { th { "Trait" } th { "In the segment" } th { "Other customers" } th { "Index" } } }
                            tbody {
                                @for t in s.distinguishing_traits.iter().take(TOP_DISTINGUISHING) {
                                    tr {
                                        td { (t.name) " = " (t.value) }
                                        td.num { (percent(t.share)) }
                                        td.num { (percent(t.rest_share)) }
                                        td.num { (ratio(t.index)) }
                                    }
                                }
                            }
                        }
                    }
                    @for au in &s.audiences {
                        @let key = au.name.clone().unwrap_or_else(|| strategy_name(au.strategy).to_owned());
                        (audience(au, &format!("{}: {}", s.name, au.strategy.name()), &key))
                    }
                    @for n in &s.audience_notes { p.note { (n.message) } }
                }
            }
            @if let Some(combined) = &result.combined_audience {
                (audience(combined, "Combined: any segment's precision audience", "combined"))
            }
        }
    }
}
