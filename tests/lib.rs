//! Helpers for the workspace-level tests: signal measurements that do not trust the
//! engine's own code.

pub mod plugin_host;

#[path = "../crates/newt-engine/tests/support/mod.rs"]
mod engine_support;
pub use engine_support::{cents, fundamental_hz, rms, seeded_nws};

/// A bright tone (six harmonics, all below 8 kHz for f0 under 1.3 kHz) whose pitch
/// follows `f0(t)` (Hz, t in seconds) for `secs` at `sample_rate`; the phase runs on.
pub fn tone(sample_rate: f64, secs: f64, f0: impl Fn(f64) -> f64) -> Vec<f32> {
    let mut phase = 0.0f64;
    (0..(secs * sample_rate) as usize)
        .map(|i| {
            phase = (phase + f0(i as f64 / sample_rate) / sample_rate).fract();
            let p = std::f64::consts::TAU * phase;
            let x: f64 = (1..=6).map(|k| (k as f64 * p).sin() / k as f64).sum();
            (0.25 * x) as f32
        })
        .collect()
}

/// A melody: each `(Hz, seconds)` note in turn, as a [`tone`].
pub fn melody(sample_rate: f64, notes: &[(f64, f64)]) -> Vec<f32> {
    let mut starts = vec![0.0f64];
    for &(_, secs) in notes {
        starts.push(starts.last().unwrap() + secs);
    }
    tone(sample_rate, *starts.last().unwrap(), |t| {
        let i = starts.iter().rposition(|&s| s <= t).unwrap();
        notes[i.min(notes.len() - 1)].0
    })
}

/// Seconds per frame of [`pitch_track`].
pub const PITCH_FRAME_S: f64 = 128.0 / 16_000.0;

/// f0 per 8 ms frame (0 where unvoiced) of a 48 kHz signal with nothing above 8 kHz,
/// from every third sample, by the project's offline pitch tracker.
pub fn pitch_track(x: &[f32]) -> Vec<f32> {
    let decimated: Vec<f32> = x.iter().step_by(3).copied().collect();
    newt_features::track_pitch(&decimated, newt_features::PitchConfig::default())
        .expect("valid default configuration")
        .iter()
        .map(|p| if p.voiced { p.f0_hz } else { 0.0 })
        .collect()
}

/// Median of the voiced frames of `track` between `start_s` and `end_s` seconds.
pub fn median_pitch(track: &[f32], start_s: f64, end_s: f64) -> f32 {
    let a = ((start_s / PITCH_FRAME_S) as usize).min(track.len());
    let b = ((end_s / PITCH_FRAME_S) as usize).min(track.len());
    let mut voiced: Vec<f32> = track[a..b].iter().copied().filter(|f| *f > 0.0).collect();
    voiced.sort_by(f32::total_cmp);
    voiced.get(voiced.len() / 2).copied().unwrap_or(0.0)
}

/// Lag of `b` behind `a`, in frames (sub-frame by parabolic interpolation): the peak of
/// the cross-correlation of their mean-removed log-f0 tracks, over lags `1..max_lag`.
pub fn track_lag(a: &[f32], b: &[f32], max_lag: usize) -> f64 {
    let log = |x: &[f32]| -> Vec<f64> {
        let v: Vec<f64> = x.iter().map(|f| (f.max(1.0) as f64).log2()).collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        v.iter().map(|x| x - mean).collect()
    };
    let (a, b) = (log(a), log(b));
    let n = a.len().min(b.len()) - max_lag;
    let corr: Vec<f64> = (0..=max_lag)
        .map(|lag| (0..n).map(|i| a[i] * b[i + lag]).sum())
        .collect();
    let k = (1..max_lag)
        .max_by(|&i, &j| corr[i].total_cmp(&corr[j]))
        .expect("max_lag >= 2");
    let (l, c, r) = (corr[k - 1], corr[k], corr[k + 1]);
    k as f64 + 0.5 * (l - r) / (l - 2.0 * c + r)
}
