//! What a job can tell its caller about why it matched few customers, why an audience came out
//! empty, or what its analysis could not measure: warnings with a stable code, a sentence and
//! counts. Counts only: a warning never holds an identifier or a profile's values.
//!
//! The detectors live in `diagnostics` (the identifiers as submitted, the resolution, the
//! analysis) and `worker::diagnose` (the audiences); this file is their shape alone, low in
//! the crate so that a job's problem can carry them too.

use icp_contract::{HashType, IdType};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The stable code of a warning (new codes may be added; a code's meaning never changes):
/// `low_resolution` (fewer than half the identifiers matched, overall or in a group; `groups`,
/// `causes`), `hashed_sent_as_plaintext`, `plaintext_sent_as_hashed`, `wrong_digest_length`
/// (`looks_like`), `phone_country_code`, `phone_punctuation`, `malformed_email`, `duplicates`
/// (in the identifiers as submitted: `id_type`, `hash_type`, `count` of `of`, `left_out`),
/// `audience_empty`, `audience_tiny` (below the larger of 100 persons and 0.01 % of the
/// population, and below half the size planned; `audience`), `baseline_unknown`, `baseline_partial`, `traits_capped`,
/// `customers_without_traits`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum WarningCode {
    /// Fewer than half the identifiers sent matched a person, overall or in one
    /// `(id_type, hash_type)` group: `groups` holds each group's rate, `causes` the codes of
    /// the other warnings that may explain it.
    LowResolution,
    /// Values of a `plaintext` group that look like hex digests (32, 40 or 64 hex digits):
    /// hashed values sent with `hash_type: plaintext`. `looks_like` is the hash type their
    /// length fits.
    HashedSentAsPlaintext,
    /// Values of a hashed group that are not hex but read as a plaintext identifier of their
    /// type: plaintext sent with a hash type.
    PlaintextSentAsHashed,
    /// Hex values of a hashed group whose length does not fit its `hash_type`
    /// (`looks_like` names the hash type it does fit, if any).
    WrongDigestLength,
    /// Phones carrying a country code (`+…`, `00…` or more than 10 digits). `+1` is dropped
    /// before matching; others cannot be matched (`left_out`).
    PhoneCountryCode,
    /// Phones with spaces or punctuation. They are reduced to digits before matching, but
    /// hashed phones must be hashed from 10 digits alone.
    PhonePunctuation,
    /// Emails without one `@` between a local part and a domain with a dot (`left_out`: those
    /// without any `@`, which cannot be sent).
    MalformedEmail,
    /// Values that repeat an earlier one of their group once normalised: sent once.
    Duplicates,
    /// An audience the provider counts 0 persons in.
    AudienceEmpty,
    /// An audience smaller than `threshold` (the larger of 100 persons and 0.01 % of the
    /// population) and than half the size the planner expected of it.
    AudienceTiny,
    /// The provider gave no population size and no trait sizes: no index could be measured.
    BaselineUnknown,
    /// Indexes measured without a population size (among persons whose attribute is known),
    /// or some top traits' sizes unknown (`count` of them).
    BaselinePartial,
    /// Attributes with so many values that only the most frequent entered the pair and
    /// cluster stages (`attributes`).
    TraitsCapped,
    /// Customers whose profile had no trait to analyse (`count` of `of`).
    CustomersWithoutTraits,
}

