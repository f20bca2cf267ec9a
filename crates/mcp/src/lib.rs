//! The Watt Data population provider over MCP, and the MCP server that serves any provider.
//!
//! - [`WattProvider`]: an MCP Streamable HTTP client (its own transport on reqwest) implementing
//!   [`icp_contract::PopulationProvider`], with request splitting, bounded concurrency, retries
//!   with backoff and jitter, export downloads, counters and the workflow's trace ids.
//! - [`mcp_router`]: any provider (the embedded population) served as an MCP server with the same
//!   tool names and shapes, plus the `/exports/{token}` downloads its answers point to.
//! - With the `test-support` feature, for tests and benches only: `faults`, a test upstream that
//!   injects the faults remote APIs have; `testkit`, a small deterministic population;
//!   `bench_env`, the benches' knobs.
//!
//! The modules, bottom-up (each imports only modules listed before it):
//! 1. shared by client and server, importing nothing of the crate: `jsonrpc` (the envelope and
//!    error codes), `streamable_http` (the session header, protocol revisions), `config`,
//!    `stats`, `trace_log`, `batching` (resolve calls split and merged), `export_rows` (export
//!    files' formats);
//! 2. the client: `payload` (a tool's answer read), `download` (export files), `session` (one
//!    MCP session), `provider` ([`WattProvider`]);
//! 3. the server: `server` (its own files are listed bottom-up in its module doc);
//! 4. with `test-support`: `testkit` and `bench_env` (importing nothing), `faults` (over `server`).

mod batching;
#[cfg(feature = "test-support")]
pub mod bench_env;
mod config;
mod download;
pub mod export_rows;
#[cfg(feature = "test-support")]
pub mod faults;
mod jsonrpc;
mod payload;
mod provider;
mod server;
mod session;
mod stats;
mod streamable_http;
#[cfg(feature = "test-support")]
pub mod testkit;
mod trace_log;

pub use batching::{merge_resolve, plan_resolve_calls};
pub use config::{ConfigError, Secret, WattConfig};
pub use provider::WattProvider;
pub use server::{ServeConfig, TOOL_NAMES, mcp_router};
pub use stats::CallStats;
pub use trace_log::TraceEntry;
