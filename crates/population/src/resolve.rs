//! `resolve_identities`: identifiers (plain or hashed) to persons.
//!
//! Identifiers are normalised before matching and before hashing: emails trimmed and lower-cased,
//! phones reduced to 10 digits (dropping `+1`, spaces and punctuation), addresses lower-cased with
//! punctuation and repeated spaces removed, mobile ad ids trimmed and lower-cased. A hashed
//! identifier is the hex digest of that normal form.
//!
//! Each `(id type, hash type)` has its own index, built on first use: a sorted array of 64-bit
//! keys (a stable hash of the normal form for plaintext, the digest's first 8 bytes otherwise)
//! with a radix directory over the top bits, so a lookup touches one or two cache lines. Every
//! candidate is then confirmed against the person's own identifier, so a key collision can
//! never resolve to the wrong person.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use icp_contract::{
    HashType, IdType, Identity, IdentityMatch, ProviderError, ResolveRequest, ResolveResponse,
    ResolveStats,
};

use crate::contacts::{Contact, round4};
use crate::population::Population;
use crate::rng::stable_hash;

/// Upstream limits for one call.
pub const MAX_IDENTIFIER_GROUPS: usize = 50;
pub const MAX_VALUES_PER_GROUP: usize = 3_000;

pub fn normalize_email(s: &str) -> Option<String> {
    let e = s.trim().to_lowercase();
    (e.len() >= 3 && e.contains('@')).then_some(e)
}

/// Ten digits, or nothing. A leading country code 1 is dropped from 11 digits.
pub fn normalize_phone(s: &str) -> Option<String> {
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    let d = match digits.len() {
        11 if digits.starts_with('1') => &digits[1..],
        10 => &digits[..],
        _ => return None,
    };
    Some(d.to_owned())
}

pub fn normalize_address(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    for word in s
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    (!out.is_empty()).then_some(out)
}

pub fn normalize_maid(s: &str) -> Option<String> {
    let m = s.trim().to_lowercase();
    (!m.is_empty()).then_some(m)
}

pub fn normalize(id_type: IdType, s: &str) -> Option<String> {
    match id_type {
        IdType::Email => normalize_email(s),
        IdType::Phone => normalize_phone(s),
        IdType::Address => normalize_address(s),
        IdType::Maid => normalize_maid(s),
    }
}

/// The hex digest of an already-normalised identifier (`plaintext` returns it unchanged).
pub fn digest_hex(hash: HashType, normal: &str) -> String {
    match hash {
        HashType::Plaintext => normal.to_owned(),
        _ => hex::encode(digest(hash, normal)),
    }
}

fn digest(hash: HashType, normal: &str) -> Vec<u8> {
    use sha2::Digest;
    match hash {
        HashType::Plaintext => normal.as_bytes().to_vec(),
        HashType::Md5 => md5::Md5::digest(normal.as_bytes()).to_vec(),
        HashType::Sha1 => sha1::Sha1::digest(normal.as_bytes()).to_vec(),
        HashType::Sha256 => sha2::Sha256::digest(normal.as_bytes()).to_vec(),
    }
}

fn digest_len(hash: HashType) -> usize {
    match hash {
        HashType::Plaintext => 0,
        HashType::Md5 => 16,
        HashType::Sha1 => 20,
        HashType::Sha256 => 32,
    }
}

fn key_of_digest(d: &[u8]) -> u64 {
    let mut k = [0u8; 8];
    k.copy_from_slice(&d[..8]);
    u64::from_be_bytes(k)
}

/// The index key of a normalised identifier under a hash type.
fn key_of(hash: HashType, normal: &str) -> u64 {
    match hash {
        HashType::Plaintext => stable_hash(normal.as_bytes()),
        _ => key_of_digest(&digest(hash, normal)),
    }
}

/// What a submitted value is looked up by: its key, and what confirms a candidate.
enum Probe {
    Plain(String),
    Digest(Vec<u8>),
}

fn probe(id_type: IdType, hash: HashType, value: &str) -> Option<(u64, Probe)> {
    match hash {
        HashType::Plaintext => {
            let n = normalize(id_type, value)?;
            Some((stable_hash(n.as_bytes()), Probe::Plain(n)))
        }
        _ => {
            let bytes = hex::decode(value.trim()).ok()?;
            (bytes.len() == digest_len(hash)).then(|| (key_of_digest(&bytes), Probe::Digest(bytes)))
        }
    }
}

