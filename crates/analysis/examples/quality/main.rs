//! Insight quality with the truth known: every boolean audience (the planner now, and the one
//! `main` had before) and the ranked tiers measured against a truth the analysis never saw. The
//! tiers are scored with the service's own weights: naive Bayes (`Mined::lookalike_weights`,
//! what a remote provider gets) and the logistic regression (`Mined::logistic_weights` against
//! the embedded provider's `Population::sample_traits`, what the analyze stage fits).
//!
//! ```text
//! # planted segments on a generated population (customers from a segment plus noise)
//! cargo run --release -p icp-analysis --example quality -- generated [persons]
//! # a real data set: ISLP's Caravan (see caravan.py), half the buyers as customers
//! python3 crates/analysis/examples/quality/caravan.py /tmp/caravan
//! cargo run --release -p icp-analysis --example quality -- labelled /tmp/caravan/population.csv /tmp/caravan/labels.csv [splits]
//! ```
//!
//! `labelled` measures the file-order split (every other member a customer) in full, then
//! `splits` (default 20) seeded random halves, and gives for each boolean audience the mean
//! lift of it and of each model's tier of its size, and the paired difference with a 95 %
//! interval over the splits: whether a difference is more than the noise of which members
//! happened to be held out. `QUALITY_PENALTY` overrides the logistic penalty (to compare).
//!
//! Customers are left out of every audience and of the truth; precision is the share of an
//! audience in the truth, recall the share of the truth in the audience, lift the precision
//! over the truth's base rate among everyone else.

mod lab;

use std::collections::HashSet;
use std::path::Path;

use icp_analysis::{AnalysisConfig, AudienceConfig, AudiencePlan, Expr};
use icp_contract::PersonId;
use icp_population::{GeneratorConfig, Population};

