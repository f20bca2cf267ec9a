//! Exact frequent-itemset mining over dense row bitsets.
//!
//! Each frequent trait gets one bitset of `customers` bits. A depth-first walk (Eclat) extends a
//! prefix set by one trait at a time; the bitset of a set is the AND of its parent's and the new
//! trait's, and its count is the popcount. Below a prefix, the bitsets of its extensions are
//! usually *projected* onto the prefix's own customers (`bitset::project_rows`): a prefix held
//! by 4 % of the customers then costs 4 % of the words per AND in its whole subtree, which on
//! dense data (tens of traits per customer) is where nearly all the ANDs are. The last level
//! (sets of `max_cluster_size`) only counts, never stores. Roots are handed out to worker
//! threads one at a time, and each root's output is kept apart and put in root order afterwards,
//! so the output does not depend on scheduling.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::bitset;
use crate::config::{AnalysisConfig, MAX_CLUSTER_SIZE_LIMIT};
use crate::error::AnalysisError;
use crate::item::Item;
use crate::report::CappedAttribute;
use crate::rows::TraitRows;

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
    /// Customers with some value of each attribute, in the order of `attr_names`.
    pub(crate) attr_known: Vec<u64>,
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
    /// Each customer's traits (numbers into `traits`, ascending), customer after customer:
    /// customer `r` has `customer_traits[customer_offsets[r]..customer_offsets[r + 1]]`. What
    /// the logistic lookalike fit reads (`lookalike_fit.rs`); every trait, frequent or not.
    pub(crate) customer_traits: Vec<u32>,
    pub(crate) customer_offsets: Vec<usize>,
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

pub(crate) fn mine(config: AnalysisConfig, input: TraitRows) -> Result<Mined, AnalysisError> {
    config.validate()?;
    if let Some(what) = input.overflow {
        return Err(AnalysisError::TooLarge {
            message: what.to_owned(),
        });
    }
    let customers = input.customers;
    if customers == 0 {
        return Err(AnalysisError::NoCustomers);
    }
    if customers == input.customers_without_traits {
        return Err(AnalysisError::NoTraits { customers });
    }

    let requested_min_count = config.min_count(customers);
    let (eligible, capped) = apply_cap(&input, config.max_values_per_attribute);

    // Frequent traits in mining order: ascending count, so the rare traits, whose extensions
    // fail fastest, root the widest subtrees (the usual Eclat ordering); ties by name and value
    // keep the order deterministic.
    let mut frequent: Vec<u32> = (0..input.items.len() as u32)
        .filter(|&t| {
            eligible[t as usize] && input.items[t as usize].rows.len() as u64 >= requested_min_count
        })
        .collect();
    frequent.sort_by(|&x, &y| {
        let (a, b) = (&input.items[x as usize], &input.items[y as usize]);
        a.rows
            .len()
            .cmp(&b.rows.len())
            .then_with(|| {
                input.attributes[a.attr as usize]
                    .name
                    .cmp(&input.attributes[b.attr as usize].name)
            })
            .then_with(|| a.value.cmp(&b.value))
    });

    let words = bitset::words_for(customers as usize);
    let mut bits = vec![0u64; frequent.len() * words];
    for (position, &t) in frequent.iter().enumerate() {
        let row = &mut bits[position * words..(position + 1) * words];
        for &r in &input.items[t as usize].rows {
            bitset::set(row, r);
        }
    }

    // Each customer's traits, from the traits' rows (a transpose, linear in the non-zeros).
    let mut customer_offsets = vec![0usize; customers as usize + 1];
    for item in &input.items {
        for &r in &item.rows {
            customer_offsets[r as usize + 1] += 1;
        }
    }
    for r in 0..customers as usize {
        customer_offsets[r + 1] += customer_offsets[r];
    }
    let mut customer_traits = vec![0u32; customer_offsets[customers as usize]];
    let mut next = customer_offsets.clone();
    for (t, item) in input.items.iter().enumerate() {
        for &r in &item.rows {
            customer_traits[next[r as usize]] = t as u32;
            next[r as usize] += 1;
        }
    }

    // The sparse rows are no longer needed: keep only names, values and counts.
    let TraitRows {
        attributes,
        items,
        excluded,
        excluded_unlisted,
        customers_without_traits,
        ..
    } = input;
    let traits: Vec<TraitCount> = items
        .into_iter()
        .map(|i| TraitCount {
            attr: i.attr,
            value: i.value,
            count: i.rows.len() as u64,
        })
        .collect();
    let attr_known: Vec<u64> = attributes.iter().map(|a| a.known).collect();
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
            project_gain: bitset::fast_projection().then_some(PROJECT_GAIN),
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
        attr_known,
        traits,
        frequent,
        words,
        bits,
        pairs,
        sets,
        capped,
        excluded: excluded.into_iter().collect(),
        excluded_unlisted,
        customer_traits,
        customer_offsets,
    })
}

