//! The experiment runner (`subspace sweep|quadratic|report`, also `cargo xtask subspace ...`): the experiments of Larsen et al. (ICLR 2022) on Conv-2.
//!
//! - `sweep`: success probability against training dimension d for random, burn-in and
//!   lottery subspaces and the lottery-ticket baseline, several seeds per d. Each run is
//!   one JSON line of `results.jsonl`; an interrupted sweep resumes where it stopped.
//! - `quadratic`: the quadratic well, empirical success curve beside Gordon's escape.
//! - `report`: figures (PNG) and `REPORT.md` from the recorded results.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::experiment::{BasisKind, Method, Setup};
use crate::models::{conv2_forward, conv2_layout, init_params};
use crate::quadratic::QuadraticWell;
use crate::threshold::{success_curve, threshold_dimension};
use crate::train::{Labelled, TrainConfig};
use anyhow::{Context, bail};
use candle_core::{Device, Tensor};
use clap::{Args, Subcommand};
use image_data::LabelledImages;
use serde::{Deserialize, Serialize};

use crate::report;

#[derive(Subcommand, Debug)]
pub enum SubspaceWhat {
    /// Train Conv-2 in random, burn-in and lottery subspaces and as lottery tickets over
    /// a grid of d and seeds (resumable; results in OUT/results.jsonl).
    Sweep(SweepArgs),
    /// The quadratic well: empirical success probability against d beside Gordon's
    /// escape prediction (OUT/quadratic.json).
    Quadratic(QuadraticArgs),
    /// Figures and REPORT.md from a sweep's and the quadratic well's results.
    Report(report::ReportArgs),
}

/// The settings a sweep's results depend on; stored beside them so that a resumed
/// sweep cannot mix settings.
#[derive(Args, Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SweepSettings {
    /// `mnist` or `fashion-mnist` (under --images, from `cargo xtask data images`).
    #[arg(long, default_value = "mnist")]
    pub data: String,
    /// Training examples used (the first N of the training split).
    #[arg(long, default_value_t = 4000)]
    pub train: usize,
    /// Test examples used.
    #[arg(long, default_value_t = 2000)]
    pub test: usize,
    /// Minibatch steps of every run (full, burn-in source, subspace and ticket).
    #[arg(long, default_value_t = 300)]
    pub steps: usize,
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Adam learning rate in the full space (and of the lottery tickets).
    #[arg(long, default_value_t = 1e-2)]
    pub lr: f64,
    /// Adam learning rate of the subspace coordinates phi.
    #[arg(long, default_value_t = 0.1)]
    pub subspace_lr: f64,
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    /// Training dimensions of random and burn-in subspaces and of tickets.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "2,4,8,16,32,64,128,256,512,1024"
    )]
    pub dims: Vec<usize>,
    /// Burn-in lengths t (full-space steps before the subspace is drawn).
    #[arg(long, value_delimiter = ',', default_value = "4,16,64,256")]
    pub burn_in: Vec<usize>,
    /// The largest lottery subspace (the trajectory is recorded this many times).
    #[arg(long, default_value_t = 256)]
    pub lottery_max: usize,
    /// Random bases: `dense` (the paper's) or `sparse` (sqrt(D) non-zeros per column).
    #[arg(long, default_value = "dense")]
    pub basis: String,
}

#[derive(Args, Debug)]
pub struct SweepArgs {
    #[command(flatten)]
    pub settings: SweepSettings,
    #[arg(long, default_value = "data/images")]
    pub images: PathBuf,
    #[arg(long, default_value = "out/subspace")]
    pub out: PathBuf,
}

/// One line of `results.jsonl`: a full-space run (`method` = "full", d = D) or a run of
/// a method at dimension d.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub method: String,
    pub d: usize,
    pub seed: u64,
    pub train_accuracy: f64,
    pub test_accuracy: f64,
    /// Wall time of the run, s.
    pub seconds: f64,
}

pub fn run(what: SubspaceWhat) -> anyhow::Result<()> {
    match what {
        SubspaceWhat::Sweep(args) => sweep(args),
        SubspaceWhat::Quadratic(args) => quadratic(args),
        SubspaceWhat::Report(args) => report::report(args),
    }
}

