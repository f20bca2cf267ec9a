//! The known-share baseline: indexes when the provider gives cluster sizes but no population
//! size (each attribute measured among the persons, and the customers, for whom it is known).

mod common;

use common::item;
use icp_analysis::{Analysis, AnalysisConfig, Analyzer, Baseline, BaselineKind};

fn config() -> AnalysisConfig {
    AnalysisConfig {
        min_support: 0.05,
        max_cluster_size: 3,
        ..AnalysisConfig::default()
    }
}

/// 10 customers: `a` known for 8 (4 `x`, 4 `y`), `b` known for all (5 `p`, 5 `q`), `c = z`
/// for all. Customers 0..4 have `a = x` and `b = p`.
fn partly_known() -> Analyzer {
    let profiles = (0..10).map(|c| {
        let mut fields = vec![("b", if c < 5 { "p" } else { "q" }), ("c", "z")];
        match c {
            0..4 => fields.push(("a", "x")),
            4..8 => fields.push(("a", "y")),
            _ => {}
        }
        fields
    });
    common::analyzer(config(), profiles)
}

/// `a` known for 100 persons (30 `x`, 70 `y`), `b` for 200 (50 `p`, 150 `q`), `c` for 400.
fn sizes(mut baseline: Baseline) -> Baseline {
    for (name, value, size) in [
        ("a", "x", 30),
        ("a", "y", 70),
        ("b", "p", 50),
        ("b", "q", 150),
        ("c", "z", 400),
    ] {
        baseline.insert(item(name, value), size);
    }
    baseline
}

fn index_of(analysis: &Analysis, name: &str, value: &str) -> f64 {
    analysis
        .top_attributes
        .iter()
        .find(|t| t.name == name && t.value == value)
        .and_then(|t| t.index)
        .unwrap_or_else(|| panic!("{name} = {value} has no index"))
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance * a.abs().max(b.abs())
}

#[test]
fn the_index_is_the_share_among_those_whose_attribute_is_known() {
    let baseline = sizes(Baseline::known_share());
    assert_eq!(baseline.kind(), BaselineKind::KnownShare);
    assert_eq!(baseline.known("a"), 100);
    assert_eq!(baseline.prevalence(&item("a", "x")), Some(0.3));
    assert_eq!(baseline.prevalence(&item("b", "p")), Some(0.25));

    let analysis = partly_known()
        .finish_with_baseline(&baseline)
        .expect("analyses");
    // a = x: 4 of the 8 customers whose `a` is known, 30 of the 100 persons.
    assert!(close(
        index_of(&analysis, "a", "x"),
        (4.0 / 8.0) / 0.3,
        1e-12
    ));
    assert!(close(
        index_of(&analysis, "a", "y"),
        (4.0 / 8.0) / 0.7,
        1e-12
    ));
    // b = p: 5 of 10 customers, 50 of 200 persons.
    assert!(close(index_of(&analysis, "b", "p"), 0.5 / 0.25, 1e-12));
    assert!(close(index_of(&analysis, "c", "z"), 1.0, 1e-12));

    // The pair a = x, b = p: 4 of 10 customers against what 10 customers like the population
    // would hold, 10 · (0.3 · 8/10) · (0.25 · 10/10).
    let pair = analysis
        .top_intersections
        .iter()
        .find(|p| p.items == vec![item("a", "x"), item("b", "p")])
        .expect("the pair is reported");
    let expected = 0.4 / ((0.3 * 0.8) * 0.25);
    assert!(close(pair.index.expect("indexed"), expected, 1e-12));
    assert!(close(pair.score, 0.4 * expected.ln(), 1e-12));

    assert_eq!(analysis.notes.baseline, Some(BaselineKind::KnownShare));
    assert_eq!(analysis.notes.population_size, None);
    assert_eq!(analysis.notes.customers_with_attribute["a"], 8);
    assert_eq!(analysis.notes.customers_with_attribute["b"], 10);
    assert!(
        analysis
            .notes
            .messages
            .iter()
            .any(|m| m.contains("no population size")),
        "{:?}",
        analysis.notes.messages
    );
}

#[test]
fn applied_afterwards_it_gives_what_ranking_with_it_gives() {
    let baseline = sizes(Baseline::known_share());
    let before = partly_known()
        .finish_with_baseline(&baseline)
        .expect("analyses");
    let mut after = partly_known().finish().expect("analyses");
    assert_eq!(after.notes.baseline, None);
    after.apply_baseline(&baseline);
    assert_eq!(after, before);
}

#[test]
fn a_profile_repeating_an_attribute_counts_once_among_those_who_know_it() {
    let mut analyzer = Analyzer::new(config());
    analyzer.add_profile([("a", "x"), ("a", "y")]);
    analyzer.add_profile([("a", "x")]);
    let analysis = analyzer.finish().expect("analyses");
    assert_eq!(analysis.notes.customers_with_attribute["a"], 2);
}

