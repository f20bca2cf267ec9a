//! The audience planner on generated populations with planted segments: customers drawn from
//! a known segment plus noise, every audience measured against the segment (the customers left
//! out). Floors sit below what `cargo run --release -p icp-analysis --example quality`
//! measures (BENCHMARKS.md, "Insight quality").

#[path = "../examples/quality/lab.rs"]
mod lab;

use std::collections::{HashMap, HashSet};

use icp_analysis::{
    AnalysisConfig, AudienceBands, AudienceConfig, AudienceNoteCode, Band, DEFAULT_PENALTY, Expr,
    Strategy,
};
use icp_population::{GeneratorConfig, Population};

const PERSONS: usize = 200_000;
const CUSTOMERS: usize = 2_000;

fn population() -> Population {
    Population::generate(&GeneratorConfig {
        persons: PERSONS,
        seed: 0x0A0D_1E5C,
    })
}

/// Customers drawn from `segment` with `noise`, their rows, and the segment's members.
fn planted(
    pop: &Population,
    segment: &str,
    noise: f64,
    seed: u64,
) -> (Vec<icp_contract::PersonId>, HashSet<u32>, Vec<bool>) {
    let s = pop
        .segments()
        .iter()
        .position(|x| x.name == segment)
        .expect("segment");
    let ids = lab::planted_customers(pop, segment, CUSTOMERS, noise, seed);
    let customers = ids
        .iter()
        .map(|id| pop.index_of(*id).expect("a row") as u32)
        .collect();
    let truth = (0..PERSONS)
        .map(|r| pop.segment_of(pop.person_id(r)) == Some(s))
        .collect();
    (ids, customers, truth)
}

fn terms(e: &Expr) -> Vec<Vec<icp_analysis::Item>> {
    match e {
        Expr::Or(parts) => parts.iter().map(|p| p.items()).collect(),
        other => vec![other.items()],
    }
}

#[test]
fn every_strategy_beats_the_base_rate_nests_and_stays_in_its_band() {
    let pop = population();
    let cases = [
        ("active_millennials", 0.0, 4.0),
        ("active_millennials", 0.3, 3.0),
        ("tech_professionals", 0.3, 3.0),
        ("retired_travelers", 0.5, 3.0),
    ];
    for (segment, noise, floor) in cases {
        let (ids, customers, truth) = planted(&pop, segment, noise, 11);
        let planned = lab::analyse(&pop, &ids, AnalysisConfig::default());
        let config = AudienceConfig::default();
        let planning = planned.plan(&pop, &config);
        let case = format!("{segment} at noise {noise}");
        let strategies: Vec<Strategy> = planning.plans.iter().map(|p| p.strategy).collect();
        // Hybrid is offered only where a second combination adds customer-like people.
        let without_hybrid: Vec<Strategy> = strategies
            .iter()
            .copied()
            .filter(|s| *s != Strategy::Hybrid)
            .collect();
        assert_eq!(
            without_hybrid,
            [Strategy::Precision, Strategy::Standard, Strategy::Reach],
            "{case}: {:?}",
            planning.notes
        );
        if !strategies.contains(&Strategy::Hybrid) {
            assert!(
                planning
                    .notes
                    .iter()
                    .any(|n| n.strategy == Some(Strategy::Hybrid)),
                "{case}: hybrid left out without a note"
            );
        }
        assert!(planning.count_calls <= config.max_count_calls as u64);
        let mut previous: Option<HashSet<u32>> = None;
        for plan in &planning.plans {
            let members = planned.members(&pop, &plan.expression);
            let m = lab::measure(&members, &truth, &customers);
            let expected = plan.expected.expect("expected figures");
            assert!(
                m.lift >= floor,
                "{case}: {:?} holds the segment at {:.2}× its base rate, under {floor}×",
                plan.strategy,
                m.lift
            );
            assert_eq!(expected.size, members.len() as u64, "{case}: exact size");
            // Reach never past its band; another audience past its band says so.
            let band = config.bands.of(plan.strategy);
            let past = members.len() as f64 > band.max_share * PERSONS as f64;
            let said = planning.notes.iter().any(|n| {
                n.strategy == Some(plan.strategy) && n.code == AudienceNoteCode::BandUnmet
            });
            assert!(
                !past || (plan.strategy != Strategy::Reach && said),
                "{case}: {:?} past its band: {}",
                plan.strategy,
                members.len()
            );
            let t = terms(&plan.expression);
            for (i, a) in t.iter().enumerate() {
                for (j, b) in t.iter().enumerate() {
                    assert!(
                        i == j || !a.iter().all(|x| b.contains(x)),
                        "{case}: {:?} term {a:?} contains term {b:?}",
                        plan.strategy
                    );
                }
            }
            if let Some(inner) = &previous {
                let not_nested = planning.notes.iter().any(|n| {
                    n.strategy == Some(plan.strategy) && n.code == AudienceNoteCode::NotNested
                });
                assert_eq!(
                    inner.is_subset(&members),
                    !not_nested,
                    "{case}: {:?} nesting and its note disagree",
                    plan.strategy
                );
                if !not_nested {
                    assert!(
                        inner.len() < members.len(),
                        "{case}: {:?} no wider",
                        plan.strategy
                    );
                }
            }
            assert!(!plan.rationale.is_empty());
            previous = Some(members);
        }
        // Where pairs and clusters of traits fit, the ANDs nest: precision ⊂ standard ⊂ hybrid.
        assert!(
            !planning
                .notes
                .iter()
                .any(|n| n.code == AudienceNoteCode::NotNested
                    && matches!(n.strategy, Some(Strategy::Standard | Strategy::Hybrid))),
            "{case}: {:?}",
            planning.notes
        );
    }
}

