//! The example of the upstream's ICP workflow document (`get_person` profiles of Jane and Sarah,
//! `list_clusters` sizes, the reach expression) run through the engine.

use std::collections::HashMap;

mod common;

use common::{analyzer, item};
use icp_analysis::{AnalysisConfig, AudienceConfig, Baseline, Expr, Item, Strategy};

const JANE: &[(&str, &str)] = &[
    ("gender", "Female"),
    ("generation", "Millennial"),
    ("interested_fitness", "Yes"),
    ("interested_healthy_living", "Yes"),
    ("fitness_affinity", "High"),
    ("household_income_range", "$75K-$100K"),
    ("email1", "customer1@example.com"),
    ("email2", "alt1@example.com"),
    ("phone1", "5551234567"),
    ("first_name", "Jane"),
    ("last_name", "Smith"),
];

const SARAH: &[(&str, &str)] = &[
    ("gender", "Female"),
    ("generation", "Gen X"),
    ("interested_healthy_living", "Yes"),
    ("interested_outdoors", "Yes"),
    ("email1", "customer2@example.com"),
    ("first_name", "Sarah"),
];

/// `list_clusters` of the document: name, value, hash, size.
const CLUSTERS: &[(&str, &str, &str, u64)] = &[
    (
        "gender",
        "Female",
        "a1b2c3d4e5f67890a1b2c3d4e5f67890",
        85_000_000,
    ),
    (
        "interested_healthy_living",
        "Yes",
        "b2c3d4e5f67890a1b2c3d4e5f67890a1",
        45_000_000,
    ),
    (
        "fitness_affinity",
        "High",
        "c3d4e5f67890a1b2c3d4e5f67890a1b2",
        12_000_000,
    ),
    (
        "household_income_range",
        "$75K-$100K",
        "d4e5f67890a1b2c3d4e5f67890a1b2c3",
        28_000_000,
    ),
    (
        "interested_fitness",
        "Yes",
        "e5f67890a1b2c3d4e5f67890a1b2c3d4",
        35_000_000,
    ),
];

/// The document gives no population size; 250 million (US adults) is this test's assumption.
const POPULATION: u64 = 250_000_000;

fn analysis() -> icp_analysis::Analysis {
    analyzer(
        AnalysisConfig::default(),
        [JANE, SARAH].map(|p| p.iter().copied()),
    )
    .finish()
    .expect("two profiles analyse")
}

fn hashes() -> HashMap<Item, String> {
    CLUSTERS
        .iter()
        .map(|(n, v, h, _)| (item(n, v), (*h).to_owned()))
        .collect()
}

#[test]
fn contact_fields_are_left_out_and_frequencies_are_exact() {
    let a = analysis();
    assert_eq!(a.customers, 2);
    assert_eq!(
        a.notes.excluded_attributes,
        vec!["email1", "email2", "first_name", "last_name", "phone1"]
    );
    let top: Vec<(String, String, u64, f64)> = a
        .top_attributes
        .iter()
        .map(|t| (t.name.clone(), t.value.clone(), t.count, t.frequency))
        .collect();
    let expected = [
        ("gender", "Female", 2, 1.0),
        ("interested_healthy_living", "Yes", 2, 1.0),
        ("fitness_affinity", "High", 1, 0.5),
        ("generation", "Gen X", 1, 0.5),
        ("generation", "Millennial", 1, 0.5),
        ("household_income_range", "$75K-$100K", 1, 0.5),
        ("interested_fitness", "Yes", 1, 0.5),
        ("interested_outdoors", "Yes", 1, 0.5),
    ];
    assert_eq!(top.len(), expected.len());
    for (got, want) in top.iter().zip(expected) {
        assert_eq!((got.0.as_str(), got.1.as_str(), got.2, got.3), want);
    }
    assert!(a.top_attributes.iter().all(|t| t.index.is_none()));
    assert!(
        a.notes
            .messages
            .iter()
            .any(|m| m.contains("no population baseline"))
    );
}

#[test]
fn pairs_have_exact_lift() {
    let a = analysis();
    let lift = |x: Item, y: Item| {
        a.top_intersections
            .iter()
            .find(|p| p.items.contains(&x) && p.items.contains(&y))
            .map(|p| (p.count, p.lift))
    };
    assert_eq!(
        lift(
            item("gender", "Female"),
            item("interested_healthy_living", "Yes")
        ),
        Some((2, 1.0))
    );
    assert_eq!(
        lift(
            item("fitness_affinity", "High"),
            item("interested_fitness", "Yes")
        ),
        Some((1, 2.0))
    );
    // Two values of one attribute never pair.
    assert_eq!(
        lift(
            item("generation", "Gen X"),
            item("generation", "Millennial")
        ),
        None
    );
}

#[test]
fn clusters_are_closed_and_not_near_duplicates() {
    let a = analysis();
    // Jane's six traits form one closed set; with at most five per cluster it is reported once
    // (by its best five), not as the six five-trait subsets. Sarah's four traits are closed.
    assert_eq!(
        a.multi_attribute_clusters.len(),
        2,
        "{:#?}",
        a.multi_attribute_clusters
    );
    let jane = &a.multi_attribute_clusters[0];
    assert_eq!(
        jane.items,
        vec![
            item("fitness_affinity", "High"),
            item("gender", "Female"),
            item("generation", "Millennial"),
            item("household_income_range", "$75K-$100K"),
            item("interested_fitness", "Yes"),
        ]
    );
    assert_eq!((jane.count, jane.support, jane.lift), (1, 0.5, 8.0));
    let sarah = &a.multi_attribute_clusters[1];
    assert_eq!(
        sarah.items,
        vec![
            item("gender", "Female"),
            item("generation", "Gen X"),
            item("interested_healthy_living", "Yes"),
            item("interested_outdoors", "Yes"),
        ]
    );
    assert_eq!((sarah.count, sarah.lift), (1, 2.0));
    assert!(jane.score > sarah.score);
}

