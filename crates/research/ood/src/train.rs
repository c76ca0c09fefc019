//! Maximum-likelihood training of an image density model (the [`Flow`] or the
//! [`PixelAr`]) on 8-bit images, and batched log-likelihoods. Every step draws its
//! minibatch, perturbation and dequantisation noise from a generator seeded by
//! (seed, step), so a resumed run repeats the same data.

use candle_core::{DType, Result, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarMap};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::flow::Flow;
use crate::pixel_ar::PixelAr;

/// A model of 8-bit images with a log-probability: `ln P(pixels)`, nats, of each image
/// of `pixels [N, D]` (values 0..=255 as f32). For the flow this is the dequantisation
/// bound `ln p((pixels + u) / 256) - D ln 256`, u drawn from `rng`; for the
/// autoregressive model it is exact.
pub trait ImageDensity {
    fn log_prob_pixels(&self, pixels: &Tensor, rng: &mut StdRng) -> Result<Tensor>;
}

impl ImageDensity for Flow {
    fn log_prob_pixels(&self, pixels: &Tensor, rng: &mut StdRng) -> Result<Tensor> {
        let d = pixels.dim(1)? as f64;
        self.log_prob(&dequantised(pixels, rng)?)? - d * 256f64.ln()
    }
}

impl ImageDensity for PixelAr {
    fn log_prob_pixels(&self, pixels: &Tensor, _: &mut StdRng) -> Result<Tensor> {
        self.log_prob(pixels)
    }
}

/// Bits per dimension of `ln P` (nats) of an image of `dim` pixels.
pub fn bits_per_dim(log_prob: f64, dim: usize) -> f64 {
    -log_prob / (dim as f64 * std::f64::consts::LN_2)
}

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

/// Trains `model` (whose variables are `vars`) for steps `from..to` (Adam; the moments restart on resume), calling `each(step,
/// bits per dim of the minibatch)` after every step.
pub fn train_model(
    model: &dyn ImageDensity,
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
        // Loss in bits per dimension.
        let nll = model
            .log_prob_pixels(&pixels, &mut rng)?
            .mean_all()?
            .neg()?;
        let loss = (nll / (dim as f64 * std::f64::consts::LN_2))?;
        opt.backward_step(&loss)?;
        each(step, f64::from(loss.to_scalar::<f32>()?))?;
    }
    Ok(())
}

/// `ln P(image)` (nats) of every image (any dequantisation noise seeded by `seed`).
pub fn log_likelihoods(
    model: &dyn ImageDensity,
    data: &Pixels,
    chunk: usize,
    seed: u64,
) -> Result<Vec<f64>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(data.len());
    let mut start = 0;
    while start < data.len() {
        let len = chunk.max(1).min(data.len() - start);
        let pixels = data.values.narrow(0, start, len)?;
        let log_prob = model.log_prob_pixels(&pixels, &mut rng)?;
        out.extend(log_prob.to_dtype(DType::F64)?.to_vec1::<f64>()?);
        start += len;
    }
    Ok(out)
}
