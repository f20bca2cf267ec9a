//! Why an audience came out empty or tiny: its terms counted one by one, ANDed left to right
//! and ORed, with `find_persons` counts (no export), at most `MAX_TERMS` terms an audience.

use std::collections::HashMap;

use icp_analysis::{Expr, Item};
use icp_contract::FindPersonsRequest;
use icp_store::Stage;

use super::checkpoint::{Mapped, Run};
use super::error::{StageError, provider};
use crate::model::AudienceResult;
use crate::warning::{AudienceDiagnosis, TermSize, Warning, WarningCode};

/// An audience smaller than this many persons is tiny…
pub const TINY_AUDIENCE: u64 = 100;
/// …or smaller than this share of the population, whichever is larger.
pub const TINY_SHARE: f64 = 0.0001;
/// The most terms of one audience counted: at most `2 × MAX_TERMS + 1` counts an audience.
pub const MAX_TERMS: usize = 8;

/// The size below which an audience is tiny: 100 persons, or 0.01 % of the population when
/// that is more.
pub fn tiny_threshold(population: Option<u64>) -> u64 {
    let share = population.map_or(0, |p| (p as f64 * TINY_SHARE).ceil() as u64);
    TINY_AUDIENCE.max(share)
}

/// Whether an audience is worth a diagnosis: empty, or tiny and smaller than half what the
/// planner expected of it (a tiny audience planned as such, e.g. a precision audience of a
/// small population, is what its rationale says, not a surprise).
pub fn needs_diagnosis(audience: &AudienceResult, threshold: u64) -> bool {
    audience.total == 0
        || audience.total < threshold
            && audience
                .expected
                .is_none_or(|e| audience.total.saturating_mul(2) < e.size)
}

/// An expression's terms: its top-level conjuncts (an `AND NOT`'s included side), or its
/// disjuncts when it is one OR; and whether it is an OR.
pub fn terms_of(expression: &Expr) -> (Vec<Expr>, bool) {
    match expression {
        Expr::And(parts) => (parts.clone(), false),
        Expr::AndNot { include, .. } => {
            let (terms, or) = terms_of(include);
            if or {
                (vec![(**include).clone()], false)
            } else {
                (terms, false)
            }
        }
        Expr::Or(parts) => (parts.clone(), true),
        item => (vec![item.clone()], false),
    }
}

/// The counts behind a diagnosis.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub total: u64,
    pub threshold: u64,
    /// Each term's description and size.
    pub terms: Vec<(String, u64)>,
    /// The first 2, 3, … terms ANDed (empty for an OR).
    pub partial_and: Vec<u64>,
    pub or_total: u64,
    pub without_location: Option<u64>,
    pub terms_not_measured: u64,
    pub is_or: bool,
}

