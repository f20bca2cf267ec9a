//! Ranking every person by a weighted sum of their traits, and cutting the ranking into tiers:
//! the ranked lookalike audiences (the top 1 %, 2 %, 5 %, 10 % most like the customers).
//!
//! A weight belongs to one cluster (`name = value`); a person's score is the sum of the weights
//! of the clusters they are in. Scores are summed row by row over the attribute codes (one
//! look-up table per attribute, each row read once, rows split across threads) rather than by
//! adding each weighted cluster's bitmap into a score array: the rows are contiguous, the score
//! array is written once per person instead of once per weighted trait, and the cost does not
//! grow with the number of weighted traits (`cargo bench -p icp-population --bench population
//! -- rank` measures both).
//!
//! Ties are broken by row (lower first), so a tier holds exactly its share of the eligible
//! persons and the same weights always give the same tiers.

use std::collections::HashMap;

use icp_contract::{
    PersonId, ProviderError, RankPersonsRequest, RankPersonsResponse, RankedTierAnswer,
    RecordBatch, tier_size,
};
use roaring::RoaringBitmap;

use crate::columns::{Codes, Population};
use crate::geo;
use crate::parallel::threads;

/// The weight of one trait.
#[derive(Debug, Clone, PartialEq)]
pub struct TraitWeight {
    pub name: String,
    pub value: String,
    pub weight: f32,
}

/// The tiers of one ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct RankedTiers {
    /// Persons ranked: the population less the excluded.
    pub eligible: u64,
    /// Weights that named no cluster of this population (ignored).
    pub unknown_traits: Vec<(String, String)>,
    /// One per requested fraction, in the order asked.
    pub tiers: Vec<RankedTier>,
}

/// The best-scoring `fraction` of the eligible persons.
#[derive(Debug, Clone, PartialEq)]
pub struct RankedTier {
    pub fraction: f64,
    /// The lowest score in the tier (`-inf` for an empty tier).
    pub cutoff: f32,
    /// Best first.
    pub persons: Vec<PersonId>,
}

/// Why a ranking cannot be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RankError {
    #[error("weight of {name}={value} is not a finite number")]
    NotFinite { name: String, value: String },
    #[error("tier fraction {0} is not in (0, 1]")]
    BadFraction(f64),
}

impl Population {
    /// Scores every person by `weights` and returns the best `fractions` of those not in
    /// `exclude` (customers, typically). Tiers nest: a smaller fraction is a prefix of a larger.
    pub fn rank_tiers(
        &self,
        weights: &[TraitWeight],
        exclude: &[PersonId],
        fractions: &[f64],
    ) -> Result<RankedTiers, RankError> {
        let ranked = self.rank_rows(weights, exclude, None, fractions)?;
        let tiers = fractions
            .iter()
            .zip(&ranked.sizes)
            .map(|(&fraction, &size)| {
                let rows = &ranked.best[..size];
                RankedTier {
                    fraction,
                    cutoff: rows
                        .last()
                        .map_or(f32::NEG_INFINITY, |&r| ranked.scores[r as usize]),
                    persons: rows.iter().map(|&r| self.person_id(r as usize)).collect(),
                }
            })
            .collect();
        Ok(RankedTiers {
            eligible: ranked.eligible,
            unknown_traits: ranked.unknown_traits,
            tiers,
        })
    }

    /// The ranking behind [`Population::rank_tiers`], as rows: everyone outside `within` (when
    /// given) and in `exclude` is left out.
    pub(crate) fn rank_rows(
        &self,
        weights: &[TraitWeight],
        exclude: &[PersonId],
        within: Option<&RoaringBitmap>,
        fractions: &[f64],
    ) -> Result<RankedRows, RankError> {
        if let Some(&bad) = fractions.iter().find(|f| !(**f > 0.0 && **f <= 1.0)) {
            return Err(RankError::BadFraction(bad));
        }
        let (table, unknown_traits) = self.weight_table(weights)?;
        let mut scores = self.scores(&table);
        let mut left_out = 0u64;
        if let Some(within) = within {
            for (row, score) in scores.iter_mut().enumerate() {
                if !within.contains(row as u32) {
                    *score = f32::NEG_INFINITY;
                    left_out += 1;
                }
            }
        }
        for id in exclude {
            if let Some(row) = self.index_of(*id)
                && scores[row] != f32::NEG_INFINITY
            {
                scores[row] = f32::NEG_INFINITY;
                left_out += 1;
            }
        }
        let eligible = self.len as u64 - left_out;
        let sizes: Vec<usize> = fractions
            .iter()
            .map(|&f| tier_size(f, eligible) as usize)
            .collect();
        let best = best_rows(&scores, sizes.iter().copied().max().unwrap_or(0));
        Ok(RankedRows {
            eligible,
            unknown_traits,
            sizes,
            best,
            scores,
            table,
        })
    }

