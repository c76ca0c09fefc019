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

use crate::basis::Basis;
use crate::experiment::{BasisKind, Method, SeedRun, Setup};
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
    /// One run of a sweep (started by `sweep` in a worker process).
    #[command(hide = true)]
    Job(JobArgs),
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
    #[arg(long, default_value = "fashion-mnist")]
    pub data: String,
    /// Training examples used (the first N of the training split).
    #[arg(long, default_value_t = 60_000)]
    pub train: usize,
    /// Test examples used.
    #[arg(long, default_value_t = 10_000)]
    pub test: usize,
    /// Minibatch steps of every run (full, burn-in source, subspace and ticket).
    #[arg(long, default_value_t = 4_688)]
    pub steps: usize,
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Adam learning rate in the full space (and of the lottery tickets).
    #[arg(long, default_value_t = 1e-2)]
    pub lr: f64,
    /// Adam learning rate of the subspace coordinates phi.
    #[arg(long, default_value_t = 0.1)]
    pub subspace_lr: f64,
    /// Seeds 1..=N: each has its own initialisation, full run and bases.
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    /// Seeds 1..=N run every method at every d of the grid; the other seeds run only at
    /// the grid's two d that bracket each target's threshold (where the success curve
    /// crosses 1/2), once the grid is complete.
    #[arg(long, default_value_t = 1)]
    pub grid_seeds: u64,
    /// Target train accuracies whose thresholds the extra seeds bracket.
    #[arg(long, value_delimiter = ',', default_value = "0.7,0.8,0.85")]
    pub targets: Vec<f64>,
    /// Training dimensions of random and burn-in subspaces (and of lottery subspaces up
    /// to --lottery-max).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,2,4,8,16,32,64,128,256,512,1024,2048,4096"
    )]
    pub dims: Vec<usize>,
    /// Kept weights of the lottery tickets (the compression D/d of the subspaces).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "16,32,64,128,256,512,1024,2048,4096,8192,16384"
    )]
    pub ticket_dims: Vec<usize>,
    /// Burn-in lengths t (full-space steps before the subspace is drawn).
    #[arg(long, value_delimiter = ',', default_value = "4,16,64,256")]
    pub burn_in: Vec<usize>,
    /// The largest d of burn-in subspaces (they need fewer dimensions than random ones).
    #[arg(long, default_value_t = 1024)]
    pub burn_in_max: usize,
    /// The largest lottery subspace (the trajectory is recorded at least this many times
    /// plus one before the end).
    #[arg(long, default_value_t = 1024)]
    pub lottery_max: usize,
    /// Random bases are the paper's dense Gaussian below this d and sparse (sqrt(D)
    /// non-zeros per column) from it.
    #[arg(long, default_value_t = 1024)]
    pub sparse_from: usize,
}

#[derive(Args, Debug)]
pub struct SweepArgs {
    #[command(flatten)]
    pub settings: SweepSettings,
    #[arg(long, default_value = "data/images")]
    pub images: PathBuf,
    #[arg(long, default_value = "out/subspace")]
    pub out: PathBuf,
    /// Runs at a time, each in its own single-threaded process (a small network's step
    /// uses a second core poorly: two workers do nearly twice the runs of one).
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
}

#[derive(Args, Debug)]
pub struct JobArgs {
    #[arg(long)]
    pub images: PathBuf,
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long)]
    pub seed: u64,
    /// The method's label; absent for the seed's full run.
    #[arg(long)]
    pub method: Option<String>,
    #[arg(long)]
    pub d: Option<usize>,
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
    /// Full runs: `(d, share of the displacement end - init in the top-d lottery
    /// directions)` for the lottery grid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub end_in_lottery: Vec<(usize, f64)>,
}

