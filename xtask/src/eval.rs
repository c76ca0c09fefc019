//! `cargo xtask eval`: resynthesis of held-out segments from their extracted controls,
//! through the real-time engine, scored against the controls and the real audio.

use std::path::PathBuf;

use anyhow::Context;
use candle_core::{Device, Tensor};
use clap::Args;
use newt_engine::{
    Drive, Engine, EngineConfig, EngineParams, FrameControls, ShaperPath, render_controls_to_vec,
};
use newt_features::{PitchConfig, loudness_db, track_pitch};
use newt_model::NewtModel;
use newt_train::dataset::prepare;
use newt_train::loss::{PAPER_RESOLUTIONS, mrstft_loss};

use crate::render::ShaperArg;

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[arg(long)]
    model: PathBuf,
    /// Folder of WAV files; its held-out split is used.
    #[arg(long)]
    data: PathBuf,
    #[arg(long, value_enum, default_value_t = ShaperArg::Fast)]
    shaper: ShaperArg,
    /// At most this many held-out segments.
    #[arg(long, default_value_t = 40)]
    segments: usize,
}

pub struct Scores {
    pub median_pitch_cents: f64,
    pub loudness_mae_db: f64,
    pub mrstft: f64,
    pub frames: usize,
}

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let model = NewtModel::load(&args.model)
        .with_context(|| format!("loading {}", args.model.display()))?;
    let shaper = match args.shaper {
        ShaperArg::Fast => ShaperPath::Table,
        ShaperArg::Mlp => ShaperPath::Mlp,
    };
    let s = evaluate(&model, &args.data, shaper, args.segments)?;
    println!(
        "{} on {} held-out frames: output pitch error median {:.1} cents, loudness error {:.2} dB (mean abs), MR-STFT distance {:.3}",
        args.model.display(),
        s.frames,
        s.median_pitch_cents,
        s.loudness_mae_db,
        s.mrstft
    );
    Ok(())
}

pub fn evaluate(
    model: &NewtModel,
    data: &std::path::Path,
    shaper: ShaperPath,
    max_segments: usize,
) -> anyhow::Result<Scores> {
    let (sr, hop) = (model.meta.sample_rate, model.meta.hop);
    let dataset = prepare(data, sr, hop, 125)?;
    let mut cents = Vec::new();
    let (mut loud_err, mut loud_n) = (0.0f64, 0usize);
    let (mut dist, mut segs) = (0.0f64, 0usize);
    for seg in dataset.valid.iter().take(max_segments) {
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
        let mut params = EngineParams {
            drive: Drive::Controls,
            ..EngineParams::default()
        };
        params.voice.shaper = shaper;
        let out = render_controls_to_vec(&mut engine, &controls, &params, 512);
        let pitch = track_pitch(
            &out,
            PitchConfig {
                sample_rate: sr,
                hop,
                ..PitchConfig::default()
            },
        )?;
        let loud = loudness_db(&out, sr, hop)?;
        // Skip the first frames (the GRU and the reverb start from rest).
        for f in 8..controls.len() {
            let c = controls[f];
            if c.loudness_db > -45.0 && pitch[f].voiced {
                cents.push((1200.0 * (pitch[f].f0_hz as f64 / c.f0_hz as f64).log2()).abs());
            }
            if c.loudness_db > -70.0 {
                loud_err += (loud[f] - c.loudness_db).abs() as f64;
                loud_n += 1;
            }
        }
        let dev = Device::Cpu;
        let a = Tensor::from_vec(out, (1, seg.audio.len()), &dev)?;
        let b = Tensor::from_vec(seg.audio.clone(), (1, seg.audio.len()), &dev)?;
        dist += mrstft_loss(&a, &b, &PAPER_RESOLUTIONS)?.to_scalar::<f32>()? as f64;
        segs += 1;
    }
    cents.sort_by(f64::total_cmp);
    Ok(Scores {
        median_pitch_cents: cents.get(cents.len() / 2).copied().unwrap_or(f64::NAN),
        loudness_mae_db: loud_err / loud_n.max(1) as f64,
        mrstft: dist / segs.max(1) as f64,
        frames: cents.len(),
    })
}