fn labelled(set: &LabelledImages, n: usize) -> anyhow::Result<Labelled> {
    let set = set.first(n);
    if set.len() < n {
        bail!("asked for {n} examples, the split has {}", set.len());
    }
    if (set.rows, set.cols) != (28, 28) {
        bail!("Conv-2 takes 28x28 images, not {}x{}", set.rows, set.cols);
    }
    let x: Vec<f32> = (0..set.len()).flat_map(|i| set.image_f32(i)).collect();
    let y: Vec<u32> = set.labels.iter().map(|l| u32::from(*l)).collect();
    Ok(Labelled {
        x: Tensor::from_vec(x, (set.len(), 1, 28, 28), &Device::Cpu)?,
        y: Tensor::from_vec(y, set.len(), &Device::Cpu)?,
    })
}

pub fn read_records(path: &Path) -> anyhow::Result<Vec<RunRecord>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(path)?;
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(r) => records.push(r),
            // A line cut by an interruption is dropped (its run is redone).
            Err(e) if i + 1 == text.lines().count() => {
                eprintln!(
                    "ignoring the last, incomplete line of {}: {e}",
                    path.display()
                )
            }
            Err(e) => bail!("{} line {}: {e}", path.display(), i + 1),
        }
    }
    Ok(records)
}

/// The (method, d) jobs of one seed.
fn jobs(settings: &SweepSettings) -> anyhow::Result<Vec<(Method, usize)>> {
    let mut methods = vec![Method::Random];
    methods.extend(settings.burn_in.iter().map(|t| Method::BurnIn(*t)));
    methods.extend([Method::Lottery, Method::Ticket]);
    let mut jobs = Vec::new();
    for method in methods {
        let dims: Vec<usize> = match method {
            // The lottery grid: powers of two up to the number of snapshots.
            Method::Lottery => settings
                .dims
                .iter()
                .copied()
                .filter(|d| *d <= settings.lottery_max)
                .collect(),
            _ => settings.dims.clone(),
        };
        jobs.extend(dims.into_iter().map(|d| (method, d)));
    }
    if settings.burn_in.iter().any(|t| *t > settings.steps) {
        bail!("every burn-in length must be at most --steps");
    }
    Ok(jobs)
}

