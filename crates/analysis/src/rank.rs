//! Lift and the score that ranks pairs and clusters.
//!
//! **Ranking rule.** Pairs and clusters are ranked by `score = support · ln(lift)`, highest
//! first; ties go to the larger count, then to the lexicographically smaller list of
//! `(name, value)` items. This is the set's term in the mutual information of its traits: the
//! log of how much more often the traits meet than chance (ln lift), weighted by how many
//! customers it describes (support). A rare pair with a huge lift is damped by its small support,
//! so it cannot bury a common, clearly associated pair; a set of traits that merely co-occur by
//! chance (lift ≈ 1) scores ≈ 0; one that co-occurs less than chance (lift < 1) scores below
//! zero and sinks to the bottom. Adding an independent trait to a cluster multiplies its support
//! by that trait's frequency without changing its lift, so it lowers the score; adding a trait
//! the cluster implies keeps its support and raises its lift, so it raises the score.

/// `supp(S) / Π supp({i})`, from exact counts. Finite and positive whenever `count ≥ 1`
/// (every item of a set then has a count ≥ `count`).
pub(crate) fn lift(count: u64, item_counts: impl IntoIterator<Item = u64>, customers: u64) -> f64 {
    let n = customers as f64;
    let mut lift = count as f64 / n;
    for c in item_counts {
        lift /= c as f64 / n;
    }
    lift
}

/// `support · ln(lift)`; see the module documentation.
pub(crate) fn score(support: f64, lift: f64) -> f64 {
    support * lift.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lift_of_independent_traits_is_one() {
        // 100 customers, a in 50, b in 40, both in 20 = 0.5 · 0.4 · 100.
        let l = lift(20, [50, 40], 100);
        assert!((l - 1.0).abs() < 1e-12);
        assert!(score(0.2, l).abs() < 1e-12);
    }

    #[test]
    fn a_rare_huge_lift_does_not_bury_a_common_association() {
        // Rare: 2 of 1000 customers, each trait in 2 → lift 500.
        let rare = score(0.002, lift(2, [2, 2], 1000));
        // Common: 300 of 1000, traits in 400 and 500 → lift 1.5.
        let common = score(0.3, lift(300, [400, 500], 1000));
        assert!(common > rare, "{common} vs {rare}");
    }
}
