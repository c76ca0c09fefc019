//! A multi-scale normalizing flow over grey images (RealNVP's architecture with Glow's
//! steps), with exact log-likelihoods.
//!
//! Pixels (0..=255) are dequantised with uniform noise to `x = (pixel + u) / 256` in
//! (0, 1) and mapped to `y = logit(alpha + (1 - 2 alpha) x)`. The image then passes
//! through `scales` levels, channels-last. Each level squeezes every 2x2 block of pixels
//! into channels (`[H, W, C] -> [H/2, W/2, 4C]`) and applies `steps_per_scale` steps of
//! - an actnorm (a learned scale and shift per channel),
//! - an invertible 1x1 convolution (Glow's LU form, starting as a channel permutation),
//! - an affine coupling: the second half of the channels moves by
//!   `y_b * exp(s) + t`, with `(s, t)` computed from the first half by the coupling net
//!   (`s = scale * tanh(raw)`; its last layer starts at zero, so every coupling starts as
//!   the identity). The net is either convolutional, 3x3 -> 1x1 -> 3x3 (local, weights
//!   shared across positions, as in RealNVP and Glow), or dense, two hidden layers over
//!   the whole flattened half (no locality, no sharing): the same flow with and without
//!   the convolutional inductive bias ([`Coupling`]).
//!
//! Every level but the last then factors out half of its channels as latents, with a
//! Gaussian prior whose mean and log-sd a 3x3 convolution computes from the half that
//! goes on (starting at N(0, 1)); the last level's output has the N(0, 1) prior.
//! `ln p(x) = sum of the priors' ln N + sum ln|det|` (steps and the logit map), nats.
//! Convolutions run as matrix products ([`grad_layers::conv2d_same_nhwc`]).

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{Init, VarBuilder};
use grad_layers::conv2d_same_nhwc;

/// ln(2 pi).
const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// What computes a coupling's shift and log-scale from the conditioning half.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Coupling {
    /// 3x3 -> 1x1 -> 3x3 convolutions of `hidden` channels: each output sees a 5x5
    /// neighbourhood of the level's grid, with the same weights everywhere.
    #[default]
    Conv,
    /// Two dense layers of `hidden` units over the whole flattened half: every output sees
    /// every input, with weights of its own.
    Dense,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlowConfig {
    /// Image rows and columns (D = rows * cols), each divisible by `2^scales`.
    pub rows: usize,
    pub cols: usize,
    /// Levels of squeezing (2 for 28x28: 14x14x4, then 7x7x8).
    pub scales: usize,
    pub steps_per_scale: usize,
    /// Hidden channels (convolutional) or units (dense) of the coupling nets at the first
    /// level; each level doubles them.
    pub hidden: usize,
    pub coupling: Coupling,
    /// The logit map's margin, keeping `logit` finite at 0 and 1.
    pub alpha: f64,
}

impl FlowConfig {
    pub fn dim(&self) -> usize {
        self.rows * self.cols
    }

    fn check(&self) -> Result<()> {
        let block = 1usize << self.scales;
        if self.scales == 0 || !self.rows.is_multiple_of(block) || !self.cols.is_multiple_of(block)
        {
            return Err(candle_core::Error::Msg(format!(
                "a {}x{} image cannot be squeezed {} times",
                self.rows, self.cols, self.scales
            )));
        }
        Ok(())
    }
}

/// A convolution `[out, in, k, k]` with bias, channels-last.
struct Conv {
    weight: Tensor,
    bias: Tensor,
}

