//! Property tests against brute force on small random data: every frequent itemset and its count,
//! and the closedness of every reported cluster.

use std::collections::{BTreeMap, BTreeSet};

use icp_analysis::{AnalysisConfig, Analyzer, Item};
use proptest::prelude::*;

/// Customers as `attribute index → value index` (absent when `None`).
fn dataset() -> impl Strategy<Value = (usize, Vec<Vec<Option<u8>>>)> {
    (2usize..6).prop_flat_map(|attributes| {
        let row = proptest::collection::vec(proptest::option::weighted(0.7, 0u8..3), attributes);
        // Up to 200 rows: bitsets of several words, so projections cross word boundaries.
        (Just(attributes), proptest::collection::vec(row, 1..200))
    })
}

fn item(a: usize, v: u8) -> Item {
    Item::new(format!("a{a}"), format!("v{v}"))
}

fn combinations(items: &[(usize, u8)], size: usize) -> Vec<Vec<(usize, u8)>> {
    if size == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for (i, &first) in items.iter().enumerate() {
        for mut rest in combinations(&items[i + 1..], size - 1) {
            if rest.iter().all(|&(a, _)| a != first.0) {
                rest.insert(0, first);
                out.push(rest);
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn mining_equals_brute_force(
        (attributes, rows) in dataset(),
        support_pct in 1u32..60,
        max_size in 3usize..6,
    ) {
        let min_support = f64::from(support_pct) / 100.0;
        let mut analyzer = Analyzer::new(AnalysisConfig {
            min_support,
            max_cluster_size: max_size,
            top_clusters: usize::MAX,
            top_intersections: usize::MAX,
            ..AnalysisConfig::default()
        });
        for row in &rows {
            let fields: Vec<(String, String)> = row
                .iter()
                .enumerate()
                .filter_map(|(a, v)| v.map(|v| (format!("a{a}"), format!("v{v}"))))
                .collect();
            analyzer.add_profile(fields.iter().map(|(a, v)| (a.as_str(), v.as_str())));
        }
        let has_trait = rows.iter().any(|r| r.iter().any(Option::is_some));
        let mined = match analyzer.mine() {
            Ok(m) => m,
            Err(e) => {
                prop_assert!(!has_trait, "unexpected error {e}");
                return Ok(());
            }
        };
        let n = rows.len() as u64;
        let min_count = ((min_support * n as f64).ceil() as u64).max(1);
        prop_assert_eq!(mined.min_count(), min_count);

        let all: Vec<(usize, u8)> = (0..attributes).flat_map(|a| (0..3).map(move |v| (a, v))).collect();
        let count = |set: &[(usize, u8)]| {
            rows.iter().filter(|r| set.iter().all(|&(a, v)| r[a] == Some(v))).count() as u64
        };
        let mut expected: BTreeMap<Vec<Item>, u64> = BTreeMap::new();
        for size in 1..=max_size {
            for set in combinations(&all, size) {
                let c = count(&set);
                if c >= min_count {
                    let mut items: Vec<Item> = set.iter().map(|&(a, v)| item(a, v)).collect();
                    items.sort();
                    expected.insert(items, c);
                }
            }
        }
        let got: BTreeMap<Vec<Item>, u64> = mined.itemsets().map(|s| (s.items, s.count)).collect();
        prop_assert_eq!(&got, &expected);

        let analysis = mined.analysis();
        // Every reported cluster is frequent, of size 3..=max, and closed within the bound
        // (no frequent superset of size ≤ max has its count) unless it is of the maximum size.
        let reported: BTreeSet<Vec<Item>> =
            analysis.multi_attribute_clusters.iter().map(|c| c.items.clone()).collect();
        for c in &analysis.multi_attribute_clusters {
            prop_assert!(c.items.len() >= 3 && c.items.len() <= max_size);
            prop_assert_eq!(expected.get(&c.items), Some(&c.count));
            prop_assert!(c.lift.is_finite() && c.score.is_finite() && c.support > 0.0);
            if c.items.len() < max_size {
                let has_equal_superset = expected.iter().any(|(s, &sc)| {
                    s.len() == c.items.len() + 1 && sc == c.count && c.items.iter().all(|i| s.contains(i))
                });
                prop_assert!(!has_equal_superset, "{:?} is not closed", c.items);
            }
        }
        // Every closed set below the maximum size is reported.
        for (s, &sc) in &expected {
            if s.len() >= 3 && s.len() < max_size {
                let closed = !expected.iter().any(|(t, &tc)| {
                    t.len() == s.len() + 1 && tc == sc && s.iter().all(|i| t.contains(i))
                });
                prop_assert_eq!(closed, reported.contains(s), "{:?}", s);
            }
        }
        for p in &analysis.top_intersections {
            prop_assert!(p.lift.is_finite() && p.score.is_finite());
        }
    }
}
