use std::time::Duration;

/// What went wrong in a provider call, classified by whether trying again can help.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// The request itself is wrong (bad expression, too many ids, unknown cluster …).
    /// Never retried: the same request fails the same way.
    #[error("invalid request: {message}")]
    Validation { message: String },
    /// The thing asked for does not exist (unknown cluster id or hash, unknown person).
    #[error("not found: {message}")]
    NotFound { message: String },
    /// The upstream asked us to slow down; `retry_after` is its `Retry-After` when it gave one.
    #[error("rate limited")]
    RateLimited { retry_after: Option<Duration> },
    /// A transient fault: 5xx, a dropped connection, a timeout, a lost session.
    #[error("provider unavailable: {message}")]
    Unavailable { message: String },
    /// An export URL expired or was refused; re-running the request gives a fresh one.
    #[error("export expired: {message}")]
    ExportExpired { message: String },
    /// The answer could not be understood (protocol violation, unexpected shape).
    #[error("protocol error: {message}")]
    Protocol { message: String },
    /// Authentication was refused. Not retried: a wrong key stays wrong.
    #[error("unauthorized: {message}")]
    Unauthorized { message: String },
}

impl ProviderError {
    pub fn validation(message: impl Into<String>) -> Self {
        Self::Validation {
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound {
            message: message.into(),
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Unavailable {
            message: message.into(),
        }
    }

    pub fn protocol(message: impl Into<String>) -> Self {
        Self::Protocol {
            message: message.into(),
        }
    }

    /// What kind of failure this is, in words that quote nothing of the call: what logs and a
    /// job's error say. The message can hold the upstream's own text (which may echo an
    /// identifier it was sent) or a parser's quote of the answer (a profile's values), so it
    /// stays out of both.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Validation { .. } => "invalid request",
            Self::NotFound { .. } => "not found",
            Self::RateLimited { .. } => "rate limited",
            Self::Unavailable { .. } => "unavailable",
            Self::ExportExpired { .. } => "export expired",
            Self::Protocol { .. } => "protocol error",
            Self::Unauthorized { .. } => "unauthorized",
        }
    }

    /// Whether the same call may succeed if made again later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. } | Self::Unavailable { .. } | Self::ExportExpired { .. }
        )
    }
}
