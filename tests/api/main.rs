//! The service end to end: the real server on 127.0.0.1:0, a database per test, SQLite always and
//! Postgres too when `ICP_TEST_DATABASE_URL` is set. One test binary, so the service and its
//! dependencies link once and the generated population is built once for every module.

mod audience_plan;
mod auth;
mod browser;
mod call_log;
mod child;
mod common;
mod cors;
mod crash_kill;
mod custom_audiences;
mod diagnostics;
mod endpoints;
mod events;
mod exclusions;
mod fuzz_spec;
mod hostile;
mod layering;
mod load;
mod log_format;
mod log_privacy;
mod metrics;
mod normalization;
mod otel_export;
mod outage;
mod pipeline;
mod population_size;
mod purge;
mod python_env;
mod python_sdk;
mod ranked;
mod remote_provider;
mod replicas;
mod report;
mod resume;
mod segments;
mod sigterm;
mod stored_work;
mod tcp_proxy;
mod validation;
mod webhooks;