    /// `rank_persons` of the contract: tiers with their records and, per tier, how many of its
    /// members hold each weighted trait.
    pub fn rank_persons(
        &self,
        req: &RankPersonsRequest,
    ) -> Result<RankPersonsResponse, ProviderError> {
        let weights: Vec<TraitWeight> = req
            .weights
            .iter()
            .map(|w| TraitWeight {
                name: w.name.clone(),
                value: w.value.clone(),
                weight: w.weight as f32,
            })
            .collect();
        let mut within = match &req.location {
            Some(loc) => {
                geo::validate(loc)?;
                Some(geo::exact(
                    &self.geo.candidates(loc),
                    loc,
                    &self.lat,
                    &self.lon,
                ))
            }
            None => None,
        };
        if !req.exclude_traits.is_empty() {
            // The holders of an excluded trait: a person scores above 0 over those traits
            // weighted 1 each. They leave the ranking as persons outside the location do.
            let marks: Vec<TraitWeight> = req
                .exclude_traits
                .iter()
                .map(|(name, value)| TraitWeight {
                    name: name.clone(),
                    value: value.clone(),
                    weight: 1.0,
                })
                .collect();
            let held = self
                .scores_of(&marks)
                .map_err(|e| ProviderError::validation(e.to_string()))?;
            let mut keep = within.unwrap_or_else(|| {
                let mut all = RoaringBitmap::new();
                all.insert_range(0..self.len as u32);
                all
            });
            for (row, &mark) in held.iter().enumerate() {
                if mark > 0.0 {
                    keep.remove(row as u32);
                }
            }
            within = Some(keep);
        }
        let ranked = self
            .rank_rows(&weights, &req.exclude, within.as_ref(), &req.fractions)
            .map_err(|e| ProviderError::validation(e.to_string()))?;
        // Which weight each entry of the table belongs to (a trait named twice counts once).
        let mut owner = vec![u32::MAX; ranked.table.values.len()];
        let positions = self.trait_positions(&ranked.table.offsets);
        for (i, w) in weights.iter().enumerate() {
            if let Some(&at) = positions.get(&(w.name.as_str(), w.value.as_str()))
                && owner[at] == u32::MAX
            {
                owner[at] = i as u32;
            }
        }
        // Counts grow down the ranking; each tier takes them when its last member is counted.
        let mut counts = vec![0u64; weights.len()];
        let mut at_size: HashMap<usize, Vec<u64>> = HashMap::new();
        at_size.insert(0, counts.clone());
        let mut records = RecordBatch::with_capacity(ranked.best.len(), ranked.best.len() * 64);
        for (n, &row) in ranked.best.iter().enumerate() {
            let row = row as usize;
            for (a, offset) in ranked.table.offsets.iter().enumerate() {
                let code = self.code(row, a) as usize;
                if code != 0 && owner[offset + code] != u32::MAX {
                    counts[owner[offset + code] as usize] += 1;
                }
            }
            if ranked.sizes.contains(&(n + 1)) {
                at_size.insert(n + 1, counts.clone());
            }
            self.push_audience_line(&mut records, row, req.identifier_type);
        }
        let tiers = req
            .fractions
            .iter()
            .zip(&ranked.sizes)
            .map(|(&fraction, &size)| RankedTierAnswer {
                fraction,
                size: size as u64,
                cutoff: size
                    .checked_sub(1)
                    .map(|last| f64::from(ranked.scores[ranked.best[last] as usize])),
                trait_counts: at_size.get(&size).cloned().unwrap_or_default(),
            })
            .collect();
        Ok(RankPersonsResponse {
            eligible: ranked.eligible,
            unknown_traits: ranked.unknown_traits.len() as u64,
            tiers,
            records,
            workflow_id: req.workflow_id.clone(),
            tool_trace_id: None,
        })
    }

