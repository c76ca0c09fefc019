//! `image-data` (also `cargo xtask data images`): Fashion-MNIST and MNIST as IDX files in
//! data/images, for the subspace and ood companions.

use clap::Parser;
use image_data::download::{ImagesArgs, run};

#[derive(Parser)]
#[command(
    name = "image-data",
    about = "Fetch Fashion-MNIST and MNIST into data/images"
)]
struct Cli {
    #[command(flatten)]
    args: ImagesArgs,
}

fn main() -> anyhow::Result<()> {
    run(Cli::parse().args)
}
