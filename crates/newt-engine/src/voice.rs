//! One streaming NEWT voice at the model rate: the frame-rate networks, then per sample the
//! harmonic exciter, FiLM, the 64 shapers, the output mixer and the filtered noise.
//! All state (phase, GRU, previous FiLM parameters, noise overlap) is kept across frames.

use std::sync::Arc;

use newt_model::{ModelMeta, NOISE_BANDS, NewtModel, NewtWeights, Operators, WhiteNoise};
use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner};

use crate::controls::FrameControls;
use crate::error::EngineError;
use crate::kernels::{self, ShaperCoefs};
use crate::nets::{ControlNet, Dense, GruNet, GruScratch, MlpScratch};
use crate::nws_noise::{NwsNoise, NwsNoisePlan};
use crate::shaper::{ShaperPath, ShaperTables, TableSpec};

/// Noise filter length in taps: the inverse real DFT of the 129 magnitudes.
pub const NOISE_TAPS: usize = 2 * (NOISE_BANDS - 1);

/// Per-block sound-shaping settings of the voices.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VoiceParams {
    pub shaper: ShaperPath,
    /// Affine transforms of the shaper inputs and outputs (the paper's "simple affine
    /// transformations" that make NEWT playable): `u' = in_gain u + in_offset`,
    /// `s' = out_gain s`.
    pub shaper_in_gain: f32,
    pub shaper_in_offset: f32,
    pub shaper_out_gain: f32,
    /// Linear gains of the harmonic (waveshaper) and noise branches.
    pub harmonic_gain: f32,
    pub noise_gain: f32,
}

impl Default for VoiceParams {
    fn default() -> Self {
        Self {
            shaper: ShaperPath::Table,
            shaper_in_gain: 1.0,
            shaper_in_offset: 0.0,
            shaper_out_gain: 1.0,
            harmonic_gain: 1.0,
            noise_gain: 1.0,
        }
    }
}

