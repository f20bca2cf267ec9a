use std::collections::HashMap;

use crate::{Analysis, Item};

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
    pub fn apply_baseline(&mut self, baseline: &Baseline) {
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
