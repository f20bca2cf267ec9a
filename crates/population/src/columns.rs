//! The population held in memory, column by column: attribute codes, one bitmap per cluster,
//! places, contacts, and the ids persons and clusters are known by.

use std::collections::HashMap;

use icp_contract::PersonId;
use roaring::RoaringBitmap;

use crate::contacts::{self, Contact};
use crate::geo::GeoGrid;
use crate::id_index::IdIndexes;
use crate::parallel::threads;
use crate::personas::Segment;

/// Person ids are the row index plus this offset, so they never look like cluster ids.
pub const PERSON_ID_BASE: u64 = 10_000_000_000;

/// The first cluster id; cluster `k` (in attribute, then value order) gets `CLUSTER_ID_BASE + k`.
pub const CLUSTER_ID_BASE: u64 = 1_000_000_000;

/// A trait attribute: `name = value` pairs of one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attribute {
    pub name: String,
    pub domain: String,
    pub values: Vec<String>,
}

/// Attribute codes, row-major (`persons × attributes`): one row is one person's profile, which is
/// what `get_person` reads. Code 0 means "not known", `k` means `values[k - 1]`.
#[derive(Debug)]
pub(crate) enum Codes {
    Narrow(Vec<u8>),
    Wide(Vec<u16>),
}

impl Codes {
    #[inline]
    pub(crate) fn get(&self, at: usize) -> u16 {
        match self {
            Codes::Narrow(v) => u16::from(v[at]),
            Codes::Wide(v) => v[at],
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Codes::Narrow(v) => v.len(),
            Codes::Wide(v) => v.len() * 2,
        }
    }
}

/// One `name = value` with everyone who has it.
#[derive(Debug)]
pub(crate) struct ClusterEntry {
    pub attr: u32,
    pub code: u16,
    pub id: u64,
    pub hash: String,
    pub members: RoaringBitmap,
}

/// Where contact data comes from.
#[derive(Debug)]
pub(crate) enum ContactSource {
    /// Recomputed on demand from the seed; `metro` is each person's metro index and `gender_attr`
    /// the attribute whose code picks a first name.
    Generated {
        seed: u64,
        metro: Vec<u8>,
        gender_attr: Option<usize>,
    },
    /// As imported.
    Stored(Vec<Contact>),
}

/// What a generated person's contact data is computed from besides the seed and the row.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ContactInputs {
    gender: u16,
    metro: u8,
}

/// An in-memory population that answers the provider operations.
pub struct Population {
    pub(crate) len: usize,
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) codes: Codes,
    pub(crate) clusters: Vec<ClusterEntry>,
    /// `cluster_of[attr][code - 1]` is the index into `clusters`.
    pub(crate) cluster_of: Vec<Vec<u32>>,
    pub(crate) by_hash: HashMap<String, u32>,
    pub(crate) by_id: HashMap<u64, u32>,
    pub(crate) contacts: ContactSource,
    /// Coordinates; NaN where unknown (imported rows without a location).
    pub(crate) lat: Vec<f64>,
    pub(crate) lon: Vec<f64>,
    pub(crate) geo: GeoGrid,
    pub(crate) segments: Vec<Segment>,
    /// Each person's segment (empty for imported populations).
    pub(crate) segment: Vec<u8>,
    pub(crate) seed: u64,
    /// Identifier indexes, built on first use per identifier type and hashing.
    pub(crate) id_indexes: IdIndexes,
}

/// Sizes only: a population holds personal data, which must never reach a log.
impl std::fmt::Debug for Population {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Population")
            .field("persons", &self.len)
            .field("attributes", &self.attrs.len())
            .field("clusters", &self.clusters.len())
            .field("segments", &self.segments.len())
            .finish_non_exhaustive()
    }
}

/// The 32-hex digest naming a cluster: MD5 of domain, name and value. It depends on nothing but
/// those three strings, so it is the same across rebuilds, seeds and population sizes.
pub fn cluster_hash(domain: &str, name: &str, value: &str) -> String {
    use md5::Digest;
    let mut h = md5::Md5::new();
    h.update(domain.as_bytes());
    h.update([0x1f]);
    h.update(name.as_bytes());
    h.update([0x1f]);
    h.update(value.as_bytes());
    hex::encode(h.finalize())
}

