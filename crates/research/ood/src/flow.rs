//! A RealNVP-style normalizing flow over flattened grey images, with exact
//! log-likelihoods.
//!
//! Pixels (0..=255) are dequantised with uniform noise to `x = (pixel + u) / 256` in
//! (0, 1), mapped to `y = logit(alpha + (1 - 2 alpha) x)`, then through affine couplings:
//! each splits the D coordinates into two halves by a fixed mask, and moves one half by
//! `y_b * exp(s(y_a)) + t(y_a)`, with `s, t` from an MLP of the other half and
//! `s = scale * tanh(raw)` for stability. The base density is N(0, I_D).
//! `ln p(x) = ln N(z) + sum ln|det|` (couplings and the logit map), nats.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, Linear, VarBuilder, conv2d, linear};

/// ln(2 pi).
const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// What computes a coupling's shift and log-scale from the conditioning half.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CouplingNet {
    /// An MLP of the conditioning coordinates (two hidden layers of `hidden`): no
    /// notion of neighbouring pixels.
    Mlp,
    /// A 3x3 convolutional net (two hidden layers of `hidden` channels) over the image
    /// with the moved half zeroed and the mask as a second channel, as in RealNVP and
    /// Glow: local, translation-equivariant.
    Conv,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlowConfig {
    pub net: CouplingNet,
    /// Image rows and columns (D = rows * cols).
    pub rows: usize,
    pub cols: usize,
    pub couplings: usize,
    /// Width (units or channels) of the two hidden layers of each coupling's net.
    pub hidden: usize,
    /// The logit map's margin, keeping `logit` finite at 0 and 1.
    pub alpha: f64,
}

impl FlowConfig {
    pub fn dim(&self) -> usize {
        self.rows * self.cols
    }
}

/// Which coordinates a coupling conditions on (`a`) and which it moves (`b`).
fn mask(config: &FlowConfig, k: usize) -> (Vec<u32>, Vec<u32>) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for r in 0..config.rows {
        for c in 0..config.cols {
            let i = (r * config.cols + c) as u32;
            // Checkerboard, its complement, top half, bottom half, in turn.
            let in_a = match k % 4 {
                0 => (r + c) % 2 == 0,
                1 => (r + c) % 2 == 1,
                2 => r < config.rows / 2,
                _ => r >= config.rows / 2,
            };
            if in_a { a.push(i) } else { b.push(i) }
        }
    }
    (a, b)
}

enum Conditioner {
    Mlp([Linear; 3]),
    Conv {
        layers: [Conv2d; 3],
        /// 1 on the conditioning coordinates, 0 on the moved ones, `[D]`.
        mask: Tensor,
        rows: usize,
        cols: usize,
    },
}

struct Coupling {
    a: Tensor,
    b: Tensor,
    /// Index of each original coordinate in `[y_a, y_b]` (undoes the split).
    unsplit: Tensor,
    net: Conditioner,
    /// Per-coordinate bound of the log-scale `s`.
    scale: Tensor,
    nb: usize,
}

impl Coupling {
    fn new(config: &FlowConfig, k: usize, vb: VarBuilder) -> Result<Self> {
        let (a, b) = mask(config, k);
        let (na, nb) = (a.len(), b.len());
        let mut unsplit = vec![0u32; config.dim()];
        for (pos, i) in a.iter().chain(&b).enumerate() {
            unsplit[*i as usize] = pos as u32;
        }
        let dev = vb.device().clone();
        let h = config.hidden;
        // The last layer starts at zero: every coupling starts as the identity.
        let zero = candle_nn::Init::Const(0.0);
        let net = match config.net {
            CouplingNet::Mlp => Conditioner::Mlp([
                linear(na, h, vb.pp(format!("c{k}.fc1")))?,
                linear(h, h, vb.pp(format!("c{k}.fc2")))?,
                Linear::new(
                    vb.get_with_hints((2 * nb, h), &format!("c{k}.out.weight"), zero)?,
                    Some(vb.get_with_hints(2 * nb, &format!("c{k}.out.bias"), zero)?),
                ),
            ]),
            CouplingNet::Conv => {
                let same = Conv2dConfig {
                    padding: 1,
                    ..Default::default()
                };
                let mut m = vec![0f64; config.dim()];
                for i in &a {
                    m[*i as usize] = 1.0;
                }
                Conditioner::Conv {
                    layers: [
                        conv2d(2, h, 3, same, vb.pp(format!("c{k}.conv1")))?,
                        conv2d(h, h, 3, same, vb.pp(format!("c{k}.conv2")))?,
                        Conv2d::new(
                            vb.get_with_hints((2, h, 3, 3), &format!("c{k}.out.weight"), zero)?,
                            Some(vb.get_with_hints(2, &format!("c{k}.out.bias"), zero)?),
                            same,
                        ),
                    ],
                    mask: Tensor::from_vec(m, config.dim(), &dev)?.to_dtype(vb.dtype())?,
                    rows: config.rows,
                    cols: config.cols,
                }
            }
        };
        Ok(Self {
            a: Tensor::from_vec(a, na, &dev)?,
            b: Tensor::from_vec(b, nb, &dev)?,
            unsplit: Tensor::from_vec(unsplit, config.dim(), &dev)?,
            net,
            scale: vb.get_with_hints(nb, &format!("c{k}.scale"), candle_nn::Init::Const(1.0))?,
            nb,
        })
    }

