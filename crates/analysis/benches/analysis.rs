//! Full analysis (ingest, mining to size 5 at 2% support, ranking, closed clusters) on in-memory
//! synthetic profiles, 50 attributes (18 traits per customer) and 150 (47.5, "heavy").
//! `cargo bench -p icp-analysis --bench analysis`.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use icp_analysis::synthetic::{Dataset, SyntheticConfig, generate};
use icp_analysis::{AnalysisConfig, Analyzer};

fn analyse(data: &Dataset) -> icp_analysis::Analysis {
    let mut analyzer = Analyzer::new(AnalysisConfig::default());
    for c in 0..data.customers() {
        analyzer.add_profile(data.profile(c));
    }
    analyzer.finish().expect("synthetic data analyses")
}

fn full_analysis(c: &mut Criterion) {
    let mut group = c.benchmark_group("full_analysis");
    group.sample_size(10);
    for customers in [10_000, 100_000] {
        let data = generate(&SyntheticConfig {
            customers,
            ..SyntheticConfig::default()
        });
        group.bench_with_input(BenchmarkId::from_parameter(customers), &data, |b, data| {
            b.iter(|| analyse(data))
        });
    }
    group.finish();
}

/// Dense profiles: 150 attributes, 47.5 traits per customer, ~2 million frequent itemsets.
fn full_analysis_heavy(c: &mut Criterion) {
    let mut group = c.benchmark_group("full_analysis_heavy");
    group.sample_size(10);
    let customers = 100_000;
    let data = generate(&SyntheticConfig {
        customers,
        attributes: 150,
        ..SyntheticConfig::default()
    });
    group.bench_with_input(BenchmarkId::from_parameter(customers), &data, |b, data| {
        b.iter(|| analyse(data))
    });
    group.finish();
}

criterion_group!(benches, full_analysis, full_analysis_heavy);
criterion_main!(benches);
