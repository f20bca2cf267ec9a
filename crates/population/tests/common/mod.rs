//! Helpers the crate's test files share.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::collections::BTreeMap;

use icp_contract::{
    GetPersonRequest, IdentifierGroup, PersonId, ProviderError, ResolveRequest, ResolveResponse,
};
use icp_population::{GeneratorConfig, Population};

/// A population of `persons` generated from `seed`.
pub fn generated(persons: usize, seed: u64) -> Population {
    Population::generate(&GeneratorConfig { persons, seed })
}

/// A person's whole profile (every domain), as `get_person` answers it.
pub fn profile(p: &Population, id: PersonId) -> BTreeMap<String, String> {
    p.get_person(&GetPersonRequest {
        person_ids: vec![id],
        domains: None,
        format: None,
        workflow_id: None,
    })
    .unwrap()
    .profiles
    .remove(0)
    .domains
}

/// `resolve_identities` over these groups, without a format or a workflow.
pub fn resolve(
    p: &Population,
    groups: Vec<IdentifierGroup>,
) -> Result<ResolveResponse, ProviderError> {
    p.resolve_identities(&ResolveRequest {
        multi_identifiers: groups,
        format: None,
        workflow_id: None,
    })
}
