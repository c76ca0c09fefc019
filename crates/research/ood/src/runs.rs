//! `cargo xtask ood`: the experiments of Zhang, Goldstein and Ranganath (ICML 2021).
//! Known densities first (Gaussians, the near-perfect mixture, the no-free-lunch
//! construction), then a density model trained on Fashion-MNIST and a background model on
//! perturbed Fashion-MNIST (resumable checkpoints), scored on Fashion-MNIST test vs MNIST.
//! Writes `results.json`, ROC and AUROC-vs-KL figures and REPORT.md.
//!
//! The default is the local autoregressive pixel model (`--hidden 64 --steps 2000`); the
//! flow run reported beside it is `--model flow --hidden 256 --steps 3000 --out
//! out/ood-flow --report crates/research/ood/results/flow`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::auroc::{auroc, roc_curve};
use crate::flow::{CouplingNet, Flow, FlowConfig};
use crate::gaussian::{GaussianRow, IsoGaussian, gaussian_row};
use crate::mixture::{MixturePoint, auroc_vs_kl};
use crate::no_free_lunch::{GaussianToy, adversarial_out_scores};
use crate::pixel_ar::{PixelAr, PixelArConfig};
use crate::scores::{Evidence, Score, batch_typicality, entropy_estimate, ood_scores};
use crate::train::{ImageDensity, Pixels, TrainConfig, bits_per_dim, log_likelihoods, train_model};
use anyhow::{Context, bail};
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use clap::Args;
use image_data::LabelledImages;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use figures::{Axis, Curve, line_chart};

#[derive(Args, Debug)]
pub struct OodArgs {
    #[arg(long, default_value = "data/images")]
    images: PathBuf,
    /// Checkpoints and results.
    #[arg(long, default_value = "out/ood")]
    out: PathBuf,
    /// Where REPORT.md and the figures go.
    #[arg(long, default_value = "crates/research/ood/results")]
    report: PathBuf,
    #[command(flatten)]
    settings: OodSettings,
}

/// The settings the trained models depend on (a checkpoint made with others is refused).
#[derive(Args, Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OodSettings {
    /// The density model: `pixel-ar` (autoregressive, local causal neighbourhood, shared
    /// weights) or `flow` (RealNVP-style).
    #[arg(long, default_value = "pixel-ar")]
    #[serde(default = "flow")]
    model: String,
    /// Neighbourhood radius of `pixel-ar`, pixels.
    #[arg(long, default_value_t = 3)]
    #[serde(default)]
    radius: usize,
    /// Coupling nets: `mlp`, or `conv` (3x3 convolutions, as in RealNVP and Glow; about
    /// 2 s a step on 2 cores with 16 channels, too slow for the default run).
    #[arg(long, default_value = "mlp")]
    #[serde(default = "mlp")]
    net: String,
    /// Fashion-MNIST training images used (the first N; the last 2,000 of the split are
    /// held out for the typicality test's entropy).
    #[arg(long, default_value_t = 20_000)]
    train: usize,
    /// Training steps of each model.
    #[arg(long, default_value_t = 2000)]
    steps: usize,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    #[arg(long, default_value_t = 8)]
    couplings: usize,
    /// Hidden width of the pixel model's MLP, or of each coupling's net (units for
    /// `mlp`, channels for `conv`).
    #[arg(long, default_value_t = 64)]
    hidden: usize,
    /// Pixel replacement rate of the background model's inputs (Ren et al. use 0.1-0.3).
    #[arg(long, default_value_t = 0.2)]
    perturb: f64,
    /// Test images scored from each data set.
    #[arg(long, default_value_t = 2000)]
    eval: usize,
}

impl OodSettings {
    /// The same settings with the ones the chosen model ignores at fixed values, so that
    /// they do not decide whether a checkpoint is resumed.
    fn normalised(mut self) -> Self {
        if self.model == "flow" {
            self.radius = 0;
        }
        self
    }
}

/// The default of settings recorded before `model` existed.
fn flow() -> String {
    "flow".into()
}

