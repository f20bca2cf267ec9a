//! Ranking a provider's whole population against the customers: not an upstream tool (the
//! Watt Data MCP server has none), an operation a provider that holds its population can offer
//! ([`crate::PopulationProvider::rank_persons`]). Scores stay inside the provider: what comes
//! back is tiers, each with its size, its cut-off and its members' records.

use crate::{IdType, Location, PersonId, RecordBatch};

/// The shares of the eligible persons the ranked tiers hold: the top 1 %, 2 %, 5 % and 10 %.
pub const RANKED_FRACTIONS: [f64; 4] = [0.01, 0.02, 0.05, 0.10];

/// What a trait weighs in a person's score.
#[derive(Debug, Clone, PartialEq)]
pub struct RankWeight {
    pub name: String,
    pub value: String,
    pub weight: f64,
}

/// Score every person by the sum of the weights of their traits, leave out `exclude` (and,
/// when given, everyone outside `location`), and cut the best `fractions` of the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct RankPersonsRequest {
    pub weights: Vec<RankWeight>,
    /// Each in (0, 1]; ascending, so that each tier is a prefix of the next.
    pub fractions: Vec<f64>,
    pub exclude: Vec<PersonId>,
    /// `(name, value)` traits whose holders are left out too (a job's `options.exclude`, the
    /// `AND NOT` terms of its boolean audiences); a trait the population lacks leaves no one out.
    pub exclude_traits: Vec<(String, String)>,
    pub location: Option<Location>,
    /// The contact data each record carries.
    pub identifier_type: IdType,
    pub workflow_id: Option<String>,
}

/// The tiers of one ranking. Tiers nest: tier *i* is the first `tiers[i].size` records.
#[derive(Debug, Clone, PartialEq)]
pub struct RankPersonsResponse {
    /// Persons ranked: the population (within the location) less the excluded.
    pub eligible: u64,
    /// Weights that named a trait the population does not have (ignored).
    pub unknown_traits: u64,
    /// One per requested fraction, in the order asked.
    pub tiers: Vec<RankedTierAnswer>,
    /// The largest tier's records, best first (ties by the provider's row order).
    pub records: RecordBatch,
    pub workflow_id: Option<String>,
    pub tool_trace_id: Option<String>,
}

/// One tier: how many, the lowest score in it, and how many of its members hold each
/// weighted trait (aligned with the request's `weights`), so the caller can say which traits
/// weigh most within it.
#[derive(Debug, Clone, PartialEq)]
pub struct RankedTierAnswer {
    pub fraction: f64,
    pub size: u64,
    /// `None` for an empty tier.
    pub cutoff: Option<f64>,
    pub trait_counts: Vec<u64>,
}

/// A tier's size among `eligible` persons: rounded up, so a tier is never empty while anyone
/// is eligible.
pub fn tier_size(fraction: f64, eligible: u64) -> u64 {
    ((fraction * eligible as f64).ceil() as u64).min(eligible)
}

/// Ask for a seeded sample of the population's persons, each described by which of `traits`
/// they hold: the rows a lookalike model fits the customers against
/// ([`crate::PopulationProvider::sample_traits`]). The same request on the same population
/// gives the same persons and rows.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleTraitsRequest {
    /// Persons to draw (all of them when the population is smaller).
    pub size: usize,
    pub seed: u64,
    /// The traits (`name`, `value`, as clusters and `get_person` name them) a sampled person
    /// is described by; a trait the population does not have is held by no one.
    pub traits: Vec<(String, String)>,
    /// Persons drawn who are in here are left out of the answer (it may then hold fewer than
    /// `size`): the customers, so that they are not their own counter-examples.
    pub exclude: Vec<PersonId>,
    pub workflow_id: Option<String>,
}

/// The sampled persons, in the provider's row order: each as the positions in the request's
/// `traits` of the traits they hold, ascending (a trait named twice: its first position).
/// What a `get_person` profile of the person would say of those traits, without the profile.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleTraitsResponse {
    pub rows: Vec<Vec<u32>>,
    /// Persons the sample was drawn from.
    pub population: u64,
    pub workflow_id: Option<String>,
    pub tool_trace_id: Option<String>,
}
