//! From the mined lattice to the report: the most frequent traits, the pairs ranked by score,
//! and the best closed clusters. With a baseline, pairs and clusters are ranked against the
//! population over the whole lattice before the top ones are taken.

use std::collections::BTreeMap;

use rustc_hash::FxHashSet;

use crate::baseline::{Baseline, Expected};
use crate::bitset;
use crate::config::MAX_CLUSTER_SIZE_LIMIT;
use crate::item::Item;
use crate::mine::Mined;
use crate::rank;
use crate::report::{Analysis, AnalysisNotes, Cluster, Intersection, TopAttribute};

impl Mined {
    /// Summarises the lattice into the report.
    pub fn analysis(&self) -> Analysis {
        summarise(self, None)
    }

    /// Summarises the lattice into the report, ranking pairs and clusters against the
    /// population **before** the top ones are taken: every frequent pair and every closed
    /// cluster of the lattice competes on `support · ln(index)`, `index = support / Π
    /// prevalence(i)` (the rule of [`Analysis::apply_baseline`]; sets with an item the baseline
    /// lacks rank after the covered ones, on their lift score). The top attributes get their
    /// index and the notes the baseline, as `apply_baseline` does; applying the same baseline
    /// again changes nothing.
    pub fn analysis_with(&self, baseline: &Baseline) -> Analysis {
        summarise(self, Some(baseline))
    }

    /// Every trait the report can mention, sorted: the traits that enter pairs and clusters and
    /// the top attributes. Their population sizes are the baseline [`Mined::analysis_with`]
    /// needs (a trait left out simply has no index).
    pub fn baseline_items(&self) -> Vec<Item> {
        let mut items: Vec<Item> = (0..self.frequent.len() as u32)
            .map(|p| self.item(p))
            .chain(top_attributes(self).into_iter().map(|t| self.trait_item(t)))
            .collect();
        items.sort();
        items.dedup();
        items
    }
}

/// The report of the lattice; with a baseline, pairs and clusters are ranked against the
/// population over the whole mined lattice before the top ones are taken (see
/// [`Analysis::apply_baseline`] for the rule).
fn summarise(m: &Mined, baseline: Option<&Baseline>) -> Analysis {
    let n = m.customers;
    let support = |count: u64| count as f64 / n as f64;

    let top_attributes = top_attributes(m)
        .into_iter()
        .map(|t| {
            let tc = &m.traits[t as usize];
            TopAttribute {
                name: m.attr_names[tc.attr as usize].to_string(),
                value: tc.value.to_string(),
                count: tc.count,
                frequency: support(tc.count),
                index: None,
            }
        })
        .collect();

    let expected = baseline.map(|b| {
        Expected::new(b, n, |name| {
            m.attr_names
                .iter()
                .position(|a| &**a == name)
                .map(|attr| m.attr_known[attr])
        })
    });
    let scorer = Scorer::new(m, expected.as_ref());
    let mut pairs: Vec<(Rank, usize)> = m
        .pairs
        .iter()
        .enumerate()
        .map(|(i, p)| (scorer.rank(&[p.a, p.b], u64::from(p.count)), i))
        .collect();
    let pair_order = |x: &(Rank, usize), y: &(Rank, usize)| {
        let (a, b) = (&m.pairs[x.1], &m.pairs[y.1]);
        scorer.order(&x.0, &[a.a, a.b], &y.0, &[b.a, b.b])
    };
    let top = m.config.top_intersections.min(pairs.len());
    if top > 0 && top < pairs.len() {
        pairs.select_nth_unstable_by(top - 1, pair_order);
    }
    pairs.truncate(top);
    pairs.sort_by(pair_order);
    let top_intersections = pairs
        .iter()
        .map(|(rank, i)| {
            let p = m.pairs[*i];
            let count = u64::from(p.count);
            let mut items = vec![m.item(p.a), m.item(p.b)];
            items.sort();
            Intersection {
                items,
                count,
                support: support(count),
                lift: rank.lift,
                score: rank.score,
                index: rank.index,
            }
        })
        .collect();

    let multi_attribute_clusters = closed_clusters(m, &scorer);

    let mut analysis = Analysis {
        customers: n,
        top_attributes,
        top_intersections,
        multi_attribute_clusters,
        notes: AnalysisNotes {
            min_support: m.config.min_support,
            min_count: m.min_count,
            effective_min_support: (m.min_count != m.requested_min_count)
                .then(|| support(m.min_count)),
            max_cluster_size: m.config.max_cluster_size,
            customers_without_traits: m.customers_without_traits,
            attributes: m.attr_names.len() as u64,
            distinct_traits: m.traits.len() as u64,
            frequent_traits: m.frequent.len() as u64,
            frequent_pairs: m.pairs.len() as u64,
            frequent_itemsets: m.sets.len() as u64,
            excluded_attributes: m.excluded.clone(),
            excluded_attributes_unlisted: m.excluded_unlisted,
            capped_attributes: m.capped.clone(),
            population_size: None,
            baseline: None,
            customers_with_attribute: customers_with_attribute(m),
            index_unknown: Vec::new(),
            messages: Vec::new(),
        },
    };
    match &expected {
        Some(expected) => analysis.note_baseline(expected),
        None => analysis.refresh_messages(),
    }
    analysis
}

