//! `subspace sweep|quadratic|report` (also `cargo xtask subspace ...`): the experiments of
//! Larsen et al. (ICLR 2022) and their report.

use clap::Parser;
use subspace::runs::{SubspaceWhat, run};

// Training frees and re-requests tensors of a few MB every step; glibc's allocator hands
// such blocks back to the OS and page-faults them in again (a quarter of a step's time),
// mimalloc keeps them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
