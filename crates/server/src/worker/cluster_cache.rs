//! The population's clusters of each attribute, kept across the jobs of a process so that a job
//! does not list again what another listed a moment ago.
//!
//! The upstream says a `cluster_hash` is stable across rebuilds but a `cluster_id` can change,
//! and sizes move as the population is refreshed: entries expire after a short time (the
//! worker's `cluster_cache_ttl`), and nothing here is persisted. Only complete listings of an
//! attribute (every page) are kept, so a hit answers exactly what a call would have.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use icp_contract::Cluster;

/// Every cluster of one attribute, as one listing found them.
struct Listing {
    clusters: Vec<Cluster>,
    population_size: Option<u64>,
    at: Instant,
}

/// Clusters by attribute name, for one provider.
pub struct ClusterCache {
    ttl: Duration,
    attributes: Mutex<HashMap<String, Listing>>,
}

impl ClusterCache {
    /// A cache whose entries live `ttl`; `Duration::ZERO` keeps nothing.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            attributes: Mutex::new(HashMap::new()),
        }
    }

    /// The clusters of attribute `name` and the population size listed with them, when a
    /// listing of it is younger than the time to live.
    pub(super) fn get(&self, name: &str) -> Option<(Vec<Cluster>, Option<u64>)> {
        let mut attributes = self.attributes.lock().expect("cluster cache lock");
        match attributes.get(name) {
            Some(l) if l.at.elapsed() < self.ttl => Some((l.clusters.clone(), l.population_size)),
            Some(_) => {
                attributes.remove(name);
                None
            }
            None => None,
        }
    }

    /// Keeps a complete listing of the attributes `names`: `clusters` holds every cluster of
    /// each (an attribute with none is kept as such).
    pub(super) fn put(&self, names: &[String], clusters: &[Cluster], population_size: Option<u64>) {
        if self.ttl.is_zero() {
            return;
        }
        let at = Instant::now();
        let mut by_name: HashMap<&str, Vec<Cluster>> =
            names.iter().map(|n| (n.as_str(), Vec::new())).collect();
        for c in clusters {
            if let Some(of_name) = by_name.get_mut(c.name.as_str()) {
                of_name.push(c.clone());
            }
        }
        let mut attributes = self.attributes.lock().expect("cluster cache lock");
        for (name, clusters) in by_name {
            attributes.insert(
                name.to_owned(),
                Listing {
                    clusters,
                    population_size,
                    at,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(name: &str, value: &str, size: u64) -> Cluster {
        serde_json::from_value(serde_json::json!({
            "cluster_id": format!("{name}-{value}"),
            "cluster_hash": format!("{:032x}", size),
            "name": name,
            "value": value,
            "size": size,
            "domain": "demographic",
        }))
        .unwrap()
    }

    #[test]
    fn listings_are_kept_per_attribute_until_they_expire() {
        let cache = ClusterCache::new(Duration::from_millis(200));
        let names = ["gender".to_owned(), "pets".to_owned()];
        let listed = [cluster("gender", "f", 5), cluster("gender", "m", 4)];
        cache.put(&names, &listed, Some(9));
        let (gender, size) = cache.get("gender").unwrap();
        assert_eq!(gender, listed);
        assert_eq!(size, Some(9));
        // Listed with no cluster: that is an answer too.
        assert_eq!(cache.get("pets").unwrap().0, vec![]);
        assert!(cache.get("income").is_none());
        std::thread::sleep(Duration::from_millis(250));
        assert!(cache.get("gender").is_none());
    }

    #[test]
    fn a_zero_time_to_live_keeps_nothing() {
        let cache = ClusterCache::new(Duration::ZERO);
        cache.put(&["gender".to_owned()], &[cluster("gender", "f", 5)], None);
        assert!(cache.get("gender").is_none());
    }
}
