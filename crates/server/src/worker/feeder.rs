//! The analyzer fed while enrichment runs.

use std::collections::BTreeMap;

use icp_analysis::{AnalysisConfig, Analyzer};

/// Feeds an [`Analyzer`] on a blocking thread while enrichment waits on the upstream, in batch
/// order whatever order the answers come in, so the analysis is the one a reload of the
/// checkpoints gives.
pub(super) struct Feeder {
    tx: tokio::sync::mpsc::Sender<Vec<BTreeMap<String, String>>>,
    handle: tokio::task::JoinHandle<Analyzer>,
    next: usize,
    waiting: BTreeMap<usize, Vec<BTreeMap<String, String>>>,
}

impl Feeder {
    pub(super) fn start(config: AnalysisConfig) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<BTreeMap<String, String>>>(8);
        let handle = tokio::task::spawn_blocking(move || {
            let mut analyzer = Analyzer::new(config);
            while let Some(batch) = rx.blocking_recv() {
                add_profiles(&mut analyzer, &batch);
            }
            analyzer
        });
        Self {
            tx,
            handle,
            next: 0,
            waiting: BTreeMap::new(),
        }
    }

    pub(super) async fn add(&mut self, seq: usize, batch: Vec<BTreeMap<String, String>>) {
        self.waiting.insert(seq, batch);
        while let Some(batch) = self.waiting.remove(&self.next) {
            // A send fails only when the feeding thread died; `finish` reports that.
            let _ = self.tx.send(batch).await;
            self.next += 1;
        }
    }

    pub(super) fn finish(self) -> tokio::task::JoinHandle<Analyzer> {
        self.handle
    }
}

/// One enrichment batch's profiles (their flat `domains` maps) into the analyzer.
pub(super) fn add_profiles(analyzer: &mut Analyzer, profiles: &[BTreeMap<String, String>]) {
    for profile in profiles {
        analyzer.add_profile(profile.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    }
}
