//! `cargo xtask eval`: held-out phrases resynthesised from their extracted controls by
//! NEWT with its exact MLP shapers, by FastNEWT (both through the real-time engine), and
//! by the DDSP-style baseline trained on the same data (candle, from its checkpoint),
//! scored against the controls and the real audio. Writes a markdown table, log-mel
//! spectrograms (real vs each model) and the WAVs.

use std::path::PathBuf;

use anyhow::Context;
use candle_core::{Device, Tensor};
use clap::Args;
use newt_engine::{
    Drive, Engine, EngineConfig, EngineParams, FrameControls, ShaperPath, render_controls_to_vec,
};
use newt_features::{PitchConfig, loudness_db, track_pitch};
use newt_model::NewtModel;
use newt_train::dataset::{Segment, prepare};
use newt_train::ddsp::Ddsp;
use newt_train::loss::{PAPER_RESOLUTIONS, mrstft_loss};
use newt_train::train::{Recipe, batch, ddsp_phases, meta_for};

use crate::quality::{frechet_distance, log_mel};

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[arg(long)]
    model: PathBuf,
    /// Folder of WAV files; its held-out split is used.
    #[arg(long)]
    data: PathBuf,
    /// Checkpoint folder of the DDSP baseline (default: `<model>.ddsp.ckpt` beside the
    /// model, as `cargo xtask train --decoder ddsp --out <model>` leaves it).
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Seed the baseline was trained with (its harmonic phases depend on it).
    #[arg(long, default_value_t = 1)]
    baseline_seed: u64,
    /// At most this many held-out segments.
    #[arg(long, default_value_t = 60)]
    segments: usize,
    /// Where the table, spectrograms and WAVs go (default: out/eval/<model name>).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Scores of one system over the held-out segments.
#[derive(Clone, Debug)]
pub struct Scores {
    pub name: &'static str,
    pub mrstft: f64,
    pub frechet_log_mel: f64,
    pub median_pitch_cents: f64,
    /// Share of the frames the pitch error looks at (loud enough in the real audio) in
    /// which the tracker finds the output voiced at all, in %.
    pub voiced_percent: f64,
    pub loudness_mae_db: f64,
}

/// Held-out segments shown in the spectrograms and written as WAVs.
const SHOWN_SEGMENTS: usize = 6;

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let model = NewtModel::load(&args.model)
        .with_context(|| format!("loading {}", args.model.display()))?;
    let stem = args
        .model
        .file_stem()
        .map_or("model".into(), |s| s.to_string_lossy().into_owned());
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("out/eval").join(&stem));
    std::fs::create_dir_all(&out_dir)?;
    let (sr, hop) = (model.meta.sample_rate, model.meta.hop);
    // The CPU recipe's segments: the same split and statistics training saw.
    let dataset = prepare(&args.data, sr, hop, Recipe::cpu().segment_frames)?;
    let segments: Vec<&Segment> = dataset.valid.iter().take(args.segments).collect();
    anyhow::ensure!(
        !segments.is_empty(),
        "no held-out segments in {}",
        args.data.display()
    );

    let baseline_dir = args
        .baseline
        .clone()
        .unwrap_or_else(|| args.model.with_file_name(format!("{stem}.ddsp.ckpt")));
    let device = Device::Cpu;
    let ddsp = if baseline_dir.join("weights.safetensors").exists() {
        let meta = meta_for(&dataset, &model.meta.instrument);
        Some(Ddsp::from_checkpoint(&baseline_dir, meta, &device)?)
    } else {
        println!(
            "no DDSP baseline at {} (train one with `cargo xtask train --decoder ddsp --out {}`)",
            baseline_dir.display(),
            args.model.display()
        );
        None
    };

    let real: Vec<Vec<f32>> = segments.iter().map(|s| s.audio.clone()).collect();
    let mut systems: Vec<(&'static str, Vec<Vec<f32>>)> = vec![
        (
            "NEWT (MLP shapers)",
            render_engine(&model, &segments, ShaperPath::Mlp)?,
        ),
        (
            "FastNEWT (tables)",
            render_engine(&model, &segments, ShaperPath::Table)?,
        ),
    ];
    if let Some(ddsp) = &ddsp {
        let phases = ddsp_phases(&ddsp.meta, args.baseline_seed);
        let mut outs = Vec::new();
        for (i, seg) in segments.iter().enumerate() {
            let (cond, _) = batch(&[seg], &ddsp.meta, &phases, 1_000_000 + i as u64, &device)?;
            outs.push(ddsp.forward(&cond)?.flatten_all()?.to_vec1::<f32>()?);
        }
        systems.push(("DDSP baseline", outs));
    }

    let real_mel: Vec<Vec<f64>> = real.iter().flat_map(|x| log_mel(x, sr)).collect();
    let mut scores = Vec::new();
    for (name, outs) in &systems {
        scores.push(score(name, outs, &real, &real_mel, &segments, sr, hop)?);
    }

    // Figures and sound: the first few held-out segments back to back.
    let shown = segments.len().min(SHOWN_SEGMENTS);
    let joined = |xs: &[Vec<f32>]| -> Vec<f32> { xs[..shown].concat() };
    let mut panels: Vec<(String, Vec<Vec<f64>>)> =
        vec![("real".to_string(), log_mel(&joined(&real), sr))];
    crate::wav::write_pcm16(&out_dir.join("real.wav"), &joined(&real), sr)?;
    for (name, outs) in &systems {
        panels.push((name.to_string(), log_mel(&joined(outs), sr)));
        crate::wav::write_pcm16(
            &out_dir.join(format!("{}.wav", file_name(name))),
            &joined(outs),
            sr,
        )?;
    }
    let refs: Vec<(&str, &[Vec<f64>])> = panels
        .iter()
        .map(|(n, f)| (n.as_str(), f.as_slice()))
        .collect();
    let png = out_dir.join("spectrograms.png");
    crate::plot::spectrograms(
        &png,
        &format!("{}: held-out phrases, log-mel", model.meta.instrument),
        &refs,
    )?;

    let table = markdown(&model, &scores, segments.len());
    std::fs::write(out_dir.join("eval.md"), &table)?;
    println!("{table}");
    println!(
        "wrote {} (table, spectrograms.png, WAVs)",
        out_dir.display()
    );
    Ok(())
}

