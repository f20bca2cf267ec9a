//! The audience planner: the reference's four strategies, each chosen for what it is expected
//! to hold — customer-like people — within a size band.
//!
//! Every candidate expression is measured two ways: the customers it holds, counted exactly on
//! the mined bitsets (`c` of `N` customers), and its size in the population (`s` of `P`
//! persons), from the traits' cluster sizes or an exact `find_persons` count (bounded by
//! [`AudienceConfig::max_count_calls`]). Its **index** is `(c / N) / (s / P)`: how many times
//! more likely a person of the audience is customer-like than anyone. Candidates are compared
//! on a cautious index, `((c − 2√c) / N) / (s / P)`, so a set a handful of customers share
//! cannot win on luck.
//!
//! - `precision`: the AND of 3+ traits (a mined cluster or a subset of one) with the best index
//!   inside its band.
//! - `standard`: the AND of 2 traits, taken from precision's traits where one fits its band (so
//!   precision ⊂ standard).
//! - `hybrid`: standard's AND (else precision's) OR further trait combinations, each added only
//!   if the people it adds hold customers at [`AudienceConfig::min_marginal_index`] or more and
//!   the whole stays inside the band. No term is contained in another.
//! - `reach`: an OR of single traits, starting with one trait of each hybrid term (so hybrid ⊂
//!   reach; without hybrid, of standard's or precision's) and growing by the same rule; never
//!   past its band, so never the population.
//!
//! Where a band cannot be met (populations whose traits are coarse, or small ones), precision,
//! standard and hybrid keep the best candidate past the band, or the largest below it, and
//! hybrid may grow to twice its start (never to reach's top). No AND keeps a trait the others
//! imply (the same people without it). A strategy that cannot meet its band says so in the
//! notes ([`AudienceNoteCode`]).
//!
//! With exclusions ([`AudienceConfig::exclude`], every plan `AND NOT` them), every candidate is
//! measured as it will be sent: its customers counted without those holding an excluded trait
//! (the trait's mined bitset; an excluded trait too rare among the customers to be mined is
//! said in a note), and its size counted with the exclusions (the `count` callback sends them),
//! a single trait's cluster size then only an upper bound.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::audience::{AudienceConfig, AudiencePlan, Band, Expected, Expr, Strategy};
use crate::baseline::Baseline;
use crate::bitset;
use crate::item::Item;
use crate::mine::Mined;
use crate::report::Analysis;

/// What a note about the audiences says, as a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AudienceNoteCode {
    /// No expression of the strategy's shape fits its band: the audience is larger than the
    /// band, or there is none.
    BandUnmet,
    /// The audience is smaller than its band (or the minimum audience size): too few people
    /// have these traits.
    BelowBand,
    /// No expression of the strategy's shape holds the customers above their share of the
    /// population: no audience is offered.
    NoLift,
    /// The audience is not contained in the next smaller strategy's.
    NotNested,
    /// The provider gave no population size: shares are of an estimate (the largest number of
    /// persons any attribute is known for).
    PopulationEstimated,
    /// The exact count budget ran out: the size is an estimate (traits taken as independent).
    SizeEstimated,
    /// An exclusion (`options.exclude`) names a trait the provider has no cluster for: it
    /// excluded nobody and was left out of the expressions.
    ExclusionUnknown,
    /// An exclusion names a trait too few customers hold to be mined: the customers the
    /// planner expects an audience to hold still count those few who hold it.
    ExclusionUncounted,
}

/// A note about the audiences: a code, the strategy it concerns (none: all), and a sentence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AudienceNote {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    pub code: AudienceNoteCode,
    pub message: String,
}

/// The planner's answer: the audiences in the order asked, and the notes about them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudiencePlanning {
    pub plans: Vec<AudiencePlan>,
    pub notes: Vec<AudienceNote>,
    /// The population size the shares are of (estimated when a note says so).
    pub population: u64,
    /// Exact counts asked of the provider.
    pub count_calls: u64,
}

impl AudiencePlanning {
    /// Every trait the plans use, sorted, without repeats.
    pub fn items(&self) -> Vec<Item> {
        let set: BTreeSet<Item> = self.plans.iter().flat_map(|p| p.items()).collect();
        set.into_iter().collect()
    }
}

/// An AND of traits, sorted.
type Term = Vec<Item>;
/// An OR of ANDs, each sorted, in the order chosen.
type Dnf = Vec<Term>;

/// Exact counts for `precision` and `standard` candidates; `hybrid` and `reach` take one count a
/// term they try.
const PRECISION_COUNTS: usize = 8;
const STANDARD_COUNTS: usize = 6;

/// A candidate measured.
#[derive(Debug, Clone)]
struct Scored {
    dnf: Dnf,
    customers: u64,
    size: f64,
    exact: bool,
    index: f64,
    cautious: f64,
}

