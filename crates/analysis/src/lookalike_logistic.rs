//! The regularised logistic-regression lookalike model: customers (label 1) against a sample
//! of the population (label 0), one binary feature per weighed `attribute = value`, with an
//! intercept. Naive Bayes (`lookalike_model`) counts each trait as independent evidence, so a
//! segment's correlated traits are counted several times over and a person holding many common
//! traits of the segment outranks one holding the few that tell; logistic regression weighs
//! each trait given the others. On planted segments it beats every boolean audience at its own
//! size where naive Bayes loses to the precision audience (`BENCHMARKS.md`, "Insight quality").
//!
//! **Objective.** With `z_i = b + Σ_{j ∈ row i} w_j`, minimise
//! `Σ_i [ln(1 + e^{z_i}) − y_i·z_i] + (λ/2)·Σ_j w_j²` (the intercept `b` is not penalised).
//! **Penalty rule:** a fixed `λ = 50` on the summed log-likelihood (a Gaussian prior of variance
//! 1/50 on each trait's log-odds), not scaled with the rows: the pull towards 0 matters where
//! customers are few against many traits (Caravan: 174 customers, 85 attributes, about 600
//! traits, where λ = 1 overfits and loses to naive Bayes) and fades where they are many (5,000
//! planted customers over about 150 traits: λ = 1 and 50 rank alike). Measured at λ = 1, 10,
//! 20, 50, 100 and 200 (`BENCHMARKS.md`, "Insight quality").
//!
//! **Optimiser.** Newton's method with the exact Newton step: the Hessian
//! `Xᵀ diag(p(1−p)) X + λ` over the traits and the intercept (150 × 150 for the 149 traits of
//! the generated population) is formed row by row over the sparse rows (a row of `k` traits
//! adds `k(k+1)/2` entries) and solved by Cholesky; a backtracking (Armijo) line search keeps
//! every step a descent. The objective is strictly convex (λ > 0): it converges to the one
//! optimum in a handful of steps. Forming the Hessian costs fewer passes over the rows than
//! solving each step by conjugate gradients did (for 100,000 customers of the generated
//! population of 1M: 86 Hessian-vector products of two passes each, over 3 Newton steps):
//! the fit of 50,000 customers against 45,000 sampled persons fell from 1.4–1.7 s to
//! 0.47–0.62 s (measured 2026-12-07, machine loaded). Forming the Hessian is then most of
//! a step, so a factor is kept for the next step while the steps it gives still take the
//! gradient down at least 4× (a chord step: still a descent direction, the line search still
//! guards it; the same optimum, the gradient held to the same tolerance), and its rows are
//! summed in two halves on two threads: 8 steps over 3 Hessians instead of 5 over 5, and the
//! fit of `cargo bench -p icp-analysis --bench lookalike_fit` from 266 to 165 ms
//! (`BENCHMARKS.md`, "Ranked tiers"). Memory is linear in the non-zeros plus two dense
//! Hessians (quadratic in the traits: 180 KB each at 150).
//! Hand-written rather than a crate: the optimiser crates on crates.io (`argmin`,
//! `linfa-logistic` over `ndarray`) bring a dense-matrix stack and dozens of crates for what
//! is, over sparse binary rows, a few loops; and their results depend on thread scheduling or
//! dense layouts that this code keeps fixed.
//!
//! **Deterministic.** Rows are ordered (each row's features sorted, then the rows by a hash of
//! their features, ties by the features) before fitting, and every sum runs in that order (the
//! Hessian's two halves split at a fixed row, the second added to the first): the same
//! multiset of rows gives the same coefficients to the bit, whatever order the profiles arrived
//! in and whatever the threads' timing. Beyond [`MAX_ROWS`] a class keeps the rows of smallest
//! hash.

/// The most rows of each class a fit uses: a bound on the analyze stage's time. 25,000
/// rather than 50,000 halves the fit and the population sample; the quality harness on the 9
/// planted cases (`quality generated 1000000`) moved no ranked lift by more than 0.05× (at
/// most 0.5 %), and the logistic tiers still beat every boolean audience at its own size on
/// all 9 (`BENCHMARKS.md`, "Ranked tiers").
pub const MAX_ROWS: usize = 25_000;

