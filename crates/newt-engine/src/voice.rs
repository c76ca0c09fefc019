//! One streaming NEWT voice at the model rate: the frame-rate networks, then per sample the
//! harmonic exciter, FiLM, the 64 shapers, the output mixer and the filtered noise.
//! All state (phase, GRU, previous FiLM parameters, noise overlap) is kept across frames.

use std::sync::Arc;

use newt_model::{ModelMeta, NOISE_BANDS, NewtModel, NewtWeights, WhiteNoise};
use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner};

use crate::nets::{GruScratch, MlpScratch, control_mlp, gru_step, linear};
use crate::shaper::{ShaperPath, ShaperTables, TableSpec};

/// Noise filter length in taps: the inverse real DFT of the 129 magnitudes.
pub const NOISE_TAPS: usize = 2 * (NOISE_BANDS - 1);

/// Lowest loudness the networks are ever shown, in dB; -inf and NaN map here.
pub const LOUDNESS_FLOOR_DB: f32 = -120.0;
/// Highest loudness accepted, in dB.
pub const LOUDNESS_CEIL_DB: f32 = 20.0;

/// The controls of one frame: the model's inputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrameControls {
    /// Fundamental frequency in Hz.
    pub f0_hz: f32,
    /// A-weighted loudness in dBFS.
    pub loudness_db: f32,
}

impl FrameControls {
    pub const SILENT: Self = Self {
        f0_hz: 0.0,
        loudness_db: LOUDNESS_FLOOR_DB,
    };

    /// Maps any input to a finite, in-range control: NaN and negative f0 become 0 Hz,
    /// f0 is capped at the model's Nyquist frequency (every harmonic is silent beyond),
    /// loudness is clamped to [-120, 20] dB.
    pub fn sanitized(self, nyquist_hz: f32) -> Self {
        let f0 = if self.f0_hz.is_finite() { self.f0_hz.clamp(0.0, nyquist_hz) } else if self.f0_hz == f32::INFINITY { nyquist_hz } else { 0.0 };
        let l = if self.loudness_db.is_nan() { LOUDNESS_FLOOR_DB } else { self.loudness_db.clamp(LOUDNESS_FLOOR_DB, LOUDNESS_CEIL_DB) };
        Self { f0_hz: f0, loudness_db: l }
    }
}

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
    /// `[n_shapers][n_harmonics][2]`: the mixer weight times (cos theta_k, sin theta_k),
    /// so that `sin(k phi + theta_k)` expands to `sin(k phi) cos theta_k + cos(k phi) sin theta_k`.
    mixer_sc: Vec<f32>,
    tables: ShaperTables,
    /// Full reverb response at the model rate, tap 0 (= 0) included.
    pub(crate) reverb_ir: Vec<f32>,
    noise_ifft: Arc<dyn ComplexToReal<f32>>,
    /// Periodic Hann window of the noise filter.
    noise_window: Vec<f32>,
}

impl std::fmt::Debug for PreparedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedModel").field("meta", &self.meta).finish_non_exhaustive()
    }
}

impl PreparedModel {
    pub fn new(model: NewtModel, table: TableSpec) -> Self {
        let NewtModel { meta, weights } = model;
        let (nh, ns) = (meta.n_harmonics, meta.n_shapers);
        let mut mixer_sc = vec![0.0f32; ns * nh * 2];
        for c in 0..ns {
            for k in 0..nh {
                let m = weights.harmonic_mixer.weight[c * nh + k];
                let theta = weights.exciter_phases[k];
                mixer_sc[(c * nh + k) * 2] = m * theta.cos();
                mixer_sc[(c * nh + k) * 2 + 1] = m * theta.sin();
            }
        }
        let tables = ShaperTables::new(&weights.shapers, table);
        let mut reverb_ir = Vec::with_capacity(weights.reverb_ir.len() + 1);
        reverb_ir.push(0.0);
        reverb_ir.extend_from_slice(&weights.reverb_ir);
        let noise_ifft = RealFftPlanner::new().plan_fft_inverse(NOISE_TAPS);
        let noise_window = (0..NOISE_TAPS)
            .map(|j| 0.5 - 0.5 * (std::f32::consts::TAU * j as f32 / NOISE_TAPS as f32).cos())
            .collect();
        Self {
            meta,
            weights,
            mixer_sc,
            tables,
            reverb_ir,
            noise_ifft,
            noise_window,
        }
    }