impl Conv {
    fn new(
        vb: &VarBuilder,
        name: &str,
        cin: usize,
        cout: usize,
        k: usize,
        zero: bool,
    ) -> Result<Self> {
        let init = if zero {
            Init::Const(0.0)
        } else {
            candle_nn::init::DEFAULT_KAIMING_NORMAL
        };
        Ok(Self {
            weight: vb.get_with_hints((cout, cin, k, k), &format!("{name}.weight"), init)?,
            bias: vb.get_with_hints(cout, &format!("{name}.bias"), Init::Const(0.0))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        conv2d_same_nhwc(x, &self.weight, Some(&self.bias))
    }
}

/// A dense layer `[out, in]` with bias.
struct Dense {
    weight: Tensor,
    bias: Tensor,
}

impl Dense {
    fn new(vb: &VarBuilder, name: &str, cin: usize, cout: usize, zero: bool) -> Result<Self> {
        let init = if zero {
            Init::Const(0.0)
        } else {
            candle_nn::init::DEFAULT_KAIMING_NORMAL
        };
        Ok(Self {
            weight: vb.get_with_hints((cout, cin), &format!("{name}.weight"), init)?,
            bias: vb.get_with_hints(cout, &format!("{name}.bias"), Init::Const(0.0))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)
    }
}

/// The coupling's net: `[N, H, W, half] -> [N, H, W, 2 * moved]`.
enum CouplingNet {
    Conv([Conv; 3]),
    Dense([Dense; 3]),
}

impl CouplingNet {
    /// For a level whose grid is `rows x cols`.
    fn new(
        vb: &VarBuilder,
        coupling: Coupling,
        (rows, cols): (usize, usize),
        half: usize,
        moved: usize,
        hidden: usize,
    ) -> Result<Self> {
        Ok(match coupling {
            Coupling::Conv => CouplingNet::Conv([
                Conv::new(vb, "coupling.in", half, hidden, 3, false)?,
                Conv::new(vb, "coupling.mid", hidden, hidden, 1, false)?,
                Conv::new(vb, "coupling.out", hidden, 2 * moved, 3, true)?,
            ]),
            Coupling::Dense => {
                let cells = rows * cols;
                CouplingNet::Dense([
                    Dense::new(vb, "coupling.in", cells * half, hidden, false)?,
                    Dense::new(vb, "coupling.mid", hidden, hidden, false)?,
                    Dense::new(vb, "coupling.out", hidden, cells * 2 * moved, true)?,
                ])
            }
        })
    }

    fn forward(&self, xa: &Tensor, moved: usize) -> Result<Tensor> {
        match self {
            CouplingNet::Conv(net) => {
                let h = net[0].forward(xa)?.relu()?;
                let h = net[1].forward(&h)?.relu()?;
                net[2].forward(&h)
            }
            CouplingNet::Dense(net) => {
                let (n, rows, cols, _) = xa.dims4()?;
                let h = net[0].forward(&xa.reshape((n, ()))?)?.relu()?;
                let h = net[1].forward(&h)?.relu()?;
                net[2].forward(&h)?.reshape((n, rows, cols, 2 * moved))
            }
        }
    }
}

/// Sum over every axis but the first: `[N, ...] -> [N]`.
fn per_image(x: &Tensor) -> Result<Tensor> {
    let n = x.dim(0)?;
    x.reshape((n, ()))?.sum(1)
}

/// `ln N(z; 0, I)` per image.
fn standard_normal_log_prob(z: &Tensor) -> Result<Tensor> {
    let d = (z.elem_count() / z.dim(0)?) as f64;
    per_image(&(z.sqr()? * -0.5)?)? - 0.5 * d * LN_2PI
}

/// `[N, H, W, C] -> [N, H/2, W/2, 4C]`: each 2x2 block of pixels into channels.
fn squeeze(x: &Tensor) -> Result<Tensor> {
    let (n, h, w, c) = x.dims4()?;
    x.reshape((n, h / 2, 2, w / 2, 2, c))?
        .permute((0, 1, 3, 2, 4, 5))?
        .reshape((n, h / 2, w / 2, 4 * c))
}

fn unsqueeze(x: &Tensor) -> Result<Tensor> {
    let (n, h, w, c4) = x.dims4()?;
    let c = c4 / 4;
    x.reshape((n, h, w, 2, 2, c))?
        .permute((0, 1, 3, 2, 4, 5))?
        .reshape((n, 2 * h, 2 * w, c))
}

/// One step: actnorm, invertible 1x1 convolution, affine coupling.
struct Step {
    log_scale: Tensor,
    shift: Tensor,
    /// `W = P (L + I) (U + diag(sign * exp(log_s)))`, L and U masked to strictly lower and
    /// upper triangles.
    permutation: Tensor,
    lower: Tensor,
    upper: Tensor,
    log_s: Tensor,
    lower_mask: Tensor,
    upper_mask: Tensor,
    net: CouplingNet,
    /// Per-channel bound of the coupling's log-scale.
    bound: Tensor,
    channels: usize,
}

impl Step {
    /// A step on a `grid` (rows, columns) of `channels`; `index` seeds its permutation.
    fn new(
        vb: &VarBuilder,
        channels: usize,
        grid: (usize, usize),
        (coupling, hidden): (Coupling, usize),
        index: usize,
    ) -> Result<Self> {
        let dev = vb.device();
        let dtype = vb.dtype();
        let zero = Init::Const(0.0);
        // A fixed permutation of the channels, different for every step (a seeded shuffle).
        let mut order: Vec<usize> = (0..channels).collect();
        let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ index as u64;
        for i in (1..channels).rev() {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            order.swap(i, (state >> 33) as usize % (i + 1));
        }
        let mut p = vec![0f64; channels * channels];
        for (row, col) in order.iter().enumerate() {
            p[row * channels + col] = 1.0;
        }
        let triangle = |lower: bool| -> Result<Tensor> {
            let m: Vec<f64> = (0..channels * channels)
                .map(|i| {
                    let (r, c) = (i / channels, i % channels);
                    f64::from(u8::from(if lower { r > c } else { r < c }))
                })
                .collect();
            Tensor::from_vec(m, (channels, channels), dev)?.to_dtype(dtype)
        };
        let half = channels / 2;
        let moved = channels - half;
        Ok(Self {
            log_scale: vb.get_with_hints(channels, "actnorm.log_scale", zero)?,
            shift: vb.get_with_hints(channels, "actnorm.shift", zero)?,
            permutation: Tensor::from_vec(p, (channels, channels), dev)?.to_dtype(dtype)?,
            lower: vb.get_with_hints((channels, channels), "mix.lower", zero)?,
            upper: vb.get_with_hints((channels, channels), "mix.upper", zero)?,
            log_s: vb.get_with_hints(channels, "mix.log_s", zero)?,
            lower_mask: triangle(true)?,
            upper_mask: triangle(false)?,
            net: CouplingNet::new(vb, coupling, grid, half, moved, hidden)?,
            bound: vb.get_with_hints(moved, "coupling.bound", Init::Const(1.0))?,
            channels,
        })
    }

    /// The 1x1 convolution's matrix `[C, C]`.
    fn mixing(&self) -> Result<Tensor> {
        let eye = Tensor::eye(self.channels, self.lower.dtype(), self.lower.device())?;
        let l = (self.lower.mul(&self.lower_mask)? + &eye)?;
        let u = (self.upper.mul(&self.upper_mask)? + eye.broadcast_mul(&self.log_s.exp()?)?)?;
        self.permutation.matmul(&l)?.matmul(&u)
    }

    /// `(s, t)` of the coupling from the conditioning half.
    fn shift_scale(&self, xa: &Tensor) -> Result<(Tensor, Tensor)> {
        let moved = self.channels - self.channels / 2;
        let st = self.net.forward(xa, moved)?;
        let s = st.narrow(3, 0, moved)?.tanh()?.broadcast_mul(&self.bound)?;
        Ok((s, st.narrow(3, moved, moved)?))
    }

    /// `(y, ln|det|)` of `x [N, H, W, C]`.
    fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let (n, h, w, c) = x.dims4()?;
        let pixels = (h * w) as f64;
        let x = x
            .broadcast_add(&self.shift)?
            .broadcast_mul(&self.log_scale.exp()?)?;
        let x = x
            .reshape((n * h * w, c))?
            .matmul(&self.mixing()?.t()?)?
            .reshape((n, h, w, c))?;
        let half = c / 2;
        let (xa, xb) = (x.narrow(3, 0, half)?, x.narrow(3, half, c - half)?);
        let (s, t) = self.shift_scale(&xa)?;
        let yb = (xb * s.exp()?)?.add(&t)?;
        let y = Tensor::cat(&[&xa, &yb], 3)?;
        let fixed = ((self.log_scale.sum_all()? + self.log_s.sum_all()?)? * pixels)?;
        let logdet = per_image(&s)?.broadcast_add(&fixed)?;
        Ok((y, logdet))
    }

    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        let (n, h, w, c) = y.dims4()?;
        let half = c / 2;
        let (ya, yb) = (y.narrow(3, 0, half)?, y.narrow(3, half, c - half)?);
        let (s, t) = self.shift_scale(&ya)?;
        let xb = (yb - t)?.mul(&s.neg()?.exp()?)?;
        let x = Tensor::cat(&[&ya, &xb], 3)?;
        let inverse = invert(&self.mixing()?)?;
        let x = x
            .reshape((n * h * w, c))?
            .matmul(&inverse.t()?)?
            .reshape((n, h, w, c))?;
        x.broadcast_mul(&self.log_scale.neg()?.exp()?)?
            .broadcast_sub(&self.shift)
    }
}

/// The inverse of a small square matrix (Gauss-Jordan with partial pivoting, in f64).
fn invert(m: &Tensor) -> Result<Tensor> {
    let c = m.dim(0)?;
    let mut a: Vec<f64> = m.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
    let mut inv: Vec<f64> = (0..c * c)
        .map(|i| f64::from(u8::from(i / c == i % c)))
        .collect();
    for col in 0..c {
        let pivot = (col..c)
            .max_by(|&i, &j| a[i * c + col].abs().total_cmp(&a[j * c + col].abs()))
            .unwrap_or(col);
        if a[pivot * c + col].abs() < 1e-300 {
            return Err(candle_core::Error::Msg("a singular 1x1 convolution".into()));
        }
        for k in 0..c {
            a.swap(col * c + k, pivot * c + k);
            inv.swap(col * c + k, pivot * c + k);
        }
        let p = a[col * c + col];
        for k in 0..c {
            a[col * c + k] /= p;
            inv[col * c + k] /= p;
        }
        for row in (0..c).filter(|r| *r != col) {
            let f = a[row * c + col];
            for k in 0..c {
                a[row * c + k] -= f * a[col * c + k];
                inv[row * c + k] -= f * inv[col * c + k];
            }
        }
    }
    Tensor::from_vec(inv, (c, c), &Device::Cpu)?
        .to_dtype(m.dtype())?
        .to_device(m.device())
}

/// One level: its steps and, for every level but the last, the prior of the half it
/// factors out.
struct Level {
    steps: Vec<Step>,
    prior: Option<Conv>,
}

pub struct Flow {
    pub config: FlowConfig,
    levels: Vec<Level>,
}

impl Flow {
    /// A flow that starts as the identity (zero last layers, zero actnorm, permutations).
    pub fn new(config: FlowConfig, vb: VarBuilder) -> Result<Self> {
        config.check()?;
        let mut levels = Vec::new();
        let mut channels = 1;
        for level in 0..config.scales {
            channels *= 4;
            let vb = vb.pp(format!("level{level}"));
            let hidden = config.hidden << level;
            let grid = (config.rows >> (level + 1), config.cols >> (level + 1));
            let steps = (0..config.steps_per_scale)
                .map(|k| {
                    Step::new(
                        &vb.pp(format!("step{k}")),
                        channels,
                        grid,
                        (config.coupling, hidden),
                        level * 100 + k,
                    )
                })
                .collect::<Result<_>>()?;
            let prior = if level + 1 < config.scales {
                let kept = channels / 2;
                let prior = Conv::new(&vb, "prior", kept, 2 * (channels - kept), 3, true)?;
                channels = kept;
                Some(prior)
            } else {
                None
            };
            levels.push(Level { steps, prior });
        }
        Ok(Self { config, levels })
    }

