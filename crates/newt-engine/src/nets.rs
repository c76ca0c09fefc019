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
        let hd = self.hidden;
        self.ih.forward(x, 1, &mut s.gi);
        self.hh.forward(h, 1, &mut s.gh);
        for j in 0..hd {
            let r = sigmoid(s.gi[j] + s.gh[j]);
            let z = sigmoid(s.gi[hd + j] + s.gh[hd + j]);
            let n = (s.gi[2 * hd + j] + r * s.gh[2 * hd + j]).tanh();
            h[j] = z * h[j] + (1.0 - z) * n;
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
