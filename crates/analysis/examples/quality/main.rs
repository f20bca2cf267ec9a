//! Insight quality with the truth known: every boolean audience (the planner now, and the one
//! `main` had before) and the ranked tiers (naive-Bayes log-lift weights, and an L2-regularised
//! logistic regression for comparison) measured against a truth the analysis never saw.
//!
//! ```text
//! # planted segments on a generated population (customers from a segment plus noise)
//! cargo run --release -p icp-analysis --example quality -- generated [persons]
//! # a real data set: ISLP's Caravan (see caravan.py), half the buyers as customers
//! python3 crates/analysis/examples/quality/caravan.py /tmp/caravan
//! cargo run --release -p icp-analysis --example quality -- labelled /tmp/caravan/population.csv /tmp/caravan/labels.csv
//! ```
//!
//! Customers are left out of every audience and of the truth; precision is the share of an
//! audience in the truth, recall the share of the truth in the audience, lift the precision
//! over the truth's base rate among everyone else.

mod lab;

use std::collections::HashSet;
use std::path::Path;

use icp_analysis::{AnalysisConfig, AudienceConfig, AudiencePlan, Expr};
use icp_contract::PersonId;
use icp_population::{GeneratorConfig, Population, TraitWeight};

use lab::{Measured, Planned};

const TIERS: [f64; 4] = [0.01, 0.02, 0.05, 0.10];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("generated") => {
            let persons = args
                .get(1)
                .map_or(1_000_000, |p| p.parse().expect("persons"));
            generated(persons);
        }
        Some("labelled") if args.len() == 3 => labelled(Path::new(&args[1]), Path::new(&args[2])),
        _ => {
            eprintln!(
                "usage: quality generated [persons] | quality labelled <population.csv> <labels.csv>"
            );
            std::process::exit(2);
        }
    }
}

/// One data set's customers and truth, measured with every audience.
struct Case<'a> {
    name: String,
    pop: &'a Population,
    customers: Vec<PersonId>,
    customer_rows: HashSet<u32>,
    truth: Vec<bool>,
    analysis: AnalysisConfig,
}

fn generated(persons: usize) {
    let pop = Population::generate(&GeneratorConfig {
        persons,
        seed: 0x0A0D_1E5C,
    });
    let customers = 5_000;
    println!("Generated population: {persons} persons, {customers} customers a case.\n");
    for segment in [
        "active_millennials",
        "tech_professionals",
        "retired_travelers",
    ] {
        let s = pop
            .segments()
            .iter()
            .position(|x| x.name == segment)
            .expect("segment");
        let truth: Vec<bool> = (0..pop.len())
            .map(|r| pop.segment_of(pop.person_id(r)) == Some(s))
            .collect();
        for noise in [0.0, 0.25, 0.5] {
            let ids = lab::planted_customers(&pop, segment, customers, noise, 11);
            run(Case {
                name: format!("{segment}, noise {noise}"),
                customer_rows: rows(&pop, &ids),
                customers: ids,
                pop: &pop,
                truth: truth.clone(),
                analysis: AnalysisConfig::default(),
            });
        }
    }
}

/// A population file and a labels file (`row,label` with `1` for the group): half the group
/// (every other member in file order) are the customers, the other half the truth.
fn labelled(population: &Path, labels: &Path) {
    let pop = Population::from_csv_path(population).expect("population imports");
    let text = std::fs::read_to_string(labels).expect("labels");
    let mut group: Vec<usize> = Vec::new();
    for line in text.lines().skip(1) {
        let (row, label) = line.split_once(',').expect("row,label");
        if label.trim() == "1" {
            group.push(row.trim().parse().expect("row"));
        }
    }
    let customers: Vec<PersonId> = group.iter().step_by(2).map(|r| pop.person_id(*r)).collect();
    let mut truth = vec![false; pop.len()];
    for r in group.iter().skip(1).step_by(2) {
        truth[*r] = true;
    }
    println!(
        "Labelled population: {} persons, a group of {} ({} customers, {} held out).\n",
        pop.len(),
        group.len(),
        customers.len(),
        group.len() - customers.len()
    );
    run(Case {
        name: population
            .file_stem()
            .map_or("labelled".into(), |s| s.to_string_lossy().into_owned()),
        customer_rows: rows(&pop, &customers),
        customers,
        pop: &pop,
        truth,
        // Dense data (every person has every attribute): clusters of 3 at 10 %, which the
        // itemset budget holds, as a user would set the job's options.
        analysis: AnalysisConfig {
            min_support: 0.1,
            max_cluster_size: 3,
            ..AnalysisConfig::default()
        },
    });
}