fn sweep(args: SweepArgs) -> anyhow::Result<()> {
    let settings = args.settings;
    std::fs::create_dir_all(&args.out)?;
    let settings_path = args.out.join("settings.json");
    if settings_path.exists() {
        let old: SweepSettings = serde_json::from_str(&std::fs::read_to_string(&settings_path)?)
            .with_context(|| format!("reading {}", settings_path.display()))?;
        if old != settings {
            bail!(
                "{} holds results made with other settings ({old:?}); choose another --out \
                 or remove it",
                args.out.display()
            );
        }
    } else {
        std::fs::write(&settings_path, serde_json::to_string_pretty(&settings)?)?;
    }
    let results_path = args.out.join("results.jsonl");
    let done: BTreeSet<(String, usize, u64)> = read_records(&results_path)?
        .into_iter()
        .map(|r| (r.method, r.d, r.seed))
        .collect();

    let layout = conv2_layout();
    let dim = layout.len();
    let basis = match settings.basis.as_str() {
        "dense" => BasisKind::Dense,
        "sparse" => BasisKind::Sparse {
            per_column: (dim as f64).sqrt().ceil() as usize,
        },
        other => bail!("--basis is dense or sparse, not {other}"),
    };
    let jobs = jobs(&settings)?;
    let pending: Vec<(u64, Vec<(Method, usize)>)> = (1..=settings.seeds)
        .map(|seed| {
            let todo = jobs
                .iter()
                .copied()
                .filter(|(m, d)| !done.contains(&(m.label(), *d, seed)))
                .collect::<Vec<_>>();
            let full_done = done.contains(&("full".to_string(), dim, seed));
            (seed, todo, full_done)
        })
        .filter(|(_, todo, full_done)| !todo.is_empty() || !full_done)
        .map(|(seed, todo, _)| (seed, todo))
        .collect();
    let total: usize = pending.iter().map(|(_, t)| t.len() + 1).sum();
    println!(
        "subspace sweep: Conv-2 (D = {dim}) on {} ({} train / {} test), {} steps of {}; \
         {} runs to do of {}",
        settings.data,
        settings.train,
        settings.test,
        settings.steps,
        settings.batch,
        total,
        settings.seeds as usize * (jobs.len() + 1)
    );
    if total == 0 {
        return Ok(());
    }
    let dir = args.images.join(&settings.data);
    let read = |split| {
        LabelledImages::read_split(&dir, split).with_context(|| {
            format!(
                "reading {} (fetch it with `cargo xtask data images`)",
                dir.display()
            )
        })
    };
    let train = labelled(&read("train")?, settings.train)?;
    let test = labelled(&read("t10k")?, settings.test)?;
    let setup = Setup {
        forward: |theta: &Tensor, x: &Tensor| conv2_forward(&layout, theta, x),
        train: &train,
        test: &test,
        full: TrainConfig {
            steps: settings.steps,
            batch: settings.batch,
            lr: settings.lr,
            seed: 0,
        },
        subspace_lr: settings.subspace_lr,
        basis,
    };

    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "subspace [{bar:30}] {pos}/{len} runs {msg} ({elapsed} spent, {eta} left)",
        )
        .expect("valid template"),
    );
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&results_path)?;
    let mut record = |r: RunRecord| -> anyhow::Result<()> {
        if bar.is_hidden() {
            // No terminal (a log file): one line per run instead of the bar.
            println!(
                "seed {} {} d={}: train {:.3} test {:.3} ({:.1} s)",
                r.seed, r.method, r.d, r.train_accuracy, r.test_accuracy, r.seconds
            );
        }
        writeln!(out, "{}", serde_json::to_string(&r)?)?;
        out.flush()?;
        Ok(())
    };
    for (seed, todo) in pending {
        bar.set_message(format!("seed {seed}: full run"));
        let started = Instant::now();
        let theta_init = Tensor::from_vec(init_params(&layout, seed), dim, &Device::Cpu)?;
        let full = Setup {
            full: TrainConfig { seed, ..setup.full },
            ..setup
        };
        let seed_run = full.seed_run(&theta_init, &settings.burn_in, settings.lottery_max)?;
        if !done.contains(&("full".to_string(), dim, seed)) {
            record(RunRecord {
                method: "full".into(),
                d: dim,
                seed,
                train_accuracy: seed_run.train_accuracy,
                test_accuracy: seed_run.test_accuracy,
                seconds: started.elapsed().as_secs_f64(),
            })?;
        }
        bar.inc(1);
        for (method, d) in todo {
            bar.set_message(format!("seed {seed}: {} d={d}", method.label()));
            let started = Instant::now();
            // Each (seed, d) draws its own basis and minibatch order.
            let run_seed = seed * 1_000_003 + d as u64;
            let (train_accuracy, test_accuracy) = full.run(&seed_run, method, d, run_seed)?;
            record(RunRecord {
                method: method.label(),
                d,
                seed,
                train_accuracy,
                test_accuracy,
                seconds: started.elapsed().as_secs_f64(),
            })?;
            bar.inc(1);
        }
    }
    bar.finish();
    println!("results in {}", results_path.display());
    Ok(())
}

#[derive(Args, Debug)]
pub struct QuadraticArgs {
    /// Dimension D of the well.
    #[arg(long, default_value_t = 60)]
    dim: usize,
    /// Sublevels eps (success: the subspace reaches loss <= eps).
    #[arg(long, value_delimiter = ',', default_value = "0.01,0.1,0.3,0.6")]
    eps: Vec<f64>,
    /// Random subspaces per d.
    #[arg(long, default_value_t = 200)]
    trials: usize,
    /// Monte Carlo samples of the projected Gaussian width.
    #[arg(long, default_value_t = 200)]
    width_samples: usize,
    #[arg(long, default_value = "out/subspace")]
    out: PathBuf,
}

