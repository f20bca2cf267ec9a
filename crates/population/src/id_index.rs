//! The identifier index `resolve_identities` looks values up in.
//!
//! Each `(id type, hash type)` has its own index, built on first use: a sorted array of 64-bit
//! keys (a stable hash of the normal form for plaintext, the digest's first 8 bytes otherwise)
//! with a radix directory over the top bits, so a lookup touches one or two cache lines. A key
//! only names candidates: each is confirmed against the person's own identifier
//! ([`own_identifier`]), so a key collision can never resolve to the wrong person.

use std::sync::OnceLock;

use icp_contract::{
    DigestBytes, HashType, IdType, decode_digest, digest, digest_len, normalize_append,
    normalize_into,
};

use crate::contacts::ContactParts;
use crate::parallel::threads;
use crate::rng::stable_hash;

fn key_of_digest(d: &[u8]) -> u64 {
    let mut k = [0u8; 8];
    k.copy_from_slice(&d[..8]);
    u64::from_be_bytes(k)
}

/// The index key of a normalised identifier under a hash type.
fn key_of(hash: HashType, normal: &str) -> u64 {
    match hash {
        HashType::Plaintext => stable_hash(normal.as_bytes()),
        _ => key_of_digest(digest(hash, normal).as_bytes()),
    }
}

/// What a submitted value is looked up by: its key, and what confirms a candidate (for
/// plaintext, where its normal form lies in the block's buffer of them).
#[derive(Clone, Copy)]
pub(crate) enum Probe {
    Plain(usize, usize),
    Digest(DigestBytes),
}

/// The probe of a value; a plaintext value's normal form is appended to `normals`.
pub(crate) fn probe(
    id_type: IdType,
    hash: HashType,
    value: &str,
    normals: &mut String,
) -> Option<(u64, Probe)> {
    match hash {
        HashType::Plaintext => {
            let from = normals.len();
            normalize_append(id_type, value, normals).then(|| {
                let to = normals.len();
                (
                    stable_hash(&normals.as_bytes()[from..to]),
                    Probe::Plain(from, to),
                )
            })
        }
        _ => {
            let d = decode_digest(value.trim(), digest_len(hash))?;
            Some((key_of_digest(d.as_bytes()), Probe::Digest(d)))
        }
    }
}

/// Identifier `slot` of a type of a person, normalised (addresses go through `buf`).
pub(crate) fn own_identifier<'c>(
    c: &'c ContactParts<'_>,
    id_type: IdType,
    slot: usize,
    buf: &'c mut String,
) -> Option<&'c str> {
    match id_type {
        IdType::Email => c.emails.get(slot).map(String::as_str),
        IdType::Phone => c.phones.get(slot).map(String::as_str),
        IdType::Maid => c.maids.get(slot).map(String::as_str),
        IdType::Address => {
            let a = c.address.as_deref()?;
            normalize_into(IdType::Address, a, buf).then_some(buf.as_str())
        }
    }
}

/// How many identifiers of a type a person has (an address that normalises to nothing is
/// not one).
fn identifier_count(c: &ContactParts<'_>, id_type: IdType, buf: &mut String) -> usize {
    match id_type {
        IdType::Email => c.emails.len(),
        IdType::Phone => c.phones.len(),
        IdType::Maid => c.maids.len(),
        IdType::Address => usize::from(
            c.address
                .as_deref()
                .is_some_and(|a| normalize_into(IdType::Address, a, buf)),
        ),
    }
}

/// Bits of an index entry that hold which of a person's identifiers of a kind it is.
const SLOT_BITS: u32 = 4;
/// Identifiers of one kind (emails, phones, maids) a person can be found by; an imported person
/// with more has the rest refused at import.
pub const MAX_IDENTIFIERS_PER_KIND: usize = 1 << SLOT_BITS;
/// Most persons a population may hold: entries are `person << SLOT_BITS | slot` in a `u32`,
/// which leaves 28 bits for the person (generation stops there, imports refuse more rows).
pub const MAX_PERSONS: usize = 1 << (u32::BITS - SLOT_BITS);

/// Sorted keys with a directory over their top bits.
#[derive(Debug)]
pub(crate) struct IdIndex {
    keys: Vec<u64>,
    /// `person << SLOT_BITS | slot`.
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

    /// The positions of the entries with this key.
    #[inline]
    pub(crate) fn range(&self, key: u64) -> std::ops::Range<usize> {
        let b = (key >> self.shift) as usize;
        let (lo, hi) = (self.dir[b] as usize, self.dir[b + 1] as usize);
        let bucket = &self.keys[lo..hi];
        let start = bucket.partition_point(|k| *k < key);
        let len = bucket[start..].iter().take_while(|k| **k == key).count();
        lo + start..lo + start + len
    }

    /// `(person, slot)` of entry `at`.
    #[inline]
    pub(crate) fn entry(&self, at: usize) -> (usize, usize) {
        let e = self.entries[at];
        (
            (e >> SLOT_BITS) as usize,
            (e & ((1 << SLOT_BITS) - 1)) as usize,
        )
    }

    #[cfg(test)]
    fn find(&self, key: u64) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.range(key).map(|at| self.entry(at))
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
    /// The index of a type and hashing, built on first use from the contact data of persons
    /// `0..persons` (`contact_of` gives a person's), the persons split across threads.
    pub(crate) fn get_or_build<'c>(
        &self,
        id_type: IdType,
        hash: HashType,
        persons: usize,
        contact_of: impl Fn(usize) -> ContactParts<'c> + Sync,
    ) -> &IdIndex {
        let contact_of = &contact_of;
        self.slots[type_slot(id_type)][hash_slot(hash)].get_or_init(|| {
            let per = persons.div_ceil(threads()).max(1);
            let parts: Vec<Vec<(u64, u32)>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..persons)
                    .step_by(per)
                    .map(|start| {
                        s.spawn(move || {
                            let mut out = Vec::with_capacity(per * 2);
                            let mut buf = String::new();
                            for p in start..(start + per).min(persons) {
                                let c = contact_of(p);
                                for slot in 0..identifier_count(&c, id_type, &mut buf) {
                                    if let Some(v) = own_identifier(&c, id_type, slot, &mut buf) {
                                        out.push((
                                            key_of(hash, v),
                                            ((p as u32) << SLOT_BITS) | slot as u32,
                                        ));
                                    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_finds_every_key_and_only_those() {
        let pairs: Vec<(u64, u32)> = (0..10_000u64)
            .map(|i| (crate::rng::mix64(i), (i as u32) << SLOT_BITS))
            .chain([(crate::rng::mix64(5), 7u32 << SLOT_BITS | 1)])
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