/// Customers whose attribute is known, for the attributes of every trait the report can
/// mention (those of [`Mined::baseline_items`]): what a known-share baseline applied later
/// needs.
fn customers_with_attribute(m: &Mined) -> BTreeMap<String, u64> {
    m.baseline_items()
        .into_iter()
        .filter_map(|item| {
            let attr = m.attr_names.iter().position(|a| **a == *item.name)?;
            Some((item.name, m.attr_known[attr]))
        })
        .collect()
}

/// The `top_attributes` most frequent traits, ties by name then value.
fn top_attributes(m: &Mined) -> Vec<u32> {
    let key = |t: &u32| {
        let tc = &m.traits[*t as usize];
        (
            std::cmp::Reverse(tc.count),
            &*m.attr_names[tc.attr as usize],
            &*tc.value,
        )
    };
    let mut all: Vec<u32> = (0..m.traits.len() as u32).collect();
    let k = m.config.top_attributes.min(all.len());
    if k == 0 {
        return Vec::new();
    }
    if k < all.len() {
        all.select_nth_unstable_by(k - 1, |a, b| key(a).cmp(&key(b)));
        all.truncate(k);
    }
    all.sort_by(|a, b| key(a).cmp(&key(b)));
    all
}

/// The best closed clusters by score.
///
/// Candidates are taken in score order from a partial selection that grows only when too few of
/// them survive, so a lattice of millions of sets is never fully sorted. A candidate `S`
/// survives when its closure — every frequent trait held by all of `S`'s customers — adds
/// nothing (then no superset has the same customers) or, for a set of the maximum size whose
/// closure is larger, when no other set with the same closure was taken already.
fn closed_clusters(m: &Mined, scorer: &Scorer<'_>) -> Vec<Cluster> {
    let wanted = m.config.top_clusters;
    if wanted == 0 || m.sets.is_empty() {
        return Vec::new();
    }
    // 16 bytes per set (the lattice can hold millions): the score, whether the baseline covers
    // the set, and its number; the rest is recomputed for the sets reported.
    // Scoring millions of sets (a few divisions and a logarithm each) is shared out among the
    // threads; each scores its own slice, so the result does not depend on them.
    let mut candidates: Vec<(f64, u32, bool)> = vec![(0.0, 0, false); m.sets.len()];
    let threads = m.config.thread_count().clamp(1, 64);
    let slice = m.sets.len().div_ceil(threads).max(1 << 14);
    std::thread::scope(|scope| {
        for (k, out) in candidates.chunks_mut(slice).enumerate() {
            scope.spawn(move || {
                for (j, c) in out.iter_mut().enumerate() {
                    let i = k * slice + j;
                    let s = &m.sets[i];
                    let rank = scorer.rank(s.items(), u64::from(s.count));
                    *c = (rank.score, i as u32, rank.covered);
                }
            });
        }
    });
    let order = |x: &(f64, u32, bool), y: &(f64, u32, bool)| {
        let (a, b) = (&m.sets[x.1 as usize], &m.sets[y.1 as usize]);
        let key = |score: f64, covered: bool, count: u32| Rank {
            covered,
            score,
            count: u64::from(count),
            lift: 0.0,
            index: None,
        };
        scorer.order(
            &key(x.0, x.2, a.count),
            a.items(),
            &key(y.0, y.2, b.count),
            b.items(),
        )
    };

    let mut scratch = vec![0u64; m.words];
    let mut seen: FxHashSet<Vec<u32>> = FxHashSet::default();
    let mut clusters = Vec::new();
    let mut scanned = 0;
    let mut take = wanted.saturating_mul(64).max(1024);
    loop {
        let ready = take.min(candidates.len());
        if ready > scanned {
            // The first `scanned` candidates stay in place: they are the best `scanned` under a
            // total order, so a larger selection keeps them first.
            let rest = &mut candidates[scanned..];
            let k = ready - scanned;
            if k < rest.len() {
                rest.select_nth_unstable_by(k - 1, order);
            }
            rest[..k].sort_by(order);
        }
        for &(_, i, _) in &candidates[scanned..ready] {
            let set = &m.sets[i as usize];
            let items = set.items();
            scratch.copy_from_slice(m.row(items[0]));
            for &p in &items[1..] {
                bitset::and_assign(&mut scratch, m.row(p));
            }
            let count = u64::from(set.count);
            let closure: Vec<u32> = (0..m.frequent.len() as u32)
                .filter(|&q| {
                    items.contains(&q)
                        || (m.count_of(q) >= count && bitset::is_subset(&scratch, m.row(q)))
                })
                .collect();
            let at_max = items.len() == m.config.max_cluster_size;
            if closure.len() > items.len() && !at_max {
                continue;
            }
            if !seen.insert(closure) {
                continue;
            }
            let rank = scorer.rank(items, count);
            let mut cluster_items: Vec<Item> = items.iter().map(|&p| m.item(p)).collect();
            cluster_items.sort();
            clusters.push(Cluster {
                items: cluster_items,
                count,
                support: count as f64 / m.customers as f64,
                lift: rank.lift,
                score: rank.score,
                index: rank.index,
            });
            if clusters.len() == wanted {
                return clusters;
            }
        }
        scanned = ready;
        if ready == candidates.len() {
            return clusters;
        }
        take = take.saturating_mul(4);
    }
}