fn render_engine(
    model: &NewtModel,
    segments: &[&Segment],
    shaper: ShaperPath,
) -> anyhow::Result<Vec<Vec<f32>>> {
    let sr = model.meta.sample_rate;
    let mut params = EngineParams {
        drive: Drive::Controls,
        ..EngineParams::default()
    };
    params.voice.shaper = shaper;
    segments
        .iter()
        .map(|seg| {
            let controls: Vec<FrameControls> = seg
                .f0_hz
                .iter()
                .zip(&seg.loudness_db)
                .map(|(&f0_hz, &loudness_db)| FrameControls { f0_hz, loudness_db })
                .collect();
            let config = EngineConfig {
                host_sample_rate: sr,
                voices: 1,
                ..EngineConfig::default()
            };
            let mut engine = Engine::new(model.clone(), config)?;
            Ok(render_controls_to_vec(&mut engine, &controls, &params, 512))
        })
        .collect()
}

fn score(
    name: &'static str,
    outs: &[Vec<f32>],
    real: &[Vec<f32>],
    real_mel: &[Vec<f64>],
    segments: &[&Segment],
    sr: u32,
    hop: usize,
) -> anyhow::Result<Scores> {
    let mut cents = Vec::new();
    let mut looked_at = 0usize;
    let (mut loud_err, mut loud_n) = (0.0f64, 0usize);
    let mut dist = 0.0f64;
    let mut mel = Vec::new();
    for ((out, target), seg) in outs.iter().zip(real).zip(segments) {
        let out = &out[..target.len().min(out.len())];
        let config = PitchConfig {
            sample_rate: sr,
            hop,
            ..PitchConfig::default()
        };
        let pitch = track_pitch(out, config)?;
        let loud = loudness_db(out, sr, hop)?;
        // Skip the first frames (the GRU and the reverb start from rest).
        for f in 8..seg.f0_hz.len().min(pitch.len()) {
            let (f0, l) = (seg.f0_hz[f], seg.loudness_db[f]);
            looked_at += usize::from(l > -45.0);
            if l > -45.0 && pitch[f].voiced {
                cents.push((1200.0 * (pitch[f].f0_hz as f64 / f0 as f64).log2()).abs());
            }
            if l > -70.0 {
                loud_err += (loud[f] - l).abs() as f64;
                loud_n += 1;
            }
        }
        let dev = Device::Cpu;
        let a = Tensor::from_vec(out.to_vec(), (1, out.len()), &dev)?;
        let b = Tensor::from_vec(target[..out.len()].to_vec(), (1, out.len()), &dev)?;
        dist += mrstft_loss(&a, &b, &PAPER_RESOLUTIONS)?.to_scalar::<f32>()? as f64;
        mel.extend(log_mel(out, sr));
    }
    cents.sort_by(f64::total_cmp);
    Ok(Scores {
        name,
        mrstft: dist / outs.len().max(1) as f64,
        frechet_log_mel: frechet_distance(real_mel, &mel),
        median_pitch_cents: cents.get(cents.len() / 2).copied().unwrap_or(f64::NAN),
        voiced_percent: 100.0 * cents.len() as f64 / looked_at.max(1) as f64,
        loudness_mae_db: loud_err / loud_n.max(1) as f64,
    })
}

fn markdown(model: &NewtModel, scores: &[Scores], segments: usize) -> String {
    let mut t = format!(
        "Held-out resynthesis of {} ({} segments of 1 s; lower is better everywhere).\n\n\
         | system | MR-STFT distance | Fréchet log-mel distance | pitch error, median (cents) | output voiced (%) | loudness error (dB) |\n\
         |---|---|---|---|---|---|\n",
        model.meta.instrument, segments
    );
    for s in scores {
        t.push_str(&format!(
            "| {} | {:.4} | {:.3} | {:.2} | {:.0} | {:.2} |\n",
            s.name,
            s.mrstft,
            s.frechet_log_mel,
            s.median_pitch_cents,
            s.voiced_percent,
            s.loudness_mae_db
        ));
    }
    if let (Some(mlp), Some(fast)) = (scores.first(), scores.get(1)) {
        t.push_str(&format!(
            "\nFastNEWT's MR-STFT distance is {:+.3}% of the MLP shapers'.\n",
            100.0 * (fast.mrstft / mlp.mrstft - 1.0)
        ));
    }
    t
}

fn file_name(name: &str) -> String {
    name.split(' ').next().unwrap_or(name).to_lowercase()
        + if name.contains("MLP") { "-mlp" } else { "" }
}