/// The default of settings recorded before `net` existed.
fn mlp() -> String {
    "mlp".into()
}

const HELD_OUT: usize = 2000;
const CHECKPOINT_EVERY: usize = 250;

#[derive(Serialize, Deserialize, Default)]
struct Progress {
    settings: Option<OodSettings>,
    step: usize,
    /// `(step, minibatch bits/dim)`.
    curve: Vec<(usize, f64)>,
    seconds: f64,
}

/// A trained density model of either kind.
enum Model {
    Flow(Flow),
    PixelAr(PixelAr),
}

impl Model {
    fn density(&self) -> &dyn ImageDensity {
        match self {
            Model::Flow(f) => f,
            Model::PixelAr(m) => m,
        }
    }
}

/// Trains (or resumes) the model `name`; returns it with its training seconds and curve.
fn trained_model(
    args: &OodArgs,
    name: &str,
    data: &Pixels,
    perturb: Option<f64>,
) -> anyhow::Result<(Model, Progress)> {
    let s = &args.settings;
    let net = match s.net.as_str() {
        "conv" => CouplingNet::Conv,
        "mlp" => CouplingNet::Mlp,
        other => bail!("--net is conv or mlp, not {other}"),
    };
    let config = FlowConfig {
        net,
        rows: 28,
        cols: 28,
        couplings: s.couplings,
        hidden: s.hidden,
        alpha: 0.05,
    };
    let mut vars = VarMap::new();
    let vb = VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
    let model = match s.model.as_str() {
        "flow" => Model::Flow(Flow::new(config, vb)?),
        "pixel-ar" => Model::PixelAr(PixelAr::new(
            PixelArConfig {
                rows: 28,
                cols: 28,
                radius: s.radius,
                hidden: s.hidden,
            },
            vb,
        )?),
        other => bail!("--model is pixel-ar or flow, not {other}"),
    };
    let weights = args.out.join(format!("{name}.safetensors"));
    let progress_path = args.out.join(format!("{name}.json"));
    let mut progress = Progress::default();
    if progress_path.exists() {
        let saved: Progress = serde_json::from_str(&std::fs::read_to_string(&progress_path)?)?;
        if saved.settings.as_ref() == Some(s) {
            vars.load(&weights)
                .with_context(|| format!("loading {}", weights.display()))?;
            progress = saved;
        } else {
            println!("{name}: settings changed, training from the start");
        }
    }
    progress.settings = Some(s.clone());
    if progress.step >= s.steps {
        return Ok((model, progress));
    }
    let bar = indicatif::ProgressBar::new(s.steps as u64);
    bar.set_position(progress.step as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{name} [{{bar:30}}] {{pos}}/{{len}} steps {{msg}} ({{eta}} left)"
        ))
        .expect("valid template"),
    );
    let config = TrainConfig {
        batch: s.batch,
        lr: s.lr,
        seed: if perturb.is_some() { 2 } else { 1 },
        perturb,
    };
    // Training time is the sum of the steps' own durations (checkpoints excluded).
    let mut last = Instant::now();
    let mut mean = 0.0;
    let mut count = 0;
    let from = progress.step;
    train_model(
        model.density(),
        &vars,
        data,
        config,
        from..s.steps,
        |step, bpd| {
            progress.seconds += last.elapsed().as_secs_f64();
            mean += bpd;
            count += 1;
            bar.inc(1);
            if (step + 1) % CHECKPOINT_EVERY == 0 || step + 1 == s.steps {
                let m = mean / count as f64;
                bar.set_message(format!("{m:.3} bits/dim"));
                if bar.is_hidden() {
                    println!("{name} step {}: {m:.3} bits/dim", step + 1);
                }
                progress.curve.push((step + 1, m));
                (mean, count) = (0.0, 0);
                vars.save(&weights)?;
                progress.step = step + 1;
                let json = serde_json::to_string_pretty(&progress)
                    .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
                std::fs::write(&progress_path, json)?;
            }
            last = Instant::now();
            Ok(())
        },
    )?;
    bar.finish();
    Ok((model, progress))
}

