//! Why a stage could not finish, and how that reads as the job's problem.

use icp_contract::ProviderError;
use icp_store::StoreError;

use crate::problem::Problem;

/// Why a stage could not finish.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{stage} stage: the provider answered: {source}")]
    Provider {
        stage: &'static str,
        source: ProviderError,
    },
    #[error(
        "no customer could be resolved with quality ≥ {min_quality}: {requested} identifiers, {resolved} matched"
    )]
    NoCustomers {
        requested: u64,
        resolved: u64,
        min_quality: f64,
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
        Problem::new(&slug, self.title(), 0, self.to_string())
    }
}

pub(super) fn provider(stage: &'static str) -> impl Fn(ProviderError) -> StageError {
    move |source| StageError::Provider { stage, source }
}

pub(super) fn corrupt(e: serde_json::Error) -> StageError {
    StageError::Corrupt(e.to_string())
}

pub(super) fn stopped(e: tokio::task::JoinError) -> StageError {
    StageError::Analysis(format!("the analysis task stopped: {e}"))
}
