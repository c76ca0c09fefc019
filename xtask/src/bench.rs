//! `cargo xtask bench engine`: real-time factors of the engine, measured in one run so
//! that their ratios hold on a shared, noisy machine.

use std::time::Instant;

use clap::Subcommand;
use newt_engine::offline::frames_to_host_samples;
use newt_engine::{
    Drive, Engine, EngineConfig, EngineParams, EventKind, FrameControls, ShaperPath, TimedEvent,
    VoiceMode, controls_to_events, render_to_vec,
};
use newt_model::NewtModel;

#[derive(Subcommand)]
pub enum BenchWhat {
    /// Prints `fastnewt_rtf=X mlp_rtf=Y poly16_48k_core_fraction=Z`.
    Engine {
        /// Seconds of audio per measurement.
        #[arg(long, default_value_t = 8.0)]
        seconds: f64,
        /// Repetitions; the median is reported.
        #[arg(long, default_value_t = 5)]
        repeats: usize,
        /// Host block size in samples for the single-voice runs (at the model rate).
        #[arg(long, default_value_t = 512)]
        block: usize,
        /// Run only the FastNEWT single-voice measurement (for profiling).
        #[arg(long)]
        fast_only: bool,
    },
}

pub fn run(what: BenchWhat) -> anyhow::Result<()> {
    match what {
        BenchWhat::Engine {
            seconds,
            repeats,
            block,
            fast_only,
        } => engine(seconds, repeats, block, fast_only),
    }
}

/// A phrase of controls: f0 wandering over 196-880 Hz (violin range) with vibrato,
/// loudness swelling; the cost of the exciter depends on f0 (harmonics below Nyquist).
pub fn bench_controls(frames: usize) -> Vec<FrameControls> {
    (0..frames)
        .map(|f| {
            let t = f as f32 * 0.008;
            let semis = 12.0 * (0.5 + 0.5 * (0.37 * t).sin()) + 7.0 * (0.11 * t).sin().abs();
            let vibrato = 0.2 * (std::f32::consts::TAU * 5.5 * t).sin();
            FrameControls {
                f0_hz: 196.0 * ((semis + 7.0 * (0.05 * t).sin().abs() + vibrato) / 12.0).exp2(),
                loudness_db: -35.0 + 12.0 * (0.7 * t).sin(),
            }
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Seconds of compute for one render of `seconds` of audio, single voice, driven by
/// controls at the model rate, host blocks of `block` samples.
fn single_voice(
    model: &NewtModel,
    shaper: ShaperPath,
    seconds: f64,
    block: usize,
) -> anyhow::Result<(f64, f64)> {
    let (sr, hop) = (model.meta.sample_rate, model.meta.hop);
    let frames = (seconds * sr as f64 / hop as f64) as usize;
    let controls = bench_controls(frames);
    let events = controls_to_events(&controls, sr, hop, sr);
    let len = frames_to_host_samples(frames, sr, hop, sr);
    let config = EngineConfig {
        host_sample_rate: sr,
        max_block: block.max(1),
        voices: 1,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(model.clone(), config)?;
    let mut params = EngineParams {
        drive: Drive::Controls,
        ..EngineParams::default()
    };
    params.voice.shaper = shaper;
    let start = Instant::now();
    let out = render_to_vec(&mut engine, &events, &params, len, block);
    let took = start.elapsed().as_secs_f64();
    std::hint::black_box(out);
    Ok((took, len as f64 / sr as f64))
}

/// 16 voices held (poly mode) at a 48 kHz host rate, host block 512.
fn poly16(model: &NewtModel, seconds: f64) -> anyhow::Result<(f64, f64)> {
    let rate = 48_000u32;
    let config = EngineConfig {
        host_sample_rate: rate,
        max_block: 512,
        voices: 16,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(model.clone(), config)?;
    let params = EngineParams {
        mode: VoiceMode::Poly,
        ..EngineParams::default()
    };
    // Two octaves of a stacked chord from G3: every voice sounding for the whole run.
    let events: Vec<TimedEvent> = (0..16u8)
        .map(|v| TimedEvent {
            sample: v as u64 * 7,
            kind: EventKind::NoteOn {
                note: 55 + (v * 5) % 26,
                velocity: 0.7,
            },
        })
        .collect();
    let len = (seconds * rate as f64) as usize;
    let start = Instant::now();
    let out = render_to_vec(&mut engine, &events, &params, len, 512);
    let took = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        engine.active_voices() == 16,
        "only {} voices sounded",
        engine.active_voices()
    );
    std::hint::black_box(out);
    Ok((took, seconds))
}

fn engine(seconds: f64, repeats: usize, block: usize, fast_only: bool) -> anyhow::Result<()> {
    let (model, name) = crate::render::default_model()?;
    eprintln!(
        "model: {name}; {seconds} s of audio per run, median of {repeats}; one thread; single voice at the model rate in blocks of {block}"
    );
    let repeats = repeats.max(1);
    let (mut fast, mut mlp, mut poly) = (Vec::new(), Vec::new(), Vec::new());
    // Interleaved so that machine noise hits all three alike. The MLP path is slow: it
    // renders a quarter of the audio.
    for _ in 0..repeats {
        let (t, a) = single_voice(&model, ShaperPath::Table, seconds, block)?;
        fast.push(t / a);
        if fast_only {
            continue;
        }
        let (t, a) = single_voice(&model, ShaperPath::Mlp, (seconds / 4.0).max(1.0), block)?;
        mlp.push(t / a);
        let (t, a) = poly16(&model, seconds)?;
        poly.push(t / a);
    }
    if fast_only {
        println!("fastnewt_rtf={:.5}", median(fast));
        return Ok(());
    }
    let (fast, mlp, poly) = (median(fast), median(mlp), median(poly));
    eprintln!("MLP / FastNEWT cost ratio: {:.1}", mlp / fast);
    println!("fastnewt_rtf={fast:.5} mlp_rtf={mlp:.5} poly16_48k_core_fraction={poly:.4}");
    Ok(())
}
