//! How far apart two renderings of the same performance sound: the mean absolute
//! difference of their frame log-spectra, after aligning them in time and level.
//!
//! Used to compare the engine with the NEWT authors' code on the same controls, where
//! sample-level comparison is meaningless (each run of their code draws new noise and new
//! harmonic phases), and to put that distance beside a second run's and another
//! instrument's.

use realfft::RealFftPlanner;

/// Analysis frame in samples (64 ms at 16 kHz) and hop (16 ms).
pub const FRAME: usize = 1024;
pub const HOP: usize = 256;
/// Floor of the log-spectra, in dB below the louder signal's loudest bin: bins below it
/// count as equal, so silence and inaudible noise floors do not dominate the mean.
pub const FLOOR_DB: f64 = 80.0;

/// The distance and the alignment that gave it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpectralDistance {
    /// Mean over frames and bins of |dB(a) - dB(b)|, in dB.
    pub mean_abs_db: f64,
    /// Samples by which `b` is late relative to `a` (removed before measuring).
    pub lag: isize,
    /// Gain applied to `b`, in dB, to match `a`'s RMS.
    pub gain_db: f64,
}

/// Compares `a` and `b`: finds the lag of `b` within `max_lag` samples that maximises
/// their cross-correlation, scales `b` to `a`'s RMS, then measures the mean absolute
/// difference of their log-magnitude spectra (Hann frames of [`FRAME`], hop [`HOP`],
/// floored at [`FLOOR_DB`] below the louder peak) over the frames both cover.
pub fn log_spectral_distance(a: &[f32], b: &[f32], max_lag: usize) -> SpectralDistance {
    let lag = best_lag(a, b, max_lag);
    // Overlapping parts: a[i] with b[i + lag].
    let (a0, b0) = if lag >= 0 {
        (0, lag as usize)
    } else {
        ((-lag) as usize, 0)
    };
    let n = a.len().saturating_sub(a0).min(b.len().saturating_sub(b0));
    let (a, b) = (&a[a0..a0 + n], &b[b0..b0 + n]);
    let rms = |x: &[f32]| {
        (x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
    };
    let gain = if rms(b) > 0.0 { rms(a) / rms(b) } else { 1.0 };
    let sa = log_spectra(a, 1.0);
    let sb = log_spectra(b, gain);
    let peak = sa
        .iter()
        .chain(&sb)
        .fold(f64::NEG_INFINITY, |m, v| m.max(*v));
    let floor = peak - FLOOR_DB;
    let total: f64 = sa
        .iter()
        .zip(&sb)
        .map(|(x, y)| (x.max(floor) - y.max(floor)).abs())
        .sum();
    SpectralDistance {
        mean_abs_db: if sa.is_empty() {
            0.0
        } else {
            total / sa.len() as f64
        },
        lag,
        gain_db: 20.0 * gain.log10(),
    }
}

/// The lag of `b` relative to `a` (in `-max_lag..=max_lag`) with the largest
/// cross-correlation.
fn best_lag(a: &[f32], b: &[f32], max_lag: usize) -> isize {
    let mut best = (f64::NEG_INFINITY, 0isize);
    for lag in -(max_lag as isize)..=max_lag as isize {
        let mut s = 0.0f64;
        for (i, &x) in a.iter().enumerate() {
            let j = i as isize + lag;
            if j >= 0 && (j as usize) < b.len() {
                s += x as f64 * b[j as usize] as f64;
            }
        }
        if s > best.0 {
            best = (s, lag);
        }
    }
    best.1
}

/// Log-magnitude spectra in dB of `x * gain`, frame-major `[frames][FRAME / 2 + 1]`.
fn log_spectra(x: &[f32], gain: f64) -> Vec<f64> {
    let mut planner = RealFftPlanner::<f64>::new();
    let fft = planner.plan_fft_forward(FRAME);
    let window: Vec<f64> = (0..FRAME)
        .map(|j| 0.5 - 0.5 * (std::f64::consts::TAU * j as f64 / FRAME as f64).cos())
        .collect();
    let mut buf = fft.make_input_vec();
    let mut spec = fft.make_output_vec();
    let mut out = Vec::new();
    let mut start = 0;
    while start + FRAME <= x.len() {
        for (j, b) in buf.iter_mut().enumerate() {
            *b = x[start + j] as f64 * gain * window[j];
        }
        if fft.process(&mut buf, &mut spec).is_err() {
            break;
        }
        out.extend(spec.iter().map(|c| 20.0 * c.norm().max(1e-12).log10()));
        start += HOP;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(f: f64, n: usize, amp: f64, delay: usize) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let t = i as f64 - delay as f64;
                if t < 0.0 {
                    0.0
                } else {
                    (amp * (std::f64::consts::TAU * f * t / 16_000.0).sin()) as f32
                }
            })
            .collect()
    }

    #[test]
    fn a_delayed_quieter_copy_is_at_distance_zero_and_another_tone_is_not() {
        let a = tone(440.0, 16_000, 0.5, 0);
        let b = tone(440.0, 16_000, 0.1, 40);
        let d = log_spectral_distance(&a, &b, 100);
        assert_eq!(d.lag, 40);
        assert!((d.gain_db - 20.0 * 5f64.log10()).abs() < 0.1, "{d:?}");
        assert!(d.mean_abs_db < 0.05, "{d:?}");
        // Noise: energy in every bin where the tone has none.
        let mut state = 1u32;
        let c: Vec<f32> = (0..16_000)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect();
        let far = log_spectral_distance(&a, &c, 100);
        assert!(far.mean_abs_db > 5.0, "{far:?}");
    }
}
