//! Project commands: `cargo xtask render`, `cargo xtask bench engine`,
//! `cargo xtask demo-midi` (regenerates the committed demo melody).

mod bench;
mod demo;
mod eval;
mod midi;
mod plot;
mod render;
mod synthetic;
mod training;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "NEWT project commands")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Render a controls CSV (f0_hz,loudness_db per frame) or a monophonic MIDI file to
    /// WAV. With no input, renders the bundled demo melody.
    Render(render::RenderArgs),
    /// Benchmarks; `bench engine` prints `fastnewt_rtf=X mlp_rtf=Y poly16_48k_core_fraction=Z`.
    Bench {
        #[command(subcommand)]
        what: bench::BenchWhat,
    },
    /// Resynthesise held-out segments through the engine and score them.
    Eval(eval::EvalArgs),
    /// Train a model from a folder of WAV files (NEWT, or the DDSP baseline).
    Train(training::TrainArgs),
    /// Fetch or generate data sets into data/ (ignored by git).
    Data {
        #[command(subcommand)]
        what: DataWhat,
    },
    /// Regenerate assets/demo/demo.mid, the demo melody.
    DemoMidi {
        #[arg(long, default_value = "assets/demo/demo.mid")]
        out: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum DataWhat {
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
    // Commands run from the workspace root whatever the caller's directory.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::env::set_current_dir(&root)?;
    match Cli::parse().command {
        Command::Render(args) => render::run(args),
        Command::Bench { what } => bench::run(what),
        Command::DemoMidi { out } => demo::write_demo_midi(&out),
        Command::Train(args) => training::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Data { what } => match what {
            DataWhat::Synthetic { out, minutes, seed } => {
                synthetic::write_synthetic(&out, minutes, seed)
            }
        },
    }
}
