//! A quadratic well with a known Hessian, where the success of a random affine subspace
//! can be computed exactly and set beside Gordon's escape theorem.
//!
//! Loss `L(theta) = 1/2 (theta - theta*)^T H (theta - theta*)` with `H = diag(lambda)`.
//! A random d-dimensional subspace through `theta0` succeeds when it meets the sublevel
//! set `S = {L <= eps}`, i.e. when `min_phi L(theta0 + P phi) <= eps`, which is a small
//! least-squares problem. Gordon's escape theorem predicts the threshold
//! `d* = D - w^2`, with `w` the Gaussian width of `S` projected onto the unit sphere
//! around `theta0`, estimated here by Monte Carlo.

use nalgebra::{DMatrix, DVector};

use crate::rng::SplitMix64;

pub struct QuadraticWell {
    /// Hessian eigenvalues (the diagonal of H).
    pub lambda: Vec<f64>,
    /// `theta* - theta0`.
    pub offset: Vec<f64>,
    /// The sublevel: success when the loss reaches `eps`.
    pub eps: f64,
}

impl QuadraticWell {
    /// A well in D dimensions whose Hessian eigenvalues are log-spaced from 0.1 to 10
    /// (two decades) and whose minimum lies at distance 1 from theta0, in a seeded random
    /// direction.
    pub fn log_spaced(dim: usize, eps: f64, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let lambda = (0..dim)
            .map(|i| 10f64.powf(-1.0 + 2.0 * i as f64 / (dim.max(2) - 1) as f64))
            .collect();
        let offset: Vec<f64> = (0..dim).map(|_| rng.normal_f64()).collect();
        let norm = offset.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        Self {
            lambda,
            offset: offset.iter().map(|x| x / norm).collect(),
            eps,
        }
    }

    pub fn dim(&self) -> usize {
        self.lambda.len()
    }

    /// The least loss reachable in the subspace spanned by the columns of `p` (D x d)
    /// through `theta0`.
    pub fn best_loss_in(&self, p: &DMatrix<f64>) -> f64 {
        let dim = self.dim();
        let h = DMatrix::from_diagonal(&DVector::from_vec(self.lambda.clone()));
        // r = theta0 - theta* = -offset; loss(phi) = 1/2 (r + P phi)^T H (r + P phi).
        let r = DVector::from_iterator(dim, self.offset.iter().map(|v| -v));
        let hp = &h * p;
        let a = p.transpose() * &hp;
        let b = hp.transpose() * &r;
        let phi = match a.clone().cholesky() {
            Some(c) => -c.solve(&b),
            None => -(a.pseudo_inverse(1e-12).expect("pseudo-inverse") * b),
        };
        let res = &r + p * phi;
        0.5 * (res.transpose() * &h * &res)[(0, 0)]
    }

    /// Share of `trials` random Gaussian d-dimensional subspaces that reach `eps`.
    pub fn success_probability(&self, d: usize, trials: usize, seed: u64) -> f64 {
        let mut rng = SplitMix64::new(seed);
        let dim = self.dim();
        let hits = (0..trials)
            .filter(|_| {
                let p = DMatrix::from_fn(dim, d, |_, _| rng.normal_f64());
                self.best_loss_in(&p) <= self.eps
            })
            .count();
        hits as f64 / trials.max(1) as f64
    }

    /// Smallest d (searched over 1..=D) whose success probability is at least 1/2.
    pub fn empirical_threshold(&self, trials: usize, seed: u64) -> usize {
        let (mut lo, mut hi) = (1, self.dim());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.success_probability(mid, trials, seed ^ mid as u64) >= 0.5 {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }

    /// Monte Carlo estimate of the Gaussian width of S projected onto the unit sphere
    /// around theta0: `E_g max_{theta in S} <g, (theta - theta0) / |theta - theta0|>`,
    /// each maximum by projected gradient ascent over the ellipsoid
    /// `theta = theta* + A z`, `|z| <= 1`, `A = diag(sqrt(2 eps / lambda))`.
    pub fn projected_width(&self, samples: usize, seed: u64) -> f64 {
        let mut rng = SplitMix64::new(seed);
        let dim = self.dim();
        let axes: Vec<f64> = self
            .lambda
            .iter()
            .map(|l| (2.0 * self.eps / l).sqrt())
            .collect();
        let mut total = 0.0;
        for _ in 0..samples {
            let g: Vec<f64> = (0..dim).map(|_| rng.normal_f64()).collect();
            total += self.max_alignment(&g, &axes);
        }
        total / samples.max(1) as f64
    }

    fn max_alignment(&self, g: &[f64], axes: &[f64]) -> f64 {
        let dim = self.dim();
        let value = |z: &[f64]| -> (f64, Vec<f64>) {
            let v: Vec<f64> = (0..dim).map(|i| self.offset[i] + axes[i] * z[i]).collect();
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
            let h = v.iter().zip(g).map(|(a, b)| a * b).sum::<f64>() / norm;
            // d h / d v = (g - h v / |v|) / |v|; d v / d z = A.
            let grad = (0..dim)
                .map(|i| axes[i] * (g[i] - h * v[i] / norm) / norm)
                .collect();
            (h, grad)
        };
        // Start from the direction of g inside the ellipsoid.
        let gn = g.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        let mut z: Vec<f64> = g.iter().map(|x| x / gn).collect();
        let mut best = value(&z).0;
        let mut step = 1.0;
        for _ in 0..400 {
            let (h, grad) = value(&z);
            let mut trial: Vec<f64> = z.iter().zip(&grad).map(|(a, b)| a + step * b).collect();
            let n = trial.iter().map(|x| x * x).sum::<f64>().sqrt();
            if n > 1.0 {
                trial.iter_mut().for_each(|x| *x /= n);
            }
            let (h_new, _) = value(&trial);
            if h_new >= h {
                z = trial;
                best = best.max(h_new);
                step *= 1.2;
            } else {
                step *= 0.5;
                if step < 1e-9 {
                    break;
                }
            }
        }
        best
    }
}