/// The diagnosis and its warning for an audience measured as `m`.
pub fn explain(audience: &str, m: Measured) -> Warning {
    let empty = m.total == 0;
    let below = |n: u64| if empty { n == 0 } else { n < m.threshold };
    let all_terms_below = m.terms.iter().all(|(_, n)| below(*n));
    let emptied_by = if m.without_location.is_some_and(|n| !below(n)) && all_terms_below {
        Some("location".to_owned())
    } else if m.is_or {
        None
    } else {
        // The first term, or the first partial AND, that is empty (tiny).
        let sizes = m
            .terms
            .first()
            .map(|(_, n)| *n)
            .into_iter()
            .chain(m.partial_and.iter().copied());
        sizes
            .enumerate()
            .find(|(_, n)| below(*n))
            .map(|(i, _)| m.terms[i].0.clone())
    };
    let listed: Vec<String> = m.terms.iter().map(|(t, n)| format!("{t} {n}")).collect();
    let mut message = if empty {
        format!("the {audience} audience is empty")
    } else {
        format!(
            "the {audience} audience holds {} persons, fewer than {}",
            m.total, m.threshold
        )
    };
    message.push_str(&format!("; its terms hold {}", listed.join(", ")));
    if !m.partial_and.is_empty() {
        let partial: Vec<String> = m.partial_and.iter().map(u64::to_string).collect();
        message.push_str(&format!(
            "; ANDed left to right {} then {}",
            m.terms.first().map_or(0, |(_, n)| *n),
            partial.join(", ")
        ));
    }
    match (&emptied_by, m.without_location) {
        (Some(l), Some(n)) if l == "location" => message.push_str(&format!(
            "; without the job's location it holds {n}: widen the location"
        )),
        (Some(term), _) => message.push_str(&format!(
            "; {term} is where it {}: loosen or drop it, or OR the terms ({} persons)",
            if empty { "emptied" } else { "fell below" },
            m.or_total
        )),
        (None, _) if m.is_or => message.push_str(&format!(
            "; ORed they hold {}: the traits themselves are rare",
            m.or_total
        )),
        (None, _) => message.push_str(&format!(
            "; every partial AND is larger (ORed they hold {}): what the audience leaves out, \
             or its location, makes it small",
            m.or_total
        )),
    }
    let code = if empty {
        WarningCode::AudienceEmpty
    } else {
        WarningCode::AudienceTiny
    };
    let mut w = Warning::new(code, message);
    w.count = Some(m.total);
    w.audience = Some(AudienceDiagnosis {
        audience: audience.to_owned(),
        total: m.total,
        threshold: m.threshold,
        terms: m
            .terms
            .into_iter()
            .map(|(term, size)| TermSize { term, size })
            .collect(),
        partial_and: m.partial_and,
        emptied_by,
        or_total: m.or_total,
        without_location: m.without_location,
        terms_not_measured: m.terms_not_measured,
    });
    w
}

