//! Dense row bitsets and the kernels mining needs: AND with popcount (written or not), subset
//! test, and projection (keeping only the bits under a mask, packed).
//!
//! The default x86-64 target has no `popcnt` instruction, so `count_ones` would compile to a
//! slow bit-twiddling sequence. Each kernel therefore has a copy compiled for AVX2 + POPCNT
//! (+ BMI2 for the projection), chosen once at run time; the bodies are the same plain loops
//! either way, which the compiler vectorises.
//!
//! **Projection.** `project(mask, x)` is the bitset of `x` in the coordinates of `mask`: bit `k`
//! of the result is `x`'s bit at the row of `mask`'s `k`-th set bit (BMI2 `pext`, word by word,
//! packed end to end). It has `popcount(mask)` bits, and for any `y`,
//! `popcount(project(m, x) & project(m, y)) = popcount(m & x & y)`: once a prefix's rows are
//! known, its extensions can be counted on `popcount(prefix)` bits instead of all rows.

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

/// `pext` without BMI2: gathers the bits of `x` under `mask` into the low bits, in order.
#[inline(always)]
fn pext_soft(x: u64, mut mask: u64) -> u64 {
    let mut out = 0u64;
    let mut bit = 1u64;
    while mask != 0 {
        let low = mask & mask.wrapping_neg();
        if x & low != 0 {
            out |= bit;
        }
        bit <<= 1;
        mask ^= low;
    }
    out
}

#[inline(always)]
fn project_body(mask: &[u64], x: &[u64], out: &mut [u64], pext: impl Fn(u64, u64) -> u64) -> u64 {
    let mut count = 0u64;
    let mut acc = 0u64;
    // Bits already in `acc` (0..64) and the output word it will go to.
    let mut fill = 0u32;
    let mut q = 0usize;
    for (&m, &v) in mask.iter().zip(x) {
        if m == 0 {
            continue;
        }
        let p = pext(v, m);
        count += u64::from(p.count_ones());
        acc |= p << fill;
        let next = fill + m.count_ones();
        if next >= 64 {
            out[q] = acc;
            q += 1;
            // The bits of `p` that did not fit (none when `fill` is 0).
            acc = (p >> 1) >> (63 - fill);
        }
        fill = next & 63;
    }
    if fill > 0 {
        out[q] = acc;
    }
    count
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

    #[target_feature(enable = "avx2,popcnt,bmi2")]
    pub fn project(mask: &[u64], x: &[u64], out: &mut [u64]) -> u64 {
        super::project_body(mask, x, out, |v, m| std::arch::x86_64::_pext_u64(v, m))
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

#[cfg(target_arch = "x86_64")]
fn has_fast_pext() -> bool {
    use std::sync::OnceLock;
    static FAST: OnceLock<bool> = OnceLock::new();
    *FAST.get_or_init(|| {
        has_fast() && std::arch::is_x86_feature_detected!("bmi2") && !slow_pext_family()
    })
}

/// AMD before Zen 3 (family 0x17 and earlier) runs `pext` in microcode, tens of cycles a word:
/// projecting there costs more than it saves.
#[cfg(target_arch = "x86_64")]
fn slow_pext_family() -> bool {
    let v = std::arch::x86_64::__cpuid(0);
    let vendor = [
        v.ebx.to_le_bytes(),
        v.edx.to_le_bytes(),
        v.ecx.to_le_bytes(),
    ]
    .concat();
    let signature = std::arch::x86_64::__cpuid(1).eax;
    let family = (signature >> 8) & 0xF;
    let family = if family == 0xF {
        family + ((signature >> 20) & 0xFF)
    } else {
        family
    };
    vendor == b"AuthenticAMD" && family < 0x19
}

/// Whether [`project`] runs at hardware speed (BMI2 `pext` on a CPU that does it in one step);
/// without it, mining does not project.
pub fn fast_projection() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        has_fast_pext()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Writes the bits of `x` under `mask`, packed, into `out`, returning their number (that is
/// `popcount(mask & x)`). `out` must hold exactly `words_for(popcount(mask))` words; it need not
/// be zeroed. See the module documentation.
pub fn project(mask: &[u64], x: &[u64], out: &mut [u64]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if has_fast_pext() {
        // SAFETY: the CPU supports AVX2, POPCNT and BMI2, checked at run time just above.
        return unsafe { fast::project(mask, x, out) };
    }
    project_body(mask, x, out, pext_soft)
}

/// The number of bits set in `a`.
pub fn count(a: &[u64]) -> u64 {
    and_count(a, a)
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

    /// Bit by bit: the rows of `mask`, in order, and `x`'s bit at each.
    fn naive_project(mask: &[u64], x: &[u64]) -> Vec<u64> {
        let rows = mask.len() * 64;
        let kept: Vec<bool> = (0..rows)
            .filter(|r| mask[r / 64] >> (r % 64) & 1 == 1)
            .map(|r| x[r / 64] >> (r % 64) & 1 == 1)
            .collect();
        let mut out = vec![0u64; words_for(kept.len())];
        for (k, &bit) in kept.iter().enumerate() {
            if bit {
                out[k / 64] |= 1 << (k % 64);
            }
        }
        out
    }

    #[test]
    fn projection_agrees_with_a_bit_by_bit_gather() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for words in [0usize, 1, 2, 5, 37, 130] {
            for density in 0..6 {
                // Masks from empty to full, with runs of zero and full words.
                let mask: Vec<u64> = (0..words)
                    .map(|i| match (density, i % 7) {
                        (0, _) => 0,
                        (5, _) | (_, 3) => u64::MAX,
                        (_, 5) => 0,
                        _ => (0..density).fold(u64::MAX, |m, _| m & next()),
                    })
                    .collect();
                let x: Vec<u64> = (0..words).map(|_| next() | next()).collect();
                let expected = naive_project(&mask, &x);
                let mut out = vec![u64::MAX; expected.len()];
                assert_eq!(project(&mask, &x, &mut out), naive(&mask, &x));
                assert_eq!(out, expected, "{words} words, density {density}");
                let mut soft = vec![u64::MAX; expected.len()];
                project_body(&mask, &x, &mut soft, pext_soft);
                assert_eq!(soft, expected);
                assert_eq!(count(&mask), naive(&mask, &mask));
            }
        }
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
