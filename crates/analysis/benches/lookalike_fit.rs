//! The logistic lookalike fit as the analyze stage runs it for a 100,000-customer job on the
//! generated population of 1M: the customers (planted from `tech_professionals`, noise 0.3)
//! against the embedded provider's sample, over the naive-Bayes traits, both capped at
//! `MAX_ROWS`. `cargo bench -p icp-analysis --bench lookalike_fit`.

#[path = "../examples/quality/lab.rs"]
mod lab;

use std::collections::HashMap;

use criterion::{Criterion, criterion_group, criterion_main};
use icp_analysis::{AnalysisConfig, DEFAULT_PENALTY, MAX_ROWS, SAMPLE_SEED, fit_logistic};
use icp_population::{GeneratorConfig, Population};

fn logistic_fit(c: &mut Criterion) {
    let pop = Population::generate(&GeneratorConfig {
        persons: 1_000_000,
        seed: 0x0A0D_1E5C,
    });
    let ids = lab::planted_customers(&pop, "tech_professionals", 100_000, 0.3, 7);
    let planned = lab::analyse(&pop, &ids, AnalysisConfig::default());
    let traits: Vec<(String, String)> = planned
        .naive_bayes()
        .into_iter()
        .map(|t| (t.name, t.value))
        .collect();
    let position: HashMap<&(String, String), u32> = traits
        .iter()
        .enumerate()
        .map(|(j, t)| (t, j as u32))
        .collect();
    let customers: Vec<Vec<u32>> = planned
        .customer_profiles
        .iter()
        .map(|p| {
            p.iter()
                .filter_map(|(k, v)| position.get(&(k.clone(), v.clone())).copied())
                .collect()
        })
        .collect();
    let sample = pop.sample_traits(MAX_ROWS, SAMPLE_SEED, &ids, &traits);
    let fit = fit_logistic(traits.len(), &customers, &sample, DEFAULT_PENALTY, MAX_ROWS);
    eprintln!(
        "{} traits, {} + {} rows: {} Newton steps, {} Hessians, converged {}",
        traits.len(),
        fit.positives,
        fit.negatives,
        fit.steps,
        fit.hessians,
        fit.converged
    );
    let mut group = c.benchmark_group("lookalike_fit");
    group.sample_size(10);
    group.bench_function("logistic_100k_customers", |b| {
        b.iter(|| fit_logistic(traits.len(), &customers, &sample, DEFAULT_PENALTY, MAX_ROWS))
    });
    group.finish();
}

criterion_group!(benches, logistic_fit);
criterion_main!(benches);
