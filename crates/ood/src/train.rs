//! Maximum-likelihood training of a [`Flow`] on 8-bit images, and batched
//! log-likelihoods. Every step draws its minibatch, perturbation and dequantisation noise
//! from a generator seeded by (seed, step), so a resumed run repeats the same data.

use candle_core::{DType, Result, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarMap};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::flow::{Flow, bits_per_dim};

/// 8-bit images as one `[N, D]` f32 tensor of pixel values 0..=255.
pub struct Pixels {
    pub values: Tensor,
}

impl Pixels {
    pub fn new(pixels: &[u8], dim: usize, device: &candle_core::Device) -> Result<Self> {
        let n = pixels.len() / dim.max(1);
        let v: Vec<f32> = pixels[..n * dim].iter().map(|p| f32::from(*p)).collect();
        Ok(Self {
            values: Tensor::from_vec(v, (n, dim), device)?,
        })
    }

    pub fn len(&self) -> usize {
        self.values.dim(0).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Clone, Copy, Debug)]
pub struct TrainConfig {
    pub batch: usize,
    pub lr: f64,
    pub seed: u64,
    /// Background model of the likelihood ratio (Ren et al.): each pixel is replaced by
    /// a uniform random value with this probability. None for the plain model.
    pub perturb: Option<f64>,
}

fn step_rng(seed: u64, step: usize) -> StdRng {
    StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ step as u64)
}

/// Dequantised `(pixel + u) / 256` of `pixels [B, D]`, u uniform from `rng`.
fn dequantised(pixels: &Tensor, rng: &mut StdRng) -> Result<Tensor> {
    let (b, d) = pixels.dims2()?;
    let u: Vec<f32> = (0..b * d).map(|_| rng.random::<f32>()).collect();
    (pixels + Tensor::from_vec(u, (b, d), pixels.device())?)? / 256.0
}

/// Trains steps `from..to` (Adam; the moments restart on resume), calling `each(step,
/// bits per dim of the minibatch)` after every step.
pub fn train_flow(
    flow: &Flow,
    vars: &VarMap,
    data: &Pixels,
    config: TrainConfig,
    steps: std::ops::Range<usize>,
    mut each: impl FnMut(usize, f64) -> Result<()>,
) -> Result<()> {
    let mut opt = AdamW::new(
        vars.all_vars(),
        ParamsAdamW {
            lr: config.lr,
            weight_decay: 0.0,
            ..ParamsAdamW::default()
        },
    )?;
    let (n, dim) = data.values.dims2()?;
    let device = data.values.device();
    for step in steps {
        let mut rng = step_rng(config.seed, step);
        let idx: Vec<u32> = (0..config.batch)
            .map(|_| rng.random_range(0..n as u32))
            .collect();
        let mut pixels = data
            .values
            .index_select(&Tensor::from_vec(idx, config.batch, device)?, 0)?;
        if let Some(rate) = config.perturb {
            let mut v = pixels.flatten_all()?.to_vec1::<f32>()?;
            for p in v.iter_mut() {
                if rng.random::<f64>() < rate {
                    *p = f32::from(rng.random::<u8>());
                }
            }
            pixels = Tensor::from_vec(v, (config.batch, dim), device)?;
        }
        let x = dequantised(&pixels, &mut rng)?;
        // Loss in bits per dimension (the offset ln 256 does not change the gradient).
        let nll = flow.log_prob(&x)?.mean_all()?.neg()?;
        let loss = (nll / (dim as f64 * std::f64::consts::LN_2))?;
        opt.backward_step(&loss)?;
        let bpd = bits_per_dim(
            -f64::from(loss.to_scalar::<f32>()?) * dim as f64 * std::f64::consts::LN_2,
            dim,
        );
        each(step, bpd)?;
    }
    Ok(())
}

/// `ln p(x)` (nats) of every image, dequantised with noise seeded by `seed`.
pub fn log_likelihoods(flow: &Flow, data: &Pixels, chunk: usize, seed: u64) -> Result<Vec<f64>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(data.len());
    let mut start = 0;
    while start < data.len() {
        let len = chunk.max(1).min(data.len() - start);
        let x = dequantised(&data.values.narrow(0, start, len)?, &mut rng)?;
        out.extend(flow.log_prob(&x)?.to_dtype(DType::F64)?.to_vec1::<f64>()?);
        start += len;
    }
    Ok(out)
}
