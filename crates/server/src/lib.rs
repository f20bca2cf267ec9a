//! The ICP job service: the HTTP API and the worker pool that runs each job through
//! resolve → enrich → analyze → map → find against a population provider.
//!
//! Modules, bottom-up (each uses only modules listed before it):
//! - no dependencies: `rfc3339`, `warning` (what a job tells its caller about its input and
//!   results), `problem` (problem+json and `ApiError`; uses `warning`), `webhook_secret`,
//!   `config`, `callback` (where a webhook may go);
//! - `auth` (API keys and who is calling; uses the store only),
//! - `decode` (bodies and query strings into typed values, errors that say where),
//!   `export_tally` (one audience export read: customers out, limit, chunks),
//! - `options` (a job's options), `normalization` (identifiers in the form they are sent in),
//!   `diagnostics` (warnings found in the identifiers, the resolution and the analysis),
//!   `input` (a job's identifiers, JSON or CSV), `model` (jobs and results as the API shows
//!   them), `validation` (an audience's sample set against the customers; uses `model` and
//!   `export_tally`), `report` (a job's result as an HTML page), `state` (what handlers share);
//! - `worker` (the pool and one file per stage), `webhook` (delivering job-end messages) and
//!   `api` (one router per resource), which do not use each other;
//! - `app`: the service started and stopped.

pub mod api;
pub mod app;
pub mod auth;
pub mod callback;
pub mod config;
pub mod cors;
pub mod decode;
pub mod diagnostics;
pub mod export_tally;
pub mod input;
pub mod metered;
pub mod metrics;
pub mod model;
pub mod normalization;
pub mod options;
pub mod problem;
pub mod report;
pub mod rfc3339;
pub mod state;
pub mod validation;
pub mod warning;
pub mod webhook;
pub mod webhook_secret;
pub mod worker;

pub use app::{RunningService, start};
pub use config::{ServiceConfig, WebhookConfig, WorkerConfig};
