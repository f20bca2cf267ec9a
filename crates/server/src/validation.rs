//! Step 6 of the workflow, shared by the validate stage and custom audiences: a seeded sample
//! of an audience's stored export enriched with `get_person` (≤ 1000 ids a call, through the
//! job's provider, over the job's domains) and the customers' top traits counted in it; see
//! [`crate::model::Validation`] for the sample, the traits and the score.

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use icp_analysis::Analysis;
use icp_contract::{
    GetPersonRequest, MAX_PERSON_IDS_PER_CALL, PersonId, PopulationProvider, ProviderError,
};
use icp_store::{Store, StoreError};
use uuid::Uuid;

use crate::export_tally::read_export;
use crate::model::{Validation, ValidationTrait};

/// The persons a sample holds (fewer when the audience is smaller): one `get_person` call.
pub const SAMPLE_SIZE: usize = 1_000;
/// The seed of every draw: the same audience gives the same sample in every job.
pub const SEED: u64 = 0x1C9_5EED;
/// The most traits compared.
pub const TRAITS: usize = 10;

/// How a sample is enriched: through which provider, over which domains, under which
/// workflow, with how many calls in flight.
pub struct Enricher {
    pub provider: Arc<dyn PopulationProvider>,
    pub domains: Vec<String>,
    pub workflow_id: Option<String>,
    pub concurrency: usize,
}

/// The seeded sample of the stored export `name` of job `job`, ascending by id.
pub async fn draw_export(
    store: &Store,
    job: Uuid,
    name: &str,
) -> Result<Vec<PersonId>, StoreError> {
    let mut draw = Draw::new(SEED, SAMPLE_SIZE);
    read_export(store, job, name, |id, _| draw.offer(id)).await?;
    Ok(draw.into_sorted())
}

impl Enricher {
    /// The sample enriched and `traits` counted in it: the validation, and the trace id of
    /// each `get_person` call.
    pub async fn validate(
        &self,
        sample: &[PersonId],
        traits: &[ValidationTrait],
    ) -> Result<(Validation, Vec<Option<String>>), ProviderError> {
        // Owned requests and an owned provider in each call: a future borrowing from the
        // caller makes a job's future not `Send` for every lifetime, which the worker pool needs.
        let requests: Vec<GetPersonRequest> = sample
            .chunks(MAX_PERSON_IDS_PER_CALL)
            .map(|ids| GetPersonRequest {
                person_ids: ids.to_vec(),
                domains: Some(self.domains.clone()),
                format: None,
                workflow_id: self.workflow_id.clone(),
            })
            .collect();
        let upstream = Arc::clone(&self.provider);
        let calls = requests.into_iter().map(move |request| {
            let upstream = upstream.clone();
            async move { upstream.get_person(request).await }
        });
        let answers: Vec<_> = futures::stream::iter(calls)
            .buffered(self.concurrency.max(1))
            .try_collect()
            .await?;
        let index: HashMap<(&str, &str), usize> = traits
            .iter()
            .enumerate()
            .map(|(i, t)| ((t.name.as_str(), t.value.as_str()), i))
            .collect();
        let mut held = vec![0u64; traits.len()];
        let mut enriched = 0u64;
        let mut traces = Vec::new();
        for answer in answers {
            traces.push(answer.tool_trace_id);
            for profile in &answer.profiles {
                enriched += 1;
                let mut seen = vec![false; traits.len()];
                for (name, value) in &profile.domains {
                    if let Some(&i) = index.get(&(name.as_str(), value.trim())) {
                        seen[i] = true;
                    }
                }
                for (count, seen) in held.iter_mut().zip(seen) {
                    *count += u64::from(seen);
                }
            }
        }
        let traits: Vec<ValidationTrait> = traits
            .iter()
            .zip(&held)
            .map(|(t, &count)| ValidationTrait {
                sample: if enriched == 0 {
                    0.0
                } else {
                    count as f64 / enriched as f64
                },
                ..t.clone()
            })
            .collect();
        let validation = Validation {
            sample_target: SAMPLE_SIZE as u64,
            sample_size: sample.len() as u64,
            enriched,
            seed: SEED,
            sample_digest: digest(sample),
            similarity: (enriched > 0)
                .then(|| similarity(traits.iter().map(|t| (t.customers, t.sample, t.population))))
                .flatten(),
            population_similarity: traits
                .iter()
                .map(|t| t.population.map(|p| (t.customers, p, Some(p))))
                .collect::<Option<Vec<_>>>()
                .and_then(similarity),
            traits,
        };
        Ok((validation, traces))
    }
}

/// The traits compared (see [`crate::model::Validation`]): the top traits the customers hold
/// more often than the population, by `frequency · ln(index)`, or without an index the most
/// frequent; each with its customer and population frequency (the sample's still 0).
pub fn chosen_traits(analysis: &Analysis) -> Vec<ValidationTrait> {
    let mut lifted: Vec<(f64, &icp_analysis::TopAttribute)> = analysis
        .top_attributes
        .iter()
        .filter_map(|a| {
            let index = a.index.filter(|i| i.is_finite() && *i > 1.0)?;
            Some((a.frequency * index.ln(), a))
        })
        .collect();
    // Stable: equal scores keep the report's order (frequency, then name and value).
    lifted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let chosen: Vec<&icp_analysis::TopAttribute> = if lifted.is_empty() {
        analysis.top_attributes.iter().take(TRAITS).collect()
    } else {
        lifted.into_iter().take(TRAITS).map(|(_, a)| a).collect()
    };
    chosen
        .into_iter()
        .filter(|a| a.frequency > 0.0)
        .map(|a| ValidationTrait {
            name: a.name.clone(),
            value: a.value.clone(),
            customers: a.frequency,
            sample: 0.0,
            population: a
                .index
                .filter(|i| i.is_finite() && *i > 0.0)
                .map(|i| a.frequency / i),
        })
        .collect()
}

