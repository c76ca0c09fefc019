//! `newt-data instruments|synthetic` (also `cargo xtask data instruments|synthetic`): the
//! instrument data sets, rendered from the FluidR3 SoundFont with ground-truth controls,
//! and a synthetic instrument for tests and CPU runs.

use clap::{Parser, Subcommand};
use newt_data::{instrument_set, synthetic};

#[derive(Parser)]
#[command(
    name = "newt-data",
    about = "Instrument data sets for training and evaluation"
)]
struct Cli {
    #[command(subcommand)]
    what: DataWhat,
}

#[derive(Subcommand)]
enum DataWhat {
    /// Violin, flute, trumpet, cello and alto saxophone phrases rendered from the FluidR3
    /// SoundFont with ground-truth pitch and loudness (data/instruments).
    Instruments(instrument_set::InstrumentsArgs),
    /// A synthetic monophonic instrument (WAV files, 44.1 kHz), for tests and CPU runs.
    Synthetic {
        #[arg(long, default_value = "data/synthetic")]
        out: std::path::PathBuf,
        #[arg(long, default_value_t = 10.0)]
        minutes: f64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().what {
        DataWhat::Instruments(args) => instrument_set::run(args),
        DataWhat::Synthetic { out, minutes, seed } => {
            synthetic::write_synthetic(&out, minutes, seed)
        }
    }
}
