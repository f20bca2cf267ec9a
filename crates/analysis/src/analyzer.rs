use crate::baseline::Baseline;
use crate::config::AnalysisConfig;
use crate::error::AnalysisError;
use crate::mine::{self, Mined};
use crate::report::Analysis;
use crate::rows::TraitRows;

/// Streams customer profiles in and produces the [`Analysis`].
///
/// Profiles are never kept as maps: each `attribute = value` is interned once and a profile
/// costs four bytes per trait.
pub struct Analyzer {
    config: AnalysisConfig,
    rows: TraitRows,
}

impl std::fmt::Debug for Analyzer {
    // The rows run to millions of entries: show the shape only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyzer")
            .field("config", &self.config)
            .field("customers", &self.rows.customers)
            .field("attributes", &self.rows.attributes.len())
            .field("distinct_traits", &self.rows.items.len())
            .finish_non_exhaustive()
    }
}

impl Analyzer {
    pub fn new(config: AnalysisConfig) -> Self {
        let rows = TraitRows::new(&config.exclude_attributes);
        Self { config, rows }
    }

    /// Adds one customer: the `(attribute, value)` pairs of their flat `domains` map.
    ///
    /// Contact and identity fields and the configured exclusions are skipped, as are empty
    /// values; values are trimmed. A pair repeated within one profile counts once.
    pub fn add_profile<'a>(&mut self, fields: impl IntoIterator<Item = (&'a str, &'a str)>) {
        self.rows.add_profile(fields);
    }

    /// How many profiles have been added.
    pub fn customers(&self) -> u64 {
        self.rows.customers
    }

    /// Mines every frequent itemset (singles, pairs and clusters up to `max_cluster_size`) with
    /// exact counts. [`Analyzer::finish`] summarises this; it is public for checks against other
    /// itemset libraries and for callers who want the full lattice.
    pub fn mine(self) -> Result<Mined, AnalysisError> {
        mine::mine(self.config, self.rows)
    }

    /// Runs the analysis.
    pub fn finish(self) -> Result<Analysis, AnalysisError> {
        Ok(self.mine()?.analysis())
    }

    /// Runs the analysis with the population baseline known up front, so pairs and clusters
    /// are ranked against the population over everything mined before the top ones are taken
    /// (see [`Mined::analysis_with`]). Needs the baseline before the data is mined; to learn
    /// which traits it must cover first, [`Analyzer::mine`] and [`Mined::baseline_items`].
    pub fn finish_with_baseline(self, baseline: &Baseline) -> Result<Analysis, AnalysisError> {
        Ok(self.mine()?.analysis_with(baseline))
    }
}
