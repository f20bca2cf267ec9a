//! The warnings a job finds in its identifiers as submitted, in what resolution matched and in
//! what the analysis could measure (the audiences' are `worker::diagnose`). Each detector is a
//! pure function of counts; a warning holds counts and codes, never a value.

use std::collections::BTreeMap;

use icp_analysis::{Analysis, BaselineKind};
use icp_contract::{HashType, IdType, IdentifierGroup, digest_len};

use crate::normalization::{Normalization, normal_form};
use crate::warning::{GroupResolution, Warning, WarningCode};

/// Below this share of identifiers matched, resolution is reported as low (the reference
/// workflow's `stats.rate < 0.5`).
pub const LOW_RESOLUTION: f64 = 0.5;

/// The hash type whose hex digest has `len` digits.
fn digest_of_length(len: usize) -> Option<HashType> {
    [HashType::Md5, HashType::Sha1, HashType::Sha256]
        .into_iter()
        .find(|h| 2 * digest_len(*h) == len)
}

/// Hex digits only (either case), at least one.
fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The hash type a plaintext value looks hashed with: hex of a digest's length. A mobile ad id
/// may be 32 hex digits (a UUID without dashes), so for those only the longer digests count.
pub fn looks_hashed(id_type: IdType, value: &str) -> Option<HashType> {
    let t = value.trim();
    if !is_hex(t) {
        return None;
    }
    digest_of_length(t.len()).filter(|h| !(id_type == IdType::Maid && *h == HashType::Md5))
}

/// Whether an email has one `@` between a local part and a domain with a dot, and no space.
pub fn well_formed_email(value: &str) -> bool {
    let t = value.trim();
    let Some((local, domain)) = t.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !t.chars().any(char::is_whitespace)
}

/// Whether a phone carries a country code: a leading `+` or `00`, or more than 10 digits.
pub fn has_country_code(value: &str) -> bool {
    let t = value.trim();
    t.starts_with('+') || t.starts_with("00") || t.bytes().filter(u8::is_ascii_digit).count() > 10
}

/// Whether a phone holds anything but digits (a leading `+` aside).
pub fn has_punctuation(value: &str) -> bool {
    let t = value.trim();
    t.strip_prefix('+')
        .unwrap_or(t)
        .bytes()
        .any(|b| !b.is_ascii_digit())
}

/// What one `(id_type, hash_type)` as submitted holds that may keep it from matching.
#[derive(Debug, Default)]
struct Findings {
    received: u64,
    /// `(count, left out, hash types their length fits)` per code.
    by_code: BTreeMap<WarningCode, (u64, u64, BTreeMap<HashType, u64>)>,
}

impl Findings {
    fn add(&mut self, code: WarningCode, left_out: bool, looks_like: Option<HashType>) {
        let entry = self.by_code.entry(code).or_default();
        entry.0 += 1;
        entry.1 += u64::from(left_out);
        if let Some(h) = looks_like {
            *entry.2.entry(h).or_default() += 1;
        }
    }
}

