//! `ood known|model|report` (also `cargo xtask ood ...`): the experiments of Zhang,
//! Goldstein and Ranganath (ICML 2021).
//!
//! - `known`: the arguments on densities known exactly (Gaussians, the near-perfect
//!   mixture, the no-free-lunch construction): `known.json`.
//! - `model`: a density model of Fashion-MNIST and its background model for the
//!   likelihood ratio, trained with resumable checkpoints (and a copy of the weights at
//!   each stage of fit), scored on Fashion-MNIST test against MNIST with every score,
//!   each stage scored by likelihood: `<model>.json`.
//! - `report`: REPORT.md and the figures from those files alone, byte for byte.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::auroc::{auroc, roc_curve};
use crate::flow::{Coupling, Flow, FlowConfig};
use crate::gaussian::{GaussianRow, IsoGaussian, gaussian_row};
use crate::mixture::{MixturePoint, auroc_vs_kl};
use crate::no_free_lunch::{GaussianToy, adversarial_out_scores};
use crate::pixel_ar::{PixelAr, PixelArConfig};
use crate::scores::{Evidence, Score, batch_typicality, entropy_estimate, ood_scores};
use crate::train::{ImageDensity, Pixels, TrainConfig, bits_per_dim, log_likelihoods, train_model};
use anyhow::{Context, bail};
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use clap::{Args, Subcommand};
use image_data::LabelledImages;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

#[derive(Subcommand, Debug)]
pub enum OodWhat {
    /// The known-density experiments (RESULTS/known.json).
    Known(KnownArgs),
    /// Train (or resume) a density model and its background model, and score them
    /// (RESULTS/<model>.json).
    Model(ModelArgs),
    /// REPORT.md and the figures from RESULTS/*.json.
    Report(crate::report::ReportArgs),
}

pub fn run(what: OodWhat) -> anyhow::Result<()> {
    match what {
        OodWhat::Known(args) => known(args),
        OodWhat::Model(args) => model(args),
        OodWhat::Report(args) => crate::report::report(args),
    }
}

/// Where results files go unless told otherwise.
pub const RESULTS: &str = "crates/research/ood/results";

#[derive(Args, Debug)]
pub struct KnownArgs {
    #[arg(long, default_value = RESULTS)]
    results: PathBuf,
}

#[derive(Args, Debug)]
pub struct ModelArgs {
    #[arg(long, default_value = "data/images")]
    images: PathBuf,
    /// Checkpoints (OUT/<model>/).
    #[arg(long, default_value = "out/ood")]
    out: PathBuf,
    #[arg(long, default_value = RESULTS)]
    results: PathBuf,
    #[command(flatten)]
    settings: ModelSettings,
    /// Train the model and its background model side by side, each one-threaded in its
    /// own process (2), or one after the other on every core (1).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Only train this one (`model` or `background`) and stop (what each worker runs).
    #[arg(long, hide = true)]
    part: Option<String>,
}

/// The settings a trained model depends on (a checkpoint made with others is refused).
#[derive(Args, Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelSettings {
    /// `pixel-ar` (autoregressive, local causal neighbourhood, shared weights) or `flow`
    /// (multi-scale, convolutional couplings).
    #[arg(long, default_value = "flow")]
    pub model: String,
    /// The flow's coupling nets: `conv` (local, shared weights) or `dense` (over the whole
    /// image); results and checkpoints of a dense flow are named `flow-dense`.
    #[arg(long, value_enum, default_value = "conv")]
    #[serde(default)]
    pub coupling: Coupling,
    /// Neighbourhood radius of `pixel-ar`, pixels.
    #[arg(long, default_value_t = 3)]
    pub radius: usize,
    /// Hidden width: of the pixel model's MLP, or of the flow's coupling nets at its first
    /// level (channels or units; doubled at the second).
    #[arg(long, default_value_t = 64)]
    pub hidden: usize,
    /// The flow's steps per level.
    #[arg(long, default_value_t = 8)]
    pub steps_per_scale: usize,
    /// Fashion-MNIST training images used (the first N; the last 2,000 of the split are
    /// held out for the typicality test's entropy).
    #[arg(long, default_value_t = 58_000)]
    pub train: usize,
    /// Training steps of each model.
    #[arg(long, default_value_t = 12_000)]
    pub steps: usize,
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Pixel replacement rate of the background model's inputs (Ren et al. use 0.1-0.3).
    #[arg(long, default_value_t = 0.2)]
    pub perturb: f64,
    /// Test images scored from each data set.
    #[arg(long, default_value_t = 2000)]
    pub eval: usize,
    /// Steps at which the model's weights are kept and scored: its stages of fit (the
    /// last step is always one).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "250,500,1000,2000,4000,8000"
    )]
    pub stages: Vec<usize>,
}

