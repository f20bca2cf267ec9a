use std::collections::HashMap;

use crate::item::Item;
use crate::report::Analysis;

/// What the population looks like: its size and the size of each trait's cluster, as the map
/// stage learns them from `list_clusters` (`Cluster::size`, `ListClustersResponse::population_size`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Baseline {
    pub population_size: u64,
    pub sizes: HashMap<Item, u64>,
}

impl Baseline {
    pub fn new(population_size: u64) -> Self {
        Self {
            population_size,
            sizes: HashMap::new(),
        }
    }

    /// Records the population size of the cluster `name = value`.
    pub fn insert(&mut self, item: Item, size: u64) {
        self.sizes.insert(item, size);
    }

    /// `size / population size`, when both are known and positive.
    pub fn prevalence(&self, item: &Item) -> Option<f64> {
        let size = *self.sizes.get(item)?;
        (size > 0 && self.population_size > 0).then(|| size as f64 / self.population_size as f64)
    }
}

impl Analysis {
    /// Fills the `index` of every top attribute the baseline covers
    /// (`frequency / prevalence`), clears the others, and notes which stayed unknown.
    ///
    /// A cluster of size 0 or a population of size 0 gives no index rather than an infinite one.
    ///
    /// This re-ranks only the pairs and clusters the analysis kept: a set outside them (say the
    /// full trait set of a segment that is common among the customers, and so has a low lift,
    /// but rare in the population) cannot come back. To rank the whole mined lattice against the
    /// population, give the baseline before ranking: [`crate::Mined::analysis_with`] or
    /// [`crate::Analyzer::finish_with_baseline`].
    pub fn apply_baseline(&mut self, baseline: &Baseline) {
        rerank(
            &mut self.top_intersections,
            baseline,
            |p| (&p.items, p.support, p.count, p.score),
            |p, i, s| {
                p.index = Some(i);
                p.score = s;
            },
        );
        rerank(
            &mut self.multi_attribute_clusters,
            baseline,
            |c| (&c.items, c.support, c.count, c.score),
            |c, i, s| {
                c.index = Some(i);
                c.score = s;
            },
        );
        self.note_baseline(baseline);
    }

    /// Fills the index of the top attributes and the notes about the baseline.
    pub(crate) fn note_baseline(&mut self, baseline: &Baseline) {
        let mut unknown = Vec::new();
        for attribute in &mut self.top_attributes {
            let item = attribute.item();
            attribute.index = baseline.prevalence(&item).map(|p| attribute.frequency / p);
            if attribute.index.is_none() {
                unknown.push(item);
            }
        }
        self.notes.population_size = Some(baseline.population_size);
        self.notes.index_unknown = unknown;
        self.refresh_messages();
    }
}

/// Re-ranks pairs or clusters against the population once its baseline is known.
///
/// Lift among the customers alone cannot see what sets the customers apart: when 90 % of them
/// share each of a segment's traits, those traits look independent *among the customers* (lift
/// ≈ 1) although together they are a hundred times more common than in the population. With a
/// baseline the score becomes `support · ln(index)`, `index = support / Π prevalence(i)` — the
/// same mutual-information term as before, measured against the population instead of the
/// customers. Sets whose items the baseline does not fully cover keep their score and rank after
/// the covered ones. Ties: larger count, then the smaller item list.
fn rerank<T>(
    rows: &mut [T],
    baseline: &Baseline,
    view: impl Fn(&T) -> (&Vec<Item>, f64, u64, f64),
    set: impl Fn(&mut T, f64, f64),
) {
    for row in rows.iter_mut() {
        let (items, support, _, _) = view(row);
        let expected: Option<f64> = items.iter().map(|i| baseline.prevalence(i)).product();
        if let Some(expected) = expected.filter(|e| *e > 0.0) {
            let index = support / expected;
            set(row, index, support * index.ln());
        }
    }
    let covered = |items: &[Item]| items.iter().all(|i| baseline.prevalence(i).is_some());
    rows.sort_by(|a, b| {
        let (ia, _, ca, sa) = view(a);
        let (ib, _, cb, sb) = view(b);
        covered(ib)
            .cmp(&covered(ia))
            .then_with(|| sb.total_cmp(&sa))
            .then_with(|| cb.cmp(&ca))
            .then_with(|| ia.cmp(ib))
    });
}
