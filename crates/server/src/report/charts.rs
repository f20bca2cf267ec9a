//! The report's charts as inline SVG, drawn on the server: no script, no request to the network.
//! Every text that comes from the data (attribute names and values) goes through maud, which
//! escapes it; colours and sizes are numbers computed here.

use icp_analysis::{Cluster, Intersection, Item, TopAttribute};
use maud::{Markup, html};

use super::format::{count, percent, ratio};
use crate::decode::shorten;

/// The width every chart is drawn at (it scales down with the page).
const WIDTH: f64 = 800.0;
/// Where the bars start: the labels sit left of it.
const BARS_X: f64 = 260.0;
/// The longest bar.
const BARS_W: f64 = 320.0;
/// Label length before it is cut (the full text is in the element's `<title>`).
const LABEL_CHARS: usize = 40;

/// One funnel step: its key (`requested`, …), its label and its count.
pub struct Step {
    pub key: &'static str,
    pub label: &'static str,
    pub value: u64,
}

/// The resolution funnel: one bar per step, as a share of the first.
pub fn funnel(steps: &[Step]) -> Markup {
    let first = steps.first().map_or(0, |s| s.value).max(1) as f64;
    let row = 34.0;
    let height = row * steps.len() as f64 + 8.0;
    html! {
        svg.chart #funnel-chart viewBox=(view_box(height)) role="img" aria-labelledby="funnel-title" {
            title #funnel-title { "Resolution funnel" }
            @for (i, s) in steps.iter().enumerate() {
                @let y = 4.0 + row * i as f64;
                @let w = bar_width(s.value as f64 / first);
                text.label x=(BARS_X - 8.0) y=(y + 18.0) text-anchor="end" { (s.label) }
                rect.track x=(BARS_X) y=(y) width=(BARS_W) height="24" {}
                rect.bar.funnel x=(BARS_X) y=(y) width=(w) height="24" {
                    title { (s.label) ": " (count(s.value)) }
                }
                text.value x=(BARS_X + BARS_W + 8.0) y=(y + 18.0) data-funnel=(s.key) data-value=(s.value) {
                    (count(s.value))
                }
                text.share x=(WIDTH - 4.0) y=(y + 18.0) text-anchor="end" {
                    (percent(s.value as f64 / first))
                }
            }
        }
    }
}

/// The top traits: their frequency among the customers against their share of the
/// population (`frequency / index`, where the index is known).
pub fn traits(top: &[TopAttribute]) -> Markup {
    let row = 30.0;
    let legend = 22.0;
    let height = legend + row * top.len() as f64 + 4.0;
    let max = top
        .iter()
        .flat_map(|t| [Some(t.frequency), population_share(t)])
        .flatten()
        .fold(0.01_f64, f64::max);
    html! {
        svg.chart #traits-chart viewBox=(view_box(height)) role="img" aria-labelledby="traits-title" {
            title #traits-title { "Top traits: customers against the population" }
            rect.bar.customers x=(BARS_X) y="4" width="12" height="10" {}
            text.legend x=(BARS_X + 16.0) y="13" { "customers" }
            rect.bar.population x=(BARS_X + 110.0) y="4" width="12" height="10" {}
            text.legend x=(BARS_X + 126.0) y="13" { "population" }
            @for (i, t) in top.iter().enumerate() {
                @let y = legend + row * i as f64;
                @let label = t.item().to_string();
                text.label x=(BARS_X - 8.0) y=(y + 16.0) text-anchor="end" {
                    title { (label) }
                    (shorten(&label, LABEL_CHARS))
                }
                rect.bar.customers x=(BARS_X) y=(y + 2.0) width=(bar_width(t.frequency / max)) height="11" {
                    title { (label) ": " (percent(t.frequency)) " of customers" }
                }
                @if let Some(share) = population_share(t) {
                    rect.bar.population x=(BARS_X) y=(y + 14.0) width=(bar_width(share / max)) height="11" {
                        title { (label) ": " (percent(share)) " of the population" }
                    }
                }
                text.value x=(BARS_X + BARS_W + 8.0) y=(y + 16.0) {
                    (percent(t.frequency))
                    @match (population_share(t), t.index) {
                        (Some(share), Some(index)) => { " vs " (percent(share)) " · index " (ratio(index)) }
                        _ => { " · population unknown" }
                    }
                }
            }
        }
    }
}

fn population_share(t: &TopAttribute) -> Option<f64> {
    t.index.filter(|i| *i > 0.0).map(|i| t.frequency / i)
}

