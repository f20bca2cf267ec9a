//! The worker pool and the pipeline it runs every job through, one file per stage.
//!
//! Bottom-up: `error` (why a stage stops), `cluster_cache` (listings kept between jobs) and
//! `outage` (waiting for the database to come back) →
//! `context` (what workers share) → `checkpoint` (one job's run and everything it persists) →
//! `accept`, `ahead`, `feeder`, `clusters` (pieces the stages share) → the stages
//! `resolve_enrich`, `analyze`, `map`, `find`, `segments` (each segment's ICP in the analyze
//! stage, its audiences in the find stage), `ranked` (the find stage's ranked audiences, after
//! the boolean ones), `validate` (each audience's sample set against the customers) →
//! `pipeline` (the stages in order) → `pool`
//! (claims, leases, retries).

mod accept;
mod ahead;
mod analyze;
mod checkpoint;
mod cluster_cache;
mod clusters;
mod context;
mod diagnose;
mod error;
mod feeder;
mod find;
mod map;
mod outage;
mod pipeline;
mod pool;
mod ranked;
mod resolve_enrich;
mod segments;
mod validate;

pub use cluster_cache::ClusterCache;
pub use context::WorkerContext;
pub use error::StageError;
pub use pool::spawn_pool;
