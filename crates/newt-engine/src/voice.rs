//! One streaming NEWT voice at the model rate, composed along the signal path:
//! `FrameNetState` (`voice/frame_nets.rs`: GRU, projection, FiLM and noise nets, once a
//! frame) -> `Exciter` (`voice/exciter.rs`: phase accumulator, harmonics, harmonic mixer)
//! -> `FilmRamp` + `Waveshapers` (`voice/film_ramp.rs`, `voice/waveshapers.rs`: ramped
//! FiLM, 64 shapers, output mixer) and beside them `NoiseBranch` (`voice/noise_branch.rs`:
//! filtered noise, overlap-add); the two branches summed with their gains. All state
//! (phase, GRU, previous FiLM parameters, noise overlap) is kept across frames.

mod exciter;
mod film_ramp;
mod frame_nets;
pub(crate) mod noise_branch;
mod params;
mod waveshapers;

use newt_model::{NOISE_BANDS, Operators};

use self::exciter::Exciter;
use self::film_ramp::FilmRamp;
use self::frame_nets::FrameNetState;
pub(crate) use self::frame_nets::VoiceNetBatch;
use self::noise_branch::NoiseBranch;
use self::waveshapers::Waveshapers;
use crate::controls::FrameControls;

pub use self::params::{MAX_BATCH, VoiceParams};
pub use crate::noise_filter::NOISE_TAPS;
pub use crate::prepared::{FrameNetworks, PreparedModel};

/// Where within a frame's samples the new frame's values (f0, FiLM) are reached: sample
/// `i` ramps by `(i + lead) / hop`; 1 for our operators (causal), 0.5 for the authors'
/// (frame values at the centre between two of our frame boundaries).
fn frame_value_lead(operators: Operators) -> f64 {
    match operators {
        Operators::Newt => 1.0,
        Operators::Nws => 0.5,
    }
}

/// The authors' models never saw 0 Hz (CREPE always gives a pitch): for them a frame
/// without a pitch holds the last one (the model's mean f0 at first).
struct UnvoicedF0Hold {
    enabled: bool,
    /// The f0 an unvoiced frame gets, in Hz.
    f0_hz: f32,
    f0_mean_hz: f32,
}

impl UnvoicedF0Hold {
    fn reset(&mut self) {
        self.f0_hz = self.f0_mean_hz;
    }

    /// `controls` with unvoiced frames given the held f0, in `held` where that applies.
    fn apply<'a>(
        &mut self,
        controls: &'a [FrameControls],
        held: &'a mut [FrameControls; MAX_BATCH],
    ) -> &'a [FrameControls] {
        if !self.enabled {
            return controls;
        }
        for (h, c) in held.iter_mut().zip(controls) {
            if c.f0_hz > 0.0 && c.f0_hz.is_finite() {
                self.f0_hz = c.f0_hz;
            }
            *h = FrameControls {
                f0_hz: self.f0_hz,
                ..*c
            };
        }
        &held[..controls.len()]
    }
}

/// The state of one voice. `Voice::new` allocates everything; `render_frames` never does.
pub struct Voice {
    hop: usize,
    n_shapers: usize,
    /// False until the first frame after construction or a reset.
    started: bool,
    f0_hold: UnvoicedF0Hold,
    /// The prepared batch's controls (`batch_len` frames), unvoiced f0 held.
    batch: [FrameControls; MAX_BATCH],
    batch_len: usize,
    nets: FrameNetState,
    film: FilmRamp,
    exciter: Exciter,
    waveshapers: Waveshapers,
    noise: NoiseBranch,
    /// Noise magnitudes of the batch `[MAX_BATCH][129]`: noise net to noise branch.
    noise_magnitudes: Vec<f32>,
    /// Shaper inputs `[MAX_BATCH][n_shapers][hop]`: exciter to waveshapers.
    shaper_inputs: Vec<f32>,
    /// Harmonic (waveshaper) branch output `[MAX_BATCH][hop]`.
    harmonic_out: Vec<f32>,
    /// Noise branch output `[MAX_BATCH][hop]`.
    noise_out: Vec<f32>,
}

impl std::fmt::Debug for Voice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Voice")
            .field("phase", &self.exciter.phase())
            .field("f0_prev", &self.exciter.f0_hz())
            .finish_non_exhaustive()
    }
}

impl Voice {
    pub fn new(model: &PreparedModel, noise_seed: u64) -> Self {
        let m = &model.meta;
        let (hop, ns) = (m.hop, m.n_shapers);
        let lead = frame_value_lead(m.operators);
        Self {
            hop,
            n_shapers: ns,
            started: false,
            f0_hold: UnvoicedF0Hold {
                enabled: m.operators == Operators::Nws,
                f0_hz: m.f0_mean_hz,
                f0_mean_hz: m.f0_mean_hz,
            },
            batch: [FrameControls::SILENT; MAX_BATCH],
            batch_len: 0,
            nets: FrameNetState::new(model),
            film: FilmRamp::new(ns, hop, lead),
            exciter: Exciter::new(model, lead),
            waveshapers: Waveshapers::new(model),
            noise: NoiseBranch::new(model, noise_seed),
            noise_magnitudes: vec![0.0; MAX_BATCH * NOISE_BANDS],
            shaper_inputs: vec![0.0; MAX_BATCH * ns * hop],
            harmonic_out: vec![0.0; MAX_BATCH * hop],
            noise_out: vec![0.0; MAX_BATCH * hop],
        }
    }

