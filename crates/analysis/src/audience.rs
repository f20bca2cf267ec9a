//! Audience expressions built from an analysis, for `find_persons`.
//!
//! [`crate::Mined::plan_audiences`] (`plan.rs`) is the planner jobs use: it chooses each
//! strategy's expression for its index against the population within a size band. The rules
//! below are the fallback for a report without the mined lattice or a population baseline:
//!
//! - `precision`: AND of the best cluster's traits (the core ICP). Without a cluster, the best
//!   pair; without a pair, the most frequent trait.
//! - `standard`: AND of the best pair.
//! - `reach`: OR of the most frequent single traits, skipping any whose known index says it is
//!   no more common among the customers than in the population.
//! - `hybrid`: OR of the ANDs of the best 2–3 clusters, topped up with the best pairs when there
//!   are fewer clusters; not offered when fewer than two groups exist (it would be `precision`).
//!
//! Each is optionally `AND NOT` an exclusion. Rendering is fully parenthesised, so the
//! expression means the same under any precedence rule.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::item::Item;
use crate::report::Analysis;

/// How an audience trades size for likeness.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// AND of 3+ traits: the core ICP, the smallest and most alike audience.
    Precision,
    /// OR of single traits: the widest audience, for discovery.
    Reach,
    /// OR of trait combinations (ANDs): several ICP hypotheses at once.
    Hybrid,
    /// AND of 2 traits: standard campaigns.
    Standard,
}

impl Strategy {
    /// Every strategy, from the smallest audience to the widest: the order they nest in.
    pub const ALL: [Strategy; 4] = [
        Strategy::Precision,
        Strategy::Standard,
        Strategy::Hybrid,
        Strategy::Reach,
    ];

    /// The strategy's name in paths, options and the store.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Precision => "precision",
            Strategy::Standard => "standard",
            Strategy::Hybrid => "hybrid",
            Strategy::Reach => "reach",
        }
    }
}

/// A boolean expression over traits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Expr {
    Item(Item),
    #[schema(no_recursion)]
    And(Vec<Expr>),
    #[schema(no_recursion)]
    Or(Vec<Expr>),
    /// `include AND NOT exclude` — the only form of negation `find_persons` accepts.
    #[schema(no_recursion)]
    AndNot {
        include: Box<Expr>,
        exclude: Box<Expr>,
    },
}

impl Expr {
    /// `self AND NOT exclude`; an `Or` of exclusions becomes one `AND NOT` term each
    /// (`(x AND NOT a) AND NOT b`), the form an upstream that negates single terms takes.
    pub fn and_not(self, exclude: &Expr) -> Expr {
        match exclude {
            Expr::Or(parts) => parts.iter().fold(self, |acc, part| acc.and_not(part)),
            other => Expr::AndNot {
                include: Box::new(self),
                exclude: Box::new(other.clone()),
            },
        }
    }

    /// The exclusion of every trait of `items`: `None` when there is none.
    pub fn any_of(items: &[Item]) -> Option<Expr> {
        match items {
            [] => None,
            [only] => Some(Expr::Item(only.clone())),
            many => Some(Expr::Or(many.iter().cloned().map(Expr::Item).collect())),
        }
    }

    /// Every trait the expression mentions, sorted and without repeats.
    pub fn items(&self) -> Vec<Item> {
        let mut found = BTreeSet::new();
        self.collect(&mut found);
        found.into_iter().cloned().collect()
    }

    fn collect<'a>(&'a self, found: &mut BTreeSet<&'a Item>) {
        match self {
            Expr::Item(item) => {
                found.insert(item);
            }
            Expr::And(parts) | Expr::Or(parts) => parts.iter().for_each(|p| p.collect(found)),
            Expr::AndNot { include, exclude } => {
                include.collect(found);
                exclude.collect(found);
            }
        }
    }

    /// Prints the expression with `AND`, `OR` and `AND NOT`, every compound part in parentheses,
    /// each trait printed by `term` (its cluster hash or id). `None` when `term` knows no cluster
    /// for some trait, or when an `And` / `Or` is empty.
    pub fn render(&self, term: &impl Fn(&Item) -> Option<String>) -> Option<String> {
        match self {
            Expr::Item(item) => term(item),
            Expr::And(parts) => Self::join(parts, " AND ", term),
            Expr::Or(parts) => Self::join(parts, " OR ", term),
            Expr::AndNot { include, exclude } => Some(format!(
                "({} AND NOT {})",
                include.render(term)?,
                exclude.render(term)?
            )),
        }
    }

    fn join(parts: &[Expr], op: &str, term: &impl Fn(&Item) -> Option<String>) -> Option<String> {
        match parts {
            [] => None,
            [only] => only.render(term),
            _ => {
                let rendered: Option<Vec<String>> = parts.iter().map(|p| p.render(term)).collect();
                Some(format!("({})", rendered?.join(op)))
            }
        }
    }

    pub(crate) fn and_of(items: Vec<Item>) -> Expr {
        Expr::And(items.into_iter().map(Expr::Item).collect())
    }
}

