//! A small deterministic population for tests and benches of the MCP client and server: the
//! same answers for the same requests, no randomness, no I/O. It is a test double, not a model
//! of real people: traits are a hash of the person's number.
//!
//! Person `i` (1-based) has email `p{i}@example.com`, phone `555{i:07}` and address
//! `{i} Main St`; only plaintext identifiers resolve.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use icp_contract::{
    AudienceExport, AudienceRecord, Cluster, FeedbackRequest, FeedbackResponse, FindPersonsRequest,
    FindPersonsResponse, GetClusterRequest, GetClusterResponse, GetPersonRequest,
    GetPersonResponse, HashType, IdType, Identity, IdentityMatch, ListClustersRequest,
    ListClustersResponse, MAX_CLUSTERS_PER_PAGE, MAX_PERSON_IDS_PER_CALL, MAX_SAMPLE, PersonId,
    PopulationProvider, Profile, ProfileMetadata, ProviderError, ResolveRequest, ResolveResponse,
    ResolveStats, audience_stream,
};

/// `(attribute, domain, values)`: the traits every synthetic person has one value of.
const TRAITS: [(&str, &str, &[&str]); 4] = [
    ("gender", "demographic", &["Female", "Male"]),
    (
        "generation",
        "demographic",
        &["Gen Z", "Millennial", "Gen X", "Boomer"],
    ),
    ("interested_fitness", "interest", &["Yes", "No"]),
    (
        "household_income_range",
        "household",
        &["<$50K", "$50K-$100K", "$100K+"],
    ),
];

