//! `combiner scaling|lm|recall|report|data` (also `cargo xtask combiner ...`): the
//! Combiner experiments (Ren et al., NeurIPS 2021), their report and their corpus.

use clap::Parser;
use combiner::runs::{CombinerWhat, run};

#[derive(Parser)]
#[command(
    name = "combiner",
    about = "The combiner companion (Ren et al., NeurIPS 2021)"
)]
struct Cli {
    #[command(subcommand)]
    what: CombinerWhat,
}

fn main() -> anyhow::Result<()> {
    run(Cli::parse().what)
}