/// Marks which traits may enter the pair and cluster stages: all of them, except that an
/// attribute with more than `cap` distinct values keeps only its `cap` most frequent ones.
fn apply_cap(input: &TraitRows, cap: usize) -> (Vec<bool>, Vec<CappedAttribute>) {
    let mut eligible = vec![true; input.items.len()];
    let mut capped = Vec::new();
    for attribute in &input.attributes {
        if attribute.values.len() <= cap {
            continue;
        }
        let mut values: Vec<u32> = attribute.values.values().copied().collect();
        values.sort_by(|&x, &y| {
            let (a, b) = (&input.items[x as usize], &input.items[y as usize]);
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
    /// When nodes project their extensions onto their own rows (see [`Lattice::child`] and
    /// [`PROJECT_GAIN`]); `None`: never. A field so tests can force every path.
    project_gain: Option<usize>,
}

/// What one worker found, and its scratch space.
#[derive(Default)]
struct Found {
    pairs: Vec<PairRec>,
    sets: Vec<SetRec>,
    unflushed: usize,
    /// Pair counts of the last level, reused from node to node.
    leaf_counts: Vec<u64>,
    /// For each root walked: the root, and where its pairs and sets start in `pairs` and `sets`.
    roots: Vec<(usize, usize, usize)>,
}

/// What every step of one worker's walk reads.
struct Walk<'a> {
    shared: &'a Shared,
    frequent_pairs: &'a PairFilter,
}

/// One extension of a node: `prefix ∪ {item}` is frequent with `count` customers, and its bitset
/// is number `at` of the node's bitsets.
#[derive(Debug, Clone, Copy)]
struct Ext {
    item: u32,
    count: u32,
    at: u32,
}

/// One depth of a worker's walk: the extensions of the current node there and their bitsets.
#[derive(Default)]
struct Level {
    exts: Vec<Ext>,
    bits: Vec<u64>,
    /// Scratch: the rows the extensions' bitsets come from.
    rows: Vec<u32>,
}

/// Most entries of the frequent-pair matrix (four bytes each) before the walk goes without it.
const PAIR_MATRIX_LIMIT: usize = 16 << 20;

/// A node projects its extensions onto its own rows when `(m - 1) · (w - w') ≥ PROJECT_GAIN · w`
/// (`m` extensions, `w` words now, `w'` words after). Projecting one bitset costs a few times an
/// AND of it; it pays back on the `m (m - 1) / 2` ANDs below, each shorter by `w - w'` words.
const PROJECT_GAIN: usize = 4;

/// Whether two frequent traits may appear together in a frequent set.
struct PairFilter {
    f: usize,
    /// `f × f` pair counts, 0 where the pair is not frequent (or is two values of one attribute);
    /// empty when the matrix would be too large.
    counts: Vec<u32>,
    /// Attribute of each trait, used only without the matrix.
    attrs: Vec<u32>,
}

impl PairFilter {
    fn candidate(&self, a: u32, b: u32) -> bool {
        if self.counts.is_empty() {
            self.attrs[a as usize] != self.attrs[b as usize]
        } else {
            self.counts[a as usize * self.f + b as usize] != 0
        }
    }

    /// The count of a frequent pair, when the matrix holds it.
    fn count(&self, a: u32, b: u32) -> Option<u64> {
        (!self.counts.is_empty()).then(|| u64::from(self.counts[a as usize * self.f + b as usize]))
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
        let threads = threads.clamp(1, roots.max(1));
        let frequent_pairs = self.frequent_pairs(threads);
        // The top of the walk: the empty prefix, whose extensions are all frequent traits.
        let top: Vec<Ext> = (0..roots as u32)
            .map(|p| Ext {
                item: p,
                count: bitset::count(self.row(p)) as u32,
                at: p,
            })
            .collect();
        let shared = Shared {
            next_root: AtomicUsize::new(0),
            recorded: AtomicUsize::new(0),
            over_budget: AtomicBool::new(false),
        };
        let walk = Walk {
            shared: &shared,
            frequent_pairs: &frequent_pairs,
        };
        let found: Vec<Found> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| scope.spawn(|| self.worker(&top, &walk)))
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
        // Each root's pairs and sets are in walk order, which does not depend on the threads;
        // putting the roots in order makes the whole output deterministic (pairs sorted).
        let mut segments: Vec<(usize, usize, usize, usize, usize, usize)> = Vec::new();
        for (w, f) in found.iter().enumerate() {
            for (k, &(root, pair_start, set_start)) in f.roots.iter().enumerate() {
                let (pair_end, set_end) = f
                    .roots
                    .get(k + 1)
                    .map_or((f.pairs.len(), f.sets.len()), |next| (next.1, next.2));
                segments.push((root, w, pair_start, pair_end, set_start, set_end));
            }
        }
        segments.sort_unstable();
        let mut pairs: Vec<PairRec> = Vec::with_capacity(found.iter().map(|f| f.pairs.len()).sum());
        let mut sets: Vec<SetRec> = Vec::with_capacity(found.iter().map(|f| f.sets.len()).sum());
        for (_, w, pair_start, pair_end, set_start, set_end) in segments {
            pairs.extend_from_slice(&found[w].pairs[pair_start..pair_end]);
            sets.extend_from_slice(&found[w].sets[set_start..set_end]);
        }
        Some((pairs, sets))
    }

    /// The count of every frequent pair of frequent traits, as an `f × f` matrix. A set can only
    /// be frequent if each of its pairs is, so the walk checks this before spending an AND on a
    /// candidate; on dense data it skips a large share of the candidates. Past
    /// [`PAIR_MATRIX_LIMIT`] entries the matrix is not built and every pair of two attributes is
    /// a candidate: slower, still exact. Rows of the matrix are shared out among the threads.
    fn frequent_pairs(&self, threads: usize) -> PairFilter {
        let f = self.attrs.len();
        if f.saturating_mul(f) > self.pair_matrix_limit {
            return PairFilter {
                f,
                counts: Vec::new(),
                attrs: self.attrs.to_vec(),
            };
        }
        let next = AtomicUsize::new(0);
        let rows: Vec<(usize, Vec<u32>)> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut mine = Vec::new();
                        loop {
                            let a = next.fetch_add(1, Ordering::Relaxed);
                            if a >= f {
                                break mine;
                            }
                            let row: Vec<u32> = (a + 1..f)
                                .map(|b| {
                                    if self.attrs[a] == self.attrs[b] {
                                        return 0;
                                    }
                                    let count =
                                        bitset::and_count(self.row(a as u32), self.row(b as u32));
                                    if count >= self.min_count {
                                        count as u32
                                    } else {
                                        0
                                    }
                                })
                                .collect();
                            mine.push((a, row));
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| {
                    w.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        let mut counts = vec![0u32; f * f];
        for (a, row) in rows {
            for (k, &count) in row.iter().enumerate() {
                let b = a + 1 + k;
                counts[a * f + b] = count;
                counts[b * f + a] = count;
            }
        }
        PairFilter {
            f,
            counts,
            attrs: Vec::new(),
        }
    }

    fn worker(&self, top: &[Ext], walk: &Walk<'_>) -> Found {
        let shared = walk.shared;
        let mut found = Found::default();
        // One level per depth below the top.
        let mut levels: Vec<Level> = (0..self.max_size).map(|_| Level::default()).collect();
        let mut prefix: Vec<u32> = Vec::with_capacity(self.max_size);
        loop {
            let root = shared.next_root.fetch_add(1, Ordering::Relaxed);
            if root >= top.len() || shared.over_budget.load(Ordering::Relaxed) {
                break;
            }
            found
                .roots
                .push((root, found.pairs.len(), found.sets.len()));
            self.child(
                &mut prefix,
                root,
                top,
                self.bits,
                self.words,
                &mut levels,
                &mut found,
                walk,
            );
        }
        shared
            .recorded
            .fetch_add(found.unflushed, Ordering::Relaxed);
        found
    }

    /// Walks the subtree of `prefix ∪ {exts[i]}`, where `prefix ∪ {e}` is frequent for every
    /// extension `e` of the node and `bits` holds their bitsets, `w` words each: records every
    /// frequent `prefix ∪ {exts[i], exts[j]}`, `i < j`, and descends.
    ///
    /// The extensions' bitsets need not span all customers: they are in the coordinates of some
    /// superset of the node's rows. Going down, a child either ANDs its extensions with its own
    /// bitset (same coordinates) or *projects* them onto its own rows (`bitset::project_rows`), so
    /// that everything below it costs `count / 64` words per AND rather than `w`. With 2 %
    /// support and a few percent of the customers per prefix, that makes the deep levels, where
    /// almost all ANDs are, some 10–50 times shorter.
    #[allow(clippy::too_many_arguments)]
    fn child(
        &self,
        prefix: &mut Vec<u32>,
        i: usize,
        exts: &[Ext],
        bits: &[u64],
        w: usize,
        levels: &mut [Level],
        found: &mut Found,
        walk: &Walk<'_>,
    ) {
        let shared = walk.shared;
        let Some((level, deeper)) = levels.split_first_mut() else {
            return;
        };
        if shared.over_budget.load(Ordering::Relaxed) {
            return;
        }
        let size = prefix.len() + 2;
        let own = exts[i];
        let own_bits = &bits[own.at as usize * w..(own.at as usize + 1) * w];
        prefix.push(own.item);
        level.exts.clear();
        for e in &exts[i + 1..] {
            if !walk.frequent_pairs.candidate(own.item, e.item) {
                continue;
            }
            let count = match walk.frequent_pairs.count(own.item, e.item) {
                Some(count) if size == 2 => count,
                _ => bitset::and_count(own_bits, &bits[e.at as usize * w..(e.at as usize + 1) * w]),
            };
            if count >= self.min_count {
                if size == 2 {
                    found.pairs.push(PairRec {
                        a: own.item,
                        b: e.item,
                        count: count as u32,
                    });
                } else {
                    self.record(prefix, e.item, count, found, shared);
                }
                level.exts.push(Ext {
                    item: e.item,
                    count: count as u32,
                    at: e.at,
                });
            }
        }
        let m = level.exts.len();
        if size >= self.max_size || m < 2 {
            prefix.pop();
            return;
        }
        let projected = bitset::words_for(own.count as usize);
        let project = self
            .project_gain
            .is_some_and(|gain| (m - 1) * (w - projected) >= gain * w);
        let cw = if project { projected } else { w };
        level.bits.resize(m * cw, 0);
        if project {
            level.rows.clear();
            level.rows.extend(level.exts.iter().map(|e| e.at));
            bitset::project_rows(own_bits, bits, &level.rows, &mut level.bits, cw);
        } else {
            for (k, e) in level.exts.iter().enumerate() {
                let src = &bits[e.at as usize * w..(e.at as usize + 1) * w];
                bitset::and_into(own_bits, src, &mut level.bits[k * cw..(k + 1) * cw]);
            }
        }
        for (k, e) in level.exts.iter_mut().enumerate() {
            e.at = k as u32;
        }
        if size + 1 == self.max_size {
            self.count_leaves(prefix, &level.exts, &level.bits, cw, found, walk);
        } else {
            for k in 0..m {
                self.child(prefix, k, &level.exts, &level.bits, cw, deeper, found, walk);
            }
        }
        prefix.pop();
    }

    /// The last level: counts every `prefix ∪ {e, f}` without storing bitsets.
    ///
    /// Done chunk by chunk of rows so the slices of all extensions being compared stay in the
    /// core's L2 cache; pair by pair, each comparison would stream a whole bitset from L3 or
    /// memory, which is what bounds this level.
    fn count_leaves(
        &self,
        prefix: &mut Vec<u32>,
        extensions: &[Ext],
        ext_bits: &[u64],
        w: usize,
        found: &mut Found,
        walk: &Walk<'_>,
    ) {
        let n = extensions.len();
        let candidate = |i: usize, j: usize| {
            walk.frequent_pairs
                .candidate(extensions[i].item, extensions[j].item)
        };
        let chunk = (LEAF_CHUNK_BYTES / 8 / n.max(1)).clamp(64, w.max(64));
        let mut counts = std::mem::take(&mut found.leaf_counts);
        counts.clear();
        counts.resize(n * n, 0);
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
            prefix.push(extensions[i].item);
            for j in i + 1..n {
                let count = counts[i * n + j];
                if candidate(i, j) && count >= self.min_count {
                    self.record(prefix, extensions[j].item, count, found, walk.shared);
                }
            }
            prefix.pop();
        }
        found.leaf_counts = counts;
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

    fn mined(customers: usize, attributes: usize, min_support: f64, max_size: usize) -> Mined {
        let data = crate::synthetic::generate(&crate::synthetic::SyntheticConfig {
            customers,
            attributes,
            ..Default::default()
        });
        let mut input = TraitRows::new(&[]);
        for c in 0..data.customers() {
            input.add_profile(data.profile(c));
        }
        let config = AnalysisConfig {
            min_support,
            max_cluster_size: max_size,
            ..AnalysisConfig::default()
        };
        mine(config, input).expect("mines")
    }

    /// Every path of the walk (with and without the pair matrix, projecting or not, one or two
    /// threads) finds the same sets, and every count equals the popcount of the AND of its rows.
    fn all_paths_agree(m: &Mined) {
        let attrs: Vec<u32> = m
            .frequent
            .iter()
            .map(|&t| m.traits[t as usize].attr)
            .collect();
        let lattice = |pair_matrix_limit, project_gain| Lattice {
            bits: &m.bits,
            words: m.words,
            attrs: &attrs,
            min_count: m.min_count,
            max_size: m.config.max_cluster_size,
            budget: usize::MAX,
            pair_matrix_limit,
            project_gain,
        };
        let reference = lattice(PAIR_MATRIX_LIMIT, None)
            .run(1)
            .expect("within budget");
        assert!(!reference.1.is_empty());
        // Gain 0 projects at every node, however small.
        for (limit, project, threads) in [
            (PAIR_MATRIX_LIMIT, Some(PROJECT_GAIN), 2),
            (PAIR_MATRIX_LIMIT, Some(PROJECT_GAIN), 1),
            (PAIR_MATRIX_LIMIT, Some(0), 2),
            (0, Some(PROJECT_GAIN), 2),
            (0, Some(0), 1),
            (0, None, 2),
        ] {
            let found = lattice(limit, project).run(threads).expect("within budget");
            assert!(found == reference, "limit {limit}, project {project:?}");
        }
        assert_eq!(reference, (m.pairs.clone(), m.sets.clone()));
        let mut scratch = vec![0u64; m.words];
        for set in &m.sets {
            scratch.copy_from_slice(m.row(set.items()[0]));
            for &p in &set.items()[1..] {
                bitset::and_assign(&mut scratch, m.row(p));
            }
            assert_eq!(bitset::count(&scratch), u64::from(set.count));
        }
        for pair in &m.pairs {
            let count = bitset::and_count(m.row(pair.a), m.row(pair.b));
            assert_eq!(count, u64::from(pair.count));
        }
    }

    #[test]
    fn every_path_of_the_walk_finds_the_same_sets() {
        all_paths_agree(&mined(2000, 20, 0.02, 5));
    }

    #[test]
    fn every_path_agrees_on_dense_data_to_size_six() {
        // About 30 traits per customer over 6 000 rows (94 words): deep projections.
        all_paths_agree(&mined(6000, 80, 0.04, 6));
    }

    #[test]
    fn every_path_agrees_at_size_three() {
        all_paths_agree(&mined(3000, 60, 0.03, 3));
    }

    #[test]
    fn every_path_agrees_on_row_counts_off_word_boundaries() {
        for (customers, attributes) in [(61, 8), (130, 12), (777, 30), (1153, 45)] {
            all_paths_agree(&mined(customers, attributes, 0.05, 5));
        }
    }
}
