//! Generation time and memory of a population of N persons (default 10,000,000):
//! `cargo run --release -p icp-population --example measure -- 10000000`
//!
//! Prints wall time to generate, the engine's own byte count, and the process's peak resident
//! memory (VmHWM) — the figure that must stay under 4 GB at 10M persons.

use std::time::Instant;

use icp_contract::{HashType, IdType};
use icp_population::{GeneratorConfig, Population};

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
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
}