impl ModelSettings {
    /// The name of the model's checkpoints folder and results file: `pixel-ar`, `flow` or
    /// `flow-dense`.
    pub fn name(&self) -> String {
        match (self.model.as_str(), self.coupling) {
            ("flow", Coupling::Dense) => "flow-dense".into(),
            (model, _) => model.into(),
        }
    }

    /// The same settings with the ones the chosen model ignores at fixed values, so that
    /// they do not decide whether a checkpoint is resumed.
    fn normalised(mut self) -> Self {
        match self.model.as_str() {
            "flow" => self.radius = 0,
            _ => {
                self.steps_per_scale = 0;
                self.coupling = Coupling::default();
            }
        }
        self.stages.retain(|s| *s < self.steps);
        self.stages.push(self.steps);
        self.stages.sort();
        self.stages.dedup();
        self
    }
}

const HELD_OUT: usize = 2000;
const CHECKPOINT_EVERY: usize = 250;

#[derive(Serialize, Deserialize, Default)]
struct Progress {
    settings: Option<ModelSettings>,
    step: usize,
    /// `(step, minibatch bits/dim)`.
    curve: Vec<(usize, f64)>,
    seconds: f64,
}

/// A density model of either kind, with its variables.
pub enum Model {
    Flow(Flow),
    PixelAr(PixelAr),
}

impl Model {
    pub fn new(settings: &ModelSettings, vars: &VarMap) -> anyhow::Result<Self> {
        let vb = VarBuilder::from_varmap(vars, DType::F32, &Device::Cpu);
        Ok(match settings.model.as_str() {
            "flow" => Model::Flow(Flow::new(
                FlowConfig {
                    rows: 28,
                    cols: 28,
                    scales: 2,
                    steps_per_scale: settings.steps_per_scale,
                    hidden: settings.hidden,
                    coupling: settings.coupling,
                    alpha: 0.05,
                },
                vb,
            )?),
            "pixel-ar" => Model::PixelAr(PixelAr::new(
                PixelArConfig {
                    rows: 28,
                    cols: 28,
                    radius: settings.radius,
                    hidden: settings.hidden,
                },
                vb,
            )?),
            other => bail!("--model is pixel-ar or flow, not {other}"),
        })
    }

    pub fn density(&self) -> &dyn ImageDensity {
        match self {
            Model::Flow(f) => f,
            Model::PixelAr(m) => m,
        }
    }
}

/// Trains (or resumes) `name` under `dir`, keeping the plain model's weights at every
/// stage of fit (`<name>-stage-<step>.safetensors`); returns the model and its progress.
fn trained_model(
    settings: &ModelSettings,
    dir: &Path,
    name: &str,
    data: &Pixels,
    perturb: Option<f64>,
) -> anyhow::Result<(Model, VarMap, Progress)> {
    let mut vars = VarMap::new();
    let model = Model::new(settings, &vars)?;
    let weights = dir.join(format!("{name}.safetensors"));
    let progress_path = dir.join(format!("{name}.json"));
    let mut progress = Progress::default();
    if progress_path.exists() {
        let saved: Progress = serde_json::from_str(&std::fs::read_to_string(&progress_path)?)
            .with_context(|| format!("reading {}", progress_path.display()))?;
        if saved.settings.as_ref() == Some(settings) {
            vars.load(&weights)
                .with_context(|| format!("loading {}", weights.display()))?;
            progress = saved;
        } else {
            println!("{name}: settings changed, training from the start");
        }
    }
    progress.settings = Some(settings.clone());
    if progress.step >= settings.steps {
        return Ok((model, vars, progress));
    }
    let bar = indicatif::ProgressBar::new(settings.steps as u64);
    bar.set_position(progress.step as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{name} [{{bar:30}}] {{pos}}/{{len}} steps {{msg}} ({{eta}} left)"
        ))
        .expect("valid template"),
    );
    let config = TrainConfig {
        batch: settings.batch,
        lr: settings.lr,
        seed: if perturb.is_some() { 2 } else { 1 },
        perturb,
    };
    // Training time is the sum of the steps' own durations (checkpoints excluded).
    let mut last = Instant::now();
    let (mut mean, mut count) = (0.0, 0);
    train_model(
        model.density(),
        &vars,
        data,
        config,
        progress.step..settings.steps,
        |step, bpd| {
            progress.seconds += last.elapsed().as_secs_f64();
            mean += bpd;
            count += 1;
            bar.inc(1);
            let done = step + 1;
            // Stages of fit are the model's (the background model's are never scored).
            if perturb.is_none() && settings.stages.contains(&done) {
                vars.save(dir.join(format!("{name}-stage-{done}.safetensors")))?;
            }
            if done % CHECKPOINT_EVERY == 0 || done == settings.steps {
                let m = mean / count as f64;
                bar.set_message(format!("{m:.3} bits/dim"));
                if bar.is_hidden() {
                    println!("{name} step {done}: {m:.3} bits/dim");
                }
                progress.curve.push((done, m));
                (mean, count) = (0.0, 0);
                vars.save(&weights)?;
                progress.step = done;
                let json = serde_json::to_string_pretty(&progress)
                    .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
                std::fs::write(&progress_path, json)?;
            }
            last = Instant::now();
            Ok(())
        },
    )?;
    bar.finish();
    Ok((model, vars, progress))
}

