//! `list_clusters` and `get_cluster`.

use icp_contract::{
    Cluster, GetClusterRequest, GetClusterResponse, ListClustersRequest, ListClustersResponse,
    MAX_CLUSTERS_PER_PAGE, ProviderError,
};

use crate::columns::Population;

/// Page size when a request gives none.
pub const DEFAULT_CLUSTER_PAGE: u64 = 1_000;

impl Population {
    pub(crate) fn cluster_view(&self, k: usize) -> Cluster {
        let c = &self.clusters[k];
        let attr = &self.attrs[c.attr as usize];
        let size = c.members.len();
        Cluster {
            cluster_id: c.id.to_string(),
            cluster_hash: c.hash.clone(),
            name: attr.name.clone(),
            value: attr.values[usize::from(c.code) - 1].clone(),
            size,
            domain: attr.domain.clone(),
            prevalence: (self.len > 0).then(|| size as f64 / self.len as f64),
        }
    }

    /// The cluster index a term of an expression names: a cluster hash (32 hex digits, any case)
    /// or a cluster id (digits).
    pub(crate) fn term_index(&self, term: &str) -> Result<u32, String> {
        if term.len() == 32 && term.bytes().all(|b| b.is_ascii_hexdigit()) {
            if let Some(k) = self.by_hash.get(&term.to_ascii_lowercase()) {
                return Ok(*k);
            }
            if !term.bytes().all(|b| b.is_ascii_digit()) {
                return Err("unknown cluster hash".to_owned());
            }
        }
        if term.bytes().all(|b| b.is_ascii_digit()) {
            return term
                .parse::<u64>()
                .ok()
                .and_then(|id| self.by_id.get(&id).copied())
                .ok_or_else(|| "unknown cluster id".to_owned());
        }
        Err("not a cluster id or a 32-hex cluster hash".to_owned())
    }

    /// The ids of every cluster a person is in (as numbers), in attribute order.
    pub fn cluster_ids_of(&self, index: usize) -> Vec<u64> {
        (0..self.attrs.len())
            .filter_map(|a| {
                let code = self.code(index, a);
                (code != 0)
                    .then(|| self.clusters[self.cluster_of[a][usize::from(code) - 1] as usize].id)
            })
            .collect()
    }

    /// The cluster of `name = value`, if the population has it.
    pub fn cluster_for(&self, name: &str, value: &str) -> Option<Cluster> {
        let a = self.attrs.iter().position(|a| a.name == name)?;
        let v = self.attrs[a].values.iter().position(|x| x == value)?;
        Some(self.cluster_view(self.cluster_of[a][v] as usize))
    }

    /// Clusters filtered by names, ids, hashes and domains (each filter given must match), in
    /// cluster id order, one page at a time.
    pub fn list_clusters(
        &self,
        req: &ListClustersRequest,
    ) -> Result<ListClustersResponse, ProviderError> {
        let limit = req.limit.unwrap_or(DEFAULT_CLUSTER_PAGE);
        if limit == 0 || limit > MAX_CLUSTERS_PER_PAGE {
            return Err(ProviderError::validation(format!(
                "limit must be within 1..={MAX_CLUSTERS_PER_PAGE}, got {limit}"
            )));
        }
        let offset = req.offset.unwrap_or(0);
        let lower = |v: &Option<Vec<String>>| {
            v.as_ref().map(|v| {
                v.iter()
                    .map(|s| s.trim().to_ascii_lowercase())
                    .collect::<Vec<_>>()
            })
        };
        let names = req.cluster_names.as_ref();
        let ids = req.cluster_ids.as_ref();
        let hashes = lower(&req.cluster_hashes);
        let domains = lower(&req.domains);
        let selected: Vec<usize> = (0..self.clusters.len())
            .filter(|&k| {
                let c = &self.clusters[k];
                let attr = &self.attrs[c.attr as usize];
                names.is_none_or(|n| n.iter().any(|x| x.trim() == attr.name))
                    && ids.is_none_or(|i| i.iter().any(|x| x.trim().parse() == Ok(c.id)))
                    && hashes.as_ref().is_none_or(|h| h.contains(&c.hash))
                    && domains.as_ref().is_none_or(|d| d.contains(&attr.domain))
            })
            .collect();
        let total = selected.len() as u64;
        let clusters: Vec<Cluster> = selected
            .iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(limit as usize)
            .map(|&k| self.cluster_view(k))
            .collect();
        let returned = clusters.len() as u64;
        let has_more = offset.saturating_add(returned) < total;
        Ok(ListClustersResponse {
            clusters,
            total,
            returned,
            has_more,
            next_offset: has_more.then(|| offset + returned),
            population_size: Some(self.len as u64),
            tool_trace_id: None,
            workflow_id: req.workflow_id.clone(),
        })
    }

    /// One cluster by id or by hash (exactly one of them).
    pub fn get_cluster(
        &self,
        req: &GetClusterRequest,
    ) -> Result<GetClusterResponse, ProviderError> {
        let k = match (&req.cluster_id, &req.cluster_hash) {
            (Some(id), None) => {
                let id = id.trim();
                id.parse::<u64>()
                    .ok()
                    .and_then(|n| self.by_id.get(&n))
                    .ok_or_else(|| ProviderError::not_found(format!("no cluster with id {id:?}")))?
            }
            (None, Some(h)) => self
                .by_hash
                .get(&h.trim().to_ascii_lowercase())
                .ok_or_else(|| ProviderError::not_found(format!("no cluster with hash {h:?}")))?,
            _ => {
                return Err(ProviderError::validation(
                    "give exactly one of cluster_id and cluster_hash",
                ));
            }
        };
        Ok(GetClusterResponse {
            cluster: self.cluster_view(*k as usize),
            tool_trace_id: None,
            workflow_id: req.workflow_id.clone(),
        })
    }
}
