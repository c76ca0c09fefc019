//! `combiner images`: autoregressive density of Fashion-MNIST images (784 pixels in raster
//! order, a start token, a 256-way softmax per pixel) with the same small transformer for
//! every attention pattern, blocks and rows of 28 so that they follow the image rows.
//!
//! Each (pattern, seed) trains in a child process of its own (`combiner image-run`), so
//! its peak resident memory is its own; it is scored on test images at equal fractions
//! of training (held-out bits/dim at equal steps and, through the recorded training time,
//! at equal wall-clock time) and appends one JSON line to `images.jsonl`. Runs already
//! recorded with the same settings are skipped, so a stopped sweep resumes.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use candle_core::Device;
use clap::Args;
use image_data::LabelledImages;
use serde::{Deserialize, Serialize};

use crate::tasks::{Batch, PixelSequences};
use crate::training::{TrainSettings, append_line, read_lines, train_observed};
use crate::{AttentionPlan, Pattern, TransformerLm};

/// What the sweep and each of its runs are given.
#[derive(Args, Debug, Clone)]
pub struct ImagesArgs {
    #[arg(long, default_value = "data/images")]
    pub images: PathBuf,
    #[arg(long, default_value = "out/combiner")]
    pub out: PathBuf,
    /// Patterns (all when empty).
    #[arg(long, value_delimiter = ',')]
    pub patterns: Vec<String>,
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub seeds: Vec<u64>,
    #[arg(long, default_value_t = 64)]
    pub width: usize,
    #[arg(long, default_value_t = 4)]
    pub heads: usize,
    #[arg(long, default_value_t = 2)]
    pub layers: usize,
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    #[arg(long, default_value_t = 2000)]
    pub steps: usize,
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f64,
    /// Fixed's block and Axial's row: an image row.
    #[arg(long, default_value_t = 28)]
    pub block: usize,
    /// Fashion-MNIST training images used (the first N).
    #[arg(long, default_value_t = 60_000)]
    pub train: usize,
    /// Test images scored.
    #[arg(long, default_value_t = 500)]
    pub eval: usize,
    /// Held-out scores during training, at equal fractions of it (the last at the end).
    #[arg(long, default_value_t = 4)]
    pub evals: usize,
    /// Runs at once, each one-threaded when more than one (not a setting of the runs:
    /// only their seconds depend on it).
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
}

#[derive(Args, Debug)]
pub struct ImageRunArgs {
    #[command(flatten)]
    pub sweep: ImagesArgs,
    #[arg(long)]
    pub pattern: String,
    #[arg(long)]
    pub seed: u64,
}

/// One line of `images.jsonl`.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct ImageRun {
    pub pattern: String,
    pub settings: TrainSettings,
    pub train_images: usize,
    pub eval_images: usize,
    pub parameters: usize,
    /// Training loss (nats per pixel), 25-step means.
    pub curve: Vec<(usize, f64)>,
    /// `(steps, training seconds so far, test bits/dim)`.
    pub held_out: Vec<(usize, f64, f64)>,
    /// Test bits/dim at the end.
    pub bits_per_dim: f64,
    /// Wall-clock seconds of training alone, and per step.
    pub seconds: f64,
    pub seconds_per_step: f64,
    /// Peak resident memory of the run above what was resident before training, MB.
    pub peak_mb: f64,
}

const LEN: usize = 784;

fn settings(a: &ImagesArgs, seed: u64) -> TrainSettings {
    TrainSettings {
        len: LEN,
        width: a.width,
        heads: a.heads,
        layers: a.layers,
        batch: a.batch,
        steps: a.steps,
        lr: a.lr,
        warmup: a.steps / 10,
        seed,
        block: Some(a.block),
    }
}

/// The steps at which the held-out score is taken: `evals` equal fractions.
pub fn eval_steps(steps: usize, evals: usize) -> Vec<usize> {
    let evals = evals.max(1);
    let mut at: Vec<usize> = (1..=evals).map(|i| (steps * i / evals).max(1)).collect();
    at.dedup();
    at
}

fn pixels(dir: &Path, split: &str, n: usize) -> anyhow::Result<PixelSequences> {
    let set = LabelledImages::read_split(dir, split).with_context(|| {
        format!(
            "reading {} (fetch it with `cargo xtask data images`)",
            dir.display()
        )
    })?;
    if set.rows * set.cols != LEN {
        bail!("images of {}x{}, not 28x28", set.rows, set.cols);
    }
    let n = n.min(set.len());
    Ok(PixelSequences::new(set.pixels[..n * LEN].to_vec(), LEN))
}

