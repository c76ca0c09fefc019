//! The DDSP-style baseline (Engel et al., ICLR 2020) on the same control encoder: an MLP
//! gives an overall amplitude and a distribution over the 101 harmonics (zeroed above
//! Nyquist, renormalised), an additive synthesiser sums them, and the same filtered-noise
//! branch and learned reverb as NEWT follow. Trained by the same command for an honest
//! comparison at equal steps; it is not a model the engine plays.

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::rnn::{GRUConfig, RNN};
use candle_nn::{GRU, Linear, Module, VarBuilder, VarMap};
use newt_model::{GRU_HIDDEN, ModelMeta, NOISE_BANDS};

use crate::model::{Conditioning, ControlNet, filtered_noise, learned_reverb, upsample};
use crate::signal::{NOISE_FFT, noise_filter_matrix};

pub struct Ddsp {
    pub meta: ModelMeta,
    pub varmap: VarMap,
    gru: GRU,
    proj: Linear,
    harmonic_net: ControlNet,
    noise: ControlNet,
    reverb: Tensor,
    noise_matrix: Tensor,
}

/// DDSP's scaled sigmoid: `2 sigmoid(x)^ln 10 + 1e-7`, positive with a wide range.
fn exp_sigmoid(x: &Tensor) -> Result<Tensor> {
    candle_nn::ops::sigmoid(x)?
        .powf(10f64.ln())?
        .affine(2.0, 1e-7)
}

impl Ddsp {
    pub fn new(meta: ModelMeta, device: &Device) -> Result<Self> {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let gru = candle_nn::rnn::gru(2, GRU_HIDDEN, GRUConfig::default(), vb.pp("encoder.gru"))?;
        let proj = candle_nn::linear(GRU_HIDDEN, GRU_HIDDEN, vb.pp("encoder.proj"))?;
        let harmonic_net =
            ControlNet::new(GRU_HIDDEN, 1 + meta.n_harmonics, vb.pp("ddsp.harmonics"))?;
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
            meta,
            varmap,
            gru,
            proj,
            harmonic_net,
            noise,
            reverb,
            noise_matrix,
        })
    }

    pub fn forward(&self, cond: &Conditioning) -> Result<Tensor> {
        let meta = &self.meta;
        let (_, f) = cond.f0.dims2()?;
        let (hop, nh) = (meta.hop, meta.n_harmonics);
        let f0n = cond.f0.affine(
            1.0 / meta.f0_std_hz as f64,
            -(meta.f0_mean_hz / meta.f0_std_hz) as f64,
        )?;
        let ln = cond.loudness.affine(
            1.0 / meta.loudness_std_db as f64,
            -(meta.loudness_mean_db / meta.loudness_std_db) as f64,
        )?;
        let input = Tensor::stack(&[f0n, ln], 2)?;
        let hs: Vec<Tensor> = self.gru.seq(&input)?.into_iter().map(|s| s.h).collect();
        let z = self.proj.forward(&Tensor::stack(&hs, 1)?)?;

        let params = exp_sigmoid(&self.harmonic_net.forward(&z)?)?; // [B, F, 1 + nh]
        let amp = params.narrow(2, 0, 1)?;
        // Zero the harmonics above Nyquist (frame-rate f0), then normalise the rest.
        let k: Vec<f32> = (1..=nh).map(|k| k as f32).collect();
        let k = Tensor::from_vec(k, (1, 1, nh), cond.f0.device())?;
        let below = cond
            .f0
            .unsqueeze(2)?
            .broadcast_mul(&k)?
            .lt(0.5 * meta.sample_rate as f64)?
            .to_dtype(DType::F32)?;
        let dist = (params.narrow(2, 1, nh)? * below)?;
        let dist = dist.broadcast_div(&dist.sum_keepdim(2)?.affine(1.0, 1e-7)?)?;
        let amps = upsample(&dist.broadcast_mul(&amp)?, hop)?; // [B, nh, T]
        let harmonic = (amps * &cond.harmonics)?.sum(1)?;
        let _ = f;
        let noise = filtered_noise(
            &self.noise.forward(&z)?,
            &self.noise_matrix,
            &cond.noise,
            hop,
        )?;
        learned_reverb(&(harmonic + noise)?, &self.reverb)
    }
}
