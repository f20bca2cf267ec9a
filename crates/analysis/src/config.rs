use serde::{Deserialize, Serialize};

use crate::error::AnalysisError;

/// The largest cluster the miner can represent; itemsets are fixed-size arrays of this length.
pub const MAX_CLUSTER_SIZE_LIMIT: usize = 8;

/// How an analysis runs and how much of it is reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct AnalysisConfig {
    /// Fraction of customers (0 < s ≤ 1) a pair or cluster must cover to be reported.
    /// The count threshold is `ceil(min_support · customers)`, as in mlxtend.
    pub min_support: f64,
    /// Largest multi-attribute cluster mined, 3 to 8.
    pub max_cluster_size: usize,
    /// How many single traits `top_attributes` lists.
    pub top_attributes: usize,
    /// How many pairs `top_intersections` lists.
    pub top_intersections: usize,
    /// How many clusters `multi_attribute_clusters` lists.
    pub top_clusters: usize,
    /// Attribute names never analysed, on top of the contact and identity fields that never are
    /// (compared case-insensitively).
    pub exclude_attributes: Vec<String>,
    /// An attribute with more distinct values than this (a zip code, a birthday) is capped:
    /// only its this-many most frequent values enter the pair and cluster stages. All its values
    /// still count in `top_attributes`, and the result lists the attribute as capped.
    pub max_values_per_attribute: usize,
    /// Upper bound on the frequent itemsets of 3+ traits kept in memory. When the data would
    /// produce more, the minimum support is raised until it fits and the result says so.
    pub max_itemsets: usize,
    /// Worker threads for mining; 0 uses the machine's available parallelism.
    pub threads: usize,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        Self {
            min_support: 0.02,
            max_cluster_size: 5,
            top_attributes: 50,
            top_intersections: 50,
            top_clusters: 20,
            exclude_attributes: Vec::new(),
            max_values_per_attribute: 50,
            max_itemsets: 4_000_000,
            threads: 0,
        }
    }
}

impl AnalysisConfig {
    /// Checks every field's range; [`crate::Analyzer::finish`] does the same, so a caller can
    /// reject a bad configuration before collecting any profile.
    pub fn validate(&self) -> Result<(), AnalysisError> {
        let bad = |message: String| Err(AnalysisError::InvalidConfig { message });
        if !(self.min_support.is_finite() && self.min_support > 0.0 && self.min_support <= 1.0) {
            return bad(format!(
                "min_support must be in (0, 1], got {}",
                self.min_support
            ));
        }
        if !(3..=MAX_CLUSTER_SIZE_LIMIT).contains(&self.max_cluster_size) {
            return bad(format!(
                "max_cluster_size must be between 3 and {MAX_CLUSTER_SIZE_LIMIT}, got {}",
                self.max_cluster_size
            ));
        }
        if self.max_values_per_attribute == 0 {
            return bad("max_values_per_attribute must be at least 1".into());
        }
        if self.max_itemsets == 0 {
            return bad("max_itemsets must be at least 1".into());
        }
        Ok(())
    }

    /// The count a set needs out of `customers` to be frequent: `ceil(min_support · customers)`,
    /// never below 1 so an empty set of customers cannot make everything frequent.
    pub(crate) fn min_count(&self, customers: u64) -> u64 {
        ((self.min_support * customers as f64).ceil() as u64).max(1)
    }

    pub(crate) fn thread_count(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }
}