#[derive(Serialize, Deserialize)]
struct ScoreResult {
    score: String,
    auroc: f64,
    /// AUROC against the no-free-lunch out-distribution built from Fashion-MNIST test.
    adversarial_auroc: f64,
}

#[derive(Serialize, Deserialize)]
struct OodResults {
    settings: OodSettings,
    fashion_test_bpd: f64,
    mnist_bpd: f64,
    background_fashion_test_bpd: f64,
    train_seconds: f64,
    background_seconds: f64,
    scores: Vec<ScoreResult>,
    /// `(batch size M, AUROC)` of the batch typicality test.
    batch_typicality: Vec<(usize, f64)>,
    gaussians: Vec<GaussianRow>,
    /// `(D, curve)`.
    mixtures: Vec<(usize, Vec<MixturePoint>)>,
    /// The toy no-free-lunch: `(score, AUROC)` on N(0, I_16).
    toy_no_free_lunch: Vec<(String, f64)>,
}

/// Gaussian rows, `(D, mixture curve)`, toy no-free-lunch `(score, AUROC)`.
type KnownDensities = (
    Vec<GaussianRow>,
    Vec<(usize, Vec<MixturePoint>)>,
    Vec<(String, f64)>,
);

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

fn known_densities() -> anyhow::Result<KnownDensities> {
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
    let mut toy = Vec::new();
    for score in Score::ALL {
        let score_of = |x: &Vec<f64>| toy_model.score(score, x);
        let mut draw_rng = StdRng::seed_from_u64(5);
        if let Some((inside, out)) = adversarial_out_scores(
            || toy_model.model.sample(&mut draw_rng),
            score_of,
            1000,
            1_000_000,
        ) {
            toy.push((
                score.name().to_string(),
                auroc(&inside, &out).unwrap_or(f64::NAN),
            ));
        }
    }
    Ok((gaussians, mixtures, toy))
}