/// A person's identifiers of one type, normalised, in slot order.
pub(crate) fn identifiers_of(c: &Contact, id_type: IdType) -> Vec<String> {
    match id_type {
        IdType::Email => c.emails.clone(),
        IdType::Phone => c.phones.clone(),
        IdType::Address => c
            .address
            .iter()
            .filter_map(|a| normalize_address(a))
            .collect(),
        IdType::Maid => c.maids.clone(),
    }
}

/// Sorted keys with a directory over their top bits.
#[derive(Debug)]
pub(crate) struct IdIndex {
    keys: Vec<u64>,
    /// `person << 2 | slot`.
    entries: Vec<u32>,
    shift: u32,
    dir: Vec<u32>,
}

impl IdIndex {
    fn build(mut pairs: Vec<(u64, u32)>) -> IdIndex {
        pairs.sort_unstable();
        let bits = (usize::BITS - pairs.len().leading_zeros()).clamp(1, 24);
        let shift = 64 - bits;
        let mut dir = vec![0u32; (1usize << bits) + 1];
        let mut at = 0usize;
        for (b, slot) in dir.iter_mut().enumerate() {
            while at < pairs.len() && ((pairs[at].0 >> shift) as usize) < b {
                at += 1;
            }
            *slot = at as u32;
        }
        let (keys, entries) = pairs.into_iter().unzip();
        IdIndex {
            keys,
            entries,
            shift,
            dir,
        }
    }

    fn find(&self, key: u64) -> impl Iterator<Item = (usize, usize)> + '_ {
        let b = (key >> self.shift) as usize;
        let (lo, hi) = (self.dir[b] as usize, self.dir[b + 1] as usize);
        let start = lo + self.keys[lo..hi].partition_point(|k| *k < key);
        self.keys[start..hi]
            .iter()
            .zip(&self.entries[start..hi])
            .take_while(move |(k, _)| **k == key)
            .map(|(_, e)| ((e >> 2) as usize, (e & 3) as usize))
    }

    fn memory_bytes(&self) -> usize {
        self.keys.len() * 8 + self.entries.len() * 4 + self.dir.len() * 4
    }
}

/// One lazily built index per `(id type, hash type)`.
#[derive(Debug, Default)]
pub(crate) struct IdIndexes {
    slots: [[OnceLock<IdIndex>; 4]; 4],
}

impl IdIndexes {
    pub(crate) fn memory_bytes(&self) -> usize {
        self.slots
            .iter()
            .flatten()
            .filter_map(OnceLock::get)
            .map(IdIndex::memory_bytes)
            .sum()
    }
}

fn type_slot(t: IdType) -> usize {
    IdType::ALL.iter().position(|x| *x == t).unwrap_or(0)
}

fn hash_slot(h: HashType) -> usize {
    HashType::ALL.iter().position(|x| *x == h).unwrap_or(0)
}

/// How much a match on this identifier says: primary identifiers more than later ones.
fn slot_quality(id_type: IdType, slot: usize) -> f64 {
    let base: &[f64] = match id_type {
        IdType::Email => &[0.95, 0.88, 0.8],
        IdType::Phone => &[0.9, 0.82],
        IdType::Address => &[0.85],
        IdType::Maid => &[0.9, 0.85],
    };
    base[slot.min(base.len() - 1)]
}

impl Population {
    fn id_index(&self, id_type: IdType, hash: HashType) -> &IdIndex {
        self.id_indexes.slots[type_slot(id_type)][hash_slot(hash)].get_or_init(|| {
            let n = self.len();
            let threads = std::thread::available_parallelism()
                .map(|t| t.get())
                .unwrap_or(1)
                .clamp(1, 8);
            let per = n.div_ceil(threads).max(1);
            let parts: Vec<Vec<(u64, u32)>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..n)
                    .step_by(per)
                    .map(|start| {
                        s.spawn(move || {
                            let mut out = Vec::with_capacity(per * 2);
                            for p in start..(start + per).min(n) {
                                let c = self.contact(p);
                                for (slot, v) in identifiers_of(&c, id_type).iter().enumerate() {
                                    out.push((key_of(hash, v), ((p as u32) << 2) | slot as u32));
                                }
                            }
                            out
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_default())
                    .collect()
            });
            IdIndex::build(parts.concat())
        })
    }