/// The seed of the population sample a fit is made against: fixed, so that the same job on the
/// same population gets the same sample, hence the same weights.
pub const SAMPLE_SEED: u64 = 0x1C9_5A3E;

/// `λ`, the L2 penalty on each trait's coefficient (see the module documentation).
pub const DEFAULT_PENALTY: f64 = 50.0;

/// Newton steps at most (convergence takes far fewer).
const MAX_NEWTON: usize = 50;
/// Converged when every component of the mean gradient is below this.
const TOLERANCE: f64 = 1e-7;
/// A Hessian's factor is used again while each step divides the largest gradient component
/// by at least this.
const REUSE_GAIN: f64 = 4.0;

/// A fitted model.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticFit {
    /// One per feature.
    pub coefficients: Vec<f64>,
    pub intercept: f64,
    /// Newton steps taken.
    pub steps: usize,
    /// Hessians formed (a step may reuse the last one's factor).
    pub hessians: usize,
    /// Whether the gradient reached the tolerance.
    pub converged: bool,
    /// Rows of each class fitted (after the cap).
    pub positives: usize,
    pub negatives: usize,
}

/// Sparse binary rows: the feature numbers of row `i` are `features[offsets[i]..offsets[i+1]]`.
struct Rows {
    features: Vec<u32>,
    offsets: Vec<usize>,
    labels: Vec<f64>,
}

impl Rows {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn row(&self, i: usize) -> &[u32] {
        &self.features[self.offsets[i]..self.offsets[i + 1]]
    }

    /// `z_i = b + Σ w_j` for every row (`w[dims]` is `b`): `X w` with the intercept's column.
    fn margins(&self, w: &[f64], out: &mut [f64]) {
        let b = w[w.len() - 1];
        for (i, z) in out.iter_mut().enumerate() {
            *z = b + self.row(i).iter().map(|&j| w[j as usize]).sum::<f64>();
        }
    }

    /// `Xᵀ diag(c) X` with the intercept's column, into `h` (`(dims + 1)²`, row-major): the
    /// upper triangle summed row by row (each row's features are ascending), then mirrored.
    /// The rows' two halves are summed on two threads, each into its own matrix, and the
    /// second added to the first: a fixed split and order, so the same rows give the same bits.
    fn hessian(&self, c: &[f64], width: usize, h: &mut [f64], scratch: &mut [f64]) {
        let half = c.len() / 2;
        std::thread::scope(|scope| {
            scope.spawn(|| self.hessian_part(half..c.len(), c, width, scratch));
            self.hessian_part(0..half, c, width, h);
        });
        h.iter_mut().zip(scratch.iter()).for_each(|(a, b)| *a += b);
        for a in 0..width {
            for b in 0..a {
                h[a * width + b] = h[b * width + a];
            }
        }
    }

    /// The upper triangle of `Xᵀ diag(c) X` over the rows `range`, into `h`.
    fn hessian_part(&self, range: std::ops::Range<usize>, c: &[f64], width: usize, h: &mut [f64]) {
        h.iter_mut().for_each(|v| *v = 0.0);
        let last = width - 1;
        for i in range {
            let (ci, row) = (c[i], self.row(i));
            for (k, &a) in row.iter().enumerate() {
                let line = &mut h[a as usize * width..(a as usize + 1) * width];
                for &b in &row[k..] {
                    line[b as usize] += ci;
                }
                line[last] += ci;
            }
            h[last * width + last] += ci;
        }
    }

    /// `Xᵀ v` (the last component summing `v`, for the intercept).
    fn transpose_times(&self, v: &[f64], out: &mut [f64]) {
        out.iter_mut().for_each(|o| *o = 0.0);
        let last = out.len() - 1;
        for (i, &vi) in v.iter().enumerate() {
            for &j in self.row(i) {
                out[j as usize] += vi;
            }
            out[last] += vi;
        }
    }
}