/// A model made ready for the audio thread: FastNEWT tables built, the mixer folded with
/// the fixed harmonic phases, FFT plans made. Built off the audio thread.
pub struct PreparedModel {
    pub meta: ModelMeta,
    pub weights: NewtWeights,
    /// `(cos theta_k, sin theta_k)` of the fixed harmonic phases, so that
    /// `sin(k phi + theta_k) = sin(k phi) cos theta_k + cos(k phi) sin theta_k`.
    phase_cos_sin: Vec<(f32, f32)>,
    tables: ShaperTables,
    gru: GruNet,
    proj: Dense,
    film: ControlNet,
    noise: ControlNet,
    /// Full reverb response at the model rate, tap 0 (= 0) included.
    pub(crate) reverb_ir: Vec<f32>,
    noise_ifft: Arc<dyn ComplexToReal<f32>>,
    /// Periodic Hann window of the noise filter.
    noise_window: Vec<f32>,
    /// The authors' noise operator's plans, for `Operators::Nws` models.
    nws_noise: Option<NwsNoisePlan>,
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
        let noise_ifft = RealFftPlanner::new().plan_fft_inverse(NOISE_TAPS);
        let noise_window = (0..NOISE_TAPS)
            .map(|j| 0.5 - 0.5 * (std::f32::consts::TAU * j as f32 / NOISE_TAPS as f32).cos())
            .collect();
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
            noise_ifft,
            noise_window,
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
        for (s, &m) in spec.iter_mut().zip(magnitudes) {
            *s = Complex::new(m, 0.0);
        }
        if self
            .noise_ifft
            .process_with_scratch(spec, time, scratch)
            .is_err()
        {
            // Sizes are fixed at construction; a failure would leave the filter silent.
            time.fill(0.0);
        }
        let half = NOISE_TAPS / 2;
        let scale = 1.0 / NOISE_TAPS as f32;
        for j in 0..NOISE_TAPS {
            filter[j] = time[(j + half) % NOISE_TAPS] * scale * self.noise_window[j];
        }
    }

    /// Working buffers for [`noise_filter`](Self::noise_filter): spectrum, time, scratch.
    pub fn noise_filter_buffers(&self) -> (Vec<Complex<f32>>, Vec<f32>, Vec<Complex<f32>>) {
        (
            vec![Complex::default(); NOISE_BANDS],
            vec![0.0; NOISE_TAPS],
            vec![Complex::default(); self.noise_ifft.get_scratch_len()],
        )
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

/// Most frames a voice renders in one call: the networks run on all of them at once,
/// reading each weight once per batch instead of once per frame.
pub const MAX_BATCH: usize = 8;

/// The state of one voice. `Voice::new` allocates everything; `render_frames` never does.
pub struct Voice {
    hop: usize,
    sample_rate: f32,
    /// Phase of the fundamental in cycles, wrapped to [0, 1); f64 so that it never drifts.
    phase: f64,
    /// True once `set_phase` placed the oscillator (a voice taking over a note).
    phase_set: bool,
    f0_prev: f32,
    started: bool,
    /// Where within a frame's samples the new frame's value is reached: sample `i` ramps
    /// by `(i + lead) / hop`; 1 for our operators (causal), 0.5 for the authors' (frame
    /// values at the centre between two of our frame boundaries).
    lead: f64,
    /// The authors' models never saw 0 Hz (CREPE always gives a pitch): for them a frame
    /// without a pitch holds the last one (`f0_hold`, the model's mean f0 at first).
    hold_f0: bool,
    f0_hold: f32,
    f0_mean_hz: f32,
    /// GRU hidden state, carried across frames.
    h: Vec<f32>,
    gru_scratch: GruScratch,
    /// GRU outputs of the batch `[MAX_BATCH][hidden]`, then the embeddings z.
    hs: Vec<f32>,
    z: Vec<f32>,
    mlp_scratch: MlpScratch,
    /// FiLM parameters `[1 + MAX_BATCH][4 n_shapers]`; row 0 holds the frame before the batch.
    film: Vec<f32>,
    noise_mag: Vec<f32>,
    /// `(i + lead) / hop`: the linear ramp from the previous frame's values.
    ramp: Vec<f32>,
    sin1: Vec<f32>,
    cos1: Vec<f32>,
    /// Harmonics `[n_harmonics][hop]`: row k = sin((k+1) phi + theta_k), zero where the
    /// harmonic is above Nyquist.
    harm: Vec<f32>,
    rot_s: Vec<f32>,
    rot_c: Vec<f32>,
    harmonics_on: Vec<u16>,
    /// Shaper inputs `[MAX_BATCH][n_shapers][hop]`.
    x: Vec<f32>,
    /// Waveshaper branch output `[MAX_BATCH][hop]`.
    y: Vec<f32>,
    noise: WhiteNoise,
    /// Seed of `noise`: a reset restarts its stream, so a reset voice is a new one.
    noise_seed: u64,
    noise_in: Vec<f32>,
    noise_ola: Vec<f32>,
    noise_spec: Vec<Complex<f32>>,
    noise_filter: Vec<f32>,
    noise_time: Vec<f32>,
    fft_scratch: Vec<Complex<f32>>,
    /// The authors' noise operator (`Operators::Nws` models) and its output frame.
    nws_noise: Option<NwsNoise>,
    nws_out: Vec<f32>,
    /// Range `[lo, hi]` of each shaper's input (after the FiLM and the affine knobs) over
    /// the last frame rendered: what an editor draws over the transfer curves.
    input_range: Vec<[f32; 2]>,
}

impl std::fmt::Debug for Voice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Voice")
            .field("phase", &self.phase)
            .field("f0_prev", &self.f0_prev)
            .finish_non_exhaustive()
    }
}