pub fn run(what: SubspaceWhat) -> anyhow::Result<()> {
    match what {
        SubspaceWhat::Sweep(args) => sweep(args),
        SubspaceWhat::Job(args) => job(args),
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

/// A unit of a sweep: a seed's full run (`method` None, which also leaves the seed's
/// anchors, trajectory and end point for the others) or a method at a dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Job {
    pub seed: u64,
    pub method: Option<Method>,
    pub d: usize,
}

/// The `(method label, d, seed)` of every recorded run.
pub fn done_keys(records: &[RunRecord]) -> BTreeSet<(String, usize, u64)> {
    records
        .iter()
        .map(|r| (r.method.clone(), r.d, r.seed))
        .collect()
}

impl Job {
    /// The `(method label, d, seed)` its record will have ("full" for a full run).
    pub fn key(&self) -> (String, usize, u64) {
        (
            self.method.map_or("full".into(), |m| m.label()),
            self.d,
            self.seed,
        )
    }
}

/// The (method, d) grid every grid seed runs.
fn grid(settings: &SweepSettings) -> Vec<(Method, usize)> {
    let mut grid: Vec<(Method, usize)> =
        settings.dims.iter().map(|d| (Method::Random, *d)).collect();
    for t in &settings.burn_in {
        grid.extend(
            settings
                .dims
                .iter()
                .filter(|d| **d <= settings.burn_in_max)
                .map(|d| (Method::BurnIn(*t), *d)),
        );
    }
    grid.extend(
        settings
            .dims
            .iter()
            .filter(|d| **d <= settings.lottery_max)
            .map(|d| (Method::Lottery, *d)),
    );
    grid.extend(settings.ticket_dims.iter().map(|d| (Method::Ticket, *d)));
    grid
}

/// The grid's d where the grid seeds' success curves cross each target, for each method:
/// both ends of every pair of neighbouring grid points whose success probabilities lie on
/// opposite sides of 1/2, and the threshold itself. For a curve that rises once, that is
/// the threshold and the grid point below it (or the threshold alone at the grid's
/// smallest d); a curve that falls back (a larger d failing) is bracketed there too,
/// which is where more seeds decide whether the threshold stands.
pub fn brackets(settings: &SweepSettings, records: &[RunRecord]) -> Vec<(Method, usize)> {
    let grid = grid(settings);
    let grid_runs: Vec<RunRecord> = records
        .iter()
        .filter(|r| r.seed <= settings.grid_seeds)
        .cloned()
        .collect();
    let mut out = BTreeSet::new();
    let methods: BTreeSet<Method> = grid.iter().map(|g| g.0).collect();
    for method in methods {
        for &target in &settings.targets {
            let curve = success_curve(&runs_of(&grid_runs, &method.label()), target);
            // A threshold at the grid's smallest d (no crossing below it) gets seeds too.
            if let Some(threshold) = threshold_dimension(&curve) {
                out.insert((method, threshold));
            }
            for pair in curve.windows(2) {
                if (pair[0].1 >= 0.5) != (pair[1].1 >= 0.5) {
                    out.insert((method, pair[0].0));
                    out.insert((method, pair[1].0));
                }
            }
        }
    }
    out.into_iter().collect()
}

/// Whether every seed's full run and the grid seeds' whole grid are in `records` (from
/// then on the extra seeds' runs are planned too).
pub fn grid_complete(settings: &SweepSettings, records: &[RunRecord]) -> bool {
    let done = done_keys(records);
    let dim = conv2_layout().len();
    (1..=settings.seeds).all(|seed| done.contains(&("full".into(), dim, seed)))
        && (1..=settings.grid_seeds.min(settings.seeds)).all(|seed| {
            grid(settings)
                .iter()
                .all(|(m, d)| done.contains(&(m.label(), *d, seed)))
        })
}

/// Every job of the sweep that `records` already allow to be planned: each seed's full
/// run, the grid seeds' grid, and, once that grid is complete, the extra seeds at the
/// brackets.
pub fn plan(settings: &SweepSettings, records: &[RunRecord]) -> Vec<Job> {
    let dim = conv2_layout().len();
    let mut jobs: Vec<Job> = (1..=settings.seeds)
        .map(|seed| Job {
            seed,
            method: None,
            d: dim,
        })
        .collect();
    let grid = grid(settings);
    for seed in 1..=settings.grid_seeds.min(settings.seeds) {
        jobs.extend(grid.iter().map(|(m, d)| Job {
            seed,
            method: Some(*m),
            d: *d,
        }));
    }
    if grid_complete(settings, records) {
        let brackets = brackets(settings, records);
        for seed in settings.grid_seeds + 1..=settings.seeds {
            jobs.extend(brackets.iter().map(|(m, d)| Job {
                seed,
                method: Some(*m),
                d: *d,
            }));
        }
    }
    jobs
}

fn check_settings(settings: &SweepSettings) -> anyhow::Result<()> {
    if settings.burn_in.iter().any(|t| *t > settings.steps) {
        bail!("every burn-in length must be at most --steps");
    }
    if settings.grid_seeds == 0 || settings.grid_seeds > settings.seeds {
        bail!("--grid-seeds must be between 1 and --seeds");
    }
    if settings.lottery_max + 1 > settings.steps {
        bail!("--lottery-max needs more --steps than directions");
    }
    Ok(())
}

fn read_settings(out: &Path) -> anyhow::Result<SweepSettings> {
    let path = out.join("settings.json");
    serde_json::from_str(
        &std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("reading {}", path.display()))
}

fn sweep(args: SweepArgs) -> anyhow::Result<()> {
    let settings = args.settings;
    check_settings(&settings)?;
    if args.workers == 0 {
        bail!("--workers must be at least 1");
    }
    std::fs::create_dir_all(args.out.join("logs"))?;
    if args.out.join("settings.json").exists() {
        let old = read_settings(&args.out)?;
        if old != settings {
            bail!(
                "{} holds results made with other settings ({old:?}); choose another --out \
                 or remove it",
                args.out.display()
            );
        }
    } else {
        std::fs::write(
            args.out.join("settings.json"),
            serde_json::to_string_pretty(&settings)?,
        )?;
    }
    let results_path = args.out.join("results.jsonl");
    let first = plan(&settings, &read_records(&results_path)?);
    println!(
        "subspace sweep: Conv-2 (D = {}) on {} ({} train / {} test), {} steps of {}, \
         {} workers; {} runs planned so far (the extra seeds' runs are planned once the \
         grid is complete)",
        conv2_layout().len(),
        settings.data,
        settings.train,
        settings.test,
        settings.steps,
        settings.batch,
        args.workers,
        first.len()
    );
    let bar = indicatif::ProgressBar::new(first.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "subspace [{bar:30}] {pos}/{len} runs {msg} ({elapsed} spent, {eta} left)",
        )
        .expect("valid template"),
    );
    let exe = std::env::current_exe()?;
    let mut pool: job_pool::JobPool<Job> = job_pool::JobPool::new(args.workers);
    let mut reported = 0usize;
    loop {
        let records = read_records(&results_path)?;
        for r in &records[reported.min(records.len())..] {
            if bar.is_hidden() {
                // No terminal (a log file): one line per run instead of the bar.
                println!(
                    "seed {} {} d={}: train {:.3} test {:.3} ({:.1} s)",
                    r.seed, r.method, r.d, r.train_accuracy, r.test_accuracy, r.seconds
                );
            }
        }
        reported = records.len();
        let done = done_keys(&records);
        let planned = plan(&settings, &records);
        let finished = planned.iter().filter(|j| done.contains(&j.key())).count();
        bar.set_length(planned.len() as u64);
        bar.set_position(finished as u64);
        let seed_ready = |seed: u64| done.contains(&("full".into(), conv2_layout().len(), seed));
        let startable: Vec<Job> = planned
            .iter()
            .filter(|j| {
                !done.contains(&j.key())
                    && !pool.is_running(*j)
                    && (j.method.is_none() || seed_ready(j.seed))
            })
            .copied()
            .collect();
        for job in &startable {
            if pool.is_full() {
                break;
            }
            let label = job.key();
            let log = args
                .out
                .join("logs")
                .join(format!("seed{}-{}-d{}.log", job.seed, label.0, job.d));
            let mut command = std::process::Command::new(&exe);
            command
                .arg("job")
                .arg("--images")
                .arg(&args.images)
                .arg("--out")
                .arg(&args.out)
                .arg("--seed")
                .arg(job.seed.to_string());
            if let Some(method) = job.method {
                command
                    .args(["--method", &method.label()])
                    .args(["--d", &job.d.to_string()]);
            }
            pool.start(*job, command, &log)?;
        }
        bar.set_message(
            pool.running()
                .map(|j| format!("seed {} {} d={}", j.seed, j.key().0, j.d))
                .collect::<Vec<_>>()
                .join(", "),
        );
        if pool.is_empty() {
            if finished == planned.len() {
                break;
            }
            bail!("sweep stuck: runs planned but none can start");
        }
        pool.poll(std::time::Duration::from_millis(500))?;
    }
    bar.finish();
    println!("results in {}", results_path.display());
    Ok(())
}

