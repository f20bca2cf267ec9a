//! The job's analysis and planning run in process against an embedded population, and the
//! audiences measured against a known truth: shared by the `quality` example and
//! `tests/planner_quality.rs`.

#![allow(dead_code)] // the example and the test each use their own part

use std::collections::{BTreeMap, HashMap, HashSet};

use icp_analysis::{
    Analysis, AnalysisConfig, Analyzer, AudienceConfig, AudiencePlan, AudiencePlanning, Baseline,
    Expr, Item, Mined, Strategy,
};
use icp_contract::{GetPersonRequest, ListClustersRequest, PersonId};
use icp_population::{Population, TraitWeight};

/// Customers drawn from a planted segment: `(1 − noise)` of them from its members, the rest
/// from everyone, the same for the same seed.
pub fn planted_customers(
    pop: &Population,
    segment: &str,
    customers: usize,
    noise: f64,
    seed: u64,
) -> Vec<PersonId> {
    let noisy = (customers as f64 * noise).round() as usize;
    let mut ids: Vec<PersonId> = pop
        .sample_customers(customers - noisy, Some(segment), seed)
        .expect("segment members")
        .into_iter()
        .map(|c| c.person_id)
        .collect();
    let mut seen: HashSet<PersonId> = ids.iter().copied().collect();
    let anyone = pop
        .sample_customers(noisy * 2 + 10, None, seed ^ 0x5EED)
        .expect("persons");
    for c in anyone {
        if ids.len() == customers {
            break;
        }
        if seen.insert(c.person_id) {
            ids.push(c.person_id);
        }
    }
    ids
}

/// Every profile of `ids`, as `get_person` answers them.
pub fn profiles(pop: &Population, ids: &[PersonId]) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let answer = pop
            .get_person(&GetPersonRequest {
                person_ids: chunk.to_vec(),
                domains: None,
                format: None,
                workflow_id: None,
            })
            .expect("profiles");
        out.extend(answer.profiles.into_iter().map(|p| p.domains));
    }
    out
}

/// A job's analysis of `customers` and what the population says of its traits.
pub struct Planned {
    pub mined: Mined,
    pub analysis: Analysis,
    pub baseline: Baseline,
    /// Cluster hash of each trait listed.
    pub hashes: HashMap<Item, String>,
    /// Per attribute: its values' population sizes (every value listed).
    pub population_values: BTreeMap<String, BTreeMap<String, u64>>,
    pub customer_profiles: Vec<BTreeMap<String, String>>,
}

