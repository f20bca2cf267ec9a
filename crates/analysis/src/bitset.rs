//! Dense row bitsets and the three kernels mining needs: AND with popcount (written or not) and
//! subset test.
//!
//! The default x86-64 target has no `popcnt` instruction, so `count_ones` would compile to a
//! slow bit-twiddling sequence. Each kernel therefore has a copy compiled for AVX2 + POPCNT,
//! chosen once at run time; the bodies are the same plain loops either way, which the compiler
//! vectorises.

/// How many 64-bit words hold `rows` bits.
pub fn words_for(rows: usize) -> usize {
    rows.div_ceil(64)
}

/// Sets bit `row`.
pub fn set(bits: &mut [u64], row: u32) {
    let row = row as usize;
    bits[row / 64] |= 1u64 << (row % 64);
}

#[inline(always)]
fn and_into_body(a: &[u64], b: &[u64], out: &mut [u64]) -> u64 {
    let mut count = 0u64;
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        let w = x & y;
        *o = w;
        count += u64::from(w.count_ones());
    }
    count
}

#[inline(always)]
fn and_count_body(a: &[u64], b: &[u64]) -> u64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| u64::from((x & y).count_ones()))
        .sum()
}

#[cfg(target_arch = "x86_64")]
mod fast {
    #[target_feature(enable = "avx2,popcnt")]
    pub fn and_into(a: &[u64], b: &[u64], out: &mut [u64]) -> u64 {
        super::and_into_body(a, b, out)
    }

    #[target_feature(enable = "avx2,popcnt")]
    pub fn and_count(a: &[u64], b: &[u64]) -> u64 {
        super::and_count_body(a, b)
    }
}

#[cfg(target_arch = "x86_64")]
fn has_fast() -> bool {
    use std::sync::OnceLock;
    static FAST: OnceLock<bool> = OnceLock::new();
    *FAST.get_or_init(|| {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("popcnt")
    })
}

/// `out = a & b`, returning the number of bits set in `out`.
pub fn and_into(a: &[u64], b: &[u64], out: &mut [u64]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if has_fast() {
        // SAFETY: the CPU supports AVX2 and POPCNT, checked at run time just above.
        return unsafe { fast::and_into(a, b, out) };
    }
    and_into_body(a, b, out)
}

/// The number of bits set in `a & b`.
pub fn and_count(a: &[u64], b: &[u64]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if has_fast() {
        // SAFETY: the CPU supports AVX2 and POPCNT, checked at run time just above.
        return unsafe { fast::and_count(a, b) };
    }
    and_count_body(a, b)
}

/// `acc &= b`.
pub fn and_assign(acc: &mut [u64], b: &[u64]) {
    for (x, y) in acc.iter_mut().zip(b) {
        *x &= y;
    }
}

/// Whether every bit of `a` is also set in `b`. Stops at the first word that says no, which for
/// unrelated traits is almost always the first.
pub fn is_subset(a: &[u64], b: &[u64]) -> bool {
    a.iter().zip(b).all(|(x, y)| x & !y == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[u64], b: &[u64]) -> u64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| {
                let w = x & y;
                (0..64).filter(|i| w >> i & 1 == 1).count() as u64
            })
            .sum()
    }

    #[test]
    fn kernels_agree_with_a_bit_by_bit_count() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let a: Vec<u64> = (0..37).map(|_| next()).collect();
        let b: Vec<u64> = (0..37).map(|_| next()).collect();
        let mut out = vec![0; 37];
        let expected = naive(&a, &b);
        assert_eq!(and_into(&a, &b, &mut out), expected);
        assert_eq!(and_count(&a, &b), expected);
        assert_eq!(and_count(&out, &out), expected);
        assert_eq!(and_into_body(&a, &b, &mut out), expected);
        assert!(is_subset(&out, &a) && is_subset(&out, &b));
        assert!(!is_subset(&a, &out) || a == out);
    }

    #[test]
    fn set_and_words() {
        assert_eq!(words_for(0), 0);
        assert_eq!(words_for(64), 1);
        assert_eq!(words_for(65), 2);
        let mut bits = vec![0; 2];
        set(&mut bits, 0);
        set(&mut bits, 64);
        set(&mut bits, 127);
        assert_eq!(bits, vec![1, 1 | 1 << 63]);
        assert_eq!(and_count(&bits, &bits), 3);
    }
}