/// How a pair or cluster ranks: see [`Scorer`].
#[derive(Debug, Clone, Copy)]
struct Rank {
    /// Whether the baseline knows the prevalence of every item (always false without one).
    covered: bool,
    score: f64,
    count: u64,
    lift: f64,
    index: Option<f64>,
}

/// Scores and orders pairs and clusters given as positions in [`Mined::frequent`].
///
/// Without a baseline: `score = support · ln(lift)` (the crate's ranking rule). With one, the
/// rule of [`Analysis::apply_baseline`]: sets whose items all have a prevalence come first,
/// scored `support · ln(index)`; the others keep the lift score. Ties: larger count, then the
/// smaller list of items. Computed in the same order of operations as `apply_baseline`, so both
/// give bit-identical scores.
struct Scorer<'a> {
    m: &'a Mined,
    /// Lexicographic rank of each frequent trait, for deterministic tie-breaks.
    lex: Vec<u32>,
    /// Expected share of each frequent trait were the customers like the population; empty
    /// without a baseline.
    prevalence: Vec<Option<f64>>,
}

impl<'a> Scorer<'a> {
    fn new(m: &'a Mined, expected: Option<&Expected<'_>>) -> Self {
        let mut by_name: Vec<u32> = (0..m.frequent.len() as u32).collect();
        by_name.sort_by_cached_key(|&p| m.item(p));
        let mut lex = vec![0u32; m.frequent.len()];
        for (rank, &p) in by_name.iter().enumerate() {
            lex[p as usize] = rank as u32;
        }
        let prevalence = expected.map_or_else(Vec::new, |e| {
            (0..m.frequent.len() as u32)
                .map(|p| e.of(&m.item(p)))
                .collect()
        });
        Self { m, lex, prevalence }
    }