/// What audiences to build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct AudienceConfig {
    /// Which plans to build, in this order.
    pub strategies: Vec<Strategy>,
    /// How many single traits `reach` ORs together.
    pub reach_traits: usize,
    /// How many AND groups `hybrid` ORs together (2 or 3; other values are clamped).
    pub hybrid_groups: usize,
    /// `reach` skips a trait whose index is known and not above this (it does not set the
    /// customers apart from the population). `None` keeps every trait.
    pub reach_min_index: Option<f64>,
    /// Every plan becomes `(plan) AND NOT (exclude)`, e.g. to leave existing customers out.
    pub exclude: Option<Expr>,
    /// The size band of each strategy, as shares of the population.
    pub bands: AudienceBands,
    /// The smallest audience worth offering; `None`: 0.5 % of the population, at most 1,000.
    pub min_audience_size: Option<u64>,
    /// The most exact `find_persons` counts the planner may ask for.
    pub max_count_calls: usize,
    /// An OR term is added (to `hybrid` or `reach`) only if the people it adds hold the
    /// customers at least this many times their share of the population.
    pub min_marginal_index: f64,
}

/// Smallest and largest audience of a strategy, as shares of the population (0–1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Band {
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub min_share: f64,
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub max_share: f64,
}

impl Band {
    pub const fn new(min_share: f64, max_share: f64) -> Self {
        Self {
            min_share,
            max_share,
        }
    }
}

/// The size band of each strategy. The defaults are the reference's strategy table (audience
/// sizes for a national population of about 250 million adults) as shares: AND of 3+ 100K–1M
/// (0.04–0.4 %), AND of 2 500K–5M (0.2–2 %), hybrid 1M–10M (0.4–4 %), OR 5M+ (2 % up, capped
/// at 25 % so that reach is never most of the population).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct AudienceBands {
    pub precision: Band,
    pub standard: Band,
    pub hybrid: Band,
    pub reach: Band,
}

impl Default for AudienceBands {
    fn default() -> Self {
        Self {
            precision: Band::new(0.0004, 0.004),
            standard: Band::new(0.002, 0.02),
            hybrid: Band::new(0.004, 0.04),
            reach: Band::new(0.02, 0.25),
        }
    }
}

impl AudienceBands {
    /// Bands written as percentages of the population, `strategy=MIN-MAX` separated by commas
    /// (`precision=0.05-0.5,reach=2-20`); a strategy not named keeps its default band. Refuses,
    /// naming the entry, a strategy it does not know, a bound that is not a number, and a band
    /// that is not `0 <= MIN < MAX <= 100`.
    pub fn parse_percent(spec: &str) -> Result<Self, String> {
        let mut bands = Self::default();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, range) = entry
                .split_once('=')
                .ok_or_else(|| format!("`{entry}`: write strategy=MIN-MAX (percentages)"))?;
            let strategy = Strategy::ALL
                .into_iter()
                .find(|s| s.name() == name.trim())
                .ok_or_else(|| {
                    format!(
                        "`{entry}`: no strategy `{}`; use precision, standard, hybrid or reach",
                        name.trim()
                    )
                })?;
            let (min, max) = range
                .split_once('-')
                .ok_or_else(|| format!("`{entry}`: write the band as MIN-MAX (percentages)"))?;
            let percent = |bound: &str| {
                bound
                    .trim()
                    .trim_end_matches('%')
                    .parse::<f64>()
                    .map_err(|_| format!("`{entry}`: `{}` is not a number", bound.trim()))
            };
            let (min, max) = (percent(min)?, percent(max)?);
            if !(0.0 <= min && min < max && max <= 100.0) {
                return Err(format!("`{entry}`: a band needs 0 <= MIN < MAX <= 100"));
            }
            let band = Band::new(min / 100.0, max / 100.0);
            match strategy {
                Strategy::Precision => bands.precision = band,
                Strategy::Standard => bands.standard = band,
                Strategy::Hybrid => bands.hybrid = band,
                Strategy::Reach => bands.reach = band,
            }
        }
        Ok(bands)
    }

    pub fn of(&self, strategy: Strategy) -> Band {
        match strategy {
            Strategy::Precision => self.precision,
            Strategy::Standard => self.standard,
            Strategy::Hybrid => self.hybrid,
            Strategy::Reach => self.reach,
        }
    }
}

