//! `newt-train --data DIR --out MODEL` (also `cargo xtask train ...`): a folder of WAV
//! files -> a NEWT model file (or the DDSP baseline's loss log), with a progress bar,
//! resumable checkpoints, and the loss curve as a PNG.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Parser, ValueEnum};
use newt_train::dataset::prepare;
use newt_train::train::{Decoder, Recipe, TrainLog, TrainOptions, train};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RecipeArg {
    Cpu,
    Paper,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DecoderArg {
    Newt,
    Ddsp,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Folder of WAV files of one monophonic instrument.
    #[arg(long)]
    data: PathBuf,
    /// Model file to write (NEWT); the loss log and curve go beside it.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value_t = RecipeArg::Cpu)]
    recipe: RecipeArg,
    #[arg(long, value_enum, default_value_t = DecoderArg::Newt)]
    decoder: DecoderArg,
    /// Steps to train (default: the recipe's).
    #[arg(long)]
    steps: Option<usize>,
    /// Continue from the checkpoint beside `--out`.
    #[arg(long)]
    resume: bool,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Instrument name stored in the model file (default: the data folder's name).
    #[arg(long)]
    instrument: Option<String>,
    /// Train nothing: store the range map of `--data` (the distribution of its voiced
    /// controls) in the existing model file `--out`, whose weights stay as they are (for
    /// models trained before files held maps).
    #[arg(long)]
    map_only: bool,
}

// Training allocates and frees tensors of tens of MB every step; glibc returns each one to
// the OS and page-faults it back (a third of the CPU time went to the kernel), mimalloc
// keeps them (with `MIMALLOC_PURGE_DELAY=-1`, set in .cargo/config.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "newt-train",
    about = "Train a NEWT model (or the DDSP baseline) from a folder of WAV files"
)]
struct Cli {
    #[command(flatten)]
    args: TrainArgs,
}

/// Rewrites `model_path` with the range map of `dataset`; refuses a dataset whose
/// statistics are not the model's (not the data it was trained on).
fn store_range_map(
    dataset: &newt_train::dataset::Dataset,
    model_path: &Path,
) -> anyhow::Result<()> {
    let mut model = newt_model::NewtModel::load(model_path)?;
    let (m, s) = (&model.meta, &dataset.stats);
    let close = |a: f32, b: f32| (a - b).abs() <= 0.01 * a.abs().max(b.abs()).max(1.0);
    if !(close(m.f0_mean_hz, s.f0_mean_hz) && close(m.loudness_mean_db, s.loudness_mean_db)) {
        bail!(
            "{} was not trained on this data: its f0 mean {} Hz and loudness mean {} dB, the data's {} and {}",
            model_path.display(),
            m.f0_mean_hz,
            m.loudness_mean_db,
            s.f0_mean_hz,
            s.loudness_mean_db
        );
    }
    let map = dataset
        .range_map(m.loudness_measure)
        .context("the data has no voiced frame")?;
    println!(
        "range map: {} voiced frames, pitch 1-99% MIDI {:.1}-{:.1}, loudness 1-99% {:.1} to {:.1} dB",
        map.total(),
        map.pitch_quantiles_midi[0],
        map.pitch_quantiles_midi[4],
        map.loudness_quantiles_db[0],
        map.loudness_quantiles_db[4]
    );
    model.meta.range_map = map;
    model.save(model_path)?;
    println!("wrote {}", model_path.display());
    Ok(())
}

fn main() -> anyhow::Result<()> {
    run(Cli::parse().args)
}

fn run(args: TrainArgs) -> anyhow::Result<()> {
    let recipe = match args.recipe {
        RecipeArg::Cpu => Recipe::cpu(),
        RecipeArg::Paper => Recipe::paper(),
    };
    let decoder = match args.decoder {
        DecoderArg::Newt => Decoder::Newt,
        DecoderArg::Ddsp => Decoder::Ddsp,
    };
    println!(
        "preparing {} ({} s segments)...",
        args.data.display(),
        recipe.segment_frames as f32 * 128.0 / 16_000.0
    );
    let dataset = prepare(&args.data, 16_000, 128, recipe.segment_frames)
        .with_context(|| format!("dataset {}", args.data.display()))?;
    println!(
        "{} training and {} held-out segments; f0 {:.0} +- {:.0} Hz, loudness {:.1} +- {:.1} dB",
        dataset.train.len(),
        dataset.valid.len(),
        dataset.stats.f0_mean_hz,
        dataset.stats.f0_std_hz,
        dataset.stats.loudness_mean_db,
        dataset.stats.loudness_std_db
    );
    if args.map_only {
        return store_range_map(&dataset, &args.out);
    }
    let tag = match decoder {
        Decoder::Newt => "newt",
        Decoder::Ddsp => "ddsp",
    };
    let instrument = args.instrument.clone().unwrap_or_else(|| {
        args.data
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or("instrument".into())
    });
    let opts = TrainOptions {
        recipe,
        decoder,
        steps: args.steps.unwrap_or(recipe.steps),
        seed: args.seed,
        checkpoint_dir: sibling(&args.out, &format!("{tag}.ckpt")),
        resume: args.resume,
        progress: true,
        instrument,
    };
    let trained = train(&dataset, &opts)?;
    let log = &trained.log;
    if let Some(model) = &trained.model {
        if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        model.save(&args.out)?;
        println!("wrote {}", args.out.display());
    }
    let csv = sibling(&args.out, &format!("{tag}.loss.csv"));
    write_csv(&csv, log)?;
    let png = sibling(&args.out, &format!("{tag}.loss.png"));
    figures::loss_curve(
        &png,
        &format!("{tag} ({} recipe)", recipe.name),
        &log.train,
        &log.valid,
    )?;
    println!(
        "{tag}: {} steps in {:.1} min ({:.2} s/step at batch {}), final train loss {:.4}, held-out loss {:.4}; log {}, curve {}",
        log.step,
        log.seconds / 60.0,
        log.seconds_per_step(),
        recipe.batch,
        log.train.last().map_or(f32::NAN, |v| v.1),
        log.valid.last().map_or(f32::NAN, |v| v.1),
        csv.display(),
        png.display()
    );
    let n = log.train.len().max(1) as f64;
    let p = log.phase_seconds;
    println!(
        "{tag}: a step's {:.3} s: batch {:.3} s, forward and loss {:.3} s, backward {:.3} s, update {:.3} s",
        log.seconds_per_step(),
        p.batch / n,
        p.forward / n,
        p.backward / n,
        p.update / n
    );
    Ok(())
}

/// `out` with its extension replaced by `suffix` (`m.safetensors` -> `m.newt.loss.png`).
fn sibling(out: &Path, suffix: &str) -> PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or("model".into());
    out.with_file_name(format!("{stem}.{suffix}"))
}

fn write_csv(path: &Path, log: &TrainLog) -> anyhow::Result<()> {
    let mut text = String::from("step,train_loss,heldout_loss\n");
    let valid: std::collections::HashMap<usize, f32> = log.valid.iter().copied().collect();
    for (step, loss) in &log.train {
        let v = valid.get(step).map_or(String::new(), |v| v.to_string());
        text.push_str(&format!("{step},{loss},{v}\n"));
    }
    if log.train.is_empty() {
        bail!("no training steps were run");
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
