//! A model of "how much like the customers" a person is: naive-Bayes log-lift weights, one per
//! `attribute = value`, that a provider sums over a person's traits to rank its population.
//!
//! For attribute `a` with value `v`, among the customers whose `a` is known (`N_a`) and the
//! persons of the population whose `a` is known (`P_a`), with `c_v` and `s_v` those having `v`
//! and `K_a` the values `a` takes:
//!
//! `w(a, v) = ln((c_v + α) / (N_a + α·K_a)) − ln((s_v + α) / (P_a + α·K_a))`
//!
//! the log of how much more common `v` is among the customers than in the population, with
//! add-α (Laplace) smoothing so that a value no customer has weighs a finite negative amount
//! and a value seen in one customer does not dominate. Summed over a person's attributes it is
//! the naive-Bayes log-likelihood ratio "customer-like vs anyone", up to a constant; an
//! unknown attribute contributes nothing. Deterministic: weights come out sorted by trait.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::item::Item;

/// The smoothing added to every count.
pub const DEFAULT_SMOOTHING: f64 = 1.0;

/// One attribute's counts on both sides.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AttributeCounts {
    /// Customers having each value (values no customer has may be left out).
    pub customers: BTreeMap<String, u64>,
    /// Customers whose attribute is known.
    pub customers_known: u64,
    /// Persons of the population having each value: every value the attribute takes.
    pub population: BTreeMap<String, u64>,
}

/// A trait and its weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TraitWeight {
    pub name: String,
    pub value: String,
    pub weight: f64,
}

impl TraitWeight {
    pub fn item(&self) -> Item {
        Item::new(&self.name, &self.value)
    }
}

/// The weights of every value of every attribute in `counts`, sorted by name then value.
/// Attributes no customer has a value of, or the population none, carry no information and get
/// no weights.
pub fn naive_bayes_weights(
    counts: &BTreeMap<String, AttributeCounts>,
    smoothing: f64,
) -> Vec<TraitWeight> {
    let mut weights = Vec::new();
    for (name, a) in counts {
        let population_known: u64 = a.population.values().sum();
        if a.customers_known == 0 || population_known == 0 {
            continue;
        }
        // Values customers have that the population lacks still count as values of `a`.
        let extra = a
            .customers
            .keys()
            .filter(|v| !a.population.contains_key(*v))
            .count();
        let k = (a.population.len() + extra) as f64;
        let customers_total = a.customers_known as f64 + smoothing * k;
        let population_total = population_known as f64 + smoothing * k;
        let values = a
            .population
            .keys()
            .chain(a.customers.keys())
            .collect::<std::collections::BTreeSet<_>>();
        for value in values {
            let c = a.customers.get(value).copied().unwrap_or(0) as f64;
            let s = a.population.get(value).copied().unwrap_or(0) as f64;
            let weight = ((c + smoothing) / customers_total).ln()
                - ((s + smoothing) / population_total).ln();
            weights.push(TraitWeight {
                name: name.clone(),
                value: value.clone(),
                weight,
            });
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(
        customers: &[(&str, u64)],
        known: u64,
        population: &[(&str, u64)],
    ) -> AttributeCounts {
        AttributeCounts {
            customers: customers.iter().map(|(v, n)| (v.to_string(), *n)).collect(),
            customers_known: known,
            population: population
                .iter()
                .map(|(v, n)| (v.to_string(), *n))
                .collect(),
        }
    }

    #[test]
    fn weights_are_smoothed_log_lifts() {
        let mut all = BTreeMap::new();
        // 100 customers know `income`: 60 high, 40 low; the population 1000: 200 high, 800 low.
        all.insert(
            "income".to_owned(),
            counts(
                &[("high", 60), ("low", 40)],
                100,
                &[("high", 200), ("low", 800)],
            ),
        );
        let w = naive_bayes_weights(&all, 1.0);
        assert_eq!(w.len(), 2);
        let high = (61.0f64 / 102.0).ln() - (201.0f64 / 1002.0).ln();
        let low = (41.0f64 / 102.0).ln() - (801.0f64 / 1002.0).ln();
        assert_eq!((w[0].value.as_str(), w[0].weight), ("high", high));
        assert_eq!((w[1].value.as_str(), w[1].weight), ("low", low));
        assert!(high > 0.0 && low < 0.0);
    }

    #[test]
    fn a_value_no_customer_has_weighs_finitely_negative_and_uninformative_attributes_none() {
        let mut all = BTreeMap::new();
        all.insert(
            "pet".to_owned(),
            counts(&[("cat", 10)], 10, &[("cat", 50), ("dog", 50)]),
        );
        all.insert("empty".to_owned(), counts(&[], 0, &[("x", 5)]));
        all.insert("unlisted".to_owned(), counts(&[("y", 3)], 3, &[]));
        let w = naive_bayes_weights(&all, 1.0);
        let names: Vec<(&str, &str)> = w
            .iter()
            .map(|t| (t.name.as_str(), t.value.as_str()))
            .collect();
        assert_eq!(names, [("pet", "cat"), ("pet", "dog")]);
        assert!(w[1].weight.is_finite() && w[1].weight < 0.0);
        assert!(w[0].weight > 0.0);
    }

    #[test]
    fn a_value_only_customers_have_is_still_weighed() {
        let mut all = BTreeMap::new();
        all.insert(
            "x".to_owned(),
            counts(&[("a", 5), ("new", 5)], 10, &[("a", 100)]),
        );
        let w = naive_bayes_weights(&all, 1.0);
        assert_eq!(w.len(), 2);
        assert!(w.iter().all(|t| t.weight.is_finite()));
    }
}
