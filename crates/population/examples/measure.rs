//! Generation time and memory of a population of N persons (default 10,000,000):
//! `cargo run --release -p icp-population --example measure -- 10000000`
//!
//! Prints wall time to generate, the engine's own byte count, and the process's peak resident
//! memory (VmHWM) — the figure that must stay under 4 GB at 10M persons.

use std::time::Instant;

use icp_contract::{GetPersonRequest, HashType, IdType, IdentifierGroup, ResolveRequest};
use icp_population::{GeneratorConfig, Population};

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Process CPU seconds (user + system), from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 11 and 12 after the `)`.
    (ticks(11) + ticks(12)) / 100.0
}

/// Runs `f` (which handles `items` items) for about three seconds; prints items per wall
/// second and per CPU second, the latter being what a core does when the machine is shared.
fn rate(name: &str, items: usize, mut f: impl FnMut()) {
    let (t, c) = (Instant::now(), cpu_seconds());
    let mut n = 0;
    while t.elapsed().as_secs_f64() < 3.0 {
        f();
        n += items;
    }
    let wall = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - c;
    println!(
        "{name}: {:.0} k/s wall, {:.0} k/s per CPU second ({n} items, {wall:.1} s wall, {cpu:.1} s CPU)",
        n as f64 / wall / 1e3,
        n as f64 / cpu / 1e3
    );
}

fn main() {
    let persons: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let t = Instant::now();
    let pop = Population::generate(&GeneratorConfig {
        persons,
        ..GeneratorConfig::default()
    });
    let gen_s = t.elapsed().as_secs_f64();
    println!(
        "generate {persons} persons: {gen_s:.2} s; {} clusters; engine bytes {:.0} MiB; peak RSS {:.0} MiB",
        pop.cluster_count(),
        pop.memory_bytes() as f64 / 1048576.0,
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    let t = Instant::now();
    pop.warm_identifier_index(IdType::Email, HashType::Plaintext);
    println!(
        "email/plaintext index: {:.2} s; engine bytes {:.0} MiB; peak RSS {:.0} MiB",
        t.elapsed().as_secs_f64(),
        pop.memory_bytes() as f64 / 1048576.0,
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    let t = Instant::now();
    pop.warm_identifier_index(IdType::Email, HashType::Sha256);
    println!(
        "email/sha256 index: {:.2} s; engine bytes {:.0} MiB; peak RSS {:.0} MiB",
        t.elapsed().as_secs_f64(),
        pop.memory_bytes() as f64 / 1048576.0,
        peak_rss_mib().unwrap_or(f64::NAN)
    );

    if persons > 2_000_000 {
        return;
    }
    let ids: Vec<_> = (0..1000)
        .map(|i| pop.person_id(i * 997 % pop.len()))
        .collect();
    let req = GetPersonRequest {
        person_ids: ids,
        domains: None,
        format: None,
        workflow_id: None,
    };
    let emails: Vec<String> = req
        .person_ids
        .chunks(1000)
        .flat_map(|c| {
            pop.get_person(&GetPersonRequest {
                person_ids: c.to_vec(),
                domains: Some(vec!["email".to_owned()]),
                format: None,
                workflow_id: None,
            })
            .unwrap()
            .profiles
        })
        .filter_map(|p| p.domains.get("email1").cloned())
        .collect();
    let resolve = ResolveRequest {
        multi_identifiers: vec![IdentifierGroup {
            id_type: IdType::Email,
            hash_type: HashType::Plaintext,
            values: [emails.clone(), emails.clone(), emails].concat(),
        }],
        format: None,
        workflow_id: None,
    };
    let n = resolve.multi_identifiers[0].values.len();
    rate("resolve email/plaintext", n, || {
        std::hint::black_box(pop.resolve_identities(&resolve).unwrap());
    });
    rate("get_person, 1000 profiles, all domains", 1000, || {
        std::hint::black_box(pop.get_person(&req).unwrap());
    });
}
