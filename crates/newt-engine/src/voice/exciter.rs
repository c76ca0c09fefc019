//! The harmonic exciter of one voice: the phase accumulator of the fundamental (phase in
//! cycles, f64) driven by f0 in Hz, ramped linearly across each frame, and its harmonics
//! `sin(k phi + theta_k)` (k = 1..=n_harmonics, the model's fixed phases theta_k, silent
//! at and above Nyquist), mixed by the harmonic mixer into the shaper inputs
//! (dimensionless, `[n_shapers][hop]` a frame, at the model rate).

use crate::kernels;
use crate::prepared::PreparedModel;

/// Oscillator state (phase, the f0 the next frame ramps from) and working buffers.
pub(crate) struct Exciter {
    hop: usize,
    /// Model sample rate in Hz.
    sample_rate: f32,
    /// Where within a frame the new frame's f0 is reached (`voice::frame_value_lead`).
    lead: f64,
    /// Phase of the fundamental in cycles, wrapped to [0, 1); f64 so that it never drifts.
    phase: f64,
    /// True once `set_phase` placed the oscillator (a voice taking over a note).
    phase_set: bool,
    /// f0 of the last frame rendered, in Hz: the start of the next frame's ramp.
    f0_prev: f32,
    /// sin and cos of the fundamental's phase at each sample of the frame.
    sin1: Vec<f32>,
    cos1: Vec<f32>,
    /// Harmonics `[n_harmonics][hop]`: row k = sin((k+1) phi + theta_k), zero where the
    /// harmonic is above Nyquist.
    harm: Vec<f32>,
    /// sin and cos of `(k+1) phi` while the harmonics are built by rotation.
    rot_s: Vec<f32>,
    rot_c: Vec<f32>,
    /// Number of harmonics below Nyquist at each sample.
    harmonics_on: Vec<u16>,
}

impl Exciter {
    /// At rest: phase 0, f0 0 Hz. Allocates its buffers for `model`.
    pub(crate) fn new(model: &PreparedModel, lead: f64) -> Self {
        let m = &model.meta;
        let hop = m.hop;
        Self {
            hop,
            sample_rate: m.sample_rate as f32,
            lead,
            phase: 0.0,
            phase_set: false,
            f0_prev: 0.0,
            sin1: vec![0.0; hop],
            cos1: vec![0.0; hop],
            harm: vec![0.0; m.n_harmonics * hop],
            rot_s: vec![0.0; hop],
            rot_c: vec![0.0; hop],
            harmonics_on: vec![0; hop],
        }
    }

    /// Phase of the fundamental at the end of the last frame, in cycles.
    pub(crate) fn phase(&self) -> f64 {
        self.phase
    }

    /// f0 of the last frame rendered, in Hz (0 before the first).
    pub(crate) fn f0_hz(&self) -> f32 {
        self.f0_prev
    }

    /// Starts the oscillator at `phase` (cycles).
    pub(crate) fn set_phase(&mut self, phase: f64) {
        self.phase = phase.rem_euclid(1.0);
        self.phase_set = true;
    }

    pub(crate) fn reset(&mut self) {
        self.phase = 0.0;
        self.phase_set = false;
        self.f0_prev = 0.0;
    }

    /// Before the first frame after a reset: no ramp into the first frame (it starts at
    /// its own `f0_hz`), and where frame values sit mid-frame (`lead` < 1, the authors'
    /// operators) the phase starts at 0 at their clip's start, unless `set_phase` placed it.
    pub(crate) fn start(&mut self, f0_hz: f32) {
        self.f0_prev = f0_hz;
        if self.lead != 1.0 && !self.phase_set {
            // The authors' clip starts half a hop into our first frame (their first
            // half hop holds frame 0's value too): start the phase there at 0.
            let early = (1.0 - self.lead) * self.hop as f64;
            self.phase = (-early * self.f0_prev as f64 / self.sample_rate as f64).rem_euclid(1.0);
        }
    }

    /// One frame: the phase runs on with f0 ramping to `f0_cur` (Hz), and the harmonics,
    /// mixed, are written to `shaper_inputs` (`[n_shapers][hop]`).
    #[inline(never)]
    pub(crate) fn render_frame(
        &mut self,
        model: &PreparedModel,
        f0_cur: f32,
        shaper_inputs: &mut [f32],
    ) {
        let hop = self.hop;
        let nh = model.meta.n_harmonics;
        let sr = self.sample_rate as f64;
        let nyquist = 0.5 * self.sample_rate;
        // f0 ramps linearly from the previous frame's value: f_i = f_prev + df (i + lead) / hop.
        // The phase phi_i = phi_{i-1} + 2 pi f_i / sr (cumsum inclusive of sample i) is
        // advanced by complex rotation in f64, re-anchored to the f64 phase every frame.
        let f_prev = self.f0_prev as f64;
        let df = (f0_cur - self.f0_prev) as f64 / hop as f64;
        let tau = std::f64::consts::TAU;
        let (mut s, mut c) = (tau * self.phase).sin_cos();
        let lead = self.lead;
        let (mut ws, mut wc) = (tau * (f_prev + df * lead) / sr).sin_cos(); // step of sample 0
        let (ds, dc) = (tau * df / sr).sin_cos(); // the step's own change per sample
        let mut kmax = 0usize;
        for i in 0..hop {
            (s, c) = (s * wc + c * ws, c * wc - s * ws);
            (ws, wc) = (ws * dc + wc * ds, wc * dc - ws * ds);
            self.sin1[i] = s as f32;
            self.cos1[i] = c as f32;
            let f = (f_prev + df * (i as f64 + lead)) as f32;
            // Harmonic k (1-based) sounds while k f0 < sr / 2.
            let k = if f <= 0.0 {
                nh
            } else {
                (((nyquist / f).ceil() as usize).saturating_sub(1)).min(nh)
            };
            self.harmonics_on[i] = k as u16;
            kmax = kmax.max(k);
        }
        // sum over i of (f_prev + df (i + lead)) / sr
        let cycles = hop as f64 * (f_prev + df * (0.5 * (hop - 1) as f64 + lead)) / sr;
        self.phase = (self.phase + cycles).rem_euclid(1.0);
        self.f0_prev = f0_cur;

        // sin((k+1) phi + theta_k) by rotation, masked above Nyquist.
        self.rot_s.copy_from_slice(&self.sin1);
        self.rot_c.copy_from_slice(&self.cos1);
        let kmin = self.harmonics_on.iter().copied().min().unwrap_or(0) as usize;
        for k in 0..kmax {
            let (ct, st) = model.phase_cos_sin[k];
            let row = &mut self.harm[k * hop..(k + 1) * hop];
            for i in 0..hop {
                let (sk, ck) = (self.rot_s[i], self.rot_c[i]);
                row[i] = sk * ct + ck * st;
                self.rot_s[i] = sk * self.cos1[i] + ck * self.sin1[i];
                self.rot_c[i] = ck * self.cos1[i] - sk * self.sin1[i];
            }
            if k >= kmin {
                for (v, &on) in row.iter_mut().zip(&self.harmonics_on) {
                    if k as u16 >= on {
                        *v = 0.0;
                    }
                }
            }
        }
        let mixer = &model.weights.harmonic_mixer;
        kernels::mix_harmonics(
            &mixer.weight,
            nh,
            &mixer.bias,
            &self.harm,
            kmax,
            hop,
            shaper_inputs,
        );
    }
}