/// `ln(1 + e^z)` without overflow.
fn softplus(z: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Overwrites a symmetric positive-definite `H` (`n × n`, row-major) with its Cholesky factor
/// `L` (lower triangle); false when `H` is not positive definite.
fn cholesky(h: &mut [f64], n: usize) -> bool {
    for j in 0..n {
        let mut d = h[j * n + j];
        for k in 0..j {
            d -= h[j * n + k] * h[j * n + k];
        }
        if d.is_nan() || d <= 0.0 {
            return false;
        }
        let d = d.sqrt();
        h[j * n + j] = d;
        for i in j + 1..n {
            let mut v = h[i * n + j];
            for k in 0..j {
                v -= h[i * n + k] * h[j * n + k];
            }
            h[i * n + j] = v / d;
        }
    }
    true
}

/// Solves `L Lᵀ x = b` with the factor [`cholesky`] left in `l`, `b` overwritten by `x`.
fn cholesky_solve(l: &[f64], n: usize, b: &mut [f64]) {
    // L y = b, then Lᵀ x = y.
    for i in 0..n {
        let mut v = b[i];
        for k in 0..i {
            v -= l[i * n + k] * b[k];
        }
        b[i] = v / l[i * n + i];
    }
    for i in (0..n).rev() {
        let mut v = b[i];
        for k in i + 1..n {
            v -= l[k * n + i] * b[k];
        }
        b[i] = v / l[i * n + i];
    }
}

/// Appends to `out` the rows of one class, with `label`: each row's features sorted and
/// deduplicated, features `≥ dims` dropped; at most `cap` rows, those of smallest hash (of the
/// row's features), in order of hash then features, so neither the choice nor the order
/// depends on the input order. Laid out flat as they are read, with no vector per row (the
/// fit 2–4 % faster than with a vector per row sorted among the others).
fn prepare(rows: &[Vec<u32>], dims: usize, cap: usize, label: f64, out: &mut Rows) {
    let mut flat: Vec<u32> = Vec::with_capacity(rows.iter().map(Vec::len).sum());
    // (hash, start, end) of each row in `flat`.
    let mut spans: Vec<(u64, usize, usize)> = Vec::with_capacity(rows.len());
    for r in rows {
        let start = flat.len();
        flat.extend(r.iter().copied().filter(|&j| (j as usize) < dims));
        flat[start..].sort_unstable();
        let mut end = start;
        for k in start..flat.len() {
            if k == start || flat[k] != flat[end - 1] {
                flat[end] = flat[k];
                end += 1;
            }
        }
        flat.truncate(end);
        let hash = flat[start..end]
            .iter()
            .fold(0x9E37_79B9_7F4A_7C15u64, |h, &j| {
                let mut x = (h ^ u64::from(j)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                x ^= x >> 31;
                x.wrapping_mul(0x94D0_49BB_1331_11EB)
            });
        spans.push((hash, start, end));
    }
    spans.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| flat[a.1..a.2].cmp(&flat[b.1..b.2]))
    });
    spans.truncate(cap);
    for (_, start, end) in spans {
        out.features.extend_from_slice(&flat[start..end]);
        out.offsets.push(out.features.len());
        out.labels.push(label);
    }
}

