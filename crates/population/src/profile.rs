//! `get_person`: flat profiles of `attribute → value`, contact fields numbered.

use std::borrow::Cow;

use icp_contract::{
    DOMAINS, GetPersonRequest, GetPersonResponse, MAX_PERSON_IDS_PER_CALL, PersonId, Profile,
    ProfileMetadata, ProviderError,
};

use crate::columns::{ContactInputs, Population};
use crate::contacts::{MAX_EMAILS, MAX_MAIDS, MAX_PHONES, Wanted};
use crate::parallel::parallelism;
use crate::row_map::RowMap;

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

/// One field a profile may show.
#[derive(Debug, Clone, Copy)]
enum Field {
    Trait(usize),
    FirstName,
    LastName,
    Email(usize),
    Phone(usize),
    Address,
    Maid(usize),
}

const EMAIL_KEYS: [&str; MAX_EMAILS] = ["email1", "email2", "email3"];
const PHONE_KEYS: [&str; MAX_PHONES] = ["phone1", "phone2"];
const MAID_KEYS: [&str; MAX_MAIDS] = ["maid1", "maid2"];

/// The fields a request wants, in the order of their names, so that each profile's map is
/// built from already-sorted pairs. Imported persons may have more numbered contact fields
/// than planned; those are added after the planned ones (and the map sorts them in).
struct Plan<'a> {
    fields: Vec<(&'a str, Field)>,
    contact: bool,
    emails: bool,
    phones: bool,
    maids: bool,
}

