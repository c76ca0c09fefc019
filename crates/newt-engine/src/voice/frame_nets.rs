//! The frame-rate networks of one voice, once per frame (hop samples): the GRU control
//! encoder over the z-scored f0 and loudness (its hidden state carried across frames),
//! the projection to the embedding z, and from z the FiLM net (4 parameters per shaper)
//! and the noise net (129 linear noise magnitudes). The GRU runs frame by frame; the
//! projection and both nets run on the whole batch at once. [`VoiceNetBatch`] runs them
//! for many voices at once, the voices' frames as the columns of each matrix product, so
//! that each weight is read once per frame for all voices rather than once per voice.

use super::Voice;
use super::params::MAX_BATCH;
use crate::controls::FrameControls;
use crate::nets::{GruScratch, MlpScratch};
use crate::prepared::PreparedModel;
use newt_model::NOISE_BANDS;

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

/// The frame networks of many voices at once (an engine's polyphony): the GRU steps of
/// all voices sounding at a frame as the columns of one step, then the projection, FiLM
/// and noise nets over every voice's frames together. Bit for bit the same as each voice
/// running its own networks (`Voice::render_frames`): a column of a matrix product never
/// depends on the others. Allocated for `voices` voices of `MAX_BATCH` frames.
pub(crate) struct VoiceNetBatch {
    hidden: usize,
    embedding: usize,
    /// This frame's GRU columns: inputs `[voices][2]`, states `[voices][hidden]`, the
    /// voice of each column, gate buffers `[voices][3 hidden]`.
    x: Vec<f32>,
    h: Vec<f32>,
    column_voice: Vec<usize>,
    gi: Vec<f32>,
    gh: Vec<f32>,
    /// Every (voice, frame) of the batch: GRU outputs `[cols][hidden]`, its owner,
    /// embeddings, FiLM rows and noise magnitudes.
    hs: Vec<f32>,
    owner: Vec<(usize, usize)>,
    z: Vec<f32>,
    film: Vec<f32>,
    noise: Vec<f32>,
    mlp_scratch: MlpScratch,
}

impl VoiceNetBatch {
    pub(crate) fn new(model: &PreparedModel, voices: usize) -> Self {
        let w = &model.weights;
        let (hidden, embedding) = (w.gru.hidden, w.proj.out_dim);
        let cols = voices * MAX_BATCH;
        Self {
            hidden,
            embedding,
            x: vec![0.0; voices * 2],
            h: vec![0.0; voices * hidden],
            column_voice: vec![0; voices],
            gi: vec![0.0; voices * 3 * hidden],
            gh: vec![0.0; voices * 3 * hidden],
            hs: vec![0.0; cols * hidden],
            owner: vec![(0, 0); cols],
            z: vec![0.0; cols * embedding],
            film: vec![0.0; cols * model.film.outputs()],
            noise: vec![0.0; cols * model.noise.outputs()],
            mlp_scratch: model.film.scratch(cols),
        }
    }