impl Population {
    /// Builds the cluster bitmaps, lookups and geographic grid over already-filled columns.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn assemble(
        attrs: Vec<Attribute>,
        codes: Codes,
        contacts: ContactSource,
        lat: Vec<f64>,
        lon: Vec<f64>,
        segments: Vec<Segment>,
        segment: Vec<u8>,
        seed: u64,
    ) -> Population {
        let len = lat.len();
        let width = attrs.len();

        // Bitmaps per attribute, attributes split across threads. Rows are taken one bitmap
        // container (65,536 rows) at a time: each cluster's bits for the block are set in a
        // small dense buffer, which becomes one container in a single step. That is several
        // times faster than inserting rows one by one.
        let mut per_attr: Vec<Vec<RoaringBitmap>> = attrs
            .iter()
            .map(|a| vec![RoaringBitmap::new(); a.values.len()])
            .collect();
        let per = width.div_ceil(threads()).max(1);
        std::thread::scope(|s| {
            for (c, chunk) in per_attr.chunks_mut(per).enumerate() {
                let codes = &codes;
                s.spawn(move || fill_bitmaps(codes, width, len, c * per, chunk));
            }
        });

        let mut clusters = Vec::new();
        let mut cluster_of = Vec::with_capacity(width);
        for (a, (attr, maps)) in attrs.iter().zip(per_attr).enumerate() {
            let mut ids = Vec::with_capacity(maps.len());
            for (v, members) in maps.into_iter().enumerate() {
                ids.push(clusters.len() as u32);
                clusters.push(ClusterEntry {
                    attr: a as u32,
                    code: (v + 1) as u16,
                    id: CLUSTER_ID_BASE + clusters.len() as u64,
                    hash: cluster_hash(&attr.domain, &attr.name, &attr.values[v]),
                    members,
                });
            }
            cluster_of.push(ids);
        }
        let by_hash = clusters
            .iter()
            .enumerate()
            .map(|(i, c)| (c.hash.clone(), i as u32))
            .collect();
        let by_id = clusters
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id, i as u32))
            .collect();
        let geo = GeoGrid::build(&lat, &lon);
        Population {
            len,
            attrs,
            codes,
            clusters,
            cluster_of,
            by_hash,
            by_id,
            contacts,
            lat,
            lon,
            geo,
            segments,
            segment,
            seed,
            id_indexes: IdIndexes::default(),
        }
    }

    /// Number of persons.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of clusters (`name = value` pairs).
    pub fn cluster_count(&self) -> usize {
        self.clusters.len()
    }

    /// The personas of a generated population (empty for imported ones).
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The segment index (into [`Population::segments`]) of a person, if known.
    pub fn segment_of(&self, id: PersonId) -> Option<usize> {
        let i = self.index_of(id)?;
        self.segment.get(i).map(|s| usize::from(*s))
    }

    /// The person id of row `index`.
    pub fn person_id(&self, index: usize) -> PersonId {
        PersonId(PERSON_ID_BASE + index as u64)
    }

    /// The row of a person id, if it belongs to this population.
    pub fn index_of(&self, id: PersonId) -> Option<usize> {
        let i = id.0.checked_sub(PERSON_ID_BASE)?;
        (i < self.len as u64).then_some(i as usize)
    }

    /// A person's coordinates (latitude, longitude), if known.
    pub fn coordinates(&self, index: usize) -> Option<(f64, f64)> {
        let (lat, lon) = (*self.lat.get(index)?, *self.lon.get(index)?);
        (lat.is_finite() && lon.is_finite()).then_some((lat, lon))
    }

    /// The attribute code of a person (0 when unknown).
    #[inline]
    pub(crate) fn code(&self, person: usize, attr: usize) -> u16 {
        self.codes.get(person * self.attrs.len() + attr)
    }

    pub(crate) fn contact(&self, person: usize) -> Contact {
        match &self.contacts {
            ContactSource::Generated {
                seed,
                metro,
                gender_attr,
            } => {
                let gender = gender_attr.map_or(0, |a| self.code(person, a));
                contacts::generated(*seed, person as u64, gender, metro[person])
            }
            ContactSource::Stored(all) => all[person].clone(),
        }
    }

    /// A person's contact data, borrowing what it can (see [`contacts::ContactParts`]).
    pub(crate) fn contact_parts(&self, person: usize) -> contacts::ContactParts<'_> {
        self.contact_parts_of(person, contacts::Wanted::ALL)
    }

    /// A person's contact data with only the `wanted` kinds of values built, where they are
    /// computed (imported people's are borrowed whole).
    pub(crate) fn contact_parts_of(
        &self,
        person: usize,
        wanted: contacts::Wanted,
    ) -> contacts::ContactParts<'_> {
        self.contact_parts_from(person, self.contact_inputs(person), wanted)
    }

    /// The stored values a generated person's contact data is computed from (two memory
    /// reads, which callers handling many persons issue together, ahead of the computing).
    #[inline]
    pub(crate) fn contact_inputs(&self, person: usize) -> ContactInputs {
        match &self.contacts {
            ContactSource::Generated {
                metro, gender_attr, ..
            } => ContactInputs {
                gender: gender_attr.map_or(0, |a| self.code(person, a)),
                metro: metro[person],
            },
            ContactSource::Stored(_) => ContactInputs::default(),
        }
    }

    /// Reads both ends of a person's row of codes, so that the cache lines are on their way
    /// before the row is used (for callers about to read many rows).
    #[inline]
    pub(crate) fn touch_row(&self, person: usize) {
        let width = self.attrs.len();
        if width > 0 {
            std::hint::black_box(self.codes.get(person * width));
            std::hint::black_box(self.codes.get(person * width + width - 1));
        }
    }

    /// [`Population::contact_parts_of`] from already-read [`Population::contact_inputs`].
    pub(crate) fn contact_parts_from(
        &self,
        person: usize,
        inputs: ContactInputs,
        wanted: contacts::Wanted,
    ) -> contacts::ContactParts<'_> {
        match &self.contacts {
            ContactSource::Generated { seed, .. } => contacts::generated_parts_of(
                *seed,
                person as u64,
                inputs.gender,
                inputs.metro,
                wanted,
            ),
            ContactSource::Stored(all) => contacts::ContactParts::borrowed(&all[person]),
        }
    }

    pub(crate) fn quality_of(&self, person: usize) -> f64 {
        contacts::person_quality(self.seed, person as u64)
    }

    /// Approximate heap bytes held (codes, bitmaps, coordinates, stored contacts, indexes).
    pub fn memory_bytes(&self) -> usize {
        let bitmaps: usize = self
            .clusters
            .iter()
            .map(|c| c.members.serialized_size())
            .sum();
        let contacts = match &self.contacts {
            ContactSource::Generated { metro, .. } => metro.len(),
            ContactSource::Stored(all) => all
                .iter()
                .map(|c| {
                    std::mem::size_of::<Contact>()
                        + c.emails
                            .iter()
                            .chain(&c.phones)
                            .chain(&c.maids)
                            .map(|s| s.len() + 24)
                            .sum::<usize>()
                        + c.address.as_ref().map_or(0, String::len)
                        + c.first_name.as_ref().map_or(0, String::len)
                        + c.last_name.as_ref().map_or(0, String::len)
                })
                .sum(),
        };
        self.codes.bytes()
            + bitmaps
            + (self.lat.len() + self.lon.len()) * 8
            + self.segment.len()
            + contacts
            + self.geo.memory_bytes()
            + self.id_indexes.memory_bytes()
    }
}