    /// Builds the identifier index for a type and hashing now rather than on the first call.
    pub fn warm_identifier_index(&self, id_type: IdType, hash: HashType) {
        self.id_index(id_type, hash);
    }

    /// The confirmed holders of one submitted value, with their contact data.
    fn holders(&self, id_type: IdType, hash: HashType, index: &IdIndex, value: &str) -> Vec<Hit> {
        let Some((key, probe)) = probe(id_type, hash, value) else {
            return Vec::new();
        };
        let mut hits = Vec::new();
        for (person, slot) in index.find(key) {
            let contact = self.contact(person);
            // Confirm against the person's own identifier, so a key collision never matches.
            let confirmed = match id_type {
                IdType::Email => contact.emails.get(slot).map(|s| Cow::Borrowed(s.as_str())),
                IdType::Phone => contact.phones.get(slot).map(|s| Cow::Borrowed(s.as_str())),
                IdType::Maid => contact.maids.get(slot).map(|s| Cow::Borrowed(s.as_str())),
                IdType::Address => contact
                    .address
                    .as_deref()
                    .and_then(normalize_address)
                    .map(Cow::Owned),
            }
            .is_some_and(|own| match &probe {
                Probe::Plain(n) => *own == **n,
                Probe::Digest(d) => digest(hash, &own) == *d,
            });
            if confirmed {
                hits.push(Hit {
                    person,
                    slot,
                    contact,
                });
            }
        }
        hits
    }

    /// Resolves identifiers to persons; one identity per person, with every submitted value
    /// that led to them.
    pub fn resolve_identities(
        &self,
        req: &ResolveRequest,
    ) -> Result<ResolveResponse, ProviderError> {
        if req.multi_identifiers.len() > MAX_IDENTIFIER_GROUPS {
            return Err(ProviderError::validation(format!(
                "multi_identifiers holds {} groups; at most {MAX_IDENTIFIER_GROUPS} a call",
                req.multi_identifiers.len()
            )));
        }
        for (g, group) in req.multi_identifiers.iter().enumerate() {
            if group.values.len() > MAX_VALUES_PER_GROUP {
                return Err(ProviderError::validation(format!(
                    "multi_identifiers[{g}].values holds {} values; at most {MAX_VALUES_PER_GROUP} a group",
                    group.values.len()
                )));
            }
        }
        // Look-ups (and regenerating contact data) are independent: spread them over threads,
        // keeping request order for the merge.
        let work: Vec<(usize, &str)> = req
            .multi_identifiers
            .iter()
            .enumerate()
            .flat_map(|(g, group)| group.values.iter().map(move |v| (g, v.as_str())))
            .collect();
        let indexes: Vec<&IdIndex> = req
            .multi_identifiers
            .iter()
            .map(|g| self.id_index(g.id_type, g.hash_type))
            .collect();
        let lookup = |items: &[(usize, &str)]| -> Vec<Vec<Hit>> {
            items
                .iter()
                .map(|(g, v)| {
                    let group = &req.multi_identifiers[*g];
                    self.holders(group.id_type, group.hash_type, indexes[*g], v)
                })
                .collect()
        };
        let threads = parallelism(work.len());
        let found: Vec<Vec<Hit>> = if threads <= 1 {
            lookup(&work)
        } else {
            let per = work.len().div_ceil(threads);
            std::thread::scope(|s| {
                let handles: Vec<_> = work
                    .chunks(per)
                    .map(|c| s.spawn(move || lookup(c)))
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().unwrap_or_default())
                    .collect()
            })
        };

