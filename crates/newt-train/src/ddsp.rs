//! The DDSP-style baseline (Engel et al., ICLR 2020) on the same control encoder: an MLP
//! gives an overall amplitude and a distribution over the 101 harmonics (zeroed above
//! Nyquist, renormalised), an additive synthesiser sums them, and the same filtered-noise
//! branch and learned reverb as NEWT follow. Trained by the same command for an honest
//! comparison at equal steps; it is not a model the engine plays.

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{Module, VarBuilder, VarMap};
use newt_model::{GRU_HIDDEN, ModelMeta, SplitMix64};

use crate::init::initial_weights;
use crate::model::{Conditioning, ControlNet, SharedParts, named_vars, set_vars, upsample};

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
    /// A baseline with fresh weights, reproducible from `seed`: the shared encoder, noise
    /// net and reverb start where NEWT's would from the same seed, the harmonic net's
    /// linear layers uniform in +-1/sqrt(fan in) (PyTorch's bound), its LayerNorms at
    /// identity.
    pub fn new(meta: ModelMeta, seed: u64, device: &Device) -> Result<Self> {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let shared = SharedParts::new(&meta, &vb, device)?;
        let harmonic_net =
            ControlNet::new(GRU_HIDDEN, 1 + meta.n_harmonics, vb.pp("ddsp.harmonics"))?;
        set_vars(&varmap, &initial_weights(&meta, seed), true, device)?;
        // Its own stream, so that the shared parts match NEWT's of the same seed.
        let mut rng = SplitMix64::new(seed ^ 0xDD5B_0000);
        for (name, var) in named_vars(&varmap) {
            if !name.starts_with("ddsp.harmonics.") || name.contains(".norm.") {
                continue;
            }
            let layer = name.rsplit_once('.').map_or(name.as_str(), |(l, _)| l);
            let weight = varmap
                .data()
                .lock()
                .expect("varmap lock")
                .get(&format!("{layer}.weight"))
                .map(|w| w.as_tensor().dim(1))
                .transpose()?;
            let bound = 1.0 / (weight.unwrap_or(1) as f32).sqrt();
            let values: Vec<f32> = (0..var.elem_count())
                .map(|_| rng.uniform(-bound, bound))
                .collect();
            var.set(&Tensor::from_vec(values, var.shape(), device)?)?;
        }
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
        let mut ddsp = Self::new(meta, 0, device)?;
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
