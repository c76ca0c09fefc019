//! Frame-rate networks in plain Rust: the GRU control encoder, the projection, and the
//! FiLM and noise MLPs. They mirror candle's `GRU::step`, `Linear`, `LayerNorm` and
//! `leaky_relu` on the same weights. About 0.2 M multiply-adds per frame (125 Hz).
//! Weights are stored transposed for [`kernels::matmat`], once, when a model is prepared.

use newt_model::{ControlMlp, Gru, LAYER_NORM_EPS, LayerNorm, Linear};

use crate::kernels;

/// A dense layer `y = W x + b`, weights transposed (`[inputs][outputs]`).
#[derive(Clone, Debug)]
pub struct Dense {
    wt: Vec<f32>,
    b: Vec<f32>,
    inputs: usize,
}

impl Dense {
    pub fn new(l: &Linear) -> Self {
        Self::from_parts(&l.weight, &l.bias, l.in_dim)
    }

    fn from_parts(weight: &[f32], bias: &[f32], inputs: usize) -> Self {
        Self {
            wt: kernels::transpose(weight, bias.len(), inputs),
            b: bias.to_vec(),
            inputs,
        }
    }

    pub fn outputs(&self) -> usize {
        self.b.len()
    }

    /// `cols` columns of `x` (one after another) to `cols` columns of `y`.
    pub fn forward(&self, x: &[f32], cols: usize, y: &mut [f32]) {
        kernels::matmat(
            &self.wt,
            &self.b,
            &x[..cols * self.inputs],
            cols,
            &mut y[..cols * self.outputs()],
        );
    }
}

/// In-place LayerNorm over the whole slice (biased variance, as candle and PyTorch).
/// The sums are taken in [`SUM_LANES`] interleaved partial sums (as SIMD lanes would),
/// so that they vectorise; every instruction set computes the same bits.
pub fn layer_norm(n: &LayerNorm, x: &mut [f32]) {
    let len = x.len() as f32;
    let mean = lane_sum(x, |v| v) / len;
    let var = lane_sum(x, |v| (v - mean) * (v - mean)) / len;
    let inv = 1.0 / (var + LAYER_NORM_EPS).sqrt();
    for ((v, w), b) in x.iter_mut().zip(&n.weight).zip(&n.bias) {
        *v = (*v - mean) * inv * w + b;
    }
}

/// Partial sums in [`lane_sum`].
const SUM_LANES: usize = 8;

/// `sum f(x[i])` as [`SUM_LANES`] partial sums (lane `l` takes `i = l mod SUM_LANES`),
/// added pairwise at the end.
#[inline(always)]
fn lane_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0.0f32; SUM_LANES];
    let mut chunks = x.chunks_exact(SUM_LANES);
    for c in &mut chunks {
        for l in 0..SUM_LANES {
            acc[l] += f(c[l]);
        }
    }
    for (a, &v) in acc.iter_mut().zip(chunks.remainder()) {
        *a += f(v);
    }
    let [a0, a1, a2, a3, a4, a5, a6, a7] = acc;
    ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))
}

