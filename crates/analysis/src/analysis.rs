//! The report: what the customers have in common.

use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};

use crate::mine::{Mined, SetRec};
use crate::{Item, bitset, rank};

/// One trait and how common it is among the customers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TopAttribute {
    pub name: String,
    pub value: String,
    /// Customers with this trait.
    pub count: u64,
    /// `count / customers`.
    pub frequency: f64,
    /// `frequency / (cluster size / population size)`: how many times more common the trait is
    /// among the customers than in the population. Absent until a population baseline that
    /// covers the trait is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<f64>,
}

impl TopAttribute {
    pub fn item(&self) -> Item {
        Item::new(&self.name, &self.value)
    }
}

/// Two traits that occur together, with how much more often than chance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Intersection {
    /// Exactly two traits, sorted by name then value.
    pub items: Vec<Item>,
    /// Customers with both traits.
    pub count: u64,
    /// `count / customers`.
    pub support: f64,
    /// `support / (frequency(a) · frequency(b))`; above 1 the traits meet more often than chance.
    pub lift: f64,
    /// `support · ln(lift)`, the ranking score (see the crate's ranking rule); once a
    /// baseline is applied, `support · ln(index)`.
    pub score: f64,
    /// `support / Π prevalence(i)`: how much more common the pair is among the customers than
    /// in a population where its traits were independent. Known once a baseline is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<f64>,
}

/// A multi-attribute cluster: 3 or more traits many customers share, a candidate ICP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Cluster {
    /// The traits, sorted by name then value; never two values of one attribute.
    pub items: Vec<Item>,
    /// Customers with every trait of the cluster.
    pub count: u64,
    /// `count / customers`.
    pub support: f64,
    /// `support / Π frequency(i)`; above 1 the traits meet more often than chance.
    pub lift: f64,
    /// `support · ln(lift)`, the ranking score; once a baseline is applied,
    /// `support · ln(index)` (see `Analysis::apply_baseline`).
    pub score: f64,
    /// `support / Π prevalence(i)`: how much more common the whole set is among the customers
    /// than in a population where its traits were independent. Known once a baseline is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<f64>,
}

/// An attribute with so many values that only its most frequent ones entered the pair and
/// cluster stages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CappedAttribute {
    pub name: String,
    pub distinct_values: u64,
    pub kept_values: u64,
}

/// How the analysis was made, and what it left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AnalysisNotes {
    /// The minimum support asked for.
    pub min_support: f64,
    /// The count a pair or cluster needed: `ceil(support · customers)`.
    pub min_count: u64,
    /// Set when the itemset budget forced a higher support than asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_min_support: Option<f64>,
    pub max_cluster_size: usize,
    /// Customers whose profile had no analysable trait (they still count in `customers`).
    pub customers_without_traits: u64,
    /// Distinct attributes analysed.
    pub attributes: u64,
    /// Distinct `attribute = value` traits seen.
    pub distinct_traits: u64,
    /// Traits at or above the minimum count that entered the pair and cluster stages.
    pub frequent_traits: u64,
    /// Pairs at or above the minimum count (all are candidates for `top_intersections`).
    pub frequent_pairs: u64,
    /// Sets of 3 or more traits at or above the minimum count, closed or not.
    pub frequent_itemsets: u64,
    /// Attribute names left out as contact/identity data or by configuration.
    pub excluded_attributes: Vec<String>,
    /// Further excluded attribute names not listed above.
    pub excluded_attributes_unlisted: u64,
    pub capped_attributes: Vec<CappedAttribute>,
    /// The population size of the applied baseline, if one was applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population_size: Option<u64>,
    /// Top attributes whose index is unknown because the applied baseline lacks their size.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub index_unknown: Vec<Item>,
    /// The notes above in plain sentences, for people.
    pub messages: Vec<String>,
}

/// What the customers have in common. Every float is finite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Analysis {
    /// Customers (profiles) analysed.
    pub customers: u64,
    /// Most frequent traits first; ties by name, then value.
    pub top_attributes: Vec<TopAttribute>,
    /// Pairs ranked by score (see the crate's ranking rule).
    pub top_intersections: Vec<Intersection>,
    /// Closed sets of 3+ traits ranked by score: no reported cluster has a superset (within
    /// `max_cluster_size`) with the same customers, and sets of the maximum size that share
    /// their customers with a larger closed set are reported once.
    pub multi_attribute_clusters: Vec<Cluster>,
    pub notes: AnalysisNotes,
}

