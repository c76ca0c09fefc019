//! Typed weights of the published NEWT architecture. Every tensor is row-major f32 with
//! the shape of the training crate's parameter of the same name (candle `vb.pp` path).

use crate::ModelMeta;
use crate::sine::sin;

/// GRU hidden size and control-embedding width (paper: 128).
pub const GRU_HIDDEN: usize = 128;
/// Width of the FiLM and noise MLPs' hidden layers.
pub const CONTROL_HIDDEN: usize = 128;
/// Number of `[linear, LayerNorm, LeakyReLU]` blocks in the FiLM and noise MLPs.
pub const CONTROL_LAYERS: usize = 3;
/// Hidden width of each shaper MLP (1 -> 8 -> 8 -> 8 -> 1).
pub const SHAPER_WIDTH: usize = 8;
/// Noise filter magnitudes per frame (a 256-tap filter).
pub const NOISE_BANDS: usize = 129;
/// candle's `LayerNorm` default epsilon; the engine uses the same.
pub const LAYER_NORM_EPS: f32 = 1e-5;

/// `y = W x + b`, `W` is `[out, in]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Linear {
    pub in_dim: usize,
    pub out_dim: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

impl Linear {
    /// PyTorch-style initialisation: weights then biases uniform in
    /// `+-gain / sqrt(in_dim)`, drawn from `rng` in that order.
    pub fn fill_uniform(&mut self, rng: &mut crate::SplitMix64, gain: f32) {
        let b = gain / (self.in_dim as f32).sqrt();
        self.weight.iter_mut().for_each(|x| *x = rng.uniform(-b, b));
        self.bias.iter_mut().for_each(|x| *x = rng.uniform(-b, b));
    }

    pub fn zeros(in_dim: usize, out_dim: usize) -> Self {
        Self {
            in_dim,
            out_dim,
            weight: vec![0.0; in_dim * out_dim],
            bias: vec![0.0; out_dim],
        }
    }

    fn visit(&mut self, prefix: &str, f: &mut Visitor) {
        f(
            format!("{prefix}.weight"),
            vec![self.out_dim, self.in_dim],
            &mut self.weight,
        );
        f(format!("{prefix}.bias"), vec![self.out_dim], &mut self.bias);
    }
}

/// A one-layer GRU with candle/PyTorch gate order `[r, z, n]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Gru {
    pub input: usize,
    pub hidden: usize,
    /// `[3 * hidden, input]`
    pub weight_ih: Vec<f32>,
    /// `[3 * hidden, hidden]`
    pub weight_hh: Vec<f32>,
    pub bias_ih: Vec<f32>,
    pub bias_hh: Vec<f32>,
}

impl Gru {
    pub fn zeros(input: usize, hidden: usize) -> Self {
        Self {
            input,
            hidden,
            weight_ih: vec![0.0; 3 * hidden * input],
            weight_hh: vec![0.0; 3 * hidden * hidden],
            bias_ih: vec![0.0; 3 * hidden],
            bias_hh: vec![0.0; 3 * hidden],
        }
    }

