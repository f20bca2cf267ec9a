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

/// [`plan_resolve_calls`] with the first call cut down to at most `first_call` values (the rest
/// of it becomes the second call). A job's first call goes alone, since it opens the workflow
/// every later call carries: a small one opens it sooner, and the large ones then go side by
/// side. Deterministic, as the plan it cuts.
pub fn plan_resolve_calls_opening_small(
    groups: &[IdentifierGroup],
    max_values_per_call: usize,
    first_call: usize,
) -> Vec<Vec<IdentifierGroup>> {
    let mut calls = plan_resolve_calls(groups, max_values_per_call);
    let first_call = first_call.max(1);
    let Some(first) = calls.first_mut() else {
        return calls;
    };
    if count_values(first) <= first_call {
        return calls;
    }
    let mut opening = Vec::new();
    let mut size = 0;
    while size < first_call {
        let group = &mut first[0];
        let take = group.values.len().min(first_call - size);
        let rest = group.values.split_off(take);
        size += take;
        if rest.is_empty() {
            opening.push(first.remove(0));
        } else {
            opening.push(IdentifierGroup {
                id_type: group.id_type,
                hash_type: group.hash_type,
                values: std::mem::replace(&mut group.values, rest),
            });
        }
    }
    calls.insert(0, opening);
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

    #[test]
    fn the_opening_call_is_cut_small_and_nothing_is_lost() {
        let groups = vec![group(IdType::Email, 100_000)];
        let chunks = plan_resolve_calls_opening_small(&groups, 30_000, 3_000);
        assert_eq!(
            chunks.iter().map(|c| count_values(c)).collect::<Vec<_>>(),
            vec![3_000, 27_000, 30_000, 30_000, 10_000]
        );
        let flat = |chunks: Vec<Vec<IdentifierGroup>>| -> Vec<String> {
            chunks
                .into_iter()
                .flatten()
                .flat_map(|g| g.values)
                .collect()
        };
        assert_eq!(flat(chunks), groups[0].values);
        // Across groups: the opening call takes whole groups, then part of the next.
        let groups = vec![group(IdType::Email, 2), group(IdType::Phone, 5)];
        let chunks = plan_resolve_calls_opening_small(&groups, 100, 4);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].len(), 2);
        assert_eq!(chunks[0][1].id_type, IdType::Phone);
        assert_eq!(chunks[0][1].values.len(), 2);
        assert_eq!(chunks[1][0].values.len(), 3);
        assert_eq!(
            flat(chunks),
            [groups[0].values.clone(), groups[1].values.clone()].concat()
        );
        // A first call already small enough stays as it is.
        let small = plan_resolve_calls_opening_small(&groups, 100, 10);
        assert_eq!(small, plan_resolve_calls(&groups, 100));
    }
}
