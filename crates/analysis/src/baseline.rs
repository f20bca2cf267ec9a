use std::collections::HashMap;

use crate::item::Item;
use crate::report::{Analysis, BaselineKind};

/// What the population looks like: the size of each trait's cluster, as the analyze and map
/// stages learn them from `list_clusters` (`Cluster::size`), and the population size when the
/// provider gives one (`ListClustersResponse::population_size`).
///
/// Without a population size the baseline is the **known share**: the persons whose attribute
/// `a` is known are `Σ size(a = *)`, so `sizes` must then hold every value of each attribute
/// it covers (`list_clusters` by `cluster_names` answers all of them). An attribute with a
/// single value is a flag (the upstream lists `interested_fitness = Yes` and nothing for the
/// others): its absence means "no", not "unknown", so it is measured among all persons,
/// estimated as the largest `Σ size(a = *)` of any attribute listed — else its index would be
/// 1 whatever the customers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Baseline {
    /// The provider's population size; `None` for the known-share baseline.
    pub population_size: Option<u64>,
    pub sizes: HashMap<Item, u64>,
}

impl Baseline {
    /// A baseline against the whole population, `population_size` persons.
    pub fn new(population_size: u64) -> Self {
        Self {
            population_size: Some(population_size),
            sizes: HashMap::new(),
        }
    }

    /// A baseline with no population size: each attribute measured among the persons for whom
    /// it is known (see [`Baseline`]).
    pub fn known_share() -> Self {
        Self::default()
    }

    pub fn kind(&self) -> BaselineKind {
        match self.population_size {
            Some(_) => BaselineKind::PopulationSize,
            None => BaselineKind::KnownShare,
        }
    }

    /// Records the population size of the cluster `name = value`.
    pub fn insert(&mut self, item: Item, size: u64) {
        self.sizes.insert(item, size);
    }

    /// The population's share of the trait: `size / population size`, or without a population
    /// size `size / Σ size(a = *)` over the values of its attribute (a flag: over the estimated
    /// population) — when positive.
    pub fn prevalence(&self, item: &Item) -> Option<f64> {
        let size = *self.sizes.get(item)?;
        let base = match self.population_size {
            Some(population) => population,
            None => self.known_bases().get(item.name.as_str())?.persons,
        };
        (size > 0 && base > 0).then(|| size as f64 / base as f64)
    }

    /// The population size, or without one its estimate: the largest `Σ size(a = *)` of any
    /// attribute listed (what a flag is measured among). `None` when nothing is known.
    pub fn population_estimate(&self) -> Option<u64> {
        self.population_size
            .or_else(|| self.known_bases().values().map(|b| b.persons).max())
            .filter(|p| *p > 0)
    }

    /// Persons whose attribute `name` is known: the sum of its values' cluster sizes.
    pub fn known(&self, name: &str) -> u64 {
        self.sizes
            .iter()
            .filter(|(item, _)| item.name == name)
            .map(|(_, size)| size)
            .sum()
    }

    /// Under the known share, what each attribute is measured among (see [`Baseline`]).
    fn known_bases(&self) -> HashMap<&str, KnownBase> {
        let mut sums: HashMap<&str, (u64, usize)> = HashMap::new();
        for (item, size) in &self.sizes {
            let sum = sums.entry(&item.name).or_default();
            sum.0 += size;
            sum.1 += 1;
        }
        let estimate = sums.values().map(|s| s.0).max().unwrap_or(0);
        sums.into_iter()
            .map(|(name, (sum, values))| {
                let flag = values == 1;
                let persons = if flag { estimate } else { sum };
                (name, KnownBase { persons, flag })
            })
            .collect()
    }
}

/// What an attribute is measured among under the known share.
#[derive(Debug, Clone, Copy)]
struct KnownBase {
    /// `Σ size(a = *)`, or for a flag the estimated population.
    persons: u64,
    /// A single-valued attribute: known for every person and every customer.
    flag: bool,
}

/// The share of all customers expected to hold each trait were they like the population; an
/// index is the observed share over this.
///
/// With a population size it is the prevalence, `size / population size`. With the known share
/// it is `size(a = v) / Σ size(a = *) · known(a) / customers`, where `known(a)` counts the
/// customers whose `a` is known (a flag: `size / estimated population`, all customers): so the index of one trait is its share among the customers
/// whose attribute is known over its share among the persons whose attribute is known, and
/// the index of a set divides its support by the product of these, as with a population size.
/// When every person and every customer has every attribute, both give the same figures.
pub(crate) struct Expected<'a> {
    baseline: &'a Baseline,
    customers: f64,
    /// Known share only: per attribute, the persons and the customers whose value is known.
    known: HashMap<&'a str, (u64, Option<u64>)>,
}