/// One score's result on Fashion-MNIST test (in) against MNIST (out).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ScoreResult {
    pub score: String,
    pub auroc: f64,
    /// AUROC against the no-free-lunch out-distribution built from Fashion-MNIST test.
    pub adversarial_auroc: f64,
    /// The ROC curve, `(false positive rate, true positive rate)`, at most 201 points.
    pub roc: Vec<(f64, f64)>,
}

/// Trains the model and the background model at once, each in a child process (this
/// binary with `--part`), each with its log in `dir`; they resume from their checkpoints.
fn train_side_by_side(args: &ModelArgs, dir: &Path) -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() != Some("model") {
        bail!("`model` passes its own arguments on to its parts: run it as `ood model ...`");
    }
    let exe = std::env::current_exe()?;
    let mut pool = job_pool::JobPool::new(args.workers);
    for part in ["model", "background"] {
        let mut command = std::process::Command::new(&exe);
        command
            .args(std::env::args().skip(1))
            .args(["--part", part]);
        let log = dir.join(format!("{part}.log"));
        println!("training {part} (log: {})", log.display());
        pool.start(part, command, &log)?;
    }
    while !pool.is_empty() {
        for part in pool.poll(std::time::Duration::from_secs(2))? {
            println!("{part} trained");
        }
    }
    Ok(())
}

/// The model at one stage of fit.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Stage {
    pub step: usize,
    pub fashion_test_bpd: f64,
    pub mnist_bpd: f64,
    pub likelihood_auroc: f64,
}

/// What `ood model` writes: `<model>.json`.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ModelResults {
    pub settings: ModelSettings,
    pub parameters: usize,
    pub eval: usize,
    pub fashion_test_bpd: f64,
    pub mnist_bpd: f64,
    pub background_fashion_test_bpd: f64,
    pub train_seconds: f64,
    pub background_seconds: f64,
    /// `(step, minibatch bits/dim)` of the model and of the background model.
    pub curve: Vec<(usize, f64)>,
    pub background_curve: Vec<(usize, f64)>,
    pub scores: Vec<ScoreResult>,
    /// `(batch size M, AUROC)` of the batch typicality test.
    pub batch_typicality: Vec<(usize, f64)>,
    pub stages: Vec<Stage>,
}

/// What `ood known` writes: `known.json`.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct KnownResults {
    pub gaussians: Vec<GaussianRow>,
    /// `(D, curve)`.
    pub mixtures: Vec<(usize, Vec<MixturePoint>)>,
    /// The toy no-free-lunch: `(score, AUROC)` on N(0, I_16).
    pub toy_no_free_lunch: Vec<(String, f64)>,
}

fn pixels_of(set: &LabelledImages, range: std::ops::Range<usize>) -> anyhow::Result<Pixels> {
    if range.end > set.len() {
        bail!("asked for images {range:?}, the split has {}", set.len());
    }
    let d = set.rows * set.cols;
    Ok(Pixels::new(
        &set.pixels[range.start * d..range.end * d],
        d,
        &Device::Cpu,
    )?)
}

fn png_bits_of(set: &LabelledImages, range: std::ops::Range<usize>) -> anyhow::Result<Vec<f64>> {
    let d = set.rows * set.cols;
    range
        .map(|i| {
            crate::complexity::png_bits(&set.pixels[i * d..(i + 1) * d], set.rows, set.cols)
                .map_err(anyhow::Error::from)
        })
        .collect()
}

