//! `combiner scaling|lm|recall|images|report|data` (also `cargo xtask combiner ...`): the
//! Combiner experiments (Ren et al., NeurIPS 2021), their report and their corpus.

use clap::Parser;
use combiner::runs::{CombinerWhat, run};

// Training frees and re-requests tensors of a few MB every step; glibc's allocator hands
// such blocks back to the OS and page-faults them in again, mimalloc keeps them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
