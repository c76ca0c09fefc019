//! The NEWT authors' loudness control (Hayes et al., `neural-waveshaping-synthesis` @
//! `cb7aaea`, `extract_perceptual_loudness` with the arguments of
//! `gin/data/urmp_4second_crepe.gin`), offline (exact) and streaming.
//!
//! Per frame of a 1024-point periodic-Hann STFT at 16 kHz (hop 128 in their data):
//!
//! ```text
//! D_k = max(20 log10(max(|X_k|, 1e-5)) - 20 log10(max(R, 1e-5)), -80)
//! L   = mean over the 513 bins (DC and Nyquist included) of D_k     in [-80, 0]
//! ```
//!
//! with `R` the largest `|X|` of the whole file: the measure is relative to the file's
//! loudest bin, not A-weighted (the authors compute the weights but never add them) and
//! a mean of dB values, so it mostly counts how many bins rise above the -80 dB floor.
//! Values are returned in the authors' dB, the unit of `LoudnessMeasure::NwsDb`; the
//! authors' normalised control is `(L + 80) / 80` ([`nws_normalised`]).
//!
//! Only 16 kHz is accepted ([`FeatureError::NwsSampleRate`]): the measure averages over
//! the bins of a 1024-point transform at that rate, and a model trained on it runs at
//! 16 kHz; resample other material first ([`crate::resample()`]).

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use crate::{FeatureError, Framer, check_rate_and_hop};

/// The only sample rate the measure is defined at, in Hz.
pub const NWS_SAMPLE_RATE: u32 = 16_000;
/// STFT size (periodic Hann window of the same length).
pub const NWS_N_FFT: usize = 1024;
/// Bins averaged per frame: `NWS_N_FFT / 2 + 1`.
pub const NWS_BINS: usize = NWS_N_FFT / 2 + 1;
/// `amin` of `librosa.amplitude_to_db`: magnitudes (and the reference) below it count as
/// this value.
pub const NWS_AMIN: f64 = 1e-5;
/// The loudness of silence (every bin at least 80 dB below the reference), in dB.
pub const NWS_SILENCE_DB: f32 = -80.0;
/// Default reference floor of the streaming meter, in dBFS of a sine: the running
/// reference never falls below the largest `|X|` of a -40 dBFS sine.
pub const NWS_STREAM_FLOOR_DBFS: f32 = -40.0;
/// Largest `|X|` of a full-scale sine centred on a bin: `Σw / 2` of the Hann 1024.
pub const NWS_FULL_SCALE_MAGNITUDE: f64 = NWS_N_FFT as f64 / 4.0;

/// The authors' normalised loudness, `(L + 80) / 80`, in [0, 1] for `L` in [-80, 0].
pub fn nws_normalised(db: f32) -> f32 {
    (db - NWS_SILENCE_DB) / -NWS_SILENCE_DB
}

/// Inverse of [`nws_normalised`]: `80 l - 80`.
pub fn nws_db_from_normalised(normalised: f32) -> f32 {
    normalised * -NWS_SILENCE_DB + NWS_SILENCE_DB
}

fn check_nws_rate_and_hop(sample_rate: u32, hop: usize) -> Result<(), FeatureError> {
    check_rate_and_hop(sample_rate, hop)?;
    if sample_rate != NWS_SAMPLE_RATE {
        return Err(FeatureError::NwsSampleRate(sample_rate));
    }
    Ok(())
}

/// One frame's loudness from its magnitudes and the reference `R`, in f64.
fn frame_db(mag: &[f64], reference: f64) -> f64 {
    let ref_db = 20.0 * reference.max(NWS_AMIN).log10();
    let floor = f64::from(NWS_SILENCE_DB);
    let sum: f64 = mag
        .iter()
        .map(|m| (20.0 * m.max(NWS_AMIN).log10() - ref_db).max(floor))
        .sum();
    sum / mag.len().max(1) as f64
}