impl<'a> Expected<'a> {
    pub(crate) fn new(
        baseline: &'a Baseline,
        customers: u64,
        customers_known: impl Fn(&str) -> Option<u64>,
    ) -> Self {
        let known = match baseline.population_size {
            Some(_) => HashMap::new(),
            None => baseline
                .known_bases()
                .into_iter()
                .map(|(name, base)| {
                    let among = if base.flag {
                        Some(customers)
                    } else {
                        customers_known(name)
                    };
                    (name, (base.persons, among))
                })
                .collect(),
        };
        Self {
            baseline,
            customers: customers as f64,
            known,
        }
    }

    pub(crate) fn of(&self, item: &Item) -> Option<f64> {
        if self.baseline.population_size.is_some() {
            return self.baseline.prevalence(item);
        }
        let size = *self.baseline.sizes.get(item)?;
        let (persons, customers) = *self.known.get(item.name.as_str())?;
        let customers = customers?;
        (size > 0 && persons > 0 && customers > 0 && self.customers > 0.0)
            .then(|| size as f64 / persons as f64 * (customers as f64 / self.customers))
    }
}

impl Analysis {
    /// Fills the `index` of every top attribute the baseline covers
    /// (`frequency / expected share`, see [`Baseline`]), clears the others, and notes which
    /// stayed unknown and which baseline was used.
    ///
    /// A cluster of size 0 or a population of size 0 gives no index rather than an infinite one.
    ///
    /// This re-ranks only the pairs and clusters the analysis kept: a set outside them (say the
    /// full trait set of a segment that is common among the customers, and so has a low lift,
    /// but rare in the population) cannot come back. To rank the whole mined lattice against the
    /// population, give the baseline before ranking: [`crate::Mined::analysis_with`] or
    /// [`crate::Analyzer::finish_with_baseline`].
    pub fn apply_baseline(&mut self, baseline: &Baseline) {
        let coverage = std::mem::take(&mut self.notes.customers_with_attribute);
        let expected = Expected::new(baseline, self.customers, |name| coverage.get(name).copied());
        rerank(
            &mut self.top_intersections,
            &expected,
            |p| (&p.items, p.support, p.count, p.score),
            |p, i, s| {
                p.index = Some(i);
                p.score = s;
            },
        );
        rerank(
            &mut self.multi_attribute_clusters,
            &expected,
            |c| (&c.items, c.support, c.count, c.score),
            |c, i, s| {
                c.index = Some(i);
                c.score = s;
            },
        );
        self.note_baseline(&expected);
        self.notes.customers_with_attribute = coverage;
    }

    /// Fills the index of the top attributes and the notes about the baseline.
    pub(crate) fn note_baseline(&mut self, expected: &Expected<'_>) {
        let mut unknown = Vec::new();
        for attribute in &mut self.top_attributes {
            let item = attribute.item();
            attribute.index = expected.of(&item).map(|e| attribute.frequency / e);
            if attribute.index.is_none() {
                unknown.push(item);
            }
        }
        self.notes.population_size = expected.baseline.population_size;
        self.notes.baseline = Some(expected.baseline.kind());
        self.notes.index_unknown = unknown;
        self.refresh_messages();
    }
}

/// Re-ranks pairs or clusters against the population once its baseline is known.
///
/// Lift among the customers alone cannot see what sets the customers apart: when 90 % of them
/// share each of a segment's traits, those traits look independent *among the customers* (lift
/// ≈ 1) although together they are a hundred times more common than in the population. With a
/// baseline the score becomes `support · ln(index)`, `index = support / Π expected(i)` — the
/// same mutual-information term as before, measured against the population instead of the
/// customers. Sets whose items the baseline does not fully cover keep their score and rank after
/// the covered ones. Ties: larger count, then the smaller item list.
fn rerank<T>(
    rows: &mut [T],
    expected: &Expected<'_>,
    view: impl Fn(&T) -> (&Vec<Item>, f64, u64, f64),
    set: impl Fn(&mut T, f64, f64),
) {
    for row in rows.iter_mut() {
        let (items, support, _, _) = view(row);
        let product: Option<f64> = items.iter().map(|i| expected.of(i)).product();
        if let Some(product) = product.filter(|e| *e > 0.0) {
            let index = support / product;
            set(row, index, support * index.ln());
        }
    }
    let covered = |items: &[Item]| items.iter().all(|i| expected.of(i).is_some());
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
