//! `ood known|model|report` (also `cargo xtask ood ...`): the experiments of Zhang, Goldstein and
//! Ranganath (ICML 2021), figures and REPORT.md.

use clap::Parser;
use ood::runs::{OodWhat, run};

// Training frees and re-requests tensors of a few MB every step; glibc's allocator hands
// such blocks back to the OS and page-faults them in again, mimalloc keeps them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "ood", about = "The ood companion (Zhang et al., ICML 2021)")]
struct Cli {
    #[command(subcommand)]
    what: OodWhat,
}

fn main() -> anyhow::Result<()> {
    run(Cli::parse().what)
}
