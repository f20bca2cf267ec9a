//! The report: what the customers have in common.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::item::Item;

/// One trait and how common it is among the customers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TopAttribute {
    pub name: String,
    pub value: String,
    /// Customers with this trait.
    pub count: u64,
    /// `count / customers`.
    pub frequency: f64,
    /// `frequency / (cluster size / population size)`: how many times more common the trait is
    /// among the customers than in the population. Absent until a population baseline that
    /// covers the trait is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<f64>,
}

impl TopAttribute {
    pub fn item(&self) -> Item {
        Item::new(&self.name, &self.value)
    }
}

/// Two traits that occur together, with how much more often than chance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Intersection {
    /// Exactly two traits, sorted by name then value.
    pub items: Vec<Item>,
    /// Customers with both traits.
    pub count: u64,
    /// `count / customers`.
    pub support: f64,
    /// `support / (frequency(a) · frequency(b))`; above 1 the traits meet more often than chance.
    pub lift: f64,
    /// `support · ln(lift)`, the ranking score (see the crate's ranking rule); once a
    /// baseline is applied, `support · ln(index)`.
    pub score: f64,
    /// `support / Π prevalence(i)`: how much more common the pair is among the customers than
    /// in a population where its traits were independent. Known once a baseline is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<f64>,
}

/// A multi-attribute cluster: 3 or more traits many customers share, a candidate ICP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Cluster {
    /// The traits, sorted by name then value; never two values of one attribute.
    pub items: Vec<Item>,
    /// Customers with every trait of the cluster.
    pub count: u64,
    /// `count / customers`.
    pub support: f64,
    /// `support / Π frequency(i)`; above 1 the traits meet more often than chance.
    pub lift: f64,
    /// `support · ln(lift)`, the ranking score; once a baseline is applied,
    /// `support · ln(index)` (see `Analysis::apply_baseline`).
    pub score: f64,
    /// `support / Π prevalence(i)`: how much more common the whole set is among the customers
    /// than in a population where its traits were independent. Known once a baseline is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<f64>,
}

/// An attribute with so many values that only its most frequent ones entered the pair and
/// cluster stages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CappedAttribute {
    pub name: String,
    pub distinct_values: u64,
    pub kept_values: u64,
}

/// Which population baseline the indexes were measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BaselineKind {
    /// The provider gave a population size: the index of `a = v` is
    /// `frequency / (size(a = v) / population size)`.
    PopulationSize,
    /// The provider gave no population size: the index of `a = v` is the customers' share
    /// among customers whose attribute `a` is known over the population's share among persons
    /// whose `a` is known, `size(a = v) / Σ size(a = *)`.
    KnownShare,
}

/// How the analysis was made, and what it left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AnalysisNotes {
    /// The minimum support asked for.
    pub min_support: f64,
    /// The count a pair or cluster needed: `ceil(support · customers)`.
    pub min_count: u64,
    /// Set when the itemset budget forced a higher support than asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_min_support: Option<f64>,
    pub max_cluster_size: usize,
    /// Customers whose profile had no analysable trait (they still count in `customers`).
    pub customers_without_traits: u64,
    /// Distinct attributes analysed.
    pub attributes: u64,
    /// Distinct `attribute = value` traits seen.
    pub distinct_traits: u64,
    /// Traits at or above the minimum count that entered the pair and cluster stages.
    pub frequent_traits: u64,
    /// Pairs at or above the minimum count (all are candidates for `top_intersections`).
    pub frequent_pairs: u64,
    /// Sets of 3 or more traits at or above the minimum count, closed or not.
    pub frequent_itemsets: u64,
    /// Attribute names left out as contact/identity data or by configuration.
    pub excluded_attributes: Vec<String>,
    /// Further excluded attribute names not listed above.
    pub excluded_attributes_unlisted: u64,
    pub capped_attributes: Vec<CappedAttribute>,
    /// The population size of the applied baseline, if one was applied and the provider gave
    /// a population size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population_size: Option<u64>,
    /// Which baseline the indexes were measured against; absent until one is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineKind>,
    /// Customers whose attribute is known (have some value of it), for each attribute of the
    /// traits the report can mention: the customers' side of the `known_share` index.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub customers_with_attribute: BTreeMap<String, u64>,
    /// Top attributes whose index is unknown because the applied baseline lacks their size.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub index_unknown: Vec<Item>,
    /// The notes above in plain sentences, for people.
    pub messages: Vec<String>,
}

/// What the customers have in common. Every float is finite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Analysis {
    /// Customers (profiles) analysed.
    pub customers: u64,
    /// Most frequent traits first; ties by name, then value.
    pub top_attributes: Vec<TopAttribute>,
    /// Pairs ranked by score (see the crate's ranking rule).
    pub top_intersections: Vec<Intersection>,
    /// Closed sets of 3+ traits ranked by score: no reported cluster has a superset (within
    /// `max_cluster_size`) with the same customers, and sets of the maximum size that share
    /// their customers with a larger closed set are reported once.
    pub multi_attribute_clusters: Vec<Cluster>,
    pub notes: AnalysisNotes,
}

impl Analysis {
    /// Rewrites `notes.messages` from the structured notes.
    pub(crate) fn refresh_messages(&mut self) {
        let notes = &self.notes;
        let mut messages = Vec::new();
        if notes.customers_without_traits > 0 {
            messages.push(format!(
                "{} of {} customers had no analysable trait; they count in every frequency.",
                notes.customers_without_traits, self.customers
            ));
        }
        let excluded = notes.excluded_attributes.len() as u64 + notes.excluded_attributes_unlisted;
        if excluded > 0 {
            messages.push(format!(
                "{excluded} attributes were left out as contact or identity data or by configuration."
            ));
        }
        for c in &notes.capped_attributes {
            messages.push(format!(
                "Attribute {} has {} distinct values; only its {} most frequent entered pairs and clusters.",
                c.name, c.distinct_values, c.kept_values
            ));
        }
        if let Some(effective) = notes.effective_min_support {
            messages.push(format!(
                "The data held more than the itemset budget at support {}; support was raised to {effective} (count {}).",
                notes.min_support, notes.min_count
            ));
        }
        if self.multi_attribute_clusters.is_empty() {
            messages.push(format!(
                "No set of 3 or more traits is shared by at least {} customers.",
                notes.min_count
            ));
        }
        // Reports stored before `baseline` was noted carry only the population size.
        let baseline = notes
            .baseline
            .or(notes.population_size.map(|_| BaselineKind::PopulationSize));
        match baseline {
            None => messages
                .push("Index not computed: no population baseline has been applied.".to_owned()),
            Some(BaselineKind::PopulationSize) => {}
            Some(BaselineKind::KnownShare) => messages.push(
                "The provider gave no population size: each index compares the customers' share \
                 among customers whose attribute is known with the population's share among \
                 persons whose attribute is known (the sum of its values' cluster sizes; a \
                 single-valued flag, among all persons and customers)."
                    .to_owned(),
            ),
        }
        if baseline.is_some() && !notes.index_unknown.is_empty() {
            messages.push(format!(
                "Index unknown for {} top attributes the population baseline does not cover.",
                notes.index_unknown.len()
            ));
        }
        self.notes.messages = messages;
    }
}