/// The windowed transform and its buffers, f64 throughout.
struct Spectrum {
    fft: Arc<dyn RealToComplex<f64>>,
    window: Vec<f64>,
    time: Vec<f64>,
    spec: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
    mag: Vec<f64>,
}

impl Spectrum {
    fn new() -> Self {
        let n = NWS_N_FFT;
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(n);
        Self {
            // Periodic Hann (scipy `get_window("hann", n, fftbins=True)`).
            window: (0..n)
                .map(|i| 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n as f64).cos())
                .collect(),
            time: vec![0.0; n],
            spec: fft.make_output_vec(),
            scratch: vec![Complex::default(); fft.get_scratch_len()],
            mag: vec![0.0; NWS_BINS],
            fft,
        }
    }

    /// Windows `frame` (non-finite samples count as 0) into the time buffer.
    fn load(&mut self, frame: impl IntoIterator<Item = f32>) {
        for ((t, x), w) in self.time.iter_mut().zip(frame).zip(&self.window) {
            *t = if x.is_finite() { f64::from(x) * w } else { 0.0 };
        }
    }

    /// Transforms the loaded frame into `mag`; returns the largest magnitude. A transform
    /// error (impossible: the sizes are fixed here) reads as silence.
    fn analyse(&mut self) -> f64 {
        if self
            .fft
            .process_with_scratch(&mut self.time, &mut self.spec, &mut self.scratch)
            .is_err()
        {
            self.mag.fill(0.0);
            return 0.0;
        }
        let mut peak = 0.0f64;
        for (m, c) in self.mag.iter_mut().zip(&self.spec) {
            *m = c.norm();
            peak = peak.max(*m);
        }
        peak
    }
}

/// numpy's `reflect` padding as an index map: the signal extended by mirroring about its
/// first and last samples (edges not repeated), again and again where the padding is
/// longer than the signal, i.e. periodic with period `2 (len - 1)`; a one-sample signal
/// repeats its sample. Exactly `np.pad(y, 512, mode="reflect")` for every length >= 1.
fn reflect_index(i: isize, len: usize) -> usize {
    if len <= 1 {
        return 0;
    }
    let period = 2 * (len as isize - 1);
    let m = i.rem_euclid(period);
    (if m >= len as isize { period - m } else { m }) as usize
}

/// The authors' loudness of a whole signal, exactly, in their dB ([-80, 0]).
///
/// `librosa.stft(audio, n_fft=1024, hop_length=hop, window="hann")` as in librosa 0.8.0:
/// `center=True` with numpy `reflect` padding of 512 samples at both ends (on signals of
/// 512 samples or fewer the mirroring repeats, as numpy does, see the note below),
/// `1 + len / hop` frames, frame `f` centred on sample `f * hop`; then per frame the mean
/// over the 513 bins of `max(20 log10(max(|X|, 1e-5) / max(R, 1e-5)), -80)` with `R` the
/// largest `|X|` over all bins and frames. Computed in f64 (the authors' complex64
/// spectrum differs by about 1e-5 dB).
///
/// - Empty signal: no frames (an empty vector; librosa would raise).
/// - Short signals: numpy's `reflect` on a signal shorter than the padding keeps
///   reflecting (the mirrored extension is periodic with period `2 (len - 1)`; a single
///   sample is repeated); this reproduces it, so any length `>= 1` gives the authors'
///   value.
/// - A signal whose every bin is below `1e-5` (all digital zeros, or a sound at about
///   -148 dBFS) reads **0 dB** in every frame, as the authors' code does: `R` falls to
///   `amin` and every bin is 0 dB relative to it. Silence inside a file with sound reads
///   -80 dB.
/// - Non-finite samples count as 0 (the authors' output would be NaN).
/// - Scale invariant: a gain on the input changes nothing (up to rounding), as long as
///   the file's loudest bin `R` is at least 0.1 (`amin` + 80 dB; a sine peaking above
///   about -68 dBFS). Below that the absolute `amin` lifts the quietest bins above
///   -80 dB, as in the authors' code.
///
/// Errors: sample rates other than 16 kHz ([`FeatureError::NwsSampleRate`]), hops outside
/// `1..=8192`.
pub fn nws_loudness_db(
    audio: &[f32],
    sample_rate: u32,
    hop: usize,
) -> Result<Vec<f32>, FeatureError> {
    check_nws_rate_and_hop(sample_rate, hop)?;
    let len = audio.len();
    if len == 0 {
        return Ok(Vec::new());
    }
    let frames = 1 + len / hop;
    let half = (NWS_N_FFT / 2) as isize;
    let mut spectrum = Spectrum::new();
    let load = |spectrum: &mut Spectrum, f: usize| {
        let start = (f * hop) as isize - half;
        spectrum.load((0..NWS_N_FFT as isize).map(|i| audio[reflect_index(start + i, len)]));
    };
    // Two passes: the reference is the whole signal's largest bin, and recomputing the
    // transforms is cheaper in memory than keeping every frame's 513 magnitudes.
    let mut reference = 0.0f64;
    for f in 0..frames {
        load(&mut spectrum, f);
        reference = reference.max(spectrum.analyse());
    }
    let mut out = Vec::with_capacity(frames);
    for f in 0..frames {
        load(&mut spectrum, f);
        spectrum.analyse();
        out.push(frame_db(&spectrum.mag, reference) as f32);
    }
    Ok(out)
}

