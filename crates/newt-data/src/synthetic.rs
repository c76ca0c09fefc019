//! `cargo xtask data synthetic`: a synthetic monophonic instrument for training tests and
//! the first CPU runs. Phrases of notes (scales, arpeggios, leaps) with glides, delayed
//! vibrato and dynamics; a harmonic tone whose brightness follows its loudness, with a
//! little breath noise. Written as 44.1 kHz WAV files, so dataset preparation resamples.

use std::path::Path;

use anyhow::Context;
use seeded_rng::SplitMix64;

const RATE: u32 = 44_100;

pub fn write_synthetic(out: &Path, minutes: f64, seed: u64) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let files = (minutes.max(0.1) * 2.0).ceil() as usize; // 30 s each
    let bar = indicatif::ProgressBar::new(files as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("synthetic [{bar:30}] {pos}/{len} files")
            .expect("valid template"),
    );
    let mut rng = SplitMix64::new(seed);
    for i in 0..files {
        let path = out.join(format!("phrase_{i:03}.wav"));
        if path.exists() {
            bar.inc(1);
            continue; // resumable
        }
        let audio = phrase(30.0, &mut rng);
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let tmp = path.with_extension("wav.partial");
        let mut w = hound::WavWriter::create(&tmp, spec)?;
        for v in audio {
            w.write_sample((v.clamp(-1.0, 1.0) * 32767.0) as i16)?;
        }
        w.finalize()?;
        std::fs::rename(&tmp, &path)?;
        bar.inc(1);
    }
    bar.finish();
    println!(
        "wrote {files} files ({:.1} min) to {}",
        files as f64 * 0.5,
        out.display()
    );
    Ok(())
}

/// `seconds` of notes in the range G3..A5 (196-880 Hz).
fn phrase(seconds: f64, rng: &mut SplitMix64) -> Vec<f32> {
    let n = (seconds * RATE as f64) as usize;
    let mut out = vec![0.0f32; n];
    let (mut t, mut note) = (0.0f64, 60.0 + 12.0 * rng.next_f64());
    let mut phase = 0.0f64;
    let mut prev_pitch = note;
    let mut noise_state = 0.0f32;
    while t < seconds - 0.5 {
        let len = 0.25 + 1.5 * rng.next_f64();
        let step =
            [-5.0, -3.0, -2.0, -1.0, 1.0, 2.0, 3.0, 4.0, 7.0, -7.0][(rng.next_u64() % 10) as usize];
        note = (note + step).clamp(55.0, 81.0);
        let peak = 0.15 + 0.6 * rng.next_f64();
        let vib_depth = 0.3 * rng.next_f64();
        let rest = if rng.next_f64() < 0.2 { 0.15 } else { 0.0 };
        let start = (t * RATE as f64) as usize;
        let end = (((t + len) * RATE as f64) as usize).min(n);
        for i in start..end {
            let local = (i - start) as f64 / RATE as f64;
            // Glide from the previous pitch over 60 ms, vibrato after 250 ms.
            let glide = (local / 0.06).min(1.0);
            let vib = vib_depth
                * ((local - 0.25).max(0.0) * 3.0).min(1.0)
                * (std::f64::consts::TAU * 5.5 * local).sin();
            let pitch = prev_pitch + (note - prev_pitch) * glide + vib;
            let f0 = 440.0 * 2f64.powf((pitch - 69.0) / 12.0);
            phase = (phase + f0 / RATE as f64).fract();
            // Attack, swell and release of the note's amplitude.
            let env = (local / 0.05).min(1.0) * ((len - rest - local) / 0.08).clamp(0.0, 1.0);
            let amp = peak * env * (1.0 + 0.2 * (std::f64::consts::PI * local / len).sin());
            let brightness = 0.35 + 0.5 * amp;
            let mut v = 0.0;
            for k in 1..=30 {
                let kf = k as f64;
                if kf * f0 > 0.45 * RATE as f64 {
                    break;
                }
                v += (-(kf - 1.0) / (1.0 + 6.0 * brightness)).exp()
                    * (std::f64::consts::TAU * kf * phase).sin()
                    / kf.sqrt();
            }
            // Breath: low-passed noise following the envelope.
            noise_state = 0.9 * noise_state + 0.1 * (2.0 * rng.next_f64() as f32 - 1.0);
            out[i] = (0.35 * amp * v) as f32 + 0.02 * amp as f32 * noise_state;
        }
        prev_pitch = note;
        t += len;
    }
    out
}