    /// Where each trait's weight sits in a weight table laid out by `offsets`.
    fn trait_positions(&self, offsets: &[usize]) -> HashMap<(&str, &str), usize> {
        self.attrs
            .iter()
            .enumerate()
            .flat_map(|(a, attr)| {
                let base = offsets[a];
                attr.values
                    .iter()
                    .enumerate()
                    .map(move |(v, value)| ((attr.name.as_str(), value.as_str()), base + v + 1))
            })
            .collect()
    }

    /// Every person's score under `weights` (the same weight table `rank_tiers` uses), for
    /// measuring a model.
    pub fn scores_of(&self, weights: &[TraitWeight]) -> Result<Vec<f32>, RankError> {
        Ok(self.scores(&self.weight_table(weights)?.0))
    }

    /// One look-up table for all attributes: entry `offsets[a] + code` is the weight of
    /// attribute `a` having value `code` (code 0, unknown, weighs 0).
    fn weight_table(
        &self,
        weights: &[TraitWeight],
    ) -> Result<(WeightTable, Vec<(String, String)>), RankError> {
        let mut offsets = Vec::with_capacity(self.attrs.len());
        let mut len = 0usize;
        for attr in &self.attrs {
            offsets.push(len);
            len += attr.values.len() + 1;
        }
        let mut values = vec![0f32; len];
        let positions = self.trait_positions(&offsets);
        let mut unknown = Vec::new();
        for w in weights {
            if !w.weight.is_finite() {
                return Err(RankError::NotFinite {
                    name: w.name.clone(),
                    value: w.value.clone(),
                });
            }
            match positions.get(&(w.name.as_str(), w.value.as_str())) {
                Some(&at) => values[at] += w.weight,
                None => unknown.push((w.name.clone(), w.value.clone())),
            }
        }
        Ok((WeightTable { offsets, values }, unknown))
    }

    fn scores(&self, table: &WeightTable) -> Vec<f32> {
        let width = self.attrs.len();
        let mut scores = vec![0f32; self.len];
        if width == 0 || self.len == 0 {
            return scores;
        }
        let per = self.len.div_ceil(threads()).max(1);
        std::thread::scope(|s| {
            for (chunk, out) in scores.chunks_mut(per).enumerate() {
                let first = chunk * per;
                s.spawn(move || match &self.codes {
                    Codes::Narrow(codes) => {
                        let rows = &codes[first * width..(first + out.len()) * width];
                        score_rows(rows, width, table, out);
                    }
                    Codes::Wide(codes) => {
                        let rows = &codes[first * width..(first + out.len()) * width];
                        score_rows(rows, width, table, out);
                    }
                });
            }
        });
        scores
    }
}

pub(crate) struct WeightTable {
    offsets: Vec<usize>,
    values: Vec<f32>,
}

/// A ranking as rows: the tiers' sizes (in the order of the fractions asked), the best rows of
/// the largest, best first, and every row's score (`-inf` for those left out).
pub(crate) struct RankedRows {
    pub(crate) eligible: u64,
    pub(crate) unknown_traits: Vec<(String, String)>,
    pub(crate) sizes: Vec<usize>,
    pub(crate) best: Vec<u32>,
    pub(crate) scores: Vec<f32>,
    pub(crate) table: WeightTable,
}

fn score_rows<C: Copy + Into<usize>>(
    rows: &[C],
    width: usize,
    table: &WeightTable,
    out: &mut [f32],
) {
    for (row, score) in rows.chunks_exact(width).zip(out.iter_mut()) {
        let mut sum = 0f32;
        for (code, offset) in row.iter().zip(&table.offsets) {
            sum += table.values[offset + (*code).into()];
        }
        *score = sum;
    }
}

