//! Frame-rate networks in plain Rust: the GRU control encoder, the projection, and the
//! FiLM and noise MLPs. They mirror candle's `GRU::step`, `Linear`, `LayerNorm` and
//! `leaky_relu` on the same weights. About 0.2 M multiply-adds per frame (125 Hz).

use newt_model::{ControlMlp, Gru, LAYER_NORM_EPS, LayerNorm, Linear};

use crate::kernels;

/// `y = W x + b`.
pub fn linear(l: &Linear, x: &[f32], y: &mut [f32]) {
    debug_assert_eq!(x.len(), l.in_dim);
    kernels::matvec(&l.weight, &l.bias, x, &mut y[..l.out_dim]);
}

/// In-place LayerNorm over the whole slice (biased variance, as candle and PyTorch).
pub fn layer_norm(n: &LayerNorm, x: &mut [f32]) {
    let len = x.len() as f32;
    let mean = x.iter().sum::<f32>() / len;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / len;
    let inv = 1.0 / (var + LAYER_NORM_EPS).sqrt();
    for ((v, w), b) in x.iter_mut().zip(&n.weight).zip(&n.bias) {
        *v = (*v - mean) * inv * w + b;
    }
}

#[inline]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Scratch buffers for one GRU step, allocated once.
#[derive(Clone, Debug)]
pub struct GruScratch {
    gi: Vec<f32>,
    gh: Vec<f32>,
}

impl GruScratch {
    pub fn new(g: &Gru) -> Self {
        Self {
            gi: vec![0.0; 3 * g.hidden],
            gh: vec![0.0; 3 * g.hidden],
        }
    }
}

/// One GRU step, gate order `[r, z, n]`: `h' = z h + (1 - z) n`.
pub fn gru_step(g: &Gru, x: &[f32], h: &mut [f32], s: &mut GruScratch) {
    let hd = g.hidden;
    kernels::matvec(&g.weight_ih, &g.bias_ih, x, &mut s.gi);
    kernels::matvec(&g.weight_hh, &g.bias_hh, h, &mut s.gh);
    for j in 0..hd {
        let r = sigmoid(s.gi[j] + s.gh[j]);
        let z = sigmoid(s.gi[hd + j] + s.gh[hd + j]);
        let n = (s.gi[2 * hd + j] + r * s.gh[2 * hd + j]).tanh();
        h[j] = z * h[j] + (1.0 - z) * n;
    }
}

/// Scratch for [`control_mlp`]: two hidden-width buffers.
#[derive(Clone, Debug)]
pub struct MlpScratch {
    a: Vec<f32>,
    b: Vec<f32>,
}

impl MlpScratch {
    pub fn new(m: &ControlMlp) -> Self {
        let w = m.layers.iter().map(|(l, _)| l.out_dim).max().unwrap_or(0);
        Self {
            a: vec![0.0; w],
            b: vec![0.0; w],
        }
    }
}

/// `[linear, LayerNorm, LeakyReLU(0.01)] x n -> linear`.
pub fn control_mlp(m: &ControlMlp, z: &[f32], out: &mut [f32], s: &mut MlpScratch) {
    let mut width = z.len();
    for (i, (lin, norm)) in m.layers.iter().enumerate() {
        if i == 0 {
            linear(lin, z, &mut s.a[..lin.out_dim]);
        } else {
            linear(lin, &s.a[..width], &mut s.b[..lin.out_dim]);
            std::mem::swap(&mut s.a, &mut s.b);
        }
        width = lin.out_dim;
        let y = &mut s.a[..width];
        layer_norm(norm, y);
        for v in y.iter_mut() {
            if *v < 0.0 {
                *v *= 0.01;
            }
        }
    }
    linear(&m.out, &s.a[..width], out);
}