pub struct SyntheticPopulation {
    persons: u64,
    clusters: Vec<Cluster>,
    calls: AtomicU64,
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl SyntheticPopulation {
    pub fn new(persons: u64) -> Self {
        let mut clusters = Vec::new();
        for (t, (name, domain, values)) in TRAITS.iter().enumerate() {
            for (v, value) in values.iter().enumerate() {
                let size = (1..=persons)
                    .filter(|&i| Self::trait_index(i, t) == v)
                    .count() as u64;
                let k = (t * 10 + v) as u64;
                clusters.push(Cluster {
                    cluster_id: format!("{}", 1_000_000_000 + k),
                    cluster_hash: format!("{:016x}{:016x}", mix(k), mix(k ^ 0xABCD)),
                    name: (*name).into(),
                    value: (*value).into(),
                    size,
                    domain: (*domain).into(),
                    prevalence: Some(size as f64 / persons.max(1) as f64),
                });
            }
        }
        Self {
            persons,
            clusters,
            calls: AtomicU64::new(0),
        }
    }

    fn trait_index(person: u64, t: usize) -> usize {
        (mix(person.wrapping_mul(31).wrapping_add(t as u64)) % TRAITS[t].2.len() as u64) as usize
    }

    fn person_of(&self, id_type: IdType, value: &str) -> Option<u64> {
        let v = value.trim();
        let n: u64 = match id_type {
            IdType::Email => v
                .to_ascii_lowercase()
                .strip_prefix('p')?
                .strip_suffix("@example.com")?
                .parse()
                .ok()?,
            IdType::Phone => v.strip_prefix("555")?.parse().ok()?,
            IdType::Address => v.strip_suffix(" Main St")?.parse().ok()?,
            IdType::Maid => return None,
        };
        (1..=self.persons).contains(&n).then_some(n)
    }

    fn contacts(i: u64) -> [(&'static str, String); 3] {
        [
            ("email", format!("p{i}@example.com")),
            ("phone", format!("555{i:07}")),
            ("address", format!("{i} Main St")),
        ]
    }

    fn trace(&self, workflow_id: Option<String>) -> (Option<String>, Option<String>) {
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        (
            Some(format!("synthetic-trace-{n}")),
            Some(workflow_id.unwrap_or_else(|| "synthetic-workflow".into())),
        )
    }

    fn cluster_by_term(&self, term: &str) -> Result<usize, ProviderError> {
        self.clusters
            .iter()
            .position(|c| c.cluster_id == term || c.cluster_hash == term)
            .ok_or_else(|| ProviderError::not_found(format!("no cluster {term}")))
    }

    fn has(&self, person: u64, cluster: usize) -> bool {
        let c = &self.clusters[cluster];
        let t = TRAITS
            .iter()
            .position(|(n, _, _)| *n == c.name)
            .unwrap_or(0);
        TRAITS[t].2[Self::trait_index(person, t)] == c.value
    }

    fn audience(&self, req: &FindPersonsRequest) -> Result<Vec<AudienceRecord>, ProviderError> {
        if req.location.is_some() {
            return Err(ProviderError::validation(
                "the synthetic population has no geography",
            ));
        }
        let expr = Expr::parse(&req.expression, &|t| self.cluster_by_term(t))?;
        let kind = req.identifier_type.unwrap_or(IdType::Email);
        let limit = req.audience_limit.unwrap_or(u64::MAX);
        let mut out = Vec::new();
        for i in 1..=self.persons {
            if out.len() as u64 >= limit {
                break;
            }
            if expr.eval(&|c| self.has(i, c)) {
                let contact = Self::contacts(i)
                    .into_iter()
                    .find(|(k, _)| *k == kind.as_str())
                    .map(|(_, v)| v)
                    .unwrap_or_default();
                let key = format!("{}1", kind.as_str());
                out.push(AudienceRecord {
                    person_id: PersonId(i),
                    identifiers: BTreeMap::from([(
                        kind.as_str().to_owned(),
                        BTreeMap::from([(key, contact)]),
                    )]),
                });
            }
        }
        Ok(out)
    }
}

/// A parsed `find_persons` expression: `OR` of `AND`s of terms, `AND NOT` and parentheses.
enum Expr {
    Term(usize),
    And(Box<Expr>, Box<Expr>),
    AndNot(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

impl Expr {
    fn parse(
        s: &str,
        lookup: &dyn Fn(&str) -> Result<usize, ProviderError>,
    ) -> Result<Expr, ProviderError> {
        let spaced = s.replace('(', " ( ").replace(')', " ) ");
        let tokens: Vec<&str> = spaced.split_whitespace().collect();
        let mut pos = 0;
        let e = Self::or(&tokens, &mut pos, lookup)?;
        if pos != tokens.len() {
            return Err(ProviderError::validation(format!(
                "unexpected {:?}",
                tokens[pos]
            )));
        }
        Ok(e)
    }

    fn or(
        t: &[&str],
        p: &mut usize,
        l: &dyn Fn(&str) -> Result<usize, ProviderError>,
    ) -> Result<Expr, ProviderError> {
        let mut e = Self::and(t, p, l)?;
        while t.get(*p) == Some(&"OR") {
            *p += 1;
            e = Expr::Or(Box::new(e), Box::new(Self::and(t, p, l)?));
        }
        Ok(e)
    }

    fn and(
        t: &[&str],
        p: &mut usize,
        l: &dyn Fn(&str) -> Result<usize, ProviderError>,
    ) -> Result<Expr, ProviderError> {
        let mut e = Self::atom(t, p, l)?;
        while t.get(*p) == Some(&"AND") {
            *p += 1;
            if t.get(*p) == Some(&"NOT") {
                *p += 1;
                e = Expr::AndNot(Box::new(e), Box::new(Self::atom(t, p, l)?));
            } else {
                e = Expr::And(Box::new(e), Box::new(Self::atom(t, p, l)?));
            }
        }
        Ok(e)
    }

    fn atom(
        t: &[&str],
        p: &mut usize,
        l: &dyn Fn(&str) -> Result<usize, ProviderError>,
    ) -> Result<Expr, ProviderError> {
        match t.get(*p) {
            Some(&"(") => {
                *p += 1;
                let e = Self::or(t, p, l)?;
                if t.get(*p) != Some(&")") {
                    return Err(ProviderError::validation("unbalanced parentheses"));
                }
                *p += 1;
                Ok(e)
            }
            Some(&tok) if !["AND", "OR", "NOT", ")"].contains(&tok) => {
                *p += 1;
                Ok(Expr::Term(l(tok)?))
            }
            other => Err(ProviderError::validation(format!(
                "expected a cluster term, found {other:?}"
            ))),
        }
    }

    fn eval(&self, has: &dyn Fn(usize) -> bool) -> bool {
        match self {
            Expr::Term(c) => has(*c),
            Expr::And(a, b) => a.eval(has) && b.eval(has),
            Expr::AndNot(a, b) => a.eval(has) && !b.eval(has),
            Expr::Or(a, b) => a.eval(has) || b.eval(has),
        }
    }
}

#[async_trait::async_trait]
impl PopulationProvider for SyntheticPopulation {
    fn name(&self) -> &'static str {
        "synthetic"
    }

    async fn resolve_identities(
        &self,
        req: ResolveRequest,
    ) -> Result<ResolveResponse, ProviderError> {
        let mut identities: Vec<Identity> = Vec::new();
        let mut at: BTreeMap<u64, usize> = BTreeMap::new();
        let (mut requested, mut resolved) = (0u64, 0u64);
        for g in &req.multi_identifiers {
            for v in &g.values {
                requested += 1;
                if g.hash_type != HashType::Plaintext {
                    continue;
                }
                let Some(i) = self.person_of(g.id_type, v) else {
                    continue;
                };
                resolved += 1;
                let m = IdentityMatch {
                    criterion_type: format!("{}_{}", g.id_type.as_str(), g.hash_type.as_str()),
                    criterion_value: v.clone(),
                    quality_score: 0.9,
                };
                match at.get(&i) {
                    Some(&k) => identities[k].matches.push(m),
                    None => {
                        at.insert(i, identities.len());
                        identities.push(Identity {
                            person_id: PersonId(i),
                            overall_quality_score: 0.9,
                            matches: vec![m],
                            identifiers: Self::contacts(i)
                                .into_iter()
                                .map(|(k, v)| (k.to_owned(), vec![v]))
                                .collect(),
                        });
                    }
                }
            }
        }
        // Independent evidence: each further match lowers the chance all of them are wrong.
        for identity in &mut identities {
            let miss: f64 = identity
                .matches
                .iter()
                .map(|m| 1.0 - m.quality_score)
                .product();
            identity.overall_quality_score = ((1.0 - miss) * 10_000.0).round() / 10_000.0;
        }
        let (tool_trace_id, workflow_id) = self.trace(req.workflow_id);
        Ok(ResolveResponse {
            identities,
            stats: ResolveStats {
                requested,
                resolved,
                rate: if requested == 0 {
                    0.0
                } else {
                    resolved as f64 / requested as f64
                },
            },
            export: None,
            tool_trace_id,
            workflow_id,
            matched_by_criterion: Default::default(),
        })
    }

    async fn get_person(&self, req: GetPersonRequest) -> Result<GetPersonResponse, ProviderError> {
        if req.person_ids.len() > MAX_PERSON_IDS_PER_CALL {
            return Err(ProviderError::validation(format!(
                "at most {MAX_PERSON_IDS_PER_CALL} person ids a call"
            )));
        }
        let wanted = |domain: &str| {
            req.domains
                .as_ref()
                .is_none_or(|d| d.iter().any(|x| x == domain))
        };
        let profiles = req
            .person_ids
            .iter()
            .filter(|p| (1..=self.persons).contains(&p.0))
            .map(|p| {
                let mut domains = BTreeMap::new();
                for (t, (name, domain, values)) in TRAITS.iter().enumerate() {
                    if wanted(domain) {
                        domains.insert(
                            (*name).to_owned(),
                            values[Self::trait_index(p.0, t)].to_owned(),
                        );
                    }
                }
                for (kind, v) in Self::contacts(p.0) {
                    if wanted(kind) {
                        domains.insert(format!("{kind}1"), v);
                    }
                }
                Profile {
                    person_id: *p,
                    metadata: ProfileMetadata {
                        quality_score: Some(0.9),
                        last_modified: None,
                    },
                    domains,
                }
            })
            .collect();
        let (tool_trace_id, workflow_id) = self.trace(req.workflow_id);
        Ok(GetPersonResponse {
            profiles,
            tool_trace_id,
            workflow_id,
        })
    }

    async fn list_clusters(
        &self,
        req: ListClustersRequest,
    ) -> Result<ListClustersResponse, ProviderError> {
        let limit = req.limit.unwrap_or(1000);
        if limit == 0 || limit > MAX_CLUSTERS_PER_PAGE {
            return Err(ProviderError::validation(format!(
                "limit must be 1..={MAX_CLUSTERS_PER_PAGE}"
            )));
        }
        let any = |filter: &Option<Vec<String>>, v: &str| {
            filter.as_ref().is_none_or(|f| f.iter().any(|x| x == v))
        };
        let matching: Vec<&Cluster> = self
            .clusters
            .iter()
            .filter(|c| any(&req.cluster_names, &c.name))
            .filter(|c| any(&req.cluster_ids, &c.cluster_id))
            .filter(|c| any(&req.cluster_hashes, &c.cluster_hash))
            .filter(|c| any(&req.domains, &c.domain))
            .collect();
        let offset = req.offset.unwrap_or(0);
        let page: Vec<Cluster> = matching
            .iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|c| (*c).clone())
            .collect();
        let end = offset + page.len() as u64;
        let has_more = end < matching.len() as u64;
        let (tool_trace_id, workflow_id) = self.trace(req.workflow_id);
        Ok(ListClustersResponse {
            total: matching.len() as u64,
            returned: page.len() as u64,
            clusters: page,
            has_more,
            next_offset: has_more.then_some(end),
            population_size: Some(self.persons),
            tool_trace_id,
            workflow_id,
        })
    }

    async fn get_cluster(
        &self,
        req: GetClusterRequest,
    ) -> Result<GetClusterResponse, ProviderError> {
        let term = match (&req.cluster_id, &req.cluster_hash) {
            (Some(id), None) => id,
            (None, Some(hash)) => hash,
            _ => {
                return Err(ProviderError::validation(
                    "give exactly one of cluster_id, cluster_hash",
                ));
            }
        };
        let cluster = self.clusters[self.cluster_by_term(term)?].clone();
        let (tool_trace_id, workflow_id) = self.trace(req.workflow_id);
        Ok(GetClusterResponse {
            cluster,
            tool_trace_id,
            workflow_id,
        })
    }

    async fn find_persons(
        &self,
        req: FindPersonsRequest,
    ) -> Result<FindPersonsResponse, ProviderError> {
        // The export's answer without its records: a small population's audience is a Vec.
        self.export_persons(req).await.map(|export| export.answer)
    }

    async fn export_persons(
        &self,
        req: FindPersonsRequest,
    ) -> Result<AudienceExport, ProviderError> {
        let audience = self.audience(&req)?;
        let (tool_trace_id, workflow_id) = self.trace(req.workflow_id);
        let answer = FindPersonsResponse {
            total: audience.len() as u64,
            sample: audience.iter().take(MAX_SAMPLE).cloned().collect(),
            export: None,
            tool_trace_id,
            workflow_id,
        };
        let records = audience_stream(&audience);
        Ok(AudienceExport { answer, records })
    }

    async fn submit_feedback(
        &self,
        req: FeedbackRequest,
    ) -> Result<FeedbackResponse, ProviderError> {
        if req.message.trim().is_empty() {
            return Err(ProviderError::validation("feedback needs a message"));
        }
        let (tool_trace_id, workflow_id) = self.trace(req.workflow_id);
        Ok(FeedbackResponse {
            accepted: true,
            tool_trace_id,
            workflow_id,
        })
    }
}
