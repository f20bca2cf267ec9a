//! Why a stage could not finish, and how that reads as the job's problem.

use icp_contract::ProviderError;
use icp_store::StoreError;

use crate::problem::Problem;
use crate::warning::Warning;

/// Why a stage could not finish. What it displays goes to the log and into the job's error:
/// it names the failure without quoting the provider's message or the stored data, either of
/// which can hold an identifier or a profile's values.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{stage} stage: the provider answered: {}", .source.kind())]
    Provider {
        stage: &'static str,
        source: ProviderError,
    },
    #[error(
        "no customer could be resolved with quality ≥ {min_quality}: {requested} identifiers, {resolved} matched{}",
        if .warnings.is_empty() { "" } else { "; see the warnings for what may have kept them from matching" }
    )]
    NoCustomers {
        requested: u64,
        resolved: u64,
        min_quality: f64,
        /// The job's warnings: the diagnosis the problem carries.
        warnings: Vec<Warning>,
    },
    #[error("analysis failed: {0}")]
    Analysis(String),
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    #[error("the job's stored data is unreadable: {0}")]
    Corrupt(String),
}

impl StageError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Provider { source, .. } => source.is_retryable(),
            Self::Store(StoreError::LeaseLost) => false,
            Self::Store(_) => true,
            Self::NoCustomers { .. } | Self::Analysis(_) | Self::Corrupt(_) => false,
        }
    }

    fn slug(&self) -> &'static str {
        match self {
            Self::Provider { source, .. } if source.is_retryable() => "provider-unavailable",
            Self::Provider { .. } => "provider-rejected",
            Self::NoCustomers { .. } => "no-customers",
            Self::Analysis(_) => "analysis",
            Self::Store(_) => "storage",
            Self::Corrupt(_) => "corrupt",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::Provider { .. } => "The population provider failed",
            Self::NoCustomers { .. } => "No customers resolved",
            Self::Analysis(_) => "The analysis failed",
            Self::Store(_) => "Storage failed",
            Self::Corrupt(_) => "Stored job data unreadable",
        }
    }

    /// The job's `error`: a problem whose status is 0, since no HTTP exchange failed.
    pub fn to_problem(&self) -> Problem {
        let slug = format!("job-{}", self.slug());
        let mut problem = Problem::new(&slug, self.title(), 0, self.to_string());
        if let Self::NoCustomers { warnings, .. } = self {
            problem.warnings = warnings.clone();
        }
        problem
    }
}

pub(super) fn provider(stage: &'static str) -> impl Fn(ProviderError) -> StageError {
    move |source| StageError::Provider { stage, source }
}

/// Where the stored JSON broke, not what it held (serde's message quotes the offending value).
pub(super) fn corrupt(e: serde_json::Error) -> StageError {
    StageError::Corrupt(format!(
        "{:?} error at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    ))
}

pub(super) fn stopped(e: tokio::task::JoinError) -> StageError {
    StageError::Analysis(format!("the analysis task stopped: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neither_the_log_nor_the_job_error_quotes_the_provider_or_the_stored_data() {
        let refused = provider("resolve")(ProviderError::validation(
            "no person matches the email jane.doe@example.com",
        ));
        let unreadable = corrupt(serde_json::from_str::<u64>(r#""555 Main St""#).unwrap_err());
        for err in [refused, unreadable] {
            let shown = format!("{err} {:?}", err.to_problem().detail);
            assert!(!shown.contains("jane"), "{shown}");
            assert!(!shown.contains("Main St"), "{shown}");
        }
        let refused = provider("resolve")(ProviderError::validation("x"));
        assert_eq!(
            refused.to_string(),
            "resolve stage: the provider answered: invalid request"
        );
    }
}
