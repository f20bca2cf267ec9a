//! Identifiers put in the one form they leave the service in, when a job is created: plaintext
//! values in their normal form (`icp_contract::normalize_identifier`, the same the embedded
//! population matches in), hashed values as lower-case hex, and — with
//! `options.hash_identifiers` — plaintext emails, phones and mobile ad ids hashed here. Values
//! with no normal form are left out and duplicates after normalisation dropped, so every
//! provider receives the same values; what happened to each `(id_type, hash_type)` is reported
//! on the job.

use std::collections::{BTreeMap, HashSet};

use icp_contract::{HashType, IdType, IdentifierGroup, digest_hex, normalize_identifier};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::options::IdentifierHashing;
use crate::problem::FieldError;

/// The longest identifier accepted, in characters (a postal address is the longest kind).
/// Characters rather than bytes, so that the spec's `maxLength` states the same bound.
pub const MAX_VALUE_LEN: usize = 512;
/// The reason code of a value longer than `MAX_VALUE_LEN`.
const TOO_LONG: &str = "too_long";
/// A NUL character: never part of an identifier, and PostgreSQL cannot store it in `jsonb`.
const NUL_CHARACTER: &str = "nul_character";

/// What normalisation did to the values of one `(id_type, hash_type)` as submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GroupNormalization {
    pub id_type: IdType,
    /// The hash type the values were submitted with.
    pub hash_type: HashType,
    /// The hash type they are sent to the provider with (`sha256` when the service hashed them).
    pub sent_as: HashType,
    /// Values submitted.
    pub received: u64,
    /// Kept values whose normal form differs from what was submitted (before any hashing by
    /// the service).
    pub changed: u64,
    /// Values left out because they have no normal form.
    pub rejected: u64,
    /// `rejected` by reason: `empty`, `too_long`, `nul_character`, `not_an_email`,
    /// `not_a_phone`, `not_an_address`, `not_hex`, `wrong_digest_length`.
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Values dropped because an earlier one had the same normal form.
    pub duplicates: u64,
    /// Values sent: `received - rejected - duplicates`.
    pub kept: u64,
}

/// What normalisation did, per `(id_type, hash_type)` submitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Normalization {
    pub groups: Vec<GroupNormalization>,
}

impl Normalization {
    pub fn kept(&self) -> u64 {
        self.groups.iter().map(|g| g.kept).sum()
    }
}

/// The identifiers as they will be sent, what happened to them, and — for the problem when
/// nothing is left — where the first rejected value of each group and reason was.
pub struct Normalized {
    pub groups: Vec<IdentifierGroup>,
    pub report: Normalization,
    pub rejections: Vec<FieldError>,
}

/// The hash type a group is sent with.
fn sent_as(id_type: IdType, hash: HashType, hashing: IdentifierHashing) -> HashType {
    match (hashing, hash, id_type) {
        // Addresses stay plaintext: the upstream matches them in plaintext only.
        (
            IdentifierHashing::Sha256,
            HashType::Plaintext,
            IdType::Email | IdType::Phone | IdType::Maid,
        ) => HashType::Sha256,
        _ => hash,
    }
}

/// The form `raw` is sent in, or the code of the reason it is left out. This is the one rule
/// for a single value: `api::identifier_schema` states it in the spec and is tested against it.
pub fn normal_form(id_type: IdType, hash: HashType, raw: &str) -> Result<String, &'static str> {
    if raw.chars().count() > MAX_VALUE_LEN {
        Err(TOO_LONG)
    } else if raw.contains('\0') {
        Err(NUL_CHARACTER)
    } else {
        normalize_identifier(id_type, hash, raw).map_err(|r| r.code())
    }
}