/// The warnings of the identifiers as submitted (`groups`, before normalisation), with the
/// duplicates `report` counted.
pub fn intake_warnings(groups: &[IdentifierGroup], report: &Normalization) -> Vec<Warning> {
    let mut found: BTreeMap<(IdType, HashType), Findings> = BTreeMap::new();
    for group in groups {
        let (id_type, hash) = (group.id_type, group.hash_type);
        let f = found.entry((id_type, hash)).or_default();
        for raw in &group.values {
            f.received += 1;
            let left_out = normal_form(id_type, hash, raw).is_err();
            let t = raw.trim();
            if hash == HashType::Plaintext {
                if let Some(h) = looks_hashed(id_type, t) {
                    f.add(WarningCode::HashedSentAsPlaintext, left_out, Some(h));
                    continue;
                }
                match id_type {
                    IdType::Phone => {
                        if has_country_code(t) {
                            f.add(WarningCode::PhoneCountryCode, left_out, None);
                        }
                        if has_punctuation(t) && !t.is_empty() {
                            f.add(WarningCode::PhonePunctuation, left_out, None);
                        }
                    }
                    IdType::Email if !t.is_empty() && !well_formed_email(t) => {
                        f.add(WarningCode::MalformedEmail, left_out, None);
                    }
                    _ => {}
                }
            } else if is_hex(t) {
                if t.len() != 2 * digest_len(hash) {
                    let fits = digest_of_length(t.len());
                    f.add(WarningCode::WrongDigestLength, left_out, fits);
                }
            } else if !t.is_empty() && normal_form(id_type, HashType::Plaintext, t).is_ok() {
                f.add(WarningCode::PlaintextSentAsHashed, left_out, None);
            }
        }
    }
    let mut warnings = Vec::new();
    for ((id_type, hash), f) in found {
        for (code, (count, left_out, fits)) in f.by_code {
            let looks_like = fits
                .iter()
                .max_by_key(|(h, n)| (**n, std::cmp::Reverse(**h)))
                .map(|(h, _)| *h);
            let message =
                intake_message(code, id_type, hash, count, f.received, left_out, looks_like);
            let mut w = Warning::new(code, message).in_group(id_type, hash, count, f.received);
            w.left_out = Some(left_out);
            w.looks_like = looks_like;
            warnings.push(w);
        }
    }
    for g in report.groups.iter().filter(|g| g.duplicates > 0) {
        let message = format!(
            "{} of the {} {} ({}) values repeat an earlier one once normalised; each is sent once",
            g.duplicates,
            g.received,
            g.id_type.as_str(),
            g.hash_type.as_str()
        );
        warnings.push(Warning::new(WarningCode::Duplicates, message).in_group(
            g.id_type,
            g.hash_type,
            g.duplicates,
            g.received,
        ));
    }
    warnings
}

fn intake_message(
    code: WarningCode,
    id_type: IdType,
    hash: HashType,
    count: u64,
    of: u64,
    left_out: u64,
    looks_like: Option<HashType>,
) -> String {
    let (id, h) = (id_type.as_str(), hash.as_str());
    let fits = looks_like.map(HashType::as_str).unwrap_or("no hash type");
    match code {
        WarningCode::HashedSentAsPlaintext => format!(
            "{count} of the {of} {id} values sent as plaintext look like {fits} digests \
             ({left_out} could not be sent): hashed values sent as plaintext; send them with \
             hash_type {fits}"
        ),
        WarningCode::PlaintextSentAsHashed => format!(
            "{count} of the {of} {id} values sent as {h} are not hex digests but plaintext \
             {id}s ({left_out} could not be sent): send them with hash_type plaintext, or hash \
             their normal form"
        ),
        WarningCode::WrongDigestLength => format!(
            "{count} of the {of} {id} values sent as {h} are hex of a length that does not fit \
             {h} (they fit {fits}); {left_out} could not be sent: check the hash_type"
        ),
        WarningCode::PhoneCountryCode => format!(
            "{count} of the {of} phones carry a country code: +1 is dropped before matching, \
             others cannot be matched ({left_out} could not be sent); send 10 digits without a \
             country code"
        ),
        WarningCode::PhonePunctuation => format!(
            "{count} of the {of} phones hold spaces or punctuation ({left_out} could not be \
             sent): they are reduced to digits before matching, but send digits only, and hash \
             phones from their 10 digits alone"
        ),
        WarningCode::MalformedEmail => format!(
            "{count} of the {of} emails are malformed ({left_out} without an @ could not be \
             sent): check the list's email column"
        ),
        other => format!("{count} of the {of} {id} ({h}) values: {}", other.as_str()),
    }
}

/// Each group's resolution as sent, from the values `report` kept and rejected and the
/// distinct values matched by criterion type (`email_sha256`: id type and hash type as sent).
pub fn group_resolution(
    report: &Normalization,
    matched: &BTreeMap<String, u64>,
) -> Vec<(GroupResolution, u64)> {
    let mut groups: BTreeMap<(IdType, HashType), (u64, u64)> = BTreeMap::new();
    for g in &report.groups {
        let e = groups.entry((g.id_type, g.sent_as)).or_default();
        e.0 += g.kept;
        e.1 += g.rejected;
    }
    groups
        .into_iter()
        .map(|((id_type, hash_type), (sent, rejected))| {
            let key = format!("{}_{}", id_type.as_str(), hash_type.as_str());
            let matched = matched.get(&key).copied().unwrap_or(0).min(sent);
            let group = GroupResolution {
                id_type,
                hash_type,
                sent,
                matched,
                rate: ratio(matched, sent),
            };
            (group, rejected)
        })
        .collect()
}

