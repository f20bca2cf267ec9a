//! Exactness against mlxtend (fpgrowth + association_rules) on the same data.
//!
//! Runs `peers/mlxtend_check.py` with the interpreter named by `ICP_PYTHON` (which must have
//! `peers/requirements.txt` installed). When `ICP_PYTHON` is unset the check cannot run and says
//! so; when it is set, any failure to run the script fails the test.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use icp_analysis::synthetic::{SyntheticConfig, generate};
use icp_analysis::{AnalysisConfig, Analyzer, Item};

const TOLERANCE: f64 = 1e-9;

fn key(items: &[Item]) -> Vec<String> {
    let mut k: Vec<String> = items
        .iter()
        .map(|i| format!("{}={}", i.name, i.value))
        .collect();
    k.sort();
    k
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= TOLERANCE * a.abs().max(b.abs()).max(1.0)
}

struct Reference {
    customers: u64,
    itemsets: BTreeMap<Vec<String>, (f64, f64)>,
    pair_lifts: BTreeMap<Vec<String>, f64>,
}

fn run_mlxtend(python: &str, data: &str, min_support: f64, max_len: usize) -> Reference {
    let dir = std::env::temp_dir().join(format!("icp-analysis-mlxtend-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    let input = dir.join("data.tsv");
    let output = dir.join("reference.json");
    std::fs::File::create(&input)
        .and_then(|mut f| f.write_all(data.as_bytes()))
        .expect("write dataset");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peers/mlxtend_check.py");
    let result = Command::new(python)
        .arg(&script)
        .arg(&input)
        .arg(min_support.to_string())
        .arg(max_len.to_string())
        .arg(&output)
        .output()
        .unwrap_or_else(|e| panic!("ICP_PYTHON={python} could not be started: {e}"));
    assert!(
        result.status.success(),
        "mlxtend_check.py failed ({}): {}",
        result.status,
        String::from_utf8_lossy(&result.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&output).expect("read reference"))
            .expect("reference is JSON");
    let _ = std::fs::remove_dir_all(&dir);

    let strings = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v
            .as_array()
            .expect("items array")
            .iter()
            .map(|s| s.as_str().expect("item string").to_owned())
            .collect();
        k.sort();
        k
    };
    let number = |v: &serde_json::Value| v.as_f64().expect("number");
    Reference {
        customers: json["customers"].as_u64().expect("customers"),
        itemsets: json["itemsets"]
            .as_array()
            .expect("itemsets")
            .iter()
            .map(|s| {
                (
                    strings(&s["items"]),
                    (number(&s["support"]), number(&s["lift"])),
                )
            })
            .collect(),
        pair_lifts: json["pair_rules"]
            .as_array()
            .expect("pair_rules")
            .iter()
            .map(|r| (strings(&r["items"]), number(&r["lift"])))
            .collect(),
    }
}

fn check(python: &str, customers: usize, min_support: f64, max_len: usize) {
    let data = generate(&SyntheticConfig {
        customers,
        attributes: 30,
        seed: customers as u64,
        ..SyntheticConfig::default()
    });
    // Every 97th customer has no trait at all: they count in N on both sides.
    let mut text = String::new();
    let config = AnalysisConfig {
        min_support,
        max_cluster_size: max_len,
        top_intersections: usize::MAX,
        top_clusters: usize::MAX,
        ..AnalysisConfig::default()
    };
    let mut analyzer = Analyzer::new(config);
    for c in 0..data.customers() {
        if c % 97 == 0 {
            analyzer.add_profile(std::iter::empty());
        } else {
            let fields: Vec<(&str, &str)> = data.profile(c).collect();
            let line: Vec<String> = fields.iter().map(|(a, v)| format!("{a}={v}")).collect();
            text.push_str(&line.join("\t"));
            analyzer.add_profile(fields);
        }
        text.push('\n');
    }
    let reference = run_mlxtend(python, &text, min_support, max_len);
    let mined = analyzer.mine().expect("mines");
    assert_eq!(reference.customers, mined.customers());
    let n = mined.customers() as f64;

    let ours: BTreeMap<Vec<String>, u64> =
        mined.itemsets().map(|s| (key(&s.items), s.count)).collect();
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        reference.itemsets.keys().collect::<Vec<_>>(),
        "the frequent itemsets differ from mlxtend's"
    );
    let singles: BTreeMap<&str, f64> = ours
        .iter()
        .filter(|(k, _)| k.len() == 1)
        .map(|(k, &c)| (k[0].as_str(), c as f64 / n))
        .collect();
    for (items, &count) in &ours {
        let (support, lift) = reference.itemsets[items];
        let our_support = count as f64 / n;
        assert!(
            close(our_support, support),
            "{items:?}: support {our_support} vs {support}"
        );
        let expected: f64 = items.iter().map(|i| singles[i.as_str()]).product();
        assert!(
            close(our_support / expected, lift),
            "{items:?}: lift vs {lift}"
        );
    }

    // The report's own numbers, pairs against association_rules and clusters against fpgrowth.
    let analysis = mined.analysis();
    assert!(
        !analysis.top_intersections.is_empty() && !analysis.multi_attribute_clusters.is_empty()
    );
    for pair in &analysis.top_intersections {
        let k = key(&pair.items);
        let lift = reference.pair_lifts[&k];
        assert!(
            close(pair.lift, lift),
            "{k:?}: pair lift {} vs {lift}",
            pair.lift
        );
        assert!(close(pair.support, reference.itemsets[&k].0));
    }
    for cluster in &analysis.multi_attribute_clusters {
        let (support, lift) = reference.itemsets[&key(&cluster.items)];
        assert!(close(cluster.support, support) && close(cluster.lift, lift));
    }
    println!(
        "mlxtend check: {} itemsets, {} pair rules equal to {TOLERANCE:e} ({customers} customers, support {min_support}, size ≤ {max_len})",
        ours.len(),
        reference.pair_lifts.len()
    );
}

#[test]
fn supports_and_lifts_equal_mlxtend() {
    let Ok(python) = std::env::var("ICP_PYTHON") else {
        println!(
            "mlxtend check DID NOT RUN: set ICP_PYTHON to a Python with crates/analysis/peers/requirements.txt installed"
        );
        return;
    };
    check(&python, 3000, 0.03, 5);
    check(&python, 800, 0.01, 4);
}