impl<'a> Plan<'a> {
    fn new(pop: &'a Population, domains: &DomainSet) -> Plan<'a> {
        let has = |d: &str| domains.has(d);
        let mut fields: Vec<(&str, Field)> = (0..pop.attrs.len())
            .filter(|&a| has(&pop.attrs[a].domain))
            .map(|a| (pop.attrs[a].name.as_str(), Field::Trait(a)))
            .collect();
        if has("name") {
            fields.push(("first_name", Field::FirstName));
            fields.push(("last_name", Field::LastName));
        }
        let (emails, phones, maids) = (has("email"), has("phone"), has("maid"));
        if emails {
            fields.extend(
                EMAIL_KEYS
                    .iter()
                    .enumerate()
                    .map(|(k, n)| (*n, Field::Email(k))),
            );
        }
        if phones {
            fields.extend(
                PHONE_KEYS
                    .iter()
                    .enumerate()
                    .map(|(k, n)| (*n, Field::Phone(k))),
            );
        }
        if has("address") {
            fields.push(("address1", Field::Address));
        }
        if maids {
            fields.extend(
                MAID_KEYS
                    .iter()
                    .enumerate()
                    .map(|(k, n)| (*n, Field::Maid(k))),
            );
        }
        // Stable: a trait named like a contact field stays before it, as the map expects.
        fields.sort_by(|a, b| a.0.cmp(b.0));
        let contact = ["name", "email", "phone", "address", "maid"]
            .iter()
            .any(|d| has(d));
        Plan {
            fields,
            contact,
            emails,
            phones,
            maids,
        }
    }
}

/// A contact list as owned strings to move out of (generated lists already are).
fn owned(list: Cow<'_, [String]>, wanted: bool) -> Vec<String> {
    if wanted {
        list.into_owned()
    } else {
        Vec::new()
    }
}

/// Numbered fields past the planned ones (imported persons only).
fn numbered_extra(
    out: &mut Vec<(String, String)>,
    prefix: &str,
    planned: usize,
    values: Vec<String>,
) {
    for (i, v) in values.into_iter().enumerate().skip(planned) {
        out.push((format!("{prefix}{}", i + 1), v));
    }
}

impl Population {
    fn profile(&self, id: PersonId, p: usize, plan: &Plan<'_>, inputs: ContactInputs) -> Profile {
        let mut map: Vec<(String, String)> = Vec::with_capacity(plan.fields.len());
        let contact = plan
            .contact
            .then(|| self.contact_parts_from(p, inputs, Wanted::ALL));
        let (mut first, mut last, mut address) = (None, None, None);
        let (mut emails, mut phones, mut maids) = (Vec::new(), Vec::new(), Vec::new());
        if let Some(c) = contact {
            first = c.first_name;
            last = c.last_name;
            address = c.address;
            emails = owned(c.emails, plan.emails);
            phones = owned(c.phones, plan.phones);
            maids = owned(c.maids, plan.maids);
        }
        let take = |list: &mut Vec<String>, k: usize| list.get_mut(k).map(std::mem::take);
        let row = p * self.attrs.len();
        for (name, field) in &plan.fields {
            let value = match *field {
                Field::Trait(a) => {
                    let code = self.codes.get(row + a);
                    if code == 0 {
                        continue;
                    }
                    self.attrs[a].values[usize::from(code) - 1].clone()
                }
                Field::FirstName => match first {
                    Some(f) => f.to_owned(),
                    None => continue,
                },
                Field::LastName => match last {
                    Some(l) => l.to_owned(),
                    None => continue,
                },
                Field::Email(k) => match take(&mut emails, k) {
                    Some(v) => v,
                    None => continue,
                },
                Field::Phone(k) => match take(&mut phones, k) {
                    Some(v) => v,
                    None => continue,
                },
                Field::Maid(k) => match take(&mut maids, k) {
                    Some(v) => v,
                    None => continue,
                },
                Field::Address => match address.take() {
                    Some(a) => a.into_owned(),
                    None => continue,
                },
            };
            map.push(((*name).to_owned(), value));
        }
        numbered_extra(&mut map, "email", MAX_EMAILS, emails);
        numbered_extra(&mut map, "phone", MAX_PHONES, phones);
        numbered_extra(&mut map, "maid", MAX_MAIDS, maids);
        Profile {
            person_id: id,
            metadata: ProfileMetadata {
                quality_score: Some(self.quality_of(p)),
                last_modified: None,
            },
            // Sorted already: the map's sort only confirms it.
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
        let plan = Plan::new(self, &domains);
        let mut seen = RowMap::with_capacity_and_hasher(req.person_ids.len(), Default::default());
        let wanted: Vec<(PersonId, usize)> = req
            .person_ids
            .iter()
            .filter_map(|id| self.index_of(*id).map(|p| (*id, p)))
            .filter(|(_, p)| seen.insert(*p, ()).is_none())
            .collect();
        let plan = &plan;
        // Blocks of persons: first every row and contact input is read (independent reads
        // whose cache misses overlap), then the profiles are built.
        let build = |items: &[(PersonId, usize)], out: &mut Vec<Profile>| {
            const BLOCK: usize = 64;
            for block in items.chunks(BLOCK) {
                let mut inputs = [ContactInputs::default(); BLOCK];
                for ((_, p), slot) in block.iter().zip(&mut inputs) {
                    self.touch_row(*p);
                    if plan.contact {
                        *slot = self.contact_inputs(*p);
                    }
                }
                out.extend(
                    block
                        .iter()
                        .zip(inputs)
                        .map(|((id, p), inputs)| self.profile(*id, *p, plan, inputs)),
                );
            }
        };
        // Profiles are independent: build them on every core (this thread included) when
        // there are enough.
        let threads = parallelism(wanted.len());
        let mut profiles = Vec::with_capacity(wanted.len());
        if threads <= 1 {
            build(&wanted, &mut profiles);
        } else {
            let per = wanted.len().div_ceil(threads);
            std::thread::scope(|s| {
                let mut shares = wanted.chunks(per);
                let first = shares.next().unwrap_or_default();
                let handles: Vec<_> = shares
                    .map(|c| {
                        s.spawn(move || {
                            let mut out = Vec::with_capacity(c.len());
                            build(c, &mut out);
                            out
                        })
                    })
                    .collect();
                build(first, &mut profiles);
                for h in handles {
                    profiles.extend(h.join().unwrap_or_default());
                }
            });
        }
        Ok(GetPersonResponse {
            profiles,
            tool_trace_id: None,
            workflow_id: req.workflow_id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use icp_contract::{DOMAINS, GetPersonRequest};

    use crate::columns::Population;
    use crate::generate::GeneratorConfig;

    /// A profile map as the first version built it: every field pushed in domain order, then
    /// one collect (sorting, later duplicates winning).
    fn reference(pop: &Population, p: usize, domains: &[&str]) -> BTreeMap<String, String> {
        let has = |d: &str| domains.contains(&d);
        let mut pairs = Vec::new();
        for (a, attr) in pop.attrs.iter().enumerate() {
            let code = pop.code(p, a);
            if has(&attr.domain) && code != 0 {
                pairs.push((
                    attr.name.clone(),
                    attr.values[usize::from(code) - 1].clone(),
                ));
            }
        }
        let c = pop.contact(p);
        let numbered = |pairs: &mut Vec<(String, String)>, prefix: &str, v: Vec<String>| {
            for (i, v) in v.into_iter().enumerate() {
                pairs.push((format!("{prefix}{}", i + 1), v));
            }
        };
        if has("name") {
            pairs.extend(c.first_name.map(|f| ("first_name".to_owned(), f)));
            pairs.extend(c.last_name.map(|l| ("last_name".to_owned(), l)));
        }
        if has("email") {
            numbered(&mut pairs, "email", c.emails);
        }
        if has("phone") {
            numbered(&mut pairs, "phone", c.phones);
        }
        if has("address") {
            pairs.extend(c.address.map(|a| ("address1".to_owned(), a)));
        }
        if has("maid") {
            numbered(&mut pairs, "maid", c.maids);
        }
        pairs.into_iter().collect()
    }

    fn check(pop: &Population, domains: &[&str]) {
        let ids: Vec<_> = (0..pop.len()).map(|p| pop.person_id(p)).collect();
        for chunk in ids.chunks(1000) {
            let profiles = pop
                .get_person(&GetPersonRequest {
                    person_ids: chunk.to_vec(),
                    domains: Some(domains.iter().map(|d| (*d).to_owned()).collect()),
                    format: None,
                    workflow_id: None,
                })
                .unwrap()
                .profiles;
            assert_eq!(profiles.len(), chunk.len());
            for profile in profiles {
                let p = pop.index_of(profile.person_id).unwrap();
                assert_eq!(profile.domains, reference(pop, p, domains), "person {p}");
            }
        }
    }

    #[test]
    fn profiles_equal_the_straightforward_build() {
        let generated = Population::generate(&GeneratorConfig {
            persons: 1_500,
            seed: 21,
        });
        let csv = "\
email,email2,email3,email4,email5,phone,phone2,phone3,maid,maid2,maid3,first_name,last_name,address,gender,email_opt_in,zz
a@x.com,b@x.com,c@x.com,d@x.com,e@x.com,5125550101,5125550102,5125550103,m1,m2,m3,Ann,Lee,1 Main St,Female,Yes,z
f@x.com,,,,,,,,,,,,Bo,,Male,,
,,,,,,,,,,,,,,,No,y
";
        let imported = Population::from_csv_reader(csv.as_bytes()).unwrap();
        let first = reference(&imported, 0, &DOMAINS);
        for key in ["email5", "phone3", "maid3", "first_name", "address1", "zz"] {
            assert!(first.contains_key(key), "{key} in {first:?}");
        }
        for pop in [&generated, &imported] {
            check(pop, &DOMAINS);
            check(pop, &["email", "maid", "demographic"]);
            check(pop, &["name", "phone", "interest", "address"]);
            check(pop, &["content", "political"]);
        }
    }
}
