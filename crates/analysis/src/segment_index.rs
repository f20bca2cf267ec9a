//! The traits that set one segment of the customers apart from the rest of them.
//!
//! For a segment of `n` customers among `N`, a trait held by `c` of the segment's customers and
//! by `C` of all of them: `share = c / n`, `rest_share = (C - c) / (N - n)` (the customers
//! outside the segment, whatever other segments they are in), and
//! `index = share / max(rest_share, 0.5 / (N - n))`: how many times more common the trait is in
//! the segment than among the rest, the rest's share floored at half a customer so that a trait
//! none of the rest holds keeps a finite index that still grows with the segment's share.
//!
//! Traits are ranked by `score = share · ln(index)`, the rule the analysis ranks pairs and
//! clusters by (`rank.rs`): by index alone, a trait a sixth of the segment holds and none of the
//! rest (index 170 against 500 others) outranks one 90 % of the segment holds and 10 % of the
//! rest (index 9), though the second is what the segment is; the score weighs the index by how
//! much of the segment it describes.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::contact::is_contact_attribute;

/// A trait more common in a segment than among the rest of the customers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DistinguishingTrait {
    pub name: String,
    pub value: String,
    /// The segment's customers with the trait.
    pub count: u64,
    /// `count / the segment's customers`.
    pub share: f64,
    /// The customers outside the segment with the trait.
    pub rest_count: u64,
    /// `rest_count / the customers outside the segment`.
    pub rest_share: f64,
    /// `share / rest_share`, the rest's share floored at half a customer (see the module).
    pub index: f64,
    /// `share · ln(index)`: what the traits are ranked by (see the module).
    pub score: f64,
}

/// How many customers hold each trait: the traits the analyzer would read from each profile
/// (contact fields, excluded attributes and empty values left out; values trimmed).
#[derive(Debug, Clone, Default)]
pub struct TraitCounts {
    customers: u64,
    counts: HashMap<(String, String), u64>,
    exclude: Vec<String>,
}

impl TraitCounts {
    /// Counts leaving out the attributes `exclude` (compared case-insensitively) on top of the
    /// contact fields.
    pub fn new(exclude: &[String]) -> Self {
        Self {
            exclude: exclude.iter().map(|e| e.to_ascii_lowercase()).collect(),
            ..Self::default()
        }
    }

    /// Adds one customer's `(attribute, value)` pairs.
    pub fn add<'a>(&mut self, fields: impl IntoIterator<Item = (&'a str, &'a str)>) {
        self.customers += 1;
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for (name, value) in fields {
            let value = value.trim();
            if value.is_empty()
                || is_contact_attribute(name)
                || self.exclude.contains(&name.to_ascii_lowercase())
                || seen.contains(&(name, value))
            {
                continue;
            }
            seen.push((name, value));
            *self
                .counts
                .entry((name.to_owned(), value.to_owned()))
                .or_default() += 1;
        }
    }

    pub fn customers(&self) -> u64 {
        self.customers
    }
}