use lab::Measured;

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
        Some("labelled") if args.len() == 3 || args.len() == 4 => labelled(
            Path::new(&args[1]),
            Path::new(&args[2]),
            args.get(3).map_or(20, |s| s.parse().expect("splits")),
        ),
        _ => {
            eprintln!(
                "usage: quality generated [persons] | quality labelled <population.csv> <labels.csv> [splits]"
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
            run(&Case {
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

/// A population file and a labels file (`row,label` with `1` for the group): half the group are
/// the customers, the other half the truth; first every other member in file order (in full),
/// then `splits` seeded random halves (summarised).
fn labelled(population: &Path, labels: &Path, splits: u64) {
    let pop = Population::from_csv_path(population).expect("population imports");
    let text = std::fs::read_to_string(labels).expect("labels");
    let mut group: Vec<usize> = Vec::new();
    for line in text.lines().skip(1) {
        let (row, label) = line.split_once(',').expect("row,label");
        if label.trim() == "1" {
            group.push(row.trim().parse().expect("row"));
        }
    }
    let name = population
        .file_stem()
        .map_or("labelled".into(), |s| s.to_string_lossy().into_owned());
    let case = |half: &[usize], name: String| {
        let customers: Vec<PersonId> = half.iter().map(|r| pop.person_id(*r)).collect();
        let chosen: HashSet<usize> = half.iter().copied().collect();
        let mut truth = vec![false; pop.len()];
        for r in group.iter().filter(|r| !chosen.contains(r)) {
            truth[*r] = true;
        }
        Case {
            name,
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
        }
    };
    let half: Vec<usize> = group.iter().step_by(2).copied().collect();
    println!(
        "Labelled population: {} persons, a group of {} ({} customers, {} held out).\n",
        pop.len(),
        group.len(),
        half.len(),
        group.len() - half.len()
    );
    run(&case(&half, name.clone()));
    if splits == 0 {
        return;
    }
    // Seeded random halves: a partial Fisher–Yates shuffle of the group per split.
    let mut by_audience: std::collections::BTreeMap<String, Vec<Compared>> = Default::default();
    for split in 1..=splits {
        let mut members = group.clone();
        let mut state = split.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        for i in 0..members.len() {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut x = state;
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            x ^= x >> 31;
            let j = i + (x % (members.len() - i) as u64) as usize;
            members.swap(i, j);
        }
        let mut half = members[..group.len() / 2].to_vec();
        half.sort_unstable();
        let c = case(&half, format!("{name}, split {split}"));
        for compared in compare(&c) {
            by_audience
                .entry(compared.label.clone())
                .or_default()
                .push(compared);
        }
    }
    println!("### {name}: {splits} seeded random halves\n");
    println!(
        "| audience | mean size | boolean lift | NB same size | LR same size | LR − boolean (95 % interval) | LR wins | NB − boolean (95 % interval) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (label, all) in &by_audience {
        let k = all.len() as f64;
        let mean = |f: &dyn Fn(&Compared) -> f64| all.iter().map(f).sum::<f64>() / k;
        let interval = |f: &dyn Fn(&Compared) -> f64| {
            let m = mean(f);
            let var = all.iter().map(|c| (f(c) - m).powi(2)).sum::<f64>() / (k - 1.0).max(1.0);
            (m, 1.96 * (var / k).sqrt())
        };
        let (lr, lr_half) = interval(&|c| c.logistic - c.boolean);
        let (nb, nb_half) = interval(&|c| c.naive_bayes - c.boolean);
        println!(
            "| {label} | {:.0} | {:.2}× | {:.2}× | {:.2}× | {lr:+.2} (±{lr_half:.2}) | {}/{} | {nb:+.2} (±{nb_half:.2}) |",
            mean(&|c| c.size as f64),
            mean(&|c| c.boolean),
            mean(&|c| c.naive_bayes),
            mean(&|c| c.logistic),
            all.iter().filter(|c| c.logistic > c.boolean).count(),
            all.len(),
        );
    }
    println!();
}

/// One audience's lift and each model's tier of its size.
struct Compared {
    label: String,
    size: u64,
    boolean: f64,
    naive_bayes: f64,
    logistic: f64,
}

/// Penalty of the logistic model: the service's, unless `QUALITY_PENALTY` says otherwise.
fn penalty() -> f64 {
    std::env::var("QUALITY_PENALTY").map_or(icp_analysis::DEFAULT_PENALTY, |p| {
        p.parse().expect("QUALITY_PENALTY")
    })
}

/// Scores of each model, and a measurement of the `size` best-scoring persons.
struct Scored<'a> {
    case: &'a Case<'a>,
    naive_bayes: Vec<f32>,
    logistic: Vec<f32>,
}

impl<'a> Scored<'a> {
    fn new(case: &'a Case<'a>, planned: &lab::Planned) -> Self {
        let pop = case.pop;
        let nb = lab::for_scoring(&planned.naive_bayes());
        let lr = lab::for_scoring(&planned.logistic(pop, &case.customers, penalty()));
        Scored {
            case,
            naive_bayes: pop.scores_of(&nb).expect("scores"),
            logistic: pop.scores_of(&lr).expect("scores"),
        }
    }

    fn at(&self, scores: &[f32], size: u64) -> Measured {
        lab::measure(
            &lab::top_rows(scores, &self.case.customer_rows, size as usize),
            &self.case.truth,
            &self.case.customer_rows,
        )
    }
}

/// Each audience the planner chooses now against each model's tier of its size.
fn compare(case: &Case<'_>) -> Vec<Compared> {
    let pop = case.pop;
    let planned = lab::analyse(pop, &case.customers, case.analysis.clone());
    let planning = planned.plan(pop, &AudienceConfig::default());
    let scored = Scored::new(case, &planned);
    planning
        .plans
        .iter()
        .map(|plan| {
            let members = planned.members(pop, &plan.expression);
            let m = lab::measure(&members, &case.truth, &case.customer_rows);
            Compared {
                label: format!("{:?}", plan.strategy),
                size: m.size,
                boolean: m.lift,
                naive_bayes: scored.at(&scored.naive_bayes, m.size).lift,
                logistic: scored.at(&scored.logistic, m.size).lift,
            }
        })
        .collect()
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

fn run(case: &Case<'_>) {
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
    let fitted = std::time::Instant::now();
    let scored = Scored::new(case, &planned);
    println!(
        "- both models fitted and every person scored in {:.2}s",
        fitted.elapsed().as_secs_f64()
    );
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
            let (n, l) = (
                scored.at(&scored.naive_bayes, m.size),
                scored.at(&scored.logistic, m.size),
            );
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
        "\n| ranked tier | size | NB precision | NB recall | NB lift | LR precision | LR recall | LR lift |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for fraction in TIERS {
        let size = (fraction * eligible as f64).round() as u64;
        let (n, l) = (
            scored.at(&scored.naive_bayes, size),
            scored.at(&scored.logistic, size),
        );
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