impl Voice {
    pub fn new(model: &PreparedModel, noise_seed: u64) -> Self {
        let m = &model.meta;
        let (hop, nh, ns) = (m.hop, m.n_harmonics, m.n_shapers);
        let w = &model.weights;
        let lead = match m.operators {
            Operators::Newt => 1.0,
            Operators::Nws => 0.5,
        };
        Self {
            hop,
            sample_rate: m.sample_rate as f32,
            phase: 0.0,
            phase_set: false,
            f0_prev: 0.0,
            started: false,
            lead,
            hold_f0: m.operators == Operators::Nws,
            f0_hold: m.f0_mean_hz,
            f0_mean_hz: m.f0_mean_hz,
            h: vec![0.0; w.gru.hidden],
            gru_scratch: model.gru.scratch(),
            hs: vec![0.0; MAX_BATCH * w.gru.hidden],
            z: vec![0.0; MAX_BATCH * w.proj.out_dim],
            mlp_scratch: model.film.scratch(MAX_BATCH),
            film: vec![0.0; (MAX_BATCH + 1) * 4 * ns],
            noise_mag: vec![0.0; MAX_BATCH * NOISE_BANDS],
            ramp: (0..hop)
                .map(|i| (i as f32 + lead as f32) / hop as f32)
                .collect(),
            sin1: vec![0.0; hop],
            cos1: vec![0.0; hop],
            harm: vec![0.0; nh * hop],
            rot_s: vec![0.0; hop],
            rot_c: vec![0.0; hop],
            harmonics_on: vec![0; hop],
            x: vec![0.0; MAX_BATCH * ns * hop],
            y: vec![0.0; MAX_BATCH * hop],
            noise: WhiteNoise::new(noise_seed),
            noise_seed,
            noise_in: vec![0.0; hop],
            noise_ola: vec![0.0; hop + NOISE_TAPS],
            noise_spec: vec![Complex::default(); NOISE_BANDS],
            noise_filter: vec![0.0; NOISE_TAPS],
            noise_time: vec![0.0; NOISE_TAPS],
            fft_scratch: vec![Complex::default(); model.noise_ifft.get_scratch_len()],
            nws_noise: model.nws_noise.as_ref().map(|p| NwsNoise::new(p, hop)),
            nws_out: vec![0.0; hop],
            input_range: vec![[0.0; 2]; ns],
        }
    }

    /// Range `[lo, hi]` of each shaper's input over the last frame rendered.
    pub fn shaper_input_range(&self) -> &[[f32; 2]] {
        &self.input_range
    }

    /// Back to the initial state (silence, phase 0, GRU state 0), keeping the noise stream.
    /// Oscillator phase of the fundamental at the end of the last frame, in cycles.
    pub fn phase(&self) -> f64 {
        self.phase
    }

    /// The fundamental of the last frame rendered, in Hz (0 before the first).
    pub fn last_f0_hz(&self) -> f32 {
        self.f0_prev
    }

    /// Starts the oscillator at `phase` (cycles): a voice taking over another's note.
    pub fn set_phase(&mut self, phase: f64) {
        self.phase = phase.rem_euclid(1.0);
        self.phase_set = true;
    }