/// Where a seed's full run leaves its anchors, lottery basis and end point.
fn seed_file(out: &Path, seed: u64) -> PathBuf {
    out.join("seeds").join(format!("seed-{seed}.safetensors"))
}

fn save_seed_run(path: &Path, run: &SeedRun) -> anyhow::Result<()> {
    let Basis::Dense(lottery) = &run.lottery else {
        bail!("a lottery basis is dense");
    };
    let mut tensors = std::collections::HashMap::new();
    tensors.insert("theta_init".to_string(), run.theta_init.clone());
    tensors.insert("end".to_string(), run.end.clone());
    tensors.insert("lottery".to_string(), lottery.clone());
    tensors.insert(
        "accuracy".to_string(),
        Tensor::new(&[run.train_accuracy, run.test_accuracy], &Device::Cpu)?,
    );
    for (t, anchor) in &run.anchors {
        tensors.insert(format!("anchor.{t}"), anchor.clone());
    }
    std::fs::create_dir_all(path.parent().context("a seed file has a folder")?)?;
    let partial = path.with_extension("partial");
    candle_core::safetensors::save(&tensors, &partial)?;
    std::fs::rename(&partial, path)?;
    Ok(())
}

fn load_seed_run(path: &Path, burn_in: &[usize]) -> anyhow::Result<SeedRun> {
    let mut tensors = candle_core::safetensors::load(path, &Device::Cpu)
        .with_context(|| format!("reading {}", path.display()))?;
    let mut take = |name: &str| {
        tensors
            .remove(name)
            .with_context(|| format!("{} has no {name}", path.display()))
    };
    let accuracy: Vec<f64> = take("accuracy")?.to_vec1()?;
    let anchors = burn_in
        .iter()
        .map(|t| Ok((*t, take(&format!("anchor.{t}"))?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(SeedRun {
        theta_init: take("theta_init")?,
        end: take("end")?,
        lottery: Basis::Dense(take("lottery")?),
        anchors,
        train_accuracy: accuracy[0],
        test_accuracy: accuracy[1],
    })
}

/// One run, in its own process: the seed's full run (saving what the other runs of the
/// seed need) or a method at a dimension; appends its record to results.jsonl.
fn job(args: JobArgs) -> anyhow::Result<()> {
    let settings = read_settings(&args.out)?;
    let layout = conv2_layout();
    let dim = layout.len();
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
    let sparse = BasisKind::Sparse {
        per_column: (dim as f64).sqrt().ceil() as usize,
    };
    let setup = Setup {
        forward: |theta: &Tensor, x: &Tensor| conv2_forward(&layout, theta, x),
        train: &train,
        test: &test,
        full: TrainConfig {
            steps: settings.steps,
            batch: settings.batch,
            lr: settings.lr,
            seed: args.seed,
        },
        subspace_lr: settings.subspace_lr,
        basis: match args.d {
            Some(d) if d >= settings.sparse_from => sparse,
            _ => BasisKind::Dense,
        },
    };
    let started = Instant::now();
    let seed_path = seed_file(&args.out, args.seed);
    let record = match (args.method.as_deref(), args.d) {
        (None, _) => {
            let seed_run = if seed_path.exists() {
                load_seed_run(&seed_path, &settings.burn_in)?
            } else {
                let theta_init =
                    Tensor::from_vec(init_params(&layout, args.seed), dim, &Device::Cpu)?;
                let run = setup.seed_run(&theta_init, &settings.burn_in, settings.lottery_max)?;
                save_seed_run(&seed_path, &run)?;
                run
            };
            let lottery_dims: Vec<usize> = grid(&settings)
                .into_iter()
                .filter(|g| g.0 == Method::Lottery)
                .map(|g| g.1)
                .collect();
            RunRecord {
                method: "full".into(),
                d: dim,
                seed: args.seed,
                train_accuracy: seed_run.train_accuracy,
                test_accuracy: seed_run.test_accuracy,
                seconds: started.elapsed().as_secs_f64(),
                end_in_lottery: seed_run.end_in_lottery(&lottery_dims)?,
            }
        }
        (Some(label), Some(d)) => {
            let method = Method::parse(label).with_context(|| format!("no method {label}"))?;
            let seed_run = load_seed_run(&seed_path, &settings.burn_in)?;
            // Each (seed, d) draws its own basis and minibatch order.
            let run_seed = args.seed * 1_000_003 + d as u64;
            let (train_accuracy, test_accuracy) = setup.run(&seed_run, method, d, run_seed)?;
            RunRecord {
                method: method.label(),
                d,
                seed: args.seed,
                train_accuracy,
                test_accuracy,
                seconds: started.elapsed().as_secs_f64(),
                end_in_lottery: Vec::new(),
            }
        }
        (Some(_), None) => bail!("a method's run needs --d"),
    };
    // One write of one line in append mode: workers' lines never interleave.
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(args.out.join("results.jsonl"))?;
    out.write_all(format!("{}\n", serde_json::to_string(&record)?).as_bytes())?;
    println!("{record:?}");
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
            end_in_lottery: Vec::new(),
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

    fn small_settings() -> SweepSettings {
        SweepSettings {
            data: "fashion-mnist".into(),
            train: 100,
            test: 100,
            steps: 40,
            batch: 8,
            lr: 1e-2,
            subspace_lr: 0.1,
            seeds: 3,
            grid_seeds: 1,
            targets: vec![0.5, 0.8],
            dims: vec![1, 2, 4, 8, 16],
            ticket_dims: vec![64, 256],
            burn_in: vec![4],
            burn_in_max: 4,
            lottery_max: 8,
            sparse_from: 8,
        }
    }

    #[test]
    fn extra_seeds_run_only_where_the_grid_seeds_success_curves_cross() {
        let settings = small_settings();
        let dim = conv2_layout().len();
        let first = plan(&settings, &[]);
        // Three full runs; seed 1's grid: random 5 d, burn-in 3 (d <= 4), lottery 4 (d <= 8),
        // tickets 2.
        assert_eq!(first.iter().filter(|j| j.method.is_none()).count(), 3);
        assert_eq!(first.len(), 3 + 5 + 3 + 4 + 2);
        assert!(first.iter().all(|j| j.method.is_none() || j.seed == 1));
        // The grid done: random crosses 0.5 at d = 4 and 0.8 at d = 16; the burn-in
        // subspace reaches both at its smallest d; the lottery never reaches 0.8; tickets
        // cross 0.5 at 256.
        let mut records: Vec<RunRecord> =
            (1..=3).map(|seed| record("full", dim, seed, 0.9)).collect();
        for job in &first {
            let Some(method) = job.method else { continue };
            let accuracy = match (method, job.d) {
                // Falls back at the largest d: bracketed there too.
                (Method::Lottery, 8) => 0.3,
                (Method::Random, d) if d >= 16 => 0.85,
                (Method::Random, d) if d >= 4 => 0.6,
                (Method::BurnIn(_), _) => 0.85,
                (Method::Lottery, d) if d >= 2 => 0.7,
                (Method::Ticket, 256) => 0.6,
                _ => 0.2,
            };
            records.push(record(&method.label(), job.d, 1, accuracy));
        }
        let mut expected = vec![
            (Method::Random, 2),
            (Method::Random, 4),
            (Method::Random, 8),
            (Method::Random, 16),
            (Method::BurnIn(4), 1),
            (Method::Lottery, 1),
            (Method::Lottery, 2),
            (Method::Lottery, 4),
            (Method::Lottery, 8),
            (Method::Ticket, 64),
            (Method::Ticket, 256),
        ];
        expected.sort();
        assert_eq!(brackets(&settings, &records), expected);
        let full_plan = plan(&settings, &records);
        for seed in [2, 3] {
            let extra: Vec<(Method, usize)> = full_plan
                .iter()
                .filter(|j| j.seed == seed)
                .filter_map(|j| Some((j.method?, j.d)))
                .collect();
            assert_eq!(extra, expected, "seed {seed}");
        }
        // Before seed 1's grid is complete, nothing is planned for the other seeds.
        records.pop();
        assert_eq!(plan(&settings, &records), first);
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
