//! Frame-rate networks in plain Rust: the GRU control encoder, the projection, and the
//! FiLM and noise MLPs. They mirror candle's `GRU::step`, `Linear`, `LayerNorm` and
//! `leaky_relu` on the same weights. About 0.2 M multiply-adds per frame (125 Hz).

use newt_model::{ControlMlp, Gru, LAYER_NORM_EPS, LayerNorm, Linear};

/// Dot product with eight fixed lanes reduced in a fixed order. The result depends only
/// on the two slices, never on how the caller batches its work, which keeps the engine's
/// output identical for every host block size.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; 8];
    let (ac, ar) = a.split_at(a.len() / 8 * 8);
    let (bc, br) = b.split_at(ac.len());
    for (x, y) in ac.chunks_exact(8).zip(bc.chunks_exact(8)) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut tail = 0.0;
    for (x, y) in ar.iter().zip(br) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// `y = W x + b`.
pub fn linear(l: &Linear, x: &[f32], y: &mut [f32]) {
    debug_assert_eq!(x.len(), l.in_dim);
    for (o, yo) in y.iter_mut().enumerate().take(l.out_dim) {
        *yo = l.bias[o] + dot(&l.weight[o * l.in_dim..(o + 1) * l.in_dim], x);
    }
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
    for o in 0..3 * hd {
        s.gi[o] = g.bias_ih[o] + dot(&g.weight_ih[o * g.input..(o + 1) * g.input], x);
        s.gh[o] = g.bias_hh[o] + dot(&g.weight_hh[o * hd..(o + 1) * hd], h);
    }
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
