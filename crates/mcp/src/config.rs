//! Typed configuration of the Watt Data client, read from the environment.

use std::fmt;
use std::time::Duration;

/// A credential that never prints: `Debug` and `Display` show `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw value, for the one place that must send it (the `Authorization` header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Everything the client needs to reach the upstream MCP server and how hard to try.
#[derive(Debug, Clone)]
pub struct WattConfig {
    /// The MCP endpoint, e.g. `https://api.wattdata.ai/v1/mcp`.
    pub url: String,
    pub api_key: Secret,
    /// Limit on one tool call (one HTTP exchange), after which it counts as a transient fault.
    pub timeout: Duration,
    /// Retries after the first attempt of one call (so `max_retries + 1` attempts at most).
    pub max_retries: u32,
    /// First backoff delay; doubled on each retry, jittered, capped at `backoff_cap`.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// The longest `Retry-After` honoured; a longer one is cut to this.
    pub max_retry_after: Duration,
    /// Tool calls in flight at once, across all callers of one provider.
    pub concurrency: usize,
    /// How many times an expired or refused export URL re-runs the request that made it.
    pub export_reruns: u32,
    /// Largest JSON answer accepted from one call.
    pub max_response_bytes: usize,
    /// The population size to give `list_clusters` answers that carry none. The reference
    /// upstream gives cluster sizes only; indexes are then measured against the persons whose
    /// attribute is known (the known share). Set it to index against the whole population.
    pub population_size: Option<u64>,
}

/// Defaults that suit the real upstream: a few seconds of patience, 1 s / 2 s / 4 s backoff.
impl WattConfig {
    pub fn new(url: impl Into<String>, api_key: Secret) -> Self {
        Self {
            url: url.into(),
            api_key,
            timeout: Duration::from_secs(60),
            max_retries: 5,
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
            concurrency: 8,
            export_reruns: 2,
            max_response_bytes: 256 * 1024 * 1024,
            population_size: None,
        }
    }

    /// Reads `WATT_API_URL` and `WATT_API_KEY` (both required) and the optional tuning variables
    /// `WATT_TIMEOUT_MS`, `WATT_MAX_RETRIES`, `WATT_BACKOFF_BASE_MS`, `WATT_BACKOFF_CAP_MS`,
    /// `WATT_MAX_RETRY_AFTER_MS`, `WATT_CONCURRENCY`, `WATT_EXPORT_RERUNS`, `WATT_MAX_RESPONSE_BYTES`,
    /// `WATT_POPULATION_SIZE`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Same as [`Self::from_env`] over any variable source (tests, layered config files).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let url = get("WATT_API_URL")
            .filter(|v| !v.trim().is_empty())
            .ok_or(ConfigError::Missing("WATT_API_URL"))?;
        let key = get("WATT_API_KEY")
            .filter(|v| !v.trim().is_empty())
            .ok_or(ConfigError::Missing("WATT_API_KEY"))?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                name: "WATT_API_URL",
                reason: "must start with http:// or https://".into(),
            });
        }
        let mut cfg = Self::new(url.trim(), Secret::new(key.trim()));
        let num = |name: &'static str| -> Result<Option<u64>, ConfigError> {
            match get(name) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| ConfigError::Invalid {
                        name,
                        reason: format!("{v:?} is not a non-negative integer"),
                    }),
            }
        };
        if let Some(ms) = num("WATT_TIMEOUT_MS")? {
            cfg.timeout = Duration::from_millis(ms.max(1));
        }
        if let Some(n) = num("WATT_MAX_RETRIES")? {
            cfg.max_retries = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(ms) = num("WATT_BACKOFF_BASE_MS")? {
            cfg.backoff_base = Duration::from_millis(ms);
        }
        if let Some(ms) = num("WATT_BACKOFF_CAP_MS")? {
            cfg.backoff_cap = Duration::from_millis(ms);
        }
        if let Some(ms) = num("WATT_MAX_RETRY_AFTER_MS")? {
            cfg.max_retry_after = Duration::from_millis(ms);
        }
        if let Some(n) = num("WATT_CONCURRENCY")? {
            cfg.concurrency = usize::try_from(n).unwrap_or(usize::MAX).max(1);
        }
        if let Some(n) = num("WATT_EXPORT_RERUNS")? {
            cfg.export_reruns = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(n) = num("WATT_MAX_RESPONSE_BYTES")? {
            cfg.max_response_bytes = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(n) = num("WATT_POPULATION_SIZE")? {
            if n == 0 {
                return Err(ConfigError::Invalid {
                    name: "WATT_POPULATION_SIZE",
                    reason: "must be a positive integer".into(),
                });
            }
            cfg.population_size = Some(n);
        }
        Ok(cfg)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            owned
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let cfg = WattConfig::from_lookup(vars(&[
            ("WATT_API_URL", "https://api.example/v1/mcp"),
            ("WATT_API_KEY", "sk-very-secret-123"),
        ]))
        .unwrap();
        let shown = format!("{cfg:?} {}", cfg.api_key);
        assert!(!shown.contains("sk-very-secret-123"), "{shown}");
        assert!(shown.contains("[redacted]"));
        assert_eq!(cfg.api_key.expose(), "sk-very-secret-123");
    }

    #[test]
    fn tuning_variables_parse_and_bad_ones_are_typed_errors() {
        let cfg = WattConfig::from_lookup(vars(&[
            ("WATT_API_URL", "http://127.0.0.1:1/mcp"),
            ("WATT_API_KEY", "k"),
            ("WATT_TIMEOUT_MS", "250"),
            ("WATT_CONCURRENCY", "3"),
            ("WATT_POPULATION_SIZE", "250000000"),
        ]))
        .unwrap();
        assert_eq!(cfg.timeout, Duration::from_millis(250));
        assert_eq!(cfg.concurrency, 3);
        assert_eq!(cfg.population_size, Some(250_000_000));
        assert!(matches!(
            WattConfig::from_lookup(vars(&[
                ("WATT_API_URL", "http://x/mcp"),
                ("WATT_API_KEY", "k"),
                ("WATT_POPULATION_SIZE", "0"),
            ])),
            Err(ConfigError::Invalid {
                name: "WATT_POPULATION_SIZE",
                ..
            })
        ));
        assert_eq!(
            WattConfig::from_lookup(vars(&[("WATT_API_KEY", "k")])).unwrap_err(),
            ConfigError::Missing("WATT_API_URL")
        );
        assert!(matches!(
            WattConfig::from_lookup(vars(&[
                ("WATT_API_URL", "http://x/mcp"),
                ("WATT_API_KEY", "k"),
                ("WATT_CONCURRENCY", "many"),
            ])),
            Err(ConfigError::Invalid {
                name: "WATT_CONCURRENCY",
                ..
            })
        ));
    }
}
