//! The NEWT model in candle (NEWT.md section 1, with our corrections). Parameter names are
//! the model file's tensor names, so export and import are a rename-free copy.

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::rnn::{GRUConfig, RNN};
use candle_nn::{GRU, Linear, Module, VarBuilder, VarMap};
use grad_layers::LayerNorm;
use newt_model::{
    CONTROL_HIDDEN, CONTROL_LAYERS, GRU_HIDDEN, ModelMeta, NOISE_BANDS, NewtModel, NewtWeights,
    SHAPER_WIDTH,
};

use crate::fft::{complex_mul, irfft, rfft};
use crate::film_op::film_shaper_bank;
use crate::shaper_op::PACKED;
use crate::signal::{NOISE_FFT, noise_filter_matrix};

/// `[linear, LayerNorm, LeakyReLU(0.01)] x 3 -> linear`. The LayerNorm is
/// `grad_layers::LayerNorm`: candle-nn's records no backward pass, which left everything
/// before it at its initial values in the models trained before issue 18.
#[derive(Clone, Debug)]
pub struct ControlNet {
    layers: Vec<(Linear, LayerNorm)>,
    out: Linear,
}

impl ControlNet {
    pub fn new(input: usize, output: usize, vb: VarBuilder) -> Result<Self> {
        let mut layers = Vec::with_capacity(CONTROL_LAYERS);
        for i in 0..CONTROL_LAYERS {
            let inp = if i == 0 { input } else { CONTROL_HIDDEN };
            let lvb = vb.pp(format!("layers.{i}"));
            layers.push((
                candle_nn::linear(inp, CONTROL_HIDDEN, lvb.pp("linear"))?,
                grad_layers::layer_norm(CONTROL_HIDDEN, lvb.pp("norm"))?,
            ));
        }
        Ok(Self {
            layers,
            out: candle_nn::linear(CONTROL_HIDDEN, output, vb.pp("out"))?,
        })
    }
}

impl Module for ControlNet {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for (lin, norm) in &self.layers {
            h = candle_nn::ops::leaky_relu(&norm.forward(&lin.forward(&h)?)?, 0.01)?;
        }
        self.out.forward(&h)
    }
}

/// The noise net's output layer is trained as `NOISE_OUTPUT_GAIN * (W h + b)`; the model
/// file stores `W` and `b` already multiplied, so the engine runs it unchanged. Without
/// it the noise branch starts about as loud as the instrument, and Adam's steps on raw
/// magnitudes (about the learning rate each) keep it there: on SoundFont instruments
/// (clean spectra between the harmonics) the first models trained hissed 5 to 10 dB above
/// their harmonics. The gain lowers both the starting level and that floor by 40 dB.
pub const NOISE_OUTPUT_GAIN: f64 = 0.01;

/// The same for the learned reverb's 2 s impulse response: trained as
/// `REVERB_IR_GAIN * theta`. Raw, every one of its 32,000 taps random-walks by about the
/// learning rate a step, which left a diffuse tail 12 dB below the dry sound after 200
/// steps on dry data.
pub const REVERB_IR_GAIN: f64 = 0.01;

/// The factor by which the model file's copy of a trained weight is the training
/// variable times (1 for most).
fn file_gain(name: &str) -> f64 {
    match name {
        "noise.out.weight" | "noise.out.bias" => NOISE_OUTPUT_GAIN,
        "reverb.ir" => REVERB_IR_GAIN,
        _ => 1.0,
    }
}

