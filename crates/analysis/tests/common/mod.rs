//! Shared set-up of the crate's tests: traits by name, and analyzers fed with profiles.
#![allow(dead_code)] // each test binary uses a different part of it

use icp_analysis::synthetic::Dataset;
use icp_analysis::{AnalysisConfig, Analyzer, Item};

/// The trait `name = value`.
pub fn item(name: &str, value: &str) -> Item {
    Item::new(name, value)
}

/// An analyzer with `config` that has been given every profile, in order.
pub fn analyzer<'a, P>(config: AnalysisConfig, profiles: impl IntoIterator<Item = P>) -> Analyzer
where
    P: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut analyzer = Analyzer::new(config);
    for profile in profiles {
        analyzer.add_profile(profile);
    }
    analyzer
}

/// Every customer of a synthetic dataset, in order.
pub fn profiles(data: &Dataset) -> impl Iterator<Item = impl Iterator<Item = (&str, &str)>> {
    (0..data.customers()).map(|c| data.profile(c))
}