impl WarningCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LowResolution => "low_resolution",
            Self::HashedSentAsPlaintext => "hashed_sent_as_plaintext",
            Self::PlaintextSentAsHashed => "plaintext_sent_as_hashed",
            Self::WrongDigestLength => "wrong_digest_length",
            Self::PhoneCountryCode => "phone_country_code",
            Self::PhonePunctuation => "phone_punctuation",
            Self::MalformedEmail => "malformed_email",
            Self::Duplicates => "duplicates",
            Self::AudienceEmpty => "audience_empty",
            Self::AudienceTiny => "audience_tiny",
            Self::BaselineUnknown => "baseline_unknown",
            Self::BaselinePartial => "baseline_partial",
            Self::TraitsCapped => "traits_capped",
            Self::CustomersWithoutTraits => "customers_without_traits",
        }
    }

    /// The codes found when the job is created, from the identifiers as submitted.
    pub const INTAKE: [WarningCode; 7] = [
        Self::HashedSentAsPlaintext,
        Self::PlaintextSentAsHashed,
        Self::WrongDigestLength,
        Self::PhoneCountryCode,
        Self::PhonePunctuation,
        Self::MalformedEmail,
        Self::Duplicates,
    ];
    /// The codes the analysis finds.
    pub const ANALYSIS: [WarningCode; 4] = [
        Self::BaselineUnknown,
        Self::BaselinePartial,
        Self::TraitsCapped,
        Self::CustomersWithoutTraits,
    ];
    /// The codes the find stage finds.
    pub const AUDIENCES: [WarningCode; 2] = [Self::AudienceEmpty, Self::AudienceTiny];
}

/// One thing the caller may want to act on. Which fields are set depends on `code`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Warning {
    pub code: WarningCode,
    /// What was found and what to do about it, in a sentence.
    pub message: String,
    /// The group of identifiers it is about, as submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_type: Option<IdType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_type: Option<HashType>,
    /// How many values, customers or persons it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// Out of how many (values submitted in the group, customers, identifiers sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub of: Option<u64>,
    /// Of `count`, the values that could not be sent at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_out: Option<u64>,
    /// The hash type the values' length fits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub looks_like: Option<HashType>,
    /// `low_resolution`: the overall rate, matched / sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// `low_resolution`: each group's rate, as sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupResolution>,
    /// `low_resolution`: the codes of the job's warnings that may explain it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<WarningCode>,
    /// `traits_capped`: the attributes capped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<String>,
    /// `audience_empty`, `audience_tiny`: what made it so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<AudienceDiagnosis>,
}

impl Warning {
    /// A warning of `code` with its sentence and no figures yet.
    pub fn new(code: WarningCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            id_type: None,
            hash_type: None,
            count: None,
            of: None,
            left_out: None,
            looks_like: None,
            rate: None,
            groups: Vec::new(),
            causes: Vec::new(),
            attributes: Vec::new(),
            audience: None,
        }
    }

    /// About the group `(id_type, hash_type)`: `count` of its `of` values.
    pub fn in_group(mut self, id_type: IdType, hash_type: HashType, count: u64, of: u64) -> Self {
        self.id_type = Some(id_type);
        self.hash_type = Some(hash_type);
        self.count = Some(count);
        self.of = Some(of);
        self
    }
}

/// How many identifiers of one `(id_type, hash_type)`, as sent to the provider, matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GroupResolution {
    pub id_type: IdType,
    /// The hash type the values were sent with (`sha256` when the service hashed them).
    pub hash_type: HashType,
    /// Distinct values sent.
    pub sent: u64,
    /// Values that matched a person.
    pub matched: u64,
    /// `matched / sent`.
    pub rate: f64,
}

/// Why an audience came out empty or tiny: the size of each term, of the terms ANDed left to
/// right, and of the terms ORed, so the caller knows which trait to loosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AudienceDiagnosis {
    /// The audience: a strategy's name.
    pub audience: String,
    /// Persons the provider counts for it (within `location`, when the job has one).
    pub total: u64,
    /// The size below which it is tiny.
    pub threshold: u64,
    /// The expression's terms (its top-level conjuncts, or its disjuncts when it is one OR),
    /// each with its size, within `location` when the job has one.
    pub terms: Vec<TermSize>,
    /// The size of the first 2, 3, … terms ANDed (left to right); empty for an OR.
    pub partial_and: Vec<u64>,
    /// The term after which the AND was empty (`location` when every term is empty there but
    /// the expression is not without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emptied_by: Option<String>,
    /// The size of the terms ORed instead.
    pub or_total: u64,
    /// The expression's size without the job's `location` (absent when it has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub without_location: Option<u64>,
    /// Terms beyond the most measured (8), left out of `terms`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub terms_not_measured: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One term of an audience's expression and its size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TermSize {
    /// The term in `name=value` form (an OR of traits in parentheses).
    pub term: String,
    pub size: u64,
}
