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
//! **Optimiser.** Newton's method with the Newton step solved by conjugate gradients
//! preconditioned with the Hessian's diagonal (truncated Newton), Hessian-vector products
//! computed over the sparse rows, so memory is linear in the non-zeros and the cost per step a
//! few passes over them; a backtracking (Armijo) line search keeps every step a descent. The
//! objective is strictly convex (λ > 0): it converges to the one optimum in a handful of steps.
//! Hand-written (about 150 lines) rather than a crate: the optimiser crates on crates.io
//! (`argmin`, `linfa-logistic` over `ndarray`) bring a dense-matrix stack and dozens of
//! crates for what is, over sparse binary rows, a few loops; and their results depend on
//! thread scheduling or dense layouts that this code keeps fixed.
//!
//! **Deterministic.** Rows are sorted (each row's features, then the rows themselves) before
//! fitting, every sum runs in that order on one thread: the same multiset of rows gives the same
//! coefficients to the bit, whatever order the profiles arrived in. Beyond [`MAX_ROWS`] a class
//! keeps the rows of smallest hash (of the row's features), again independent of order.

/// The most rows of each class a fit uses: a bound on the analyze stage's time.
pub const MAX_ROWS: usize = 50_000;

/// The seed of the population sample a fit is made against: fixed, so that the same job on the
/// same population gets the same sample, hence the same weights.
pub const SAMPLE_SEED: u64 = 0x1C9_5A3E;

/// `λ`, the L2 penalty on each trait's coefficient (see the module documentation).
pub const DEFAULT_PENALTY: f64 = 50.0;

/// Newton steps at most (convergence takes far fewer).
const MAX_NEWTON: usize = 50;
/// Conjugate-gradient iterations per Newton step at most.
const MAX_CG: usize = 200;
/// Converged when every component of the mean gradient is below this.
const TOLERANCE: f64 = 1e-7;

/// A fitted model.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticFit {
    /// One per feature.
    pub coefficients: Vec<f64>,
    pub intercept: f64,
    /// Newton steps taken.
    pub steps: usize,
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

/// Each row's features sorted and deduplicated, features `≥ dims` dropped, the rows sorted; at
/// most `cap` rows, those of smallest hash, so the choice does not depend on the input order.
fn prepare(rows: &[Vec<u32>], dims: usize, cap: usize) -> Vec<Vec<u32>> {
    let mut out: Vec<Vec<u32>> = rows
        .iter()
        .map(|r| {
            let mut r: Vec<u32> = r.iter().copied().filter(|&j| (j as usize) < dims).collect();
            r.sort_unstable();
            r.dedup();
            r
        })
        .collect();
    if out.len() > cap {
        let hash = |r: &[u32]| {
            r.iter().fold(0x9E37_79B9_7F4A_7C15u64, |h, &j| {
                let mut x = (h ^ u64::from(j)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                x ^= x >> 31;
                x.wrapping_mul(0x94D0_49BB_1331_11EB)
            })
        };
        let mut keyed: Vec<(u64, Vec<u32>)> = out.into_iter().map(|r| (hash(&r), r)).collect();
        keyed.sort_unstable();
        keyed.truncate(cap);
        out = keyed.into_iter().map(|(_, r)| r).collect();
    }
    out.sort_unstable();
    out
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
    let pos = prepare(positives, dims, max_rows);
    let neg = prepare(negatives, dims, max_rows);
    let (positives, negatives) = (pos.len(), neg.len());
    let mut rows = Rows {
        features: Vec::new(),
        offsets: vec![0],
        labels: Vec::with_capacity(positives + negatives),
    };
    for (class, label) in [(&pos, 1.0), (&neg, 0.0)] {
        for r in class {
            rows.features.extend_from_slice(r);
            rows.offsets.push(rows.features.len());
            rows.labels.push(label);
        }
    }
    drop((pos, neg));
    let n = rows.len();
    let mut w = vec![0.0f64; dims + 1];
    if positives == 0 || negatives == 0 {
        return LogisticFit {
            coefficients: vec![0.0; dims],
            intercept: 0.0,
            steps: 0,
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
    let mut diag = vec![0.0; dims + 1];
    let (mut r, mut s, mut d, mut q, mut m) = (
        vec![0.0; dims + 1],
        vec![0.0; dims + 1],
        vec![0.0; dims + 1],
        vec![0.0; dims + 1],
        vec![0.0; dims + 1],
    );
    let mut xd = vec![0.0; n];
    let mut trial = vec![0.0; dims + 1];
    let mut trial_z = vec![0.0; n];
    rows.margins(&w, &mut z);
    let mut f = objective(&z, &w);
    let mut steps = 0;
    let mut converged = false;
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
        // The Hessian's diagonal, the preconditioner.
        rows.transpose_times(&curvature, &mut diag);
        for v in &mut diag[..dims] {
            *v += penalty;
        }
        // Solve H s = −g by preconditioned conjugate gradients, to a relative residual that
        // tightens as the gradient shrinks (superlinear convergence of the outer steps).
        let g_norm = dot(&grad, &grad).sqrt();
        let target = (0.5f64).min(g_norm.sqrt() / (n as f64).sqrt()) * g_norm;
        s.iter_mut().for_each(|v| *v = 0.0);
        for j in 0..=dims {
            r[j] = -grad[j];
            m[j] = r[j] / diag[j].max(1e-12);
        }
        d.copy_from_slice(&m);
        let mut rm = dot(&r, &m);
        for _ in 0..MAX_CG {
            // q = H d = Xᵀ diag(curvature) X d + λ d (not on the intercept).
            rows.margins(&d, &mut xd);
            for (v, c) in xd.iter_mut().zip(&curvature) {
                *v *= c;
            }
            rows.transpose_times(&xd, &mut q);
            for j in 0..dims {
                q[j] += penalty * d[j];
            }
            let dq = dot(&d, &q);
            if dq <= 0.0 {
                break;
            }
            let alpha = rm / dq;
            for j in 0..=dims {
                s[j] += alpha * d[j];
                r[j] -= alpha * q[j];
            }
            if dot(&r, &r).sqrt() <= target {
                break;
            }
            for j in 0..=dims {
                m[j] = r[j] / diag[j].max(1e-12);
            }
            let rm_next = dot(&r, &m);
            let beta = rm_next / rm;
            rm = rm_next;
            for j in 0..=dims {
                d[j] = m[j] + beta * d[j];
            }
        }
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
    }
    let intercept = w[dims];
    w.truncate(dims);
    LogisticFit {
        coefficients: w,
        intercept,
        steps,
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
    fn an_empty_class_fits_nothing() {
        let fit = fit_logistic(2, &[vec![0]], &[], 1.0, MAX_ROWS);
        assert_eq!(fit.coefficients, [0.0, 0.0]);
        assert!(!fit.converged);
    }
}