/// The bar: the ranked audience (the service's logistic weights, scored over the whole
/// population) holds the planted segment at least as precisely as every boolean audience the
/// planner chose, each compared at its own size.
#[test]
fn the_ranked_model_beats_every_boolean_audience_at_its_size() {
    let pop = population();
    for (segment, noise) in [
        ("active_millennials", 0.0),
        ("tech_professionals", 0.3),
        ("retired_travelers", 0.5),
    ] {
        let (ids, customers, truth) = planted(&pop, segment, noise, 11);
        let planned = lab::analyse(&pop, &ids, AnalysisConfig::default());
        let planning = planned.plan(&pop, &AudienceConfig::default());
        let weights = lab::for_scoring(&planned.logistic(&pop, &ids, DEFAULT_PENALTY));
        let scores = pop.scores_of(&weights).expect("scores");
        for plan in &planning.plans {
            let boolean =
                lab::measure(&planned.members(&pop, &plan.expression), &truth, &customers);
            let ranked = lab::measure(
                &lab::top_rows(&scores, &customers, boolean.size as usize),
                &truth,
                &customers,
            );
            assert!(
                ranked.precision >= boolean.precision,
                "{segment} at noise {noise}: the ranked audience of {} holds the segment at \
                 {:.3}, the {:?} audience at {:.3}",
                boolean.size,
                ranked.precision,
                plan.strategy,
                boolean.precision
            );
        }
    }
}