    pub fn reset(&mut self) {
        self.phase = 0.0;
        self.phase_set = false;
        self.f0_prev = 0.0;
        self.f0_hold = self.f0_mean_hz;
        self.started = false;
        self.h.fill(0.0);
        self.noise_ola.fill(0.0);
        self.noise = WhiteNoise::new(self.noise_seed);
        if let Some(op) = &mut self.nws_noise {
            op.reset();
        }
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
        let (hop, n) = (self.hop, controls.len());
        assert!(
            n <= MAX_BATCH && out.len() >= n * hop,
            "batch larger than MAX_BATCH"
        );
        let w = &model.weights;
        let ns = model.meta.n_shapers;
        let hidden = w.gru.hidden;
        let mut held = [FrameControls::SILENT; MAX_BATCH];
        let controls = if self.hold_f0 {
            for (h, c) in held.iter_mut().zip(controls) {
                if c.f0_hz > 0.0 && c.f0_hz.is_finite() {
                    self.f0_hold = c.f0_hz;
                }
                *h = FrameControls {
                    f0_hz: self.f0_hold,
                    ..*c
                };
            }
            &held[..n]
        } else {
            controls
        };

        // Frame rate: the GRU in sequence, then projection, FiLM and noise nets batched.
        for (j, &c) in controls.iter().enumerate() {
            let input = model.network_input(c);
            model.gru.step(&input, &mut self.h, &mut self.gru_scratch);
            self.hs[j * hidden..(j + 1) * hidden].copy_from_slice(&self.h);
        }
        model.proj.forward(&self.hs, n, &mut self.z);
        let film_width = 4 * ns;
        // Keep the last frame of the previous batch as row 0.
        self.film
            .copy_within(MAX_BATCH * film_width..(MAX_BATCH + 1) * film_width, 0);
        let z = &self.z[..n * w.proj.out_dim];
        model
            .film
            .forward(z, n, &mut self.film[film_width..], &mut self.mlp_scratch);
        model
            .noise
            .forward(z, n, &mut self.noise_mag, &mut self.mlp_scratch);
        if !self.started {
            self.film.copy_within(film_width..2 * film_width, 0);
            self.f0_prev = model.frame_controls(controls[0]).f0_hz;
            if self.lead != 1.0 && !self.phase_set {
                // The authors' clip starts half a hop into our first frame (their first
                // half hop holds frame 0's value too): start the phase there at 0.
                let early = (1.0 - self.lead) * hop as f64;
                self.phase =
                    (-early * self.f0_prev as f64 / self.sample_rate as f64).rem_euclid(1.0);
            }
            self.started = true;
        }

        // Audio rate: the exciter in sequence (its phase runs on), then the shapers
        // channel by channel across the batch, then the noise in sequence.
        for (j, &c) in controls.iter().enumerate() {
            let f0 = model.frame_controls(c).f0_hz;
            self.exciter(model, f0, j);
            self.f0_prev = f0;
        }
        self.shape(model, params, n);
        let (hg, ng) = (params.harmonic_gain, params.noise_gain);
        for j in 0..n {
            self.filtered_noise(model, j);
            let frame = &mut out[j * hop..(j + 1) * hop];
            if let (Some(op), Some(plan)) = (&mut self.nws_noise, &model.nws_noise) {
                // The authors' noise: uniform [0, 1), from the same stream as ours.
                let noise = &mut self.noise;
                op.next_frame(
                    plan,
                    &self.noise_filter,
                    || 0.5 * (noise.sample() + 1.0),
                    &mut self.nws_out,
                );
                for ((o, y), nz) in frame.iter_mut().zip(&self.y[j * hop..]).zip(&self.nws_out) {
                    *o += hg * y + ng * nz;
                }
                continue;
            }
            for ((o, y), nz) in frame
                .iter_mut()
                .zip(&self.y[j * hop..])
                .zip(&self.noise_ola)
            {
                *o += hg * y + ng * nz;
            }
            self.noise_ola.copy_within(hop.., 0);
            let tail = self.noise_ola.len() - hop;
            self.noise_ola[tail..].fill(0.0);
        }
        // The last FiLM row becomes the next batch's row 0.
        self.film
            .copy_within(n * film_width..(n + 1) * film_width, MAX_BATCH * film_width);
    }

    /// Phase accumulation and the harmonic exciter mixed to the shaper inputs `x`.
    #[inline(never)]
    fn exciter(&mut self, model: &PreparedModel, f0_cur: f32, frame: usize) {
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
        let ns = model.meta.n_shapers;
        let x = &mut self.x[frame * ns * hop..(frame + 1) * ns * hop];
        kernels::mix_harmonics(&mixer.weight, nh, &mixer.bias, &self.harm, kmax, hop, x);
    }

