//! `combiner scaling|lm|recall|report|data` (also `cargo xtask combiner ...`): the
//! Combiner experiments.
//!
//! - `scaling`: time and peak memory of one forward+backward pass of one attention layer
//!   for L = 256 .. 16,384, each point in a fresh child process (so a peak is that
//!   pass's alone and running out of memory loses one point, not the sweep);
//! - `lm`: byte-level language modelling on the gcide dictionary text, every pattern at
//!   equal parameters and steps, held-out bits per byte;
//! - `recall`: a one-layer model recalling a symbol placed in the first eighth of the
//!   sequence from the last position;
//! - `images`: autoregressive density of Fashion-MNIST pixels, every pattern
//!   (`images.rs`);
//! - `report`: PNG figures and REPORT.md from the result files.
//!
//! Every experiment appends one JSON line per finished point and skips points already
//! recorded with the same settings, so a stopped run resumes where it stopped.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::tasks::{Batch, ByteCorpus, RecallTask, accuracy};
use crate::{AttentionPlan, MultiHeadAttention, Pattern, TransformerLm, default_block};
use anyhow::{Context, bail};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use clap::{Args, Subcommand};
use rand::{SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

use crate::report;
use crate::train_settings;
use crate::training::{
    TrainSettings, Trained, TrainedRun, append_line, progress, read_lines, train,
};

#[derive(Subcommand, Debug)]
pub enum CombinerWhat {
    /// Time and peak memory of one forward+backward pass against sequence length.
    Scaling(ScalingArgs),
    /// One scaling point (run by `scaling` in a child process).
    #[command(hide = true)]
    ScalingPoint(PointArgs),
    /// Byte-level language modelling, every pattern at equal size and steps.
    Lm(LmArgs),
    /// One (pattern, seed) of `lm` (run by it in a child process).
    #[command(hide = true)]
    LmRun(LmRunArgs),
    /// The long-range recall task.
    Recall(RecallArgs),
    /// Autoregressive density of Fashion-MNIST images, every pattern (resumable).
    Images(crate::images::ImagesArgs),
    /// One (pattern, seed) of `images` (run by it in a child process).
    #[command(hide = true)]
    ImageRun(crate::images::ImageRunArgs),
    /// Figures and REPORT.md from the result files.
    Report(report::ReportArgs),
    /// Fetch the byte-level corpus (the 1913 Webster dictionary) into data/text.
    Data(crate::corpus::TextArgs),
}

pub fn run(what: CombinerWhat) -> anyhow::Result<()> {
    match what {
        CombinerWhat::Scaling(a) => scaling(a),
        CombinerWhat::ScalingPoint(a) => scaling_point(a),
        CombinerWhat::Lm(a) => lm(a),
        CombinerWhat::LmRun(a) => lm_run(a),
        CombinerWhat::Recall(a) => recall(a),
        CombinerWhat::Images(a) => crate::images::images(a),
        CombinerWhat::ImageRun(a) => crate::images::image_run(a),
        CombinerWhat::Report(a) => report::run(a),
        CombinerWhat::Data(a) => crate::corpus::run(a),
    }
}

pub(crate) fn patterns_arg(names: &[String]) -> anyhow::Result<Vec<Pattern>> {
    if names.is_empty() {
        return Ok(Pattern::ALL.to_vec());
    }
    names
        .iter()
        .map(|n| {
            Pattern::from_name(n).with_context(|| {
                let all: Vec<_> = Pattern::ALL.iter().map(|p| p.name()).collect();
                format!("unknown pattern {n}; one of {}", all.join(", "))
            })
        })
        .collect()
}

// ----------------------------------------------------------------------------- scaling

#[derive(Args, Debug)]
pub struct ScalingArgs {
    #[arg(long, default_value = "out/combiner")]
    out: PathBuf,
    /// Patterns to measure (all when empty).
    #[arg(long, value_delimiter = ',')]
    patterns: Vec<String>,
    #[arg(long, default_value_t = 256)]
    min_len: usize,
    #[arg(long, default_value_t = 16384)]
    max_len: usize,
    /// Layer width (heads of 16).
    #[arg(long, default_value_t = 32)]
    width: usize,
    #[arg(long, default_value_t = 2)]
    heads: usize,
    /// Stop growing a pattern's L once one pass takes longer than this.
    #[arg(long, default_value_t = 60.0)]
    max_seconds: f64,
    /// Skip full attention where its attention matrices alone would exceed this.
    #[arg(long, default_value_t = 12.0)]
    memory_gb: f64,
}

#[derive(Args, Debug)]
pub struct PointArgs {
    #[arg(long)]
    pattern: String,
    #[arg(long)]
    len: usize,
    #[arg(long)]
    width: usize,
    #[arg(long)]
    heads: usize,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct ScalingPoint {
    pub pattern: String,
    pub len: usize,
    pub width: usize,
    pub heads: usize,
    /// Fastest of the timed forward+backward passes after a first untimed one, seconds.
    pub seconds: f64,
    /// Peak resident memory of the pass above what was resident before it, MB.
    pub peak_mb: f64,
    /// Building the index plan (once per length, not part of the pass), seconds.
    pub plan_seconds: f64,
    /// Attention terms per query (slots), the quantity the cost is linear in.
    pub terms: usize,
}

/// A `/proc/self/status` field in kB (Linux), e.g. `VmRSS:` or the peak `VmHWM:`.
pub(crate) fn status_kb(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn scaling_point(a: PointArgs) -> anyhow::Result<()> {
    let pattern = Pattern::from_name(&a.pattern).context("pattern")?;
    let device = Device::Cpu;
    let started = Instant::now();
    let plan = AttentionPlan::new(pattern, a.len, default_block(a.len), true, &device)?;
    let plan_seconds = started.elapsed().as_secs_f64();
    let terms = plan
        .partitions()
        .iter()
        .map(|p| p.max_terms())
        .sum::<usize>()
        .max(if pattern == Pattern::Full { a.len } else { 0 });
    let vars = VarMap::new();
    let layer = MultiHeadAttention::new(
        a.width,
        a.heads,
        VarBuilder::from_varmap(&vars, DType::F32, &device),
    )?;
    let x = Tensor::randn(0f32, 1.0, (1, a.len, a.width), &device)?;
    let pass = || -> anyhow::Result<()> {
        let y = layer.forward(&plan, &x)?;
        let grads = y.sqr()?.sum_all()?.backward()?;
        drop(grads);
        Ok(())
    };
    // Peak resident memory restarts from the current level (Linux: clear_refs 5); the
    // first pass also touches its memory for the first time, so it is not timed.
    std::fs::write("/proc/self/clear_refs", "5").ok();
    let before = status_kb("VmRSS:").unwrap_or(0.0);
    let t = Instant::now();
    pass()?;
    let first = t.elapsed().as_secs_f64();
    let peak = status_kb("VmHWM:").unwrap_or(0.0);
    // Timed passes reuse warm memory (as training steps do); keep the fastest.
    let reps = if first < 0.5 {
        5
    } else if first < 5.0 {
        3
    } else {
        1
    };
    let mut seconds = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        pass()?;
        seconds = seconds.min(t.elapsed().as_secs_f64());
    }
    let point = ScalingPoint {
        pattern: pattern.name().into(),
        len: a.len,
        width: a.width,
        heads: a.heads,
        seconds,
        peak_mb: (peak - before).max(0.0) / 1024.0,
        plan_seconds,
        terms,
    };
    println!("{}", serde_json::to_string(&point)?);
    Ok(())
}

fn scaling(a: ScalingArgs) -> anyhow::Result<()> {
    let path = a.out.join("scaling.jsonl");
    let done: Vec<ScalingPoint> = read_lines(&path)?;
    let patterns = patterns_arg(&a.patterns)?;
    let mut lens = Vec::new();
    let mut l = a.min_len;
    while l <= a.max_len {
        lens.push(l);
        l *= 2;
    }
    let bar = progress((patterns.len() * lens.len()) as u64, "scaling");
    let exe = std::env::current_exe()?;
    for p in patterns {
        for &len in &lens {
            bar.set_message(format!("{} L={len}", p.name()));
            let recorded = done.iter().find(|d| {
                d.pattern == p.name() && d.len == len && d.width == a.width && d.heads == a.heads
            });
            if let Some(d) = recorded {
                bar.inc(1);
                if d.seconds > a.max_seconds {
                    bar.inc(
                        (lens.len() - lens.iter().position(|&x| x == len).unwrap_or(0) - 1) as u64,
                    );
                    break;
                }
                continue;
            }
            // Full attention keeps about 13 (heads, L, L) f32 matrices alive for backward
            // (measured: 3.3 GB at L = 4096 with 4 heads).
            let full_gb = 13.0 * (a.heads * len * len * 4) as f64 / 1e9;
            if p == Pattern::Full && full_gb > a.memory_gb {
                bar.println(format!(
                    "full attention at L={len} needs about {full_gb:.0} GB (> --memory-gb {}): stopping",
                    a.memory_gb
                ));
                bar.inc((lens.len() - lens.iter().position(|&x| x == len).unwrap_or(0)) as u64);
                break;
            }
            let output = std::process::Command::new(&exe)
                .args(["scaling-point", "--pattern", p.name()])
                .args(["--len", &len.to_string(), "--width", &a.width.to_string()])
                .args(["--heads", &a.heads.to_string()])
                .output()
                .context("starting a scaling point")?;
            if !output.status.success() {
                bar.println(format!(
                    "{} at L={len} failed ({}): {}",
                    p.name(),
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                        .lines()
                        .last()
                        .unwrap_or("")
                ));
                bar.inc((lens.len() - lens.iter().position(|&x| x == len).unwrap_or(0)) as u64);
                break;
            }
            let point: ScalingPoint = serde_json::from_slice(&output.stdout)
                .context("reading a scaling point's output")?;
            if bar.is_hidden() {
                println!(
                    "{} L={len}: {:.3} s, {:.0} MB, {} terms",
                    p.name(),
                    point.seconds,
                    point.peak_mb,
                    point.terms
                );
            }
            append_line(&path, &point)?;
            bar.inc(1);
            if point.seconds > a.max_seconds {
                bar.inc((lens.len() - lens.iter().position(|&x| x == len).unwrap_or(0) - 1) as u64);
                break;
            }
        }
    }
    bar.finish();
    println!("results in {}", path.display());
    Ok(())
}

fn run_patterns(
    experiment: &str,
    path: &Path,
    patterns: Vec<Pattern>,
    settings: &TrainSettings,
    mut next_batch: impl FnMut(&mut StdRng) -> candle_core::Result<Batch>,
    score: impl Fn(&Trained) -> anyhow::Result<f64>,
) -> anyhow::Result<()> {
    let done: HashSet<String> = read_lines::<TrainedRun>(path)?
        .into_iter()
        .filter(|r| &r.settings == settings)
        .map(|r| r.pattern)
        .collect();
    let todo: Vec<Pattern> = patterns
        .into_iter()
        .filter(|p| !done.contains(p.name()))
        .collect();
    println!(
        "{experiment}: {} patterns to train ({} already in {})",
        todo.len(),
        done.len(),
        path.display()
    );
    let bar = progress((todo.len() * settings.steps) as u64, experiment);
    for p in todo {
        bar.set_message(p.name());
        let trained = train(p, settings, 256, &bar, &mut next_batch)?;
        let run = TrainedRun {
            pattern: p.name().into(),
            settings: settings.clone(),
            parameters: trained.parameters,
            score: score(&trained)?,
            curve: trained.curve,
            seconds: trained.seconds,
        };
        if bar.is_hidden() {
            println!(
                "{} {}: score {:.4}, {} parameters, {:.0} s",
                experiment, run.pattern, run.score, run.parameters, run.seconds
            );
        }
        append_line(path, &run)?;
    }
    bar.finish();
    Ok(())
}

/// Runs `(pattern, seed)` pairs of a sweep in child processes, `workers` at a time: each
/// child is this binary's `run` subcommand with the sweep's own arguments (which its
/// arguments flatten) plus `--pattern` and `--seed`; its output goes to `logs`. The sweep
/// must have been started as `combiner <sweep> ...`.
pub fn run_children(
    sweep: &str,
    run: &str,
    todo: &[(u64, Pattern)],
    logs: &Path,
    workers: usize,
) -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() != Some(sweep) {
        bail!(
            "`{sweep}` passes its own arguments on to its runs: run it as `combiner {sweep} ...`"
        );
    }
    let exe = std::env::current_exe()?;
    let bar = progress(todo.len() as u64, sweep);
    let mut pool = job_pool::JobPool::new(workers);
    let mut queue = todo.iter();
    loop {
        while !pool.is_full() {
            let Some(&(seed, p)) = queue.next() else {
                break;
            };
            let mut command = std::process::Command::new(&exe);
            command.arg(run).args(std::env::args().skip(2)).args([
                "--pattern",
                p.name(),
                "--seed",
                &seed.to_string(),
            ]);
            let log = logs.join(format!("{}-seed{seed}.log", p.name()));
            pool.start((p.name(), seed), command, &log)?;
        }
        if pool.is_empty() {
            break;
        }
        bar.set_message(
            pool.running()
                .map(|(p, seed)| format!("{p} seed {seed}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
        for (p, seed) in pool.poll(std::time::Duration::from_secs(1))? {
            bar.inc(1);
            if bar.is_hidden() {
                println!("{p} seed {seed} done");
            }
        }
    }
    bar.finish();
    Ok(())
}

#[derive(Args, Debug)]
pub struct LmArgs {
    #[arg(long, default_value = "out/combiner")]
    out: PathBuf,
    #[arg(long, default_value = "data/text/gcide.txt")]
    corpus: PathBuf,
    #[arg(long, value_delimiter = ',')]
    patterns: Vec<String>,
    /// Bytes of the corpus used (its start); the last 5% of them are held out.
    #[arg(long, default_value_t = 8_000_000)]
    bytes: usize,
    #[arg(long, default_value_t = 1024)]
    len: usize,
    #[arg(long, default_value_t = 64)]
    width: usize,
    #[arg(long, default_value_t = 4)]
    heads: usize,
    #[arg(long, default_value_t = 2)]
    layers: usize,
    #[arg(long, default_value_t = 8)]
    batch: usize,
    #[arg(long, default_value_t = 250)]
    steps: usize,
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    /// Held-out windows scored.
    #[arg(long, default_value_t = 64)]
    eval_windows: usize,
    /// Training seeds (each pattern once per seed).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    seeds: Vec<u64>,
    /// Runs at once: above 1, each (pattern, seed) trains one-threaded in its own process.
    #[arg(long, default_value_t = 1)]
    workers: usize,
}

/// One (pattern, seed) of `lm` (run by it in a child process).
#[derive(Args, Debug)]
pub struct LmRunArgs {
    #[command(flatten)]
    sweep: LmArgs,
    #[arg(long)]
    pattern: String,
    #[arg(long)]
    seed: u64,
}

/// `lm` with more than one worker: the pairs not yet recorded, in child processes.
fn lm_sweep(a: LmArgs) -> anyhow::Result<()> {
    let path = a.out.join("lm.jsonl");
    let done = read_lines::<TrainedRun>(&path)?;
    let todo: Vec<(u64, Pattern)> = a
        .seeds
        .iter()
        .flat_map(|&seed| {
            patterns_arg(&a.patterns)
                .unwrap_or_default()
                .into_iter()
                .map(move |p| (seed, p))
        })
        .filter(|(seed, p)| {
            !done
                .iter()
                .any(|r| r.pattern == p.name() && r.settings == train_settings!(a, *seed))
        })
        .collect();
    println!(
        "lm: {} runs to do ({} recorded in {})",
        todo.len(),
        done.len(),
        path.display()
    );
    run_children("lm", "lm-run", &todo, &a.out.join("lm-logs"), a.workers)?;
    println!("results in {}", path.display());
    Ok(())
}

fn lm(a: LmArgs) -> anyhow::Result<()> {
    if a.workers > 1 {
        patterns_arg(&a.patterns)?;
        return lm_sweep(a);
    }
    let (patterns, seeds) = (a.patterns.clone(), a.seeds.clone());
    for seed in seeds {
        lm_patterns(&a, &patterns, seed)?;
    }
    Ok(())
}

fn lm_run(a: LmRunArgs) -> anyhow::Result<()> {
    lm_patterns(&a.sweep, std::slice::from_ref(&a.pattern), a.seed)
}

/// Trains `patterns` on the byte corpus with `seed`, appending each to `lm.jsonl`.
fn lm_patterns(a: &LmArgs, patterns: &[String], seed: u64) -> anyhow::Result<()> {
    let mut bytes = crate::corpus::read_corpus(&a.corpus)?;
    bytes.truncate(a.bytes);
    let corpus = ByteCorpus::split(bytes, 0.05);
    if corpus.held_out.len() < a.len * 4 {
        bail!(
            "--bytes {} leaves too little held-out text for L = {}",
            a.bytes,
            a.len
        );
    }
    let settings = train_settings!(a, seed);
    let held_out = corpus.held_out_batches(a.batch, a.len, a.eval_windows, &Device::Cpu)?;
    println!(
        "corpus: {:.2} MB training, {:.2} MB held out; {} held-out windows of {}",
        corpus.train.len() as f64 / 1e6,
        corpus.held_out.len() as f64 / 1e6,
        held_out.iter().map(|b| b.inputs.dims()[0]).sum::<usize>(),
        a.len
    );
    let path = a.out.join("lm.jsonl");
    let held_out_bits_per_byte = |t: &Trained| -> anyhow::Result<f64> {
        let (mut nats, mut count) = (0.0, 0.0);
        for b in &held_out {
            let logits = t.model.forward(&t.plan, &b.inputs)?;
            let n = b.weights.sum_all()?.to_scalar::<f32>()? as f64;
            let loss = TransformerLm::loss(&logits, &b.targets, &b.weights)?;
            nats += loss.to_scalar::<f32>()? as f64 * n;
            count += n;
        }
        Ok(nats / count / std::f64::consts::LN_2)
    };
    run_patterns(
        "lm",
        &path,
        patterns_arg(patterns)?,
        &settings,
        |rng| corpus.train_batch(rng, settings.batch, settings.len, &Device::Cpu),
        held_out_bits_per_byte,
    )?;
    println!("results in {}", path.display());
    Ok(())
}

#[derive(Args, Debug)]
pub struct RecallArgs {
    #[arg(long, default_value = "out/combiner")]
    out: PathBuf,
    #[arg(long, value_delimiter = ',')]
    patterns: Vec<String>,
    #[arg(long, default_value_t = 1024)]
    len: usize,
    #[arg(long, default_value_t = 64)]
    width: usize,
    #[arg(long, default_value_t = 4)]
    heads: usize,
    /// One layer: what a single attention layer reaches, without routing through depth.
    #[arg(long, default_value_t = 1)]
    layers: usize,
    #[arg(long, default_value_t = 8)]
    batch: usize,
    #[arg(long, default_value_t = 300)]
    steps: usize,
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    /// Held-out examples scored.
    #[arg(long, default_value_t = 512)]
    eval: usize,
}

fn recall(a: RecallArgs) -> anyhow::Result<()> {
    let task = RecallTask::new(a.len, default_block(a.len));
    let settings = train_settings!(a, 2);
    // Held-out examples come from their own generator.
    let mut eval_rng = StdRng::seed_from_u64(1_000_003);
    let held_out: Vec<Batch> = (0..a.eval.div_ceil(a.batch))
        .map(|_| task.batch(&mut eval_rng, a.batch, &Device::Cpu))
        .collect::<candle_core::Result<_>>()?;
    println!(
        "recall: L = {}, {} copies of a symbol in the first {} positions (never at a block end), {} queries in the last {}, {} symbols (chance {:.3})",
        a.len,
        task.copies,
        a.len / task.early,
        task.query_positions().len(),
        a.len / task.early,
        task.payloads,
        1.0 / task.payloads as f64
    );
    let path = a.out.join("recall.jsonl");
    let held_out_accuracy = |t: &Trained| -> anyhow::Result<f64> {
        let mut hits = 0.0;
        for b in &held_out {
            let logits = t.model.forward(&t.plan, &b.inputs)?;
            hits += accuracy(&logits, b)? * b.inputs.dims()[0] as f64;
        }
        Ok(hits / (held_out.len() * a.batch) as f64)
    };
    run_patterns(
        "recall",
        &path,
        patterns_arg(&a.patterns)?,
        &settings,
        |rng| task.batch(rng, settings.batch, &Device::Cpu),
        held_out_accuracy,
    )?;
    println!("results in {}", path.display());
    Ok(())
}
