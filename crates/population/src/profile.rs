//! `get_person`: flat profiles of `attribute → value`, contact fields numbered.

use icp_contract::{
    DOMAINS, GetPersonRequest, GetPersonResponse, MAX_PERSON_IDS_PER_CALL, PersonId, Profile,
    ProfileMetadata, ProviderError,
};

use crate::population::Population;
use crate::resolve::parallelism;

/// Which domains a request wants, as flags over [`DOMAINS`].
struct DomainSet([bool; DOMAINS.len()]);

impl DomainSet {
    fn parse(domains: Option<&[String]>) -> Result<DomainSet, ProviderError> {
        let Some(domains) = domains else {
            return Ok(DomainSet([true; DOMAINS.len()]));
        };
        let mut set = [false; DOMAINS.len()];
        for (i, d) in domains.iter().enumerate() {
            let Some(k) = DOMAINS
                .iter()
                .position(|x| x.eq_ignore_ascii_case(d.trim()))
            else {
                return Err(ProviderError::validation(format!(
                    "domains[{i}] = {d:?} is not a domain; known: {}",
                    DOMAINS.join(", ")
                )));
            };
            set[k] = true;
        }
        Ok(DomainSet(set))
    }

    fn has(&self, domain: &str) -> bool {
        DOMAINS
            .iter()
            .position(|x| *x == domain)
            .is_some_and(|k| self.0[k])
    }
}

fn numbered(out: &mut Vec<(String, String)>, prefix: &str, values: Vec<String>) {
    for (i, v) in values.into_iter().enumerate() {
        out.push((format!("{prefix}{}", i + 1), v));
    }
}

impl Population {
    fn profile(
        &self,
        id: PersonId,
        p: usize,
        domains: &DomainSet,
        trait_attrs: &[usize],
        wants_contact: bool,
    ) -> Profile {
        // Pairs first, one bulk build of the map at the end: cheaper than inserting one by one.
        let mut map: Vec<(String, String)> = Vec::with_capacity(trait_attrs.len() + 12);
        for &a in trait_attrs {
            let code = self.code(p, a);
            if code != 0 {
                let attr = &self.attrs[a];
                map.push((
                    attr.name.clone(),
                    attr.values[usize::from(code) - 1].clone(),
                ));
            }
        }
        if wants_contact {
            let c = self.contact(p);
            if domains.has("name") {
                if let Some(f) = c.first_name {
                    map.push(("first_name".to_owned(), f));
                }
                if let Some(l) = c.last_name {
                    map.push(("last_name".to_owned(), l));
                }
            }
            if domains.has("email") {
                numbered(&mut map, "email", c.emails);
            }
            if domains.has("phone") {
                numbered(&mut map, "phone", c.phones);
            }
            if domains.has("address")
                && let Some(a) = c.address
            {
                map.push(("address1".to_owned(), a));
            }
            if domains.has("maid") {
                numbered(&mut map, "maid", c.maids);
            }
        }
        Profile {
            person_id: id,
            metadata: ProfileMetadata {
                quality_score: Some(self.quality_of(p)),
                last_modified: None,
            },
            domains: map.into_iter().collect(),
        }
    }

    /// Profiles of at most [`MAX_PERSON_IDS_PER_CALL`] persons, in request order, each once.
    /// Ids that are not in this population are left out.
    pub fn get_person(&self, req: &GetPersonRequest) -> Result<GetPersonResponse, ProviderError> {
        if req.person_ids.len() > MAX_PERSON_IDS_PER_CALL {
            return Err(ProviderError::validation(format!(
                "person_ids holds {} ids; at most {MAX_PERSON_IDS_PER_CALL} a call",
                req.person_ids.len()
            )));
        }
        let domains = DomainSet::parse(req.domains.as_deref())?;
        let trait_attrs: Vec<usize> = (0..self.attrs.len())
            .filter(|&a| domains.has(&self.attrs[a].domain))
            .collect();
        let wants_contact = ["name", "email", "phone", "address", "maid"]
            .iter()
            .any(|d| domains.has(d));
        let mut seen = std::collections::HashSet::with_capacity(req.person_ids.len());
        let wanted: Vec<(PersonId, usize)> = req
            .person_ids
            .iter()
            .filter_map(|id| self.index_of(*id).map(|p| (*id, p)))
            .filter(|(_, p)| seen.insert(*p))
            .collect();
        let build = |items: &[(PersonId, usize)]| -> Vec<Profile> {
            items
                .iter()
                .map(|(id, p)| self.profile(*id, *p, &domains, &trait_attrs, wants_contact))
                .collect()
        };
        // Profiles are independent: build them on every core when there are enough.
        let threads = parallelism(wanted.len());
        let profiles = if threads <= 1 {
            build(&wanted)
        } else {
            let per = wanted.len().div_ceil(threads);
            std::thread::scope(|s| {
                let handles: Vec<_> = wanted
                    .chunks(per)
                    .map(|c| s.spawn(move || build(c)))
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().unwrap_or_default())
                    .collect()
            })
        };
        Ok(GetPersonResponse {
            profiles,
            tool_trace_id: None,
            workflow_id: req.workflow_id.clone(),
        })
    }
}