    /// FiLM (ramped across each frame), the shapers, and the output mixer into `y`, for
    /// `n` frames, channel by channel so that each table is fetched once per batch.
    #[inline(never)]
    fn shape(&mut self, model: &PreparedModel, p: &VoiceParams, n: usize) {
        let hop = self.hop;
        let ns = model.meta.n_shapers;
        let mix = &model.weights.output_mixer;
        let spec = model.tables.spec();
        // Table positions per unit of shaper input, and the input at position 0.
        let (inv, lo) = match p.shaper {
            ShaperPath::Table => ((spec.size - 1) as f32 / (spec.hi - spec.lo), spec.lo),
            ShaperPath::Mlp => (1.0, 0.0),
        };
        let (g, o, og) = (p.shaper_in_gain, p.shaper_in_offset, p.shaper_out_gain);
        let fw = 4 * ns;
        for j in 0..n {
            let (prev, cur) = (
                &self.film[j * fw..(j + 1) * fw],
                &self.film[(j + 1) * fw..(j + 2) * fw],
            );
            // The beta_out terms do not depend on the shapers: summed once.
            let (mut k0, mut dk) = (mix.bias[0], 0.0f32);
            for c in 0..ns {
                let w = mix.weight[c];
                k0 += w * prev[3 * ns + c];
                dk += w * (cur[3 * ns + c] - prev[3 * ns + c]);
            }
            for (y, r) in self.y[j * hop..(j + 1) * hop].iter_mut().zip(&self.ramp) {
                *y = k0 + dk * r;
            }
        }
        for c in 0..ns {
            let w = mix.weight[c];
            for j in 0..n {
                let (prev, cur) = (
                    &self.film[j * fw..(j + 1) * fw],
                    &self.film[(j + 1) * fw..(j + 2) * fw],
                );
                let (ai, bi, ao) = (prev[c], prev[ns + c], prev[2 * ns + c]);
                let (dai, dbi, dao) = (cur[c] - ai, cur[ns + c] - bi, cur[2 * ns + c] - ao);
                let k = ShaperCoefs {
                    a: inv * g * ai,
                    da: inv * g * dai,
                    b: inv * (g * bi + o - lo),
                    db: inv * g * dbi,
                    c: w * og * ao,
                    dc: w * og * dao,
                };
                let x = &self.x[(j * ns + c) * hop..(j * ns + c + 1) * hop];
                if j + 1 == n {
                    self.input_range[c] = input_range(x, g * ai, g * bi + o, g * dai, g * dbi);
                }
                let y = &mut self.y[j * hop..(j + 1) * hop];
                match p.shaper {
                    ShaperPath::Table => {
                        kernels::shape_table(k, x, &self.ramp, model.tables.segments(c), y)
                    }
                    ShaperPath::Mlp => {
                        for ((y, &xi), &r) in y.iter_mut().zip(x).zip(&self.ramp) {
                            let u = (k.a + k.da * r) * xi + (k.b + k.db * r);
                            *y += (k.c + k.dc * r) * model.weights.shapers.eval(c, u);
                        }
                    }
                }
            }
        }
    }

    /// The filtered-noise branch: the frame's 129 magnitudes become a centred,
    /// Hann-windowed 256-tap filter (inverse real DFT, `1/N` scaled like torch.fft.irfft),
    /// applied to this frame's white noise and overlap-added (linear, not circular).
    #[inline(never)]
    fn filtered_noise(&mut self, model: &PreparedModel, frame: usize) {
        let mags = &self.noise_mag[frame * NOISE_BANDS..(frame + 1) * NOISE_BANDS];
        model.noise_filter(
            mags,
            &mut self.noise_spec,
            &mut self.noise_time,
            &mut self.fft_scratch,
            &mut self.noise_filter,
        );
        if self.nws_noise.is_some() {
            return; // the authors' operator applies the filter (`render_frames`)
        }
        self.noise.fill(&mut self.noise_in);
        kernels::convolve_add(
            &self.noise_filter,
            &self.noise_in,
            &mut self.noise_ola[..self.hop + NOISE_TAPS - 1],
        );
    }
}

/// Range of `u = (a + da r) x + (b + db r)` over a frame (`r` in [0, 1]): bilinear in
/// `x` and `r`, so its extremes lie at the corners of `[min x, max x] x [0, 1]`.
fn input_range(x: &[f32], a: f32, b: f32, da: f32, db: f32) -> [f32; 2] {
    let (lo, hi) = x
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    if !(lo.is_finite() && hi.is_finite()) {
        return [0.0; 2];
    }
    let corners = [
        a * lo + b,
        a * hi + b,
        (a + da) * lo + b + db,
        (a + da) * hi + b + db,
    ];
    [
        corners.iter().copied().fold(f32::INFINITY, f32::min),
        corners.iter().copied().fold(f32::NEG_INFINITY, f32::max),
    ]
}
