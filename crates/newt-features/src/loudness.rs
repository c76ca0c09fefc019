//! A-weighted loudness in dB relative to full scale: a full-scale sine at 1 kHz reads
//! 0 dB, its A-weighting gain. Window 1024 samples (Hann), hop 128 at 16 kHz; the window
//! keeps its duration (64 ms) at other rates, rounded to a power of two.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use crate::{FeatureError, Framer, check_rate_and_hop};

/// Loudness reported for silence, in dB.
pub const SILENCE_DB: f32 = -120.0;

/// A-weighting gain in dB at `f` Hz (IEC 61672, 0 dB at 1 kHz).
pub fn a_weighting_db(f: f64) -> f64 {
    let f2 = f * f;
    let ra = 12194.0f64.powi(2) * f2 * f2
        / ((f2 + 20.6f64.powi(2))
            * ((f2 + 107.7f64.powi(2)) * (f2 + 737.9f64.powi(2))).sqrt()
            * (f2 + 12194.0f64.powi(2)));
    20.0 * ra.max(1e-30).log10() + 2.0
}

/// Streaming A-weighted loudness meter.
pub struct LoudnessMeter {
    framer: Framer,
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    /// A-weighting power gain per bin, with the one-sided and window normalisation folded
    /// in so that the weighted sum is the mean square of a full-scale-referenced signal.
    bin_gain: Vec<f32>,
    time: Vec<f32>,
    spec: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
}

impl std::fmt::Debug for LoudnessMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoudnessMeter")
            .field("n_fft", &self.window.len())
            .finish_non_exhaustive()
    }
}

impl LoudnessMeter {
    pub fn new(sample_rate: u32, hop: usize) -> Result<Self, FeatureError> {
        let n = (1024.0 * sample_rate as f64 / 16_000.0).round() as usize;
        Self::with_window(sample_rate, hop, n)
    }

    /// A meter with a window of about `window` samples (rounded up to a power of two, at
    /// least `hop`). Shorter than the default, it reads the same level for steady sounds
    /// and answers sooner: a real-time tracker's trade.
    pub fn with_window(sample_rate: u32, hop: usize, window: usize) -> Result<Self, FeatureError> {
        check_rate_and_hop(sample_rate, hop)?;
        let n = window.next_power_of_two().max(hop);
        let fft = RealFftPlanner::new().plan_fft_forward(n);
        let window: Vec<f32> = (0..n)
            .map(|i| 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n as f64).cos() as f32)
            .collect();
        let w2: f64 = window.iter().map(|w| (*w as f64).powi(2)).sum();
        let bin_gain = (0..=n / 2)
            .map(|k| {
                let f = k as f64 * sample_rate as f64 / n as f64;
                let one_sided = if k == 0 || k == n / 2 { 1.0 } else { 2.0 };
                // x2: a sine's mean square is half its peak power; 0 dBFS = full-scale sine.
                (2.0 * one_sided * 10f64.powf(a_weighting_db(f) / 10.0) / (n as f64 * w2)) as f32
            })
            .collect();
        Ok(Self {
            framer: Framer::new(n, hop),
            scratch: vec![Complex::default(); fft.get_scratch_len()],
            spec: fft.make_output_vec(),
            time: vec![0.0; n],
            fft,
            window,
            bin_gain,
        })
    }

    /// Samples from a frame's centre to its value being available.
    pub fn latency(&self) -> usize {
        self.framer.latency()
    }

    pub fn reset(&mut self) {
        self.framer.reset();
    }

    /// Pushes samples; calls `on_frame(loudness_db)` for each completed frame.
    pub fn push(&mut self, input: &[f32], mut on_frame: impl FnMut(f32)) {
        let Self {
            framer,
            fft,
            window,
            bin_gain,
            time,
            spec,
            scratch,
        } = self;
        framer.push(input, |frame| {
            for ((t, x), w) in time.iter_mut().zip(frame).zip(window.iter()) {
                *t = if x.is_finite() { x * w } else { 0.0 };
            }
            fft.process_with_scratch(time, spec, scratch)
                .expect("sizes fixed at construction");
            let power: f32 = spec
                .iter()
                .zip(bin_gain.iter())
                .map(|(c, g)| c.norm_sqr() * g)
                .sum();
            on_frame((10.0 * power.max(1e-30).log10()).max(SILENCE_DB));
        });
    }
}

/// Offline loudness of a whole signal: `ceil(len / hop)` frames, frame `f` centred on
/// sample `f * hop`, computed by the streaming meter.
pub fn loudness_db(signal: &[f32], sample_rate: u32, hop: usize) -> Result<Vec<f32>, FeatureError> {
    let mut meter = LoudnessMeter::new(sample_rate, hop)?;
    let frames = signal.len().div_ceil(hop);
    let mut out = Vec::with_capacity(frames);
    meter.push(signal, |l| out.push(l));
    let zeros = vec![0.0; hop];
    while out.len() < frames {
        meter.push(&zeros, |l| out.push(l));
    }
    out.truncate(frames);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(f: f64, amp: f32, sr: u32, secs: f64) -> Vec<f32> {
        (0..(secs * sr as f64) as usize)
            .map(|i| amp * (std::f64::consts::TAU * f * i as f64 / sr as f64).sin() as f32)
            .collect()
    }

    #[test]
    fn a_weighting_matches_the_standard_table() {
        // IEC 61672-1 nominal values.
        for (f, db) in [
            (31.5, -39.4),
            (100.0, -19.1),
            (1000.0, 0.0),
            (4000.0, 1.0),
            (10000.0, -2.5),
        ] {
            assert!(
                (a_weighting_db(f) - db).abs() < 0.2,
                "{f} Hz: {}",
                a_weighting_db(f)
            );
        }
    }

    #[test]
    fn a_1khz_sine_at_minus_20_dbfs_reads_minus_20() {
        for sr in [16_000, 48_000] {
            let hop = sr as usize / 125;
            let l = loudness_db(&sine(1000.0, 0.1, sr, 1.0), sr, hop).unwrap();
            let mid = &l[20..l.len() - 20];
            for v in mid {
                assert!((v + 20.0).abs() < 0.5, "{sr} Hz: {v}");
            }
        }
    }

    #[test]
    fn weighting_applies_and_silence_is_floored() {
        let l = loudness_db(&sine(100.0, 0.1, 16_000, 1.0), 16_000, 128).unwrap();
        let v = l[60];
        assert!((v - (-20.0 - 19.1)).abs() < 0.7, "100 Hz reads {v}");
        let s = loudness_db(&vec![0.0; 16_000], 16_000, 128).unwrap();
        assert!(s.iter().all(|v| *v == SILENCE_DB));
        assert_eq!(s.len(), 125);
    }

    #[test]
    fn streaming_in_odd_blocks_equals_offline() {
        let x = sine(440.0, 0.3, 16_000, 0.5);
        let offline = loudness_db(&x, 16_000, 128).unwrap();
        let mut meter = LoudnessMeter::new(16_000, 128).unwrap();
        let mut streamed = Vec::new();
        for chunk in x.chunks(37) {
            meter.push(chunk, |v| streamed.push(v));
        }
        assert_eq!(&offline[..streamed.len()], &streamed[..]);
        assert_eq!(meter.latency(), 512);
    }
}
