//! One streaming NEWT voice at the model rate: the frame-rate networks, then per sample the
//! harmonic exciter, FiLM, the 64 shapers, the output mixer and the filtered noise.
//! All state (phase, GRU, previous FiLM parameters, noise overlap) is kept across frames.

use std::sync::Arc;

use newt_model::{ModelMeta, NOISE_BANDS, NewtModel, NewtWeights, WhiteNoise};
use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner};

use crate::engine::EngineError;
use crate::kernels::{self, ShaperCoefs};
use crate::nets::{ControlNet, Dense, GruNet, GruScratch, MlpScratch};
use crate::shaper::{ShaperPath, ShaperTables, TableSpec};

/// Noise filter length in taps: the inverse real DFT of the 129 magnitudes.
pub const NOISE_TAPS: usize = 2 * (NOISE_BANDS - 1);

/// Lowest loudness the networks are ever shown, in dB; -inf and NaN map here.
pub const LOUDNESS_FLOOR_DB: f32 = -120.0;
/// Highest loudness accepted, in dB.
pub const LOUDNESS_CEIL_DB: f32 = 20.0;

/// `v` clamped to `[lo, hi]`, or `default` where `v` is NaN or infinite: how every value
/// from outside (controls, events, parameters) enters the engine.
#[inline]
pub fn finite_or(v: f32, default: f32, lo: f32, hi: f32) -> f32 {
    if v.is_finite() {
        v.clamp(lo, hi)
    } else {
        default
    }
}

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
        let f0 = if self.f0_hz.is_finite() {
            self.f0_hz.clamp(0.0, nyquist_hz)
        } else if self.f0_hz == f32::INFINITY {
            nyquist_hz
        } else {
            0.0
        };
        let l = if self.loudness_db.is_nan() {
            LOUDNESS_FLOOR_DB
        } else {
            self.loudness_db.clamp(LOUDNESS_FLOOR_DB, LOUDNESS_CEIL_DB)
        };
        Self {
            f0_hz: f0,
            loudness_db: l,
        }
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
        })
    }

    pub fn tables(&self) -> &ShaperTables {
        &self.tables
    }
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
    f0_prev: f32,
    started: bool,
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
    /// `(i + 1) / hop`: the causal linear ramp from the previous frame's values.
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
        Self {
            hop,
            sample_rate: m.sample_rate as f32,
            phase: 0.0,
            f0_prev: 0.0,
            started: false,
            h: vec![0.0; w.gru.hidden],
            gru_scratch: model.gru.scratch(),
            hs: vec![0.0; MAX_BATCH * w.gru.hidden],
            z: vec![0.0; MAX_BATCH * w.proj.out_dim],
            mlp_scratch: model.film.scratch(MAX_BATCH),
            film: vec![0.0; (MAX_BATCH + 1) * 4 * ns],
            noise_mag: vec![0.0; MAX_BATCH * NOISE_BANDS],
            ramp: (0..hop).map(|i| (i + 1) as f32 / hop as f32).collect(),
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
    }

    pub fn reset(&mut self) {
        self.phase = 0.0;
        self.f0_prev = 0.0;
        self.started = false;
        self.h.fill(0.0);
        self.noise_ola.fill(0.0);
        self.noise = WhiteNoise::new(self.noise_seed);
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
        let meta = &model.meta;
        let w = &model.weights;
        let ns = meta.n_shapers;
        let nyquist = 0.5 * self.sample_rate;
        let hidden = w.gru.hidden;

        // Frame rate: the GRU in sequence, then projection, FiLM and noise nets batched.
        for (j, c) in controls.iter().enumerate() {
            let ctl = c.sanitized(nyquist);
            let input = [
                (ctl.f0_hz - meta.f0_mean_hz) / meta.f0_std_hz,
                (ctl.loudness_db - meta.loudness_mean_db) / meta.loudness_std_db,
            ];
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
            self.f0_prev = controls[0].sanitized(nyquist).f0_hz;
            self.started = true;
        }

        // Audio rate: the exciter in sequence (its phase runs on), then the shapers
        // channel by channel across the batch, then the noise in sequence.
        for (j, c) in controls.iter().enumerate() {
            let f0 = c.sanitized(nyquist).f0_hz;
            self.exciter(model, f0, j);
            self.f0_prev = f0;
        }
        self.shape(model, params, n);
        let (hg, ng) = (params.harmonic_gain, params.noise_gain);
        for j in 0..n {
            self.filtered_noise(model, j);
            let frame = &mut out[j * hop..(j + 1) * hop];
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
        // f0 ramps linearly from the previous frame's value: f_i = f_prev + df (i + 1) / hop.
        // The phase phi_i = phi_{i-1} + 2 pi f_i / sr (cumsum inclusive of sample i) is
        // advanced by complex rotation in f64, re-anchored to the f64 phase every frame.
        let f_prev = self.f0_prev as f64;
        let df = (f0_cur - self.f0_prev) as f64 / hop as f64;
        let tau = std::f64::consts::TAU;
        let (mut s, mut c) = (tau * self.phase).sin_cos();
        let (mut ws, mut wc) = (tau * (f_prev + df) / sr).sin_cos(); // step of sample 0
        let (ds, dc) = (tau * df / sr).sin_cos(); // the step's own change per sample
        let mut kmax = 0usize;
        for i in 0..hop {
            (s, c) = (s * wc + c * ws, c * wc - s * ws);
            (ws, wc) = (ws * dc + wc * ds, wc * dc - ws * ds);
            self.sin1[i] = s as f32;
            self.cos1[i] = c as f32;
            let f = (f_prev + df * (i + 1) as f64) as f32;
            // Harmonic k (1-based) sounds while k f0 < sr / 2.
            let k = if f <= 0.0 {
                nh
            } else {
                (((nyquist / f).ceil() as usize).saturating_sub(1)).min(nh)
            };
            self.harmonics_on[i] = k as u16;
            kmax = kmax.max(k);
        }
        let cycles = hop as f64 * (f_prev + 0.5 * df * (hop + 1) as f64) / sr;
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
        for (s, &m) in self.noise_spec.iter_mut().zip(mags) {
            *s = Complex::new(m, 0.0);
        }
        model
            .noise_ifft
            .process_with_scratch(
                &mut self.noise_spec,
                &mut self.noise_time,
                &mut self.fft_scratch,
            )
            .expect("sizes fixed at construction; imaginary DC and Nyquist are zero");
        let half = NOISE_TAPS / 2;
        let scale = 1.0 / NOISE_TAPS as f32;
        for j in 0..NOISE_TAPS {
            self.noise_filter[j] =
                self.noise_time[(j + half) % NOISE_TAPS] * scale * model.noise_window[j];
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