impl Run<'_> {
    /// A warning for each audience that is empty or tiny, saying which term made it so.
    pub(super) async fn diagnose_audiences(
        &self,
        mapped: &Mapped,
        audiences: &[AudienceResult],
    ) -> Result<Vec<Warning>, StageError> {
        let threshold = tiny_threshold(mapped.analysis.notes.population_size);
        let plans = match &mapped.planning {
            Some(planning) => planning.plans.clone(),
            None => mapped.analysis.audiences(&self.options.audience_config()),
        };
        let hashes: HashMap<(&str, &str), &str> = mapped
            .clusters
            .iter()
            .map(|c| ((c.name.as_str(), c.value.as_str()), c.cluster_hash.as_str()))
            .collect();
        let hash_of = |i: &Item| {
            hashes
                .get(&(i.name.as_str(), i.value.as_str()))
                .map(|h| (*h).to_owned())
        };
        let mut warnings = Vec::new();
        for audience in audiences.iter().filter(|a| needs_diagnosis(a, threshold)) {
            let Some(plan) = plans.iter().find(|p| p.strategy == audience.strategy) else {
                continue;
            };
            let (mut terms, is_or) = terms_of(&plan.expression);
            let terms_not_measured = terms.len().saturating_sub(MAX_TERMS) as u64;
            terms.truncate(MAX_TERMS);
            let mut sizes = Vec::with_capacity(terms.len());
            for term in &terms {
                let text = term.render(&hash_of);
                sizes.push(self.count(text, true).await?);
            }
            let mut partial_and = Vec::new();
            if !is_or {
                for k in 2..=terms.len() {
                    // Once empty, every longer AND is too.
                    let size = if partial_and.last() == Some(&0) || sizes[0] == 0 && k == 2 {
                        0
                    } else {
                        let text = Expr::And(terms[..k].to_vec()).render(&hash_of);
                        self.count(text, true).await?
                    };
                    partial_and.push(size);
                }
            }
            let or_total = if is_or {
                audience.total
            } else {
                self.count(Expr::Or(terms.clone()).render(&hash_of), true)
                    .await?
            };
            let without_location = match self.options.location {
                Some(_) => Some(self.count(Some(audience.expression.clone()), false).await?),
                None => None,
            };
            let described = terms
                .iter()
                .map(|t| {
                    t.render(&|i: &Item| Some(format!("{}={}", i.name, i.value)))
                        .unwrap_or_default()
                })
                .zip(sizes)
                .collect();
            let measured = Measured {
                total: audience.total,
                threshold,
                terms: described,
                partial_and,
                or_total,
                without_location,
                terms_not_measured,
                is_or,
            };
            warnings.push(explain(audience.strategy.name(), measured));
        }
        Ok(warnings)
    }

    /// Persons `find_persons` counts for an expression (0 when a trait has no cluster), within
    /// the job's location when `located`.
    async fn count(&self, expression: Option<String>, located: bool) -> Result<u64, StageError> {
        let Some(expression) = expression else {
            return Ok(0);
        };
        let answer = self
            .ctx
            .provider
            .find_persons(FindPersonsRequest {
                expression,
                identifier_type: Some(self.options.identifier_type),
                location: if located { self.options.location } else { None },
                audience_limit: None,
                format: None,
                workflow_id: self.workflow_id.clone(),
            })
            .await
            .map_err(provider("find"))?;
        self.trace(Stage::Find, "find_persons", answer.tool_trace_id.as_ref())
            .await?;
        Ok(answer.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(name: &str, value: &str) -> Expr {
        Expr::Item(Item {
            name: name.to_owned(),
            value: value.to_owned(),
        })
    }

    fn measured(terms: &[(&str, u64)], partial_and: &[u64], total: u64) -> Measured {
        Measured {
            total,
            threshold: 100,
            terms: terms.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect(),
            partial_and: partial_and.to_vec(),
            or_total: 9_000,
            without_location: None,
            terms_not_measured: 0,
            is_or: false,
        }
    }

    #[test]
    fn tiny_is_100_or_a_ten_thousandth_of_the_population() {
        assert_eq!(tiny_threshold(None), 100);
        assert_eq!(tiny_threshold(Some(60_000)), 100);
        assert_eq!(tiny_threshold(Some(250_000_000)), 25_000);
    }

    #[test]
    fn the_term_that_empties_the_and_is_named() {
        let m = measured(&[("a=1", 5000), ("b=2", 3000), ("c=3", 800)], &[900, 0], 0);
        let w = explain("precision", m);
        assert_eq!(w.code, WarningCode::AudienceEmpty);
        let d = w.audience.unwrap();
        assert_eq!(d.emptied_by.as_deref(), Some("c=3"));
        assert_eq!(d.partial_and, [900, 0]);
        assert!(
            w.message.contains("c=3 is where it emptied"),
            "{}",
            w.message
        );
        assert!(w.message.contains("9000"), "{}", w.message);
    }

    #[test]
    fn an_empty_term_is_named_first_and_a_tiny_audience_where_it_fell_below() {
        let m = measured(&[("a=1", 0), ("b=2", 3000)], &[0], 0);
        assert_eq!(
            explain("standard", m)
                .audience
                .unwrap()
                .emptied_by
                .as_deref(),
            Some("a=1")
        );
        let m = measured(&[("a=1", 5000), ("b=2", 3000)], &[40], 40);
        let w = explain("standard", m);
        assert_eq!(w.code, WarningCode::AudienceTiny);
        assert_eq!(w.audience.unwrap().emptied_by.as_deref(), Some("b=2"));
    }

    #[test]
    fn a_location_that_holds_nobody_is_named() {
        let mut m = measured(&[("a=1", 0), ("b=2", 0)], &[0], 0);
        m.without_location = Some(1200);
        let w = explain("reach", m);
        assert_eq!(w.audience.unwrap().emptied_by.as_deref(), Some("location"));
        assert!(w.message.contains("widen the location"), "{}", w.message);
    }

    #[test]
    fn terms_are_conjuncts_or_disjuncts() {
        let and = Expr::And(vec![item("a", "1"), item("b", "2")]);
        assert_eq!(
            terms_of(&and),
            (vec![item("a", "1"), item("b", "2")], false)
        );
        let or = Expr::Or(vec![item("a", "1"), item("b", "2")]);
        assert!(terms_of(&or).1);
        let and_not = Expr::AndNot {
            include: Box::new(and.clone()),
            exclude: Box::new(item("c", "3")),
        };
        assert_eq!(terms_of(&and_not).0.len(), 2);
        assert_eq!(terms_of(&item("a", "1")), (vec![item("a", "1")], false));
    }
}
