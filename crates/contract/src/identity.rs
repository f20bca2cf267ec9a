use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::{ExportFormat, ExportRef};

/// The most identifier groups one `resolve_identities` call may carry.
pub const MAX_RESOLVE_GROUPS_PER_CALL: usize = 50;
/// The most values one identifier group may carry.
pub const MAX_RESOLVE_VALUES_PER_GROUP: usize = 3_000;

/// A person's id in the provider's population.
///
/// The upstream writes it as a number in some answers and as a string in others
/// (`get_person` profiles); both parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct PersonId(pub u64);

impl fmt::Display for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for PersonId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A visitor, not an untagged enum: that would buffer every id before parsing it, and
        // checkpoints and exports carry hundreds of thousands of them.
        struct Id;
        impl serde::de::Visitor<'_> for Id {
            type Value = PersonId;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a person id: a number, or a string holding one")
            }

            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<PersonId, E> {
                Ok(PersonId(n))
            }

            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<PersonId, E> {
                u64::try_from(n)
                    .map(PersonId)
                    .map_err(|_| E::custom(format!("person_id {n} is negative")))
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<PersonId, E> {
                s.trim()
                    .parse()
                    .map(PersonId)
                    .map_err(|_| E::custom(format!("person_id {s:?} is not a number")))
            }
        }
        d.deserialize_any(Id)
    }
}

/// Serialises a person id as a string, the way `get_person` profiles carry it.
pub fn person_id_as_string<S: serde::Serializer>(id: &PersonId, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&id.0)
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum IdType {
    Email,
    Phone,
    Address,
    Maid,
}

impl IdType {
    pub const ALL: [IdType; 4] = [IdType::Email, IdType::Phone, IdType::Address, IdType::Maid];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Address => "address",
            Self::Maid => "maid",
        }
    }
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum HashType {
    Plaintext,
    Md5,
    Sha1,
    Sha256,
}

impl HashType {
    pub const ALL: [HashType; 4] = [
        HashType::Plaintext,
        HashType::Md5,
        HashType::Sha1,
        HashType::Sha256,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Md5 => "md5",
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
        }
    }
}

/// One group of identifiers of one type and hashing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
// Unknown fields are refused: a misspelt field must not quietly be ignored.
#[serde(deny_unknown_fields)]
pub struct IdentifierGroup {
    pub id_type: IdType,
    pub hash_type: HashType,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResolveRequest {
    pub multi_identifiers: Vec<IdentifierGroup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ExportFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
}

/// Which submitted identifier matched, e.g. `criterion_type = "email_sha256"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IdentityMatch {
    pub criterion_type: String,
    pub criterion_value: String,
    pub quality_score: f64,
}

/// One resolved person with every submitted identifier that led to them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Identity {
    pub person_id: PersonId,
    pub overall_quality_score: f64,
    pub matches: Vec<IdentityMatch>,
    /// The person's known identifiers by type (`email`, `phone`, `address`, `maid`).
    #[serde(default)]
    pub identifiers: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResolveStats {
    pub requested: u64,
    pub resolved: u64,
    pub rate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResolveResponse {
    #[serde(default)]
    pub identities: Vec<Identity>,
    pub stats: ResolveStats,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_trace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    /// Distinct identifiers matched, by `criterion_type` (`email_sha256`): counted by
    /// [`ResolveResponse::keep_persons_only`] before it drops the matches. Not part of the
    /// upstream's answer.
    #[serde(skip)]
    pub matched_by_criterion: BTreeMap<String, u64>,
}

impl ResolveResponse {
    /// Distinct identifiers the matches name, by `criterion_type`.
    pub fn count_matched(&self) -> BTreeMap<String, u64> {
        let mut seen: std::collections::HashSet<(&str, &str)> = Default::default();
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        for m in self.identities.iter().flat_map(|i| &i.matches) {
            if seen.insert((&m.criterion_type, &m.criterion_value)) {
                *out.entry(m.criterion_type.clone()).or_default() += 1;
            }
        }
        out
    }

    /// What `resolve_persons` answers: each identity's matches and identifiers dropped, how
    /// many identifiers of each criterion type matched kept in `matched_by_criterion`.
    pub fn keep_persons_only(&mut self) {
        if self.matched_by_criterion.is_empty() {
            self.matched_by_criterion = self.count_matched();
        }
        for identity in &mut self.identities {
            identity.matches.clear();
            identity.identifiers.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn person_ids_parse_from_numbers_and_strings() {
        let parse = |json: &str| serde_json::from_str::<PersonId>(json);
        assert_eq!(parse("42").unwrap(), PersonId(42));
        assert_eq!(parse("\" 42 \"").unwrap(), PersonId(42));
        assert_eq!(parse(&u64::MAX.to_string()).unwrap(), PersonId(u64::MAX));
        let ids: Vec<(PersonId, f64)> = serde_json::from_str("[[7, 0.5], [\"8\", 1.0]]").unwrap();
        assert_eq!(ids, vec![(PersonId(7), 0.5), (PersonId(8), 1.0)]);
        for bad in ["-1", "1.5", "\"x7\"", "null", "[]"] {
            assert!(parse(bad).is_err(), "{bad} parsed");
        }
        assert!(parse("-1").unwrap_err().to_string().contains("negative"));
    }
}