/// Normalises every group; `locate(g, v)` names value `v` of group `g` for a problem.
pub fn normalize_groups(
    groups: &[IdentifierGroup],
    hashing: IdentifierHashing,
    locate: impl Fn(usize, usize) -> String,
) -> Normalized {
    let mut reports: BTreeMap<(IdType, HashType), GroupNormalization> = BTreeMap::new();
    let mut out: BTreeMap<(IdType, HashType), (Vec<String>, HashSet<String>)> = BTreeMap::new();
    let mut first_rejection: BTreeMap<(usize, &'static str), (String, u64)> = BTreeMap::new();
    for (g, group) in groups.iter().enumerate() {
        let (id_type, hash) = (group.id_type, group.hash_type);
        let sent = sent_as(id_type, hash, hashing);
        let report = reports
            .entry((id_type, hash))
            .or_insert_with(|| GroupNormalization {
                id_type,
                hash_type: hash,
                sent_as: sent,
                received: 0,
                changed: 0,
                rejected: 0,
                rejected_by_reason: BTreeMap::new(),
                duplicates: 0,
                kept: 0,
            });
        let (values, seen) = out.entry((id_type, sent)).or_default();
        for (v, raw) in group.values.iter().enumerate() {
            report.received += 1;
            let normal = match normal_form(id_type, hash, raw) {
                Ok(n) => n,
                Err(code) => {
                    report.rejected += 1;
                    *report
                        .rejected_by_reason
                        .entry(code.to_owned())
                        .or_default() += 1;
                    first_rejection
                        .entry((g, code))
                        .or_insert_with(|| (locate(g, v), 0))
                        .1 += 1;
                    continue;
                }
            };
            let changed = normal != *raw;
            let normal = if sent == hash {
                normal
            } else {
                digest_hex(sent, &normal)
            };
            if seen.contains(&normal) {
                report.duplicates += 1;
                continue;
            }
            report.changed += u64::from(changed);
            report.kept += 1;
            seen.insert(normal.clone());
            values.push(normal);
        }
    }
    let rejections = first_rejection
        .into_iter()
        .map(|((g, code), (location, count))| {
            let group = &groups[g];
            FieldError::new(
                location,
                format!(
                    "{count} of the {} {} ({}) values rejected as {code}; this is the first",
                    group.values.len(),
                    group.id_type.as_str(),
                    group.hash_type.as_str(),
                ),
            )
        })
        .collect();
    Normalized {
        groups: out
            .into_iter()
            .filter(|(_, (values, _))| !values.is_empty())
            .map(|((id_type, hash_type), (values, _))| IdentifierGroup {
                id_type,
                hash_type,
                values,
            })
            .collect(),
        report: Normalization {
            groups: reports.into_values().collect(),
        },
        rejections,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(id_type: IdType, hash_type: HashType, values: &[&str]) -> IdentifierGroup {
        IdentifierGroup {
            id_type,
            hash_type,
            values: values.iter().map(|v| (*v).to_owned()).collect(),
        }
    }

    #[test]
    fn counts_changes_rejections_and_duplicates() {
        let groups = [group(
            IdType::Phone,
            HashType::Plaintext,
            &[
                "5125550134",
                "+1 (512) 555-0134",
                "555-0134",
                "",
                "(512) 555-0199",
            ],
        )];
        let n = normalize_groups(&groups, IdentifierHashing::None, |g, v| format!("{g}/{v}"));
        assert_eq!(n.groups[0].values, ["5125550134", "5125550199"]);
        let r = &n.report.groups[0];
        assert_eq!(
            (r.received, r.changed, r.rejected, r.duplicates, r.kept),
            (5, 1, 2, 1, 2)
        );
        assert_eq!(r.rejected_by_reason["not_a_phone"], 1);
        assert_eq!(r.rejected_by_reason["empty"], 1);
        // By group, then reason code.
        assert_eq!(n.rejections[0].location, "0/3");
        assert_eq!(n.rejections[1].location, "0/2");
    }

    #[test]
    fn hashing_merges_with_submitted_digests() {
        let digest = digest_hex(HashType::Sha256, "a@b.com");
        let groups = [
            group(IdType::Email, HashType::Plaintext, &[" A@b.com", "c@d.com"]),
            group(
                IdType::Email,
                HashType::Sha256,
                &[&digest.to_ascii_uppercase()],
            ),
            group(IdType::Address, HashType::Plaintext, &["1 Main St."]),
        ];
        let n = normalize_groups(&groups, IdentifierHashing::Sha256, |_, _| String::new());
        assert_eq!(n.groups.len(), 2);
        assert_eq!(n.groups[0].hash_type, HashType::Sha256);
        assert_eq!(
            n.groups[0].values,
            [digest.clone(), digest_hex(HashType::Sha256, "c@d.com")]
        );
        assert_eq!(n.groups[1].values, ["1 main st"]);
        assert_eq!(n.report.groups[1].duplicates, 1);
        assert_eq!(n.report.groups[1].changed, 0);
        assert_eq!(n.report.kept(), 3);
    }
}