impl Analysis {
    pub(crate) fn from_mined(m: &Mined) -> Self {
        let n = m.customers;
        let support = |count: u64| count as f64 / n as f64;

        let top_attributes = top_attributes(m)
            .into_iter()
            .map(|t| {
                let tc = &m.traits[t as usize];
                TopAttribute {
                    name: m.attr_names[tc.attr as usize].to_string(),
                    value: tc.value.to_string(),
                    count: tc.count,
                    frequency: support(tc.count),
                    index: None,
                }
            })
            .collect();

        // Lexicographic rank of each frequent trait, for deterministic tie-breaks.
        let mut by_name: Vec<u32> = (0..m.frequent.len() as u32).collect();
        by_name.sort_by_cached_key(|&p| m.item(p));
        let mut lex = vec![0u32; m.frequent.len()];
        for (rank, &p) in by_name.iter().enumerate() {
            lex[p as usize] = rank as u32;
        }
        let lex_key = |items: &[u32]| {
            let mut key: Vec<u32> = items.iter().map(|&p| lex[p as usize]).collect();
            key.sort_unstable();
            key
        };

        let mut pairs: Vec<(f64, u64, Vec<u32>, usize)> = m
            .pairs
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let count = u64::from(p.count);
                let lift = rank::lift(count, [m.count_of(p.a), m.count_of(p.b)], n);
                (
                    rank::score(support(count), lift),
                    count,
                    lex_key(&[p.a, p.b]),
                    i,
                )
            })
            .collect();
        pairs.sort_by(|x, y| rank::by_score((x.0, x.1, &x.2), (y.0, y.1, &y.2)));
        let top_intersections = pairs
            .iter()
            .take(m.config.top_intersections)
            .map(|&(score, count, _, i)| {
                let p = m.pairs[i];
                let mut items = vec![m.item(p.a), m.item(p.b)];
                items.sort();
                Intersection {
                    items,
                    count,
                    support: support(count),
                    lift: rank::lift(count, [m.count_of(p.a), m.count_of(p.b)], n),
                    score,
                    index: None,
                }
            })
            .collect();

        let multi_attribute_clusters = closed_clusters(m, &lex_key);

        let mut analysis = Analysis {
            customers: n,
            top_attributes,
            top_intersections,
            multi_attribute_clusters,
            notes: AnalysisNotes {
                min_support: m.config.min_support,
                min_count: m.min_count,
                effective_min_support: (m.min_count != m.requested_min_count)
                    .then(|| support(m.min_count)),
                max_cluster_size: m.config.max_cluster_size,
                customers_without_traits: m.customers_without_traits,
                attributes: m.attr_names.len() as u64,
                distinct_traits: m.traits.len() as u64,
                frequent_traits: m.frequent.len() as u64,
                frequent_pairs: m.pairs.len() as u64,
                frequent_itemsets: m.sets.len() as u64,
                excluded_attributes: m.excluded.clone(),
                excluded_attributes_unlisted: m.excluded_unlisted,
                capped_attributes: m.capped.clone(),
                population_size: None,
                index_unknown: Vec::new(),
                messages: Vec::new(),
            },
        };
        analysis.refresh_messages();
        analysis
    }

    /// Rewrites `notes.messages` from the structured notes.
    pub(crate) fn refresh_messages(&mut self) {
        let notes = &self.notes;
        let mut messages = Vec::new();
        if notes.customers_without_traits > 0 {
            messages.push(format!(
                "{} of {} customers had no analysable trait; they count in every frequency.",
                notes.customers_without_traits, self.customers
            ));
        }
        let excluded = notes.excluded_attributes.len() as u64 + notes.excluded_attributes_unlisted;
        if excluded > 0 {
            messages.push(format!(
                "{excluded} attributes were left out as contact or identity data or by configuration."
            ));
        }
        for c in &notes.capped_attributes {
            messages.push(format!(
                "Attribute {} has {} distinct values; only its {} most frequent entered pairs and clusters.",
                c.name, c.distinct_values, c.kept_values
            ));
        }
        if let Some(effective) = notes.effective_min_support {
            messages.push(format!(
                "The data held more than the itemset budget at support {}; support was raised to {effective} (count {}).",
                notes.min_support, notes.min_count
            ));
        }
        if self.multi_attribute_clusters.is_empty() {
            messages.push(format!(
                "No set of 3 or more traits is shared by at least {} customers.",
                notes.min_count
            ));
        }
        match notes.population_size {
            None => messages
                .push("Index not computed: no population baseline has been applied.".to_owned()),
            Some(_) if !notes.index_unknown.is_empty() => messages.push(format!(
                "Index unknown for {} top attributes the population baseline does not cover.",
                notes.index_unknown.len()
            )),
            Some(_) => {}
        }
        self.notes.messages = messages;
    }
}

