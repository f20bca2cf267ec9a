//! Splitting requests to fit the upstream's per-call limits and merging the answers back.

use std::collections::HashMap;

use icp_contract::{IdentifierGroup, Identity, PersonId, ResolveResponse, ResolveStats};

/// The groups of each `resolve_identities` call, within the upstream's limits only (the
/// contract's [`MAX_RESOLVE_GROUPS_PER_CALL`](icp_contract::MAX_RESOLVE_GROUPS_PER_CALL) and
/// [`MAX_RESOLVE_VALUES_PER_GROUP`](icp_contract::MAX_RESOLVE_VALUES_PER_GROUP)).
pub fn plan_resolve_calls(groups: &[IdentifierGroup]) -> Vec<Vec<IdentifierGroup>> {
    icp_contract::plan_resolve_calls(groups, usize::MAX)
}

/// One answer from the answers of several calls, in call order. A person found by several calls
/// (an email in one, an address in another) becomes one identity with every match; `requested`
/// and `resolved` add up, as each call counts the identifiers it was given.
pub fn merge_resolve(parts: Vec<ResolveResponse>) -> ResolveResponse {
    let mut identities: Vec<Identity> = Vec::new();
    let mut index: HashMap<PersonId, usize> = HashMap::new();
    let (mut requested, mut resolved) = (0u64, 0u64);
    let mut tool_trace_id = None;
    let mut workflow_id = None;
    for part in parts {
        requested += part.stats.requested;
        resolved += part.stats.resolved;
        tool_trace_id = tool_trace_id.or(part.tool_trace_id);
        workflow_id = workflow_id.or(part.workflow_id);
        for id in part.identities {
            match index.get(&id.person_id) {
                Some(&i) => merge_identity(&mut identities[i], id),
                None => {
                    index.insert(id.person_id, identities.len());
                    identities.push(id);
                }
            }
        }
    }
    let rate = if requested == 0 {
        0.0
    } else {
        resolved as f64 / requested as f64
    };
    ResolveResponse {
        identities,
        stats: ResolveStats {
            requested,
            resolved,
            rate,
        },
        export: None,
        tool_trace_id,
        workflow_id,
        matched_by_criterion: Default::default(),
    }
}

/// A person found by several calls: every match once, every identifier once, and the overall
/// score recomputed as `1 − Π(1 − quality)` over all matches (independent evidence; the embedded
/// population's rule, so a split request scores as the whole one would).
fn merge_identity(into: &mut Identity, from: Identity) {
    for m in from.matches {
        let seen = into.matches.iter().any(|x| {
            x.criterion_type == m.criterion_type && x.criterion_value == m.criterion_value
        });
        if !seen {
            into.matches.push(m);
        }
    }
    for (kind, values) in from.identifiers {
        let known = into.identifiers.entry(kind).or_default();
        for v in values {
            if !known.contains(&v) {
                known.push(v);
            }
        }
    }
    let miss: f64 = into.matches.iter().map(|m| 1.0 - m.quality_score).product();
    let combined = ((1.0 - miss) * 10_000.0).round() / 10_000.0;
    into.overall_quality_score = into
        .overall_quality_score
        .max(from.overall_quality_score)
        .max(combined);
}

#[cfg(test)]
mod tests {
    use super::*;
    use icp_contract::{
        HashType, IdType, IdentityMatch, MAX_RESOLVE_GROUPS_PER_CALL, MAX_RESOLVE_VALUES_PER_GROUP,
    };

    fn group(id_type: IdType, n: usize) -> IdentifierGroup {
        IdentifierGroup {
            id_type,
            hash_type: HashType::Plaintext,
            values: (0..n).map(|i| format!("v{i}")).collect(),
        }
    }

    #[test]
    fn calls_respect_group_and_value_limits_and_isolate_addresses() {
        let groups = vec![
            group(IdType::Email, 160_001),
            group(IdType::Phone, 10),
            group(IdType::Address, 7_000),
        ];
        let calls = plan_resolve_calls(&groups);
        // 54 email groups + 1 phone group = 55 regular groups → 2 calls; 3 address groups → 1.
        assert_eq!(calls.len(), 3);
        for call in &calls {
            assert!(call.len() <= MAX_RESOLVE_GROUPS_PER_CALL);
            assert!(
                call.iter()
                    .all(|g| g.values.len() <= MAX_RESOLVE_VALUES_PER_GROUP)
            );
            let addresses = call.iter().filter(|g| g.id_type == IdType::Address).count();
            assert!(addresses == 0 || addresses == call.len());
        }
        let total: usize = calls.iter().flatten().map(|g| g.values.len()).sum();
        assert_eq!(total, 160_001 + 10 + 7_000);
    }

    #[test]
    fn the_same_person_from_two_calls_merges() {
        let ident = |kind: &str, v: &str, q: f64| Identity {
            person_id: PersonId(9),
            overall_quality_score: q,
            matches: vec![IdentityMatch {
                criterion_type: format!("{kind}_plaintext"),
                criterion_value: v.into(),
                quality_score: q,
            }],
            identifiers: [(kind.to_string(), vec![v.to_string()])].into(),
        };
        let part = |i: Identity| ResolveResponse {
            identities: vec![i],
            stats: ResolveStats {
                requested: 1,
                resolved: 1,
                rate: 1.0,
            },
            export: None,
            tool_trace_id: None,
            workflow_id: Some("w".into()),
            matched_by_criterion: Default::default(),
        };
        let merged = merge_resolve(vec![
            part(ident("email", "a@x.io", 0.8)),
            part(ident("address", "1 Main St", 0.9)),
        ]);
        assert_eq!(merged.identities.len(), 1);
        let one = &merged.identities[0];
        assert_eq!(one.matches.len(), 2);
        assert_eq!(one.overall_quality_score, 0.98, "1 − 0.2 × 0.1");
        assert_eq!(one.identifiers.len(), 2);
        assert_eq!(merged.stats.requested, 2);
        assert_eq!(merged.workflow_id.as_deref(), Some("w"));
    }
}
