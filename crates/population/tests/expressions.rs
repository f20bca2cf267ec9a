//! Property tests: bitmap evaluation equals a person-by-person evaluation, printing an
//! expression then parsing it gives it back, and any text made of the language's tokens parses
//! or says where it is wrong. Plus the parser's bad-input corpus against a real population.

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

/// Plain digits name themselves; anything else is an unknown cluster (the parser alone, no
/// population).
fn digits(s: &str) -> Result<u32, String> {
    s.parse::<u32>().map_err(|_| "unknown cluster".to_owned())
}

/// Text made of the language's own tokens and its near misses (lower-case operators, stray
/// characters, hashes, NUL, non-ASCII), so that most inputs get deep into the parser.
fn token_soup() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        4 => prop_oneof![Just("AND"), Just("OR"), Just("NOT"), Just("("), Just(")")].prop_map(str::to_owned),
        4 => (0u32..40).prop_map(|n| n.to_string()),
        1 => "[0-9a-f]{32}",
        1 => prop_oneof![Just("and"), Just("Or"), Just("&"), Just("é"), Just("\0"), Just("-"), Just("x9")]
            .prop_map(str::to_owned),
    ];
    let gap = prop_oneof![Just(" "), Just(""), Just("\t"), Just("\n  ")];
    prop::collection::vec((token, gap), 0..30)
        .prop_map(|parts| parts.into_iter().map(|(t, g)| format!("{t}{g}")).collect())
}

/// The shape the parser promises: an AND has a positive operand, an OR at least two.
fn well_formed(e: &Expr) -> bool {
    match e {
        Expr::Term(_) => true,
        Expr::And { all, not } => {
            !all.is_empty() && all.len() + not.len() >= 2 && all.iter().chain(not).all(well_formed)
        }
        Expr::Or(items) => items.len() >= 2 && items.iter().all(well_formed),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    /// Whatever the text, the parser answers: an expression of the promised shape that prints
    /// and parses back to itself, or an error whose position is in the text, on a character
    /// boundary, with the token shown and the message short.
    #[test]
    fn token_soup_parses_or_says_where(text in token_soup()) {
        match parse(&text, &digits) {
            Ok(e) => {
                prop_assert!(well_formed(&e), "{e:?}");
                let printed = e.to_text(&|t| t.to_string());
                prop_assert_eq!(parse(&printed, &digits).unwrap(), e);
            }
            Err(err) => {
                prop_assert!(err.position <= text.len(), "{err}");
                prop_assert!(text.is_char_boundary(err.position), "{err}");
                prop_assert!(!err.token.is_empty() && !err.message.is_empty(), "{err}");
                prop_assert!(err.to_string().len() < 400, "{err}");
            }
        }
    }

    /// A printed expression with its spaces changed to any white space and wrapped in redundant
    /// parentheses still parses to the same expression.
    #[test]
    fn white_space_and_redundant_parentheses_do_not_change_it(
        e in expr(1_000),
        gaps in prop::collection::vec(prop_oneof![Just(" "), Just("  "), Just("\t"), Just("\r\n")], 64),
        wraps in 0usize..4,
    ) {
        let printed = e.to_text(&|t| t.to_string());
        let mut spaced = String::new();
        for (i, part) in printed.split(' ').enumerate() {
            if i > 0 {
                spaced.push_str(gaps[i % gaps.len()]);
            }
            spaced.push_str(part);
        }
        let text = format!("{}{spaced}{}", "( ".repeat(wraps), " )".repeat(wraps));
        prop_assert_eq!(parse(&text, &digits).unwrap(), e);
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