    pub fn tables(&self) -> &ShaperTables {
        &self.tables
    }
}

/// The state of one voice. `Voice::new` allocates everything; `render_frame` never does.
pub struct Voice {
    hop: usize,
    sample_rate: f32,
    /// Phase of the fundamental in cycles, wrapped to [0, 1); f64 so that it never drifts.
    phase: f64,
    f0_prev: f32,
    started: bool,
    h: Vec<f32>,
    z: Vec<f32>,
    gru_scratch: GruScratch,
    mlp_scratch: MlpScratch,
    film_prev: Vec<f32>,
    film_cur: Vec<f32>,
    noise_mag: Vec<f32>,
    /// `(i + 1) / hop`: the causal linear ramp from the previous frame's values.
    ramp: Vec<f32>,
    f0: Vec<f32>,
    sin1: Vec<f32>,
    cos1: Vec<f32>,
    /// Masked harmonics, row `2k` = sin((k+1) phi), row `2k+1` = cos((k+1) phi).
    harm: Vec<f32>,
    prev_s: Vec<f32>,
    prev_c: Vec<f32>,
    harmonics_on: Vec<u16>,
    /// Shaper inputs `[n_shapers][hop]`.
    x: Vec<f32>,
    y: Vec<f32>,
    noise: WhiteNoise,
    noise_in: Vec<f32>,
    noise_ola: Vec<f32>,
    noise_spec: Vec<Complex<f32>>,
    noise_filter: Vec<f32>,
    noise_time: Vec<f32>,
    fft_scratch: Vec<Complex<f32>>,
}

impl std::fmt::Debug for Voice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Voice").field("phase", &self.phase).field("f0_prev", &self.f0_prev).finish_non_exhaustive()
    }
}

impl Voice {
    pub fn new(model: &PreparedModel, noise_seed: u64) -> Self {
        let m = &model.meta;
        let (hop, nh, ns) = (m.hop, m.n_harmonics, m.n_shapers);
        let w = &model.weights;
        Self {
            hop,
            sample_rate: m.sample_rate as f32,
            phase: 0.0,
            f0_prev: 0.0,
            started: false,
            h: vec![0.0; w.gru.hidden],
            z: vec![0.0; w.proj.out_dim],
            gru_scratch: GruScratch::new(&w.gru),
            mlp_scratch: MlpScratch::new(&w.film),
            film_prev: vec![0.0; 4 * ns],
            film_cur: vec![0.0; 4 * ns],
            noise_mag: vec![0.0; NOISE_BANDS],
            ramp: (0..hop).map(|i| (i + 1) as f32 / hop as f32).collect(),
            f0: vec![0.0; hop],
            sin1: vec![0.0; hop],
            cos1: vec![0.0; hop],
            harm: vec![0.0; 2 * nh * hop],
            prev_s: vec![0.0; hop],
            prev_c: vec![0.0; hop],
            harmonics_on: vec![0; hop],
            x: vec![0.0; ns * hop],
            y: vec![0.0; hop],
            noise: WhiteNoise::new(noise_seed),
            noise_in: vec![0.0; hop],
            noise_ola: vec![0.0; hop + NOISE_TAPS],
            noise_spec: vec![Complex::default(); NOISE_BANDS],
            noise_filter: vec![0.0; NOISE_TAPS],
            noise_time: vec![0.0; NOISE_TAPS],
            fft_scratch: vec![Complex::default(); model.noise_ifft.get_scratch_len()],
        }
    }