    /// Runs the networks of every voice's prepared batch (`Voice::prepare`), whose frames
    /// sit at `start` within the engine's batch (`starts[v]`, `None` for a voice with
    /// nothing prepared): FiLM rows and noise magnitudes are left in each voice for
    /// `Voice::render_prepared`, and each GRU state runs on.
    pub(crate) fn run(
        &mut self,
        model: &PreparedModel,
        voices: &mut [Voice],
        starts: &[Option<usize>],
        frames: usize,
    ) {
        let (hd, emb) = (self.hidden, self.embedding);
        let voices_here = voices.len().min(starts.len()).min(self.column_voice.len());
        let mut total = 0;
        for j in 0..frames {
            let mut cols = 0;
            for v in 0..voices_here {
                let Some(start) = starts[v] else { continue };
                let Some(&c) = j
                    .checked_sub(start)
                    .and_then(|f| voices[v].prepared().get(f))
                else {
                    continue;
                };
                self.x[2 * cols..2 * cols + 2].copy_from_slice(&model.network_input(c));
                self.h[cols * hd..(cols + 1) * hd].copy_from_slice(&voices[v].nets.h);
                self.column_voice[cols] = v;
                cols += 1;
            }
            if cols == 0 {
                continue;
            }
            model.gru.step_columns(
                &self.x[..2 * cols],
                &mut self.h,
                cols,
                &mut self.gi,
                &mut self.gh,
            );
            for (k, &v) in self.column_voice[..cols].iter().enumerate() {
                let h = &self.h[k * hd..(k + 1) * hd];
                voices[v].nets.h.copy_from_slice(h);
                if total < self.owner.len() {
                    self.hs[total * hd..(total + 1) * hd].copy_from_slice(h);
                    self.owner[total] = (v, j - starts[v].unwrap_or(0));
                    total += 1;
                }
            }
        }
        if total == 0 {
            return;
        }
        model
            .proj
            .forward(&self.hs[..total * hd], total, &mut self.z);
        let z = &self.z[..total * emb];
        let (fw, nw) = (model.film.outputs(), model.noise.outputs());
        model
            .film
            .forward(z, total, &mut self.film, &mut self.mlp_scratch);
        model
            .noise
            .forward(z, total, &mut self.noise, &mut self.mlp_scratch);
        for (t, &(v, f)) in self.owner[..total].iter().enumerate() {
            let voice = &mut voices[v];
            voice.film.batch_rows_mut()[f * fw..(f + 1) * fw]
                .copy_from_slice(&self.film[t * fw..(t + 1) * fw]);
            voice.noise_magnitudes[f * NOISE_BANDS..f * NOISE_BANDS + nw]
                .copy_from_slice(&self.noise[t * nw..(t + 1) * nw]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shaper::TableSpec;
    use crate::voice::VoiceParams;
    use newt_model::NewtModel;

    /// Voices whose networks run together render the same bits as voices running their
    /// own, over batches where voices start, stop and take different frame counts.
    #[test]
    fn voices_batched_render_what_each_voice_renders_alone() {
        let model = PreparedModel::new(NewtModel::seeded(7), TableSpec::default()).unwrap();
        let hop = model.meta.hop;
        let params = VoiceParams::default();
        let voices = 3;
        let mut alone: Vec<Voice> = (0..voices).map(|v| Voice::new(&model, v as u64)).collect();
        let mut together: Vec<Voice> = (0..voices).map(|v| Voice::new(&model, v as u64)).collect();
        let mut batch = VoiceNetBatch::new(&model, voices);
        let control = |v: usize, t: usize| FrameControls {
            f0_hz: 110.0 * (v + 1) as f32 + 3.0 * t as f32,
            loudness_db: -30.0 + (t % 7) as f32,
        };
        // (start, frames) of each voice in each engine batch of 4 frames.
        let plans: [[Option<(usize, usize)>; 3]; 4] = [
            [Some((0, 4)), None, Some((1, 3))],
            [Some((0, 2)), Some((2, 2)), Some((0, 4))],
            [None, Some((0, 1)), Some((0, 4))],
            [Some((0, 4)), Some((0, 4)), Some((3, 1))],
        ];
        for (t, plan) in plans.iter().enumerate() {
            let mut starts = [None; 3];
            let mut expected = vec![vec![0.0f32; 4 * hop]; voices];
            for v in 0..voices {
                let Some((start, frames)) = plan[v] else {
                    continue;
                };
                let controls: Vec<FrameControls> =
                    (0..frames).map(|f| control(v, 4 * t + start + f)).collect();
                alone[v].render_frames(&model, &controls, &params, &mut expected[v]);
                together[v].prepare(&controls);
                starts[v] = Some(start);
            }
            batch.run(&model, &mut together, &starts, 4);
            for v in 0..voices {
                let Some((_, frames)) = plan[v] else { continue };
                let mut got = vec![0.0f32; 4 * hop];
                together[v].render_prepared(&model, &params, &params, &mut got);
                assert!(got[..frames * hop].iter().any(|&x| x != 0.0));
                assert_eq!(
                    got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    expected[v].iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    "batch {t}, voice {v}"
                );
            }
        }
    }
}

#[cfg(test)]
mod invariants {
    use super::*;
    use crate::shaper::TableSpec;
    use crate::voice::VoiceParams;
    use newt_model::NewtModel;

    /// Broken on purpose: a batch longer than `MAX_BATCH` plays its first `MAX_BATCH`
    /// frames, an output buffer too short for the batch is left alone; neither panics, and
    /// the voice plays on afterwards.
    #[test]
    fn a_batch_too_long_or_an_output_too_short_is_handled() {
        let model = PreparedModel::new(NewtModel::seeded(3), TableSpec::default()).unwrap();
        let hop = model.meta.hop;
        let mut voice = Voice::new(&model, 1);
        let params = VoiceParams::default();
        let c = FrameControls {
            f0_hz: 330.0,
            loudness_db: -30.0,
        };
        let mut out = vec![0.0f32; (MAX_BATCH + 4) * hop];
        voice.render_frames(&model, &[c; MAX_BATCH + 4], &params, &mut out);
        assert!(out[..MAX_BATCH * hop].iter().any(|&x| x != 0.0));
        assert!(out[MAX_BATCH * hop..].iter().all(|&x| x == 0.0));
        let mut short = vec![0.0f32; hop];
        voice.render_frames(&model, &[c; 2], &params, &mut short);
        assert!(short.iter().all(|&x| x == 0.0));
        let mut next = vec![0.0f32; hop];
        voice.render_frames(&model, &[c], &params, &mut next);
        assert!(next.iter().all(|x| x.is_finite()) && next.iter().any(|&x| x != 0.0));
    }
}
