//! Random tokens: session ids, export URLs, and the trace and workflow ids of answers.

use rand::Rng;

/// 128 random bits as 32 hex digits.
pub(crate) fn random_token() -> String {
    format!("{:032x}", rand::rng().random::<u128>())
}
