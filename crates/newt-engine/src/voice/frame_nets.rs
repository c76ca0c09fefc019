//! The frame-rate networks of one voice, once per frame (hop samples): the GRU control
//! encoder over the z-scored f0 and loudness (its hidden state carried across frames),
//! the projection to the embedding z, and from z the FiLM net (4 parameters per shaper)
//! and the noise net (129 linear noise magnitudes). The GRU runs frame by frame; the
//! projection and both nets run on the whole batch at once.

use super::params::MAX_BATCH;
use crate::controls::FrameControls;
use crate::nets::{GruScratch, MlpScratch};
use crate::prepared::PreparedModel;

/// The GRU's state and the networks' working buffers.
pub(crate) struct FrameNetState {
    /// GRU hidden state, carried across frames.
    h: Vec<f32>,
    gru_scratch: GruScratch,
    /// GRU outputs of the batch `[MAX_BATCH][hidden]`.
    hs: Vec<f32>,
    /// The batch's embeddings z `[MAX_BATCH][embedding]`.
    z: Vec<f32>,
    mlp_scratch: MlpScratch,
}

impl FrameNetState {
    pub(crate) fn new(model: &PreparedModel) -> Self {
        let w = &model.weights;
        Self {
            h: vec![0.0; w.gru.hidden],
            gru_scratch: model.gru.scratch(),
            hs: vec![0.0; MAX_BATCH * w.gru.hidden],
            z: vec![0.0; MAX_BATCH * w.proj.out_dim],
            mlp_scratch: model.film.scratch(MAX_BATCH),
        }
    }

    /// GRU state back to 0.
    pub(crate) fn reset(&mut self) {
        self.h.fill(0.0);
    }

    /// The networks over the frames of `controls`: FiLM parameters to `film`
    /// (`[frames][4 n_shapers]`) and noise magnitudes to `noise_magnitudes`
    /// (`[frames][129]`).
    pub(crate) fn run(
        &mut self,
        model: &PreparedModel,
        controls: &[FrameControls],
        film: &mut [f32],
        noise_magnitudes: &mut [f32],
    ) {
        let n = controls.len();
        let hidden = model.weights.gru.hidden;
        for (j, &c) in controls.iter().enumerate() {
            let input = model.network_input(c);
            model.gru.step(&input, &mut self.h, &mut self.gru_scratch);
            self.hs[j * hidden..(j + 1) * hidden].copy_from_slice(&self.h);
        }
        model.proj.forward(&self.hs, n, &mut self.z);
        let z = &self.z[..n * model.weights.proj.out_dim];
        model.film.forward(z, n, film, &mut self.mlp_scratch);
        model
            .noise
            .forward(z, n, noise_magnitudes, &mut self.mlp_scratch);
    }
}
