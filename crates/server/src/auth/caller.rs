//! Who is calling. Every `/v1` handler takes a `Caller` (extracted in `api::caller`) and passes
//! its owner to the store, so that a key sees only its own jobs.

/// Who is calling: the id of their API key, or nobody when the service runs without keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    key_id: Option<String>,
}

impl Caller {
    pub(super) fn anonymous() -> Self {
        Self { key_id: None }
    }

    pub(super) fn key(id: String) -> Self {
        Self { key_id: Some(id) }
    }

    /// The owner a job of this caller carries, and the restriction on which jobs it may see:
    /// `None` (no keys in use) sees every job.
    pub fn owner(&self) -> Option<&str> {
        self.key_id.as_deref()
    }
}