/// With exclusions, what the planner expects is what the audience holds: the customers it
/// counts leave out those holding an excluded trait, and every size it calls exact is the
/// population's count of the expression sent (exclusions and all).
#[test]
fn expected_figures_leave_the_excluded_out() {
    let pop = population();
    let (ids, customers, _) = planted(&pop, "tech_professionals", 0.3, 5);
    let planned = lab::analyse(&pop, &ids, AnalysisConfig::default());
    let plain = planned.plan(&pop, &AudienceConfig::default());
    let used: HashSet<icp_analysis::Item> = plain.items().into_iter().collect();
    // The customers' most frequent trait no plan uses: many of them hold it.
    let common = planned
        .analysis
        .top_attributes
        .iter()
        .map(|a| icp_analysis::Item::new(&a.name, &a.value))
        .find(|i| !used.contains(i))
        .expect("a frequent trait outside the plans");
    let config = AudienceConfig {
        exclude: Some(Expr::Item(common.clone())),
        ..AudienceConfig::default()
    };
    let planning = planned.plan(&pop, &config);
    assert!(!planning.plans.is_empty(), "{:?}", planning.notes);
    assert!(
        planning
            .notes
            .iter()
            .all(|n| n.code != AudienceNoteCode::ExclusionUncounted),
        "{:?}",
        planning.notes
    );
    for plan in &planning.plans {
        let members = planned.members(&pop, &plan.expression);
        let expected = plan.expected.expect("expected figures");
        let held = members.intersection(&customers).count() as u64;
        assert_eq!(
            expected.customers, held,
            "{:?} expects {} customers, holds {held}",
            plan.strategy, expected.customers
        );
        if expected.size_exact {
            assert_eq!(expected.size, members.len() as u64, "{:?}", plan.strategy);
        }
    }
    // A trait too rare among the customers to be mined (under min_support, 2 %, of them)
    // cannot be counted out: it is said.
    let mut held: HashMap<(String, String), usize> = HashMap::new();
    for profile in &planned.customer_profiles {
        for (k, v) in profile {
            *held.entry((k.clone(), v.clone())).or_default() += 1;
        }
    }
    let rare = planned
        .hashes
        .keys()
        .filter(|i| !used.contains(*i))
        .min_by_key(|i| (held.get(&(i.name.clone(), i.value.clone())), (*i).clone()))
        .expect("a listed trait")
        .clone();
    let rare_held = held
        .get(&(rare.name.clone(), rare.value.clone()))
        .copied()
        .unwrap_or(0);
    assert!(rare_held < CUSTOMERS / 50, "{rare:?} held by {rare_held}");
    let config = AudienceConfig {
        exclude: Some(Expr::any_of(&[common, rare]).expect("two traits")),
        ..AudienceConfig::default()
    };
    let planning = planned.plan(&pop, &config);
    assert!(
        planning
            .notes
            .iter()
            .any(|n| n.code == AudienceNoteCode::ExclusionUncounted && n.strategy.is_none()),
        "{:?}",
        planning.notes
    );
}

#[test]
fn precision_improves_on_the_planner_before() {
    let pop = population();
    let segment = "tech_professionals";
    let (ids, customers, truth) = planted(&pop, segment, 0.3, 5);
    let planned = lab::analyse(&pop, &ids, AnalysisConfig::default());
    let now = planned.plan(&pop, &AudienceConfig::default());
    let before = planned.plan_before();
    let precision_of = |plans: &[icp_analysis::AudiencePlan]| {
        let plan = plans
            .iter()
            .find(|p| p.strategy == Strategy::Precision)
            .expect("a precision audience");
        lab::measure(&planned.members(&pop, &plan.expression), &truth, &customers).precision
    };
    let (now, before) = (precision_of(&now.plans), precision_of(&before));
    assert!(
        now > before,
        "precision {now:.3} is no better than before ({before:.3})"
    );
}

#[test]
fn a_band_no_expression_fits_is_said_not_hidden() {
    let pop = population();
    let ids = lab::planted_customers(&pop, "active_millennials", CUSTOMERS, 0.0, 3);
    let planned = lab::analyse(&pop, &ids, AnalysisConfig::default());
    let config = AudienceConfig {
        strategies: vec![Strategy::Precision, Strategy::Reach],
        bands: AudienceBands {
            // Narrower than any audience of 3+ traits can be, and reach capped tight.
            precision: Band::new(0.000_01, 0.000_02),
            reach: Band::new(0.5, 0.9),
            ..AudienceBands::default()
        },
        min_audience_size: Some(1),
        ..AudienceConfig::default()
    };
    let planning = planned.plan(&pop, &config);
    let code_of = |s: Strategy| {
        planning
            .notes
            .iter()
            .filter(|n| n.strategy == Some(s))
            .map(|n| n.code)
            .collect::<Vec<_>>()
    };
    assert!(
        code_of(Strategy::Precision).contains(&AudienceNoteCode::BandUnmet),
        "{:?}",
        planning.notes
    );
    assert!(
        code_of(Strategy::Reach).contains(&AudienceNoteCode::BelowBand),
        "{:?}",
        planning.notes
    );
    // The notes concern only the strategies asked for.
    assert!(
        planning
            .notes
            .iter()
            .all(|n| n.strategy.is_none_or(|s| config.strategies.contains(&s)))
    );
}
