//! Benchmark driver: generates a synthetic dataset file, or analyses one and prints timings.
//!
//! ```text
//! icp_bench generate <customers> <out.tsv> [seed] [zip_codes] [attributes]
//! icp_bench run <in.tsv> [min_support] [max_size] [threads]
//! icp_bench memory <customers> [min_support] [max_size] [attributes] [threads]
//! ```
//! The file has one customer per line, tab-separated `attribute=value` traits. `run` prints one
//! JSON line: ingest and mining times (seconds), counts, and peak resident memory.

use std::io::{BufRead, BufWriter, Write};
use std::time::Instant;

use icp_analysis::synthetic::{SyntheticConfig, generate};
use icp_analysis::{AnalysisConfig, Analyzer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    match arg(0) {
        Some("generate") => {
            let customers: usize = arg(1).ok_or("customers")?.parse()?;
            let out = arg(2).ok_or("output file")?;
            let seed = arg(3).map_or(Ok(42), str::parse)?;
            let zip_codes = arg(4).map_or(Ok(0), str::parse)?;
            let attributes = arg(5).map_or(Ok(50), str::parse)?;
            let data = generate(&SyntheticConfig {
                customers,
                seed,
                zip_codes,
                attributes,
                ..SyntheticConfig::default()
            });
            let mut w = BufWriter::new(std::fs::File::create(out)?);
            for c in 0..data.customers() {
                let line: Vec<String> = data.profile(c).map(|(a, v)| format!("{a}={v}")).collect();
                writeln!(w, "{}", line.join("\t"))?;
            }
            w.flush()?;
            eprintln!(
                "wrote {customers} customers, {:.1} traits each on average",
                data.mean_traits()
            );
        }
        Some("run") => {
            let input = arg(1).ok_or("input file")?;
            let config = config_from(arg(2), arg(3), arg(4))?;
            let started = Instant::now();
            let mut analyzer = Analyzer::new(config);
            let reader = std::io::BufReader::new(std::fs::File::open(input)?);
            for line in reader.lines() {
                let line = line?;
                analyzer.add_profile(line.split('\t').filter_map(|field| field.split_once('=')));
            }
            let ingest = started.elapsed().as_secs_f64();
            report(analyzer, ingest)?;
        }
        Some("memory") => {
            // Analyses an in-memory synthetic dataset: times exclude file parsing.
            let customers: usize = arg(1).ok_or("customers")?.parse()?;
            let config = config_from(arg(2), arg(3), arg(5))?;
            let attributes = arg(4).map_or(Ok(50), str::parse)?;
            let data = generate(&SyntheticConfig {
                customers,
                attributes,
                ..SyntheticConfig::default()
            });
            eprintln!("{:.1} traits per customer on average", data.mean_traits());
            let started = Instant::now();
            let mut analyzer = Analyzer::new(config);
            for c in 0..data.customers() {
                analyzer.add_profile(data.profile(c));
            }
            let ingest = started.elapsed().as_secs_f64();
            report(analyzer, ingest)?;
        }
        _ => {
            eprintln!("usage: icp_bench generate|run|memory …  (see the source's header)");
            std::process::exit(2);
        }
    }
    Ok(())
}

fn config_from(
    support: Option<&str>,
    size: Option<&str>,
    threads: Option<&str>,
) -> Result<AnalysisConfig, Box<dyn std::error::Error>> {
    let defaults = AnalysisConfig::default();
    Ok(AnalysisConfig {
        min_support: support.map_or(Ok(defaults.min_support), str::parse)?,
        max_cluster_size: size.map_or(Ok(defaults.max_cluster_size), str::parse)?,
        threads: threads.map_or(Ok(defaults.threads), str::parse)?,
        ..defaults
    })
}

fn report(analyzer: Analyzer, ingest: f64) -> Result<(), Box<dyn std::error::Error>> {
    let customers = analyzer.customers();
    let started = Instant::now();
    let mined = analyzer.mine()?;
    let mine = started.elapsed().as_secs_f64();
    let analysis = mined.analysis();
    let total_finish = started.elapsed().as_secs_f64();
    // Order-independent digest of every itemset and its count, to compare engines' output.
    let (itemsets, digest) = mined.itemsets().fold((0u64, 0u64), |(n, sum), set| {
        let mut h = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&set.items, &mut h);
        std::hash::Hash::hash(&set.count, &mut h);
        (n + 1, sum.wrapping_add(std::hash::Hasher::finish(&h)))
    });
    println!(
        "{{\"customers\":{customers},\"ingest_s\":{ingest:.4},\"mine_s\":{mine:.4},\"finish_s\":{total_finish:.4},\"digest\":\"{digest:016x}\",\"itemsets\":{itemsets},\"frequent_traits\":{},\"pairs\":{},\"sets3plus\":{},\"clusters\":{},\"peak_rss_mb\":{}}}",
        analysis.notes.frequent_traits,
        analysis.notes.frequent_pairs,
        analysis.notes.frequent_itemsets,
        analysis.multi_attribute_clusters.len(),
        peak_rss_mb().map_or("null".to_owned(), |m| m.to_string()),
    );
    Ok(())
}

/// Peak resident set size from `/proc/self/status` (Linux), in MiB.
fn peak_rss_mb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}
