//! Training a functional classifier in the full space or in a subspace: Adam on the
//! trained variable (theta, or phi), seeded minibatches, accuracy over a whole set.

use candle_core::{D, DType, Result, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};

use crate::rng::SplitMix64;
use crate::subspace::AffineSubspace;

/// What is trained.
pub enum Space<'a> {
    /// All D parameters.
    Full(&'a Var),
    /// The d coordinates of a subspace.
    Sub(&'a AffineSubspace),
    /// A pruned network (lottery ticket): `theta = var * mask`, mask of 0s and 1s.
    Masked(&'a Var, &'a Tensor),
}

impl Space<'_> {
    pub fn theta(&self) -> Result<Tensor> {
        match self {
            Space::Full(v) => Ok(v.as_tensor().clone()),
            Space::Sub(s) => s.theta(),
            Space::Masked(v, mask) => v.as_tensor().mul(mask),
        }
    }

    fn var(&self) -> Var {
        match self {
            Space::Full(v) | Space::Masked(v, _) => (*v).clone(),
            Space::Sub(s) => s.phi.clone(),
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct TrainConfig {
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    pub seed: u64,
}

/// A labelled set held as tensors: inputs `[N, ...]` and labels `[N]` (u32).
pub struct Labelled {
    pub x: Tensor,
    pub y: Tensor,
}

impl Labelled {
    pub fn len(&self) -> usize {
        self.y.dim(0).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Trains `space` for `config.steps` minibatch steps of cross-entropy; calls `each` with
/// (step, loss) after every step (an error from it stops training). Returns the final
/// minibatch loss.
pub fn train<F>(
    forward: F,
    space: &Space<'_>,
    data: &Labelled,
    config: TrainConfig,
    mut each: impl FnMut(usize, f32) -> Result<()>,
) -> Result<f32>
where
    F: Fn(&Tensor, &Tensor) -> Result<Tensor>,
{
    let mut opt = AdamW::new(
        vec![space.var()],
        ParamsAdamW {
            lr: config.lr,
            weight_decay: 0.0,
            ..ParamsAdamW::default()
        },
    )?;
    let mut rng = SplitMix64::new(config.seed);
    let n = data.len();
    let mut last = f32::NAN;
    for step in 0..config.steps {
        let idx: Vec<u32> = (0..config.batch.min(n))
            .map(|_| (rng.next_u64() % n as u64) as u32)
            .collect();
        let idx = Tensor::from_vec(idx, config.batch.min(n), data.x.device())?;
        let (x, y) = (data.x.index_select(&idx, 0)?, data.y.index_select(&idx, 0)?);
        let loss = candle_nn::loss::cross_entropy(&forward(&space.theta()?, &x)?, &y)?;
        opt.backward_step(&loss)?;
        last = loss.to_scalar::<f32>()?;
        each(step, last)?;
    }
    Ok(last)
}

/// Share of `data` classified correctly by parameters `theta`, in [0, 1].
pub fn accuracy<F>(forward: F, theta: &Tensor, data: &Labelled, chunk: usize) -> Result<f64>
where
    F: Fn(&Tensor, &Tensor) -> Result<Tensor>,
{
    let n = data.len();
    let mut correct = 0usize;
    let mut start = 0;
    while start < n {
        let len = chunk.max(1).min(n - start);
        let x = data.x.narrow(0, start, len)?;
        let y = data.y.narrow(0, start, len)?;
        let predicted = forward(theta, &x)?.argmax(D::Minus1)?;
        correct += predicted
            .eq(&y)?
            .to_dtype(DType::F32)?
            .sum_all()?
            .to_scalar::<f32>()? as usize;
        start += len;
    }
    Ok(correct as f64 / n.max(1) as f64)
}

/// The lottery-ticket mask at a given number of kept weights: 1 for the `keep` largest
/// magnitudes of `theta` (global magnitude pruning), 0 elsewhere.
pub fn magnitude_mask(theta: &Tensor, keep: usize) -> Result<Tensor> {
    let values = theta.to_vec1::<f32>()?;
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].abs().total_cmp(&values[a].abs()));
    let mut mask = vec![0f32; values.len()];
    for &i in order.iter().take(keep) {
        mask[i] = 1.0;
    }
    Tensor::from_vec(mask, values.len(), theta.device())
}
