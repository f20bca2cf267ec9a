//! Knobs of the benches that drive the MCP client against the fault layer (this crate's
//! `resolve_enrich`, the root package's `remote_job`), read from the environment.

use std::str::FromStr;

/// The variable parsed as `T`, or `default` when it is unset or does not parse.
pub fn env_or<T: FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The variable as a comma list of numbers (entries that do not parse are skipped), or
/// `default` in the same form when it is unset.
pub fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect()
}