    /// `(eps, ln|det deps/dy|)` of `y [N, D]` in logit space: `eps [N, D]` are the
    /// latents standardised by their priors, so that `ln p(y) = ln N(eps; 0, I) + ln|det|`.
    pub fn forward(&self, y: &Tensor) -> Result<(Tensor, Tensor)> {
        let n = y.dim(0)?;
        let mut h = y.reshape((n, self.config.rows, self.config.cols, 1))?;
        let mut logdet = Tensor::zeros(n, y.dtype(), y.device())?;
        let mut latents = Vec::new();
        for level in &self.levels {
            h = squeeze(&h)?;
            for step in &level.steps {
                let (next, ld) = step.forward(&h)?;
                h = next;
                logdet = (logdet + ld)?;
            }
            if let Some(prior) = &level.prior {
                let c = h.dim(3)?;
                let (kept, out) = (h.narrow(3, 0, c / 2)?, h.narrow(3, c / 2, c - c / 2)?);
                let stats = prior.forward(&kept)?;
                let m = c - c / 2;
                let (mean, log_sd) = (stats.narrow(3, 0, m)?, stats.narrow(3, m, m)?);
                latents.push(((out - mean)? * log_sd.neg()?.exp()?)?.reshape((n, ()))?);
                logdet = (logdet - per_image(&log_sd)?)?;
                h = kept;
            }
        }
        latents.push(h.reshape((n, ()))?);
        Ok((Tensor::cat(&latents, 1)?, logdet))
    }