    /// Back to the initial state (silence, phase 0, GRU state 0), keeping the noise stream.
    pub fn reset(&mut self) {
        self.phase = 0.0;
        self.f0_prev = 0.0;
        self.started = false;
        self.h.fill(0.0);
        self.noise_ola.fill(0.0);
    }

    /// Renders one frame (`hop` samples at the model rate) and adds it to `out`.
    pub fn render_frame(
        &mut self,
        model: &PreparedModel,
        controls: FrameControls,
        params: &VoiceParams,
        out: &mut [f32],
    ) {
        let hop = self.hop;
        debug_assert_eq!(out.len(), hop);
        let meta = &model.meta;
        let w = &model.weights;
        let nyquist = 0.5 * self.sample_rate;
        let ctl = controls.sanitized(nyquist);

        // Frame rate: control encoder, FiLM and noise nets.
        let input = [
            (ctl.f0_hz - meta.f0_mean_hz) / meta.f0_std_hz,
            (ctl.loudness_db - meta.loudness_mean_db) / meta.loudness_std_db,
        ];
        gru_step(&w.gru, &input, &mut self.h, &mut self.gru_scratch);
        linear(&w.proj, &self.h, &mut self.z);
        std::mem::swap(&mut self.film_prev, &mut self.film_cur);
        control_mlp(&w.film, &self.z, &mut self.film_cur, &mut self.mlp_scratch);
        control_mlp(&w.noise, &self.z, &mut self.noise_mag, &mut self.mlp_scratch);
        if !self.started {
            self.film_prev.copy_from_slice(&self.film_cur);
            self.f0_prev = ctl.f0_hz;
            self.started = true;
        }

        self.exciter(model, ctl.f0_hz);
        self.shape(model, params);
        self.filtered_noise(model);

        let (hg, ng) = (params.harmonic_gain, params.noise_gain);
        for i in 0..hop {
            let v = hg * self.y[i] + ng * self.noise_ola[i];
            out[i] += v;
        }
        self.noise_ola.copy_within(hop.., 0);
        let tail = self.noise_ola.len() - hop;
        self.noise_ola[tail..].fill(0.0);
        self.f0_prev = ctl.f0_hz;
    }

    /// Phase accumulation and the harmonic exciter mixed to the shaper inputs `x`.
    fn exciter(&mut self, model: &PreparedModel, f0_cur: f32) {
        let hop = self.hop;
        let nh = model.meta.n_harmonics;
        let ns = model.meta.n_shapers;
        let sr = self.sample_rate;
        let nyquist = 0.5 * sr;
        let df = f0_cur - self.f0_prev;
        let mut kmax = 0usize;
        for i in 0..hop {
            let f = self.f0_prev + df * self.ramp[i];
            self.f0[i] = f;
            // phi = 2 pi cumsum(f0) / sr, the sum inclusive of this sample.
            self.phase += (f / sr) as f64;
            self.phase -= self.phase.floor();
            let (s, c) = (std::f64::consts::TAU * self.phase).sin_cos();
            self.sin1[i] = s as f32;
            self.cos1[i] = c as f32;
            // Harmonic k (1-based) sounds while k f0 < sr / 2.
            let k = if f <= 0.0 { nh } else { (((nyquist / f).ceil() as usize).saturating_sub(1)).min(nh) };
            self.harmonics_on[i] = k as u16;
            kmax = kmax.max(k);
        }
        // sin/cos of (k+1) phi by rotation, masked where the harmonic is above Nyquist.
        self.prev_s.copy_from_slice(&self.sin1);
        self.prev_c.copy_from_slice(&self.cos1);
        for k in 0..kmax {
            let (rows, _) = self.harm.split_at_mut(2 * (k + 1) * hop);
            let (srow, crow) = rows[2 * k * hop..].split_at_mut(hop);
            for i in 0..hop {
                let (s, c) = (self.prev_s[i], self.prev_c[i]);
                let on = if (k as u16) < self.harmonics_on[i] { 1.0 } else { 0.0 };
                srow[i] = s * on;
                crow[i] = c * on;
                self.prev_s[i] = s * self.cos1[i] + c * self.sin1[i];
                self.prev_c[i] = c * self.cos1[i] - s * self.sin1[i];
            }
        }
        // x_c = b_c + sum_k M_ck sin(k phi + theta_k)
        let bias = &model.weights.harmonic_mixer.bias;
        for c in 0..ns {
            let x = &mut self.x[c * hop..(c + 1) * hop];
            x.fill(bias[c]);
            let coef = &model.mixer_sc[c * nh * 2..(c + 1) * nh * 2];
            for k in 0..kmax {
                let (a_s, a_c) = (coef[2 * k], coef[2 * k + 1]);
                let srow = &self.harm[2 * k * hop..(2 * k + 1) * hop];
                let crow = &self.harm[(2 * k + 1) * hop..(2 * k + 2) * hop];
                for i in 0..hop {
                    x[i] += a_s * srow[i] + a_c * crow[i];
                }
            }
        }
    }

