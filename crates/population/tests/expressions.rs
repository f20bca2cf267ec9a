//! Property tests: bitmap evaluation equals a person-by-person evaluation, and printing an
//! expression then parsing it gives it back. Plus the parser's bad-input corpus against a real
//! population.

mod common;

use std::sync::OnceLock;

use icp_contract::ProviderError;
use icp_population::Population;
use icp_population::expression::{Expr, parse};
use proptest::prelude::*;

const N: usize = 20_000;

fn pop() -> &'static Population {
    static POP: OnceLock<Population> = OnceLock::new();
    POP.get_or_init(|| common::generated(N, 3))
}

/// Random expressions in the parser's own shape (an AND has ≥ 2 operands or a NOT; an OR has
/// ≥ 2), over `clusters` terms.
fn expr(clusters: u32) -> impl Strategy<Value = Expr> {
    let leaf = (0..clusters).prop_map(Expr::Term);
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            (
                prop::collection::vec(inner.clone(), 1..4),
                prop::collection::vec(inner.clone(), 0..3)
            )
                .prop_filter("an AND has two operands or a NOT", |(all, not)| {
                    all.len() + not.len() >= 2
                })
                .prop_map(|(all, not)| Expr::And { all, not }),
            prop::collection::vec(inner, 2..4).prop_map(Expr::Or),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn bitmaps_equal_person_by_person(e in expr(pop().cluster_count() as u32)) {
        let p = pop();
        let fast = p.evaluate(&e);
        for person in 0..N {
            prop_assert_eq!(fast.contains(person as u32), p.matches_naive(&e, person));
        }
        // Counting without building the result agrees too.
        let text = p.expression_text(&e);
        prop_assert_eq!(p.count(&text).unwrap(), fast.len());
    }

    #[test]
    fn radius_search_equals_a_scan_of_the_expression(
        e in expr(pop().cluster_count() as u32),
        metro in 0usize..4,
        radius in 5.0f64..120.0,
    ) {
        let p = pop();
        let (lat, lon) = [(41.8781, -87.6298), (40.7128, -74.0060), (30.2672, -97.7431), (47.6062, -122.3321)][metro];
        let req = icp_contract::FindPersonsRequest {
            expression: p.expression_text(&e),
            identifier_type: None,
            location: Some(icp_contract::Location { latitude: lat, longitude: lon, radius, unit: icp_contract::DistanceUnit::Miles }),
            audience_limit: None,
            format: None,
            workflow_id: None,
        };
        let scan = p.evaluate(&e).iter().filter(|&i| {
            let (la, lo) = p.coordinates(i as usize).unwrap();
            icp_population::great_circle_distance(lat, lon, la, lo, 3_958.761_3) <= radius
        }).count() as u64;
        prop_assert_eq!(p.audience(&req).unwrap().len(), scan);
    }

    #[test]
    fn print_then_parse_gives_the_expression_back(e in expr(1_000_000)) {
        let text = e.to_text(&|t| t.to_string());
        let back = parse(&text, &|s| s.parse::<u32>().map_err(|_| "unknown".to_owned())).unwrap();
        prop_assert_eq!(back, e);
    }

    #[test]
    fn hashes_and_ids_mix(e in expr(pop().cluster_count() as u32), flip in any::<u64>()) {
        // Name some terms by id instead of hash: same expression.
        let p = pop();
        let list = p.list_clusters(&icp_contract::ListClustersRequest {
            limit: Some(10_000),
            ..Default::default()
        }).unwrap().clusters;
        let text = e.to_text(&|t| {
            let c = &list[t as usize];
            if (flip >> (t % 64)) & 1 == 1 { c.cluster_id.clone() } else { c.cluster_hash.clone() }
        });
        prop_assert_eq!(p.parse_expression(&text).unwrap(), e);
    }

    #[test]
    fn arbitrary_text_never_panics(s in ".{0,200}") {
        let _ = pop().parse_expression(&s);
    }
}

fn message(text: &str) -> String {
    match pop().parse_expression(text) {
        Err(ProviderError::Validation { message }) => message,
        other => panic!("{text:.80}: expected a validation error, got {other:?}"),
    }
}

#[test]
fn bad_input_corpus() {
    let h = pop().cluster_for("gender", "Female").unwrap().cluster_hash;
    let m = message(&"(".repeat(100_000));
    assert!(m.contains("nested deeper"), "{m}");
    let m = message(&format!(
        "{}{h}{}",
        "(".repeat(100_000),
        ")".repeat(100_000)
    ));
    assert!(m.contains("nested deeper"), "{m}");
    let m = message(&format!("{h} and {h}"));
    assert!(m.contains("position 33") && m.contains("`and`"), "{m}");
    let m = message(&format!("{h} AND 0123456789abcdef0123456789abcdef"));
    assert!(
        m.contains("unknown cluster hash") && m.contains("position 37"),
        "{m}"
    );
    let m = message(&format!("{h} OR 999"));
    assert!(m.contains("unknown cluster id"), "{m}");
    let m = message(&format!("NOT {h}"));
    assert!(m.contains("AND NOT"), "{m}");
    let m = message(&format!("{h} OR"));
    assert!(m.contains("end of input"), "{m}");

    // A megabyte of OR-ed hashes is fine; one unknown term at the end names its position.
    let mut big = h.clone();
    while big.len() < 1 << 20 {
        big.push_str(" OR ");
        big.push_str(&h);
    }
    assert_eq!(
        pop().count(&big).unwrap(),
        pop().cluster_for("gender", "Female").unwrap().size
    );
    let at = big.len() + 4;
    big.push_str(" OR ffffffffffffffffffffffffffffffff");
    let m = message(&big);
    assert!(m.contains(&format!("position {at}")), "{m}");
}
