//! Exact ICP analysis of enriched customer profiles.
//!
//! Profiles stream in one at a time as flat `attribute → value` pairs (the `domains` map of
//! `get_person`); [`Analyzer::finish`] turns them into an [`Analysis`]:
//!
//! - **top attributes** — count and frequency of every trait, and its index against the
//!   population once a [`Baseline`] is applied;
//! - **top intersections** — every pair of traits above the minimum support with its lift;
//! - **multi-attribute clusters** — closed itemsets of 3 or more traits (the ICP);
//! - **audiences** — `precision`, `reach` and `hybrid` boolean expressions over the traits
//!   ([`Analysis::audiences`]), rendered with cluster hashes once the map stage knows them.
//!
//! Counts are exact integers (never sampled) and the output is deterministic. Mining uses a
//! vertical layout: one dense bitset per frequent trait, itemset counts are popcounts of ANDs
//! (depth-first, Eclat style), so the cost is a handful of linear scans over memory.
//!
//! The crate is pure: no I/O, no async. Definitions follow `DESIGN.md` §3.

mod analysis;
mod analyzer;
mod audience;
mod baseline;
mod bitset;
mod config;
mod contact;
mod error;
mod item;
mod mine;
mod rank;
pub mod synthetic;

pub use analysis::{Analysis, AnalysisNotes, CappedAttribute, Cluster, Intersection, TopAttribute};
pub use analyzer::Analyzer;
pub use audience::{AudienceConfig, AudiencePlan, Expr, Strategy};
pub use baseline::Baseline;
pub use config::AnalysisConfig;
pub use contact::is_contact_attribute;
pub use error::AnalysisError;
pub use item::Item;
pub use mine::{Itemset, Mined};
