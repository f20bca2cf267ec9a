//! The naive-Bayes lookalike model fitted to a job: the customers' exact trait counts from the
//! mined lattice against the population's cluster sizes in the [`Baseline`].
//!
//! Every value of each attribute the baseline lists is weighed ([`naive_bayes_weights`]:
//! smoothed log-lift among the persons and customers whose attribute is known). An attribute
//! with one listed value is a flag whose absence means "no" (as in the baseline): it is
//! weighed "has it" against "has it not" over all customers and all persons (the population
//! size, else the baseline's estimate of it), and the weight given to the value is the
//! difference of the two, so that a person without the flag, whose score gains nothing from
//! it, ranks exactly as the model says.

use std::collections::BTreeMap;

use crate::baseline::Baseline;
use crate::lookalike_model::{AttributeCounts, TraitWeight, naive_bayes_weights};
use crate::mine::Mined;

/// What stands for "has it not" in a flag's counts; never a value of the result.
const ABSENT: &str = "";

impl Mined {
    /// The lookalike weights of the customers against `baseline`, sorted by name then value;
    /// the same lattice and baseline always give the same weights.
    pub fn lookalike_weights(&self, baseline: &Baseline, smoothing: f64) -> Vec<TraitWeight> {
        let mut population: BTreeMap<&str, BTreeMap<String, u64>> = BTreeMap::new();
        for (item, &size) in &baseline.sizes {
            population
                .entry(item.name.as_str())
                .or_default()
                .insert(item.value.clone(), size);
        }
        let persons = baseline.population_size.unwrap_or_else(|| {
            population
                .values()
                .map(|values| values.values().sum::<u64>())
                .max()
                .unwrap_or(0)
        });
        let mut customers: BTreeMap<&str, (u64, BTreeMap<String, u64>)> = BTreeMap::new();
        for (a, name) in self.attr_names.iter().enumerate() {
            if population.contains_key(&**name) {
                customers.insert(name, (self.attr_known[a], BTreeMap::new()));
            }
        }
        for t in &self.traits {
            let name = &*self.attr_names[t.attr as usize];
            if let Some((_, values)) = customers.get_mut(name) {
                values.insert(t.value.to_string(), t.count);
            }
        }

        let mut weights = Vec::new();
        for (name, values) in population {
            let (known, counts) = customers.remove(name).unwrap_or_default();
            let mut one = BTreeMap::new();
            if let [(flag, &size)] = values.iter().collect::<Vec<_>>()[..] {
                let has = counts.get(flag).copied().unwrap_or(0);
                let flag = flag.clone();
                one.insert(
                    name.to_owned(),
                    AttributeCounts {
                        customers: BTreeMap::from([
                            (flag.clone(), has),
                            (ABSENT.to_owned(), self.customers.saturating_sub(has)),
                        ]),
                        customers_known: self.customers,
                        population: BTreeMap::from([
                            (flag.clone(), size),
                            (ABSENT.to_owned(), persons.saturating_sub(size)),
                        ]),
                    },
                );
                let w = naive_bayes_weights(&one, smoothing);
                let weight_of = |v: &str| w.iter().find(|t| t.value == v).map(|t| t.weight);
                if let (Some(yes), Some(no)) = (weight_of(&flag), weight_of(ABSENT)) {
                    weights.push(TraitWeight {
                        name: name.to_owned(),
                        value: flag,
                        weight: yes - no,
                    });
                }
            } else {
                one.insert(
                    name.to_owned(),
                    AttributeCounts {
                        customers: counts,
                        customers_known: known,
                        population: values,
                    },
                );
                weights.extend(naive_bayes_weights(&one, smoothing));
            }
        }
        weights
    }
}

#[cfg(test)]
mod tests {
    use crate::{AnalysisConfig, Analyzer, Baseline, Item};

    fn mined(profiles: &[&[(&str, &str)]]) -> crate::Mined {
        let mut a = Analyzer::new(AnalysisConfig::default());
        for p in profiles {
            a.add_profile(p.iter().copied());
        }
        a.mine().unwrap()
    }

    #[test]
    fn values_weigh_their_smoothed_log_lift_and_a_flag_against_its_absence() {
        // 4 customers: 3 high income, 1 low; 2 with the fitness flag.
        let m = mined(&[
            &[("income", "high"), ("fitness", "Yes")],
            &[("income", "high"), ("fitness", "Yes")],
            &[("income", "high")],
            &[("income", "low")],
        ]);
        let mut b = Baseline::new(100);
        b.insert(Item::new("income", "high"), 20);
        b.insert(Item::new("income", "low"), 60);
        b.insert(Item::new("fitness", "Yes"), 10);
        let w = m.lookalike_weights(&b, 1.0);
        let got: Vec<(&str, &str)> = w
            .iter()
            .map(|t| (t.name.as_str(), t.value.as_str()))
            .collect();
        assert_eq!(
            got,
            [("fitness", "Yes"), ("income", "high"), ("income", "low")]
        );
        // income among the known: customers 4 (3 high), persons 80 (20 high), two values.
        let high = (4.0f64 / 6.0).ln() - (21.0f64 / 82.0).ln();
        assert_eq!(w[1].weight, high);
        // fitness among all: customers 2 of 4, persons 10 of 100.
        let yes = (3.0f64 / 6.0).ln() - (11.0f64 / 102.0).ln();
        let no = (3.0f64 / 6.0).ln() - (91.0f64 / 102.0).ln();
        assert_eq!(w[0].weight, yes - no);
        assert!(w[0].weight > 0.0 && w[2].weight < 0.0);
        // Deterministic.
        assert_eq!(m.lookalike_weights(&b, 1.0), w);
    }

    #[test]
    fn without_a_population_size_a_flag_is_measured_against_the_largest_attribute() {
        let m = mined(&[
            &[("income", "high"), ("fitness", "Yes")],
            &[("income", "low")],
        ]);
        let mut b = Baseline::known_share();
        b.insert(Item::new("income", "high"), 30);
        b.insert(Item::new("income", "low"), 70);
        b.insert(Item::new("fitness", "Yes"), 50);
        let w = m.lookalike_weights(&b, 1.0);
        // 1 of 2 customers vs 50 of an estimated 100 persons: no lift at all.
        let fitness = w.iter().find(|t| t.name == "fitness").unwrap();
        assert!(fitness.weight.abs() < 1e-12, "{}", fitness.weight);
    }
}
