//! `ood [options]` (also `cargo xtask ood ...`): the experiments of Zhang, Goldstein and
//! Ranganath (ICML 2021), figures and REPORT.md.

use clap::Parser;
use ood::runs::{OodArgs, run};

#[derive(Parser)]
#[command(name = "ood", about = "The ood companion (Zhang et al., ICML 2021)")]
struct Cli {
    #[command(flatten)]
    args: OodArgs,
}

fn main() -> anyhow::Result<()> {
    run(Cli::parse().args)
}
