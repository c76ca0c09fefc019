//! The filtered-noise branch of one voice: per frame, white noise (uniform in [-1, 1),
//! dimensionless) through a 256-tap filter designed from the noise net's 129 linear
//! magnitudes, overlap-added into the branch's output at the model rate, `hop` samples a
//! frame. Models in the NEWT authors' operators (`Operators::Nws`) filter the same noise
//! stream with their own operator ([`NwsNoise`], `nws_noise.rs`) instead.

use newt_model::WhiteNoise;
use realfft::num_complex::Complex;

use crate::kernels;
use crate::noise_filter::NOISE_TAPS;
use crate::nws_noise::NwsNoise;
use crate::prepared::PreparedModel;

/// The noise branch's state: the noise stream, the filter's working buffers and the
/// overlap-add tail carried into the next frames.
pub(crate) struct NoiseBranch {
    hop: usize,
    noise: WhiteNoise,
    /// Seed of `noise`: a reset restarts its stream, so a reset voice is a new one.
    seed: u64,
    /// This frame's white noise, `hop` samples, between the zeros that
    /// [`kernels::convolve_add`] reads around it.
    white: Vec<f32>,
    /// Overlap-add accumulator `[hop + NOISE_TAPS]`: the current frame, then the tail.
    ola: Vec<f32>,
    spec: Vec<Complex<f32>>,
    time: Vec<f32>,
    fft_scratch: Vec<Complex<f32>>,
    /// This frame's filter taps.
    filter: Vec<f32>,
    /// The authors' noise operator (`Operators::Nws` models).
    nws: Option<NwsNoise>,
}

impl NoiseBranch {
    /// Allocates everything the branch needs for `model`, with the noise stream `seed`.
    pub(crate) fn new(model: &PreparedModel, seed: u64) -> Self {
        let hop = model.meta.hop;
        let (spec, time, fft_scratch) = model.noise_filter_plan.buffers();
        Self {
            hop,
            noise: WhiteNoise::new(seed),
            seed,
            white: vec![0.0; hop + 3 * kernels::CONVOLVE_PAD],
            ola: vec![0.0; hop + NOISE_TAPS],
            spec,
            time,
            fft_scratch,
            filter: vec![0.0; NOISE_TAPS],
            nws: model.nws_noise.as_ref().map(|p| NwsNoise::new(p, hop)),
        }
    }

    /// Silence: no tail, the noise stream from its start.
    pub(crate) fn reset(&mut self) {
        self.ola.fill(0.0);
        self.noise = WhiteNoise::new(self.seed);
        if let Some(op) = &mut self.nws {
            op.reset();
        }
    }

    /// One frame of the branch from its 129 `magnitudes` into `out` (`hop` samples,
    /// overwritten): the frame's white noise convolved (linearly) with the frame's filter,
    /// plus the tails of the frames before.
    #[inline(never)]
    pub(crate) fn render_frame(
        &mut self,
        model: &PreparedModel,
        magnitudes: &[f32],
        out: &mut [f32],
    ) {
        model.noise_filter_plan.filter(
            magnitudes,
            &mut self.spec,
            &mut self.time,
            &mut self.fft_scratch,
            &mut self.filter,
        );
        let hop = self.hop;
        if let (Some(op), Some(plan)) = (&mut self.nws, &model.nws_noise) {
            // The authors' noise: uniform [0, 1), from the same stream as ours.
            let noise = &mut self.noise;
            op.next_frame(
                plan,
                &self.filter,
                || 0.5 * (noise.sample() + 1.0),
                &mut out[..hop],
            );
            return;
        }
        let pad = kernels::CONVOLVE_PAD;
        self.noise.fill(&mut self.white[pad..pad + hop]);
        kernels::convolve_add(&self.filter, &self.white, &mut self.ola);
        out[..hop].copy_from_slice(&self.ola[..hop]);
        self.ola.copy_within(hop.., 0);
        let tail = self.ola.len() - hop;
        self.ola[tail..].fill(0.0);
    }
}