    fn rank(&self, items: &[u32], count: u64) -> Rank {
        let m = self.m;
        let n = m.customers;
        let support = count as f64 / n as f64;
        let lift = rank::lift(count, items.iter().map(|&p| m.count_of(p)), n);
        let mut rank = Rank {
            covered: false,
            score: rank::score(support, lift),
            count,
            lift,
            index: None,
        };
        if self.prevalence.is_empty() {
            return rank;
        }
        // The product over the items sorted by name and value, as `apply_baseline` takes it.
        let mut sorted = [0u32; MAX_CLUSTER_SIZE_LIMIT];
        let sorted = &mut sorted[..items.len()];
        sorted.copy_from_slice(items);
        sorted.sort_unstable_by_key(|&p| self.lex[p as usize]);
        let expected: Option<f64> = sorted
            .iter()
            .map(|&p| self.prevalence[p as usize])
            .product();
        rank.covered = expected.is_some();
        if let Some(expected) = expected.filter(|e| *e > 0.0) {
            let index = support / expected;
            rank.index = Some(index);
            rank.score = support * index.ln();
        }
        rank
    }

    /// Best first. The item lists are compared only on a tie of everything else.
    fn order(&self, a: &Rank, a_items: &[u32], b: &Rank, b_items: &[u32]) -> std::cmp::Ordering {
        b.covered
            .cmp(&a.covered)
            .then_with(|| b.score.total_cmp(&a.score))
            .then_with(|| b.count.cmp(&a.count))
            .then_with(|| self.lex_key(a_items).cmp(&self.lex_key(b_items)))
    }

    fn lex_key(&self, items: &[u32]) -> Vec<u32> {
        let mut key: Vec<u32> = items.iter().map(|&p| self.lex[p as usize]).collect();
        key.sort_unstable();
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AnalysisConfig;
    use crate::mine::mine;
    use crate::rows::TraitRows;

    #[test]
    fn ties_break_on_count_then_items() {
        use std::cmp::Ordering::*;
        let mut input = TraitRows::new(&[]);
        for fields in [[("b", "1"), ("c", "1")], [("a", "1"), ("b", "1")]] {
            input.add_profile(fields);
        }
        let config = AnalysisConfig {
            min_support: 0.1,
            ..AnalysisConfig::default()
        };
        let m = mine(config, input).expect("mines");
        let scorer = Scorer::new(&m, None);
        let position = |name: &str| {
            (0..m.frequent.len() as u32)
                .find(|&p| m.item(p).name == name)
                .expect("frequent")
        };
        let (a, b, c) = (position("a"), position("b"), position("c"));
        let rank = |covered, score, count| Rank {
            covered,
            score,
            count,
            lift: 1.0,
            index: None,
        };
        let order = |x: Rank, xi: &[u32], y: Rank, yi: &[u32]| scorer.order(&x, xi, &y, yi);
        assert_eq!(
            order(rank(false, 1.0, 5), &[a, b], rank(false, 2.0, 5), &[a, b]),
            Greater
        );
        assert_eq!(
            order(rank(false, 1.0, 6), &[b, c], rank(false, 1.0, 5), &[a, b]),
            Less
        );
        assert_eq!(
            order(rank(false, 1.0, 5), &[b, a], rank(false, 1.0, 5), &[c, b]),
            Less
        );
        assert_eq!(
            order(rank(false, 1.0, 5), &[c, b], rank(false, 1.0, 5), &[a, b]),
            Greater
        );
        assert_eq!(
            order(rank(true, -1.0, 1), &[c, b], rank(false, 9.0, 9), &[a, b]),
            Less
        );
    }
}
