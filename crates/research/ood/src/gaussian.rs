//! Gaussians with known densities: the in-distribution N(0, I_D) against N(0, s^2 I_D),
//! scored by the true density (likelihood) and by typicality.

use rand::Rng;
use rand_distr::StandardNormal;

use crate::auroc::auroc;

/// `N(mean, sigma^2 I_D)`.
#[derive(Clone, Debug)]
pub struct IsoGaussian {
    pub mean: Vec<f64>,
    pub sigma: f64,
}

const LN_2PI: f64 = 1.837_877_066_409_345_5;

impl IsoGaussian {
    /// `N(0, sigma^2 I_dim)`.
    pub fn centred(dim: usize, sigma: f64) -> Self {
        Self {
            mean: vec![0.0; dim],
            sigma,
        }
    }

    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// ln density, nats.
    pub fn log_density(&self, x: &[f64]) -> f64 {
        let d = self.dim() as f64;
        let r2: f64 = x.iter().zip(&self.mean).map(|(a, m)| (a - m).powi(2)).sum();
        -0.5 * d * (LN_2PI + 2.0 * self.sigma.ln()) - 0.5 * r2 / (self.sigma * self.sigma)
    }

    /// Differential entropy, nats: `D/2 ln(2 pi e sigma^2)`.
    pub fn entropy(&self) -> f64 {
        0.5 * self.dim() as f64 * (LN_2PI + 1.0 + 2.0 * self.sigma.ln())
    }

    pub fn sample(&self, rng: &mut impl Rng) -> Vec<f64> {
        self.mean
            .iter()
            .map(|m| m + self.sigma * rng.sample::<f64, _>(StandardNormal))
            .collect()
    }
}

/// AUROCs of one (dimension, out-scale) pair.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GaussianRow {
    pub dim: usize,
    /// Standard deviation of the out-distribution (the in-distribution has 1).
    pub scale: f64,
    /// Score `-ln p(x)` under the true in-density.
    pub likelihood: f64,
    /// Score `|-ln p(x) - H(p)|` (typicality of single inputs).
    pub typicality: f64,
}

/// In N(0, I_dim), out N(0, scale^2 I_dim), `n` of each, true density.
pub fn gaussian_row(dim: usize, scale: f64, n: usize, rng: &mut impl Rng) -> GaussianRow {
    let p = IsoGaussian::centred(dim, 1.0);
    let out = IsoGaussian::centred(dim, scale);
    let h = p.entropy();
    let nll_in: Vec<f64> = (0..n).map(|_| -p.log_density(&p.sample(rng))).collect();
    let nll_out: Vec<f64> = (0..n).map(|_| -p.log_density(&out.sample(rng))).collect();
    let typical = |v: &[f64]| v.iter().map(|s| (s - h).abs()).collect::<Vec<_>>();
    GaussianRow {
        dim,
        scale,
        likelihood: auroc(&nll_in, &nll_out).expect("finite scores"),
        typicality: auroc(&typical(&nll_in), &typical(&nll_out)).expect("finite scores"),
    }
}
