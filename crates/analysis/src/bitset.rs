//! Dense row bitsets and the kernels mining needs: AND with popcount (written or not), subset
//! test, and projection (keeping only the bits under a mask, packed).
//!
//! The default x86-64 target has no `popcnt` instruction, so `count_ones` would compile to a
//! slow bit-twiddling sequence. Each kernel therefore has a copy compiled for AVX2 + POPCNT
//! (+ BMI2 for the projection), chosen once at run time; the bodies are the same plain loops
//! either way, which the compiler vectorises.
//!
//! **Projection.** `project(mask, x)` ([`project_rows`]) is the bitset of `x` in the coordinates
//! of `mask`: bit `k` of the result is `x`'s bit at the row of `mask`'s `k`-th set bit (BMI2
//! `pext`, word by word, packed end to end). It has `popcount(mask)` bits, and for any `y`,
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

/// Projects `K` sources at once: they share the mask's bookkeeping, and their independent
/// chains of work (one accumulator each) overlap in the CPU.
#[inline(always)]
fn project_k<const K: usize>(
    mask: &[u64],
    xs: [&[u64]; K],
    outs: [&mut [u64]; K],
    pext: impl Fn(u64, u64) -> u64,
) {
    let words = mask.len();
    let xs = xs.map(|x| &x[..words]);
    let mut acc = [0u64; K];
    let mut fill = 0u32;
    let mut q = 0usize;
    for w in 0..words {
        let m = mask[w];
        if m == 0 {
            continue;
        }
        let next = fill + m.count_ones();
        if next >= 64 {
            for k in 0..K {
                let p = pext(xs[k][w], m);
                outs[k][q] = acc[k] | p << fill;
                acc[k] = (p >> 1) >> (63 - fill);
            }
            q += 1;
        } else {
            for k in 0..K {
                acc[k] |= pext(xs[k][w], m) << fill;
            }
        }
        fill = next & 63;
    }
    if fill > 0 {
        for k in 0..K {
            outs[k][q] = acc[k];
        }
    }
}

/// Projects rows `rows` of `src` (`mask.len()` words each) onto `mask`, into consecutive rows of
/// `out` (`out_words` = `words_for(popcount(mask))` each), four at a time.
#[inline(always)]
fn project_rows_body(
    mask: &[u64],
    src: &[u64],
    rows: &[u32],
    out: &mut [u64],
    out_words: usize,
    pext: impl Fn(u64, u64) -> u64 + Copy,
) {
    let w = mask.len();
    let row = |r: u32| &src[r as usize * w..(r as usize + 1) * w];
    let mut groups = rows.chunks_exact(4);
    let mut rest = out;
    for g in groups.by_ref() {
        let (now, later) = rest.split_at_mut(4 * out_words);
        rest = later;
        let (o0, now) = now.split_at_mut(out_words);
        let (o1, now) = now.split_at_mut(out_words);
        let (o2, o3) = now.split_at_mut(out_words);
        project_k(
            mask,
            [row(g[0]), row(g[1]), row(g[2]), row(g[3])],
            [o0, o1, o2, o3],
            pext,
        );
    }
    for &r in groups.remainder() {
        let (now, later) = rest.split_at_mut(out_words);
        rest = later;
        project_k(mask, [row(r)], [now], pext);
    }
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
    pub fn project_rows(mask: &[u64], src: &[u64], rows: &[u32], out: &mut [u64], words: usize) {
        super::project_rows_body(mask, src, rows, out, words, |v, m| {
            std::arch::x86_64::_pext_u64(v, m)
        })
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

/// AMD before Zen 3 (family 0x17 and earlier) and Hygon (Zen 1) run `pext` in microcode, tens
/// of cycles a word: projecting there costs more than it saves.
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
    (vendor == b"AuthenticAMD" && family < 0x19) || vendor == b"HygonGenuine"
}

/// Whether [`project_rows`] runs at hardware speed (BMI2 `pext` on a CPU that does it in one step);
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

/// Projects rows `rows` of `src` (each `mask.len()` words) onto `mask`: row `rows[k]` goes,
/// packed, to `out[k * out_words..(k + 1) * out_words]`, `out_words = words_for(popcount(mask))`
/// (see the module documentation). `out` need not be zeroed.
pub fn project_rows(mask: &[u64], src: &[u64], rows: &[u32], out: &mut [u64], out_words: usize) {
    assert!(out.len() >= rows.len() * out_words);
    #[cfg(target_arch = "x86_64")]
    if has_fast_pext() {
        // SAFETY: the CPU supports AVX2, POPCNT and BMI2, checked at run time just above.
        return unsafe { fast::project_rows(mask, src, rows, out, out_words) };
    }
    project_rows_body(mask, src, rows, out, out_words, pext_soft)
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
                project_rows(&mask, &x, &[0], &mut out, expected.len());
                assert_eq!(out, expected, "{words} words, density {density}");
                assert_eq!(count(&out), naive(&mask, &x));
                // Rows 0..7 of a source where row r is `x` rotated by r bits, in any order.
                let src: Vec<u64> = (0..7u32)
                    .flat_map(|r| x.iter().map(move |v| v.rotate_left(r)))
                    .collect();
                let rows = [3u32, 0, 6, 6, 1, 5, 2];
                let n = expected.len();
                let mut many = vec![u64::MAX; rows.len() * n];
                project_rows(&mask, &src, &rows, &mut many, n);
                let mut soft_many = vec![u64::MAX; rows.len() * n];
                project_rows_body(&mask, &src, &rows, &mut soft_many, n, pext_soft);
                assert_eq!(many, soft_many);
                for (k, &r) in rows.iter().enumerate() {
                    let row = &src[r as usize * words..(r as usize + 1) * words];
                    assert_eq!(many[k * n..(k + 1) * n], naive_project(&mask, row)[..]);
                }
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
