//! The contract every population provider speaks.
//!
//! Shapes follow the upstream (Watt Data V1 tools) so the embedded population, the remote MCP
//! client and the MCP server built on the embedded population all exchange the same JSON.
//! It also holds the normal forms and digests identifiers are matched in (`normalize`), which
//! every side that sends or matches identifiers must agree on. Nothing in this crate does I/O.

mod audience;
mod cluster;
mod error;
mod expression_terms;
mod identity;
mod normalize;
mod person;
mod provider;
mod rank;
mod records;
mod resolve_calls;
mod traced;

pub use audience::*;
pub use cluster::*;
pub use error::*;
pub use expression_terms::*;
pub use identity::*;
pub use normalize::*;
pub use person::*;
pub use provider::*;
pub use rank::*;
pub use records::*;
pub use resolve_calls::*;
pub use traced::Traced;
