//! Exact frequent-itemset mining over dense row bitsets.
//!
//! Each frequent trait gets one bitset of `customers` bits. A depth-first walk (Eclat) extends a
//! prefix set by one trait at a time; the bitset of a set is the AND of its parent's and the new
//! trait's, and its count is the popcount. The last level (sets of `max_cluster_size`) only
//! counts, never stores. Roots are handed out to worker threads one at a time, and the results
//! are sorted afterwards, so the output does not depend on scheduling.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::analysis::CappedAttribute;
use crate::analyzer::Analyzer;
use crate::bitset;
use crate::config::MAX_CLUSTER_SIZE_LIMIT;
use crate::{Analysis, AnalysisConfig, AnalysisError, Item};

/// Bytes of extension bitsets compared per chunk at the last level: about half a core's L2.
const LEAF_CHUNK_BYTES: usize = 256 * 1024;

/// How many sets a worker records between updates of the shared budget counter.
const BUDGET_FLUSH: usize = 1024;

/// A frequent set of 3+ traits: positions in [`Mined::frequent`], ascending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SetRec {
    pub(crate) items: [u32; MAX_CLUSTER_SIZE_LIMIT],
    pub(crate) len: u8,
    pub(crate) count: u32,
}

impl SetRec {
    pub(crate) fn items(&self) -> &[u32] {
        &self.items[..self.len as usize]
    }
}

/// A frequent pair: positions in [`Mined::frequent`] (`a < b`) and its count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct PairRec {
    pub(crate) a: u32,
    pub(crate) b: u32,
    pub(crate) count: u32,
}

/// One distinct trait of the input with its exact count.
#[derive(Debug, Clone)]
pub(crate) struct TraitCount {
    pub(crate) attr: u32,
    pub(crate) value: Box<str>,
    pub(crate) count: u64,
}

/// One frequent itemset in plain terms: its traits (sorted by name, then value) and count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Itemset {
    pub items: Vec<Item>,
    pub count: u64,
}

/// Every frequent itemset of the input, with exact counts, and what the analysis needs to
/// summarise them.
pub struct Mined {
    pub(crate) config: AnalysisConfig,
    pub(crate) customers: u64,
    pub(crate) customers_without_traits: u64,
    pub(crate) requested_min_count: u64,
    pub(crate) min_count: u64,
    pub(crate) attr_names: Vec<Box<str>>,
    pub(crate) traits: Vec<TraitCount>,
    /// Trait numbers (into `traits`) of the frequent traits, in mining order.
    pub(crate) frequent: Vec<u32>,
    pub(crate) words: usize,
    /// One bitset of `words` words per frequent trait, in the order of `frequent`.
    pub(crate) bits: Vec<u64>,
    pub(crate) pairs: Vec<PairRec>,
    pub(crate) sets: Vec<SetRec>,
    pub(crate) capped: Vec<CappedAttribute>,
    pub(crate) excluded: Vec<String>,
    pub(crate) excluded_unlisted: u64,
}

impl std::fmt::Debug for Mined {
    // The bitsets run to megabytes: show their shape, not their bits.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mined")
            .field("customers", &self.customers)
            .field("min_count", &self.min_count)
            .field("distinct_traits", &self.traits.len())
            .field("frequent_traits", &self.frequent.len())
            .field("pairs", &self.pairs.len())
            .field("sets", &self.sets.len())
            .finish_non_exhaustive()
    }
}

impl Mined {
    /// The number of customers analysed.
    pub fn customers(&self) -> u64 {
        self.customers
    }

    /// The count threshold actually used (raised above the configured one only when the
    /// itemset budget was exceeded).
    pub fn min_count(&self) -> u64 {
        self.min_count
    }

