//! `cargo xtask compare A.wav B.wav`: how far apart two renderings sound (mean absolute
//! difference of their frame log-spectra after aligning time and level;
//! `newt_features::spectral`).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// The reference recording.
    a: PathBuf,
    /// The recording compared with it (resampled to A's rate if needed).
    b: PathBuf,
    /// Largest time offset searched, in milliseconds.
    #[arg(long, default_value_t = 64.0)]
    max_lag_ms: f64,
}

pub fn run(args: CompareArgs) -> anyhow::Result<()> {
    let (a, rate_a) = newt_features::read_wav(&args.a)?;
    let (b, rate_b) = newt_features::read_wav(&args.b)?;
    let b = newt_features::resample(&b, rate_b, rate_a)
        .map_err(|e| anyhow::anyhow!("resampling {}: {e}", args.b.display()))
        .context("comparing")?;
    let max_lag = (args.max_lag_ms * 1e-3 * rate_a as f64).round() as usize;
    let d = newt_features::spectral::log_spectral_distance(&a, &b, max_lag);
    println!(
        "log_spectral_distance_db={:.3} lag_samples={} gain_db={:+.2} ({} vs {})",
        d.mean_abs_db,
        d.lag,
        d.gain_db,
        args.a.display(),
        args.b.display()
    );
    Ok(())
}
