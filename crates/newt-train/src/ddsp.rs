//! The DDSP-style baseline (Engel et al., ICLR 2020) on the same control encoder: an MLP
//! gives an overall amplitude and a distribution over the 101 harmonics (zeroed above
//! Nyquist, renormalised), an additive synthesiser sums them, and the same filtered-noise
//! branch and learned reverb as NEWT follow. Trained by the same command for an honest
//! comparison at equal steps; it is not a model the engine plays.

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{Module, VarBuilder, VarMap};
use newt_model::{GRU_HIDDEN, ModelMeta};

use crate::model::{Conditioning, ControlNet, SharedParts, upsample};

pub struct Ddsp {
    pub meta: ModelMeta,
    pub varmap: VarMap,
    shared: SharedParts,
    harmonic_net: ControlNet,
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
        let shared = SharedParts::new(&meta, &vb, device)?;
        let harmonic_net =
            ControlNet::new(GRU_HIDDEN, 1 + meta.n_harmonics, vb.pp("ddsp.harmonics"))?;
        Ok(Self {
            meta,
            varmap,
            shared,
            harmonic_net,
        })
    }

    /// The baseline as a training run selected it: the best held-out weights of its
    /// checkpoint folder (`<out>.ddsp.ckpt/best.safetensors`, the same rule that picks
    /// the exported NEWT model), else the last step's, with the metadata of the same
    /// data set.
    pub fn from_checkpoint(
        dir: &std::path::Path,
        meta: ModelMeta,
        device: &Device,
    ) -> Result<Self> {
        let mut ddsp = Self::new(meta, device)?;
        let best = dir.join(crate::train::BEST_WEIGHTS);
        if best.exists() {
            ddsp.varmap.load(best)?;
        } else {
            // The checkpoint also holds the optimiser's moments; only the weights are read.
            ddsp.varmap.load(dir.join("weights.safetensors"))?;
        }
        Ok(ddsp)
    }

    pub fn forward(&self, cond: &Conditioning) -> Result<Tensor> {
        let meta = &self.meta;
        let (hop, nh) = (meta.hop, meta.n_harmonics);
        let z = self.shared.encode(meta, cond)?;

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
        self.shared.finish(&z, harmonic, cond, hop)
    }
}
