//! Population engine benchmarks (criterion).
//!
//! `cargo bench -p icp-population --bench population` runs them all; the `find_persons` group
//! works on `ICP_BENCH_PERSONS` persons (default 10,000,000), the others on 1,000,000.
//! Filter with a name, e.g. `-- find_persons`.

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use icp_contract::ListClustersRequest;
use icp_contract::{
    DistanceUnit, FindPersonsRequest, GetPersonRequest, HashType, IdType, IdentifierGroup,
    Location, ResolveRequest, digest_hex, normalize_address,
};
use icp_population::{GeneratorConfig, Population, TraitWeight};

fn million() -> &'static Population {
    static POP: OnceLock<Population> = OnceLock::new();
    POP.get_or_init(|| {
        Population::generate(&GeneratorConfig {
            persons: 1_000_000,
            ..GeneratorConfig::default()
        })
    })
}

fn large() -> &'static Population {
    static POP: OnceLock<Population> = OnceLock::new();
    POP.get_or_init(|| {
        let persons = std::env::var("ICP_BENCH_PERSONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10_000_000);
        Population::generate(&GeneratorConfig {
            persons,
            ..GeneratorConfig::default()
        })
    })
}

fn generate(c: &mut Criterion) {
    let mut g = c.benchmark_group("generate");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(1_000_000));
    g.bench_function("1M persons", |b| {
        b.iter(|| {
            black_box(Population::generate(&GeneratorConfig {
                persons: 1_000_000,
                ..GeneratorConfig::default()
            }))
        })
    });
    g.finish();
}

/// 3,000 identifiers of persons spread over the population (every 4th one of nobody's).
fn identifiers(pop: &Population, id_type: IdType, hash: HashType) -> Vec<String> {
    let key = match id_type {
        IdType::Email => "email1",
        IdType::Phone => "phone1",
        IdType::Address => "address1",
        IdType::Maid => "maid1",
    };
    let ids: Vec<_> = (0..3_000)
        .map(|i| pop.person_id(i * 331 % pop.len()))
        .collect();
    let mut out = Vec::new();
    for chunk in ids.chunks(1000) {
        let profiles = pop
            .get_person(&GetPersonRequest {
                person_ids: chunk.to_vec(),
                domains: Some(vec![id_type.as_str().to_owned()]),
                format: None,
                workflow_id: None,
            })
            .unwrap()
            .profiles;
        for (i, p) in profiles.into_iter().enumerate() {
            let v = if i % 4 == 3 {
                format!("nobody{i}@example.com")
            } else {
                match p.domains.get(key) {
                    Some(v) => v.clone(),
                    None => continue,
                }
            };
            let v = match id_type {
                IdType::Address => normalize_address(&v).unwrap(),
                _ => v,
            };
            out.push(digest_hex(hash, &v));
        }
    }
    out
}

fn resolve(c: &mut Criterion) {
    let pop = million();
    let mut g = c.benchmark_group("resolve (1M population)");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    for (id_type, hash) in [
        (IdType::Email, HashType::Plaintext),
        (IdType::Email, HashType::Sha256),
        (IdType::Phone, HashType::Plaintext),
    ] {
        pop.warm_identifier_index(id_type, hash);
        let values = identifiers(pop, id_type, hash);
        let req = ResolveRequest {
            multi_identifiers: vec![IdentifierGroup {
                id_type,
                hash_type: hash,
                values,
            }],
            format: None,
            workflow_id: None,
        };
        g.throughput(Throughput::Elements(
            req.multi_identifiers[0].values.len() as u64
        ));
        g.bench_function(format!("{}_{}", id_type.as_str(), hash.as_str()), |b| {
            b.iter(|| black_box(pop.resolve_identities(&req).unwrap()))
        });
    }
    g.finish();
}