/// Fits `positives` (label 1) against `negatives` (label 0), each row the numbers (`< dims`)
/// of the features it has; at most `max_rows` of each class (see [`MAX_ROWS`]).
pub fn fit_logistic(
    dims: usize,
    positives: &[Vec<u32>],
    negatives: &[Vec<u32>],
    penalty: f64,
    max_rows: usize,
) -> LogisticFit {
    let mut rows = Rows {
        features: Vec::new(),
        offsets: vec![0],
        labels: Vec::new(),
    };
    prepare(positives, dims, max_rows, 1.0, &mut rows);
    let positives = rows.len();
    prepare(negatives, dims, max_rows, 0.0, &mut rows);
    let negatives = rows.len() - positives;
    let n = rows.len();
    let mut w = vec![0.0f64; dims + 1];
    if positives == 0 || negatives == 0 {
        return LogisticFit {
            coefficients: vec![0.0; dims],
            intercept: 0.0,
            steps: 0,
            hessians: 0,
            converged: false,
            positives,
            negatives,
        };
    }
    w[dims] = (positives as f64 / negatives as f64).ln();
    let penalised = |w: &[f64]| 0.5 * penalty * dot(&w[..dims], &w[..dims]);
    let objective = |z: &[f64], w: &[f64]| {
        z.iter()
            .zip(&rows.labels)
            .map(|(&z, &y)| softplus(z) - y * z)
            .sum::<f64>()
            + penalised(w)
    };

    let mut z = vec![0.0; n];
    let mut residual = vec![0.0; n];
    let mut curvature = vec![0.0; n];
    let mut grad = vec![0.0; dims + 1];
    let width = dims + 1;
    let mut hessian = vec![0.0; width * width];
    let mut scratch = vec![0.0; width * width];
    let mut s = vec![0.0; width];
    let mut trial = vec![0.0; dims + 1];
    let mut trial_z = vec![0.0; n];
    rows.margins(&w, &mut z);
    let mut f = objective(&z, &w);
    let mut steps = 0;
    let mut converged = false;
    let (mut factored, mut previous, mut hessians) = (false, f64::INFINITY, 0);
    while steps < MAX_NEWTON {
        for i in 0..n {
            let p = sigmoid(z[i]);
            residual[i] = p - rows.labels[i];
            curvature[i] = (p * (1.0 - p)).max(1e-12);
        }
        rows.transpose_times(&residual, &mut grad);
        for j in 0..dims {
            grad[j] += penalty * w[j];
        }
        let largest = grad.iter().fold(0.0f64, |a, g| a.max(g.abs()));
        if largest <= TOLERANCE * n as f64 {
            converged = true;
            break;
        }
        steps += 1;
        // The Newton step: H s = −g, with H = Xᵀ diag(curvature) X + λ (not on the intercept)
        // formed explicitly (its upper triangle, row by row) and factored by Cholesky. Forming
        // it is most of a step's cost, so a factor is kept while the steps it gives still take
        // the gradient down fast (each at least `REUSE_GAIN` times, a full step accepted).
        let reuse = factored && largest * REUSE_GAIN <= previous;
        previous = largest;
        if !reuse {
            rows.hessian(&curvature, width, &mut hessian, &mut scratch);
            for j in 0..dims {
                hessian[j * width + j] += penalty;
            }
            if !cholesky(&mut hessian, width) {
                break;
            }
            hessians += 1;
        }
        for j in 0..width {
            s[j] = -grad[j];
        }
        cholesky_solve(&hessian, width, &mut s);
        // Backtracking line search on the objective.
        let slope = dot(&grad, &s);
        if slope >= 0.0 {
            break;
        }
        let mut t = 1.0;
        let mut accepted = false;
        for _ in 0..40 {
            for j in 0..=dims {
                trial[j] = w[j] + t * s[j];
            }
            rows.margins(&trial, &mut trial_z);
            let f_trial = objective(&trial_z, &trial);
            if f_trial <= f + 1e-4 * t * slope {
                std::mem::swap(&mut w, &mut trial);
                std::mem::swap(&mut z, &mut trial_z);
                f = f_trial;
                accepted = true;
                break;
            }
            t *= 0.5;
        }
        if !accepted {
            break;
        }
        factored = t == 1.0;
    }
    let intercept = w[dims];
    w.truncate(dims);
    LogisticFit {
        coefficients: w,
        intercept,
        steps,
        hessians,
        converged,
        positives,
        negatives,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gradient of the objective at the fit, by the definition.
    fn gradient(dims: usize, pos: &[Vec<u32>], neg: &[Vec<u32>], fit: &LogisticFit) -> Vec<f64> {
        let mut g = vec![0.0; dims + 1];
        for (rows, y) in [(pos, 1.0), (neg, 0.0)] {
            for r in rows {
                let z =
                    fit.intercept + r.iter().map(|&j| fit.coefficients[j as usize]).sum::<f64>();
                let e = sigmoid(z) - y;
                for &j in r {
                    g[j as usize] += e;
                }
                g[dims] += e;
            }
        }
        for (gj, c) in g.iter_mut().zip(&fit.coefficients) {
            *gj += c;
        }
        g
    }

    fn data() -> (Vec<Vec<u32>>, Vec<Vec<u32>>) {
        // Feature 0 strongly marks customers, 1 weakly, 2 is noise, 3 goes with 0 (correlated).
        let mut pos = Vec::new();
        let mut neg = Vec::new();
        for i in 0..400u32 {
            let mut r = Vec::new();
            if i % 5 != 0 {
                r.extend([0, 3]);
            }
            if i % 2 == 0 {
                r.push(1);
            }
            if i % 3 == 0 {
                r.push(2);
            }
            pos.push(r);
        }
        for i in 0..2000u32 {
            let mut r = Vec::new();
            if i % 10 == 0 {
                r.extend([0, 3]);
            }
            if i % 3 == 0 {
                r.push(1);
            }
            if i % 3 == 1 {
                r.push(2);
            }
            neg.push(r);
        }
        (pos, neg)
    }

    #[test]
    fn converges_to_the_optimum() {
        let (pos, neg) = data();
        let fit = fit_logistic(4, &pos, &neg, 1.0, MAX_ROWS);
        assert!(fit.converged, "{fit:?}");
        let g = gradient(4, &pos, &neg, &fit);
        assert!(g.iter().all(|v| v.abs() < 1e-3), "{g:?}");
        // The marker weighs most; the two correlated markers share the evidence equally.
        let c = &fit.coefficients;
        assert!(c[0] > c[1] && c[1] > 0.0, "{c:?}");
        assert!((c[0] - c[3]).abs() < 1e-9, "{c:?}");
    }

    #[test]
    fn the_same_rows_in_any_order_give_the_same_bits() {
        let (pos, neg) = data();
        let a = fit_logistic(4, &pos, &neg, 1.0, MAX_ROWS);
        let mut pos2: Vec<Vec<u32>> = pos
            .iter()
            .rev()
            .map(|r| r.iter().rev().copied().collect())
            .collect();
        pos2.rotate_left(7);
        let mut neg2 = neg.clone();
        neg2.reverse();
        let b = fit_logistic(4, &pos2, &neg2, 1.0, MAX_ROWS);
        assert_eq!(a, b);
        // Capped: the rows kept do not depend on the order either.
        let a = fit_logistic(4, &pos, &neg, 1.0, 300);
        let b = fit_logistic(4, &pos2, &neg2, 1.0, 300);
        assert_eq!((a.positives, a.negatives), (300, 300));
        assert_eq!(a, b);
    }

    #[test]
    fn a_larger_penalty_shrinks_the_weights() {
        let (pos, neg) = data();
        let loose = fit_logistic(4, &pos, &neg, 0.1, MAX_ROWS);
        let tight = fit_logistic(4, &pos, &neg, 100.0, MAX_ROWS);
        assert!(tight.coefficients[0].abs() < loose.coefficients[0].abs());
    }

    #[test]
    fn cholesky_solves_a_positive_definite_system_and_refuses_another() {
        // H = [[4, 2, 0], [2, 5, 1], [0, 1, 3]], x = [1, −1, 2] → b = H x.
        let mut h = vec![4.0, 2.0, 0.0, 2.0, 5.0, 1.0, 0.0, 1.0, 3.0];
        let mut b = vec![2.0, -1.0, 5.0];
        assert!(cholesky(&mut h, 3));
        cholesky_solve(&h, 3, &mut b);
        for (got, want) in b.iter().zip([1.0, -1.0, 2.0]) {
            assert!((got - want).abs() < 1e-12, "{b:?}");
        }
        let mut h = vec![1.0, 2.0, 2.0, 1.0];
        assert!(!cholesky(&mut h, 2));
    }

    #[test]
    fn an_empty_class_fits_nothing() {
        let fit = fit_logistic(2, &[vec![0]], &[], 1.0, MAX_ROWS);
        assert_eq!(fit.coefficients, [0.0, 0.0]);
        assert!(!fit.converged);
    }
}
