//! Helpers for the engine's tests, shared with the workspace tests (`tests/lib.rs`
//! includes this file): signal measurements that do not trust the engine's own code,
//! and a seeded model in the NEWT authors' operators.
// Each test binary uses a different subset.
#![allow(dead_code)]

use newt_model::{LoudnessMeasure, NewtModel, Operators};
use realfft::RealFftPlanner;

/// A seeded model that asks for the NEWT authors' operators and loudness measure (with
/// statistics like their violin's), for tests that must cover both operator sets
/// without trained weights.
pub fn seeded_nws(seed: u64) -> NewtModel {
    let mut m = NewtModel::seeded(seed);
    m.meta.operators = Operators::Nws;
    m.meta.loudness_measure = LoudnessMeasure::NwsDb;
    m.meta.loudness_mean_db = -72.4;
    m.meta.loudness_std_db = 2.4;
    m
}

/// Fundamental frequency of a steady periodic signal in Hz.
///
/// From a zero-padded Hann-windowed spectrum: the strong peaks (within 25 dB of the
/// largest) are located by quadratic interpolation of the log magnitude; the fundamental
/// is the highest frequency `P / h` (P the largest peak, h = 1..=12) of which at least 99%
/// of the strong peaks' energy lies on harmonics. It is then refined as the strongest
/// peak's frequency divided by its harmonic number.
pub fn fundamental_hz(x: &[f32], sample_rate: f64) -> f64 {
    let n = x.len();
    let pad = (4 * n).next_power_of_two();
    let mut buf = vec![0.0f64; pad];
    for (i, (b, v)) in buf.iter_mut().zip(x).enumerate() {
        let w = 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n as f64).cos();
        *b = *v as f64 * w;
    }
    let fft = RealFftPlanner::<f64>::new().plan_fft_forward(pad);
    let mut spec = fft.make_output_vec();
    fft.process(&mut buf, &mut spec).unwrap();
    let mag: Vec<f64> = spec.iter().map(|c| c.norm().max(1e-30)).collect();
    let bin_hz = sample_rate / pad as f64;
    let first = (30.0 / bin_hz) as usize + 1;
    let top = (first..mag.len() - 1).map(|k| mag[k]).fold(0.0, f64::max);
    // (frequency, energy) of every strong local maximum.
    let peaks: Vec<(f64, f64)> = (first..mag.len() - 1)
        .filter(|&k| {
            mag[k] > top * 10f64.powf(-25.0 / 20.0) && mag[k] >= mag[k - 1] && mag[k] > mag[k + 1]
        })
        .map(|k| {
            let (a, b, c) = (mag[k - 1].ln(), mag[k].ln(), mag[k + 1].ln());
            let delta = 0.5 * (a - c) / (a - 2.0 * b + c);
            ((k as f64 + delta) * bin_hz, mag[k] * mag[k])
        })
        .collect();
    let total: f64 = peaks.iter().map(|p| p.1).sum();
    let (strongest, _) = peaks
        .iter()
        .copied()
        .fold((0.0, 0.0), |m, p| if p.1 > m.1 { p } else { m });
    for h in 1..=12 {
        let f = strongest / h as f64;
        if f < 30.0 {
            break;
        }
        let explained: f64 = peaks
            .iter()
            .filter(|(pf, _)| {
                let k = (pf / f).round().max(1.0);
                (pf / (k * f) - 1.0).abs() < 0.01
            })
            .map(|p| p.1)
            .sum();
        if explained >= 0.99 * total {
            return f;
        }
    }
    strongest
}

/// Pitch difference in cents.
pub fn cents(f: f64, reference: f64) -> f64 {
    1200.0 * (f / reference).log2()
}

pub fn rms(x: &[f32]) -> f64 {
    (x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
}
