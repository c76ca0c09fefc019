//! `cargo xtask pitch FILE.wav`: the pitch and level of a recording (median f0 of its
//! voiced frames, RMS), optionally checked against an expected pitch, or note by note
//! against the MIDI file it was rendered from. Scripts that record the standalone use it;
//! the model cards use `--midi` on the demo renders.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use newt_features::{PitchConfig, PitchEstimate, resample, track_pitch};

use newt_engine::midi_file::{ScoreNote, read_midi, score_notes};
use newt_features::read_wav;

#[derive(Args, Debug)]
pub struct PitchArgs {
    file: PathBuf,
    /// Fail unless the median pitch is within `--tolerance-cents` of this (Hz).
    #[arg(long)]
    expect_hz: Option<f64>,
    #[arg(long, default_value_t = 10.0)]
    tolerance_cents: f64,
    /// Fail unless the RMS level is above this (dBFS).
    #[arg(long, default_value_t = -60.0, allow_negative_numbers = true)]
    min_rms_db: f64,
    /// The (monophonic) MIDI file the recording was rendered from: report each note's
    /// pitch error (median f0 of its steady part against the key) and fail unless the
    /// median over notes is within `--tolerance-cents`.
    #[arg(long)]
    midi: Option<PathBuf>,
}

pub fn run(args: PitchArgs) -> anyhow::Result<()> {
    let (x, sr) =
        read_wav(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let x16 = resample(&x, sr, 16_000)?;
    let track = track_pitch(&x16, PitchConfig::default())?;
    let mut voiced: Vec<f64> = track
        .iter()
        .filter(|p| p.voiced)
        .map(|p| p.f0_hz as f64)
        .collect();
    voiced.sort_by(f64::total_cmp);
    let rms = (x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt();
    let rms_db = 20.0 * rms.max(1e-12).log10();
    let voiced_share = voiced.len() as f64 / track.len().max(1) as f64;
    let Some(&median) = voiced.get(voiced.len() / 2) else {
        bail!(
            "{}: no pitched frames (RMS {rms_db:.1} dBFS)",
            args.file.display()
        );
    };
    println!(
        "{}: {:.1} s at {sr} Hz, median f0 {median:.2} Hz over {:.0}% voiced frames, RMS {rms_db:.1} dBFS",
        args.file.display(),
        x.len() as f64 / sr as f64,
        100.0 * voiced_share
    );
    if rms_db < args.min_rms_db {
        bail!("too quiet: RMS {rms_db:.1} dBFS < {} dBFS", args.min_rms_db);
    }
    if let Some(midi) = &args.midi {
        let bytes = std::fs::read(midi).with_context(|| format!("reading {}", midi.display()))?;
        let notes = score_notes(&read_midi(&bytes)?);
        let frame_s = PitchConfig::default().hop as f64 / 16_000.0;
        let median = check_against_score(&track, frame_s, &notes)?;
        if median > args.tolerance_cents {
            bail!(
                "median pitch error {median:.2} cents is over {} cents",
                args.tolerance_cents
            );
        }
    }
    if let Some(want) = args.expect_hz {
        let cents = 1200.0 * (median / want).log2();
        println!("pitch error {cents:+.2} cents against {want} Hz");
        if cents.abs() > args.tolerance_cents {
            bail!("pitch {median:.2} Hz is {cents:+.1} cents from {want} Hz");
        }
    }
    Ok(())
}

/// Prints each note's error and returns the median absolute error in cents.
fn check_against_score(
    track: &[PitchEstimate],
    frame_s: f64,
    notes: &[ScoreNote],
) -> anyhow::Result<f64> {
    let mut errors = Vec::new();
    for n in notes {
        let (from, to) = n.steady_span();
        let mut f0: Vec<f64> = track
            .iter()
            .enumerate()
            .filter(|(i, p)| p.voiced && (from..to).contains(&(*i as f64 * frame_s)))
            .map(|(_, p)| p.f0_hz as f64)
            .collect();
        if f0.is_empty() {
            println!(
                "  note {:3} at {:6.2} s: no voiced frames in its steady part",
                n.key, n.start_s
            );
            continue;
        }
        f0.sort_by(f64::total_cmp);
        let got = f0[f0.len() / 2];
        let want = n.hz();
        let cents = 1200.0 * (got / want).log2();
        println!(
            "  note {:3} at {:6.2} s: {got:7.2} Hz, {cents:+6.2} cents",
            n.key, n.start_s
        );
        errors.push(cents.abs());
    }
    if errors.is_empty() {
        bail!("no note of the score sounded");
    }
    let missed = notes.len() - errors.len();
    errors.sort_by(f64::total_cmp);
    let median = errors[errors.len() / 2];
    println!(
        "pitch error against the score: median {median:.2} cents, max {:.2} cents over {} notes ({missed} without voiced frames)",
        errors[errors.len() - 1],
        errors.len()
    );
    if missed > 0 {
        bail!("{missed} notes of the score had no voiced frames");
    }
    Ok(median)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_note_is_measured_in_cents() {
        // Three notes the score calls A4: in tune, then 30 cents flat twice.
        let flat = 440.0 * 2f32.powf(-30.0 / 1200.0);
        let track: Vec<_> = (0..375)
            .map(|i| PitchEstimate {
                f0_hz: if i < 125 { 440.0 } else { flat },
                confidence: 1.0,
                voiced: true,
            })
            .collect();
        let notes: Vec<_> = (0..3)
            .map(|i| ScoreNote {
                key: 69,
                velocity: 0.8,
                start_s: i as f64,
                end_s: i as f64 + 1.0,
            })
            .collect();
        let median = check_against_score(&track, 0.008, &notes).unwrap();
        assert!((median - 30.0).abs() < 0.01, "{median}");
    }
}
