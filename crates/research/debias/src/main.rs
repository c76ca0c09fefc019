//! `debias lm|run|report|data` (also `cargo xtask debias ...`): the debias companion
//! (Liang et al., ICML 2021) on the Brown corpus, its report and its data.

use clap::Parser;
use debias::runs::{DebiasWhat, run};

#[derive(Parser)]
#[command(
    name = "debias",
    about = "The debias companion (Liang et al., ICML 2021)"
)]
struct Cli {
    #[command(subcommand)]
    what: DebiasWhat,
}

fn main() -> anyhow::Result<()> {
    run(Cli::parse().what)
}
