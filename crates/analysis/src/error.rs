/// Why an analysis could not be produced.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnalysisError {
    /// The configuration is out of range; `message` says which field and why.
    #[error("invalid analysis configuration: {message}")]
    InvalidConfig { message: String },
    /// No profile was added.
    #[error("no customers to analyse")]
    NoCustomers,
    /// Profiles were added but none had a single analysable trait (every field was a contact
    /// or identity field, excluded, or empty).
    #[error("none of the {customers} customers has an analysable trait")]
    NoTraits { customers: u64 },
    /// More customers, attributes or distinct traits than the engine indexes (all are numbered
    /// with 32 bits); `message` says which.
    #[error("input too large: {message}")]
    TooLarge { message: String },
}