#[test]
fn where_everyone_has_every_attribute_known_share_gives_the_population_index() {
    // Every customer and every person has every attribute: Σ size(a = *) is the population
    // size, so both baselines give the same figures.
    let profiles = (0..200u32).map(|c| {
        let pick =
            |k: u32, of: &'static [&'static str]| of[((c * k + c / 7) % of.len() as u32) as usize];
        vec![
            ("a", pick(3, &["x", "y"])),
            ("b", pick(5, &["p", "q", "r"])),
            ("c", pick(7, &["u", "v"])),
            (
                "d",
                if c < 120 {
                    "seg"
                } else {
                    pick(11, &["e", "f"])
                },
            ),
        ]
    });
    let profiles: Vec<_> = profiles.collect();
    let population = 10_000;
    let mut known = Baseline::known_share();
    for (name, values) in [
        ("a", &[("x", 6_000), ("y", 4_000)][..]),
        ("b", &[("p", 2_000), ("q", 3_000), ("r", 5_000)][..]),
        ("c", &[("u", 5_000), ("v", 5_000)][..]),
        ("d", &[("seg", 500), ("e", 4_500), ("f", 5_000)][..]),
    ] {
        for (value, size) in values {
            known.insert(item(name, value), *size);
        }
    }
    let mut sized = known.clone();
    sized.population_size = Some(population);
    assert_eq!(sized.kind(), BaselineKind::PopulationSize);

    let run = |baseline: &Baseline| {
        common::analyzer(config(), profiles.iter().cloned())
            .finish_with_baseline(baseline)
            .expect("analyses")
    };
    let (a, b) = (run(&sized), run(&known));
    assert_eq!(a.notes.baseline, Some(BaselineKind::PopulationSize));
    assert_eq!(a.notes.population_size, Some(population));
    for (x, y) in a.top_attributes.iter().zip(&b.top_attributes) {
        assert_eq!(x.item(), y.item());
        assert!(
            close(x.index.unwrap(), y.index.unwrap(), 1e-12),
            "{x:?} {y:?}"
        );
    }
    assert!(!a.top_intersections.is_empty() && !a.multi_attribute_clusters.is_empty());
    for (x, y) in a.top_intersections.iter().zip(&b.top_intersections) {
        assert_eq!(x.items, y.items);
        assert!(
            close(x.index.unwrap(), y.index.unwrap(), 1e-12),
            "{x:?} {y:?}"
        );
    }
    for (x, y) in a
        .multi_attribute_clusters
        .iter()
        .zip(&b.multi_attribute_clusters)
    {
        assert_eq!(x.items, y.items);
        assert!(
            close(x.index.unwrap(), y.index.unwrap(), 1e-12),
            "{x:?} {y:?}"
        );
    }
}

#[test]
fn a_value_of_size_zero_or_one_not_listed_gives_no_index() {
    let mut baseline = Baseline::known_share();
    baseline.insert(item("a", "x"), 0);
    baseline.insert(item("a", "y"), 0);
    baseline.insert(item("b", "p"), 0);
    baseline.insert(item("b", "q"), 10);
    let analysis = partly_known()
        .finish_with_baseline(&baseline)
        .expect("analyses");
    for t in &analysis.top_attributes {
        let finite = t.index.is_none_or(f64::is_finite);
        assert!(finite, "{t:?}");
        if t.name == "a" || (t.name == "b" && t.value == "p") || t.name == "c" {
            assert_eq!(t.index, None, "{t:?}");
        }
    }
    assert!(close(index_of(&analysis, "b", "q"), 0.5, 1e-12));
}

#[test]
fn a_flag_is_measured_among_all_persons_and_customers() {
    // `f = Yes` is listed alone (a flag: the others do not have it); `g` is known for 1000
    // persons, the largest sum, which stands for the population.
    let mut baseline = Baseline::known_share();
    baseline.insert(item("f", "Yes"), 250);
    baseline.insert(item("g", "x"), 600);
    baseline.insert(item("g", "y"), 400);
    assert_eq!(baseline.prevalence(&item("f", "Yes")), Some(0.25));
    let profiles = (0..10).map(|c| {
        let mut fields = vec![("g", if c < 6 { "x" } else { "y" })];
        if c < 8 {
            fields.push(("f", "Yes"));
        }
        fields
    });
    let analysis = common::analyzer(config(), profiles)
        .finish_with_baseline(&baseline)
        .expect("analyses");
    // 8 of all 10 customers against 250 of the 1000 persons, not 8 of 8 against 250 of 250.
    assert!(close(index_of(&analysis, "f", "Yes"), 0.8 / 0.25, 1e-12));
    assert!(close(index_of(&analysis, "g", "x"), 0.6 / 0.6, 1e-12));
}
