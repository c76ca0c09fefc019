//! `subspace sweep|quadratic|report` (also `cargo xtask subspace ...`): the experiments of
//! Larsen et al. (ICLR 2022) and their report.

use clap::Parser;
use subspace::runs::{SubspaceWhat, run};

#[derive(Parser)]
#[command(
    name = "subspace",
    about = "The subspace companion (Larsen et al., ICLR 2022)"
)]
struct Cli {
    #[command(subcommand)]
    what: SubspaceWhat,
}

fn main() -> anyhow::Result<()> {
    run(Cli::parse().what)
}