impl Default for AudienceConfig {
    fn default() -> Self {
        Self {
            strategies: Strategy::ALL.to_vec(),
            reach_traits: 3,
            hybrid_groups: 3,
            reach_min_index: Some(1.0),
            exclude: None,
            bands: AudienceBands::default(),
            min_audience_size: None,
            max_count_calls: 24,
            min_marginal_index: 1.5,
        }
    }
}

/// One audience: a strategy and its expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AudiencePlan {
    pub strategy: Strategy,
    pub expression: Expr,
    /// How the expression was chosen, in a sentence.
    pub rationale: String,
    /// What the audience is expected to hold, before it is fetched (the planner's figures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<Expected>,
}

/// What an audience is expected to hold, from the customers' exact counts and the
/// population's size of the expression.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Expected {
    /// People in the population matching the expression (customers included).
    pub size: u64,
    /// Whether `size` is a provider count (else estimated from the traits' sizes as if
    /// independent).
    pub size_exact: bool,
    /// `size / population size`.
    pub population_share: f64,
    /// Customers matching the expression (exact).
    pub customers: u64,
    /// `customers / all customers`: the share of customer-like people the audience is expected
    /// to reach (recall).
    pub customer_share: f64,
    /// `customer_share / population_share`: how many times more likely a person of the
    /// audience is customer-like than a person picked at random — the expected precision
    /// against the base rate.
    pub index: f64,
}

impl AudiencePlan {
    /// Every trait the plan needs mapped to a cluster.
    pub fn items(&self) -> Vec<Item> {
        self.expression.items()
    }

    /// The `find_persons` expression, with each trait printed by `term`; see [`Expr::render`].
    pub fn render(&self, term: impl Fn(&Item) -> Option<String>) -> Option<String> {
        self.expression.render(&term)
    }
}

impl Analysis {
    /// Every trait the map stage should look up with `list_clusters`: each top attribute (so
    /// [`Analysis::apply_baseline`] can fill its index) and each trait any of `plans` uses.
    /// Sorted, without repeats.
    pub fn items_to_map(&self, plans: &[AudiencePlan]) -> Vec<Item> {
        let mut items: BTreeSet<Item> = self.top_attributes.iter().map(|a| a.item()).collect();
        for plan in plans {
            items.extend(plan.items());
        }
        items.into_iter().collect()
    }

    /// The audience plans the analysis supports, in the order of `config.strategies`. A strategy
    /// the analysis cannot support (no traits at all) is left out.
    pub fn audiences(&self, config: &AudienceConfig) -> Vec<AudiencePlan> {
        let mut seen = BTreeSet::new();
        config
            .strategies
            .iter()
            .filter(|s| seen.insert(**s))
            .filter_map(|&strategy| {
                let (expression, rationale) = match strategy {
                    Strategy::Precision => self.precision()?,
                    Strategy::Standard => self.standard()?,
                    Strategy::Reach => self.reach(config)?,
                    Strategy::Hybrid => self.hybrid(config)?,
                };
                let expression = match &config.exclude {
                    Some(exclude) => expression.and_not(exclude),
                    None => expression,
                };
                Some(AudiencePlan {
                    strategy,
                    expression,
                    rationale,
                    expected: None,
                })
            })
            .collect()
    }

    fn precision(&self) -> Option<(Expr, String)> {
        if let Some(c) = self.multi_attribute_clusters.first() {
            return Some((
                Expr::and_of(c.items.clone()),
                format!(
                    "All {} traits of the best cluster ({} customers, support {:.4}, lift {:.3}).",
                    c.items.len(),
                    c.count,
                    c.support,
                    c.lift
                ),
            ));
        }
        if let Some(p) = self.top_intersections.first() {
            return Some((
                Expr::and_of(p.items.clone()),
                format!(
                    "No cluster of 3+ traits reached the minimum support; both traits of the best pair ({} customers, lift {:.3}).",
                    p.count, p.lift
                ),
            ));
        }
        let a = self.top_attributes.first()?;
        Some((
            Expr::Item(a.item()),
            format!(
                "No pair reached the minimum support; the most frequent trait ({} customers).",
                a.count
            ),
        ))
    }

    fn standard(&self) -> Option<(Expr, String)> {
        let p = self.top_intersections.first()?;
        Some((
            Expr::and_of(p.items.clone()),
            format!(
                "Both traits of the best pair ({} customers, lift {:.3}).",
                p.count, p.lift
            ),
        ))
    }