    /// `(s, t)`, each `[N, nb]`, from the conditioning half (`ya`, or the whole `y`
    /// whose conditioning coordinates are those of `ya`).
    fn shift_scale(&self, y: &Tensor, ya: &Tensor) -> Result<(Tensor, Tensor)> {
        let (raw, t) = match &self.net {
            Conditioner::Mlp(layers) => {
                let h = layers[0].forward(ya)?.relu()?;
                let h = layers[1].forward(&h)?.relu()?;
                let st = layers[2].forward(&h)?;
                (st.narrow(1, 0, self.nb)?, st.narrow(1, self.nb, self.nb)?)
            }
            Conditioner::Conv {
                layers,
                mask,
                rows,
                cols,
            } => {
                let n = y.dim(0)?;
                let image = y.broadcast_mul(mask)?.reshape((n, 1, *rows, *cols))?;
                let mask = mask
                    .reshape((1, 1, *rows, *cols))?
                    .broadcast_as((n, 1, *rows, *cols))?;
                let x = Tensor::cat(&[&image, &mask], 1)?;
                let h = layers[0].forward(&x)?.relu()?;
                let h = layers[1].forward(&h)?.relu()?;
                let st = layers[2].forward(&h)?;
                let take = |c: usize| -> Result<Tensor> {
                    st.narrow(1, c, 1)?
                        .reshape((n, rows * cols))?
                        .index_select(&self.b, 1)
                };
                (take(0)?, take(1)?)
            }
        };
        let s = raw.tanh()?.broadcast_mul(&self.scale)?;
        Ok((s, t))
    }

    /// `(y', ln|det|)` of `y [N, D]`.
    fn forward(&self, y: &Tensor) -> Result<(Tensor, Tensor)> {
        let ya = y.index_select(&self.a, 1)?;
        let yb = y.index_select(&self.b, 1)?;
        let (s, t) = self.shift_scale(y, &ya)?;
        let yb = (yb * s.exp()?)?.add(&t)?;
        let out = Tensor::cat(&[&ya, &yb], 1)?.index_select(&self.unsplit, 1)?;
        Ok((out, s.sum(1)?))
    }

    fn inverse(&self, z: &Tensor) -> Result<Tensor> {
        let za = z.index_select(&self.a, 1)?;
        let zb = z.index_select(&self.b, 1)?;
        let (s, t) = self.shift_scale(z, &za)?;
        let yb = (zb - t)?.mul(&s.neg()?.exp()?)?;
        Tensor::cat(&[&za, &yb], 1)?.index_select(&self.unsplit, 1)
    }
}

pub struct Flow {
    pub config: FlowConfig,
    couplings: Vec<Coupling>,
}

impl Flow {
    /// A flow whose couplings all start as the identity (zero last layers).
    pub fn new(config: FlowConfig, vb: VarBuilder) -> Result<Self> {
        let couplings = (0..config.couplings)
            .map(|k| Coupling::new(&config, k, vb.clone()))
            .collect::<Result<_>>()?;
        Ok(Self { config, couplings })
    }

    /// `(z, ln|det dz/dy|)` of `y [N, D]`.
    pub fn forward(&self, y: &Tensor) -> Result<(Tensor, Tensor)> {
        let mut logdet = Tensor::zeros(y.dim(0)?, y.dtype(), y.device())?;
        let mut z = y.clone();
        for c in &self.couplings {
            let (next, ld) = c.forward(&z)?;
            z = next;
            logdet = (logdet + ld)?;
        }
        Ok((z, logdet))
    }

    /// `y` of latents `z [N, D]`.
    pub fn inverse(&self, z: &Tensor) -> Result<Tensor> {
        let mut y = z.clone();
        for c in self.couplings.iter().rev() {
            y = c.inverse(&y)?;
        }
        Ok(y)
    }

    /// `ln p(y)`, nats, `[N]`: the flow's density in logit space.
    pub fn log_prob_logit(&self, y: &Tensor) -> Result<Tensor> {
        let (z, logdet) = self.forward(y)?;
        let d = z.dim(1)? as f64;
        let base = ((z.sqr()?.sum(1)? * -0.5)? - 0.5 * d * LN_2PI)?;
        base + logdet
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

/// Dequantised pixels `(pixel + u) / 256`, `[N, D]`, with `u` uniform in [0, 1) drawn
/// from `noise` (`[N, D]`, values in [0, 1)).
pub fn dequantise(pixels: &Tensor, noise: &Tensor) -> Result<Tensor> {
    (pixels.to_dtype(DType::F32)? + noise)? / 256.0
}