#[test]
fn baseline_fills_the_index_it_can() {
    let mut a = analysis();
    let mut baseline = Baseline::new(POPULATION);
    for (n, v, _, size) in CLUSTERS {
        baseline.insert(item(n, v), *size);
    }
    a.apply_baseline(&baseline);
    let index = |n: &str, v: &str| {
        a.top_attributes
            .iter()
            .find(|t| t.name == n && t.value == v)
            .and_then(|t| t.index)
    };
    let female = index("gender", "Female").expect("known");
    assert!((female - 1.0 / (85.0 / 250.0)).abs() < 1e-12);
    let affinity = index("fitness_affinity", "High").expect("known");
    assert!((affinity - 0.5 / (12.0 / 250.0)).abs() < 1e-12);
    assert_eq!(index("interested_outdoors", "Yes"), None);
    assert!(
        a.notes
            .index_unknown
            .contains(&item("interested_outdoors", "Yes"))
    );
    assert_eq!(a.notes.index_unknown.len(), 3);
    assert_eq!(a.notes.population_size, Some(POPULATION));
}

#[test]
fn audiences_render_with_the_documents_cluster_hashes() {
    let mut a = analysis();
    let mut baseline = Baseline::new(POPULATION);
    for (n, v, _, size) in CLUSTERS {
        baseline.insert(item(n, v), *size);
    }
    a.apply_baseline(&baseline);
    let hashes = hashes();
    let term = |i: &Item| hashes.get(i).cloned();

    // The fallback rules, in the order the previous default listed them.
    let plans = a.audiences(&AudienceConfig {
        strategies: vec![Strategy::Precision, Strategy::Reach, Strategy::Hybrid],
        ..AudienceConfig::default()
    });
    // The map stage looks up all eight traits: every top attribute, which covers every plan.
    let to_map = a.items_to_map(&plans);
    assert_eq!(to_map.len(), 8);
    assert!(
        plans
            .iter()
            .flat_map(|p| p.items())
            .all(|i| to_map.contains(&i))
    );
    let strategies: Vec<Strategy> = plans.iter().map(|p| p.strategy).collect();
    assert_eq!(
        strategies,
        [Strategy::Precision, Strategy::Reach, Strategy::Hybrid]
    );

    // Reach is the document's reach example: Female OR healthy living OR high fitness affinity.
    assert_eq!(
        plans[1].render(term).as_deref(),
        Some(
            "(a1b2c3d4e5f67890a1b2c3d4e5f67890 OR b2c3d4e5f67890a1b2c3d4e5f67890a1 OR c3d4e5f67890a1b2c3d4e5f67890a1b2)"
        )
    );
    // Precision needs generation = Millennial, which the document's list_clusters did not map.
    assert!(plans[0].items().contains(&item("generation", "Millennial")));
    assert_eq!(plans[0].render(term), None);
    let mut more = hashes.clone();
    more.insert(item("generation", "Millennial"), "f".repeat(32));
    assert_eq!(
        plans[0].render(|i: &Item| more.get(i).cloned()).as_deref(),
        Some(
            "(c3d4e5f67890a1b2c3d4e5f67890a1b2 AND a1b2c3d4e5f67890a1b2c3d4e5f67890 AND ffffffffffffffffffffffffffffffff AND d4e5f67890a1b2c3d4e5f67890a1b2c3 AND e5f67890a1b2c3d4e5f67890a1b2c3d4)"
        )
    );
    // Hybrid: OR of the two clusters' ANDs, topped up to three groups with the best pair not
    // already inside a cluster.
    let Expr::Or(groups) = &plans[2].expression else {
        panic!("hybrid is an OR: {:?}", plans[2].expression);
    };
    assert_eq!(groups.len(), 3);
    for (group, cluster) in groups.iter().zip(&a.multi_attribute_clusters) {
        assert_eq!(group.items(), cluster.items);
    }
    let Expr::And(pair) = &groups[2] else {
        panic!("third group is an AND");
    };
    assert_eq!(pair.len(), 2);

    let excluding = AudienceConfig {
        strategies: vec![Strategy::Reach],
        exclude: Some(Expr::Item(item("household_income_range", "$75K-$100K"))),
        ..AudienceConfig::default()
    };
    let reach = &a.audiences(&excluding)[0];
    assert_eq!(
        reach.render(term).as_deref(),
        Some(
            "((a1b2c3d4e5f67890a1b2c3d4e5f67890 OR b2c3d4e5f67890a1b2c3d4e5f67890a1 OR c3d4e5f67890a1b2c3d4e5f67890a1b2) AND NOT d4e5f67890a1b2c3d4e5f67890a1b2c3)"
        )
    );
    assert!(
        reach
            .items()
            .contains(&item("household_income_range", "$75K-$100K"))
    );
}
