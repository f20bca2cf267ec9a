//! How many threads to split work over.

/// Threads for splitting a whole population's rows or attributes (building it, indexing it):
/// one per core, at most 8.
pub(crate) fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8)
}

/// Threads worth using for `items` independent look-ups: one per core (at most 8), but only when
/// each gets enough work to pay for starting it.
pub(crate) fn parallelism(items: usize) -> usize {
    const MIN_PER_THREAD: usize = 256;
    (items / MIN_PER_THREAD).clamp(1, threads())
}