    /// Every frequent itemset — single traits, pairs and sets of 3 up to `max_cluster_size` —
    /// in a deterministic order. Traits of capped attributes beyond the cap are not included.
    pub fn itemsets(&self) -> impl Iterator<Item = Itemset> + '_ {
        let singles = (0..self.frequent.len() as u32).map(|p| self.itemset(&[p], self.count_of(p)));
        let pairs = self
            .pairs
            .iter()
            .map(|pair| self.itemset(&[pair.a, pair.b], u64::from(pair.count)));
        let sets = self
            .sets
            .iter()
            .map(|set| self.itemset(set.items(), u64::from(set.count)));
        singles.chain(pairs).chain(sets)
    }

    /// Summarises the lattice into the report.
    pub fn analysis(&self) -> Analysis {
        Analysis::from_mined(self)
    }

    pub(crate) fn count_of(&self, position: u32) -> u64 {
        self.traits[self.frequent[position as usize] as usize].count
    }

    pub(crate) fn row(&self, position: u32) -> &[u64] {
        let start = position as usize * self.words;
        &self.bits[start..start + self.words]
    }

    pub(crate) fn item(&self, position: u32) -> Item {
        self.trait_item(self.frequent[position as usize])
    }

    pub(crate) fn trait_item(&self, number: u32) -> Item {
        let t = &self.traits[number as usize];
        Item::new(&*self.attr_names[t.attr as usize], &*t.value)
    }

    fn itemset(&self, positions: &[u32], count: u64) -> Itemset {
        let mut items: Vec<Item> = positions.iter().map(|&p| self.item(p)).collect();
        items.sort();
        Itemset { items, count }
    }
}

pub(crate) fn mine(analyzer: Analyzer) -> Result<Mined, AnalysisError> {
    let config = analyzer.config.clone();
    config.validate()?;
    if let Some(what) = analyzer.overflow {
        return Err(AnalysisError::TooLarge {
            message: what.to_owned(),
        });
    }
    let customers = analyzer.customers;
    if customers == 0 {
        return Err(AnalysisError::NoCustomers);
    }
    if customers == analyzer.customers_without_traits {
        return Err(AnalysisError::NoTraits { customers });
    }

    let requested_min_count = config.min_count(customers);
    let (eligible, capped) = apply_cap(&analyzer, config.max_values_per_attribute);

    // Frequent traits in mining order: ascending count, so the rare traits, whose extensions
    // fail fastest, root the widest subtrees (the usual Eclat ordering); ties by name and value
    // keep the order deterministic.
    let mut frequent: Vec<u32> = (0..analyzer.items.len() as u32)
        .filter(|&t| {
            eligible[t as usize]
                && analyzer.items[t as usize].rows.len() as u64 >= requested_min_count
        })
        .collect();
    frequent.sort_by(|&x, &y| {
        let (a, b) = (&analyzer.items[x as usize], &analyzer.items[y as usize]);
        a.rows
            .len()
            .cmp(&b.rows.len())
            .then_with(|| {
                analyzer.attributes[a.attr as usize]
                    .name
                    .cmp(&analyzer.attributes[b.attr as usize].name)
            })
            .then_with(|| a.value.cmp(&b.value))
    });

    let words = bitset::words_for(customers as usize);
    let mut bits = vec![0u64; frequent.len() * words];
    for (position, &t) in frequent.iter().enumerate() {
        let row = &mut bits[position * words..(position + 1) * words];
        for &r in &analyzer.items[t as usize].rows {
            bitset::set(row, r);
        }
    }

    // The sparse rows are no longer needed: keep only names, values and counts.
    let Analyzer {
        attributes,
        items,
        excluded,
        excluded_unlisted,
        customers_without_traits,
        ..
    } = analyzer;
    let traits: Vec<TraitCount> = items
        .into_iter()
        .map(|i| TraitCount {
            attr: i.attr,
            value: i.value,
            count: i.rows.len() as u64,
        })
        .collect();
    let attr_names: Vec<Box<str>> = attributes.into_iter().map(|a| a.name).collect();

    let mut min_count = requested_min_count;
    let (pairs, sets) = loop {
        let attrs: Vec<u32> = frequent.iter().map(|&t| traits[t as usize].attr).collect();
        let lattice = Lattice {
            bits: &bits,
            words,
            attrs: &attrs,
            min_count,
            max_size: config.max_cluster_size,
            budget: config.max_itemsets,
            pair_matrix_limit: PAIR_MATRIX_LIMIT,
        };
        match lattice.run(config.thread_count()) {
            Some(found) => break found,
            None => {
                // Too many sets at this support: raise it by half and drop the traits that
                // fall below, reusing their bitsets.
                min_count = min_count
                    .saturating_add(min_count.div_ceil(2))
                    .max(min_count + 1);
                let keep: Vec<bool> = frequent
                    .iter()
                    .map(|&t| traits[t as usize].count >= min_count)
                    .collect();
                let mut write = 0;
                for (read, &kept) in keep.iter().enumerate() {
                    if kept {
                        bits.copy_within(read * words..(read + 1) * words, write * words);
                        frequent[write] = frequent[read];
                        write += 1;
                    }
                }
                frequent.truncate(write);
                bits.truncate(write * words);
            }
        }
    };

    Ok(Mined {
        config,
        customers,
        customers_without_traits,
        requested_min_count,
        min_count,
        attr_names,
        traits,
        frequent,
        words,
        bits,
        pairs,
        sets,
        capped,
        excluded: excluded.into_iter().collect(),
        excluded_unlisted,
    })
}