/// Where a chosen audience stands against its band.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fit {
    InBand,
    Below,
    Above,
}

impl Mined {
    /// Plans the audiences of `config.strategies` (see the module's rules). `analysis` is this
    /// lattice's report ranked against `baseline`; `count` answers the population size of an
    /// expression (a `find_persons` count) or `None` when it cannot. `None` when the baseline
    /// knows no population size, not even an estimate: the shares cannot be measured.
    pub fn plan_audiences(
        &self,
        analysis: &Analysis,
        baseline: &Baseline,
        config: &AudienceConfig,
        count: &mut dyn FnMut(&Expr) -> Option<u64>,
    ) -> Option<AudiencePlanning> {
        let population = baseline.population_estimate()?;
        let positions: HashMap<Item, u32> = (0..self.frequent.len() as u32)
            .map(|p| (self.item(p), p))
            .collect();
        let p = population as f64;
        let excluded_items = config.exclude.as_ref().map(Expr::items).unwrap_or_default();
        // The customers an audience leaves out: those holding any excluded trait.
        let mut excluded = vec![0u64; self.words];
        let mut uncounted = Vec::new();
        for item in &excluded_items {
            match positions.get(item) {
                Some(&position) => excluded
                    .iter_mut()
                    .zip(self.row(position))
                    .for_each(|(e, r)| *e |= r),
                None => uncounted.push(format!("{}={}", item.name, item.value)),
            }
        }
        // Of the population, the share no exclusion removes, the traits taken as independent:
        // what a trait's cluster size is scaled by to estimate it with the exclusions.
        let kept = excluded_items
            .iter()
            .map(|i| {
                1.0 - baseline
                    .sizes
                    .get(i)
                    .map_or(0.0, |s| (*s as f64 / p).min(1.0))
            })
            .product::<f64>();
        let min_size = config
            .min_audience_size
            .map_or_else(|| (0.005 * p).min(1000.0), |m| m as f64)
            .max(1.0);
        let mut planner = Planner {
            mined: self,
            analysis,
            config,
            baseline,
            positions,
            n: self.customers as f64,
            p,
            min_size,
            excluded: (!excluded_items.is_empty()).then_some(excluded),
            kept,
            exact: HashMap::new(),
            calls: 0,
            count,
            notes: Vec::new(),
        };
        if baseline.population_size.is_none() {
            planner.notes.push(AudienceNote {
                strategy: None,
                code: AudienceNoteCode::PopulationEstimated,
                message: format!(
                    "The provider gave no population size; shares are of an estimated {population} persons."
                ),
            });
        }
        if !uncounted.is_empty() {
            planner.notes.push(AudienceNote {
                strategy: None,
                code: AudienceNoteCode::ExclusionUncounted,
                message: format!(
                    "Too few customers hold the excluded {} to be counted out: the customers each audience is expected to hold may include those few.",
                    uncounted.join(", ")
                ),
            });
        }
        let wanted: BTreeSet<Strategy> = config.strategies.iter().copied().collect();
        let last = Strategy::ALL
            .iter()
            .rposition(|s| wanted.contains(s))
            .unwrap_or(0);
        let mut chosen: HashMap<Strategy, Scored> = HashMap::new();
        for &strategy in &Strategy::ALL[..=last] {
            let pick = match strategy {
                Strategy::Precision => planner.precision(),
                Strategy::Standard => planner.standard(chosen.get(&Strategy::Precision)),
                Strategy::Hybrid => planner.hybrid(
                    chosen
                        .get(&Strategy::Standard)
                        .or(chosen.get(&Strategy::Precision)),
                ),
                Strategy::Reach => planner.reach(
                    chosen
                        .get(&Strategy::Hybrid)
                        .or(chosen.get(&Strategy::Standard))
                        .or(chosen.get(&Strategy::Precision)),
                ),
            };
            if let Some(pick) = pick {
                chosen.insert(strategy, pick);
            }
        }
        planner.note_nesting(&chosen, &wanted);
        let mut seen = BTreeSet::new();
        let plans = config
            .strategies
            .iter()
            .filter(|s| seen.insert(**s))
            .filter_map(|s| chosen.get(s).map(|pick| planner.plan(*s, pick)))
            .collect();
        let mut notes = planner.notes;
        notes.retain(|n| n.strategy.is_none_or(|s| wanted.contains(&s)));
        Some(AudiencePlanning {
            plans,
            notes,
            population,
            count_calls: planner.calls as u64,
        })
    }
}