pub fn run(mut args: OodArgs) -> anyhow::Result<()> {
    args.settings = args.settings.normalised();
    std::fs::create_dir_all(&args.out)?;
    std::fs::create_dir_all(&args.report)?;
    let s = args.settings.clone();
    println!("known densities: Gaussians, near-perfect mixtures, no-free-lunch");
    let (gaussians, mixtures, toy_no_free_lunch) = known_densities()?;

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

    let (model, progress) = trained_model(&args, "fashion", &train, None)?;
    let (background, bg_progress) = trained_model(&args, "background", &train, Some(s.perturb))?;
    let (model_ref, background_ref) = (model.density(), background.density());

    println!("scoring {n_eval} Fashion-MNIST and {n_eval} MNIST test images");
    let dim = 784;
    let ll = |f: &dyn ImageDensity, p: &Pixels| log_likelihoods(f, p, 250, 99);
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
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let h = entropy_estimate(&ll_held);
    let evidence_f = Evidence {
        log_likelihood: &ll_f,
        background: Some(&bg_f),
        code_bits: Some(&bits_f),
    };
    let evidence_m = Evidence {
        log_likelihood: &ll_m,
        background: Some(&bg_m),
        code_bits: Some(&bits_m),
    };
    let mut scores = Vec::new();
    let mut rocs = Vec::new();
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
        });
        rocs.push((score.name(), roc_curve(&sf, &sm)?));
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
    let results = OodResults {
        settings: s.clone(),
        fashion_test_bpd: bits_per_dim(mean(&ll_f), dim),
        mnist_bpd: bits_per_dim(mean(&ll_m), dim),
        background_fashion_test_bpd: bits_per_dim(mean(&bg_f), dim),
        train_seconds: progress.seconds,
        background_seconds: bg_progress.seconds,
        scores,
        batch_typicality,
        gaussians,
        mixtures,
        toy_no_free_lunch,
    };
    std::fs::write(
        args.out.join("results.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    figures(&args.report, &results, &rocs, &progress, &bg_progress)?;
    let report = report(&results, n_eval, &progress, &bg_progress)?;
    let path = args.report.join("REPORT.md");
    std::fs::write(&path, report)?;
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

fn figures(
    dir: &Path,
    r: &OodResults,
    rocs: &[(&str, Vec<(f64, f64)>)],
    progress: &Progress,
    bg: &Progress,
) -> anyhow::Result<()> {
    let mut curves: Vec<Curve> = rocs
        .iter()
        .zip(&r.scores)
        .map(|((name, curve), s)| Curve {
            label: format!("{name} (AUROC {:.3})", s.auroc),
            points: curve.clone(),
            dashed: false,
            colour: None,
        })
        .collect();
    curves.push(Curve {
        label: "chance".into(),
        points: vec![(0.0, 0.0), (1.0, 1.0)],
        dashed: true,
        colour: Some(7),
    });
    line_chart(
        &dir.join("roc.png"),
        "Fashion-MNIST (in) vs MNIST (out): ROC of each score",
        Axis {
            desc: "false positive rate (Fashion-MNIST flagged)",
            log2: false,
            range: Some((0.0, 1.0)),
        },
        Axis {
            desc: "true positive rate (MNIST flagged)",
            log2: false,
            range: Some((0.0, 1.0)),
        },
        &curves,
    )?;
    let mixtures: Vec<Curve> = r
        .mixtures
        .iter()
        .map(|(dim, curve)| Curve {
            label: format!("D = {dim}"),
            points: curve
                .iter()
                .filter(|p| p.kl > 0.0)
                .map(|p| (p.kl, p.auroc))
                .collect(),
            dashed: false,
            colour: None,
        })
        .collect();
    line_chart(
        &dir.join("auroc_vs_kl.png"),
        "q = (1 - delta) p + delta r: likelihood AUROC against KL(p || q)",
        Axis {
            desc: "KL(p || q), nats",
            log2: true,
            range: None,
        },
        Axis {
            desc: "AUROC of -ln q",
            log2: false,
            range: Some((-0.02, 1.02)),
        },
        &mixtures,
    )?;
    let training = [("Fashion-MNIST model", progress), ("background model", bg)]
        .iter()
        .map(|(name, p)| Curve {
            label: name.to_string(),
            points: p.curve.iter().map(|(s, b)| (*s as f64, *b)).collect(),
            dashed: false,
            colour: None,
        })
        .collect::<Vec<_>>();
    line_chart(
        &dir.join("training.png"),
        "Training: minibatch bits/dim",
        Axis {
            desc: "step",
            log2: false,
            range: None,
        },
        Axis {
            desc: "bits/dim",
            log2: false,
            range: None,
        },
        &training,
    )?;
    Ok(())
}

fn report(
    r: &OodResults,
    n_eval: usize,
    progress: &Progress,
    bg: &Progress,
) -> anyhow::Result<String> {
    let s = &r.settings;
    let model_desc = match s.model.as_str() {
        "flow" => format!(
            "RealNVP-style flow, {} affine couplings ({} nets, two hidden layers of {}), \
             logit pre-processing, uniform dequantisation (bits/dim are the dequantisation \
             bound)",
            s.couplings, s.net, s.hidden
        ),
        _ => format!(
            "autoregressive over pixels in raster order, each pixel's 256-way distribution \
             from its causal neighbourhood of radius {} by one MLP (two hidden layers of {}) \
             shared across positions (exact discrete likelihood)",
            s.radius, s.hidden
        ),
    };
    let mut md = String::new();
    writeln!(
        md,
        "# Out-of-distribution detection with a deep generative model, measured\n\n\
         Written by `cargo xtask ood` (Zhang, Goldstein, Ranganath, ICML 2021).\n\n\
         ## Scale\n\n\
         - Model: {model_desc}; trained on the first {} Fashion-MNIST training images, {} \
         Adam steps of {} (lr {}), {:.1} epochs.\n\
         - Background model (likelihood ratio): the same, on the same images with each \
         pixel replaced by a uniform random value with probability {}.\n\
         - Training time on this machine (2 cores, CPU): {:.1} min (model), {:.1} min \
         (background).\n\
         - Scored: {n_eval} Fashion-MNIST test images (in) and {n_eval} MNIST images (out); \
         the typicality test's entropy from {HELD_OUT} held-out Fashion-MNIST training \
         images.\n\n\
         ## Fashion-MNIST vs MNIST\n\n\
         | | bits/dim |\n|---|---|\n\
         | Fashion-MNIST test under the model | {:.3} |\n\
         | MNIST under the model | {:.3} |\n\
         | Fashion-MNIST test under the background model | {:.3} |\n\n\
         ![roc](roc.png)\n\n\
         | score | AUROC (MNIST = positive) | literature (COMPANIONS.md) | AUROC on the no-free-lunch out-distribution |\n\
         |---|---|---|---|",
        s.train,
        s.steps,
        s.batch,
        s.lr,
        (s.steps * s.batch) as f64 / s.train as f64,
        s.perturb,
        progress.seconds / 60.0,
        bg.seconds / 60.0,
        r.fashion_test_bpd,
        r.mnist_bpd,
        r.background_fashion_test_bpd,
    )?;
    for sc in &r.scores {
        let literature = match sc.score.as_str() {
            "likelihood" => "~0.1",
            "likelihood ratio" => "~0.99",
            _ => "",
        };
        writeln!(
            md,
            "| {} | {:.3} | {literature} | {:.3} |",
            sc.score, sc.auroc, sc.adversarial_auroc
        )?;
    }
    writeln!(
        md,
        "\nTypicality test on batches of M inputs (Nalisnick et al.):\n\n\
         | M | AUROC |\n|---|---|"
    )?;
    for (m, a) in &r.batch_typicality {
        writeln!(md, "| {m} | {a:.3} |")?;
    }
    writeln!(
        md,
        "\n## Gaussians with known density: in N(0, I_D), out N(0, s^2 I_D)\n\n\
         AUROC of the true density's likelihood (-ln p) and of typicality \
         (|-ln p - H|), 2,000 samples of each.\n\n\
         | D | s | likelihood | typicality |\n|---|---|---|---|"
    )?;
    for g in &r.gaussians {
        writeln!(
            md,
            "| {} | {} | {:.3} | {:.3} |",
            g.dim, g.scale, g.likelihood, g.typicality
        )?;
    }
    writeln!(
        md,
        "\n## A nearly perfect model that fails: q = (1 - delta) p + delta r\n\n\
         p = N(0, I_D); out-distribution and r: N(2 * 1, 0.1^2 I_D), a tight cluster \
         the true density ranks as out-of-distribution. KL(p || q) <= -ln(1 - delta) ~ \
         delta; the AUROC of -ln q flips from 1 to 0 while KL is still tiny.\n\n\
         ![auroc vs kl](auroc_vs_kl.png)\n\n\
         | D | largest KL(p || q) with AUROC >= 0.9 | smallest KL with AUROC <= 0.1 |\n\
         |---|---|---|"
    )?;
    for (dim, curve) in &r.mixtures {
        let good = curve
            .iter()
            .filter(|p| p.auroc >= 0.9)
            .map(|p| p.kl)
            .fold(f64::NAN, f64::max);
        let bad = curve
            .iter()
            .filter(|p| p.auroc <= 0.1)
            .map(|p| p.kl)
            .fold(f64::NAN, f64::min);
        writeln!(md, "| {dim} | {good:.1e} | {bad:.1e} |")?;
    }
    writeln!(
        md,
        "\n## No free lunch\n\nFor each score, an out-distribution built from the \
         in-distribution itself (inputs the score finds at least as typical as its median) \
         drives the AUROC to at most 0.5. On N(0, I_16) (1,000 of each):\n\n\
         | score | AUROC |\n|---|---|"
    )?;
    for (name, a) in &r.toy_no_free_lunch {
        writeln!(md, "| {name} | {a:.3} |")?;
    }
    writeln!(
        md,
        "\nOn the trained model, the same construction from Fashion-MNIST test images is \
         the last column of the Fashion-MNIST vs MNIST table."
    )?;
    Ok(md)
}