    /// Range `[lo, hi]` of each shaper's input over the last frame rendered (while
    /// measured: see [`measure_input_range`](Self::measure_input_range)).
    pub fn shaper_input_range(&self) -> &[[f32; 2]] {
        self.waveshapers.input_range()
    }

    /// Whether rendering measures [`shaper_input_range`](Self::shaper_input_range) (on
    /// by default; it costs about a tenth of a voice).
    pub fn measure_input_range(&mut self, on: bool) {
        self.waveshapers.measure_input_range = on;
    }

    /// Oscillator phase of the fundamental at the end of the last frame, in cycles.
    pub fn phase(&self) -> f64 {
        self.exciter.phase()
    }

    /// The fundamental of the last frame rendered, in Hz (0 before the first).
    pub fn last_f0_hz(&self) -> f32 {
        self.exciter.f0_hz()
    }

    /// Starts the oscillator at `phase` (cycles): a voice taking over another's note.
    pub fn set_phase(&mut self, phase: f64) {
        self.exciter.set_phase(phase);
    }

    /// Back to the initial state (silence, phase 0, GRU state 0), the noise stream
    /// restarted from its seed.
    pub fn reset(&mut self) {
        self.started = false;
        self.batch_len = 0;
        self.f0_hold.reset();
        self.nets.reset();
        self.exciter.reset();
        self.noise.reset();
    }

    /// Renders `controls.len()` (at most [`MAX_BATCH`]) consecutive frames of `hop`
    /// samples at the model rate and adds them to `out`. The result is the same, bit for
    /// bit, as rendering the frames one call at a time.
    pub fn render_frames(
        &mut self,
        model: &PreparedModel,
        controls: &[FrameControls],
        params: &VoiceParams,
        out: &mut [f32],
    ) {
        self.prepare(controls);
        self.run_own_networks(model);
        self.render_prepared(model, params, params, out);
    }

    /// The frame networks of the prepared batch, this voice alone: the GRU in sequence,
    /// then the projection, FiLM and noise nets batched.
    pub(crate) fn run_own_networks(&mut self, model: &PreparedModel) {
        let n = self.batch_len;
        self.nets.run(
            model,
            &self.batch[..n],
            self.film.batch_rows_mut(),
            &mut self.noise_magnitudes,
        );
    }

    /// The first part of a batch: its controls (at most [`MAX_BATCH`] frames; the
    /// authors' models hold the last f0 through unvoiced frames) kept for the networks and
    /// [`render_prepared`](Self::render_prepared). Returns the number of frames.
    pub(crate) fn prepare(&mut self, controls: &[FrameControls]) -> usize {
        let n = controls.len().min(MAX_BATCH);
        let mut held = [FrameControls::SILENT; MAX_BATCH];
        let controls = self.f0_hold.apply(&controls[..n], &mut held);
        self.batch[..n].copy_from_slice(controls);
        self.batch_len = n;
        n
    }

    /// The prepared batch's controls.
    pub(crate) fn prepared(&self) -> &[FrameControls] {
        &self.batch[..self.batch_len]
    }

    /// The audio of the prepared batch, its networks already run (by
    /// [`render_frames`](Self::render_frames) or, across voices, by
    /// [`frame_nets::VoiceNetBatch`]), added to `out`. The settings move linearly from
    /// `params` at the batch's start to `params_end` at its end, sample by sample (the
    /// branch gains) or frame by frame within the FiLM ramp (the shaper knobs).
    pub(crate) fn render_prepared(
        &mut self,
        model: &PreparedModel,
        params: &VoiceParams,
        params_end: &VoiceParams,
        out: &mut [f32],
    ) {
        let (hop, n) = (self.hop, self.batch_len);
        if n == 0 || out.len() < n * hop {
            return;
        }
        let controls = &self.batch[..n];
        if !self.started {
            self.film.start();
            self.exciter.start(model.frame_controls(controls[0]).f0_hz);
            self.started = true;
        }

        // Audio rate: the exciter in sequence (its phase runs on), then the shapers
        // channel by channel across the batch, then the noise in sequence.
        let frame_inputs = self.n_shapers * hop;
        for (j, &c) in controls.iter().enumerate() {
            let f0 = model.frame_controls(c).f0_hz;
            let x = &mut self.shaper_inputs[j * frame_inputs..(j + 1) * frame_inputs];
            self.exciter.render_frame(model, f0, x);
        }
        self.waveshapers.render(
            model,
            params,
            params_end,
            &self.film,
            &self.shaper_inputs,
            n,
            &mut self.harmonic_out,
        );
        self.film.finish_batch(n);
        for j in 0..n {
            self.noise.render_frame(
                model,
                &self.noise_magnitudes[j * NOISE_BANDS..(j + 1) * NOISE_BANDS],
                &mut self.noise_out[j * hop..(j + 1) * hop],
            );
        }
        self.batch_len = 0;

        // The two branches, each with its gain.
        let (hg, ng) = (params.harmonic_gain, params.noise_gain);
        let (hg_end, ng_end) = (params_end.harmonic_gain, params_end.noise_gain);
        let branches = out[..n * hop]
            .iter_mut()
            .zip(&self.harmonic_out)
            .zip(&self.noise_out);
        if hg == hg_end && ng == ng_end {
            for ((o, y), nz) in branches {
                *o += hg * y + ng * nz;
            }
        } else {
            let step = 1.0 / (n * hop) as f32;
            for (i, ((o, y), nz)) in branches.enumerate() {
                let t = (i + 1) as f32 * step;
                *o += (hg + (hg_end - hg) * t) * y + (ng + (ng_end - ng) * t) * nz;
            }
        }
    }
}