/// The quadratic well's results: for each eps, the success curve over every d, the
/// empirical threshold and Gordon's prediction.
#[derive(Debug, Serialize, Deserialize)]
pub struct QuadraticResult {
    pub dim: usize,
    pub trials: usize,
    pub width_samples: usize,
    pub wells: Vec<QuadraticCurve>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct QuadraticCurve {
    pub eps: f64,
    /// `(d, success probability)` for d = 1..=D.
    pub curve: Vec<(usize, f64)>,
    pub empirical_threshold: Option<usize>,
    pub width: f64,
    /// `D - w^2`.
    pub gordon_threshold: f64,
    pub seconds: f64,
}

fn quadratic(args: QuadraticArgs) -> anyhow::Result<()> {
    let bar = indicatif::ProgressBar::new((args.eps.len() * args.dim) as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("quadratic [{bar:30}] {pos}/{len} {msg}")
            .expect("valid template"),
    );
    let mut wells = Vec::new();
    for &eps in &args.eps {
        let started = Instant::now();
        bar.set_message(format!("eps {eps}"));
        let well = QuadraticWell::log_spaced(args.dim, eps, 2);
        let curve: Vec<(usize, f64)> = (1..=args.dim)
            .map(|d| {
                bar.inc(1);
                (d, well.success_probability(d, args.trials, 7 ^ d as u64))
            })
            .collect();
        let width = well.projected_width(args.width_samples, 3);
        wells.push(QuadraticCurve {
            eps,
            empirical_threshold: threshold_dimension(&curve),
            curve,
            width,
            gordon_threshold: args.dim as f64 - width * width,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    bar.finish();
    for w in &wells {
        println!(
            "eps {}: empirical threshold {:?}, Gordon D - w^2 = {:.1} (w = {:.2})",
            w.eps, w.empirical_threshold, w.gordon_threshold, w.width
        );
    }
    std::fs::create_dir_all(&args.out)?;
    let path = args.out.join("quadratic.json");
    let result = QuadraticResult {
        dim: args.dim,
        trials: args.trials,
        width_samples: args.width_samples,
        wells,
    };
    std::fs::write(&path, serde_json::to_string_pretty(&result)?)?;
    println!("wrote {}", path.display());
    Ok(())
}

/// `(d, train accuracy)` of every run of `method`.
pub fn runs_of(records: &[RunRecord], method: &str) -> Vec<(usize, f64)> {
    records
        .iter()
        .filter(|r| r.method == method)
        .map(|r| (r.d, r.train_accuracy))
        .collect()
}

/// Threshold training dimension of `method` at `target` train accuracy.
pub fn threshold_of(records: &[RunRecord], method: &str, target: f64) -> Option<usize> {
    threshold_dimension(&success_curve(&runs_of(records, method), target))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(method: &str, d: usize, seed: u64, train_accuracy: f64) -> RunRecord {
        RunRecord {
            method: method.into(),
            d,
            seed,
            train_accuracy,
            test_accuracy: train_accuracy - 0.01,
            seconds: 1.0,
        }
    }

    #[test]
    fn the_threshold_counts_only_its_own_method_and_seeds() {
        let mut records = Vec::new();
        for seed in 0..3 {
            // random: d = 4 reaches 0.8 in two seeds of three, d = 8 in all.
            records.push(record("random", 2, seed, 0.5));
            records.push(record("random", 4, seed, if seed < 2 { 0.85 } else { 0.7 }));
            records.push(record("random", 8, seed, 0.9));
            // burn-in-4 fails at d = 8, so one lucky seed at d = 4 does not count.
            records.push(record(
                "burn-in-4",
                4,
                seed,
                if seed == 0 { 0.9 } else { 0.1 },
            ));
            records.push(record("burn-in-4", 8, seed, 0.1));
        }
        assert_eq!(threshold_of(&records, "random", 0.8), Some(4));
        assert_eq!(threshold_of(&records, "random", 0.88), Some(8));
        assert_eq!(threshold_of(&records, "burn-in-4", 0.8), None);
        assert_eq!(runs_of(&records, "random").len(), 9);
    }

    #[test]
    fn an_interrupted_last_line_is_dropped_and_a_corrupt_middle_line_is_an_error() {
        let dir = std::env::temp_dir().join(format!("subspace-runs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("results.jsonl");
        let line = serde_json::to_string(&record("random", 4, 0, 0.9)).unwrap();
        std::fs::write(&path, format!("{line}\n{line}\n{{\"method\": \"ran")).unwrap();
        assert_eq!(read_records(&path).unwrap().len(), 2);
        std::fs::write(&path, format!("{line}\nnot json\n{line}\n")).unwrap();
        assert!(
            read_records(&path)
                .unwrap_err()
                .to_string()
                .contains("line 2")
        );
        assert!(read_records(&dir.join("missing.jsonl")).unwrap().is_empty());
    }
}