    /// FiLM (ramped across the frame), the shapers, and the output mixer into `y`.
    fn shape(&mut self, model: &PreparedModel, p: &VoiceParams) {
        let hop = self.hop;
        let ns = model.meta.n_shapers;
        let mix = &model.weights.output_mixer;
        self.y.fill(mix.bias[0]);
        let (prev, cur) = (&self.film_prev, &self.film_cur);
        let tables = &model.tables;
        for c in 0..ns {
            let (ai, dai) = (prev[c], cur[c] - prev[c]);
            let (bi, dbi) = (prev[ns + c], cur[ns + c] - prev[ns + c]);
            let (ao, dao) = (prev[2 * ns + c], cur[2 * ns + c] - prev[2 * ns + c]);
            let (bo, dbo) = (prev[3 * ns + c], cur[3 * ns + c] - prev[3 * ns + c]);
            let wc = mix.weight[c];
            let x = &self.x[c * hop..(c + 1) * hop];
            let table = tables.table(c);
            for i in 0..hop {
                let r = self.ramp[i];
                let u = (ai + dai * r) * x[i] + (bi + dbi * r);
                let u = p.shaper_in_gain * u + p.shaper_in_offset;
                let s = match p.shaper {
                    ShaperPath::Table => tables.lookup(table, u),
                    ShaperPath::Mlp => model.weights.shapers.eval(c, u),
                };
                self.y[i] += wc * ((ao + dao * r) * (p.shaper_out_gain * s) + (bo + dbo * r));
            }
        }
    }

    /// The filtered-noise branch: the frame's 129 magnitudes become a centred,
    /// Hann-windowed 256-tap filter (inverse real DFT, `1/N` scaled like torch.fft.irfft),
    /// applied to this frame's white noise and overlap-added (linear, not circular).
    fn filtered_noise(&mut self, model: &PreparedModel) {
        let hop = self.hop;
        for (s, &m) in self.noise_spec.iter_mut().zip(&self.noise_mag) {
            *s = Complex::new(m, 0.0);
        }
        model
            .noise_ifft
            .process_with_scratch(&mut self.noise_spec, &mut self.noise_time, &mut self.fft_scratch)
            .expect("sizes fixed at construction; imaginary DC and Nyquist are zero");
        let half = NOISE_TAPS / 2;
        let scale = 1.0 / NOISE_TAPS as f32;
        for j in 0..NOISE_TAPS {
            self.noise_filter[j] = self.noise_time[(j + half) % NOISE_TAPS] * scale * model.noise_window[j];
        }
        self.noise.fill(&mut self.noise_in);
        for (j, &h) in self.noise_filter.iter().enumerate() {
            let dst = &mut self.noise_ola[j..j + hop];
            for (d, u) in dst.iter_mut().zip(&self.noise_in) {
                *d += h * u;
            }
        }
    }
}