/// `e^x` for the GRU's gates, branch-free so that a loop over it vectorises, with plain
/// multiplies and adds (the same bits at every instruction-set level). `x` is clamped to
/// [-87, 87] (NaN goes to -87; both ends give normal numbers, never subnormals), reduced by the nearest multiple of ln 2 (Cody-Waite, two
/// parts), and `e^r` on [-ln2/2, ln2/2] is the degree-6 polynomial of SLEEF's `xexpf`.
/// Relative error under 2e-7 (test below).
#[inline(always)]
fn exp(x: f32) -> f32 {
    const ROUNDER: f32 = 12_582_912.0; // 1.5 * 2^23
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Not `clamp`, which keeps NaN.
    #[allow(clippy::manual_clamp)]
    let x = x.max(-87.0).min(87.0);
    let rounded = x * std::f32::consts::LOG2_E + ROUNDER;
    let q = rounded - ROUNDER;
    let r = x - q * LN2_HI - q * LN2_LO;
    let mut u = 0.000_198_527_62_f32;
    u = u * r + 0.001_393_043_7;
    u = u * r + 0.008_333_361;
    u = u * r + 0.041_666_485;
    u = u * r + 0.166_666_67;
    u = u * r + 0.5;
    let e = (u * r) * r + r + 1.0;
    // 2^q from q's bits: `rounded` holds q + 1.5 * 2^23 exactly, so its low mantissa bits
    // are q (two's complement within the 22-bit field).
    let q_int = (rounded.to_bits() as i32).wrapping_sub(ROUNDER.to_bits() as i32);
    e * f32::from_bits(((q_int + 127) as u32) << 23)
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `tanh x = 1 - 2 / (e^{2x} + 1)`: absolute error under 3e-7.
#[inline(always)]
fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

/// The control encoder's GRU, gate order `[r, z, n]`: `h' = z h + (1 - z) n`.
#[derive(Clone, Debug)]
pub struct GruNet {
    ih: Dense,
    hh: Dense,
    hidden: usize,
}

/// Scratch buffers for one GRU step, allocated once.
#[derive(Clone, Debug)]
pub struct GruScratch {
    gi: Vec<f32>,
    gh: Vec<f32>,
}

impl GruNet {
    pub fn new(g: &Gru) -> Self {
        Self {
            ih: Dense::from_parts(&g.weight_ih, &g.bias_ih, g.input),
            hh: Dense::from_parts(&g.weight_hh, &g.bias_hh, g.hidden),
            hidden: g.hidden,
        }
    }

    pub fn hidden(&self) -> usize {
        self.hidden
    }

    pub fn scratch(&self) -> GruScratch {
        GruScratch {
            gi: vec![0.0; 3 * self.hidden],
            gh: vec![0.0; 3 * self.hidden],
        }
    }

    /// One step from input `x`, updating `h` in place.
    pub fn step(&self, x: &[f32], h: &mut [f32], s: &mut GruScratch) {
        self.ih.forward(x, 1, &mut s.gi);
        self.hh.forward(h, 1, &mut s.gh);
        self.update(&s.gi, &s.gh, h);
    }

    /// One step of `cols` independent sequences at once (the voices of an engine): inputs
    /// `x` `[cols][input]`, states `h` `[cols][hidden]` updated in place, gate buffers
    /// `gi`, `gh` of at least `[cols][3 hidden]`. Each column's result is the same, bit for
    /// bit, as [`step`](Self::step) on it alone.
    pub fn step_columns(
        &self,
        x: &[f32],
        h: &mut [f32],
        cols: usize,
        gi: &mut [f32],
        gh: &mut [f32],
    ) {
        let (hd, g) = (self.hidden, 3 * self.hidden);
        let (Some(gi), Some(gh)) = (gi.get_mut(..cols * g), gh.get_mut(..cols * g)) else {
            return;
        };
        self.ih.forward(x, cols, gi);
        self.hh.forward(&h[..cols * hd], cols, gh);
        for ((h, gi), gh) in h
            .chunks_exact_mut(hd)
            .zip(gi.chunks_exact(g))
            .zip(gh.chunks_exact(g))
        {
            self.update(gi, gh, h);
        }
    }

    /// `h' = z h + (1 - z) n` from the gate pre-activations of one column.
    fn update(&self, gi: &[f32], gh: &[f32], h: &mut [f32]) {
        let hd = self.hidden;
        let (gi_r, gi) = gi.split_at(hd);
        let (gi_z, gi_n) = gi.split_at(hd);
        let (gh_r, gh) = gh.split_at(hd);
        let (gh_z, gh_n) = gh.split_at(hd);
        for (j, h) in h.iter_mut().enumerate().take(hd) {
            let r = sigmoid(gi_r[j] + gh_r[j]);
            let z = sigmoid(gi_z[j] + gh_z[j]);
            let n = tanh(gi_n[j] + r * gh_n[j]);
            *h = z * *h + (1.0 - z) * n;
        }
    }
}

/// The FiLM net and the noise net: `[linear, LayerNorm, LeakyReLU(0.01)] x n -> linear`.
#[derive(Clone, Debug)]
pub struct ControlNet {
    layers: Vec<(Dense, LayerNorm)>,
    out: Dense,
}

/// Scratch for [`ControlNet::forward`]: two hidden-width buffers per column.
#[derive(Clone, Debug)]
pub struct MlpScratch {
    a: Vec<f32>,
    b: Vec<f32>,
}

impl ControlNet {
    pub fn new(m: &ControlMlp) -> Self {
        Self {
            layers: m
                .layers
                .iter()
                .map(|(l, n)| (Dense::new(l), n.clone()))
                .collect(),
            out: Dense::new(&m.out),
        }
    }

    pub fn outputs(&self) -> usize {
        self.out.outputs()
    }

    pub fn scratch(&self, max_cols: usize) -> MlpScratch {
        let w = self
            .layers
            .iter()
            .map(|(l, _)| l.outputs())
            .max()
            .unwrap_or(0);
        MlpScratch {
            a: vec![0.0; w * max_cols],
            b: vec![0.0; w * max_cols],
        }
    }

    /// `cols` columns of `z` to `cols` columns of `out`.
    pub fn forward(&self, z: &[f32], cols: usize, out: &mut [f32], s: &mut MlpScratch) {
        let mut width = z.len() / cols.max(1);
        for (i, (lin, norm)) in self.layers.iter().enumerate() {
            if i == 0 {
                lin.forward(z, cols, &mut s.a);
            } else {
                lin.forward(&s.a[..cols * width], cols, &mut s.b);
                std::mem::swap(&mut s.a, &mut s.b);
            }
            width = lin.outputs();
            for y in s.a[..cols * width].chunks_exact_mut(width) {
                layer_norm(norm, y);
                for v in y.iter_mut() {
                    if *v < 0.0 {
                        *v *= 0.01;
                    }
                }
            }
        }
        self.out.forward(&s.a[..cols * width], cols, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_sigmoid_and_tanh_are_within_their_stated_error() {
        let (mut e_exp, mut e_sig, mut e_tanh) = (0.0f64, 0.0f64, 0.0f64);
        for i in 0..=2_000_000 {
            let x = -40.0 + 80.0 * i as f32 / 2_000_000.0;
            let ex = (x as f64).exp();
            e_exp = e_exp.max(((exp(x) as f64 - ex) / ex).abs());
            e_sig = e_sig.max((sigmoid(x) as f64 - 1.0 / (1.0 + (-x as f64).exp())).abs());
            e_tanh = e_tanh.max((tanh(x) as f64 - (x as f64).tanh()).abs());
        }
        println!("exp {e_exp:.2e} (relative), sigmoid {e_sig:.2e}, tanh {e_tanh:.2e}");
        assert!(e_exp < 2e-7, "exp {e_exp:e}");
        assert!(e_sig < 2e-7, "sigmoid {e_sig:e}");
        assert!(e_tanh < 3e-7, "tanh {e_tanh:e}");
        // Saturation and non-finite inputs stay finite and in range.
        assert_eq!(tanh(100.0), 1.0);
        assert_eq!(tanh(-100.0), -1.0);
        let tiny = sigmoid(-100.0);
        assert!(tiny < 1e-37 && tiny.is_normal(), "{tiny:e}");
        assert!(sigmoid(f32::NAN).is_finite() && tanh(f32::INFINITY) == 1.0);
    }

    #[test]
    fn lane_sums_match_a_double_sum() {
        let x: Vec<f32> = (0..131).map(|i| (i as f32 * 0.37).sin()).collect();
        let exact: f64 = x.iter().map(|&v| v as f64).sum();
        assert!((lane_sum(&x, |v| v) as f64 - exact).abs() < 1e-5);
        assert_eq!(lane_sum(&[], |v| v), 0.0);
    }
}