/// Streaming form of [`nws_loudness_db`], for live input.
///
/// The frame grid and latency are those of [`crate::LoudnessMeter`] (window 1024, frame
/// `f` centred on sample `f * hop`, zeros before the first sample, each frame ready
/// `latency() = 512` samples after its centre), so it can stand in for it; values are in
/// the authors' dB, [-80, 0].
///
/// A stream has no file maximum, so the reference `R` is the **running maximum** of `|X|`
/// over every frame heard since [`new`](Self::new) / [`reset`](Self::reset), never below a
/// floor (by default the largest `|X|` of a -40 dBFS sine,
/// `256 · 10^(-40/20) = 2.56` for the Hann 1024, [`NWS_STREAM_FLOOR_DBFS`]). Why a running
/// maximum: the offline reference is the loudest bin of the whole performance; once the
/// loudest part has been heard, the running maximum *is* that bin, and from then on every
/// frame reads exactly the offline value (away from the file's edges, where offline
/// reflects and the stream has zeros). Before that, frames read relative to the loudest
/// bin so far (higher than offline: the first notes are judged against themselves). The
/// floor keeps the first quiet noise (or silence, which reads -80 dB here, not the
/// offline 0 dB of an all-zero file) from being taken as the loudest sound; a floor of
/// 0 dBFS makes the reference fixed at full scale for any input up to a full-scale sine.
/// The price of a floor: a performance whose loudest bin stays below it never reaches
/// its offline values (it reads lower), and broadband noise below it still counts bins
/// (-70 dBFS white noise alone reads about -60 dB against the default floor): raise the
/// floor for noisy inputs ([`with_floor_dbfs`](Self::with_floor_dbfs)). With any floor
/// of at least 0.1 (about -68 dBFS) `amin` never matters here.
///
/// Real-time safe: allocates only in the constructors; non-finite samples count as 0, so
/// the output is always finite.
pub struct NwsLoudnessMeter {
    framer: Framer,
    spectrum: Spectrum,
    floor: f64,
    reference: f64,
}

impl std::fmt::Debug for NwsLoudnessMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NwsLoudnessMeter")
            .field("floor", &self.floor)
            .field("reference", &self.reference)
            .finish_non_exhaustive()
    }
}

impl NwsLoudnessMeter {
    /// A meter with the default reference floor ([`NWS_STREAM_FLOOR_DBFS`]). Sample rate
    /// 16 kHz only; hop in `1..=1024`.
    pub fn new(sample_rate: u32, hop: usize) -> Result<Self, FeatureError> {
        Self::with_floor_dbfs(sample_rate, hop, NWS_STREAM_FLOOR_DBFS)
    }