struct Planner<'a> {
    mined: &'a Mined,
    analysis: &'a Analysis,
    config: &'a AudienceConfig,
    baseline: &'a Baseline,
    positions: HashMap<Item, u32>,
    n: f64,
    p: f64,
    min_size: f64,
    /// The customers holding an excluded trait (a bitset over the mined customers), when the
    /// plans exclude any: no audience holds them.
    excluded: Option<Vec<u64>>,
    /// The share of the population no exclusion removes (1 without exclusions).
    kept: f64,
    /// Exact population sizes counted so far.
    exact: HashMap<Dnf, u64>,
    calls: usize,
    count: &'a mut dyn FnMut(&Expr) -> Option<u64>,
    notes: Vec<AudienceNote>,
}

impl Planner<'_> {
    fn note(&mut self, strategy: Strategy, code: AudienceNoteCode, message: String) {
        self.notes.push(AudienceNote {
            strategy: Some(strategy),
            code,
            message,
        });
    }

    /// The band in persons: at least the minimum audience size; when that lifts the lower bound
    /// past half the band's top (a small population), the top becomes twice the lower bound.
    fn bounds(&self, band: Band) -> (f64, f64) {
        let lower = (band.min_share * self.p).max(self.min_size);
        let upper = (band.max_share * self.p).max(2.0 * lower);
        (lower, upper.min(self.p))
    }

    /// What the counts made so far say of an AND's size: at most any counted subset's (and
    /// any one trait's), at least any counted superset's.
    fn known_range(&self, term: &Term) -> (f64, f64) {
        let mut upper = f64::INFINITY;
        for item in term {
            if let Some(size) = self.cluster_size(item) {
                upper = upper.min(size);
            }
        }
        let mut lower: f64 = 0.0;
        for (dnf, size) in &self.exact {
            if let [counted] = dnf.as_slice() {
                if subset(counted, term) {
                    upper = upper.min(*size as f64);
                }
                if subset(term, counted) {
                    lower = lower.max(*size as f64);
                }
            }
        }
        (lower, upper)
    }

    /// Customers having the expression: exact, over the mined bitsets. `None` when a trait is
    /// not among the frequent ones.
    fn customers(&self, dnf: &Dnf) -> Option<u64> {
        let words = self.mined.words;
        let mut union = vec![0u64; words];
        for term in dnf {
            let mut rows = term.iter().map(|i| self.positions.get(i).copied());
            let first = rows.next()??;
            let mut acc = self.mined.row(first).to_vec();
            for position in rows {
                let row = self.mined.row(position?);
                acc.iter_mut().zip(row).for_each(|(a, b)| *a &= b);
            }
            union.iter_mut().zip(&acc).for_each(|(u, a)| *u |= a);
        }
        if let Some(excluded) = &self.excluded {
            union.iter_mut().zip(excluded).for_each(|(u, e)| *u &= !e);
        }
        Some(bitset::count(&union))
    }

    /// A trait's cluster size: the persons holding it, excluded or not.
    fn cluster_size(&self, item: &Item) -> Option<f64> {
        self.baseline.sizes.get(item).map(|s| *s as f64)
    }

    /// A trait's size as its audience would have it: its cluster size, with exclusions scaled
    /// by the share they leave (an estimate).
    fn single_size(&self, item: &Item) -> Option<f64> {
        self.cluster_size(item).map(|s| s * self.kept)
    }

    /// A size without a count: a counted term's size, else the traits taken as independent;
    /// the terms of an OR likewise.
    fn estimate(&self, dnf: &Dnf) -> Option<f64> {
        let mut outside = 1.0;
        let mut largest: f64 = 0.0;
        for term in dnf {
            let size = match self.exact.get(&vec![term.clone()]) {
                Some(s) => *s as f64,
                None => {
                    let mut share = self.kept;
                    for item in term {
                        share *= self.cluster_size(item)? / self.p;
                    }
                    share * self.p
                }
            };
            largest = largest.max(size);
            outside *= 1.0 - (size / self.p).min(1.0);
        }
        Some(((1.0 - outside) * self.p).max(largest))
    }

    /// A single AND's size before counting it, from its customers: the set taken to be as
    /// concentrated among them as its most distinctive trait (`P · supp / max index(i)`), which
    /// sets of associated traits usually beat, so this leans large; within what the counts
    /// made so far allow. Independent traits would make it far smaller than segments are.
    fn concentrated(&self, dnf: &Dnf, customers: u64) -> Option<f64> {
        let [term] = dnf.as_slice() else {
            return self.estimate(dnf);
        };
        let mut best_index: f64 = 1.0;
        for item in term {
            let size = self.single_size(item)?;
            let c = self.customers(&vec![vec![item.clone()]])? as f64;
            best_index = best_index.max((c / self.n) / (size.max(1.0) / self.p));
        }
        let guess = self.p * (customers as f64 / self.n) / best_index;
        let (low, high) = self.known_range(term);
        Some(guess.clamp(low, high.max(low)))
    }

    /// The population size of `dnf` and whether it is exact: a single trait's cluster size
    /// (without exclusions), a count already made, or (when `call`) a new count within the
    /// budget.
    fn size(&mut self, dnf: &Dnf, call: bool) -> Option<(f64, bool)> {
        if let [term] = dnf.as_slice()
            && let [item] = term.as_slice()
            && self.excluded.is_none()
            && let Some(size) = self.cluster_size(item)
        {
            return Some((size, true));
        }
        if let Some(size) = self.exact.get(dnf) {
            return Some((*size as f64, true));
        }
        if call && self.calls < self.config.max_count_calls {
            self.calls += 1;
            if let Some(size) = (self.count)(&to_expr(dnf)) {
                self.exact.insert(dnf.clone(), size);
                return Some((size as f64, true));
            }
        }
        self.estimate(dnf).map(|s| (s, false))
    }

    fn scored(&self, dnf: Dnf, customers: u64, size: f64, exact: bool) -> Scored {
        let c = customers as f64;
        let share = size.max(1.0) / self.p;
        Scored {
            dnf,
            customers,
            size,
            exact,
            index: c / self.n / share,
            cautious: (c - 2.0 * c.sqrt()).max(0.0) / self.n / share,
        }
    }

    /// Of `candidates` (one AND each), the best by cautious index inside the band, counting the
    /// `budget` most promising exactly. Else the largest below the band, else the smallest
    /// above it; `None` when none holds the customers above their share.
    fn choose(
        &mut self,
        strategy: Strategy,
        candidates: Vec<Dnf>,
        budget: usize,
    ) -> Option<(Scored, Fit)> {
        let (lower, upper) = self.bounds(self.config.bands.of(strategy));
        let min_count = self.mined.min_count;
        let mut ranked: Vec<((u8, f64), Dnf, u64)> = Vec::new();
        for dnf in candidates {
            let Some(c) = self.customers(&dnf).filter(|c| *c >= min_count) else {
                continue;
            };
            let Some(est) = self.concentrated(&dnf, c) else {
                continue;
            };
            let index = (c as f64 / self.n) / (est.max(1.0) / self.p);
            if index <= 1.0 {
                continue;
            }
            // Those expected inside the band first, by cautious index; then those expected
            // below it, the largest first; then those above, the smallest first.
            let cautious = (c as f64 - 2.0 * (c as f64).sqrt()).max(0.0) / (est.max(1.0));
            let key = if est < lower {
                (1, -est)
            } else if est > upper {
                (2, est)
            } else {
                (0, -cautious)
            };
            ranked.push((key, dnf, c));
        }
        ranked.sort_by(|a, b| {
            a.0.0
                .cmp(&b.0.0)
                .then(a.0.1.total_cmp(&b.0.1))
                .then_with(|| a.1.cmp(&b.1))
        });
        let mut measured = Vec::new();
        let mut spent = 0;
        for (_, dnf, c) in ranked {
            // A count is spent only where the band is still in question: the counts made so
            // far bound an AND's size from both sides.
            let (low, high) = match dnf.as_slice() {
                [term] => self.known_range(term),
                _ => (0.0, f64::INFINITY),
            };
            let open = high >= lower && low <= upper;
            let call = open && spent < budget && !self.exact.contains_key(&dnf);
            let before = self.calls;
            let (size, exact) = self.size(&dnf, call)?;
            spent += self.calls - before;
            let size = if exact { size } else { size.clamp(low, high) };
            measured.push(self.scored(dnf, c, size, exact));
        }
        let fit = |s: &Scored| {
            if s.size < lower {
                Fit::Below
            } else if s.size > upper {
                Fit::Above
            } else {
                Fit::InBand
            }
        };
        // None counted inside the band: what is left of the budget counts the most promising
        // of the rest, so the one chosen out of the band is measured, not guessed.
        if !measured.iter().any(|s| s.exact && fit(s) == Fit::InBand) {
            let mut rest: Vec<usize> = (0..measured.len())
                .filter(|i| !measured[*i].exact)
                .collect();
            rest.sort_by(|a, b| measured[*b].cautious.total_cmp(&measured[*a].cautious));
            for i in rest {
                if spent >= budget {
                    break;
                }
                let before = self.calls;
                if let Some((size, true)) = self.size(&measured[i].dnf, true) {
                    let s = &measured[i];
                    measured[i] = self.scored(s.dnf.clone(), s.customers, size, true);
                }
                spent += self.calls - before;
            }
        }
        measured.retain(|s| s.index > 1.0);
        // An exact figure beats an estimate.
        if measured.iter().any(|s| s.exact) {
            measured.retain(|s| s.exact);
        }
        // In the band, the best cautious index; none fits: past the band, the best index (it
        // still has the people the band asks for); else below it, the largest. An AND one of
        // whose traits the others imply (the same people without it) is passed over: the
        // first three in this order are checked.
        let mut order: Vec<(Fit, Scored)> = measured.into_iter().map(|s| (fit(&s), s)).collect();
        let rank = |f: Fit| match f {
            Fit::InBand => 0,
            Fit::Above => 1,
            Fit::Below => 2,
        };
        order.sort_by(|(fa, a), (fb, b)| {
            rank(*fa)
                .cmp(&rank(*fb))
                .then_with(|| match fa {
                    Fit::Below => b.size.total_cmp(&a.size),
                    _ => b.cautious.total_cmp(&a.cautious),
                })
                .then_with(|| a.dnf.cmp(&b.dnf))
        });
        let mut fallback = None;
        for (checked, (f, s)) in order.into_iter().enumerate() {
            if checked >= 3 || !self.carries_implied(&s) {
                return Some((s, f));
            }
            fallback.get_or_insert((s, f));
        }
        fallback
    }

    /// Whether an exactly counted AND holds the same people as the AND of all but one of its
    /// traits: that trait adds nothing. Counted within the budget (a single trait's size is
    /// known); unknown counts are taken as different.
    fn carries_implied(&mut self, s: &Scored) -> bool {
        let [term] = s.dnf.as_slice() else {
            return false;
        };
        if !s.exact || term.len() < 2 {
            return false;
        }
        for skip in 0..term.len() {
            let rest: Term = term
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, item)| item.clone())
                .collect();
            if let Some((size, true)) = self.size(&vec![rest], true)
                && size <= s.size
            {
                return true;
            }
        }
        false
    }

    /// Says what a single-term strategy's choice lacks.
    fn note_fit(&mut self, strategy: Strategy, picked: Option<&(Scored, Fit)>, shape: &str) {
        let (lower, upper) = self.bounds(self.config.bands.of(strategy));
        match picked {
            None => self.note(
                strategy,
                AudienceNoteCode::NoLift,
                format!(
                    "No {shape} shared by enough customers holds them above their share of the population; no {} audience.",
                    strategy.name()
                ),
            ),
            Some((s, Fit::Below)) => self.note(
                strategy,
                AudienceNoteCode::BelowBand,
                format!(
                    "The best {shape} reaches {} people, fewer than the band's {}.",
                    s.size.round(),
                    lower.round()
                ),
            ),
            Some((s, Fit::Above)) => self.note(
                strategy,
                AudienceNoteCode::BandUnmet,
                format!(
                    "No {shape} fits the band of {}–{} people; the one chosen holds {}.",
                    lower.round(),
                    upper.round(),
                    s.size.round()
                ),
            ),
            Some((_, Fit::InBand)) => {}
        }
    }

    fn precision(&mut self) -> Option<Scored> {
        let mut candidates: BTreeSet<Term> = BTreeSet::new();
        for cluster in &self.analysis.multi_attribute_clusters {
            let items = &cluster.items;
            candidates.insert(items.clone());
            if items.len() > 3 && items.len() <= 6 {
                for mask in 0u32..(1 << items.len()) {
                    if mask.count_ones() >= 3 && (mask.count_ones() as usize) < items.len() {
                        let subset = items
                            .iter()
                            .enumerate()
                            .filter(|(i, _)| mask & (1 << i) != 0)
                            .map(|(_, item)| item.clone())
                            .collect();
                        candidates.insert(subset);
                    }
                }
            }
        }
        let candidates = candidates.into_iter().map(|t| vec![t]).collect();
        let picked = self.choose(Strategy::Precision, candidates, PRECISION_COUNTS);
        self.note_fit(
            Strategy::Precision,
            picked.as_ref(),
            "combination of 3 or more traits",
        );
        picked.map(|(s, _)| s)
    }

    fn standard(&mut self, precision: Option<&Scored>) -> Option<Scored> {
        let pairs_of = |items: &[Item]| {
            let mut pairs = Vec::new();
            for (i, a) in items.iter().enumerate() {
                for b in &items[i + 1..] {
                    pairs.push(vec![vec![a.clone(), b.clone()]]);
                }
            }
            pairs
        };
        let nested = precision.map(|p| pairs_of(&p.dnf[0])).unwrap_or_default();
        let start = self.calls;
        let mut picked = None;
        if !nested.is_empty() {
            picked = self.choose(Strategy::Standard, nested.clone(), STANDARD_COUNTS / 2 + 1);
        }
        let budget = STANDARD_COUNTS.saturating_sub(self.calls - start);
        if picked.as_ref().is_none_or(|(_, fit)| *fit != Fit::InBand) {
            let mut all: BTreeSet<Dnf> = nested.into_iter().collect();
            all.extend(
                self.analysis
                    .top_intersections
                    .iter()
                    .map(|p| vec![p.items.clone()]),
            );
            let wider = self.choose(Strategy::Standard, all.into_iter().collect(), budget);
            if wider.as_ref().is_some_and(|(_, fit)| *fit == Fit::InBand) || picked.is_none() {
                picked = wider;
            }
        }
        self.note_fit(Strategy::Standard, picked.as_ref(), "pair of traits");
        picked.map(|(s, _)| s)
    }

    /// Grows an OR from `start` with the `candidates` terms: the most promising first (customers
    /// added against people added, as estimated), each counted exactly and kept only if the
    /// whole stays within `upper` and the people it adds hold customers at the marginal index
    /// floor. At most `max_terms` terms and `tries` counts.
    fn grow(
        &mut self,
        start: Scored,
        candidates: Vec<Term>,
        upper: f64,
        max_terms: usize,
        tries: usize,
    ) -> Scored {
        let mut current = start;
        let mut pool: Vec<Term> = candidates;
        let mut tried = 0;
        while current.dnf.len() < max_terms && tried < tries && !pool.is_empty() {
            pool.retain(|t| !redundant(&current.dnf, t));
            let mut best: Option<(f64, usize, u64)> = None;
            for (i, term) in pool.iter().enumerate() {
                let mut dnf = current.dnf.clone();
                dnf.push(term.clone());
                let alone = vec![term.clone()];
                let (Some(c), Some(c_term)) = (self.customers(&dnf), self.customers(&alone)) else {
                    continue;
                };
                let Some(s_term) = self.concentrated(&alone, c_term) else {
                    continue;
                };
                let added_c = c.saturating_sub(current.customers) as f64;
                // The term's people taken to overlap the audience as its customers do.
                let new_share = added_c / (c_term.max(1) as f64);
                let added_s = (s_term * new_share).max(1.0);
                let index = (added_c / self.n) / (added_s / self.p);
                if added_c <= 0.0 || index < self.config.min_marginal_index {
                    continue;
                }
                let score = added_c * index.ln();
                if best.is_none_or(|(b, _, _)| score > b) {
                    best = Some((score, i, c));
                }
            }
            let Some((_, i, c)) = best else { break };
            let term = pool.remove(i);
            let mut dnf = current.dnf.clone();
            dnf.push(term);
            tried += 1;
            let Some((size, true)) = self.size(&dnf, true) else {
                continue;
            };
            let added_c = c.saturating_sub(current.customers) as f64;
            let added_s = (size - current.size).max(1.0);
            let marginal = (added_c / self.n) / (added_s / self.p);
            if size <= upper && marginal >= self.config.min_marginal_index {
                current = self.scored(dnf, c, size, true);
            }
        }
        current
    }

    fn hybrid(&mut self, seed: Option<&Scored>) -> Option<Scored> {
        let strategy = Strategy::Hybrid;
        let (lower, band_upper) = self.bounds(self.config.bands.hybrid);
        let (_, reach_upper) = self.bounds(self.config.bands.reach);
        let Some(seed) = seed.filter(|s| s.size < reach_upper) else {
            self.note(
                strategy,
                AudienceNoteCode::NoLift,
                "No combination of traits holds the customers above their share under the reach band's top; no hybrid audience."
                    .to_owned(),
            );
            return None;
        };
        // Started past its band (the pairs of this population are wide), hybrid may grow to
        // twice its start, never to reach's top.
        let upper = if seed.size > band_upper {
            (2.0 * seed.size).min(reach_upper)
        } else {
            band_upper
        };
        let mut candidates: BTreeSet<Term> = self
            .analysis
            .top_intersections
            .iter()
            .map(|p| p.items.clone())
            .collect();
        candidates.extend(
            self.analysis
                .multi_attribute_clusters
                .iter()
                .map(|c| c.items.clone()),
        );
        let tries = self
            .config
            .max_count_calls
            .saturating_sub(self.calls)
            .min(5);
        let max_terms = self.config.hybrid_groups.clamp(2, 3);
        let grown = self.grow(
            seed.clone(),
            candidates.into_iter().collect(),
            upper,
            max_terms,
            tries,
        );
        if grown.dnf.len() < 2 {
            self.note(
                strategy,
                AudienceNoteCode::BandUnmet,
                format!(
                    "No further combination of traits adds people at least {:.1}× as customer-like as anyone within the band; no hybrid audience.",
                    self.config.min_marginal_index
                ),
            );
            return None;
        }
        if grown.size < lower {
            self.note(
                strategy,
                AudienceNoteCode::BelowBand,
                format!(
                    "The hybrid audience reaches {} people, fewer than the band's {}.",
                    grown.size.round(),
                    lower.round()
                ),
            );
        } else if grown.size > band_upper {
            self.note(
                strategy,
                AudienceNoteCode::BandUnmet,
                format!(
                    "The hybrid audience holds {} people, more than the band's {}: its narrowest combinations are wider.",
                    grown.size.round(),
                    band_upper.round()
                ),
            );
        }
        Some(grown)
    }

    /// `inner`: the widest audience planned before (hybrid, else standard, else precision),
    /// which reach starts by containing.
    fn reach(&mut self, inner: Option<&Scored>) -> Option<Scored> {
        let strategy = Strategy::Reach;
        let (lower, upper) = self.bounds(self.config.bands.reach);
        let min_index = self.config.reach_min_index.unwrap_or(1.0).max(1.0);
        // Single traits that set the customers apart, each under the band's top.
        let mut singles: Vec<(f64, Item, u64)> = Vec::new();
        for position in 0..self.mined.frequent.len() as u32 {
            let item = self.mined.item(position);
            let c = match self.excluded {
                None => self.mined.count_of(position),
                Some(_) => self
                    .customers(&vec![vec![item.clone()]])
                    .unwrap_or_default(),
            };
            let Some(size) = self.single_size(&item) else {
                continue;
            };
            let index = (c as f64 / self.n) / (size.max(1.0) / self.p);
            if index > min_index && size <= upper {
                singles.push((c as f64 * index.ln(), item, c));
            }
        }
        singles.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let rank: HashMap<&Item, usize> = singles
            .iter()
            .enumerate()
            .map(|(i, (_, item, _))| (item, i))
            .collect();
        // Traits that together touch every term of `inner`, so that audience is inside: the
        // best ranked of each term; the fewest traits (those in most terms, then the smaller);
        // the smallest of each term. Counted smallest estimate first, two at most.
        let mut start: Option<Scored> = None;
        if let Some(h) = inner {
            let usable = |i: &&Item| rank.contains_key(*i);
            let by_rank: Option<BTreeSet<Item>> = h
                .dnf
                .iter()
                .map(|term| term.iter().filter(usable).min_by_key(|i| rank[*i]).cloned())
                .collect();
            let smallest: Option<BTreeSet<Item>> = h
                .dnf
                .iter()
                .map(|term| {
                    term.iter()
                        .filter(usable)
                        .min_by(|a, b| {
                            let (x, y) = (self.single_size(a), self.single_size(b));
                            x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal)
                        })
                        .cloned()
                })
                .collect();
            let mut fewest: Option<BTreeSet<Item>> = Some(BTreeSet::new());
            let mut open: Vec<&Term> = h.dnf.iter().collect();
            while !open.is_empty() {
                let best = open
                    .iter()
                    .flat_map(|t| t.iter())
                    .filter(usable)
                    .map(|i| {
                        let hits = open.iter().filter(|t| t.contains(i)).count();
                        (hits, -(self.single_size(i).unwrap_or(f64::MAX)), i)
                    })
                    .max_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(b.2.cmp(a.2)));
                let Some((_, _, item)) = best else {
                    fewest = None;
                    break;
                };
                let item = item.clone();
                open.retain(|t| !t.contains(&item));
                if let Some(f) = fewest.as_mut() {
                    f.insert(item);
                }
            }
            let mut covers: Vec<(f64, Dnf)> = Vec::new();
            for picks in [by_rank, fewest, smallest].into_iter().flatten() {
                let dnf: Dnf = picks.into_iter().map(|i| vec![i]).collect();
                if covers.iter().any(|(_, d)| *d == dnf) {
                    continue;
                }
                if let Some(est) = self.estimate(&dnf) {
                    covers.push((est, dnf));
                }
            }
            covers.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
            for (_, dnf) in covers.into_iter().take(2) {
                if let (Some(c), Some((size, true))) = (self.customers(&dnf), self.size(&dnf, true))
                    && size <= upper
                {
                    start = Some(self.scored(dnf, c, size, true));
                    break;
                }
            }
        }
        let start = match start {
            Some(s) => s,
            None => {
                let Some((_, item, c)) = singles.first().cloned() else {
                    self.note(
                        strategy,
                        AudienceNoteCode::NoLift,
                        format!(
                            "No single trait of at most {} people holds the customers above their share of the population; no reach audience.",
                            upper.round()
                        ),
                    );
                    return None;
                };
                let dnf = vec![vec![item]];
                let (size, exact) = self.size(&dnf, true)?;
                self.scored(dnf, c, size, exact)
            }
        };
        let tries = self
            .config
            .max_count_calls
            .saturating_sub(self.calls)
            .min(5);
        let max_terms = self.config.reach_traits.max(start.dnf.len());
        let candidates = singles.into_iter().map(|(_, i, _)| vec![i]).collect();
        let grown = self.grow(start, candidates, upper, max_terms, tries);
        if grown.size < lower {
            self.note(
                strategy,
                AudienceNoteCode::BelowBand,
                format!(
                    "The reach audience reaches {} people, fewer than the band's {}: no further trait adds customer-like people without passing it.",
                    grown.size.round(),
                    lower.round()
                ),
            );
        }
        Some(grown)
    }

    /// Notes each pair of neighbouring strategies whose audiences do not nest.
    fn note_nesting(&mut self, chosen: &HashMap<Strategy, Scored>, wanted: &BTreeSet<Strategy>) {
        let present: Vec<Strategy> = Strategy::ALL
            .iter()
            .copied()
            .filter(|s| chosen.contains_key(s))
            .collect();
        for pair in present.windows(2) {
            let (inner, outer) = (pair[0], pair[1]);
            if !wanted.contains(&inner) || !wanted.contains(&outer) {
                continue;
            }
            if !contains(&chosen[&outer].dnf, &chosen[&inner].dnf) {
                self.note(
                    outer,
                    AudienceNoteCode::NotNested,
                    format!(
                        "The {} audience does not contain the {} audience: no expression inside the band held it.",
                        outer.name(),
                        inner.name()
                    ),
                );
            }
        }
    }

    fn plan(&mut self, strategy: Strategy, s: &Scored) -> AudiencePlan {
        if !s.exact {
            self.note(
                strategy,
                AudienceNoteCode::SizeEstimated,
                "The exact count budget ran out: the size is an estimate.".to_owned(),
            );
        }
        let expected = Expected {
            size: s.size.round() as u64,
            size_exact: s.exact,
            population_share: s.size / self.p,
            customers: s.customers,
            customer_share: s.customers as f64 / self.n,
            index: s.index,
        };
        let expression = to_expr(&s.dnf);
        let expression = match &self.config.exclude {
            Some(exclude) => expression.and_not(exclude),
            None => expression,
        };
        AudiencePlan {
            strategy,
            expression,
            rationale: rationale(strategy, &s.dnf, &expected),
            expected: Some(expected),
        }
    }
}

