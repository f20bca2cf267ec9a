//! Embedded population engine.
//!
//! A population held in memory — generated from a seed with correlated, persona-driven traits,
//! or imported from a CSV a team brings — that answers the upstream provider's operations
//! (`resolve_identities`, `get_person`, `list_clusters`, `get_cluster`, `find_persons`) with
//! the upstream's names, semantics and JSON shapes. Cluster membership lives in compressed
//! bitmaps; contact data of generated persons is recomputed from the seed instead of stored.
//! No HTTP here: [`EmbeddedProvider`] puts it behind `icp_contract::PopulationProvider`.
//!
//! Modules, bottom-up (each uses only modules listed before it; identifier normalisation and
//! hashing are `icp_contract`'s):
//! - no dependencies: `rng` (seeded streams, stable hashes), `parallel` (thread counts), `metros`
//!   and `persona_table` (the generator's data), `expression` (the `find_persons` language);
//! - `row_map`, `geo` (radius search), `contacts` (contact data), `personas` (latent facts),
//!   `attributes` (the published traits), `id_index` (the identifier index);
//! - `columns`: the [`Population`] in memory, which every module after it works on;
//! - building one: `generate`, `import`;
//! - the operations: `clusters`, `evaluate`, `resolve`, `profile`, `audience` (`find_persons`
//!   and exports), `customers` (sample customer lists), `rank` (scores and ranked tiers);
//! - `provider`: [`EmbeddedProvider`].

mod attributes;
mod audience;
mod clusters;
mod columns;
mod contacts;
mod customers;
mod evaluate;
pub mod expression;
mod generate;
mod geo;
mod id_index;
mod import;
mod metros;
mod parallel;
mod persona_table;
mod personas;
mod profile;
mod provider;
mod rank;
mod resolve;
mod rng;
mod row_map;

pub use audience::{Audience, AudienceEncoder, csv_columns};
pub use clusters::DEFAULT_CLUSTER_PAGE;
pub use columns::{CLUSTER_ID_BASE, PERSON_ID_BASE, Population, cluster_hash};
pub use contacts::{MAX_EMAILS, MAX_MAIDS, MAX_PHONES};
pub use customers::{CustomerContact, write_customer_csv};
pub use expression::{Expr, ParseError};
pub use generate::GeneratorConfig;
pub use geo::great_circle_distance;
pub use import::ImportError;
pub use personas::Segment;
pub use provider::EmbeddedProvider;
pub use rank::{RankError, RankedTier, RankedTiers, TraitWeight};