/// `1 − mean min(1, |sample − customers| / max(customers, population))` over
/// `(customers, sample, population)` triples (population unknown: the customers' frequency
/// alone scales the gap); `None` without a triple.
fn similarity(traits: impl IntoIterator<Item = (f64, f64, Option<f64>)>) -> Option<f64> {
    let (mut sum, mut n) = (0.0, 0usize);
    for (customers, sample, population) in traits {
        let scale = customers.max(population.unwrap_or(0.0));
        if scale <= 0.0 {
            continue;
        }
        sum += ((sample - customers).abs() / scale).min(1.0);
        n += 1;
    }
    (n > 0).then(|| (1.0 - sum / n as f64).clamp(0.0, 1.0))
}

/// SplitMix64's finaliser: a stable 64-bit mix.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A bottom-k draw: the `k` persons offered whose seeded hash is smallest (ties by id),
/// whatever order they come in, each person once.
struct Draw {
    key: u64,
    k: usize,
    /// The `k` smallest so far, the largest on top.
    kept: BinaryHeap<(u64, u64)>,
    /// The ids in `kept`.
    ids: HashSet<u64>,
}

impl Draw {
    fn new(seed: u64, k: usize) -> Self {
        Self {
            key: splitmix64(seed),
            k,
            kept: BinaryHeap::with_capacity(k + 1),
            ids: HashSet::with_capacity(k + 1),
        }
    }

    fn offer(&mut self, id: PersonId) {
        let entry = (splitmix64(id.0 ^ self.key), id.0);
        let full = self.kept.len() >= self.k;
        if (full && self.kept.peek().is_none_or(|top| entry >= *top)) || !self.ids.insert(id.0) {
            return;
        }
        self.kept.push(entry);
        if self.kept.len() > self.k
            && let Some((_, out)) = self.kept.pop()
        {
            self.ids.remove(&out);
        }
    }

    /// The persons drawn, ascending by id.
    fn into_sorted(self) -> Vec<PersonId> {
        let mut ids: Vec<PersonId> = self.kept.into_iter().map(|(_, id)| PersonId(id)).collect();
        ids.sort_unstable();
        ids
    }
}

/// 16 hex digits that name a sample (ids ascending).
fn digest(ids: &[PersonId]) -> String {
    let folded = ids
        .iter()
        .fold(splitmix64(ids.len() as u64), |h, id| splitmix64(h ^ id.0));
    format!("{folded:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_draw_keeps_the_smallest_hashes_whatever_the_order() {
        let ids: Vec<PersonId> = (0..5_000u64).map(|i| PersonId(i * 7 + 3)).collect();
        let mut forward = Draw::new(SEED, 100);
        ids.iter().for_each(|id| forward.offer(*id));
        let mut backward = Draw::new(SEED, 100);
        ids.iter().rev().for_each(|id| backward.offer(*id));
        // A person offered twice (two export chunks) is drawn once.
        ids.iter().take(50).for_each(|id| backward.offer(*id));
        let (a, b) = (forward.into_sorted(), backward.into_sorted());
        assert_eq!(a, b);
        assert_eq!(a.len(), 100);
        let mut keyed: Vec<(u64, u64)> = ids
            .iter()
            .map(|id| (splitmix64(id.0 ^ splitmix64(SEED)), id.0))
            .collect();
        keyed.sort_unstable();
        let mut expected: Vec<PersonId> =
            keyed[..100].iter().map(|(_, id)| PersonId(*id)).collect();
        expected.sort_unstable();
        assert_eq!(a, expected);
        // Another seed draws other persons.
        let mut other = Draw::new(SEED + 1, 100);
        ids.iter().for_each(|id| other.offer(*id));
        assert_ne!(other.into_sorted(), a);
    }

    #[test]
    fn a_smaller_audience_than_the_sample_is_drawn_whole() {
        let mut draw = Draw::new(SEED, SAMPLE_SIZE);
        (1..=10u64).for_each(|i| draw.offer(PersonId(i)));
        assert_eq!(
            draw.into_sorted(),
            (1..=10).map(PersonId).collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_score_is_one_for_the_customers_and_bounded() {
        let same = similarity([(0.6, 0.6, Some(0.1)), (0.3, 0.3, None)]);
        assert_eq!(same, Some(1.0));
        // A sample like the population: each trait costs 1 − 1/index.
        let like_population = similarity([(0.6, 0.1, Some(0.1)), (0.4, 0.2, Some(0.2))]).unwrap();
        assert!((like_population - (1.0 - (5.0 / 6.0 + 0.5) / 2.0)).abs() < 1e-12);
        // Far beyond the customers is clamped to the worst, never below 0.
        assert_eq!(similarity([(0.2, 1.0, Some(0.05))]), Some(0.0));
        assert_eq!(similarity(Vec::new()), None);
        // Closer to the customers scores higher.
        let near = similarity([(0.6, 0.5, Some(0.1))]).unwrap();
        let far = similarity([(0.6, 0.2, Some(0.1))]).unwrap();
        assert!(near > far && (0.0..=1.0).contains(&far));
    }

    #[test]
    fn the_digest_names_the_sample() {
        let a = digest(&[PersonId(1), PersonId(2)]);
        assert_eq!(a, digest(&[PersonId(1), PersonId(2)]));
        assert_ne!(a, digest(&[PersonId(1), PersonId(3)]));
        assert_eq!(a.len(), 16);
    }
}
