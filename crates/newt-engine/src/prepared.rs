//! A model made ready for the audio thread ([`PreparedModel`]): the frame-rate networks
//! with their weights transposed, the FastNEWT tables, the fixed harmonic phases, the noise
//! filter's FFT plan and the reverb response. Built once, off the audio thread, and shared
//! read-only by every voice.

use newt_model::{ModelMeta, NOISE_BANDS, NewtModel, NewtWeights, Operators};
use realfft::num_complex::Complex;

use crate::controls::FrameControls;
use crate::error::EngineError;
use crate::nets::{ControlNet, Dense, GruNet};
use crate::noise_filter::{NOISE_TAPS, NoiseFilterPlan};
use crate::nws_noise::NwsNoisePlan;
use crate::shaper::{ShaperTables, TableSpec};

/// A model made ready for the audio thread: FastNEWT tables built, the mixer folded with
/// the fixed harmonic phases, FFT plans made. Built off the audio thread.
pub struct PreparedModel {
    pub meta: ModelMeta,
    pub weights: NewtWeights,
    /// `(cos theta_k, sin theta_k)` of the fixed harmonic phases, so that
    /// `sin(k phi + theta_k) = sin(k phi) cos theta_k + cos(k phi) sin theta_k`.
    pub(crate) phase_cos_sin: Vec<(f32, f32)>,
    pub(crate) tables: ShaperTables,
    pub(crate) gru: GruNet,
    pub(crate) proj: Dense,
    pub(crate) film: ControlNet,
    pub(crate) noise: ControlNet,
    /// Full reverb response at the model rate, tap 0 (= 0) included.
    pub(crate) reverb_ir: Vec<f32>,
    /// Magnitudes to filter taps: inverse real DFT plan and Hann window.
    pub(crate) noise_filter_plan: NoiseFilterPlan,
    /// The authors' noise operator's plans, for `Operators::Nws` models.
    pub(crate) nws_noise: Option<NwsNoisePlan>,
}

impl std::fmt::Debug for PreparedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedModel")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

impl PreparedModel {
    /// Prepares `model` for the audio thread (builds tables, transposes weights, plans
    /// FFTs): seconds of work at most, never on the audio thread.
    pub fn new(model: NewtModel, table: TableSpec) -> Result<Self, EngineError> {
        if !table.is_valid() {
            return Err(EngineError::BadTable(table));
        }
        let NewtModel { meta, weights } = model;
        let gru = GruNet::new(&weights.gru);
        let proj = Dense::new(&weights.proj);
        let film = ControlNet::new(&weights.film);
        let noise = ControlNet::new(&weights.noise);
        let phase_cos_sin = weights
            .exciter_phases
            .iter()
            .map(|t| (t.cos(), t.sin()))
            .collect();
        let tables = ShaperTables::new(&weights.shapers, table);
        let mut reverb_ir = Vec::with_capacity(weights.reverb_ir.len() + 1);
        reverb_ir.push(0.0);
        reverb_ir.extend_from_slice(&weights.reverb_ir);
        let nws_noise = (meta.operators == Operators::Nws).then(|| NwsNoisePlan::new(NOISE_TAPS));
        Ok(Self {
            meta,
            weights,
            phase_cos_sin,
            tables,
            gru,
            proj,
            film,
            noise,
            reverb_ir,
            noise_filter_plan: NoiseFilterPlan::new(),
            nws_noise,
        })
    }

    /// The controls of one frame as the model is shown them: sanitised into the model's
    /// loudness range, f0 capped at Nyquist.
    pub fn frame_controls(&self, c: FrameControls) -> FrameControls {
        let m = &self.meta.loudness_measure;
        c.sanitized_within(
            0.5 * self.meta.sample_rate as f32,
            m.floor_db(),
            m.ceiling_db(),
        )
    }

    /// The control encoder's input for `c`: z-scored f0 (Hz) and loudness.
    pub fn network_input(&self, c: FrameControls) -> [f32; 2] {
        let c = self.frame_controls(c);
        let m = &self.meta;
        [
            (c.f0_hz - m.f0_mean_hz) / m.f0_std_hz,
            (c.loudness_db - m.loudness_mean_db) / m.loudness_std_db,
        ]
    }

    /// The frame-rate networks over a whole control sequence, from rest: the control
    /// embeddings `[frames][128]`, FiLM parameters `[frames][4 n_shapers]` and noise
    /// magnitudes `[frames][129]`, computed by the voice's own code. Allocates: for
    /// inspection and tests, never on the audio thread.
    pub fn frame_networks(&self, controls: &[FrameControls]) -> FrameNetworks {
        let hidden = self.weights.gru.hidden;
        let (emb, fw) = (self.weights.proj.out_dim, 4 * self.meta.n_shapers);
        let mut h = vec![0.0; hidden];
        let mut gru_scratch = self.gru.scratch();
        let mut mlp_scratch = self.film.scratch(1);
        let mut out = FrameNetworks {
            embedding: vec![0.0; controls.len() * emb],
            film: vec![0.0; controls.len() * fw],
            noise_magnitudes: vec![0.0; controls.len() * NOISE_BANDS],
        };
        for (f, &c) in controls.iter().enumerate() {
            self.gru
                .step(&self.network_input(c), &mut h, &mut gru_scratch);
            let z = &mut out.embedding[f * emb..(f + 1) * emb];
            self.proj.forward(&h, 1, z);
            self.film
                .forward(z, 1, &mut out.film[f * fw..(f + 1) * fw], &mut mlp_scratch);
            self.noise.forward(
                z,
                1,
                &mut out.noise_magnitudes[f * NOISE_BANDS..(f + 1) * NOISE_BANDS],
                &mut mlp_scratch,
            );
        }
        out
    }

    /// The noise filter of one frame from its 129 magnitudes: the inverse real DFT
    /// (`1/N` scaled like torch.fft.irfft), rolled by half its length (centred) and
    /// windowed by a periodic Hann window. Allocation-free.
    pub fn noise_filter(
        &self,
        magnitudes: &[f32],
        spec: &mut [Complex<f32>],
        time: &mut [f32],
        scratch: &mut [Complex<f32>],
        filter: &mut [f32],
    ) {
        self.noise_filter_plan
            .filter(magnitudes, spec, time, scratch, filter);
    }

    /// Working buffers for [`noise_filter`](Self::noise_filter): spectrum, time, scratch.
    pub fn noise_filter_buffers(&self) -> (Vec<Complex<f32>>, Vec<f32>, Vec<Complex<f32>>) {
        self.noise_filter_plan.buffers()
    }

    /// The plans of the authors' noise operator, for a model with `Operators::Nws`.
    pub fn nws_noise_plan(&self) -> Option<&NwsNoisePlan> {
        self.nws_noise.as_ref()
    }

    pub fn tables(&self) -> &ShaperTables {
        &self.tables
    }
}

/// What [`PreparedModel::frame_networks`] computes, frame-major.
#[derive(Clone, Debug)]
pub struct FrameNetworks {
    pub embedding: Vec<f32>,
    pub film: Vec<f32>,
    pub noise_magnitudes: Vec<f32>,
}
