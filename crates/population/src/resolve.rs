//! `resolve_identities`: identifiers (plain or hashed) to persons.
//!
//! Identifiers are normalised before matching and before hashing (`icp_contract`'s normal
//! forms); a hashed identifier is the hex digest of that normal form. Values are looked up in
//! the identifier index of their type and hashing (`id_index`), and every candidate is confirmed
//! against the person's own identifier.

use std::collections::BTreeMap;

use icp_contract::{
    HashType, IdType, Identity, IdentityMatch, MAX_RESOLVE_GROUPS_PER_CALL,
    MAX_RESOLVE_VALUES_PER_GROUP, ProviderError, ResolveRequest, ResolveResponse, ResolveStats,
    digest,
};

use crate::columns::{ContactInputs, Population};
use crate::contacts::{ContactParts, Wanted, round4};
use crate::id_index::{IdIndex, Probe, own_identifier, probe};
use crate::parallel::parallelism;
use crate::row_map::RowMap;

/// How much a match on this identifier says: primary identifiers more than later ones.
fn slot_quality(id_type: IdType, slot: usize) -> f64 {
    let base: &[f64] = match id_type {
        IdType::Email => &[0.95, 0.88, 0.8],
        IdType::Phone => &[0.9, 0.82],
        IdType::Address => &[0.85],
        IdType::Maid => &[0.9, 0.85],
    };
    base[slot.min(base.len() - 1)]
}

/// A person whose identifier has the key of a submitted value: to be confirmed.
struct Candidate {
    /// The value's position in its block.
    item: usize,
    person: usize,
    slot: usize,
    inputs: ContactInputs,
}

/// One confirmed holder of a submitted identifier.
struct Hit<'p> {
    person: usize,
    slot: usize,
    contact: ContactParts<'p>,
}

/// What one thread makes of its share of a request's identifiers: one identity per person, in
/// order of first appearance, each with its matches in request order.
#[derive(Default)]
struct Resolved {
    identities: Vec<Identity>,
    /// The row of each identity.
    persons: Vec<usize>,
    /// Position in `identities` of each row.
    at: RowMap<usize>,
    /// Submitted values that matched someone.
    resolved: u64,
}

impl Resolved {
    /// Adds a match to the identity at `pos` unless it already has it.
    fn add_match(&mut self, pos: usize, criterion: &str, value: &str, quality: f64) {
        let matches = &mut self.identities[pos].matches;
        if !matches
            .iter()
            .any(|m| m.criterion_type == criterion && m.criterion_value == value)
        {
            matches.push(IdentityMatch {
                criterion_type: criterion.to_owned(),
                criterion_value: value.to_owned(),
                quality_score: quality,
            });
        }
    }

    /// Appends a later share of the same request.
    fn merge(&mut self, later: Resolved) {
        self.resolved += later.resolved;
        for (identity, person) in later.identities.into_iter().zip(later.persons) {
            match self.at.get(&person) {
                Some(&pos) => {
                    for m in identity.matches {
                        let matches = &mut self.identities[pos].matches;
                        if !matches.iter().any(|x| {
                            x.criterion_type == m.criterion_type
                                && x.criterion_value == m.criterion_value
                        }) {
                            matches.push(m);
                        }
                    }
                }
                None => {
                    self.at.insert(person, self.identities.len());
                    self.identities.push(identity);
                    self.persons.push(person);
                }
            }
        }
    }
}

impl Population {
    fn id_index(&self, id_type: IdType, hash: HashType) -> &IdIndex {
        self.id_indexes
            .get_or_build(id_type, hash, self.len(), |p| self.contact_parts(p))
    }

    /// Builds the identifier index for a type and hashing now rather than on the first call.
    pub fn warm_identifier_index(&self, id_type: IdType, hash: HashType) {
        self.id_index(id_type, hash);
    }