/// Marks which traits may enter the pair and cluster stages: all of them, except that an
/// attribute with more than `cap` distinct values keeps only its `cap` most frequent ones.
fn apply_cap(analyzer: &Analyzer, cap: usize) -> (Vec<bool>, Vec<CappedAttribute>) {
    let mut eligible = vec![true; analyzer.items.len()];
    let mut capped = Vec::new();
    for attribute in &analyzer.attributes {
        if attribute.values.len() <= cap {
            continue;
        }
        let mut values: Vec<u32> = attribute.values.values().copied().collect();
        values.sort_by(|&x, &y| {
            let (a, b) = (&analyzer.items[x as usize], &analyzer.items[y as usize]);
            b.rows
                .len()
                .cmp(&a.rows.len())
                .then_with(|| a.value.cmp(&b.value))
        });
        for &dropped in &values[cap..] {
            eligible[dropped as usize] = false;
        }
        capped.push(CappedAttribute {
            name: attribute.name.to_string(),
            distinct_values: values.len() as u64,
            kept_values: cap as u64,
        });
    }
    capped.sort_by(|a, b| a.name.cmp(&b.name));
    (eligible, capped)
}

/// One mining run at a fixed support.
struct Lattice<'a> {
    bits: &'a [u64],
    words: usize,
    /// Attribute of each frequent trait, so two values of one attribute never join a set.
    attrs: &'a [u32],
    min_count: u64,
    max_size: usize,
    budget: usize,
    /// See [`PAIR_MATRIX_LIMIT`]; a field so tests can force the path without the matrix.
    pair_matrix_limit: usize,
}

/// What one worker found.
#[derive(Default)]
struct Found {
    pairs: Vec<PairRec>,
    sets: Vec<SetRec>,
    unflushed: usize,
}

/// What every step of one worker's walk reads.
struct Walk<'a> {
    shared: &'a Shared,
    frequent_pairs: &'a PairFilter,
}

/// Most entries of the frequent-pair matrix (one byte each) before the walk goes without it.
const PAIR_MATRIX_LIMIT: usize = 64 << 20;

/// Whether two frequent traits may appear together in a frequent set.
struct PairFilter {
    f: usize,
    /// `f × f`, true where the pair is frequent; empty when the matrix would be too large.
    frequent: Vec<bool>,
    /// Attribute of each trait, used only without the matrix.
    attrs: Vec<u32>,
}

impl PairFilter {
    fn candidate(&self, a: u32, b: u32) -> bool {
        if self.frequent.is_empty() {
            self.attrs[a as usize] != self.attrs[b as usize]
        } else {
            self.frequent[a as usize * self.f + b as usize]
        }
    }
}

/// State shared by the workers of one run.
struct Shared {
    next_root: AtomicUsize,
    recorded: AtomicUsize,
    over_budget: AtomicBool,
}