fn known(args: KnownArgs) -> anyhow::Result<()> {
    println!("known densities: Gaussians, near-perfect mixtures, no-free-lunch");
    let mut rng = StdRng::seed_from_u64(1);
    let mut gaussians = Vec::new();
    for dim in [1, 10, 100, 1000] {
        for scale in [0.5, 0.9, 1.1, 2.0] {
            gaussians.push(gaussian_row(dim, scale, 2000, &mut rng));
        }
    }
    // Near-perfect model: in N(0, I), out a tight cluster (sd 0.1) at (2, ..., 2), and
    // the bump r is that cluster.
    let deltas: Vec<f64> = (0..100).map(|i| 10f64.powf(-100.0 + i as f64)).collect();
    let mut mixtures = Vec::new();
    for dim in [2, 10, 50] {
        let p = IsoGaussian::centred(dim, 1.0);
        let far = IsoGaussian {
            mean: vec![2.0; dim],
            sigma: 0.1,
        };
        mixtures.push((dim, auroc_vs_kl(&p, &far, &far, &deltas, 2000, &mut rng)?));
    }
    let toy_model = GaussianToy::new(4);
    let mut toy_no_free_lunch = Vec::new();
    for score in Score::ALL {
        let score_of = |x: &Vec<f64>| toy_model.score(score, x);
        let mut draw_rng = StdRng::seed_from_u64(5);
        if let Some((inside, out)) = adversarial_out_scores(
            || toy_model.model.sample(&mut draw_rng),
            score_of,
            1000,
            1_000_000,
        ) {
            toy_no_free_lunch.push((score.name().to_string(), auroc(&inside, &out)?));
        }
    }
    let results = KnownResults {
        gaussians,
        mixtures,
        toy_no_free_lunch,
    };
    std::fs::create_dir_all(&args.results)?;
    let path = args.results.join("known.json");
    std::fs::write(&path, serde_json::to_string_pretty(&results)? + "\n")?;
    println!("wrote {}", path.display());
    Ok(())
}

/// At most `n + 1` points of a ROC curve, evenly spaced along it (both ends kept).
fn thinned(curve: Vec<(f64, f64)>, n: usize) -> Vec<(f64, f64)> {
    if curve.len() <= n + 1 {
        return curve;
    }
    (0..=n).map(|i| curve[i * (curve.len() - 1) / n]).collect()
}

