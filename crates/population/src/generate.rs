//! Generating a population from a seed: each person drawn from their persona, attributes read
//! off their latent facts, contact data placed around a metro.

use crate::attributes::{self, TraitSpec};
use crate::columns::{Attribute, Codes, ContactSource, Population};
use crate::contacts;
use crate::id_index::MAX_PERSONS;
use crate::parallel::threads;
use crate::personas::{self, Latent};
use crate::rng::Rng;

/// How to generate a population.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneratorConfig {
    pub persons: usize,
    pub seed: u64,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            persons: 1_000_000,
            seed: 0x1C9_5EED,
        }
    }
}

impl Population {
    /// Generates `config.persons` people (at most 2^28, the persons an identifier index can
    /// address) deterministically from `config.seed`.
    ///
    /// Person `i` depends only on `(seed, i)`, never on the population size, so a 1M population
    /// is the first million of a 10M one.
    pub fn generate(config: &GeneratorConfig) -> Population {
        let specs = attributes::trait_specs();
        let width = specs.len();
        let n = config.persons.min(MAX_PERSONS);
        let seed = config.seed;
        let gender_attr = specs.iter().position(|s| s.name == "gender");

        let mut codes = vec![0u8; n * width];
        let mut lat = vec![0f64; n];
        let mut lon = vec![0f64; n];
        let mut metro = vec![0u8; n];
        let mut segment = vec![0u8; n];

        // Each thread fills a contiguous block of rows; rows depend only on (seed, index).
        let per = n.div_ceil(threads()).max(1);
        std::thread::scope(|s| {
            let chunks = codes
                .chunks_mut(per * width)
                .zip(lat.chunks_mut(per))
                .zip(lon.chunks_mut(per))
                .zip(metro.chunks_mut(per))
                .zip(segment.chunks_mut(per))
                .enumerate();
            for (c, ((((codes, lat), lon), metro), segment)) in chunks {
                let specs = &specs;
                s.spawn(move || {
                    let start = c * per;
                    for (k, row) in codes.chunks_mut(width).enumerate() {
                        let index = (start + k) as u64;
                        let latent = fill_row(specs, seed, index, row);
                        segment[k] = latent.segment;
                        let (m, la, lo) = contacts::place(seed, index, latent.place);
                        metro[k] = m;
                        lat[k] = la;
                        lon[k] = lo;
                    }
                });
            }
        });

        let attrs = specs
            .iter()
            .map(|s| Attribute {
                name: s.name.to_owned(),
                domain: s.domain.to_owned(),
                values: s.values.iter().map(|v| (*v).to_owned()).collect(),
            })
            .collect();
        Population::assemble(
            attrs,
            Codes::Narrow(codes),
            ContactSource::Generated {
                seed,
                metro,
                gender_attr,
            },
            lat,
            lon,
            personas::segments(),
            segment,
            seed,
        )
    }
}

fn fill_row(specs: &[TraitSpec], seed: u64, index: u64, row: &mut [u8]) -> Latent {
    let mut rng = Rng::new(seed, index, 0);
    let latent = personas::draw_latent(&mut rng);
    let mut r = Rng::new(seed, index, 1);
    for (slot, spec) in row.iter_mut().zip(specs) {
        *slot = (spec.draw)(&latent, &mut r);
    }
    latent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_prefix_stable() {
        let small = Population::generate(&GeneratorConfig {
            persons: 2_000,
            seed: 5,
        });
        let big = Population::generate(&GeneratorConfig {
            persons: 5_000,
            seed: 5,
        });
        assert_eq!(small.len(), 2_000);
        for p in (0..2_000).step_by(37) {
            for a in 0..small.attrs.len() {
                assert_eq!(small.code(p, a), big.code(p, a));
            }
            assert_eq!(small.contact(p), big.contact(p));
            assert_eq!(small.lat[p], big.lat[p]);
        }
        for (a, b) in small.clusters.iter().zip(&big.clusters) {
            assert_eq!(a.hash, b.hash);
            assert_eq!(a.id, b.id);
        }
        let other = Population::generate(&GeneratorConfig {
            persons: 2_000,
            seed: 6,
        });
        assert!((0..2_000).any(|p| other.code(p, 0) != small.code(p, 0)));
    }

    #[test]
    fn bitmaps_agree_with_codes() {
        let pop = Population::generate(&GeneratorConfig {
            persons: 3_000,
            seed: 1,
        });
        for c in &pop.clusters {
            for p in 0..pop.len() {
                let has = pop.code(p, c.attr as usize) == c.code;
                assert_eq!(has, c.members.contains(p as u32));
            }
        }
    }
}