fn ratio(n: u64, of: u64) -> f64 {
    if of == 0 { 0.0 } else { n as f64 / of as f64 }
}

/// The `low_resolution` warning, when fewer than half the identifiers matched overall or in
/// one group. A group's identifiers left out at intake count as unmatched: a list of hashed
/// phones sent as plaintext matches nobody even if the few values sent all match. `groups`
/// (with the values each left out) is empty when the provider does not say which identifier
/// matched; `intake` holds the warnings found when the job was created, whose codes are the
/// causes named.
pub fn resolution_warning(
    requested: u64,
    resolved: u64,
    groups: &[(GroupResolution, u64)],
    intake: &[Warning],
) -> Option<Warning> {
    let rejected: u64 = groups.iter().map(|(_, r)| r).sum();
    let overall = ratio(resolved, requested + rejected);
    let low_groups: Vec<&(GroupResolution, u64)> = groups
        .iter()
        .filter(|(g, r)| g.sent + r > 0 && ratio(g.matched, g.sent + r) < LOW_RESOLUTION)
        .collect();
    if overall >= LOW_RESOLUTION && low_groups.is_empty() {
        return None;
    }
    let mut causes: Vec<WarningCode> = intake
        .iter()
        .map(|w| w.code)
        .filter(|c| WarningCode::INTAKE.contains(c))
        .collect();
    causes.sort_unstable();
    causes.dedup();
    let mut message = format!(
        "{resolved} of the {} identifiers matched a person ({:.1} %",
        requested + rejected,
        overall * 100.0
    );
    if rejected > 0 {
        message.push_str(&format!("; {rejected} could not be sent"));
    }
    message.push(')');
    if !low_groups.is_empty() {
        let listed: Vec<String> = low_groups
            .iter()
            // Of what was submitted: values left out at intake count as unmatched, as in the
            // filter above (a group whose every value was left out reads "0 of 100", not "0 of 0").
            .map(|(g, left_out)| {
                format!(
                    "{} {} {} of {}",
                    g.id_type.as_str(),
                    g.hash_type.as_str(),
                    g.matched,
                    g.sent + left_out
                )
            })
            .collect();
        message.push_str(&format!("; below half: {}", listed.join(", ")));
    }
    if causes.is_empty() {
        message.push_str(
            "; no cause found in the values themselves: check they are this population's \
             customers and hashed from the normal form (trimmed, lower case, phones as 10 digits)",
        );
    } else {
        let named: Vec<&str> = causes.iter().map(|c| c.as_str()).collect();
        message.push_str(&format!("; possible causes: {}", named.join(", ")));
    }
    let mut w = Warning::new(WarningCode::LowResolution, message);
    w.count = Some(resolved);
    w.of = Some(requested + rejected);
    w.left_out = Some(rejected);
    w.rate = Some(overall);
    w.groups = groups.iter().map(|(g, _)| g.clone()).collect();
    w.causes = causes;
    Some(w)
}