fn model(args: ModelArgs) -> anyhow::Result<()> {
    let s = args.settings.clone().normalised();
    let dir = args.out.join(s.name());
    std::fs::create_dir_all(&dir)?;
    std::fs::create_dir_all(&args.results)?;
    let read = |name: &str, split: &str| {
        let dir = args.images.join(name);
        LabelledImages::read_split(&dir, split).with_context(|| {
            format!(
                "reading {} (fetch it with `cargo xtask data images`)",
                dir.display()
            )
        })
    };
    let fashion = read("fashion-mnist", "train")?;
    let fashion_test = read("fashion-mnist", "t10k")?;
    let mnist = read("mnist", "t10k")?;
    if s.train + HELD_OUT > fashion.len() {
        bail!(
            "--train {} leaves no {HELD_OUT} held-out images of {}",
            s.train,
            fashion.len()
        );
    }
    let n_eval = s.eval.min(fashion_test.len()).min(mnist.len());
    let train = pixels_of(&fashion, 0..s.train)?;
    let held_out = pixels_of(&fashion, fashion.len() - HELD_OUT..fashion.len())?;
    let f_test = pixels_of(&fashion_test, 0..n_eval)?;
    let m_test = pixels_of(&mnist, 0..n_eval)?;

    match args.part.as_deref() {
        Some("model") => return trained_model(&s, &dir, "model", &train, None).map(|_| ()),
        Some("background") => {
            return trained_model(&s, &dir, "background", &train, Some(s.perturb)).map(|_| ());
        }
        Some(other) => bail!("--part {other}: model or background"),
        None if args.workers > 1 => train_side_by_side(&args, &dir)?,
        None => {}
    }
    let (model, vars, progress) = trained_model(&s, &dir, "model", &train, None)?;
    let (background, _, bg_progress) =
        trained_model(&s, &dir, "background", &train, Some(s.perturb))?;
    let parameters: usize = vars.all_vars().iter().map(|v| v.elem_count()).sum();

    println!("scoring {n_eval} Fashion-MNIST and {n_eval} MNIST test images");
    let dim = 784;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let ll = |f: &dyn ImageDensity, p: &Pixels| log_likelihoods(f, p, 250, 99);
    // Each stage of fit, by likelihood alone.
    let mut stages = Vec::new();
    for &step in &s.stages {
        let mut stage_vars = VarMap::new();
        let stage = Model::new(&s, &stage_vars)?;
        let path = dir.join(format!("model-stage-{step}.safetensors"));
        stage_vars
            .load(&path)
            .with_context(|| format!("loading {}", path.display()))?;
        let (f, m) = (ll(stage.density(), &f_test)?, ll(stage.density(), &m_test)?);
        let neg = |v: &[f64]| v.iter().map(|x| -x).collect::<Vec<_>>();
        stages.push(Stage {
            step,
            fashion_test_bpd: bits_per_dim(mean(&f), dim),
            mnist_bpd: bits_per_dim(mean(&m), dim),
            likelihood_auroc: auroc(&neg(&f), &neg(&m))?,
        });
        println!(
            "stage {step}: Fashion-MNIST test {:.3} bits/dim, MNIST {:.3}, likelihood AUROC {:.3}",
            stages.last().map_or(0.0, |x| x.fashion_test_bpd),
            stages.last().map_or(0.0, |x| x.mnist_bpd),
            stages.last().map_or(0.0, |x| x.likelihood_auroc)
        );
    }
    let (model_ref, background_ref) = (model.density(), background.density());
    let (ll_held, ll_f, ll_m) = (
        ll(model_ref, &held_out)?,
        ll(model_ref, &f_test)?,
        ll(model_ref, &m_test)?,
    );
    let (bg_f, bg_m) = (ll(background_ref, &f_test)?, ll(background_ref, &m_test)?);
    let (bits_f, bits_m) = (
        png_bits_of(&fashion_test, 0..n_eval)?,
        png_bits_of(&mnist, 0..n_eval)?,
    );
    let h = entropy_estimate(&ll_held);
    let evidence = |log_likelihood, background, code_bits| Evidence {
        log_likelihood,
        background: Some(background),
        code_bits: Some(code_bits),
    };
    let (evidence_f, evidence_m) = (
        evidence(&ll_f, &bg_f, &bits_f),
        evidence(&ll_m, &bg_m, &bits_m),
    );
    let mut scores = Vec::new();
    for score in Score::ALL {
        let (sf, sm) = (
            ood_scores(score, evidence_f, h)?,
            ood_scores(score, evidence_m, h)?,
        );
        // No free lunch on the real model: the second half of the Fashion test images,
        // kept where the score finds them most typical (at or below the median of the
        // first half), as the out-distribution.
        let half = n_eval / 2;
        let mut first: Vec<f64> = sf[..half].to_vec();
        first.sort_by(f64::total_cmp);
        let median = first[half / 2];
        let adversarial: Vec<f64> = sf[half..]
            .iter()
            .copied()
            .filter(|v| *v <= median)
            .collect();
        scores.push(ScoreResult {
            score: score.name().into(),
            auroc: auroc(&sf, &sm)?,
            adversarial_auroc: auroc(&sf[..half], &adversarial)?,
            roc: thinned(roc_curve(&sf, &sm)?, 200),
        });
    }
    let batch_typicality: Vec<(usize, f64)> = [1, 2, 5, 10, 25]
        .iter()
        .map(|&m| {
            let a = auroc(
                &batch_typicality(&ll_f, h, m),
                &batch_typicality(&ll_m, h, m),
            )?;
            Ok((m, a))
        })
        .collect::<anyhow::Result<_>>()?;
    let results = ModelResults {
        settings: s.clone(),
        parameters,
        eval: n_eval,
        fashion_test_bpd: bits_per_dim(mean(&ll_f), dim),
        mnist_bpd: bits_per_dim(mean(&ll_m), dim),
        background_fashion_test_bpd: bits_per_dim(mean(&bg_f), dim),
        train_seconds: progress.seconds,
        background_seconds: bg_progress.seconds,
        curve: progress.curve,
        background_curve: bg_progress.curve,
        scores,
        batch_typicality,
        stages,
    };
    let path = args.results.join(format!("{}.json", s.name()));
    std::fs::write(&path, serde_json::to_string_pretty(&results)? + "\n")?;
    for r in &results.scores {
        println!("{}: AUROC {:.3}", r.score, r.auroc);
    }
    println!(
        "Fashion-MNIST test {:.3} bits/dim, MNIST {:.3}; wrote {}",
        results.fashion_test_bpd,
        results.mnist_bpd,
        path.display()
    );
    Ok(())
}
