//! A nearly perfect density model that fails: `q = (1 - delta) p + delta r`, where `r` is
//! a narrow bump on the out-distribution. `KL(p || q) <= -ln(1 - delta)` is tiny, yet once
//! `delta r` outweighs `p` where the out-distribution lives, the likelihood under `q` ranks
//! out-of-distribution inputs above in-distribution ones.

use rand::Rng;

use crate::auroc::{AurocError, auroc};
use crate::gaussian::IsoGaussian;

/// `ln(1 + e^a)` without overflow.
fn softplus(a: f64) -> f64 {
    if a > 30.0 { a } else { a.exp().ln_1p() }
}

/// The mixture `q = (1 - delta) p + delta r` by its components.
pub struct NearPerfect<'a> {
    pub p: &'a IsoGaussian,
    pub r: &'a IsoGaussian,
    pub delta: f64,
}

impl NearPerfect<'_> {
    /// `ln p(x) - ln q(x)`, exact for any delta in (0, 1), even 1e-100.
    pub fn log_ratio(&self, x: &[f64]) -> f64 {
        let ln_keep = (-self.delta).ln_1p();
        let a = self.delta.ln() + self.r.log_density(x) - self.p.log_density(x) - ln_keep;
        -(ln_keep + softplus(a))
    }

    pub fn log_density(&self, x: &[f64]) -> f64 {
        self.p.log_density(x) - self.log_ratio(x)
    }
}

/// One point of the AUROC-vs-KL curve.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MixturePoint {
    pub delta: f64,
    /// `KL(p || q)`, nats, Monte Carlo over in-distribution samples.
    pub kl: f64,
    /// AUROC of `-ln q(x)` for in = p, out = `out`.
    pub auroc: f64,
}

/// The curve over `deltas` (each in (0, 1); others give NaN scores, an error):
/// in-distribution `p`, out-distribution `out`, bump `r`; the same `n` samples of each for
/// every delta.
pub fn auroc_vs_kl(
    p: &IsoGaussian,
    out: &IsoGaussian,
    r: &IsoGaussian,
    deltas: &[f64],
    n: usize,
    rng: &mut impl Rng,
) -> Result<Vec<MixturePoint>, AurocError> {
    let xs_in: Vec<Vec<f64>> = (0..n).map(|_| p.sample(rng)).collect();
    let xs_out: Vec<Vec<f64>> = (0..n).map(|_| out.sample(rng)).collect();
    deltas
        .iter()
        .map(|&delta| {
            let q = NearPerfect { p, r, delta };
            let kl = xs_in.iter().map(|x| q.log_ratio(x)).sum::<f64>() / n as f64;
            let nll = |xs: &[Vec<f64>]| xs.iter().map(|x| -q.log_density(x)).collect::<Vec<_>>();
            Ok(MixturePoint {
                delta,
                kl,
                auroc: auroc(&nll(&xs_in), &nll(&xs_out))?,
            })
        })
        .collect()
}