/// Whether `term` adds nothing to `dnf` or makes a term of it redundant: it contains one of
/// its terms' traits (its people are already in) or its traits are inside one of its terms
/// (that term's people are all in it).
fn redundant(dnf: &Dnf, term: &Term) -> bool {
    dnf.iter().any(|t| subset(t, term) || subset(term, t))
}

/// Whether every trait of `a` is in `b` (the AND of `b` is contained in the AND of `a`).
fn subset(a: &Term, b: &Term) -> bool {
    a.iter().all(|i| b.contains(i))
}

/// Whether the OR `outer` contains the OR `inner`: each inner term has an outer term whose
/// traits it all has.
fn contains(outer: &Dnf, inner: &Dnf) -> bool {
    inner
        .iter()
        .all(|term| outer.iter().any(|o| subset(o, term)))
}

fn to_expr(dnf: &Dnf) -> Expr {
    let and = |term: &Term| match term.as_slice() {
        [only] => Expr::Item(only.clone()),
        _ => Expr::and_of(term.clone()),
    };
    match dnf.as_slice() {
        [only] => and(only),
        _ => Expr::Or(dnf.iter().map(and).collect()),
    }
}

fn rationale(strategy: Strategy, dnf: &Dnf, e: &Expected) -> String {
    let traits = |term: &Term| {
        term.iter()
            .map(|i| format!("{}={}", i.name, i.value))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let what = match strategy {
        Strategy::Precision => format!("Core ICP: everyone with all of {}", traits(&dnf[0])),
        Strategy::Standard => format!("Standard campaign: everyone with both {}", traits(&dnf[0])),
        Strategy::Hybrid => format!(
            "Tests {} customer profiles at once: everyone matching any of them",
            dnf.len()
        ),
        Strategy::Reach => format!("Discovery: everyone with any of {} traits", dnf.len()),
    };
    format!(
        "{what} — {:.1}% of your customers but {:.2}% of the population, {:.1}× as likely as anyone to be like them (about {} people).",
        100.0 * e.customer_share,
        100.0 * e.population_share,
        e.index,
        e.size
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(names: &[&str]) -> Term {
        names.iter().map(|n| Item::new(*n, "y")).collect()
    }

    #[test]
    fn a_term_inside_another_is_redundant_either_way() {
        let dnf = vec![t(&["a", "b"])];
        assert!(redundant(&dnf, &t(&["a", "b", "c"])));
        assert!(redundant(&dnf, &t(&["a"])));
        assert!(!redundant(&dnf, &t(&["a", "c"])));
    }

    #[test]
    fn containment_is_by_traits() {
        let reach = vec![t(&["a"]), t(&["d"])];
        let hybrid = vec![t(&["a", "b"]), t(&["c", "d"])];
        assert!(contains(&reach, &hybrid));
        assert!(!contains(&hybrid, &reach));
        assert!(contains(&vec![t(&["a", "b"])], &vec![t(&["a", "b", "c"])]));
    }
}