/// The lift of the top pairs as a heat map: one row and one column per trait of the pairs,
/// a cell per pair (both ways), darker for a higher lift.
pub fn lift_heat_map(pairs: &[Intersection]) -> Markup {
    let mut items: Vec<&Item> = Vec::new();
    for p in pairs {
        for item in &p.items {
            if !items.contains(&item) {
                items.push(item);
            }
        }
    }
    let n = items.len();
    let cell = if n > 16 { 18.0 } else { 26.0 };
    let left = 290.0;
    let top = 24.0;
    let height = top + cell * n as f64 + 28.0;
    let max_lift = pairs.iter().map(|p| p.lift).fold(1.0_f64, f64::max);
    let at = |item: &Item| items.iter().position(|i| *i == item).unwrap_or(0);
    html! {
        svg.chart #lift-chart viewBox=(view_box(height)) role="img" aria-labelledby="lift-title" {
            title #lift-title { "Lift of the top pairs" }
            @for (i, item) in items.iter().enumerate() {
                @let label = item.to_string();
                text.label x=(left - 8.0) y=(top + cell * i as f64 + cell * 0.65) text-anchor="end" {
                    title { (label) }
                    (i + 1) ". " (shorten(&label, LABEL_CHARS))
                }
                text.axis x=(left + cell * i as f64 + cell / 2.0) y=(top - 8.0) text-anchor="middle" { (i + 1) }
                @for j in 0..n {
                    rect.empty x=(left + cell * j as f64) y=(top + cell * i as f64) width=(cell - 1.0) height=(cell - 1.0) {}
                }
            }
            @for p in pairs {
                @if let [a, b] = p.items.as_slice() {
                    @let (i, j) = (at(a), at(b));
                    @let fill = heat(p.lift, max_lift);
                    @let tip = format!("{a} & {b}: lift {}, {} of customers", ratio(p.lift), percent(p.support));
                    @for (r, c) in [(i, j), (j, i)] {
                        rect.cell x=(left + cell * c as f64) y=(top + cell * r as f64) width=(cell - 1.0) height=(cell - 1.0) fill=(fill) {
                            title { (tip) @if let Some(index) = p.index { ", index " (ratio(index)) } }
                        }
                    }
                }
            }
            @let legend_y = top + cell * n as f64 + 12.0;
            text.legend x=(left) y=(legend_y + 10.0) { "lift 1" }
            @for k in 0..6 {
                @let lift = 1.0 + (max_lift - 1.0) * k as f64 / 5.0;
                rect x=(left + 44.0 + 22.0 * k as f64) y=(legend_y) width="20" height="12" fill=(heat(lift, max_lift)) {}
            }
            text.legend x=(left + 44.0 + 22.0 * 6.0 + 4.0) y=(legend_y + 10.0) { "lift " (ratio(max_lift)) }
        }
    }
}

/// From pale (lift 1 or below) to deep red (the highest lift), on a log scale.
fn heat(lift: f64, max_lift: f64) -> String {
    let t = if max_lift > 1.0 && lift > 1.0 {
        (lift.ln() / max_lift.ln()).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let lightness = 92.0 - 52.0 * t;
    format!("hsl(8,75%,{lightness:.0}%)")
}

/// The multi-attribute clusters: support among the customers, with lift and index.
pub fn clusters(clusters: &[Cluster]) -> Markup {
    let row = 40.0;
    let height = row * clusters.len() as f64 + 4.0;
    let max = clusters.iter().map(|c| c.support).fold(0.01_f64, f64::max);
    html! {
        svg.chart #clusters-chart viewBox=(view_box(height)) role="img" aria-labelledby="clusters-title" {
            title #clusters-title { "Multi-attribute clusters by share of customers" }
            @for (i, c) in clusters.iter().enumerate() {
                @let y = 4.0 + row * i as f64;
                @let label = c.items.iter().map(ToString::to_string).collect::<Vec<_>>().join(" & ");
                text.label x="0" y=(y + 12.0) {
                    title { (label) }
                    (i + 1) ". " (shorten(&label, 110))
                }
                rect.bar.cluster x="0" y=(y + 17.0) width=(bar_width(c.support / max) + BARS_X - 30.0) height="14" {
                    title { (label) ": " (percent(c.support)) " of customers" }
                }
                text.value x=(BARS_X + BARS_W - 22.0) y=(y + 29.0) {
                    (percent(c.support)) " · lift " (ratio(c.lift))
                    @if let Some(index) = c.index { " · index " (ratio(index)) }
                }
            }
        }
    }
}

/// One audience bar: its name, its size, and its expected index if planned with one.
pub struct AudienceBar {
    pub name: String,
    pub size: u64,
    pub index: Option<f64>,
}

/// The audiences' sizes on a log scale, each with its expected index.
pub fn audiences(bars: &[AudienceBar]) -> Markup {
    let row = 30.0;
    let height = row * bars.len() as f64 + 4.0;
    let max = bars.iter().map(|b| b.size).max().unwrap_or(1).max(10) as f64;
    let scale = |size: u64| ((size as f64 + 1.0).log10() / (max + 1.0).log10()).clamp(0.0, 1.0);
    html! {
        svg.chart #audiences-chart viewBox=(view_box(height)) role="img" aria-labelledby="audiences-title" {
            title #audiences-title { "Audience sizes (log scale) and expected index" }
            @for (i, b) in bars.iter().enumerate() {
                @let y = 4.0 + row * i as f64;
                text.label x=(BARS_X - 8.0) y=(y + 16.0) text-anchor="end" { (b.name) }
                rect.track x=(BARS_X) y=(y) width=(BARS_W) height="22" {}
                rect.bar.audience x=(BARS_X) y=(y) width=(bar_width(scale(b.size))) height="22" {
                    title { (b.name) ": " (count(b.size)) " people" }
                }
                text.value x=(BARS_X + BARS_W + 8.0) y=(y + 16.0) {
                    (count(b.size))
                    @if let Some(index) = b.index { " · index " (ratio(index)) }
                }
            }
        }
    }
}

fn view_box(height: f64) -> String {
    format!("0 0 {WIDTH} {height}")
}

/// A bar's width for a share of the longest (at least a sliver, so a small non-zero count shows).
fn bar_width(share: f64) -> f64 {
    if share.is_finite() && share > 0.0 {
        (BARS_W * share.min(1.0)).max(2.0)
    } else {
        0.0
    }
}