/// The named trainable tensors of `varmap`, sorted by name.
pub fn named_vars(varmap: &VarMap) -> Vec<(String, Var)> {
    let mut v: Vec<(String, Var)> = varmap
        .data()
        .lock()
        .expect("varmap lock")
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Sets the training variables of `varmap` to the model-file `weights` (divided by their
/// [`file_gain`]). With `only_present`, tensors of the file that the varmap lacks are
/// skipped (the DDSP baseline shares the encoder, noise net and reverb only); otherwise
/// they are an error.
pub(crate) fn set_vars(
    varmap: &VarMap,
    weights: &NewtWeights,
    only_present: bool,
    device: &Device,
) -> Result<()> {
    let mut weights = weights.clone();
    let data = varmap.data().lock().expect("varmap lock");
    let mut result = Ok(());
    weights.visit_mut(&mut |name, shape, values| {
        if result.is_err() || name == "exciter.phases" {
            return;
        }
        let gain = 1.0 / file_gain(&name);
        result = match data.get(&name) {
            Some(var) => Tensor::from_vec(values.clone(), shape, device)
                .and_then(|t| t.affine(gain, 0.0))
                .and_then(|t| var.set(&t)),
            None if only_present => Ok(()),
            None => Err(candle_core::Error::Msg(format!(
                "training model lacks {name}"
            ))),
        };
    });
    result
}

/// The inputs of one batch that the graph does not differentiate.
#[derive(Clone, Debug)]
pub struct Conditioning {
    /// `[B, F]` f0 in Hz (sanitised) and loudness in dB.
    pub f0: Tensor,
    pub loudness: Tensor,
    /// `[B, n_harmonics, T]` exciter harmonics (see `signal::harmonics`).
    pub harmonics: Tensor,
    /// `[B, F, 257, 2]` spectra of each frame's white noise (see `signal::noise_spectra`).
    pub noise: Tensor,
}

/// The whole NEWT synthesiser as a candle module over a `VarMap`.
pub struct Newt {
    pub meta: ModelMeta,
    pub varmap: VarMap,
    /// Fixed harmonic phases (not trained; written to the model file).
    pub phases: Vec<f32>,
    shared: SharedParts,
    mixer: Linear,
    film: ControlNet,
    shaper_params: Vec<Tensor>,
    out_mixer: Linear,
}

/// What NEWT and the DDSP baseline share: the control encoder (GRU + projection), the
/// noise net with its filter, and the learned reverb.
pub struct SharedParts {
    gru: GRU,
    proj: Linear,
    noise: ControlNet,
    reverb: Tensor,
    /// `[2, 257, 129]` magnitudes -> filter spectrum.
    noise_matrix: Tensor,
}

impl SharedParts {
    pub fn new(meta: &ModelMeta, vb: &VarBuilder, device: &Device) -> Result<Self> {
        let gru = candle_nn::rnn::gru(2, GRU_HIDDEN, GRUConfig::default(), vb.pp("encoder.gru"))?;
        let proj = candle_nn::linear(GRU_HIDDEN, GRU_HIDDEN, vb.pp("encoder.proj"))?;
        let noise = ControlNet::new(GRU_HIDDEN, NOISE_BANDS, vb.pp("noise"))?;
        let reverb = vb.get_with_hints(
            meta.reverb_taps(),
            "reverb.ir",
            candle_nn::Init::Randn {
                mean: 0.0,
                stdev: 1e-4,
            },
        )?;
        let bins = NOISE_FFT / 2 + 1;
        let noise_matrix = Tensor::from_vec(noise_filter_matrix(), (2, bins, NOISE_BANDS), device)?;
        Ok(Self {
            gru,
            proj,
            noise,
            reverb,
            noise_matrix,
        })
    }

    /// z-scored controls through the GRU and the projection: `[B, F, 128]`.
    pub fn encode(&self, meta: &ModelMeta, cond: &Conditioning) -> Result<Tensor> {
        let f0n = cond.f0.affine(
            1.0 / meta.f0_std_hz as f64,
            -(meta.f0_mean_hz / meta.f0_std_hz) as f64,
        )?;
        let ln = cond.loudness.affine(
            1.0 / meta.loudness_std_db as f64,
            -(meta.loudness_mean_db / meta.loudness_std_db) as f64,
        )?;
        let input = Tensor::stack(&[f0n, ln], 2)?; // [B, F, 2]
        let hs: Vec<Tensor> = self.gru.seq(&input)?.into_iter().map(|s| s.h).collect();
        self.proj.forward(&Tensor::stack(&hs, 1)?)
    }

    /// The noise net's magnitudes, `[B, F, 129]`: its output layer times
    /// [`NOISE_OUTPUT_GAIN`].
    pub fn noise_magnitudes(&self, z: &Tensor) -> Result<Tensor> {
        self.noise.forward(z)?.affine(NOISE_OUTPUT_GAIN, 0.0)
    }

    /// `harmonic` plus the filtered noise driven by `z`, through the learned reverb.
    pub fn finish(
        &self,
        z: &Tensor,
        harmonic: Tensor,
        cond: &Conditioning,
        hop: usize,
    ) -> Result<Tensor> {
        let noise = filtered_noise(
            &self.noise_magnitudes(z)?,
            &self.noise_matrix,
            &cond.noise,
            hop,
        )?;
        learned_reverb(
            &(harmonic + noise)?,
            &self.reverb.affine(REVERB_IR_GAIN, 0.0)?,
        )
    }
}

impl Newt {
    /// A model with fresh weights (paper-style initialisation, reproducible from `seed`).
    pub fn new(meta: ModelMeta, seed: u64, device: &Device) -> Result<Self> {
        let weights = crate::init::initial_weights(&meta, seed);
        Self::from_model(&NewtModel { meta, weights }, device)
    }

    /// The training model holding exactly the weights of `model`.
    pub fn from_model(model: &NewtModel, device: &Device) -> Result<Self> {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let newt = Self::build(
            model.meta.clone(),
            varmap,
            vb,
            model.weights.exciter_phases.clone(),
            device,
        )?;
        set_vars(&newt.varmap, &model.weights, false, device)?;
        Ok(newt)
    }

    /// Exports the current weights as a model file.
    pub fn to_model(&self, instrument: &str, provenance: &str) -> Result<NewtModel> {
        let mut meta = self.meta.clone();
        meta.instrument = instrument.into();
        meta.provenance = provenance.into();
        let mut weights = NewtWeights::zeros(&meta);
        let data = self.varmap.data().lock().expect("varmap lock");
        let mut result = Ok(());
        weights.visit_mut(&mut |name, _shape, values| {
            if result.is_err() {
                return;
            }
            if name == "exciter.phases" {
                *values = self.phases.clone();
                return;
            }
            let gain = file_gain(&name);
            result = match data.get(&name) {
                Some(var) => var
                    .as_tensor()
                    .affine(gain, 0.0)
                    .and_then(|t| t.flatten_all())
                    .and_then(|t| t.to_vec1::<f32>())
                    .map(|v| *values = v),
                None => Err(candle_core::Error::Msg(format!(
                    "training model lacks {name}"
                ))),
            };
        });
        result?;
        Ok(NewtModel { meta, weights })
    }

    fn build(
        meta: ModelMeta,
        varmap: VarMap,
        vb: VarBuilder,
        phases: Vec<f32>,
        device: &Device,
    ) -> Result<Self> {
        let (nh, ns, w) = (meta.n_harmonics, meta.n_shapers, SHAPER_WIDTH);
        let shared = SharedParts::new(&meta, &vb, device)?;
        let mixer = candle_nn::linear(nh, ns, vb.pp("harmonic_mixer"))?;
        let film = ControlNet::new(GRU_HIDDEN, 4 * ns, vb.pp("film"))?;
        let sv = vb.pp("shapers");
        let first = candle_nn::Init::Uniform { lo: -1.0, up: 1.0 };
        let hidden_bound = (6.0f64 / w as f64).sqrt();
        let hidden = candle_nn::Init::Uniform {
            lo: -hidden_bound,
            up: hidden_bound,
        };
        let shaper_params = vec![
            // Paper: input scale initialised N(0, 1) * 10.
            sv.get_with_hints(
                ns,
                "input_scale",
                candle_nn::Init::Randn {
                    mean: 0.0,
                    stdev: 10.0,
                },
            )?
            .unsqueeze(1)?,
            sv.get_with_hints((ns, w, 1), "w1", first)?
                .reshape((ns, w))?,
            sv.get_with_hints((ns, w), "b1", first)?,
            sv.get_with_hints((ns, w, w), "w2", hidden)?
                .reshape((ns, w * w))?,
            sv.get_with_hints((ns, w), "b2", first)?,
            sv.get_with_hints((ns, w, w), "w3", hidden)?
                .reshape((ns, w * w))?,
            sv.get_with_hints((ns, w), "b3", first)?,
            sv.get_with_hints((ns, 1, w), "w4", hidden)?
                .reshape((ns, w))?,
            sv.get_with_hints((ns, 1), "b4", first)?,
        ];
        let out_mixer = candle_nn::linear(ns, 1, vb.pp("output_mixer"))?;
        Ok(Self {
            meta,
            varmap,
            phases,
            shared,
            mixer,
            film,
            shaper_params,
            out_mixer,
        })
    }

    pub fn parameters(&self) -> Vec<Var> {
        self.varmap.all_vars()
    }
}

/// Control frames `[B, F, C]` to audio rate `[B, C, F * hop]` by the engine's causal
/// linear ramp from the previous frame (the first frame ramps from itself).
pub fn upsample(x: &Tensor, hop: usize) -> Result<Tensor> {
    let (b, f, c) = x.dims3()?;
    let cur = x.transpose(1, 2)?.contiguous()?; // [B, C, F]
    let prev = Tensor::cat(&[cur.narrow(2, 0, 1)?, cur.narrow(2, 0, f - 1)?], 2)?;
    let ramp: Vec<f32> = (0..hop).map(|i| (i + 1) as f32 / hop as f32).collect();
    let ramp = Tensor::from_vec(ramp, (1, 1, 1, hop), x.device())?;
    let delta = (cur - &prev)?.unsqueeze(3)?;
    prev.unsqueeze(3)?
        .broadcast_add(&delta.broadcast_mul(&ramp)?)?
        .reshape((b, c, f * hop))
}

/// The noise branch: 129 magnitudes per frame `[B, F, 129]` become the engine's windowed
/// 256-tap filter (through the constant `matrix` `[2, 257, 129]`), multiply each frame's
/// noise spectrum `[B, F, 257, 2]`, and the 512-sample results overlap-add at `hop`.
pub fn filtered_noise(
    mags: &Tensor,
    matrix: &Tensor,
    noise: &Tensor,
    hop: usize,
) -> Result<Tensor> {
    let (b, f, _) = mags.dims3()?;
    let g_re = matrix.get(0)?.t()?; // [129, 257]
    let g_im = matrix.get(1)?.t()?;
    let hre = mags.broadcast_matmul(&g_re)?.unsqueeze(3)?;
    let him = mags.broadcast_matmul(&g_im)?.unsqueeze(3)?;
    let filt = Tensor::cat(&[hre, him], 3)?; // [B, F, 257, 2]
    let frames = irfft(&complex_mul(&filt, noise)?, NOISE_FFT)?; // [B, F, 512]
    let quarters = NOISE_FFT / hop;
    let mut blocks: Option<Tensor> = None;
    for q in 0..quarters {
        let chunk = frames
            .narrow(2, q * hop, hop)?
            .pad_with_zeros(1, q, quarters - 1 - q)?;
        blocks = Some(match blocks {
            None => chunk,
            Some(acc) => (acc + chunk)?,
        });
    }
    blocks
        .expect("at least one quarter")
        .reshape((b, (f + quarters - 1) * hop))?
        .narrow(1, 0, f * hop)
}

/// `dry + dry * [0, ir]`, truncated to the input length, by FFT convolution.
pub fn learned_reverb(dry: &Tensor, ir: &Tensor) -> Result<Tensor> {
    let t = dry.dim(1)?;
    let l = ir.dim(0)? + 1;
    let n = (t + l).next_power_of_two();
    let ir = ir.unsqueeze(0)?.pad_with_zeros(1, 1, n - l)?; // [1, n]
    let wet = irfft(
        &complex_mul(&rfft(&dry.pad_with_zeros(1, 0, n - t)?)?, &rfft(&ir)?)?,
        n,
    )?
    .narrow(1, 0, t)?;
    dry + wet
}

impl Newt {
    /// Renders `[B, T]` audio (T = F * hop), dry through the learned reverb, exactly as
    /// the engine's voice and reverb do with the MLP shapers.
    pub fn forward(&self, cond: &Conditioning) -> Result<Tensor> {
        let meta = &self.meta;
        let hop = meta.hop;
        let z = self.shared.encode(meta, cond)?;

        // Waveshaping branch: the mixed harmonics, FiLM'd at audio rate from the frame-rate
        // FiLM parameters, through the shaper bank (one fused op, see `film_op`).
        let film = self.film.forward(&z)?; // [B, F, 4 ns]
        let x = self
            .mixer
            .weight()
            .broadcast_matmul(&cond.harmonics)?
            .broadcast_add(&self.mixer.bias().expect("bias").unsqueeze(1)?)?;
        let params = Tensor::cat(&self.shaper_params, 1)?;
        debug_assert_eq!(params.dim(1)?, PACKED);
        let shaped = film_shaper_bank(&x, &film, &params, hop)?; // [B, ns, T]
        let harmonic = self
            .out_mixer
            .weight()
            .broadcast_matmul(&shaped)?
            .squeeze(1)?
            .broadcast_add(self.out_mixer.bias().expect("bias"))?; // [B, T]

        self.shared.finish(&z, harmonic, cond, hop)
    }
}