/// Test bits/dim of `model` over `batches`.
fn bits_per_dim(
    model: &TransformerLm,
    plan: &AttentionPlan,
    batches: &[Batch],
) -> anyhow::Result<f64> {
    let (mut nats, mut count) = (0.0, 0.0);
    for b in batches {
        let logits = model.forward(plan, &b.inputs)?;
        let n = b.weights.sum_all()?.to_scalar::<f32>()? as f64;
        nats +=
            TransformerLm::loss(&logits, &b.targets, &b.weights)?.to_scalar::<f32>()? as f64 * n;
        count += n;
    }
    Ok(nats / count / std::f64::consts::LN_2)
}

/// One (pattern, seed): train, score, append the record.
pub fn image_run(a: ImageRunArgs) -> anyhow::Result<()> {
    let pattern = Pattern::from_name(&a.pattern).context("unknown pattern")?;
    let s = &a.sweep;
    let dir = s.images.join("fashion-mnist");
    let train_set = pixels(&dir, "train", s.train)?;
    let test_set = pixels(&dir, "t10k", s.eval)?;
    let test = test_set.batches(s.batch, s.eval, &Device::Cpu)?;
    let settings = settings(s, a.seed);
    // Peak resident memory restarts from the current level (Linux: clear_refs 5).
    std::fs::write("/proc/self/clear_refs", "5").ok();
    let before = crate::runs::status_kb("VmRSS:").unwrap_or(0.0);
    let mut held_out = Vec::new();
    let bar = indicatif::ProgressBar::hidden();
    let trained = train_observed(
        pattern,
        &settings,
        PixelSequences::VOCAB,
        &bar,
        |rng| train_set.random_batch(rng, settings.batch, &Device::Cpu),
        &eval_steps(settings.steps, s.evals),
        |step, model, plan, seconds| {
            let bpd = bits_per_dim(model, plan, &test)?;
            println!(
                "{} seed {}: step {step}, {seconds:.0} s, {bpd:.3} bits/dim",
                pattern.name(),
                a.seed
            );
            held_out.push((step, seconds, bpd));
            Ok(())
        },
    )?;
    let peak = crate::runs::status_kb("VmHWM:").unwrap_or(0.0);
    let run = ImageRun {
        pattern: pattern.name().into(),
        settings,
        train_images: train_set.images(),
        eval_images: test_set.images(),
        parameters: trained.parameters,
        curve: trained.curve,
        bits_per_dim: held_out.last().map_or(f64::NAN, |h| h.2),
        held_out,
        seconds: trained.seconds,
        seconds_per_step: trained.seconds / s.steps.max(1) as f64,
        peak_mb: (peak - before).max(0.0) / 1024.0,
    };
    append_line(&s.out.join("images.jsonl"), &run)?;
    Ok(())
}

/// Every (pattern, seed) not yet recorded with these settings, each in a child process.
pub fn images(a: ImagesArgs) -> anyhow::Result<()> {
    let path = a.out.join("images.jsonl");
    let patterns = crate::runs::patterns_arg(&a.patterns)?;
    let done: Vec<ImageRun> = read_lines(&path)?;
    let todo: Vec<(u64, Pattern)> = a
        .seeds
        .iter()
        .flat_map(|seed| patterns.iter().map(move |p| (*seed, *p)))
        .filter(|(seed, p)| {
            !done.iter().any(|r| {
                r.pattern == p.name()
                    && r.settings == settings(&a, *seed)
                    && r.train_images == a.train
                    && r.eval_images == a.eval
            })
        })
        .collect();
    println!(
        "images: {} runs to do ({} recorded in {})",
        todo.len(),
        done.len(),
        path.display()
    );
    crate::runs::run_children(
        "images",
        "image-run",
        &todo,
        &a.out.join("image-logs"),
        a.workers,
    )?;
    println!("results in {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_out_scores_come_at_equal_fractions_and_at_the_end() {
        assert_eq!(eval_steps(2000, 4), [500, 1000, 1500, 2000]);
        assert_eq!(eval_steps(3, 4), [1, 2, 3]);
        assert_eq!(eval_steps(10, 0), [10]);
    }
}