/// The `k` best rows, best first; ties by row, lower first. Finds the k-th best score by
/// selection on a copy (linear time), then sorts only the rows at or above it.
fn best_rows(scores: &[f32], k: usize) -> Vec<u32> {
    if k == 0 {
        return Vec::new();
    }
    let mut copy = scores.to_vec();
    let (_, kth, _) = copy.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    let threshold = *kth;
    drop(copy);
    let mut rows: Vec<u32> = scores
        .iter()
        .enumerate()
        .filter(|(_, s)| s.total_cmp(&threshold).is_ge())
        .map(|(r, _)| r as u32)
        .collect();
    rows.sort_unstable_by(|&a, &b| {
        scores[b as usize]
            .total_cmp(&scores[a as usize])
            .then(a.cmp(&b))
    });
    rows.truncate(k);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GeneratorConfig;

    fn population() -> Population {
        Population::generate(&GeneratorConfig {
            persons: 20_000,
            seed: 7,
        })
    }

    fn weights(pop: &Population) -> Vec<TraitWeight> {
        // A few traits of the first segment, weighted unevenly, and one negative.
        let segment = &pop.segments()[0];
        let mut w: Vec<TraitWeight> = segment
            .defining_traits
            .iter()
            .enumerate()
            .map(|(i, (name, value))| TraitWeight {
                name: name.clone(),
                value: value.clone(),
                weight: 1.0 + i as f32 * 0.25,
            })
            .collect();
        let (name, value) = pop.segments()[1].defining_traits[0].clone();
        w.push(TraitWeight {
            name,
            value,
            weight: -0.5,
        });
        w
    }

    /// Scores by brute force: each person's profile, looked up trait by trait.
    fn brute_scores(pop: &Population, weights: &[TraitWeight]) -> Vec<f32> {
        (0..pop.len())
            .map(|row| {
                let mut sum = 0f32;
                for (a, attr) in pop.attrs.iter().enumerate() {
                    let code = pop.code(row, a) as usize;
                    if code == 0 {
                        continue;
                    }
                    for w in weights {
                        if w.name == attr.name && w.value == attr.values[code - 1] {
                            sum += w.weight;
                        }
                    }
                }
                sum
            })
            .collect()
    }

    #[test]
    fn scores_equal_a_brute_force_sum() {
        let pop = population();
        let w = weights(&pop);
        assert_eq!(pop.scores_of(&w).unwrap(), brute_scores(&pop, &w));
    }

    #[test]
    fn tiers_are_exact_nested_ordered_and_leave_out_the_excluded() {
        let pop = population();
        let w = weights(&pop);
        let scores = brute_scores(&pop, &w);
        let exclude: Vec<PersonId> = (0..500).map(|r| pop.person_id(r * 7)).collect();
        let ranked = pop.rank_tiers(&w, &exclude, &[0.10, 0.01, 0.05]).unwrap();
        assert_eq!(ranked.eligible, 20_000 - 500);
        let sizes: Vec<usize> = ranked.tiers.iter().map(|t| t.persons.len()).collect();
        assert_eq!(sizes, [1950, 195, 975]);

        // The reference: every eligible row sorted by score, then row.
        let mut expected: Vec<usize> = (0..pop.len())
            .filter(|r| r % 7 != 0 || *r >= 3500)
            .collect();
        expected.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        for tier in &ranked.tiers {
            let rows: Vec<usize> = tier
                .persons
                .iter()
                .map(|id| pop.index_of(*id).unwrap())
                .collect();
            assert_eq!(rows, expected[..rows.len()], "tier {}", tier.fraction);
            assert_eq!(tier.cutoff, scores[*rows.last().unwrap()]);
        }
        // The same weights give the same tiers.
        assert_eq!(
            pop.rank_tiers(&w, &exclude, &[0.10, 0.01, 0.05]).unwrap(),
            ranked
        );
    }

    #[test]
    fn unknown_traits_are_reported_and_bad_input_refused() {
        let pop = population();
        let mut w = weights(&pop);
        w.push(TraitWeight {
            name: "no_such".into(),
            value: "x".into(),
            weight: 3.0,
        });
        let ranked = pop.rank_tiers(&w, &[], &[0.01]).unwrap();
        assert_eq!(
            ranked.unknown_traits,
            [("no_such".to_owned(), "x".to_owned())]
        );
        assert_eq!(ranked.tiers[0].persons.len(), 200);

        w[0].weight = f32::NAN;
        assert!(matches!(
            pop.rank_tiers(&w, &[], &[0.01]),
            Err(RankError::NotFinite { .. })
        ));
        for bad in [0.0, -0.1, 1.5, f64::NAN] {
            assert!(pop.rank_tiers(&[], &[], &[bad]).is_err(), "{bad}");
        }
        // No weights: everyone ties at 0 and the tier is the first rows.
        let flat = pop.rank_tiers(&[], &[], &[0.001]).unwrap();
        let rows: Vec<usize> = flat.tiers[0]
            .persons
            .iter()
            .map(|id| pop.index_of(*id).unwrap())
            .collect();
        assert_eq!(rows, (0..20).collect::<Vec<_>>());
    }
}
