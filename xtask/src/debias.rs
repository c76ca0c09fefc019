//! `cargo xtask debias train`: the word-level transformer language model on the Brown
//! corpus that the debias experiments measure and mitigate (work in progress, issue 9).
//! Every 20th sentence is held out; the rest is one token stream of sentences ended by
//! `<eos>`, cut into random windows.

use std::path::PathBuf;

use anyhow::{Context, bail};
use candle_core::{Device, Tensor};
use clap::{Args, Subcommand};
use combiner::tasks::Batch;
use combiner::{Pattern, TransformerLm};
use debias::vocabulary::Vocabulary;
use rand::Rng;
use serde::Serialize;

use crate::combiner::{TrainSettings, Trained, progress, train};

#[derive(Subcommand, Debug)]
pub enum DebiasWhat {
    /// Train the language model on the Brown corpus; held-out perplexity.
    Train(TrainArgs),
}

pub fn run(what: DebiasWhat) -> anyhow::Result<()> {
    match what {
        DebiasWhat::Train(a) => train_lm(a),
    }
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[arg(long, default_value = "data/text/brown.txt")]
    corpus: PathBuf,
    #[arg(long, default_value = "out/debias")]
    out: PathBuf,
    /// Vocabulary size, including `<unk>` and `<eos>`.
    #[arg(long, default_value_t = 5000)]
    vocab: usize,
    #[arg(long, default_value_t = 64)]
    len: usize,
    #[arg(long, default_value_t = 128)]
    width: usize,
    #[arg(long, default_value_t = 4)]
    heads: usize,
    #[arg(long, default_value_t = 2)]
    layers: usize,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, default_value_t = 1500)]
    steps: usize,
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
}

#[derive(Serialize)]
struct TrainedModel {
    settings: TrainSettings,
    vocabulary: Vec<String>,
    parameters: usize,
    train_words: usize,
    held_out_words: usize,
    held_out_perplexity: f64,
    curve: Vec<(usize, f64)>,
    seconds: f64,
}

/// `count` windows of `len + 1` tokens starting at random places in `stream`.
fn windows(stream: &[u32], starts: &[usize], len: usize) -> candle_core::Result<Batch> {
    let n = starts.len();
    let mut inputs = Vec::with_capacity(n * len);
    let mut targets = Vec::with_capacity(n * len);
    for &s in starts {
        inputs.extend_from_slice(&stream[s..s + len]);
        targets.extend_from_slice(&stream[s + 1..s + len + 1]);
    }
    Ok(Batch {
        inputs: Tensor::from_vec(inputs, (n, len), &Device::Cpu)?,
        targets: Tensor::from_vec(targets, (n, len), &Device::Cpu)?,
        weights: Tensor::ones((n, len), candle_core::DType::F32, &Device::Cpu)?,
    })
}

fn train_lm(a: TrainArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&a.corpus).with_context(|| {
        format!(
            "reading {} (fetch it with `cargo xtask data brown`)",
            a.corpus.display()
        )
    })?;
    let sentences: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if sentences.len() < 100 {
        bail!(
            "{} holds only {} sentences",
            a.corpus.display(),
            sentences.len()
        );
    }
    // Every 20th sentence is held out.
    let held: Vec<&str> = sentences.iter().copied().skip(19).step_by(20).collect();
    let training: Vec<&str> = sentences
        .iter()
        .copied()
        .enumerate()
        .filter(|(i, _)| i % 20 != 19)
        .map(|(_, s)| s)
        .collect();
    let vocabulary = Vocabulary::build(training.iter().copied(), a.vocab);
    let stream =
        |set: &[&str]| -> Vec<u32> { set.iter().flat_map(|s| vocabulary.encode(s)).collect() };
    let (train_stream, held_stream) = (stream(&training), stream(&held));
    println!(
        "brown: {} training and {} held-out tokens, vocabulary {}",
        train_stream.len(),
        held_stream.len(),
        vocabulary.len()
    );
    let settings = TrainSettings {
        len: a.len,
        width: a.width,
        heads: a.heads,
        layers: a.layers,
        batch: a.batch,
        steps: a.steps,
        lr: a.lr,
        warmup: a.steps / 10,
        seed: 3,
    };
    let bar = progress(a.steps as u64, "debias lm");
    let Trained {
        model,
        plan,
        vars,
        curve,
        seconds,
        parameters,
    } = train(Pattern::Full, &settings, vocabulary.len(), &bar, |rng| {
        let starts: Vec<usize> = (0..a.batch)
            .map(|_| rng.random_range(0..train_stream.len() - a.len - 1))
            .collect();
        windows(&train_stream, &starts, a.len)
    })?;
    bar.finish();
    // Held-out perplexity over consecutive windows.
    let starts: Vec<usize> = (0..(held_stream.len() - 1) / a.len)
        .map(|w| w * a.len)
        .collect();
    let (mut nats, mut count) = (0.0, 0.0);
    for chunk in starts.chunks(a.batch) {
        let b = windows(&held_stream, chunk, a.len)?;
        let n = (chunk.len() * a.len) as f64;
        let loss = TransformerLm::loss(&model.forward(&plan, &b.inputs)?, &b.targets, &b.weights)?;
        nats += loss.to_scalar::<f32>()? as f64 * n;
        count += n;
    }
    let perplexity = (nats / count).exp();
    std::fs::create_dir_all(&a.out)?;
    vars.save(a.out.join("model.safetensors"))?;
    let record = TrainedModel {
        settings,
        vocabulary: (0..vocabulary.len() as u32)
            .map(|i| vocabulary.word(i).to_string())
            .collect(),
        parameters,
        train_words: train_stream.len(),
        held_out_words: held_stream.len(),
        held_out_perplexity: perplexity,
        curve,
        seconds,
    };
    std::fs::write(a.out.join("model.json"), serde_json::to_string(&record)?)?;
    println!(
        "held-out perplexity {perplexity:.1} ({parameters} parameters, {seconds:.0} s); saved in {}",
        a.out.display()
    );
    Ok(())
}