/// The `top_attributes` most frequent traits, ties by name then value.
fn top_attributes(m: &Mined) -> Vec<u32> {
    let key = |t: &u32| {
        let tc = &m.traits[*t as usize];
        (
            std::cmp::Reverse(tc.count),
            &*m.attr_names[tc.attr as usize],
            &*tc.value,
        )
    };
    let mut all: Vec<u32> = (0..m.traits.len() as u32).collect();
    let k = m.config.top_attributes.min(all.len());
    if k == 0 {
        return Vec::new();
    }
    if k < all.len() {
        all.select_nth_unstable_by(k - 1, |a, b| key(a).cmp(&key(b)));
        all.truncate(k);
    }
    all.sort_by(|a, b| key(a).cmp(&key(b)));
    all
}

/// The best closed clusters by score.
///
/// Candidates are taken in score order from a partial selection that grows only when too few of
/// them survive, so a lattice of millions of sets is never fully sorted. A candidate `S`
/// survives when its closure — every frequent trait held by all of `S`'s customers — adds
/// nothing (then no superset has the same customers) or, for a set of the maximum size whose
/// closure is larger, when no other set with the same closure was taken already.
fn closed_clusters(m: &Mined, lex_key: &dyn Fn(&[u32]) -> Vec<u32>) -> Vec<Cluster> {
    let n = m.customers;
    let wanted = m.config.top_clusters;
    if wanted == 0 || m.sets.is_empty() {
        return Vec::new();
    }
    let measure = |s: &SetRec| {
        let count = u64::from(s.count);
        let lift = rank::lift(count, s.items().iter().map(|&p| m.count_of(p)), n);
        (count as f64 / n as f64, lift)
    };
    let mut candidates: Vec<(f64, u32)> = m
        .sets
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (support, lift) = measure(s);
            (rank::score(support, lift), i as u32)
        })
        .collect();
    let order = |x: &(f64, u32), y: &(f64, u32)| {
        let (a, b) = (&m.sets[x.1 as usize], &m.sets[y.1 as usize]);
        rank::by_score(
            (x.0, u64::from(a.count), lex_key(a.items())),
            (y.0, u64::from(b.count), lex_key(b.items())),
        )
    };

    let mut scratch = vec![0u64; m.words];
    let mut seen: FxHashSet<Vec<u32>> = FxHashSet::default();
    let mut clusters = Vec::new();
    let mut scanned = 0;
    let mut take = wanted.saturating_mul(64).max(1024);
    loop {
        let ready = take.min(candidates.len());
        if ready > scanned {
            // The first `scanned` candidates stay in place: they are the best `scanned` under a
            // total order, so a larger selection keeps them first.
            let rest = &mut candidates[scanned..];
            let k = ready - scanned;
            if k < rest.len() {
                rest.select_nth_unstable_by(k - 1, order);
            }
            rest[..k].sort_by(order);
        }
        for &(score, i) in &candidates[scanned..ready] {
            let set = &m.sets[i as usize];
            let items = set.items();
            scratch.copy_from_slice(m.row(items[0]));
            for &p in &items[1..] {
                bitset::and_assign(&mut scratch, m.row(p));
            }
            let count = u64::from(set.count);
            let closure: Vec<u32> = (0..m.frequent.len() as u32)
                .filter(|&q| {
                    items.contains(&q)
                        || (m.count_of(q) >= count && bitset::is_subset(&scratch, m.row(q)))
                })
                .collect();
            let at_max = items.len() == m.config.max_cluster_size;
            if closure.len() > items.len() && !at_max {
                continue;
            }
            if !seen.insert(closure) {
                continue;
            }
            let (support, lift) = measure(set);
            let mut cluster_items: Vec<Item> = items.iter().map(|&p| m.item(p)).collect();
            cluster_items.sort();
            clusters.push(Cluster {
                items: cluster_items,
                count,
                support,
                lift,
                score,
                index: None,
            });
            if clusters.len() == wanted {
                return clusters;
            }
        }
        scanned = ready;
        if ready == candidates.len() {
            return clusters;
        }
        take = take.saturating_mul(4);
    }
}