fn get_person(c: &mut Criterion) {
    let pop = million();
    let mut g = c.benchmark_group("get_person (1M population)");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(1000));
    let ids: Vec<_> = (0..1000)
        .map(|i| pop.person_id(i * 997 % pop.len()))
        .collect();
    for (name, domains) in [
        ("1000 profiles, all domains", None),
        (
            "1000 profiles, trait domains",
            Some(
                [
                    "demographic",
                    "household",
                    "financial",
                    "interest",
                    "affinity",
                    "lifestyle",
                    "purchase",
                ]
                .map(str::to_owned)
                .to_vec(),
            ),
        ),
    ] {
        let req = GetPersonRequest {
            person_ids: ids.clone(),
            domains,
            format: None,
            workflow_id: None,
        };
        g.bench_function(name, |b| {
            b.iter(|| black_box(pop.get_person(&req).unwrap()))
        });
    }
    g.finish();
}

/// The expressions both this engine and PostgreSQL answer (see `examples/pg_compare.rs`).
pub fn expressions(pop: &Population) -> Vec<(&'static str, String)> {
    let h = |n: &str, v: &str| pop.cluster_for(n, v).unwrap().cluster_hash;
    let fit = h("interested_fitness", "Yes");
    let healthy = h("interested_healthy_living", "Yes");
    let aff = h("fitness_affinity", "High");
    let male = h("gender", "Male");
    vec![
        ("AND of 3", format!("{fit} AND {healthy} AND {aff}")),
        ("OR of 3", format!("{fit} OR {healthy} OR {aff}")),
        (
            "hybrid with AND NOT",
            format!("(({fit} AND {healthy}) OR ({fit} AND {aff})) AND NOT {male}"),
        ),
    ]
}

fn find_persons(c: &mut Criterion) {
    let pop = large();
    let label = format!("find_persons ({}M population)", pop.len() / 1_000_000);
    let mut g = c.benchmark_group(label);
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    let chicago = Location {
        latitude: 41.8781,
        longitude: -87.6298,
        radius: 50.0,
        unit: DistanceUnit::Miles,
    };
    for (name, expr) in expressions(pop) {
        g.bench_function(format!("{name}: count"), |b| {
            b.iter(|| black_box(pop.count(&expr).unwrap()))
        });
        let mut req = FindPersonsRequest {
            expression: expr.clone(),
            identifier_type: Some(IdType::Email),
            location: None,
            audience_limit: None,
            format: None,
            workflow_id: Some("bench".to_owned()),
        };
        g.bench_function(format!("{name}: total + sample"), |b| {
            b.iter(|| black_box(pop.find_persons(&req).unwrap()))
        });
        req.location = Some(chicago);
        g.bench_function(format!("{name}: 50-mile radius, total + sample"), |b| {
            b.iter(|| black_box(pop.find_persons(&req).unwrap()))
        });
    }
    g.finish();
}

/// Ranked tiers over the large population: every cluster weighted (as a naive-Bayes model over
/// all the customers' traits is), 1 % of the persons excluded as customers, tiers at 1, 2, 5
/// and 10 %.
fn rank(c: &mut Criterion) {
    let pop = large();
    let mut weights = Vec::new();
    let mut offset = 0;
    loop {
        let page = pop
            .list_clusters(&ListClustersRequest {
                offset: Some(offset),
                limit: Some(1000),
                ..ListClustersRequest::default()
            })
            .expect("list clusters");
        for (i, cluster) in page.clusters.iter().enumerate() {
            weights.push(TraitWeight {
                name: cluster.name.clone(),
                value: cluster.value.clone(),
                // Deterministic, varied, both signs.
                weight: ((offset as usize + i) % 17) as f32 * 0.37 - 2.5,
            });
        }
        match page.next_offset {
            Some(next) => offset = next,
            None => break,
        }
    }
    let customers: Vec<_> = (0..pop.len() / 100)
        .map(|i| pop.person_id(i * 100))
        .collect();
    let label = format!("rank ({}M population)", pop.len() / 1_000_000);
    let mut g = c.benchmark_group(label);
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(pop.len() as u64));
    g.bench_function(format!("scores, {} weighted traits", weights.len()), |b| {
        b.iter(|| black_box(pop.scores_of(&weights).expect("scores")))
    });
    g.bench_function("scores and tiers 1/2/5/10 %", |b| {
        b.iter(|| {
            black_box(
                pop.rank_tiers(&weights, &customers, &[0.01, 0.02, 0.05, 0.10])
                    .expect("tiers"),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, generate, resolve, get_person, find_persons, rank);
criterion_main!(benches);