    fn reach(&self, config: &AudienceConfig) -> Option<(Expr, String)> {
        let mut skipped = 0;
        let chosen: Vec<Expr> = self
            .top_attributes
            .iter()
            .filter(|a| match (a.index, config.reach_min_index) {
                (Some(index), Some(min)) if index <= min => {
                    skipped += 1;
                    false
                }
                _ => true,
            })
            .take(config.reach_traits.max(1))
            .map(|a| Expr::Item(a.item()))
            .collect();
        if chosen.is_empty() {
            return None;
        }
        let mut rationale = format!("Any of the {} most frequent traits", chosen.len());
        if skipped > 0 {
            rationale.push_str(&format!(
                ", passing over {skipped} no more common among the customers than in the population"
            ));
        }
        rationale.push('.');
        Some((Expr::Or(chosen), rationale))
    }

    fn hybrid(&self, config: &AudienceConfig) -> Option<(Expr, String)> {
        let wanted = config.hybrid_groups.clamp(2, 3);
        let mut groups: Vec<Vec<Item>> = self
            .multi_attribute_clusters
            .iter()
            .take(wanted)
            .map(|c| c.items.clone())
            .collect();
        let clusters = groups.len();
        for pair in &self.top_intersections {
            if groups.len() == wanted {
                break;
            }
            // A pair inside a chosen cluster adds nothing the cluster's AND does not cover.
            let covered = groups
                .iter()
                .any(|g| pair.items.iter().all(|i| g.contains(i)));
            if !covered {
                groups.push(pair.items.clone());
            }
        }
        if groups.len() < 2 {
            return None;
        }
        let rationale = format!(
            "Any of {} trait combinations: {} best clusters and {} best pairs.",
            groups.len(),
            clusters,
            groups.len() - clusters
        );
        Some((
            Expr::Or(groups.into_iter().map(Expr::and_of).collect()),
            rationale,
        ))
    }
}

#[cfg(test)]
mod band_tests {
    use super::*;

    #[test]
    fn bands_are_read_as_percentages_and_the_rest_keep_their_defaults() {
        let bands = AudienceBands::parse_percent(" precision=0.05-0.5, reach=2%-20% ").unwrap();
        assert_eq!(bands.precision, Band::new(0.0005, 0.005));
        assert_eq!(bands.reach, Band::new(0.02, 0.2));
        assert_eq!(bands.standard, AudienceBands::default().standard);
        assert_eq!(
            AudienceBands::parse_percent("").unwrap(),
            AudienceBands::default()
        );
    }

    #[test]
    fn a_wrong_band_is_refused_by_its_entry() {
        for bad in [
            "wide=1-2",
            "reach",
            "reach=5",
            "reach=x-2",
            "reach=5-2",
            "reach=1-101",
            "reach=-1-2",
        ] {
            let e = AudienceBands::parse_percent(bad).unwrap_err();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: &str) -> Expr {
        Expr::Item(Item::new(n, "Yes"))
    }

    fn hash(i: &Item) -> Option<String> {
        (i.name != "unmapped").then(|| format!("h{}", i.name))
    }

    #[test]
    fn renders_fully_parenthesised() {
        let e = Expr::AndNot {
            include: Box::new(Expr::Or(vec![
                Expr::And(vec![item("a"), item("b")]),
                Expr::And(vec![item("a"), item("c"), item("d")]),
            ])),
            exclude: Box::new(item("x")),
        };
        assert_eq!(
            e.render(&hash).as_deref(),
            Some("(((ha AND hb) OR (ha AND hc AND hd)) AND NOT hx)")
        );
        assert_eq!(item("a").render(&hash).as_deref(), Some("ha"));
        assert_eq!(
            Expr::And(vec![item("a")]).render(&hash).as_deref(),
            Some("ha")
        );
    }

    #[test]
    fn render_is_none_when_a_trait_has_no_cluster_or_a_group_is_empty() {
        assert_eq!(
            Expr::Or(vec![item("a"), item("unmapped")]).render(&hash),
            None
        );
        assert_eq!(Expr::And(vec![]).render(&hash), None);
    }

    #[test]
    fn items_are_deduplicated_and_sorted() {
        let e = Expr::Or(vec![Expr::And(vec![item("b"), item("a")]), item("a")]);
        assert_eq!(
            e.items(),
            vec![Item::new("a", "Yes"), Item::new("b", "Yes")]
        );
    }

    #[test]
    fn expression_serialises_and_has_a_schema() {
        let e = Expr::AndNot {
            include: Box::new(Expr::And(vec![item("a"), item("b")])),
            exclude: Box::new(item("x")),
        };
        let json = serde_json::to_string(&e).expect("serialises");
        assert_eq!(serde_json::from_str::<Expr>(&json).expect("parses"), e);
        let mut schemas = Vec::new();
        <AudiencePlan as utoipa::ToSchema>::schemas(&mut schemas);
        assert!(schemas.iter().any(|(name, _)| name == "Expr"));
        assert_eq!(
            serde_json::to_string(&Strategy::Hybrid).unwrap(),
            "\"hybrid\""
        );
    }
}
