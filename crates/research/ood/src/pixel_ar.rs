//! A small autoregressive model of 8-bit images with exact likelihoods: pixels in raster
//! order, each pixel's 256-way distribution predicted by one MLP shared across positions
//! from its causal neighbourhood (the `radius` rows above, `radius` columns either side,
//! and the `radius` pixels to its left; outside the image counts as black). Shared
//! weights and a local view are the inductive bias of PixelCNN-like models.

use candle_core::{D, DType, Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder, linear};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PixelArConfig {
    pub rows: usize,
    pub cols: usize,
    /// Neighbourhood radius, pixels.
    pub radius: usize,
    /// Width of the MLP's two hidden layers.
    pub hidden: usize,
}

impl PixelArConfig {
    /// `(dy, dx)` of the causal neighbourhood, every one strictly before (0, 0) in raster
    /// order.
    pub fn offsets(&self) -> Vec<(isize, isize)> {
        let r = self.radius as isize;
        let mut out = Vec::new();
        for dy in -r..=0 {
            for dx in -r..=r {
                if dy < 0 || dx < 0 {
                    out.push((dy, dx));
                }
            }
        }
        out
    }
}

pub struct PixelAr {
    pub config: PixelArConfig,
    /// Indices into the padded flattened image, `[D * K]`.
    gather: Tensor,
    k: usize,
    layers: [Linear; 3],
}

impl PixelAr {
    pub fn new(config: PixelArConfig, vb: VarBuilder) -> Result<Self> {
        let offsets = config.offsets();
        let r = config.radius;
        let padded_cols = config.cols + 2 * r;
        let mut gather = Vec::with_capacity(config.rows * config.cols * offsets.len());
        for y in 0..config.rows {
            for x in 0..config.cols {
                for (dy, dx) in &offsets {
                    let py = (y + r) as isize + dy;
                    let px = (x + r) as isize + dx;
                    gather.push((py as usize * padded_cols + px as usize) as u32);
                }
            }
        }
        let k = offsets.len();
        let h = config.hidden;
        Ok(Self {
            config,
            gather: Tensor::from_vec(gather, config.rows * config.cols * k, vb.device())?,
            k,
            layers: [
                linear(k, h, vb.pp("fc1"))?,
                linear(h, h, vb.pp("fc2"))?,
                linear(h, 256, vb.pp("out"))?,
            ],
        })
    }

    /// Log-probabilities `[N, D, 256]` of each pixel's value given the pixels before it,
    /// for images `[N, D]` of pixel values 0..=255 (f32).
    pub fn conditionals(&self, pixels: &Tensor) -> Result<Tensor> {
        let c = self.config;
        let n = pixels.dim(0)?;
        let d = c.rows * c.cols;
        let image = (pixels.reshape((n, c.rows, c.cols))? / 255.0)?;
        // Black above and to both sides (rows below are never looked at).
        let padded = image
            .pad_with_zeros(1, c.radius, 0)?
            .pad_with_zeros(2, c.radius, c.radius)?
            .flatten_from(1)?;
        let features = padded
            .index_select(&self.gather, 1)?
            .reshape((n * d, self.k))?;
        let h = self.layers[0].forward(&features)?.relu()?;
        let h = self.layers[1].forward(&h)?.relu()?;
        let logits = self.layers[2].forward(&h)?;
        candle_nn::ops::log_softmax(&logits, D::Minus1)?.reshape((n, d, 256))
    }

    /// `ln P(image)`, nats, `[N]`: the exact discrete log-probability.
    pub fn log_prob(&self, pixels: &Tensor) -> Result<Tensor> {
        let (n, d) = pixels.dims2()?;
        let logp = self.conditionals(pixels)?;
        let index = pixels.to_dtype(DType::U32)?.reshape((n, d, 1))?;
        logp.gather(&index, 2)?.squeeze(2)?.sum(1)
    }
}