impl Lattice<'_> {
    fn row(&self, position: u32) -> &[u64] {
        let start = position as usize * self.words;
        &self.bits[start..start + self.words]
    }

    /// Mines every frequent pair and set; `None` when the sets of 3+ exceed the budget.
    fn run(&self, threads: usize) -> Option<(Vec<PairRec>, Vec<SetRec>)> {
        let roots = self.attrs.len();
        let frequent_pairs = self.frequent_pairs();
        let shared = Shared {
            next_root: AtomicUsize::new(0),
            recorded: AtomicUsize::new(0),
            over_budget: AtomicBool::new(false),
        };
        let threads = threads.clamp(1, roots.max(1));
        let found: Vec<Found> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| scope.spawn(|| self.worker(&shared, &frequent_pairs)))
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        if shared.over_budget.load(Ordering::Relaxed)
            || shared.recorded.load(Ordering::Relaxed) > self.budget
        {
            return None;
        }
        let mut pairs: Vec<PairRec> = Vec::new();
        let mut sets: Vec<SetRec> = Vec::new();
        for f in found {
            pairs.extend(f.pairs);
            sets.extend(f.sets);
        }
        pairs.sort_unstable();
        sets.sort_unstable_by(|x, y| x.items().cmp(y.items()));
        Some((pairs, sets))
    }

    /// Which pairs of frequent traits are frequent, as an `f × f` matrix. A set can only be
    /// frequent if each of its pairs is, so the walk checks this before spending an AND on a
    /// candidate; on dense data it skips a large share of the candidates. Past
    /// [`PAIR_MATRIX_LIMIT`] entries the matrix is not built and every pair of two attributes is
    /// a candidate: slower, still exact.
    fn frequent_pairs(&self) -> PairFilter {
        let f = self.attrs.len();
        if f.saturating_mul(f) > self.pair_matrix_limit {
            return PairFilter {
                f,
                frequent: Vec::new(),
                attrs: self.attrs.to_vec(),
            };
        }
        let mut frequent = vec![false; f * f];
        for a in 0..f {
            for b in a + 1..f {
                if self.attrs[a] != self.attrs[b]
                    && bitset::and_count(self.row(a as u32), self.row(b as u32)) >= self.min_count
                {
                    frequent[a * f + b] = true;
                    frequent[b * f + a] = true;
                }
            }
        }
        PairFilter {
            f,
            frequent,
            attrs: Vec::new(),
        }
    }

    fn worker(&self, shared: &Shared, frequent_pairs: &PairFilter) -> Found {
        let mut found = Found::default();
        // One scratch area per depth below the root; depth d holds the bitsets of the
        // extensions of the current node at that depth.
        let mut arenas: Vec<Vec<u64>> = vec![Vec::new(); self.max_size];
        let mut prefix: Vec<u32> = Vec::with_capacity(self.max_size);
        loop {
            let root = shared.next_root.fetch_add(1, Ordering::Relaxed);
            if root >= self.attrs.len() || shared.over_budget.load(Ordering::Relaxed) {
                break;
            }
            let root = root as u32;
            prefix.clear();
            prefix.push(root);
            let Some((arena, deeper)) = arenas.split_first_mut() else {
                break;
            };
            let root_bits = self.row(root);
            let candidates = self.attrs.len() - root as usize - 1;
            arena.resize(candidates * self.words, 0);
            let mut extensions: Vec<(u32, u32)> = Vec::new();
            let f = self.attrs.len();
            for other in root + 1..f as u32 {
                if !frequent_pairs.candidate(root, other) {
                    continue;
                }
                let slot = extensions.len() * self.words;
                let count = bitset::and_into(
                    root_bits,
                    self.row(other),
                    &mut arena[slot..slot + self.words],
                );
                if count >= self.min_count {
                    found.pairs.push(PairRec {
                        a: root,
                        b: other,
                        count: count as u32,
                    });
                    extensions.push((other, count as u32));
                }
            }
            let used = extensions.len() * self.words;
            self.expand(
                &mut prefix,
                &extensions,
                &arena[..used],
                deeper,
                &mut found,
                &Walk {
                    shared,
                    frequent_pairs,
                },
            );
        }
        shared
            .recorded
            .fetch_add(found.unflushed, Ordering::Relaxed);
        found
    }

    /// `prefix ∪ {e}` is frequent for every extension `e` (its bitset is the matching slice of
    /// `ext_bits`); records and descends into every frequent `prefix ∪ {e, f}`, `e < f`.
    fn expand(
        &self,
        prefix: &mut Vec<u32>,
        extensions: &[(u32, u32)],
        ext_bits: &[u64],
        arenas: &mut [Vec<u64>],
        found: &mut Found,
        walk: &Walk<'_>,
    ) {
        let shared = walk.shared;
        let size = prefix.len() + 2;
        if size > self.max_size || shared.over_budget.load(Ordering::Relaxed) {
            return;
        }
        if size == self.max_size {
            self.count_leaves(prefix, extensions, ext_bits, found, walk);
            return;
        }
        let w = self.words;
        let Some((arena, deeper)) = arenas.split_first_mut() else {
            return;
        };
        for (i, &(item, _)) in extensions.iter().enumerate() {
            let item_bits = &ext_bits[i * w..(i + 1) * w];
            prefix.push(item);
            let later = &extensions[i + 1..];
            {
                arena.resize(later.len() * w, 0);
                let mut children: Vec<(u32, u32)> = Vec::new();
                for (j, &(other, _)) in later.iter().enumerate() {
                    if !walk.frequent_pairs.candidate(item, other) {
                        continue;
                    }
                    let at = (i + 1 + j) * w;
                    let slot = children.len() * w;
                    let count = bitset::and_into(
                        item_bits,
                        &ext_bits[at..at + w],
                        &mut arena[slot..slot + w],
                    );
                    if count >= self.min_count {
                        self.record(prefix, other, count, found, shared);
                        children.push((other, count as u32));
                    }
                }
                if children.len() > 1 {
                    let used = children.len() * w;
                    self.expand(prefix, &children, &arena[..used], deeper, found, walk);
                }
            }
            prefix.pop();
            if shared.over_budget.load(Ordering::Relaxed) {
                return;
            }
        }
    }

    /// The last level: counts every `prefix ∪ {e, f}` without storing bitsets.
    ///
    /// Done chunk by chunk of rows so the slices of all extensions being compared stay in the
    /// core's L2 cache; pair by pair, each comparison would stream a whole bitset from L3 or
    /// memory, which is what bounds this level.
    fn count_leaves(
        &self,
        prefix: &mut Vec<u32>,
        extensions: &[(u32, u32)],
        ext_bits: &[u64],
        found: &mut Found,
        walk: &Walk<'_>,
    ) {
        let n = extensions.len();
        let w = self.words;
        let candidate = |i: usize, j: usize| {
            walk.frequent_pairs
                .candidate(extensions[i].0, extensions[j].0)
        };
        let chunk = (LEAF_CHUNK_BYTES / 8 / n.max(1)).clamp(64, w.max(64));
        let mut counts = vec![0u64; n * n];
        let mut start = 0;
        while start < w {
            let end = (start + chunk).min(w);
            for i in 0..n {
                let a = &ext_bits[i * w + start..i * w + end];
                for j in i + 1..n {
                    if candidate(i, j) {
                        counts[i * n + j] +=
                            bitset::and_count(a, &ext_bits[j * w + start..j * w + end]);
                    }
                }
            }
            start = end;
        }
        for i in 0..n {
            prefix.push(extensions[i].0);
            for j in i + 1..n {
                let count = counts[i * n + j];
                if candidate(i, j) && count >= self.min_count {
                    self.record(prefix, extensions[j].0, count, found, walk.shared);
                }
            }
            prefix.pop();
        }
    }

    fn record(&self, prefix: &[u32], last: u32, count: u64, found: &mut Found, shared: &Shared) {
        let mut items = [0u32; MAX_CLUSTER_SIZE_LIMIT];
        items[..prefix.len()].copy_from_slice(prefix);
        items[prefix.len()] = last;
        found.sets.push(SetRec {
            items,
            len: (prefix.len() + 1) as u8,
            count: count as u32,
        });
        found.unflushed += 1;
        if found.unflushed >= BUDGET_FLUSH {
            let total = shared
                .recorded
                .fetch_add(found.unflushed, Ordering::Relaxed)
                + found.unflushed;
            found.unflushed = 0;
            if total > self.budget {
                shared.over_budget.store(true, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_walk_without_the_pair_matrix_finds_the_same_sets() {
        let data = crate::synthetic::generate(&crate::synthetic::SyntheticConfig {
            customers: 2000,
            attributes: 20,
            ..Default::default()
        });
        let mut analyzer = Analyzer::new(AnalysisConfig::default());
        for c in 0..data.customers() {
            analyzer.add_profile(data.profile(c));
        }
        let mined = analyzer.mine().expect("mines");
        let attrs: Vec<u32> = mined
            .frequent
            .iter()
            .map(|&t| mined.traits[t as usize].attr)
            .collect();
        let lattice = |pair_matrix_limit| Lattice {
            bits: &mined.bits,
            words: mined.words,
            attrs: &attrs,
            min_count: mined.min_count,
            max_size: 5,
            budget: usize::MAX,
            pair_matrix_limit,
        };
        let with = lattice(PAIR_MATRIX_LIMIT).run(2).expect("within budget");
        let without = lattice(0).run(2).expect("within budget");
        assert!(!with.1.is_empty());
        assert_eq!(with, without);
        assert_eq!(with, (mined.pairs.clone(), mined.sets.clone()));
    }
}
