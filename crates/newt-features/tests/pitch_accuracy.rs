//! The pitch tracker on synthetic harmonic tones, 60 Hz to 2 kHz, with white noise at
//! 20 dB SNR: median error under 5 cents and under 1% gross errors (over 50 cents),
//! offline and streaming.

use newt_features::{PitchConfig, PitchEstimate, PitchTracker, track_pitch};
use newt_model::SplitMix64;

const SR: u32 = 16_000;

/// A harmonic tone (harmonics below 7 kHz, 1/k amplitudes, random phases) plus white
/// noise at the given SNR.
fn tone(f0: f64, secs: f64, snr_db: f64, rng: &mut SplitMix64) -> Vec<f32> {
    let n = (secs * SR as f64) as usize;
    let harmonics: Vec<(f64, f64)> = (1..)
        .map(|k| k as f64)
        .take_while(|k| k * f0 < 7_000.0)
        .map(|k| (k, rng.next_f64() * std::f64::consts::TAU))
        .collect();
    let mut x: Vec<f64> = (0..n)
        .map(|i| {
            let t = i as f64 / SR as f64;
            harmonics
                .iter()
                .map(|(k, ph)| (std::f64::consts::TAU * k * f0 * t + ph).sin() / k)
                .sum()
        })
        .collect();
    let power = x.iter().map(|v| v * v).sum::<f64>() / n as f64;
    let noise_rms = (power / 10f64.powf(snr_db / 10.0)).sqrt();
    for v in &mut x {
        // Uniform noise scaled to the wanted RMS (uniform [-1,1) has RMS 1/sqrt(3)).
        *v += noise_rms * 3f64.sqrt() * (2.0 * rng.next_f64() - 1.0);
    }
    let peak = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    x.iter().map(|v| (0.5 * v / peak) as f32).collect()
}

fn f0_grid() -> Vec<f64> {
    // 60 Hz to 2 kHz, 48 steps of a 13th of an octave (not aligned with integer periods).
    (0..48)
        .map(|i| 60.0 * 2f64.powf(i as f64 * (2000.0f64 / 60.0).log2() / 47.0))
        .collect()
}

struct Score {
    median_cents: f64,
    gross: f64,
    frames: usize,
}

fn score(errors: &mut [f64]) -> Score {
    errors.sort_by(f64::total_cmp);
    let gross = errors.iter().filter(|e| **e > 50.0).count() as f64 / errors.len() as f64;
    Score {
        median_cents: errors[errors.len() / 2],
        gross,
        frames: errors.len(),
    }
}

/// Frames whose window lies entirely inside the tone.
fn steady(est: &[PitchEstimate], f0: f64, errors: &mut Vec<f64>) {
    let edge = 6;
    for e in &est[edge..est.len() - edge] {
        assert!(e.voiced, "{f0} Hz: unvoiced frame in a tone");
        errors.push((1200.0 * (e.f0_hz as f64 / f0).log2()).abs());
    }
}

#[test]
fn offline_tracker_meets_the_accuracy_targets() {
    let mut rng = SplitMix64::new(1);
    let mut errors = Vec::new();
    for f0 in f0_grid() {
        let x = tone(f0, 0.4, 20.0, &mut rng);
        let est = track_pitch(&x, PitchConfig::default()).unwrap();
        assert_eq!(est.len(), x.len().div_ceil(128));
        steady(&est, f0, &mut errors);
    }
    let s = score(&mut errors);
    println!(
        "offline: median {:.2} cents, gross {:.3}% over {} frames",
        s.median_cents,
        100.0 * s.gross,
        s.frames
    );
    assert!(s.median_cents < 5.0 && s.gross < 0.01);
}

#[test]
fn streaming_tracker_meets_the_accuracy_targets() {
    let mut rng = SplitMix64::new(2);
    let mut errors = Vec::new();
    for f0 in f0_grid() {
        let x = tone(f0, 0.4, 20.0, &mut rng);
        let mut tracker = PitchTracker::new(PitchConfig::default()).unwrap();
        let mut est = Vec::new();
        // Odd block sizes, as a host would deliver them.
        let mut at = 0;
        let mut block = 1;
        while at < x.len() {
            let end = (at + block).min(x.len());
            tracker.push(&x[at..end], |e| est.push(e));
            at = end;
            block = block * 7 % 311 + 1;
        }
        steady(&est, f0, &mut errors);
    }
    let s = score(&mut errors);
    println!(
        "streaming: median {:.2} cents, gross {:.3}% over {} frames",
        s.median_cents,
        100.0 * s.gross,
        s.frames
    );
    assert!(s.median_cents < 5.0 && s.gross < 0.01);
}

#[test]
fn noise_and_silence_are_unvoiced() {
    let mut rng = SplitMix64::new(3);
    let noise: Vec<f32> = (0..8000).map(|_| rng.uniform(-0.3, 0.3)).collect();
    let est = track_pitch(&noise, PitchConfig::default()).unwrap();
    let voiced = est.iter().filter(|e| e.voiced).count();
    assert!(
        voiced * 10 < est.len(),
        "{voiced} of {} noise frames voiced",
        est.len()
    );
    let silence = track_pitch(&vec![0.0; 8000], PitchConfig::default()).unwrap();
    assert!(silence.iter().all(|e| !e.voiced && e.confidence < 0.5));
}

#[test]
fn streaming_latency_is_bounded() {
    let t = PitchTracker::new(PitchConfig::default()).unwrap();
    // Half the analysis window plus the Viterbi lag: under 40 ms at 16 kHz.
    assert!(t.latency() < 640, "{}", t.latency());
}