fn rows(pop: &Population, ids: &[PersonId]) -> HashSet<u32> {
    ids.iter()
        .map(|id| pop.index_of(*id).expect("a row") as u32)
        .collect()
}

fn describe(plan: &AudiencePlan) -> String {
    fn text(e: &Expr) -> String {
        match e {
            Expr::Item(i) => format!("{}={}", i.name, i.value),
            Expr::And(p) => format!("({})", p.iter().map(text).collect::<Vec<_>>().join(" AND ")),
            Expr::Or(p) => format!("({})", p.iter().map(text).collect::<Vec<_>>().join(" OR ")),
            Expr::AndNot { include, exclude } => {
                format!("({} AND NOT {})", text(include), text(exclude))
            }
        }
    }
    text(&plan.expression)
}

fn row(label: &str, m: &Measured, eligible: u64) -> String {
    format!(
        "| {label} | {} ({:.2}%) | {:.3} | {:.3} | {:.2}× |",
        m.size,
        100.0 * m.size as f64 / eligible as f64,
        m.precision,
        m.recall,
        m.lift
    )
}

fn run(case: Case<'_>) {
    let pop = case.pop;
    let started = std::time::Instant::now();
    let planned = lab::analyse(pop, &case.customers, case.analysis.clone());
    let planning = planned.plan(pop, &AudienceConfig::default());
    let eligible = pop.len() as u64 - case.customer_rows.len() as u64;
    let positives = case
        .truth
        .iter()
        .enumerate()
        .filter(|(r, t)| **t && !case.customer_rows.contains(&(*r as u32)))
        .count();
    println!(
        "### {} — base rate {:.4} ({} of {} persons), {} exact counts, planned in {:.1}s\n",
        case.name,
        positives as f64 / eligible as f64,
        positives,
        eligible,
        planning.count_calls,
        started.elapsed().as_secs_f64()
    );
    if let Some(support) = planned.analysis.notes.effective_min_support {
        println!("- the itemset budget raised the minimum support to {support}");
    }
    for note in &planning.notes {
        println!(
            "- note {:?} {:?}: {}",
            note.strategy, note.code, note.message
        );
    }
    let nb = planned.naive_bayes();
    let lr = logistic_weights(&planned, pop, &case.customer_rows);
    let nb_scores = pop.scores_of(&nb).expect("scores");
    let lr_scores = pop.scores_of(&lr).expect("scores");
    let at_size = |scores: &[f32], size: u64| {
        lab::measure(
            &lab::top_rows(scores, &case.customer_rows, size as usize),
            &case.truth,
            &case.customer_rows,
        )
    };
    println!(
        "\n| audience | size (share) | precision | recall | lift | NB same size | LR same size |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut boolean = Vec::new();
    for (label, plans) in [
        ("now", planning.plans.clone()),
        ("before", planned.plan_before()),
    ] {
        for plan in &plans {
            let members = planned.members(pop, &plan.expression);
            let m = lab::measure(&members, &case.truth, &case.customer_rows);
            let (n, l) = (at_size(&nb_scores, m.size), at_size(&lr_scores, m.size));
            println!(
                "{} {:.2}× | {:.2}× |",
                row(&format!("{:?} ({label})", plan.strategy), &m, eligible),
                n.lift,
                l.lift
            );
            boolean.push((format!("{:?} ({label})", plan.strategy), describe(plan)));
        }
    }
    println!(
        "\n| ranked tier | NB size | NB precision | NB recall | NB lift | LR precision | LR recall | LR lift |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for fraction in TIERS {
        let size = (fraction * eligible as f64).round() as u64;
        let (n, l) = (at_size(&nb_scores, size), at_size(&lr_scores, size));
        println!(
            "| top {:.0}% | {} | {:.3} | {:.3} | {:.2}× | {:.3} | {:.3} | {:.2}× |",
            100.0 * fraction,
            n.size,
            n.precision,
            n.recall,
            n.lift,
            l.precision,
            l.recall,
            l.lift
        );
    }
    println!();
    for (label, text) in boolean {
        println!("- {label}: `{text}`");
    }
    println!();
}

/// L2-regularised logistic regression, customers (1) against the population's other persons
/// (0; every one up to 20,000, else an evenly spaced sample of 20,000), one-hot over the traits
/// the naive-Bayes weights use. Full-batch gradient descent with Nesterov momentum from zero,
/// a fixed number of steps: deterministic. The weight of each trait is its coefficient, so a
/// person's score ranks as the model's log-odds (the intercept is the same for everyone).
fn logistic_weights(
    planned: &Planned,
    pop: &Population,
    customers: &HashSet<u32>,
) -> Vec<TraitWeight> {
    const LAMBDA: f64 = 1e-3;
    const STEPS: usize = 600;
    const SAMPLE: usize = 20_000;
    let mut features: Vec<(String, String)> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for (name, values) in &planned.population_values {
        for value in values.keys() {
            index.insert((name.clone(), value.clone()), features.len());
            features.push((name.clone(), value.clone()));
        }
    }
    let others: Vec<u32> = (0..pop.len() as u32)
        .filter(|r| !customers.contains(r))
        .collect();
    let step = others.len().div_ceil(SAMPLE).max(1);
    let sample: Vec<PersonId> = others
        .iter()
        .step_by(step)
        .map(|r| pop.person_id(*r as usize))
        .collect();
    let encode = |profile: &std::collections::BTreeMap<String, String>| -> Vec<u32> {
        profile
            .iter()
            .filter_map(|(k, v)| index.get(&(k.clone(), v.clone())).map(|f| *f as u32))
            .collect()
    };
    let mut x: Vec<Vec<u32>> = planned.customer_profiles.iter().map(encode).collect();
    let mut y: Vec<f64> = vec![1.0; x.len()];
    for profile in lab::profiles(pop, &sample) {
        x.push(encode(&profile));
        y.push(0.0);
    }
    let n = x.len() as f64;
    let width = x.iter().map(Vec::len).max().unwrap_or(1) as f64;
    let rate = 1.0 / (0.25 * (width + 1.0) + LAMBDA);
    let dims = features.len() + 1; // the last is the intercept
    let mut w = vec![0.0f64; dims];
    let mut previous = w.clone();
    let mut grad = vec![0.0f64; dims];
    for t in 0..STEPS {
        let momentum = t as f64 / (t as f64 + 3.0);
        let look: Vec<f64> = w
            .iter()
            .zip(&previous)
            .map(|(a, b)| a + momentum * (a - b))
            .collect();
        grad.iter_mut().for_each(|g| *g = 0.0);
        for (row, label) in x.iter().zip(&y) {
            let z: f64 = look[dims - 1] + row.iter().map(|f| look[*f as usize]).sum::<f64>();
            let p = 1.0 / (1.0 + (-z).exp());
            let e = (p - label) / n;
            for f in row {
                grad[*f as usize] += e;
            }
            grad[dims - 1] += e;
        }
        previous = w.clone();
        for (i, g) in grad.iter().enumerate() {
            let penalty = if i + 1 < dims { LAMBDA * look[i] } else { 0.0 };
            w[i] = look[i] - rate * (g + penalty);
        }
    }
    features
        .into_iter()
        .zip(w)
        .map(|((name, value), weight)| TraitWeight {
            name,
            value,
            weight: weight as f32,
        })
        .collect()
}