/// Rows in one bitmap container.
const BLOCK: usize = 1 << 16;
/// Attributes with more values than this are filled row by row: a dense buffer per value would
/// cost more memory than it saves time.
const DENSE_MAX_VALUES: usize = 64;

/// Fills the cluster bitmaps of attributes `first..first + maps.len()` from the codes.
fn fill_bitmaps(
    codes: &Codes,
    width: usize,
    len: usize,
    first: usize,
    maps: &mut [Vec<RoaringBitmap>],
) {
    let mut dense: Vec<Vec<Vec<u8>>> = maps
        .iter()
        .map(|m| {
            if m.len() <= DENSE_MAX_VALUES {
                vec![vec![0u8; BLOCK / 8]; m.len()]
            } else {
                Vec::new()
            }
        })
        .collect();
    for start in (0..len).step_by(BLOCK) {
        let end = (start + BLOCK).min(len);
        for row in start..end {
            let base = row * width + first;
            let off = row - start;
            for (k, bufs) in dense.iter_mut().enumerate() {
                let code = usize::from(codes.get(base + k));
                if code == 0 {
                    continue;
                }
                if bufs.is_empty() {
                    let appended = maps[k][code - 1].try_push(row as u32);
                    debug_assert!(appended.is_ok(), "rows arrive in order");
                } else {
                    bufs[code - 1][off >> 3] |= 1 << (off & 7);
                }
            }
        }
        for (bufs, bitmaps) in dense.iter_mut().zip(maps.iter_mut()) {
            for (buf, bitmap) in bufs.iter_mut().zip(bitmaps.iter_mut()) {
                if buf.iter().any(|b| *b != 0) {
                    *bitmap |= RoaringBitmap::from_lsb0_bytes(start as u32, buf);
                    buf.fill(0);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_hash_is_32_hex_and_depends_on_all_three_parts() {
        let h = cluster_hash("demographic", "gender", "Female");
        assert_eq!(h.len(), 32);
        assert!(
            h.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(h, cluster_hash("demographic", "gender", "Male"));
        assert_ne!(h, cluster_hash("household", "gender", "Female"));
        assert_ne!(
            cluster_hash("a", "bc", "d"),
            cluster_hash("a", "b", "cd"),
            "separator keeps parts apart"
        );
    }
}