/// What the analysis could not measure: the baseline unknown or partial, attributes capped,
/// customers without traits.
pub fn analysis_warnings(analysis: &Analysis) -> Vec<Warning> {
    let notes = &analysis.notes;
    let mut warnings = Vec::new();
    match notes.baseline {
        None => warnings.push(Warning::new(
            WarningCode::BaselineUnknown,
            "the provider gave neither a population size nor trait sizes: no index against the \
             population could be measured, and traits are ranked among the customers alone",
        )),
        Some(kind) => {
            let unknown = notes.index_unknown.len() as u64;
            if kind == BaselineKind::KnownShare || unknown > 0 {
                let mut message = String::new();
                if kind == BaselineKind::KnownShare {
                    message.push_str(
                        "the provider gave no population size: each index is measured among \
                         the persons whose attribute is known",
                    );
                }
                if unknown > 0 {
                    if !message.is_empty() {
                        message.push_str("; ");
                    }
                    message.push_str(&format!(
                        "{unknown} top traits have no population size, so no index"
                    ));
                }
                let mut w = Warning::new(WarningCode::BaselinePartial, message);
                w.count = Some(unknown);
                w.of = Some(analysis.top_attributes.len() as u64);
                warnings.push(w);
            }
        }
    }
    if !notes.capped_attributes.is_empty() {
        let attributes: Vec<String> = notes
            .capped_attributes
            .iter()
            .map(|c| c.name.clone())
            .collect();
        let mut w = Warning::new(
            WarningCode::TraitsCapped,
            format!(
                "{} attributes have so many values that only their most frequent entered the \
                 pairs and clusters: {}",
                attributes.len(),
                attributes.join(", ")
            ),
        );
        w.count = Some(attributes.len() as u64);
        w.attributes = attributes;
        warnings.push(w);
    }
    if notes.customers_without_traits > 0 {
        let mut w = Warning::new(
            WarningCode::CustomersWithoutTraits,
            format!(
                "{} of the {} customers had no trait to analyse: they count as customers but \
                 add nothing to the profile (check the enrichment domains)",
                notes.customers_without_traits, analysis.customers
            ),
        );
        w.count = Some(notes.customers_without_traits);
        w.of = Some(analysis.customers);
        warnings.push(w);
    }
    warnings
}

