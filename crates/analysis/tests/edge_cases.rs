//! Degenerate input, configuration errors, caps, budgets and determinism.

mod common;

use common::{analyzer, profiles};
use icp_analysis::synthetic::{SyntheticConfig, generate};
use icp_analysis::{Analysis, AnalysisConfig, AnalysisError, AudienceConfig, Strategy};

fn run(config: AnalysisConfig, profiles: &[Vec<(&str, &str)>]) -> Result<Analysis, AnalysisError> {
    analyzer(config, profiles.iter().map(|p| p.iter().copied())).finish()
}

/// serde_json writes a NaN or an infinity as `null`; no field of an analysis may be null.
fn assert_finite_json(a: &Analysis) {
    let json = serde_json::to_string(a).expect("serialises");
    assert!(!json.contains("null"), "non-finite number in {json}");
    let back: Analysis = serde_json::from_str(&json).expect("parses back");
    assert_eq!(&back, a);
}

#[test]
fn empty_input_is_a_clear_error() {
    assert_eq!(
        run(AnalysisConfig::default(), &[]),
        Err(AnalysisError::NoCustomers)
    );
}

#[test]
fn profiles_without_traits_are_a_clear_error() {
    let profiles = vec![
        vec![("email1", "a@example.com"), ("first_name", "A")],
        vec![],
        vec![("phone2", "5550000000"), ("gender", "  ")],
    ];
    assert_eq!(
        run(AnalysisConfig::default(), &profiles),
        Err(AnalysisError::NoTraits { customers: 3 })
    );
}

#[test]
fn one_customer_gives_a_finite_result() {
    let profiles = vec![vec![
        ("gender", "Female"),
        ("generation", "Gen X"),
        ("interested_travel", "Yes"),
        ("email1", "x@example.com"),
    ]];
    let a = run(AnalysisConfig::default(), &profiles).expect("analyses");
    assert_eq!(a.customers, 1);
    assert!(
        a.top_attributes
            .iter()
            .all(|t| t.count == 1 && t.frequency == 1.0)
    );
    assert!(
        a.top_intersections
            .iter()
            .all(|p| p.lift == 1.0 && p.score == 0.0)
    );
    assert_eq!(a.multi_attribute_clusters.len(), 1);
    assert_eq!(a.multi_attribute_clusters[0].items.len(), 3);
    assert_finite_json(&a);
    // Hybrid needs two groups, and every pair lies inside the one cluster: not offered.
    let strategies: Vec<Strategy> = a
        .audiences(&AudienceConfig::default())
        .iter()
        .map(|p| p.strategy)
        .collect();
    assert_eq!(
        strategies,
        vec![Strategy::Precision, Strategy::Standard, Strategy::Reach]
    );
}

#[test]
fn a_trait_below_support_is_still_counted_but_not_paired() {
    let mut profiles = vec![vec![("gender", "Female"), ("pets", "Yes")]; 99];
    profiles.push(vec![("gender", "Male"), ("golf", "Yes")]);
    let config = AnalysisConfig {
        min_support: 0.05,
        ..AnalysisConfig::default()
    };
    let a = run(config, &profiles).expect("analyses");
    assert!(
        a.top_attributes
            .iter()
            .any(|t| t.value == "Male" && t.count == 1)
    );
    assert_eq!(a.top_intersections.len(), 1);
    assert!(a.multi_attribute_clusters.is_empty());
    assert!(a.notes.messages.iter().any(|m| m.contains("No set of 3")));
    // Precision falls back to the best pair.
    let plans = a.audiences(&AudienceConfig::default());
    assert_eq!(plans[0].items().len(), 2);
    assert_finite_json(&a);
}

