//! Ranking pairs and clusters against the population before the top ones are taken
//! (`Mined::analysis_with`, `Analyzer::finish_with_baseline`) versus re-ranking a pool
//! afterwards (`Analysis::apply_baseline`).

mod common;

use common::item;
use icp_analysis::{Analysis, AnalysisConfig, Analyzer, Baseline, Item};

/// 100 customers. Every one has the segment `seg_a`, `seg_b`, `seg_c` = `Yes`: among the
/// customers those traits are independent of everything (lift 1, score 0), but in the population
/// each is rare. Besides, `y1`..`y4` = `Yes` are correlated among the customers (30 have all
/// four, 20 others one each), so their sets have a high lift among the customers alone — but they
/// are common in the population.
fn analyzer(top: usize) -> Analyzer {
    let config = AnalysisConfig {
        min_support: 0.05,
        max_cluster_size: 4,
        top_intersections: top,
        top_clusters: top,
        ..AnalysisConfig::default()
    };
    let profiles = (0..100).map(|c| {
        let mut fields = vec![("seg_a", "Yes"), ("seg_b", "Yes"), ("seg_c", "Yes")];
        let y = ["y1", "y2", "y3", "y4"];
        if c < 30 {
            fields.extend(y.iter().map(|n| (*n, "Yes")));
        } else if c < 50 {
            fields.push((y[c % 4], "Yes"));
        }
        fields
    });
    common::analyzer(config, profiles)
}

fn baseline() -> Baseline {
    let mut baseline = Baseline::new(1_000_000);
    for n in ["seg_a", "seg_b", "seg_c"] {
        baseline.insert(item(n, "Yes"), 10_000);
    }
    for n in ["y1", "y2", "y3", "y4"] {
        baseline.insert(item(n, "Yes"), 500_000);
    }
    baseline
}

fn segment() -> Vec<Item> {
    vec![
        item("seg_a", "Yes"),
        item("seg_b", "Yes"),
        item("seg_c", "Yes"),
    ]
}

#[test]
fn ranking_with_the_baseline_first_finds_the_cluster_a_pool_loses() {
    // The old way: a pool of the best cluster and pair among the customers, then the baseline.
    let mut pooled: Analysis = analyzer(1).finish().expect("analyses");
    assert!(
        pooled
            .multi_attribute_clusters
            .iter()
            .all(|c| c.items != segment()),
        "the segment scores 0 among the customers and should miss the pool"
    );
    pooled.apply_baseline(&baseline());
    assert_ne!(pooled.multi_attribute_clusters[0].items, segment());
    let pooled_pair = &pooled.top_intersections[0].items;
    assert!(pooled_pair.iter().all(|i| i.name.starts_with('y')));

    // The new way: the baseline ranks the whole lattice, then the top one is taken.
    let ranked = analyzer(1)
        .finish_with_baseline(&baseline())
        .expect("analyses");
    let best = &ranked.multi_attribute_clusters[0];
    assert_eq!(best.items, segment());
    assert_eq!(best.count, 100);
    // index = 1 / 0.01³
    let index = best.index.expect("covered");
    assert!((index - 1e6).abs() < 1e-6 * 1e6, "{index}");
    assert!((best.score - 1e6f64.ln()).abs() < 1e-9);
    assert_eq!(ranked.notes.population_size, Some(1_000_000));
    // The best pair is one of the segment's too.
    let pair = &ranked.top_intersections[0].items;
    assert!(pair.iter().all(|i| i.name.starts_with("seg_")), "{pair:?}");
}

#[test]
fn ranking_first_equals_re_ranking_everything() {
    // With a pool that holds every pair, both ways agree exactly on the pairs, the top
    // attributes and the notes, and re-applying the baseline to the new result changes nothing.
    // (Clusters may differ in one respect: of the maximum-size sets that share a larger closure,
    // the best-ranked one stands for them, and the ranking decides which that is.)
    let mut everything = analyzer(usize::MAX).finish().expect("analyses");
    everything.apply_baseline(&baseline());
    let mined = analyzer(usize::MAX).mine().expect("mines");
    let ranked = mined.analysis_with(&baseline());
    assert_eq!(ranked.top_intersections, everything.top_intersections);
    assert_eq!(ranked.top_attributes, everything.top_attributes);
    assert_eq!(ranked.notes, everything.notes);
    let mut again = ranked.clone();
    again.apply_baseline(&baseline());
    assert_eq!(again, ranked);
}

#[test]
fn unknown_traits_rank_after_the_covered_ones_on_their_lift_score() {
    let mut partial = Baseline::new(1_000_000);
    partial.insert(item("y1", "Yes"), 500_000);
    partial.insert(item("y2", "Yes"), 500_000);
    partial.insert(item("y3", "Yes"), 500_000);
    let ranked = analyzer(usize::MAX)
        .finish_with_baseline(&partial)
        .expect("analyses");
    let clusters = &ranked.multi_attribute_clusters;
    let covered = |items: &[Item]| items.iter().all(|i| partial.prevalence(i).is_some());
    let first_uncovered = clusters
        .iter()
        .position(|c| !covered(&c.items))
        .expect("some cluster has a trait without a size");
    assert!(
        clusters[first_uncovered..]
            .iter()
            .all(|c| !covered(&c.items))
    );
    assert!(
        clusters[..first_uncovered]
            .iter()
            .all(|c| c.index.is_some())
    );
    assert!(
        clusters[first_uncovered..]
            .iter()
            .all(|c| c.index.is_none())
    );
    // Without an index the score stays support · ln(lift).
    for c in &clusters[first_uncovered..] {
        assert!((c.score - c.support * c.lift.ln()).abs() < 1e-12);
    }
    assert!(ranked.notes.index_unknown.contains(&item("seg_a", "Yes")));
}

#[test]
fn the_baseline_items_cover_every_reported_trait() {
    let mined = analyzer(usize::MAX).mine().expect("mines");
    let items = mined.baseline_items();
    let analysis = mined.analysis();
    for i in analysis
        .top_intersections
        .iter()
        .flat_map(|p| p.items.iter().cloned())
        .chain(
            analysis
                .multi_attribute_clusters
                .iter()
                .flat_map(|c| c.items.iter().cloned()),
        )
        .chain(analysis.top_attributes.iter().map(|t| t.item()))
    {
        assert!(items.binary_search(&i).is_ok(), "{i} missing");
    }
    assert!(items.windows(2).all(|w| w[0] < w[1]));
}