/// `list` with the warnings of `codes` replaced by `new`: a stage that runs again reports
/// once.
pub fn replace_warnings(list: &mut Vec<Warning>, codes: &[WarningCode], new: Vec<Warning>) {
    list.retain(|w| !codes.contains(&w.code));
    list.extend(new);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalization::normalize_groups;
    use crate::options::IdentifierHashing;
    use icp_contract::digest_hex;

    fn group(id_type: IdType, hash_type: HashType, values: &[String]) -> IdentifierGroup {
        IdentifierGroup {
            id_type,
            hash_type,
            values: values.to_vec(),
        }
    }

    fn warnings_of(groups: &[IdentifierGroup]) -> Vec<Warning> {
        let n = normalize_groups(groups, IdentifierHashing::None, |_, _| String::new());
        intake_warnings(groups, &n.report)
    }

    fn find(w: &[Warning], code: WarningCode) -> &Warning {
        w.iter()
            .find(|w| w.code == code)
            .unwrap_or_else(|| panic!("no {code:?} in {w:?}"))
    }

    #[test]
    fn hashed_phones_sent_as_plaintext_are_named() {
        let mut phones: Vec<String> = (0..30)
            .map(|i| digest_hex(HashType::Sha256, &format!("51255501{i:02}")))
            .collect();
        phones.push("5125550199".to_owned());
        let w = warnings_of(&[group(IdType::Phone, HashType::Plaintext, &phones)]);
        let hashed = find(&w, WarningCode::HashedSentAsPlaintext);
        assert_eq!((hashed.count, hashed.of), (Some(30), Some(31)));
        assert_eq!(hashed.looks_like, Some(HashType::Sha256));
        assert_eq!(hashed.id_type, Some(IdType::Phone));
        assert!(hashed.message.contains("sha256"), "{}", hashed.message);
        // Counted once, as hashed: not also as punctuation or a country code.
        assert!(
            w.iter()
                .all(|w| w.code == WarningCode::HashedSentAsPlaintext)
        );
        // No value in the sentence.
        assert!(!hashed.message.contains(&phones[0]));
    }

    #[test]
    fn plaintext_sent_as_hashed_and_wrong_lengths() {
        let md5 = digest_hex(HashType::Md5, "a@b.com");
        let values = vec![
            "jane@example.com".to_owned(),
            md5.clone(),
            md5,
            digest_hex(HashType::Sha256, "c@d.com"),
        ];
        let w = warnings_of(&[group(IdType::Email, HashType::Sha256, &values)]);
        let plain = find(&w, WarningCode::PlaintextSentAsHashed);
        assert_eq!((plain.count, plain.left_out), (Some(1), Some(1)));
        let wrong = find(&w, WarningCode::WrongDigestLength);
        assert_eq!((wrong.count, wrong.of), (Some(2), Some(4)));
        assert_eq!(wrong.looks_like, Some(HashType::Md5));
    }

    #[test]
    fn phones_with_country_codes_and_punctuation() {
        let values: Vec<String> = [
            "+1 (512) 555-0134",
            "15125550135",
            "+44 20 7946 0958",
            "512.555.0136",
            "5125550137",
        ]
        .map(String::from)
        .to_vec();
        let w = warnings_of(&[group(IdType::Phone, HashType::Plaintext, &values)]);
        let cc = find(&w, WarningCode::PhoneCountryCode);
        assert_eq!((cc.count, cc.left_out), (Some(3), Some(1)));
        let punct = find(&w, WarningCode::PhonePunctuation);
        assert_eq!((punct.count, punct.left_out), (Some(3), Some(1)));
    }

    #[test]
    fn malformed_emails_and_duplicates() {
        let values: Vec<String> = [
            "a@b.com",
            "A@B.com ",
            "nobody",
            "x@localhost",
            "two@@b.com",
            "c@d.com",
        ]
        .map(String::from)
        .to_vec();
        let w = warnings_of(&[group(IdType::Email, HashType::Plaintext, &values)]);
        let bad = find(&w, WarningCode::MalformedEmail);
        assert_eq!((bad.count, bad.left_out), (Some(3), Some(1)));
        let dup = find(&w, WarningCode::Duplicates);
        assert_eq!((dup.count, dup.of), (Some(1), Some(6)));
    }

    #[test]
    fn clean_identifiers_warn_of_nothing() {
        let emails: Vec<String> = ["a@b.com", "c@d.org"].map(String::from).to_vec();
        let hashed = vec![digest_hex(HashType::Sha256, "e@f.com")];
        let maid = vec!["6d92078a8246e0b1a6d2a9b4d3c1e2f0".to_owned()];
        let w = warnings_of(&[
            group(IdType::Email, HashType::Plaintext, &emails),
            group(IdType::Email, HashType::Sha256, &hashed),
            group(IdType::Maid, HashType::Plaintext, &maid),
            group(
                IdType::Phone,
                HashType::Plaintext,
                &["5125550134".to_owned()],
            ),
        ]);
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn resolution_is_low_overall_or_in_a_group() {
        let report = Normalization {
            groups: vec![
                crate::normalization::GroupNormalization {
                    id_type: IdType::Email,
                    hash_type: HashType::Plaintext,
                    sent_as: HashType::Plaintext,
                    received: 100,
                    changed: 0,
                    rejected: 0,
                    rejected_by_reason: BTreeMap::new(),
                    duplicates: 0,
                    kept: 100,
                },
                crate::normalization::GroupNormalization {
                    id_type: IdType::Phone,
                    hash_type: HashType::Plaintext,
                    sent_as: HashType::Plaintext,
                    received: 100,
                    changed: 0,
                    rejected: 90,
                    rejected_by_reason: BTreeMap::new(),
                    duplicates: 0,
                    kept: 10,
                },
            ],
        };
        let matched = BTreeMap::from([
            ("email_plaintext".to_owned(), 90),
            ("phone_plaintext".to_owned(), 10),
        ]);
        let groups = group_resolution(&report, &matched);
        assert_eq!(groups[0].0.rate, 0.9);
        assert_eq!(groups[1].0.rate, 1.0);
        let intake = [Warning::new(WarningCode::HashedSentAsPlaintext, "")];
        // Every phone sent matched, but 90 of 100 could not be sent: the group is low.
        let w = resolution_warning(110, 100, &groups, &intake).expect("low");
        assert_eq!(w.causes, [WarningCode::HashedSentAsPlaintext]);
        assert_eq!(
            (w.count, w.of, w.left_out),
            (Some(100), Some(200), Some(90))
        );
        assert!(
            w.message.contains("phone plaintext 10 of 100"),
            "{}",
            w.message
        );
        // Everything sent and matched: nothing to say.
        let fine = group_resolution(
            &Normalization {
                groups: vec![report.groups[0].clone()],
            },
            &matched,
        );
        assert!(resolution_warning(100, 90, &fine, &[]).is_none());
        // A provider that does not say which identifier matched: the overall rate alone.
        let w = resolution_warning(100, 20, &[], &[]).expect("low");
        assert!(w.groups.is_empty() && w.causes.is_empty());
        assert_eq!(w.rate, Some(0.2));
    }
}
