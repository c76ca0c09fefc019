//! `newt-import`: the NEWT authors' trained checkpoints into this project's model file.
//!
//! ```sh
//! newt-import nws --checkpoint-dir assets/nws/checkpoints/vn --instrument "violin (URMP, NEWT authors)" --out violin.safetensors
//! newt-import nws-all                    # assets/nws/checkpoints/{vn,fl,tpt} -> assets/models/*-urmp.safetensors
//! newt-import trim-golden --from /work/shared/reference/nws/golden --out assets/nws/golden
//! ```

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use newt_model::NewtModel;
use newt_train::import;

#[derive(Parser)]
#[command(
    name = "newt-import",
    about = "Import the NEWT authors' checkpoints (neural-waveshaping-synthesis, MPL-2.0)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Import one checkpoint folder (last.ckpt, data_mean.npy, data_std.npy).
    Nws {
        #[arg(long)]
        checkpoint_dir: PathBuf,
        /// The model's display name, e.g. "violin (URMP, NEWT authors)".
        #[arg(long)]
        instrument: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Import vn, fl and tpt into violin-urmp, flute-urmp and trumpet-urmp.safetensors.
    NwsAll {
        #[arg(long, default_value = "assets/nws/checkpoints")]
        from: PathBuf,
        #[arg(long, default_value = "assets/models")]
        out_dir: PathBuf,
    },
    /// Copy the tensors the project keeps from the reference golden files (and the
    /// controls, WAVs and README) into a smaller folder.
    TrimGolden {
        #[arg(long)]
        from: PathBuf,
        #[arg(long, default_value = "assets/nws/golden")]
        out: PathBuf,
    },
}

fn summary(path: &std::path::Path, model: &NewtModel) {
    let m = &model.meta;
    println!(
        "{}: {:?}, f0 {:.3} +- {:.3} Hz, loudness {:.3} +- {:.3} authors' dB, \
         {} steps, {} values",
        path.display(),
        m.instrument,
        m.f0_mean_hz,
        m.f0_std_hz,
        m.loudness_mean_db,
        m.loudness_std_db,
        m.training_steps,
        newt_model::NewtWeights::parameter_count(m),
    );
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Nws {
            checkpoint_dir,
            instrument,
            out,
        } => {
            let model = import::import_nws_dir(&checkpoint_dir, &instrument)
                .with_context(|| format!("importing {}", checkpoint_dir.display()))?;
            model.save(&out)?;
            summary(&out, &model);
        }
        Command::NwsAll { from, out_dir } => {
            for (path, model) in import::import_nws_all(&from, &out_dir)? {
                summary(&path, &model);
            }
        }
        Command::TrimGolden { from, out } => {
            for path in import::trim_golden(&from, &out)? {
                let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                println!("{} ({size} bytes)", path.display());
            }
        }
    }
    Ok(())
}
