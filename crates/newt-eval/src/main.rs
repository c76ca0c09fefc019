//! `newt-eval eval|timbre|range` (also `cargo xtask eval ...`, `cargo xtask timbre ...`,
//! `cargo xtask range ...`).

use clap::{Parser, Subcommand};
use newt_eval::{eval, range, timbre};

// The DDSP baseline's forward passes allocate tensors of tens of MB; see newt-train's
// binary for why mimalloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "newt-eval", about = "Evaluate NEWT models")]
struct Cli {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Resynthesise held-out segments through the engine and score them.
    Eval(eval::EvalArgs),
    /// Which reference SoundFont instrument each render sounds like (harmonic profiles).
    Timbre(timbre::TimbreArgs),
    /// Whether each model plays worse outside its range map: a grid of notes scored for
    /// pitch and against the reference SoundFont instrument (docs/RANGE.md).
    Range(range::RangeArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().what {
        What::Eval(args) => eval::run(args),
        What::Timbre(args) => timbre::run(args),
        What::Range(args) => range::run(args),
    }
}
