//! Splitting identifiers into `resolve_identities` calls that fit the upstream's limits.

use crate::{IdType, IdentifierGroup, MAX_RESOLVE_GROUPS_PER_CALL, MAX_RESOLVE_VALUES_PER_GROUP};

/// The groups of each `resolve_identities` call: values cut into groups of at most
/// [`MAX_RESOLVE_VALUES_PER_GROUP`], at most [`MAX_RESOLVE_GROUPS_PER_CALL`] groups and at most
/// `max_values_per_call` values a call (`usize::MAX`: only the upstream's limits), addresses in
/// calls of their own (the upstream matches them on a separate, slower path). Values keep their
/// order. Deterministic, so a resumed job numbers its calls the same way.
pub fn plan_resolve_calls(
    groups: &[IdentifierGroup],
    max_values_per_call: usize,
) -> Vec<Vec<IdentifierGroup>> {
    let per_call = max_values_per_call.max(1);
    let (addresses, others): (Vec<&IdentifierGroup>, Vec<&IdentifierGroup>) =
        groups.iter().partition(|g| g.id_type == IdType::Address);
    let mut calls = Vec::new();
    for family in [others, addresses] {
        let mut current: Vec<IdentifierGroup> = Vec::new();
        let mut size = 0;
        for group in family {
            let mut rest: &[String] = &group.values;
            while !rest.is_empty() {
                if size == per_call || current.len() == MAX_RESOLVE_GROUPS_PER_CALL {
                    calls.push(std::mem::take(&mut current));
                    size = 0;
                }
                let take = rest
                    .len()
                    .min(MAX_RESOLVE_VALUES_PER_GROUP)
                    .min(per_call - size);
                let (part, tail) = rest.split_at(take);
                rest = tail;
                size += part.len();
                current.push(IdentifierGroup {
                    id_type: group.id_type,
                    hash_type: group.hash_type,
                    values: part.to_vec(),
                });
            }
        }
        if !current.is_empty() {
            calls.push(current);
        }
    }
    calls
}

/// Identifiers in a call's groups.
pub fn count_values(groups: &[IdentifierGroup]) -> usize {
    groups.iter().map(|g| g.values.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HashType;

    fn group(id_type: IdType, n: usize) -> IdentifierGroup {
        IdentifierGroup {
            id_type,
            hash_type: HashType::Plaintext,
            values: (0..n).map(|i| format!("v{i}")).collect(),
        }
    }

    fn plan(groups: Vec<IdentifierGroup>, per_call: usize) -> Vec<Vec<IdentifierGroup>> {
        plan_resolve_calls(&groups, per_call)
    }

    #[test]
    fn calls_respect_the_size_and_keep_addresses_apart() {
        let chunks = plan(
            vec![
                group(IdType::Email, 25),
                group(IdType::Address, 5),
                group(IdType::Phone, 3),
            ],
            10,
        );
        for c in &chunks {
            assert!(count_values(c) <= 10);
            let has_address = c.iter().any(|g| g.id_type == IdType::Address);
            assert!(!has_address || c.iter().all(|g| g.id_type == IdType::Address));
        }
        assert_eq!(chunks.iter().map(|c| count_values(c)).sum::<usize>(), 33);
    }

    #[test]
    fn big_calls_stay_within_the_upstream_limits() {
        // 100,000 emails in calls of 30,000: four calls of groups of at most 3,000.
        let chunks = plan(vec![group(IdType::Email, 100_000)], 30_000);
        assert_eq!(
            chunks.iter().map(|c| count_values(c)).collect::<Vec<_>>(),
            vec![30_000, 30_000, 30_000, 10_000]
        );
        assert!(
            chunks
                .iter()
                .flatten()
                .all(|g| g.values.len() <= MAX_RESOLVE_VALUES_PER_GROUP)
        );
        // Many small groups: never more than 50 groups in one call.
        let many: Vec<_> = (0..120).map(|_| group(IdType::Phone, 10)).collect();
        let chunks = plan(many, 1_000_000);
        assert!(
            chunks
                .iter()
                .all(|c| c.len() <= MAX_RESOLVE_GROUPS_PER_CALL)
        );
        assert_eq!(chunks.iter().map(|c| count_values(c)).sum::<usize>(), 1200);
        // Every value once, in its order, across the split.
        let flat: Vec<String> = plan(vec![group(IdType::Email, 7_000)], 5_000)
            .into_iter()
            .flatten()
            .flat_map(|g| g.values)
            .collect();
        assert_eq!(flat, group(IdType::Email, 7_000).values);
    }
}