    /// A meter whose reference never falls below the largest `|X|` of a sine at
    /// `floor_dbfs` (any finite value; below about -148 dBFS the floor is `amin`).
    pub fn with_floor_dbfs(
        sample_rate: u32,
        hop: usize,
        floor_dbfs: f32,
    ) -> Result<Self, FeatureError> {
        check_nws_rate_and_hop(sample_rate, hop)?;
        if hop > NWS_N_FFT {
            return Err(FeatureError::Hop(hop));
        }
        if !floor_dbfs.is_finite() {
            return Err(FeatureError::ReferenceFloor(floor_dbfs));
        }
        let floor = NWS_FULL_SCALE_MAGNITUDE * 10f64.powf(f64::from(floor_dbfs) / 20.0);
        // Below amin the floor would change nothing: the reference counts as amin anyway.
        let floor = floor.max(NWS_AMIN);
        Ok(Self {
            framer: Framer::new(NWS_N_FFT, hop),
            spectrum: Spectrum::new(),
            floor,
            reference: floor,
        })
    }

    /// Samples from a frame's centre to its value being available (512).
    pub fn latency(&self) -> usize {
        self.framer.latency()
    }

    /// The reference `R` in use: the running maximum of `|X|`, at least the floor.
    pub fn reference_magnitude(&self) -> f64 {
        self.reference
    }

    /// The reference floor, as a magnitude.
    pub fn floor_magnitude(&self) -> f64 {
        self.floor
    }

    /// Forgets the stream: its samples and its running maximum.
    pub fn reset(&mut self) {
        self.framer.reset();
        self.reference = self.floor;
    }

    /// Pushes samples; calls `on_frame(loudness_db)` for each completed frame.
    pub fn push(&mut self, input: &[f32], mut on_frame: impl FnMut(f32)) {
        let Self {
            framer,
            spectrum,
            reference,
            ..
        } = self;
        framer.push(input, |frame| {
            spectrum.load(frame.iter().copied());
            let peak = spectrum.analyse();
            if peak.is_finite() && peak > *reference {
                *reference = peak;
            }
            let db = frame_db(&spectrum.mag, *reference);
            on_frame(if db.is_finite() {
                db as f32
            } else {
                NWS_SILENCE_DB
            });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_index_is_numpy_reflect() {
        // np.pad([1, 2, 3], 5, mode="reflect") = [2 1 2 3 2 | 1 2 3 | 2 1 2 3 2]
        let x = [1, 2, 3];
        let padded: Vec<i32> = (-5..8).map(|i| x[reflect_index(i, 3)]).collect();
        assert_eq!(padded, [2, 1, 2, 3, 2, 1, 2, 3, 2, 1, 2, 3, 2]);
        // np.pad(arange(4), 9, mode="reflect")
        let padded: Vec<usize> = (-9..13).map(|i| reflect_index(i, 4)).collect();
        assert_eq!(
            padded,
            [
                3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0
            ]
        );
        assert!((-600..600).all(|i| reflect_index(i, 1) == 0));
    }

    #[test]
    fn the_window_peak_of_a_bin_centred_sine_is_the_full_scale_magnitude() {
        let mut s = Spectrum::new();
        // 1000 Hz = bin 64 at 16 kHz / 1024.
        s.load(
            (0..NWS_N_FFT).map(|i| (std::f64::consts::TAU * 64.0 * i as f64 / 1024.0).sin() as f32),
        );
        let peak = s.analyse();
        assert!((peak - NWS_FULL_SCALE_MAGNITUDE).abs() < 1e-3, "{peak}");
    }

    #[test]
    fn normalisation_round_trips() {
        assert_eq!(nws_normalised(-80.0), 0.0);
        assert_eq!(nws_normalised(0.0), 1.0);
        assert!((nws_db_from_normalised(nws_normalised(-68.5)) + 68.5).abs() < 1e-5);
    }
}
