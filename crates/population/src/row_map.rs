//! A hash map keyed by row number, for grouping a request's results by person.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use crate::rng::mix64;

/// Hashes a row number with one multiplication-based mix (rows are not chosen by an adversary:
/// the map only groups a request's matches by person).
#[derive(Default)]
pub(crate) struct RowHasher(u64);

impl std::hash::Hasher for RowHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = mix64(self.0 ^ u64::from(*b));
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = mix64(self.0 ^ n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type RowMap<V> = HashMap<usize, V, BuildHasherDefault<RowHasher>>;