/// The `top` traits of `segment` with the highest score (`share · ln(index)`) against the
/// customers of `all` outside it (`segment` is a subset of `all`), among those at least
/// `min_share` of the segment holds and more common in it than among the rest; ties go to the
/// larger share, then by name and value. Empty when the segment holds every customer (there is no rest to compare with).
pub fn distinguishing_traits(
    segment: &TraitCounts,
    all: &TraitCounts,
    min_share: f64,
    top: usize,
) -> Vec<DistinguishingTrait> {
    let n = segment.customers;
    let rest = all.customers.saturating_sub(n);
    if n == 0 || rest == 0 {
        return Vec::new();
    }
    let floor = 0.5 / rest as f64;
    let mut traits: Vec<DistinguishingTrait> = segment
        .counts
        .iter()
        .filter_map(|((name, value), &count)| {
            let share = count as f64 / n as f64;
            let rest_count = all
                .counts
                .get(&(name.clone(), value.clone()))
                .copied()
                .unwrap_or(count)
                .saturating_sub(count);
            let rest_share = rest_count as f64 / rest as f64;
            let index = share / rest_share.max(floor);
            (share >= min_share && index > 1.0).then(|| DistinguishingTrait {
                name: name.clone(),
                value: value.clone(),
                count,
                share,
                rest_count,
                rest_share,
                index,
                score: share * index.ln(),
            })
        })
        .collect();
    traits.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.count.cmp(&a.count))
            .then_with(|| (&a.name, &a.value).cmp(&(&b.name, &b.value)))
    });
    traits.truncate(top);
    traits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(profiles: &[&[(&str, &str)]]) -> TraitCounts {
        let mut c = TraitCounts::new(&["ignored".to_owned()]);
        for p in profiles {
            c.add(p.iter().copied());
        }
        c
    }

    #[test]
    fn index_is_the_segment_share_over_the_rest_share() {
        let a: &[(&str, &str)] = &[("pet", "dog"), ("car", "suv")];
        let b: &[(&str, &str)] = &[("pet", "cat"), ("car", "suv")];
        // Segment: 4 customers, 3 with a dog; rest: 6 customers, 1 with a dog.
        let segment = counts(&[a, a, a, b]);
        let all = counts(&[a, a, a, b, a, b, b, b, b, b]);
        let traits = distinguishing_traits(&segment, &all, 0.0, 10);
        assert_eq!(traits.len(), 1, "{traits:?}");
        let dog = &traits[0];
        assert_eq!((dog.name.as_str(), dog.value.as_str()), ("pet", "dog"));
        assert_eq!((dog.count, dog.rest_count), (3, 1));
        assert_eq!(dog.share, 0.75);
        assert_eq!(dog.rest_share, 1.0 / 6.0);
        assert!((dog.index - 4.5).abs() < 1e-12, "{}", dog.index);
        // suv: every customer has one (index 1, not more common in the segment); cat: less
        // common in the segment than outside it. Both left out.
        assert_eq!(all.customers(), 10);
    }

    #[test]
    fn a_trait_none_of_the_rest_holds_has_a_finite_index_and_ranks_first() {
        let seg: &[(&str, &str)] = &[("club", "golf"), ("pet", "dog")];
        let other: &[(&str, &str)] = &[("pet", "dog")];
        let segment = counts(&[seg, seg]);
        let all = counts(&[seg, seg, other, other, seg, other]);
        // golf: 2/2 in the segment; the rest (4) holds 1 → 1 / 0.25 = 4. Floor not needed.
        let traits = distinguishing_traits(&segment, &all, 0.0, 10);
        assert_eq!(traits[0].value, "golf");
        assert!((traits[0].index - 4.0).abs() < 1e-12);
        let all = counts(&[seg, seg, other, other]);
        let traits = distinguishing_traits(&segment, &all, 0.0, 10);
        // None of the 2 others golfs: floored at half a customer, 1 / (0.5 / 2) = 4.
        assert_eq!(traits[0].rest_count, 0);
        assert!((traits[0].index - 4.0).abs() < 1e-12);
        assert!(traits[0].index.is_finite());
    }

    #[test]
    fn contact_fields_exclusions_and_rare_traits_are_left_out() {
        let p: &[(&str, &str)] = &[
            ("email", "a@x.com"),
            ("ignored", "x"),
            ("pet", " dog "),
            ("hobby", ""),
        ];
        let q: &[(&str, &str)] = &[("pet", "cat")];
        let segment = counts(&[p]);
        let all = counts(&[p, q]);
        let traits = distinguishing_traits(&segment, &all, 0.0, 10);
        assert_eq!(traits.len(), 1);
        assert_eq!(traits[0].value, "dog");
        assert!(distinguishing_traits(&segment, &all, 1.1, 10).is_empty());
        assert!(distinguishing_traits(&segment, &segment, 0.0, 10).is_empty());
    }

    #[test]
    fn a_trait_most_of_the_segment_holds_outranks_a_rare_one_none_of_the_rest_holds() {
        let common: &[(&str, &str)] = &[("fitness", "high")];
        let rare: &[(&str, &str)] = &[("fitness", "high"), ("job", "service")];
        let plain: &[(&str, &str)] = &[("fitness", "low")];
        // Segment: 10 customers, 9 fit, 2 of them in service; rest: 10, 1 fit, none in service.
        let mut segment = counts(&[rare, rare]);
        for _ in 0..7 {
            segment.add(common.iter().copied());
        }
        segment.add(plain.iter().copied());
        let mut all = segment.clone();
        all.add(common.iter().copied());
        for _ in 0..9 {
            all.add(plain.iter().copied());
        }
        let traits = distinguishing_traits(&segment, &all, 0.0, 10);
        let service = traits.iter().find(|t| t.value == "service").unwrap();
        let fit = traits.iter().find(|t| t.value == "high").unwrap();
        // service: 0.2 / (0.5 / 10) = 4; fit: 0.9 / 0.1 = 9. Here both index and score agree.
        assert!((service.index - 4.0).abs() < 1e-12);
        assert!((fit.index - 9.0).abs() < 1e-12);
        assert!((fit.score - 0.9 * 9f64.ln()).abs() < 1e-12);
        assert_eq!(traits[0].value, "high");
        // With 100 others, 10 fit and none in service: service's index (0.2 / 0.005 = 40)
        // passes fit's (0.9 / 0.1 = 9), its score (0.74) does not pass fit's (1.98).
        let mut all = segment.clone();
        for _ in 0..10 {
            all.add(common.iter().copied());
        }
        for _ in 0..90 {
            all.add(plain.iter().copied());
        }
        let traits = distinguishing_traits(&segment, &all, 0.0, 10);
        assert!(traits[1].index > traits[0].index, "{traits:?}");
        assert_eq!(traits[0].value, "high", "{traits:?}");
    }

    #[test]
    fn ties_go_to_the_larger_share_then_the_name_and_only_top_are_kept() {
        let a: &[(&str, &str)] = &[("x", "1"), ("y", "1"), ("z", "1")];
        let segment = counts(&[a, a]);
        let mut all = segment.clone();
        all.add([("w", "0")]);
        let traits = distinguishing_traits(&segment, &all, 0.0, 2);
        let names: Vec<&str> = traits.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["x", "y"]);
    }
}
