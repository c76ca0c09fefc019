//! The NEWT authors' filtered-noise operator, for models that ask for it
//! (`Operators::Nws`): `FIRNoiseSynth` of `neural-waveshaping-synthesis` @ `cb7aaea`.
//!
//! The authors draw uniform [0, 1) noise (a DC part included), cut it into 256-sample
//! frames at hop 128 (`torch.stft` with a rectangular window, `center=True`: frame `t`
//! holds noise samples `[128 t - 128, 128 t + 128)`, reflected at the start), multiply
//! each frame's spectrum by that of the frame's 256-tap filter (a circular convolution),
//! and overlap-add the frames at `[128 t, 128 t + 256)`, halved where two overlap
//! (`istft`'s window normalisation: only the first 128 samples of the stream are covered
//! by one frame). Our own operator (`voice.rs`) convolves linearly and uses zero-mean noise.
//!
//! Timing: a voice renders frame `t` as the model-rate samples that the authors' code puts
//! at `[128 t - 64, 128 t + 64)` (the centred control interpolation, `voice.rs`), so frame
//! `t`'s noise starts half a hop into the frame being rendered.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

/// FFT plans of the operator, shared by every voice of a model.
#[derive(Clone)]
pub struct NwsNoisePlan {
    fft: Arc<dyn RealToComplex<f32>>,
    ifft: Arc<dyn ComplexToReal<f32>>,
    taps: usize,
}

impl std::fmt::Debug for NwsNoisePlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NwsNoisePlan")
            .field("taps", &self.taps)
            .finish()
    }
}

impl NwsNoisePlan {
    /// Plans for frames (and filters) of `taps` samples (256 in the published models).
    pub fn new(taps: usize) -> Self {
        let mut planner = RealFftPlanner::new();
        Self {
            fft: planner.plan_fft_forward(taps),
            ifft: planner.plan_fft_inverse(taps),
            taps,
        }
    }
}

/// The streaming state of the operator for one voice: the noise frame, the overlap-add
/// buffer and FFT scratch. Everything is allocated in [`NwsNoise::new`].
#[derive(Debug)]
pub struct NwsNoise {
    hop: usize,
    /// The current 256-sample noise frame.
    frame: Vec<f32>,
    /// The sample drawn ahead at the start (the reflection needs `noise[hop]`).
    carried: Option<f32>,
    started: bool,
    /// Overlap-add buffer; index 0 is the first sample of the frame being rendered.
    ola: Vec<f32>,
    time: Vec<f32>,
    spec: Vec<Complex<f32>>,
    filter_spec: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
}

impl NwsNoise {
    pub fn new(plan: &NwsNoisePlan, hop: usize) -> Self {
        let taps = plan.taps;
        let scratch = plan.fft.get_scratch_len().max(plan.ifft.get_scratch_len());
        Self {
            hop,
            frame: vec![0.0; taps],
            carried: None,
            started: false,
            ola: vec![0.0; hop / 2 + taps + hop],
            time: vec![0.0; taps],
            spec: vec![Complex::default(); taps / 2 + 1],
            filter_spec: vec![Complex::default(); taps / 2 + 1],
            scratch: vec![Complex::default(); scratch],
        }
    }

    /// Back to the start of a stream: the next frame reflects its noise like `torch.stft`.
    pub fn reset(&mut self) {
        self.started = false;
        self.carried = None;
        self.ola.fill(0.0);
        self.frame.fill(0.0);
    }

    /// Renders one frame: `filter` (`taps` long) applied to the next noise frame pulled
    /// from `draw` (uniform [0, 1) samples, in order), and the frame's `hop` output
    /// samples written to `out`.
    pub fn next_frame(
        &mut self,
        plan: &NwsNoisePlan,
        filter: &[f32],
        mut draw: impl FnMut() -> f32,
        out: &mut [f32],
    ) {
        let (hop, taps) = (self.hop, plan.taps);
        let half = taps - hop;
        if !self.started {
            // torch.stft(center=True) pads with the reflection noise[hop], ..., noise[1].
            for v in &mut self.frame[half..] {
                *v = draw();
            }
            let ahead = draw();
            self.carried = Some(ahead);
            for k in 0..half {
                self.frame[k] = if k == 0 {
                    ahead
                } else {
                    self.frame[half + hop - k]
                };
            }
        } else {
            self.frame.copy_within(hop.., 0);
            let mut fresh = half;
            if let Some(v) = self.carried.take() {
                self.frame[half] = v;
                fresh += 1;
            }
            for v in &mut self.frame[fresh..] {
                *v = draw();
            }
        }

        // Circular convolution of the frame with the filter, through their spectra.
        self.time.copy_from_slice(&self.frame);
        let ok = plan
            .fft
            .process_with_scratch(&mut self.time, &mut self.spec, &mut self.scratch)
            .is_ok();
        self.time.copy_from_slice(&filter[..taps]);
        let ok = ok
            && plan
                .fft
                .process_with_scratch(&mut self.time, &mut self.filter_spec, &mut self.scratch)
                .is_ok();
        for (s, h) in self.spec.iter_mut().zip(&self.filter_spec) {
            *s *= h;
        }
        let last = self.spec.len() - 1;
        self.spec[0].im = 0.0;
        self.spec[last].im = 0.0;
        let ok = ok
            && plan
                .ifft
                .process_with_scratch(&mut self.spec, &mut self.time, &mut self.scratch)
                .is_ok();
        if !ok {
            // Sizes are fixed at construction, so this cannot happen; stay silent if it did.
            self.time.fill(0.0);
        }

        // Overlap-add half a hop into this frame; halved where two frames overlap, which
        // is everywhere but the first `hop` samples of the stream.
        let offset = hop / 2;
        let scale = 1.0 / taps as f32;
        for (j, y) in self.time.iter().enumerate() {
            let norm = if !self.started && j < hop { 1.0 } else { 0.5 };
            self.ola[offset + j] += y * scale * norm;
        }
        self.started = true;
        for (o, v) in out.iter_mut().zip(&self.ola[..hop]) {
            *o = *v;
        }
        self.ola.copy_within(hop.., 0);
        let tail = self.ola.len() - hop;
        self.ola[tail..].fill(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unit impulse at tap 0 passes the noise frame through unchanged: the output is
    /// the overlap-added, halved noise stream, delayed by the frame layout.
    #[test]
    fn an_identity_filter_reproduces_the_noise_stream() {
        let (hop, taps) = (128, 256);
        let plan = NwsNoisePlan::new(taps);
        let mut op = NwsNoise::new(&plan, hop);
        let mut filter = vec![0.0f32; taps];
        filter[0] = 1.0;
        let noise: Vec<f32> = (0..4000).map(|i| ((i * 37) % 101) as f32 / 101.0).collect();
        let mut next = 0usize;
        let mut out = vec![0.0f32; 20 * hop];
        for f in 0..20 {
            op.next_frame(
                &plan,
                &filter,
                || {
                    next += 1;
                    noise[next - 1]
                },
                &mut out[f * hop..(f + 1) * hop],
            );
        }
        // Frame t covers noise [128 t - 128, 128 t + 128) and is played at engine samples
        // [128 t + 64, ...): once two frames overlap, each output sample is the average
        // of the same noise sample seen by both, i.e. the noise itself.
        for e in 64 + 2 * hop..19 * hop {
            let torch = e - 64;
            let want = noise[torch - hop];
            assert!((out[e] - want).abs() < 1e-5, "{e}: {} vs {want}", out[e]);
        }
    }
}