/// Mines the customers and ranks against the population, as the analyze stage does.
pub fn analyse(pop: &Population, customers: &[PersonId], config: AnalysisConfig) -> Planned {
    let customer_profiles = profiles(pop, customers);
    let mut analyzer = Analyzer::new(config);
    for profile in &customer_profiles {
        analyzer.add_profile(profile.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    }
    let mined = analyzer.mine().expect("mined");
    let names: Vec<String> = {
        let mut n: Vec<String> = mined.baseline_items().into_iter().map(|i| i.name).collect();
        n.sort();
        n.dedup();
        n
    };
    let listed = pop
        .list_clusters(&ListClustersRequest {
            cluster_names: Some(names),
            limit: Some(10_000),
            ..Default::default()
        })
        .expect("clusters");
    let mut baseline = match listed.population_size {
        Some(p) => Baseline::new(p),
        None => Baseline::known_share(),
    };
    let mut hashes = HashMap::new();
    let mut population_values: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for c in &listed.clusters {
        let item = Item::new(&c.name, &c.value);
        baseline.insert(item.clone(), c.size);
        hashes.insert(item, c.cluster_hash.clone());
        population_values
            .entry(c.name.clone())
            .or_default()
            .insert(c.value.clone(), c.size);
    }
    let analysis = mined.analysis_with(&baseline);
    Planned {
        mined,
        analysis,
        baseline,
        hashes,
        population_values,
        customer_profiles,
    }
}

impl Planned {
    pub fn render(&self, e: &Expr) -> Option<String> {
        e.render(&|i| self.hashes.get(i).cloned())
    }

    /// The planner, each size an exact count of the population, counted as the service sends
    /// it (with the exclusions' `AND NOT` terms).
    pub fn plan(&self, pop: &Population, config: &AudienceConfig) -> AudiencePlanning {
        let mut count = |e: &Expr| {
            let sent = match &config.exclude {
                Some(exclude) => e.clone().and_not(exclude),
                None => e.clone(),
            };
            self.render(&sent).and_then(|t| pop.count(&t).ok())
        };
        self.mined
            .plan_audiences(&self.analysis, &self.baseline, config, &mut count)
            .expect("a population size")
    }

    /// The planner `main` had before (the report's best cluster, frequent traits, best
    /// clusters ORed), for comparison.
    pub fn plan_before(&self) -> Vec<AudiencePlan> {
        self.analysis.audiences(&AudienceConfig {
            strategies: vec![Strategy::Precision, Strategy::Reach, Strategy::Hybrid],
            ..AudienceConfig::default()
        })
    }

    /// Rows of the population an expression selects.
    pub fn members(&self, pop: &Population, e: &Expr) -> HashSet<u32> {
        let text = self.render(e).expect("every trait mapped");
        let parsed = pop.parse_expression(&text).expect("parses");
        pop.evaluate(&parsed).iter().collect()
    }

    /// The service's naive-Bayes weights of the customers against the population
    /// (`Mined::lookalike_weights`, as the analyze stage fits them).
    pub fn naive_bayes(&self) -> Vec<icp_analysis::TraitWeight> {
        self.mined
            .lookalike_weights(&self.baseline, icp_analysis::DEFAULT_SMOOTHING)
    }

    /// The service's logistic weights (`Mined::logistic_weights`) against the sample the
    /// embedded provider draws for the analyze stage (`Population::sample_traits`, the same
    /// seed and size, the customers left out), with penalty `penalty`.
    pub fn logistic(
        &self,
        pop: &Population,
        customers: &[PersonId],
        penalty: f64,
    ) -> Vec<icp_analysis::TraitWeight> {
        let nb = self.naive_bayes();
        let traits: Vec<(String, String)> = nb
            .iter()
            .map(|t| (t.name.clone(), t.value.clone()))
            .collect();
        let sample = pop.sample_traits(
            icp_analysis::MAX_ROWS,
            icp_analysis::SAMPLE_SEED,
            customers,
            &traits,
        );
        self.mined
            .logistic_weights(&nb, &sample, penalty, icp_analysis::MAX_ROWS)
    }
}

/// Weights as the population scores them.
pub fn for_scoring(weights: &[icp_analysis::TraitWeight]) -> Vec<TraitWeight> {
    weights
        .iter()
        .map(|w| TraitWeight {
            name: w.name.clone(),
            value: w.value.clone(),
            weight: w.weight as f32,
        })
        .collect()
}

/// How an audience holds a truth set, the customers left out of both.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub size: u64,
    pub hits: u64,
    pub precision: f64,
    pub recall: f64,
    /// `precision / base rate`.
    pub lift: f64,
}

/// The truth (`truth[row]`) measured in `audience`, everyone in `customers` left out.
pub fn measure(audience: &HashSet<u32>, truth: &[bool], customers: &HashSet<u32>) -> Measured {
    let eligible = truth.len() as u64 - customers.len() as u64;
    let positives = truth
        .iter()
        .enumerate()
        .filter(|(r, t)| **t && !customers.contains(&(*r as u32)))
        .count() as u64;
    let mut size = 0;
    let mut hits = 0;
    for r in audience {
        if customers.contains(r) {
            continue;
        }
        size += 1;
        if truth[*r as usize] {
            hits += 1;
        }
    }
    measure_counts(size, hits, positives, eligible)
}

pub fn measure_counts(size: u64, hits: u64, positives: u64, eligible: u64) -> Measured {
    let precision = if size > 0 {
        hits as f64 / size as f64
    } else {
        0.0
    };
    let base = positives as f64 / eligible.max(1) as f64;
    Measured {
        size,
        hits,
        precision,
        recall: hits as f64 / positives.max(1) as f64,
        lift: if base > 0.0 { precision / base } else { 0.0 },
    }
}

/// The `size` best-scoring rows outside `customers` (ties: lower row first).
pub fn top_rows(scores: &[f32], customers: &HashSet<u32>, size: usize) -> HashSet<u32> {
    let mut rows: Vec<u32> = (0..scores.len() as u32)
        .filter(|r| !customers.contains(r))
        .collect();
    rows.sort_by(|&a, &b| {
        scores[b as usize]
            .total_cmp(&scores[a as usize])
            .then(a.cmp(&b))
    });
    rows.truncate(size);
    rows.into_iter().collect()
}
