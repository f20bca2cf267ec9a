//! The ICP job service: the HTTP API and the worker pool that runs each job through
//! resolve → enrich → analyze → map → find against a population provider.

pub mod api;
pub mod app;
pub mod config;
pub mod input;
pub mod model;
pub mod options;
pub mod problem;
pub mod rfc3339;
pub mod state;
pub mod worker;

pub use app::{RunningService, start};
pub use config::{ServiceConfig, WorkerConfig};