    /// Resolves one share of a request's identifiers: matches, identities and their known
    /// identifiers, all built here so that threads do the work.
    ///
    /// Values go in blocks, each in phases: normalise and hash every value, then look every key
    /// up, then load every candidate's contact inputs, then confirm and build. Each phase's
    /// memory reads are independent of one another, so the processor overlaps their cache
    /// misses instead of waiting for each in turn.
    fn resolve_share(
        &self,
        req: &ResolveRequest,
        indexes: &[&IdIndex],
        criteria: &[String],
        items: &[(usize, &str)],
    ) -> Resolved {
        const BLOCK: usize = 64;
        let mut out = Resolved {
            identities: Vec::with_capacity(items.len()),
            persons: Vec::with_capacity(items.len()),
            at: RowMap::with_capacity_and_hasher(items.len(), Default::default()),
            resolved: 0,
        };
        // The block's normal forms (plaintext values), one after another.
        let mut normals = String::new();
        let mut own_buf = String::new();
        let mut candidates: Vec<Candidate> = Vec::new();
        let mut hits: Vec<Hit<'_>> = Vec::new();
        for block in items.chunks(BLOCK) {
            normals.clear();
            let mut probes = [None; BLOCK];
            for ((g, value), slot) in block.iter().zip(&mut probes) {
                let group = &req.multi_identifiers[*g];
                *slot = probe(group.id_type, group.hash_type, value, &mut normals);
            }
            let mut ranges = [(0u32, 0u32); BLOCK];
            for (i, (g, _)) in block.iter().enumerate() {
                if let Some((key, _)) = probes[i] {
                    let r = indexes[*g].range(key);
                    ranges[i] = (r.start as u32, r.end as u32);
                }
            }
            candidates.clear();
            for (i, (g, _)) in block.iter().enumerate() {
                for at in ranges[i].0..ranges[i].1 {
                    let (person, slot) = indexes[*g].entry(at as usize);
                    candidates.push(Candidate {
                        item: i,
                        person,
                        slot,
                        inputs: ContactInputs::default(),
                    });
                }
            }
            for c in &mut candidates {
                c.inputs = self.contact_inputs(c.person);
            }

            let mut next = candidates.iter().peekable();
            for (i, (g, value)) in block.iter().enumerate() {
                let group = &req.multi_identifiers[*g];
                let (id_type, hash) = (group.id_type, group.hash_type);
                hits.clear();
                while let Some(c) = next.next_if(|c| c.item == i) {
                    let Some((_, probe)) = &probes[i] else {
                        continue;
                    };
                    let contact = self.contact_parts_from(c.person, c.inputs, Wanted::ALL);
                    // Confirm against the person's own identifier, so a key collision never
                    // matches.
                    let confirmed = own_identifier(&contact, id_type, c.slot, &mut own_buf)
                        .is_some_and(|own| match probe {
                            Probe::Plain(from, to) => own == &normals[*from..*to],
                            Probe::Digest(d) => digest(hash, own) == *d,
                        });
                    if confirmed {
                        hits.push(Hit {
                            person: c.person,
                            slot: c.slot,
                            contact,
                        });
                    }
                }
                if hits.is_empty() {
                    continue;
                }
                out.resolved += 1;
                // An identifier several people share (a household's address) says less about
                // each.
                let share = hits.len() as f64;
                for hit in hits.drain(..) {
                    let q = round4(
                        slot_quality(id_type, hit.slot)
                            * (0.85 + 0.15 * self.quality_of(hit.person))
                            / share,
                    );
                    match out.at.get(&hit.person) {
                        Some(&pos) => out.add_match(pos, &criteria[*g], value, q),
                        None => {
                            out.at.insert(hit.person, out.identities.len());
                            out.persons.push(hit.person);
                            out.identities.push(Identity {
                                person_id: self.person_id(hit.person),
                                overall_quality_score: 0.0,
                                matches: vec![IdentityMatch {
                                    criterion_type: criteria[*g].clone(),
                                    criterion_value: (*value).to_owned(),
                                    quality_score: q,
                                }],
                                identifiers: known_identifiers(hit.contact),
                            });
                        }
                    }
                }
            }
        }
        out
    }

    /// Resolves identifiers to persons; one identity per person, with every submitted value
    /// that led to them.
    pub fn resolve_identities(
        &self,
        req: &ResolveRequest,
    ) -> Result<ResolveResponse, ProviderError> {
        if req.multi_identifiers.len() > MAX_RESOLVE_GROUPS_PER_CALL {
            return Err(ProviderError::validation(format!(
                "multi_identifiers holds {} groups; at most {MAX_RESOLVE_GROUPS_PER_CALL} a call",
                req.multi_identifiers.len()
            )));
        }
        for (g, group) in req.multi_identifiers.iter().enumerate() {
            if group.values.len() > MAX_RESOLVE_VALUES_PER_GROUP {
                return Err(ProviderError::validation(format!(
                    "multi_identifiers[{g}].values holds {} values; at most {MAX_RESOLVE_VALUES_PER_GROUP} a group",
                    group.values.len()
                )));
            }
        }
        // Look-ups (and regenerating contact data) are independent: spread them over threads
        // (this one included), each building whole identities for its contiguous share, then
        // merge the shares in request order.
        let work: Vec<(usize, &str)> = req
            .multi_identifiers
            .iter()
            .enumerate()
            .flat_map(|(g, group)| group.values.iter().map(move |v| (g, v.as_str())))
            .collect();
        let indexes: Vec<&IdIndex> = req
            .multi_identifiers
            .iter()
            .map(|g| self.id_index(g.id_type, g.hash_type))
            .collect();
        let criteria: Vec<String> = req
            .multi_identifiers
            .iter()
            .map(|g| format!("{}_{}", g.id_type.as_str(), g.hash_type.as_str()))
            .collect();
        let (indexes, criteria) = (&indexes[..], &criteria[..]);
        let threads = parallelism(work.len());
        let mut all = if threads <= 1 {
            self.resolve_share(req, indexes, criteria, &work)
        } else {
            let per = work.len().div_ceil(threads);
            std::thread::scope(|s| {
                let mut shares = work.chunks(per);
                let first = shares.next().unwrap_or_default();
                let handles: Vec<_> = shares
                    .map(|c| s.spawn(move || self.resolve_share(req, indexes, criteria, c)))
                    .collect();
                let mut all = self.resolve_share(req, indexes, criteria, first);
                for h in handles {
                    all.merge(h.join().unwrap_or_default());
                }
                all
            })
        };
        for identity in &mut all.identities {
            let miss: f64 = identity
                .matches
                .iter()
                .map(|m| 1.0 - m.quality_score)
                .product();
            identity.overall_quality_score = round4(1.0 - miss);
        }
        let requested = work.len() as u64;
        let resolved = all.resolved;
        Ok(ResolveResponse {
            identities: all.identities,
            stats: ResolveStats {
                requested,
                resolved,
                rate: if requested == 0 {
                    0.0
                } else {
                    round4(resolved as f64 / requested as f64)
                },
            },
            export: None,
            tool_trace_id: None,
            workflow_id: req.workflow_id.clone(),
            matched_by_criterion: Default::default(),
        })
    }
}

/// A person's identifiers by type, as `resolve_identities` reports them (keys in map order).
fn known_identifiers(c: ContactParts<'_>) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    if let Some(a) = c.address {
        out.insert("address".to_owned(), vec![a.into_owned()]);
    }
    for (t, v) in [("email", c.emails), ("maid", c.maids), ("phone", c.phones)] {
        if !v.is_empty() {
            out.insert(t.to_owned(), v.into_owned());
        }
    }
    out
}
