//! A small, fast, seedable random stream.
//!
//! Every person draws from a stream keyed by `(seed, person index, purpose)`, so a person is the
//! same whatever the population size and whichever thread generates them, and contact data can be
//! recomputed on demand instead of stored.

/// SplitMix64 finaliser: a good 64-bit mixer, used both to key streams and to step them.
#[inline]
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A deterministic 64-bit hash of a byte string (FNV-1a followed by a mixer), stable across
/// platforms and Rust versions, unlike `std`'s hasher which promises neither.
pub(crate) fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix64(h)
}

#[derive(Debug, Clone)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    pub(crate) fn new(seed: u64, index: u64, purpose: u64) -> Self {
        let state = mix64(seed ^ mix64(index.wrapping_add(0x9e37_79b9_7f4a_7c15)))
            ^ mix64(purpose.wrapping_mul(0x2545_f491_4f6c_dd1d));
        Self { state }
    }

    pub(crate) fn from_state(state: u64) -> Self {
        Self { state }
    }

    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.state)
    }

    /// Uniform in [0, 1).
    #[inline]
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    #[inline]
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in [0, n); `n` must be positive.
    #[inline]
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Index drawn proportionally to `weights` (which need not sum to one).
    #[inline]
    pub(crate) fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.unit() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }

    /// Approximately normal (Irwin–Hall of four uniforms), cheap and bounded.
    #[inline]
    pub(crate) fn normalish(&mut self) -> f64 {
        (self.unit() + self.unit() + self.unit() + self.unit() - 2.0) * 1.732
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| Rng::new(7, 1, 0).next_u64()).collect();
        assert!(a.iter().all(|x| *x == a[0]));
        assert_ne!(Rng::new(7, 1, 0).next_u64(), Rng::new(7, 2, 0).next_u64());
        assert_ne!(Rng::new(7, 1, 0).next_u64(), Rng::new(7, 1, 1).next_u64());
        assert_ne!(Rng::new(7, 1, 0).next_u64(), Rng::new(8, 1, 0).next_u64());
    }

    #[test]
    fn below_stays_in_range_and_weighted_follows_weights() {
        let mut r = Rng::new(1, 2, 3);
        let mut counts = [0usize; 3];
        for _ in 0..30_000 {
            assert!(r.below(5) < 5);
            counts[r.weighted(&[1.0, 0.0, 3.0])] += 1;
        }
        assert_eq!(counts[1], 0);
        let ratio = counts[2] as f64 / counts[0] as f64;
        assert!((2.6..3.4).contains(&ratio), "ratio {ratio}");
    }

    #[test]
    fn stable_hash_is_stable() {
        assert_eq!(stable_hash(b"abc"), stable_hash(b"abc"));
        assert_ne!(stable_hash(b"abc"), stable_hash(b"abd"));
    }
}