    /// `y [N, D]` of standardised latents `eps [N, D]`.
    pub fn inverse(&self, eps: &Tensor) -> Result<Tensor> {
        let n = eps.dim(0)?;
        // The latents' shapes, level by level, as `forward` laid them out.
        let mut shapes = Vec::new();
        let (mut h, mut w, mut c) = (self.config.rows, self.config.cols, 1);
        for level in &self.levels {
            (h, w, c) = (h / 2, w / 2, c * 4);
            if level.prior.is_some() {
                shapes.push((h, w, c - c / 2));
                c /= 2;
            }
        }
        let mut offset: usize = shapes.iter().map(|(h, w, c)| h * w * c).sum();
        let mut x = eps.narrow(1, offset, h * w * c)?.reshape((n, h, w, c))?;
        for level in self.levels.iter().rev() {
            if let Some(prior) = &level.prior {
                let (lh, lw, lc) = shapes.pop().expect("a shape per prior");
                offset -= lh * lw * lc;
                let e = eps
                    .narrow(1, offset, lh * lw * lc)?
                    .reshape((n, lh, lw, lc))?;
                let stats = prior.forward(&x)?;
                let (mean, log_sd) = (stats.narrow(3, 0, lc)?, stats.narrow(3, lc, lc)?);
                let out = ((e * log_sd.exp()?)? + mean)?;
                x = Tensor::cat(&[&x, &out], 3)?;
            }
            for step in level.steps.iter().rev() {
                x = step.inverse(&x)?;
            }
            x = unsqueeze(&x)?;
        }
        x.reshape((n, ()))
    }

    /// `ln p(y)`, nats, `[N]`: the flow's density in logit space.
    pub fn log_prob_logit(&self, y: &Tensor) -> Result<Tensor> {
        let (eps, logdet) = self.forward(y)?;
        standard_normal_log_prob(&eps)? + logdet
    }

    /// `ln p(x)`, nats, `[N]`, of dequantised images `x [N, D]` in (0, 1).
    pub fn log_prob(&self, x: &Tensor) -> Result<Tensor> {
        let (y, logdet) = logit_map(x, self.config.alpha)?;
        self.log_prob_logit(&y)? + logdet
    }
}

/// `y = logit(alpha + (1 - 2 alpha) x)` and `ln|det dy/dx|` per row.
pub fn logit_map(x: &Tensor, alpha: f64) -> Result<(Tensor, Tensor)> {
    let s = ((x * (1.0 - 2.0 * alpha))? + alpha)?;
    let one_minus = s.affine(-1.0, 1.0)?;
    let y = (s.log()? - one_minus.log()?)?;
    let d = x.dim(1)? as f64;
    let logdet = ((s.log()? + one_minus.log()?)?.sum(1)?.neg()? + d * (1.0 - 2.0 * alpha).ln())?;
    Ok((y, logdet))
}
