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
use crate::lookalike_logistic::fit_logistic;
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

impl Mined {
    /// The logistic lookalike weights (`lookalike_logistic`): the customers against `sample`,
    /// persons drawn from the population, each as the positions in `traits` of the traits it
    /// holds (`sample_traits` of the contract), over the traits `traits` names (the
    /// naive-Bayes weights': every listed value of every attribute the baseline covers, a flag
    /// by its one value), each trait's weight its coefficient. A person's score then ranks as
    /// the model's log-odds (the intercept, the same for everyone, is left out). The same
    /// customers and sample give the same weights to the bit, in whatever order they came.
    pub fn logistic_weights(
        &self,
        traits: &[TraitWeight],
        sample: &[Vec<u32>],
        penalty: f64,
        max_rows: usize,
    ) -> Vec<TraitWeight> {
        let customers = self.customer_rows(traits);
        logistic_weights(traits, &customers, sample, penalty, max_rows)
    }

    /// Each customer as the positions in `traits` of the traits they hold: the rows
    /// [`logistic_weights`] fits, which can then run without the lattice.
    pub fn customer_rows(&self, traits: &[TraitWeight]) -> Vec<Vec<u32>> {
        let feature: std::collections::HashMap<(&str, &str), u32> = traits
            .iter()
            .enumerate()
            .map(|(j, t)| ((t.name.as_str(), t.value.as_str()), j as u32))
            .collect();
        // Each of the lattice's traits as a feature number, where it is one.
        let of_trait: Vec<Option<u32>> = self
            .traits
            .iter()
            .map(|t| {
                let name = &*self.attr_names[t.attr as usize];
                feature.get(&(name, &*t.value)).copied()
            })
            .collect();
        self.customer_offsets
            .windows(2)
            .map(|w| {
                self.customer_traits[w[0]..w[1]]
                    .iter()
                    .filter_map(|&t| of_trait[t as usize])
                    .collect()
            })
            .collect()
    }
}

/// The logistic lookalike weights of [`Mined::logistic_weights`], from the customers' rows
/// ([`Mined::customer_rows`]) and the sample's.
pub fn logistic_weights(
    traits: &[TraitWeight],
    customers: &[Vec<u32>],
    sample: &[Vec<u32>],
    penalty: f64,
    max_rows: usize,
) -> Vec<TraitWeight> {
    let fit = fit_logistic(traits.len(), customers, sample, penalty, max_rows);
    traits
        .iter()
        .zip(fit.coefficients)
        .map(|(t, weight)| TraitWeight {
            name: t.name.clone(),
            value: t.value.clone(),
            weight,
        })
        .collect()
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

    #[test]
    fn logistic_weights_favour_the_customers_traits_whatever_the_order() {
        let customers: Vec<Vec<(&str, &str)>> = (0..60)
            .map(|i| {
                let income = if i % 4 == 0 { "low" } else { "high" };
                let pet = if i % 3 == 0 { "cat" } else { "dog" };
                vec![("income", income), ("pet", pet), ("email", "x@example.com")]
            })
            .collect();
        let sample: Vec<std::collections::BTreeMap<String, String>> = (0..300)
            .map(|i| {
                let income = if i % 4 == 0 { "high" } else { "low" };
                let pet = if i % 2 == 0 { "cat" } else { "dog" };
                [("income", income), ("pet", pet)]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect()
            })
            .collect();
        let mut b = Baseline::new(1000);
        for (n, v, size) in [
            ("income", "high", 250),
            ("income", "low", 750),
            ("pet", "cat", 500),
            ("pet", "dog", 500),
        ] {
            b.insert(Item::new(n, v), size);
        }
        let as_slices = |c: &[Vec<(&'static str, &'static str)>]| -> crate::Mined {
            let refs: Vec<&[(&str, &str)]> = c.iter().map(Vec::as_slice).collect();
            mined(&refs)
        };
        let m = as_slices(&customers);
        let nb = m.lookalike_weights(&b, 1.0);
        // The sample as the provider hands it over: each person's traits as positions in `nb`.
        let rows = |sample: &[std::collections::BTreeMap<String, String>]| -> Vec<Vec<u32>> {
            sample
                .iter()
                .map(|p| {
                    (0..nb.len() as u32)
                        .filter(|&j| p.get(&nb[j as usize].name) == Some(&nb[j as usize].value))
                        .collect()
                })
                .collect()
        };
        let w = m.logistic_weights(&nb, &rows(&sample), 1.0, 1000);
        let weight = |n: &str, v: &str| {
            w.iter()
                .find(|t| t.name == n && t.value == v)
                .map(|t| t.weight)
                .unwrap()
        };
        assert_eq!(w.len(), nb.len());
        assert!(weight("income", "high") > weight("income", "low"), "{w:?}");
        assert!(weight("pet", "dog") > weight("pet", "cat"), "{w:?}");
        // The same customers in another order: the same weights, to the bit.
        let mut reordered = customers.clone();
        reordered.reverse();
        reordered.rotate_left(13);
        let mut sample2 = sample.clone();
        sample2.reverse();
        let m2 = as_slices(&reordered);
        assert_eq!(m2.logistic_weights(&nb, &rows(&sample2), 1.0, 1000), w);
    }
}
