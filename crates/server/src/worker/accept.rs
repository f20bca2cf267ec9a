//! The persons the resolve stage accepts, in the batches the enrich stage asks for them.

use std::collections::HashMap;

use icp_contract::PersonId;

/// Resolve answers → the persons to enrich, batch by batch, while later answers are still to come.
///
/// Answers are taken in call order (one that arrives early waits for those before it), and a
/// person joins the order the first time an answer scores them at or above the quality bar. So
/// the batches are the same whatever order the answers arrive in, and the same again when a job
/// resumed after a crash forms them anew from its checkpoints: an enrich checkpoint names its
/// batch by number alone.
pub(super) struct Acceptor {
    min_quality: f64,
    batch_size: usize,
    /// The best quality score seen for every person matched so far.
    best: HashMap<PersonId, f64>,
    /// The persons accepted, in the order they are enriched.
    order: Vec<PersonId>,
    /// The call whose answer is taken next (calls are numbered from 1).
    next_seq: i64,
    /// How many of `order` went into batches.
    batched: usize,
}

impl Acceptor {
    pub(super) fn new(min_quality: f64, batch_size: usize) -> Self {
        Self {
            min_quality,
            batch_size: batch_size.max(1),
            best: HashMap::new(),
            order: Vec::new(),
            next_seq: 1,
            batched: 0,
        }
    }

    /// Batches of persons accepted before: the order a finished resolve stage checkpointed.
    pub(super) fn resumed(order: Vec<PersonId>, batch_size: usize) -> Self {
        Self {
            order,
            ..Self::new(f64::INFINITY, batch_size)
        }
    }

    /// Takes every answer that is next in call order: `answer(seq)` gives call `seq`'s persons
    /// and their quality scores once it has answered.
    pub(super) fn advance<'a>(&mut self, answer: impl Fn(i64) -> Option<&'a [(PersonId, f64)]>) {
        while let Some(persons) = answer(self.next_seq) {
            for &(id, quality) in persons {
                let best = self.best.entry(id).or_insert(f64::NEG_INFINITY);
                let was_accepted = *best >= self.min_quality;
                *best = best.max(quality);
                if !was_accepted && *best >= self.min_quality {
                    self.order.push(id);
                }
            }
            self.next_seq += 1;
        }
    }

    /// The persons accepted so far, in batch order.
    pub(super) fn order(&self) -> &[PersonId] {
        &self.order
    }

    /// Every person an answer matched, whatever their score.
    pub(super) fn matched(&self) -> impl Iterator<Item = PersonId> + '_ {
        self.best.keys().copied()
    }

    /// The next batch (numbered from 0): a full one, or with `last` (every answer taken) the
    /// rest.
    pub(super) fn next_batch(&mut self, last: bool) -> Option<(usize, &[PersonId])> {
        let left = self.order.len() - self.batched;
        if left == 0 || (left < self.batch_size && !last) {
            return None;
        }
        let start = self.batched;
        let end = start + left.min(self.batch_size);
        self.batched = end;
        Some((start / self.batch_size, &self.order[start..end]))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn batches(acceptor: &mut Acceptor, last: bool) -> Vec<(usize, Vec<u64>)> {
        std::iter::from_fn(|| {
            acceptor
                .next_batch(last)
                .map(|(i, ids)| (i, ids.iter().map(|p| p.0).collect()))
        })
        .collect()
    }

    /// A resolve answer's persons and scores, from plain numbers.
    fn answer(persons: &[(u64, f64)]) -> Vec<(PersonId, f64)> {
        persons.iter().map(|&(id, q)| (PersonId(id), q)).collect()
    }

    #[test]
    fn answers_are_taken_in_call_order_and_a_person_joins_once() {
        let mut answers: BTreeMap<i64, Vec<(PersonId, f64)>> = BTreeMap::new();
        let mut acceptor = Acceptor::new(0.5, 2);
        // Call 2 answers first: it waits for call 1.
        answers.insert(2, answer(&[(9, 0.9), (3, 0.9)]));
        acceptor.advance(|seq| answers.get(&seq).map(Vec::as_slice));
        assert!(acceptor.order().is_empty());
        // Person 4 is below the bar in call 1 and joins when call 3 scores them above it.
        answers.insert(1, answer(&[(5, 0.7), (4, 0.2), (9, 0.6)]));
        acceptor.advance(|seq| answers.get(&seq).map(Vec::as_slice));
        assert_eq!(batches(&mut acceptor, false), vec![(0, vec![5, 9])]);
        answers.insert(3, answer(&[(4, 0.8), (5, 0.1)]));
        acceptor.advance(|seq| answers.get(&seq).map(Vec::as_slice));
        assert_eq!(batches(&mut acceptor, false), vec![(1, vec![3, 4])]);
        assert_eq!(batches(&mut acceptor, true), vec![]);
        assert_eq!(acceptor.order(), [5, 9, 3, 4].map(PersonId));
        let mut matched: Vec<u64> = acceptor.matched().map(|p| p.0).collect();
        matched.sort_unstable();
        assert_eq!(matched, vec![3, 4, 5, 9]);
    }

    proptest! {
        /// Whatever order the answers arrive in, the batches are the same, together they hold
        /// every person whose best score clears the bar exactly once, and every batch but the
        /// last is full.
        #[test]
        fn batches_do_not_depend_on_arrival_order(
            (calls, arrival) in prop::collection::vec(
                prop::collection::vec((0u64..40, 0.0f64..1.0), 0..15), 1..6)
                .prop_flat_map(|calls| {
                    let seqs: Vec<i64> = (1..=calls.len() as i64).collect();
                    (Just(calls), Just(seqs).prop_shuffle())
                }),
            batch_size in 1usize..7,
        ) {
            let in_order = {
                let answers: BTreeMap<i64, Vec<(PersonId, f64)>> = calls.iter()
                    .enumerate().map(|(i, c)| (i as i64 + 1, answer(c))).collect();
                let mut a = Acceptor::new(0.5, batch_size);
                a.advance(|seq| answers.get(&seq).map(Vec::as_slice));
                batches(&mut a, true)
            };
            // The same answers, arriving one at a time in another order.
            let seqs = arrival;
            let mut answers = BTreeMap::new();
            let mut a = Acceptor::new(0.5, batch_size);
            let mut streamed = Vec::new();
            for (n, seq) in seqs.iter().enumerate() {
                answers.insert(*seq, answer(&calls[*seq as usize - 1]));
                a.advance(|s| answers.get(&s).map(Vec::as_slice));
                streamed.extend(batches(&mut a, n + 1 == seqs.len()));
            }
            prop_assert_eq!(&streamed, &in_order);
            let mut best: HashMap<u64, f64> = HashMap::new();
            for &(id, q) in calls.iter().flatten() {
                let e = best.entry(id).or_insert(q);
                *e = e.max(q);
            }
            let mut want: Vec<u64> = best.iter().filter(|(_, q)| **q >= 0.5).map(|(id, _)| *id).collect();
            want.sort_unstable();
            let mut got: Vec<u64> = in_order.iter().flat_map(|(_, ids)| ids.clone()).collect();
            got.sort_unstable();
            prop_assert_eq!(got, want);
            for (k, (i, ids)) in in_order.iter().enumerate() {
                prop_assert_eq!(*i, k);
                prop_assert!(ids.len() == batch_size || k + 1 == in_order.len());
            }
        }
    }
}