        // The position in `identities` of each person, so one person makes one identity.
        let mut by_person: HashMap<usize, usize> = HashMap::new();
        let mut identities: Vec<(usize, Option<Contact>, Vec<IdentityMatch>)> = Vec::new();
        let mut resolved = 0u64;
        let criteria: Vec<String> = req
            .multi_identifiers
            .iter()
            .map(|g| format!("{}_{}", g.id_type.as_str(), g.hash_type.as_str()))
            .collect();
        for ((g, value), hits) in work.iter().zip(found) {
            if hits.is_empty() {
                continue;
            }
            resolved += 1;
            let id_type = req.multi_identifiers[*g].id_type;
            // An identifier several people share (a household's address) says less about each.
            let share = hits.len() as f64;
            for hit in hits {
                let pos = *by_person.entry(hit.person).or_insert_with(|| {
                    identities.push((hit.person, None, Vec::new()));
                    identities.len() - 1
                });
                let entry = &mut identities[pos];
                let q = slot_quality(id_type, hit.slot)
                    * (0.85 + 0.15 * self.quality_of(hit.person))
                    / share;
                if entry.1.is_none() {
                    entry.1 = Some(hit.contact);
                }
                let matches = &mut entry.2;
                if !matches
                    .iter()
                    .any(|m| m.criterion_type == criteria[*g] && m.criterion_value == *value)
                {
                    matches.push(IdentityMatch {
                        criterion_type: criteria[*g].clone(),
                        criterion_value: (*value).to_owned(),
                        quality_score: round4(q),
                    });
                }
            }
        }
        let requested = work.len() as u64;
        let identities = identities
            .into_iter()
            .map(|(person, contact, matches)| {
                let miss: f64 = matches.iter().map(|m| 1.0 - m.quality_score).product();
                Identity {
                    person_id: self.person_id(person),
                    overall_quality_score: round4(1.0 - miss),
                    matches,
                    identifiers: contact.map(known_identifiers).unwrap_or_default(),
                }
            })
            .collect();
        Ok(ResolveResponse {
            identities,
            stats: ResolveStats {
                requested,
                resolved,
                rate: if requested == 0 {
                    0.0
                } else {
                    round4(resolved as f64 / requested as f64)
                },
            },
            export: None,
            tool_trace_id: None,
            workflow_id: req.workflow_id.clone(),
        })
    }
}

/// One confirmed holder of a submitted identifier.
struct Hit {
    person: usize,
    slot: usize,
    contact: Contact,
}

/// Threads worth using for `items` independent look-ups: one per core, but only when each gets
/// enough work to pay for starting it.
pub(crate) fn parallelism(items: usize) -> usize {
    const MIN_PER_THREAD: usize = 256;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
    (items / MIN_PER_THREAD).clamp(1, cores)
}

/// A person's identifiers by type, as `resolve_identities` reports them.
fn known_identifiers(c: Contact) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for (t, v) in [
        ("email", c.emails),
        ("phone", c.phones),
        ("address", c.address.into_iter().collect()),
        ("maid", c.maids),
    ] {
        if !v.is_empty() {
            out.insert(t.to_owned(), v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation() {
        assert_eq!(
            normalize_email("  Jane.Doe@Example.COM ").unwrap(),
            "jane.doe@example.com"
        );
        assert!(normalize_email("nobody").is_none());
        assert_eq!(normalize_phone("+1 (512) 555-0134").unwrap(), "5125550134");
        assert_eq!(normalize_phone("512.555.0134").unwrap(), "5125550134");
        assert!(normalize_phone("555-0134").is_none());
        assert!(normalize_phone("25125550134").is_none());
        assert_eq!(
            normalize_address("12  Main St., Austin, TX 78701").unwrap(),
            "12 main st austin tx 78701"
        );
        assert!(normalize_address(" ,. ").is_none());
    }

    #[test]
    fn digests_are_lower_hex_of_the_normal_form() {
        assert_eq!(
            digest_hex(HashType::Md5, "test@example.com"),
            "55502f40dc8b7c769880b10874abc9d0"
        );
        assert_eq!(
            digest_hex(HashType::Sha1, "abc"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            digest_hex(HashType::Sha256, "abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn index_finds_every_key_and_only_those() {
        let pairs: Vec<(u64, u32)> = (0..10_000u64)
            .map(|i| (crate::rng::mix64(i), (i as u32) << 2))
            .chain([(crate::rng::mix64(5), 7u32 << 2 | 1)])
            .collect();
        let idx = IdIndex::build(pairs);
        for i in 0..10_000u64 {
            let found: Vec<_> = idx.find(crate::rng::mix64(i)).collect();
            assert!(found.contains(&(i as usize, 0)));
            assert_eq!(found.len(), if i == 5 { 2 } else { 1 });
        }
        assert_eq!(idx.find(crate::rng::mix64(20_000)).count(), 0);
        // mix64(0) == 0, so key 0 is present; the extremes around it are not.
        assert_eq!(idx.find(1).count(), 0);
        assert_eq!(idx.find(u64::MAX).count(), 0);
    }
}