#[test]
fn invalid_configurations_are_rejected() {
    let profiles = vec![vec![("gender", "Female")]];
    for config in [
        AnalysisConfig {
            min_support: 0.0,
            ..AnalysisConfig::default()
        },
        AnalysisConfig {
            min_support: f64::NAN,
            ..AnalysisConfig::default()
        },
        AnalysisConfig {
            min_support: 1.5,
            ..AnalysisConfig::default()
        },
        AnalysisConfig {
            max_cluster_size: 2,
            ..AnalysisConfig::default()
        },
        AnalysisConfig {
            max_cluster_size: 9,
            ..AnalysisConfig::default()
        },
        AnalysisConfig {
            max_values_per_attribute: 0,
            ..AnalysisConfig::default()
        },
        AnalysisConfig {
            max_itemsets: 0,
            ..AnalysisConfig::default()
        },
    ] {
        assert!(
            matches!(
                run(config.clone(), &profiles),
                Err(AnalysisError::InvalidConfig { .. })
            ),
            "{config:?} should be rejected"
        );
    }
}

#[test]
fn configured_exclusions_apply_case_insensitively() {
    let profiles = vec![vec![("Gender", "Female"), ("golf", "Yes")]; 3];
    let config = AnalysisConfig {
        exclude_attributes: vec!["GENDER".into()],
        ..AnalysisConfig::default()
    };
    let a = run(config, &profiles).expect("analyses");
    assert_eq!(a.top_attributes.len(), 1);
    assert_eq!(a.notes.excluded_attributes, vec!["Gender"]);
}

#[test]
fn high_cardinality_attributes_are_capped_and_noted() {
    let data = generate(&SyntheticConfig {
        customers: 5000,
        zip_codes: 3000,
        ..SyntheticConfig::default()
    });
    let config = AnalysisConfig {
        min_support: 0.001,
        max_values_per_attribute: 10,
        max_cluster_size: 3,
        top_intersections: usize::MAX,
        ..AnalysisConfig::default()
    };
    let a = analyzer(config, profiles(&data))
        .finish()
        .expect("analyses");
    let capped = &a.notes.capped_attributes;
    assert_eq!(capped.len(), 1);
    assert_eq!(capped[0].name, "zip_code");
    assert_eq!(capped[0].kept_values, 10);
    assert!(capped[0].distinct_values > 10);
    let zips: std::collections::BTreeSet<&str> = a
        .top_intersections
        .iter()
        .flat_map(|p| &p.items)
        .filter(|i| i.name == "zip_code")
        .map(|i| i.value.as_str())
        .collect();
    assert!(!zips.is_empty() && zips.len() <= 10, "{zips:?}");
    assert!(a.notes.messages.iter().any(|m| m.contains("zip_code")));
}

#[test]
fn an_exceeded_itemset_budget_raises_support_and_says_so() {
    let data = generate(&SyntheticConfig {
        customers: 3000,
        ..SyntheticConfig::default()
    });
    let build = |max_itemsets| {
        let config = AnalysisConfig {
            max_itemsets,
            ..AnalysisConfig::default()
        };
        analyzer(config, profiles(&data))
            .finish()
            .expect("analyses")
    };
    let full = build(usize::MAX);
    assert!(full.notes.frequent_itemsets > 2000);
    let tight = build(2000);
    assert!(tight.notes.frequent_itemsets <= 2000);
    let effective = tight
        .notes
        .effective_min_support
        .expect("support was raised");
    assert!(effective > 0.02);
    assert!(tight.notes.min_count > full.notes.min_count);
    assert!(
        tight
            .multi_attribute_clusters
            .iter()
            .all(|c| c.count >= tight.notes.min_count)
    );
    assert_finite_json(&tight);
}

#[test]
fn output_does_not_depend_on_order_or_threads() {
    let data = generate(&SyntheticConfig {
        customers: 4000,
        ..SyntheticConfig::default()
    });
    let build = |threads: usize, reverse: bool| {
        let config = AnalysisConfig {
            threads,
            min_support: 0.01,
            ..AnalysisConfig::default()
        };
        let order: Vec<usize> = if reverse {
            (0..data.customers()).rev().collect()
        } else {
            (0..data.customers()).collect()
        };
        let profiles = order.into_iter().map(|c| {
            let mut fields: Vec<(&str, &str)> = data.profile(c).collect();
            if reverse {
                fields.reverse();
            }
            fields
        });
        analyzer(config, profiles).finish().expect("analyses")
    };
    let one = build(1, false);
    assert_eq!(one, build(2, false));
    assert_eq!(one, build(3, true));
    assert_finite_json(&one);
}
