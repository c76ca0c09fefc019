//! The no-free-lunch construction: for any OOD score, an out-distribution exists on which
//! the score does no better than chance. Take the in-distribution conditioned on the
//! inputs the score finds most typical (score at or below its in-distribution median):
//! its supports overlap the in-distribution's, and AUROC <= 1/2 by construction.

use crate::gaussian::IsoGaussian;
use crate::scores::{Evidence, Score, ood_scores};

/// A toy setting where every score is exact: the in-distribution N(0, I_D) is its own
/// model, N(0, 4 I_D) is the background model, and the compressor sees the input
/// quantised to a `side x side` 8-bit image (D = side^2).
#[derive(Debug, Clone)]
pub struct GaussianToy {
    pub side: usize,
    pub model: IsoGaussian,
    pub background: IsoGaussian,
}

impl GaussianToy {
    pub fn new(side: usize) -> Self {
        let dim = side * side;
        Self {
            side,
            model: IsoGaussian::centred(dim, 1.0),
            background: IsoGaussian::centred(dim, 2.0),
        }
    }

    /// `score` of one input `x`; NaN when it cannot be computed.
    pub fn score(&self, score: Score, x: &[f64]) -> f64 {
        let ll = [self.model.log_density(x)];
        let bg = [self.background.log_density(x)];
        let pixels: Vec<u8> = x
            .iter()
            .map(|v| (128.0 + 40.0 * v).clamp(0.0, 255.0) as u8)
            .collect();
        let bits = [crate::complexity::png_bits(&pixels, self.side, self.side).unwrap_or(f64::NAN)];
        let e = Evidence {
            log_likelihood: &ll,
            background: Some(&bg),
            code_bits: Some(&bits),
        };
        ood_scores(score, e, self.model.entropy()).map_or(f64::NAN, |v| v[0])
    }
}

/// Scores of `n` in-distribution inputs and of `n` inputs from the constructed
/// out-distribution (rejection sampling from the in-distribution, at most `max_draws`
/// draws). The median is taken on a separate set of `n` draws.
pub fn adversarial_out_scores<X>(
    mut draw_in: impl FnMut() -> X,
    score: impl Fn(&X) -> f64,
    n: usize,
    max_draws: usize,
) -> Option<(Vec<f64>, Vec<f64>)> {
    let mut reference: Vec<f64> = (0..n).map(|_| score(&draw_in())).collect();
    reference.sort_by(f64::total_cmp);
    let median = reference[n / 2];
    let inside: Vec<f64> = (0..n).map(|_| score(&draw_in())).collect();
    let mut out = Vec::with_capacity(n);
    let mut draws = 0;
    while out.len() < n {
        if draws == max_draws {
            return None;
        }
        draws += 1;
        let s = score(&draw_in());
        if s <= median {
            out.push(s);
        }
    }
    Some((inside, out))
}
