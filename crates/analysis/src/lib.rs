//! Exact ICP analysis of enriched customer profiles.
//!
//! Profiles stream in one at a time as flat `attribute → value` pairs (the `domains` map of
//! `get_person`); [`Analyzer::finish`] turns them into an [`Analysis`]:
//!
//! - **top attributes** — count and frequency of every trait, and its index against the
//!   population once a [`Baseline`] is applied;
//! - **top intersections** — every pair of traits above the minimum support with its lift;
//! - **multi-attribute clusters** — closed itemsets of 3 or more traits (the ICP);
//! - **audiences** — `precision` (AND of 3+), `standard` (AND of 2), `hybrid` (OR of ANDs) and
//!   `reach` (OR) boolean expressions over the traits, each chosen for its index against the
//!   population within a size band ([`Mined::plan_audiences`]; [`Analysis::audiences`] is the
//!   fallback without a population), rendered with cluster hashes once the map stage knows them.
//!
//! Counts are exact integers (never sampled) and the output is deterministic. Mining uses a
//! vertical layout: one dense bitset per frequent trait, itemset counts are popcounts of ANDs
//! (depth-first, Eclat style). Going down the lattice, a prefix's extensions are *projected* onto
//! the prefix's own customers (BMI2 `pext`), so the deep levels, where nearly all the ANDs are,
//! run over a few percent of the rows instead of all of them.
//!
//! **Ranking.** Pairs and clusters are ranked by `support · ln(lift)` among the customers (see
//! the rule in `rank.rs`, repeated on [`Intersection::score`]). Against the population, once a
//! [`Baseline`] gives each trait's prevalence, the score becomes `support · ln(index)`,
//! `index = support / Π expected(i)` (`expected` is the prevalence, or its known-share form
//! under **Definitions**): how much more common the whole set is among the customers
//! than in a population where its traits were independent (the index of one trait, below, is
//! the same for a set of one). Sets with a trait the baseline lacks keep their lift
//! score and rank after the covered ones; ties go to the larger count, then the smaller item
//! list. Give the baseline **before** ranking — [`Mined::analysis_with`] or
//! [`Analyzer::finish_with_baseline`] — and every frequent pair and closed cluster of the lattice
//! competes before the top ones are taken. [`Analysis::apply_baseline`] applies the same rule
//! afterwards, but only to the pairs and clusters the analysis kept: a segment whose traits are
//! common among the customers (lift ≈ 1, so it ranks low among them) yet rare in the population
//! can fall outside that pool and is then lost. [`Mined::baseline_items`] lists the traits whose
//! population sizes the baseline should hold.
//!
//! **Modules**, bottom-up; each imports only from the ones listed before it:
//!
//! 1. `item`, `error`, `contact`, `rank`, `bitset`: a trait, the errors, which fields are contact
//!    data, lift and score, the bitset kernels. They import nothing from the crate.
//!    `lookalike_model` (naive-Bayes log-lift weights for ranking a population) uses `item` only;
//!    `segment_index` (the traits that set a segment of the customers apart from the rest, by
//!    their index against the rest) uses `contact` only;
//!    `lookalike_logistic` (the regularised logistic regression fitter over sparse rows) nothing.
//! 2. `config` (the [`AnalysisConfig`]) and `report`: the [`Analysis`] and the types it is made of.
//! 3. `baseline` and `audience`: the population [`Baseline`] and re-ranking against it, and the
//!    audience expressions, both over a finished report.
//! 4. `rows`: profiles interned into the ascending rows of each trait, what the miner reads.
//! 5. `mine`: the [`Mined`] lattice of frequent itemsets over dense bitsets.
//! 6. `summary`: the lattice summarised into the report (top attributes, ranked pairs, closed
//!    clusters); `lookalike_fit`: the lookalike weights of the lattice against a baseline
//!    (naive Bayes) or against a sample of the population (logistic regression).
//! 7. `plan`: the audience planner over the lattice, its report and the population's sizes.
//! 8. `analyzer`: the [`Analyzer`], profiles in and the report out.
//!
//! [`synthetic`] is seeded data for tests and benchmarks (the miner's unit tests, `tests/`,
//! `benches/` and the `icp_bench` example); the engine itself never uses it.
//!
//! **Definitions.** N customers (enriched profiles); for a set S of `attribute = value` items,
//! `count(S)` the customers having all of S and `supp(S) = count(S) / N`.
//!
//! - Contact and identity fields (names, emails, phones, addresses, maids, ids, anything
//!   numbered like `email2`) are never traits ([`is_contact_attribute`]).
//! - **Frequency** of an item: `supp({a})`.
//! - **Index** of an item: `supp({a}) / (cluster size / population size)`. When the provider
//!   gives no population size (the reference upstream gives only cluster sizes), the
//!   **known-share** baseline: the persons whose attribute `a` is known are `Σ size(a = *)`,
//!   the customers whose `a` is known `known(a)`, and the index of `a = v` is
//!   `(count(a = v) / known(a)) / (size(a = v) / Σ size(a = *))`. For a set S, `supp(S) /
//!   Π expected(i)`, `expected(a = v) = size(a = v) / Σ size(a = *) · known(a) / N` (with a
//!   population size, `size / population size`). An attribute with one value is a flag
//!   (absence means "no"): it is measured among all persons, estimated as the largest
//!   `Σ size(a = *)` listed, and all customers. Where every person and customer has every
//!   attribute the two agree. The report's `notes.baseline` says which one was used.
//! - **Pair lift**: `supp({a,b}) / (supp({a}) · supp({b}))`; above 1, they co-occur more than
//!   chance.
//! - **Clusters** (3+ items): closed frequent itemsets above the minimum support, with support
//!   and lift `supp(S) / Π supp({i})`. Two values of one attribute never form a set.
//! - Counts are exact and ties are broken stably; the figures agree with mlxtend's to
//!   floating-point precision (`tests/mlxtend_check.rs`).
//!
//! The crate is pure: no I/O, no async.

mod analyzer;
mod audience;
mod baseline;
mod bitset;
mod config;
mod contact;
mod error;
mod item;
mod lookalike_fit;
mod lookalike_logistic;
mod lookalike_model;
mod mine;
mod plan;
mod rank;
mod report;
mod rows;
mod segment_index;
mod summary;
pub mod synthetic;
pub mod trait_expression;

pub use analyzer::Analyzer;
pub use audience::{AudienceBands, AudienceConfig, AudiencePlan, Band, Expected, Expr, Strategy};
pub use baseline::Baseline;
pub use config::AnalysisConfig;
pub use contact::is_contact_attribute;
pub use error::AnalysisError;
pub use item::Item;
pub use lookalike_fit::logistic_weights;
pub use lookalike_logistic::{DEFAULT_PENALTY, LogisticFit, MAX_ROWS, SAMPLE_SEED, fit_logistic};
pub use lookalike_model::{AttributeCounts, DEFAULT_SMOOTHING, TraitWeight, naive_bayes_weights};
pub use mine::{Itemset, Mined};
pub use plan::{AudienceNote, AudienceNoteCode, AudiencePlanning};
pub use report::{
    Analysis, AnalysisNotes, BaselineKind, CappedAttribute, Cluster, Intersection, TopAttribute,
};
pub use segment_index::{DistinguishingTrait, TraitCounts, distinguishing_traits};
pub use trait_expression::{
    MAX_EXPRESSION_CHARS, TraitExpression, TraitExpressionError, parse_trait_expression,
};
