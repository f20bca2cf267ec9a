//! Full analysis (ingest, mining to size 5 at 2% support, ranking, closed clusters) on in-memory
//! synthetic profiles. `cargo bench -p icp-analysis --bench analysis`.

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

criterion_group!(benches, full_analysis);
criterion_main!(benches);