    fn visit(&mut self, prefix: &str, f: &mut Visitor) {
        let (i, h) = (self.input, self.hidden);
        f(
            format!("{prefix}.weight_ih_l0"),
            vec![3 * h, i],
            &mut self.weight_ih,
        );
        f(
            format!("{prefix}.weight_hh_l0"),
            vec![3 * h, h],
            &mut self.weight_hh,
        );
        f(
            format!("{prefix}.bias_ih_l0"),
            vec![3 * h],
            &mut self.bias_ih,
        );
        f(
            format!("{prefix}.bias_hh_l0"),
            vec![3 * h],
            &mut self.bias_hh,
        );
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct LayerNorm {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

impl LayerNorm {
    pub fn identity(n: usize) -> Self {
        Self {
            weight: vec![1.0; n],
            bias: vec![0.0; n],
        }
    }

    fn visit(&mut self, prefix: &str, f: &mut Visitor) {
        let n = self.weight.len();
        f(format!("{prefix}.weight"), vec![n], &mut self.weight);
        f(format!("{prefix}.bias"), vec![n], &mut self.bias);
    }
}

/// The FiLM net and the noise net: `[linear 128, LayerNorm, LeakyReLU(0.01)] x 3 -> linear`.
#[derive(Clone, Debug, PartialEq)]
pub struct ControlMlp {
    pub layers: Vec<(Linear, LayerNorm)>,
    pub out: Linear,
}

impl ControlMlp {
    pub fn zeros(input: usize, output: usize) -> Self {
        let layers = (0..CONTROL_LAYERS)
            .map(|i| {
                let inp = if i == 0 { input } else { CONTROL_HIDDEN };
                (
                    Linear::zeros(inp, CONTROL_HIDDEN),
                    LayerNorm::identity(CONTROL_HIDDEN),
                )
            })
            .collect();
        Self {
            layers,
            out: Linear::zeros(CONTROL_HIDDEN, output),
        }
    }

    fn visit(&mut self, prefix: &str, f: &mut Visitor) {
        for (i, (lin, norm)) in self.layers.iter_mut().enumerate() {
            lin.visit(&format!("{prefix}.layers.{i}.linear"), f);
            norm.visit(&format!("{prefix}.layers.{i}.norm"), f);
        }
        self.out.visit(&format!("{prefix}.out"), f);
    }
}

/// 64 independent scalar sine MLPs `1 -> 8 -> 8 -> 8 -> 1`, stacked along the first axis.
/// Shaper `c` computes `sin(w4 sin(w3 sin(w2 sin(w1 (scale_c u) + b1) + b2) + b3) + b4)`.
#[derive(Clone, Debug, PartialEq)]
pub struct ShaperBank {
    pub n: usize,
    /// `[n]`: the learned input scale of each shaper.
    pub input_scale: Vec<f32>,
    /// `[n, 8, 1]`
    pub w1: Vec<f32>,
    /// `[n, 8]`
    pub b1: Vec<f32>,
    /// `[n, 8, 8]`
    pub w2: Vec<f32>,
    pub b2: Vec<f32>,
    /// `[n, 8, 8]`
    pub w3: Vec<f32>,
    pub b3: Vec<f32>,
    /// `[n, 1, 8]`
    pub w4: Vec<f32>,
    /// `[n, 1]`
    pub b4: Vec<f32>,
}

impl ShaperBank {
    pub fn zeros(n: usize) -> Self {
        let w = SHAPER_WIDTH;
        Self {
            n,
            input_scale: vec![1.0; n],
            w1: vec![0.0; n * w],
            b1: vec![0.0; n * w],
            w2: vec![0.0; n * w * w],
            b2: vec![0.0; n * w],
            w3: vec![0.0; n * w * w],
            b3: vec![0.0; n * w],
            w4: vec![0.0; n * w],
            b4: vec![0.0; n],
        }
    }

    /// Exact output of shaper `c` for input `u` (before its input scale), in f32 with the
    /// same operation order and the same sine ([`crate::sine`]) as the training crate.
    pub fn eval(&self, c: usize, u: f32) -> f32 {
        const W: usize = SHAPER_WIDTH;
        let x = self.input_scale[c] * u;
        let mut h1 = [0.0f32; W];
        for j in 0..W {
            h1[j] = sin(self.w1[c * W + j] * x + self.b1[c * W + j]);
        }
        let layer = |w: &[f32], b: &[f32], h: &[f32; W]| {
            let mut o = [0.0f32; W];
            for j in 0..W {
                let mut acc = b[c * W + j];
                for k in 0..W {
                    acc += w[(c * W + j) * W + k] * h[k];
                }
                o[j] = sin(acc);
            }
            o
        };
        let h2 = layer(&self.w2, &self.b2, &h1);
        let h3 = layer(&self.w3, &self.b3, &h2);
        let mut acc = self.b4[c];
        for k in 0..W {
            acc += self.w4[c * W + k] * h3[k];
        }
        sin(acc)
    }

    fn visit(&mut self, prefix: &str, f: &mut Visitor) {
        let (n, w) = (self.n, SHAPER_WIDTH);
        f(
            format!("{prefix}.input_scale"),
            vec![n],
            &mut self.input_scale,
        );
        f(format!("{prefix}.w1"), vec![n, w, 1], &mut self.w1);
        f(format!("{prefix}.b1"), vec![n, w], &mut self.b1);
        f(format!("{prefix}.w2"), vec![n, w, w], &mut self.w2);
        f(format!("{prefix}.b2"), vec![n, w], &mut self.b2);
        f(format!("{prefix}.w3"), vec![n, w, w], &mut self.w3);
        f(format!("{prefix}.b3"), vec![n, w], &mut self.b3);
        f(format!("{prefix}.w4"), vec![n, 1, w], &mut self.w4);
        f(format!("{prefix}.b4"), vec![n, 1], &mut self.b4);
    }
}

/// All weights of one NEWT model.
#[derive(Clone, Debug, PartialEq)]
pub struct NewtWeights {
    /// Control encoder: GRU 2 -> 128 over z-scored (f0, loudness).
    pub gru: Gru,
    /// Control encoder: linear 128 -> 128 (no activation) giving the embedding z.
    pub proj: Linear,
    /// Fixed harmonic phases theta_k in radians, `[n_harmonics]` (drawn once from a seed).
    pub exciter_phases: Vec<f32>,
    /// Linear mix of the harmonics into the shaper inputs, `[n_shapers, n_harmonics]`.
    pub harmonic_mixer: Linear,
    /// z -> (alpha_in, beta_in, alpha_out, beta_out), `4 * n_shapers` outputs.
    pub film: ControlMlp,
    pub shapers: ShaperBank,
    /// Mix of the shaper outputs to one signal, `[1, n_shapers]`.
    pub output_mixer: Linear,
    /// z -> 129 noise filter magnitudes.
    pub noise: ControlMlp,
    /// Learned reverb taps 1..2*sr (tap 0 is fixed at 0; the dry path is separate).
    pub reverb_ir: Vec<f32>,
}

pub(crate) type Visitor<'a> = dyn FnMut(String, Vec<usize>, &mut Vec<f32>) + 'a;

impl NewtWeights {
    /// All-zero weights (identity LayerNorms, unit input scales) shaped for `meta`.
    pub fn zeros(meta: &ModelMeta) -> Self {
        let (h, s) = (meta.n_harmonics, meta.n_shapers);
        Self {
            gru: Gru::zeros(2, GRU_HIDDEN),
            proj: Linear::zeros(GRU_HIDDEN, GRU_HIDDEN),
            exciter_phases: vec![0.0; h],
            harmonic_mixer: Linear::zeros(h, s),
            film: ControlMlp::zeros(GRU_HIDDEN, 4 * s),
            shapers: ShaperBank::zeros(s),
            output_mixer: Linear::zeros(s, 1),
            noise: ControlMlp::zeros(GRU_HIDDEN, NOISE_BANDS),
            reverb_ir: vec![0.0; meta.reverb_taps()],
        }
    }

    /// Visits every tensor with its file name and shape. This one list is the layout of
    /// the file: loading, saving and validation all go through it.
    pub fn visit_mut(&mut self, f: &mut Visitor) {
        self.gru.visit("encoder.gru", f);
        self.proj.visit("encoder.proj", f);
        let n = self.exciter_phases.len();
        f("exciter.phases".into(), vec![n], &mut self.exciter_phases);
        self.harmonic_mixer.visit("harmonic_mixer", f);
        self.film.visit("film", f);
        self.shapers.visit("shapers", f);
        self.output_mixer.visit("output_mixer", f);
        self.noise.visit("noise", f);
        let n = self.reverb_ir.len();
        f("reverb.ir".into(), vec![n], &mut self.reverb_ir);
    }

    /// Names and shapes of every tensor, in file order.
    pub fn layout(meta: &ModelMeta) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        Self::zeros(meta).visit_mut(&mut |name, shape, _| out.push((name, shape)));
        out
    }

    /// Number of trainable parameters (everything but the fixed exciter phases).
    pub fn parameter_count(meta: &ModelMeta) -> usize {
        Self::layout(meta)
            .iter()
            .filter(|(n, _)| n != "exciter.phases")
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    }
}
