//! `cargo xtask pitch FILE.wav`: the pitch and level of a recording (median f0 of its
//! voiced frames, RMS), optionally checked against an expected pitch. Scripts that
//! record the standalone use it.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use newt_features::{PitchConfig, resample, track_pitch};
use newt_train::dataset::read_wav;

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
}

pub fn run(args: PitchArgs) -> anyhow::Result<()> {
    let (x, sr) =
        read_wav(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let x16 = resample(&x, sr, 16_000).map_err(anyhow::Error::msg)?;
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
    if let Some(want) = args.expect_hz {
        let cents = 1200.0 * (median / want).log2();
        println!("pitch error {cents:+.2} cents against {want} Hz");
        if cents.abs() > args.tolerance_cents {
            bail!("pitch {median:.2} Hz is {cents:+.1} cents from {want} Hz");
        }
    }
    Ok(())
}
