//! Debiased decoding: the final hidden state h becomes h' = alpha h + (1 - alpha) P h,
//! P the INLP projection, with alpha fixed (plain INLP) or chosen per step from the
//! bias of the top-p next-token candidates (A-INLP).

use candle_core::{Device, Tensor};
use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

use crate::decoding::{a_inlp_alpha, step_bias, top_p};

/// How alpha is chosen at each decoding step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum AlphaRule {
    /// Plain INLP: the same alpha at every step (1: the model unchanged, 0: fully
    /// projected).
    Fixed { alpha: f64 },
    /// A-INLP: alpha = 1 when the step's bias is within `band` of 0, else
    /// max(1 - |bias|, floor) (floor 0.6 in Liang et al.).
    Adaptive { band: f64, floor: f64 },
    /// A-INLP's gate with a fixed strength: alpha = 1 when the step's bias is within
    /// `band` of 0, else `alpha` (the knob of the trade-off curve, comparable with
    /// [`AlphaRule::Fixed`] point by point).
    Gated { band: f64, alpha: f64 },
}

#[derive(Clone)]
pub struct Debiaser {
    /// P, `(width, width)`, symmetric.
    projection: Tensor,
    /// Each token's bias score (cosine of its output embedding with the bias direction).
    token_bias: Vec<f64>,
    pub rule: AlphaRule,
    /// The nucleus over which a step's bias is measured (0.7 in the reference code).
    pub detect_p: f64,
}

impl Debiaser {
    pub fn new(
        projection: &DMatrix<f64>,
        token_bias: Vec<f64>,
        rule: AlphaRule,
        detect_p: f64,
    ) -> candle_core::Result<Self> {
        let d = projection.nrows();
        let values: Vec<f32> = projection.transpose().iter().map(|&x| x as f32).collect();
        Ok(Self {
            projection: Tensor::from_vec(values, (d, d), &Device::Cpu)?,
            token_bias,
            rule,
            detect_p,
        })
    }

    /// The same projection and token biases under another rule.
    pub fn with_rule(&self, rule: AlphaRule) -> Self {
        Self {
            rule,
            ..self.clone()
        }
    }

    /// The bias of a step whose undebiased next-token distribution is `probs`.
    pub fn step_bias(&self, probs: &[f32]) -> f64 {
        let p: Vec<f64> = probs.iter().map(|&x| x as f64).collect();
        step_bias(&p, &top_p(&p, self.detect_p), &self.token_bias)
    }

    /// Alpha for a step of bias `bias` under this rule.
    pub fn alpha(&self, bias: f64) -> f64 {
        match self.rule {
            AlphaRule::Fixed { alpha } => alpha,
            AlphaRule::Adaptive { band, floor } => a_inlp_alpha(bias, band, floor),
            AlphaRule::Gated { band, alpha } => {
                if bias.abs() <= band {
                    1.0
                } else {
                    alpha
                }
            }
        }
    }

    /// Alpha for each row of undebiased next-token distributions.
    pub fn alphas(&self, plain: &[Vec<f32>]) -> Vec<f64> {
        match self.rule {
            AlphaRule::Fixed { alpha } => vec![alpha; plain.len()],
            AlphaRule::Adaptive { .. } | AlphaRule::Gated { .. } => plain
                .iter()
                .map(|p| self.alpha(self.step_bias(p)))
                .collect(),
        }
    }

    /// h' = alpha h + (1 - alpha) P h for each row of `hidden` `(n, width)`.
    pub fn mix(&self, hidden: &Tensor, alphas: &[f64]) -> candle_core::Result<Tensor> {
        let n = alphas.len();
        let a: Vec<f32> = alphas.iter().map(|&x| x as f32).collect();
        let a = Tensor::from_vec(a, (n, 1), &Device::Cpu)?.to_dtype(hidden.dtype())?;
        let projected = hidden.matmul(&self.projection.to_dtype(hidden.dtype())?)?;
        let one_minus = a.affine(-1.0, 1.0)?;
        hidden.broadcast_mul(&a)? + projected.broadcast_mul(&one_minus)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::D;
    use candle_nn::ops::softmax;
    use nalgebra::DVector;

    #[test]
    fn alpha_one_changes_nothing_and_less_moves_the_distribution() {
        // A projection removing the first axis, a random-ish output layer.
        let p = DMatrix::from_diagonal(&DVector::from_vec(vec![0.0, 1.0, 1.0]));
        let w = Tensor::from_vec(
            vec![
                1.0f32, -2.0, 0.5, 0.3, 0.0, 1.0, -1.0, 1.0, 2.0, 0.2, 0.2, -0.7,
            ],
            (4, 3),
            &Device::Cpu,
        )
        .unwrap();
        let bias = Tensor::from_vec(vec![0.1f32, -0.2, 0.0, 0.3], 4, &Device::Cpu).unwrap();
        let h = Tensor::from_vec(vec![1.5f32, -0.5, 0.25], (1, 3), &Device::Cpu).unwrap();
        let distribution = |h: &Tensor| -> Vec<f32> {
            let logits = h
                .matmul(&w.t().unwrap())
                .unwrap()
                .broadcast_add(&bias)
                .unwrap();
            softmax(&logits, D::Minus1)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        let debiaser =
            Debiaser::new(&p, vec![0.0; 4], AlphaRule::Fixed { alpha: 1.0 }, 0.7).unwrap();
        let plain = distribution(&h);
        assert_eq!(distribution(&debiaser.mix(&h, &[1.0]).unwrap()), plain);
        let debiased = distribution(&debiaser.mix(&h, &[0.6]).unwrap());
        assert!(
            plain
                .iter()
                .zip(&debiased)
                .any(|(a, b)| (a - b).abs() > 1e-3)
        );
    }
}
