//! `combiner data` (`cargo xtask data text`): the byte-level language-modelling corpus,
//! the 1913 Webster dictionary text of Debian `dict-gcide` (about 40 MB), unpacked to
//! `data/text/gcide.txt`.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;

use source_packages::debian_package;

/// Where a text data set goes and where its packages are kept (also `debias data`).
#[derive(Args, Debug)]
pub struct TextArgs {
    #[arg(long, default_value = "data/text")]
    pub out: PathBuf,
    /// Where the downloaded packages are kept.
    #[arg(long, default_value = "data/sources")]
    pub sources: PathBuf,
}

/// The corpus file `data text` writes under `dir`.
pub fn gcide_path(dir: &Path) -> PathBuf {
    dir.join("gcide.txt")
}

pub fn run(args: TextArgs) -> anyhow::Result<()> {
    let target = gcide_path(&args.out);
    if target.exists() {
        println!("{} is already there", target.display());
        return Ok(());
    }
    let root = debian_package("dict-gcide", &args.sources)?;
    let packed = root.join("usr/share/dictd/gcide.dict.dz");
    let file =
        std::fs::File::open(&packed).with_context(|| format!("opening {}", packed.display()))?;
    // dictzip is gzip with random-access metadata in the header; flate2 reads it as gzip.
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut text)
        .with_context(|| format!("decompressing {}", packed.display()))?;
    if text.len() < 1_000_000 {
        bail!("{} holds only {} bytes", packed.display(), text.len());
    }
    std::fs::create_dir_all(&args.out)?;
    let partial = target.with_extension("partial");
    std::fs::write(&partial, &text)?;
    std::fs::rename(&partial, &target)?;
    println!("{}: {:.1} MB", target.display(), text.len() as f64 / 1e6);
    Ok(())
}

/// The corpus, with a clear message when it has not been fetched.
pub fn read_corpus(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "reading {} (fetch it with `cargo xtask data text`)",
            path.display()
        )
    })?;
    if bytes.len() < 100_000 {
        bail!("{} holds only {} bytes", path.display(), bytes.len());
    }
    Ok(bytes)
}
