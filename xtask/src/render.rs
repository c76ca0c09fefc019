//! `cargo xtask render`: controls CSV, MIDI file or a recording (timbre transfer) -> WAV.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use newt_engine::offline::frames_to_host_samples;
use newt_engine::{
    Drive, Engine, EngineConfig, EngineParams, FrameControls, ShaperPath, TimedEvent, VoiceMode,
    controls_to_events, render_aligned_to_vec,
};
use newt_model::NewtModel;

pub const DEMO_MIDI: &str = "assets/demo/demo.mid";
pub const MODELS_DIR: &str = "assets/models";
/// The model played when none is named: chosen by name, so that adding models never
/// changes what `render` and `dist` play (the plugin's default is the same model).
pub const DEFAULT_MODEL: &str = "flute.safetensors";

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ShaperArg {
    Fast,
    Mlp,
}

#[derive(Args, Debug)]
pub struct RenderArgs {
    /// A controls CSV (`f0_hz,loudness_db`, one row per model frame, loudness in the
    /// model's own measure: A-weighted dBFS for ours, the authors' dB for the imported
    /// `*-urmp` models), a MIDI file, or a WAV recording of one monophonic instrument
    /// (any rate, any channel count) whose pitch and loudness the model plays (timbre
    /// transfer). Default: the bundled demo melody.
    input: Option<PathBuf>,
    /// Model file. Default: the bundled model in assets/models/ (or the seeded demo model
    /// while none is bundled).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Output WAV. Default: out/<input name>.wav
    #[arg(long)]
    out: Option<PathBuf>,
    /// Output sample rate in Hz (22050..=192000).
    #[arg(long, default_value_t = 48_000)]
    sample_rate: u32,
    /// Shaper implementation: FastNEWT tables or the exact MLPs.
    #[arg(long, value_enum, default_value_t = ShaperArg::Fast)]
    shaper: ShaperArg,
    /// Host block size used for rendering (the output does not depend on it).
    #[arg(long, default_value_t = 512)]
    block: usize,
    /// Polyphonic note handling for MIDI input (default: monophonic legato).
    #[arg(long)]
    poly: bool,
    /// Write 32-bit float samples instead of 16-bit PCM.
    #[arg(long)]
    float: bool,
    /// Wet/dry mix of the model's learned reverb, 0..=1 (default: the engine's).
    #[arg(long)]
    reverb_mix: Option<f32>,
    /// Linear gain of the filtered-noise branch (default 1).
    #[arg(long)]
    noise_gain: Option<f32>,
    /// Keep the model's own output level. By default the render is scaled so that its
    /// peak is at -1 dBFS (models trained on quiet recordings play quietly).
    #[arg(long)]
    raw_level: bool,
    /// WAV input: shift the extracted pitch by this many semitones (the authors'
    /// notebook plays an octave up by default: 12).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    transpose: f32,
    /// WAV input: also write the extracted controls as a CSV (`f0_hz,loudness_db`,
    /// loudness in the model's own measure), readable as an input of `render`.
    #[arg(long)]
    controls_out: Option<PathBuf>,
}

impl RenderArgs {
    /// `cargo xtask render` with no arguments: the demo melody, the default model.
    pub fn default_demo() -> Self {
        Self {
            input: None,
            model: None,
            out: None,
            sample_rate: 48_000,
            shaper: ShaperArg::Fast,
            block: 512,
            poly: false,
            float: false,
            reverb_mix: None,
            noise_gain: None,
            raw_level: false,
            transpose: 0.0,
            controls_out: None,
        }
    }
}

/// The default bundled model ([`DEFAULT_MODEL`]), or the seeded demo model on a checkout
/// without it.
pub fn default_model() -> anyhow::Result<(NewtModel, String)> {
    let p = Path::new(MODELS_DIR).join(DEFAULT_MODEL);
    if p.exists() {
        Ok((
            NewtModel::load(&p).with_context(|| format!("bundled model {}", p.display()))?,
            p.display().to_string(),
        ))
    } else {
        Ok((NewtModel::seeded(0), "NewtModel::seeded(0)".into()))
    }
}

pub fn run(args: RenderArgs) -> anyhow::Result<()> {
    let (model, model_name) = match &args.model {
        Some(p) => (
            NewtModel::load(p).with_context(|| format!("loading model {}", p.display()))?,
            p.display().to_string(),
        ),
        None => default_model()?,
    };
    if model.meta.instrument == NewtModel::SEEDED_NAME {
        println!(
            "note: no trained model is bundled yet; using the seeded demo model (random weights, not trained)"
        );
    }
    let input = args
        .input
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEMO_MIDI));
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = input
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or("render".into());
        PathBuf::from("out").join(format!("{stem}.wav"))
    });
    let host = args.sample_rate;
    let (hop, model_rate) = (model.meta.hop, model.meta.sample_rate);
    let mut params = EngineParams {
        mode: if args.poly {
            VoiceMode::Poly
        } else {
            VoiceMode::MonoLegato
        },
        ..EngineParams::default()
    };
    if let Some(mix) = args.reverb_mix {
        params.reverb_mix = mix;
    }
    if let Some(gain) = args.noise_gain {
        params.voice.noise_gain = gain;
    }
    params.voice.shaper = match args.shaper {
        ShaperArg::Fast => ShaperPath::Table,
        ShaperArg::Mlp => ShaperPath::Mlp,
    };
    // 2 s of reverb tail after the last event.
    let tail = 2 * host as usize + host as usize / 2;
    let (events, len) = if is_csv(&input) || is_wav(&input) {
        let controls = if is_wav(&input) {
            let c = controls_from_recording(&input, &model.meta, args.transpose)?;
            if let Some(path) = &args.controls_out {
                write_controls_csv(path, &c)?;
                println!("wrote the extracted controls to {}", path.display());
            }
            c
        } else {
            read_controls_csv(&input)?
        };
        params.drive = Drive::Controls;
        let events = controls_to_events(&controls, model_rate, hop, host);
        let mut events = events;
        // Silence after the last frame so the tail rings out naturally.
        let end = frames_to_host_samples(controls.len(), model_rate, hop, host) as u64;
        events.push(TimedEvent {
            sample: end,
            kind: newt_engine::EventKind::Controls(FrameControls::SILENT),
        });
        (events, end as usize + tail)
    } else {
        let bytes =
            std::fs::read(&input).with_context(|| format!("reading {}", input.display()))?;
        let timed = newt_engine::midi_file::read_midi(&bytes)
            .with_context(|| format!("reading {}", input.display()))?;
        let events: Vec<TimedEvent> = timed
            .iter()
            .map(|e| TimedEvent {
                sample: (e.seconds * host as f64).round() as u64,
                kind: e.kind,
            })
            .collect();
        let end = events.last().map_or(0, |e| e.sample) as usize;
        let release = (params.notes.release_s * host as f32 * 2.0) as usize;
        (events, end + release + tail)
    };
    let config = EngineConfig {
        host_sample_rate: host,
        max_block: args.block.max(1),
        voices: if args.poly { 16 } else { 1 },
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(model, config)?;
    let started = std::time::Instant::now();
    let mut audio = render_aligned_to_vec(&mut engine, &events, &params, len, args.block);
    let secs = started.elapsed().as_secs_f64();
    let raw_peak = audio.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    if !args.raw_level && raw_peak > 0.0 {
        let gain = 10f32.powf(-1.0 / 20.0) / raw_peak;
        audio.iter_mut().for_each(|x| *x *= gain);
        println!(
            "normalised by {:+.1} dB to a -1 dBFS peak (--raw-level keeps the model's level)",
            20.0 * gain.log10()
        );
    }
    let peak = write_wav(&out, &audio, host, args.float)?;
    let dur = audio.len() as f64 / host as f64;
    println!(
        "rendered {} ({:.1} s at {} Hz, {} shapers, model {}) in {:.2} s (RTF {:.4}), peak {:.1} dBFS",
        input.display(),
        dur,
        host,
        match args.shaper {
            ShaperArg::Fast => "FastNEWT",
            ShaperArg::Mlp => "MLP",
        },
        model_name,
        secs,
        secs / dur,
        20.0 * peak.max(1e-9).log10()
    );
    println!(
        "wrote {}",
        std::fs::canonicalize(&out).unwrap_or(out).display()
    );
    Ok(())
}

fn is_csv(p: &Path) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

fn is_wav(p: &Path) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav"))
}

/// The controls of a recording as `meta`'s model expects them: mixed to mono, resampled
/// to the model rate, pitch from `newt-features`' tracker and loudness in the model's own
/// measure (for the authors' measure, relative to the recording's loudest bin, as their
/// notebook computes it), the pitch shifted by `transpose` semitones. Frames before the
/// first voiced one take its pitch (the model never saw 0 Hz).
pub fn controls_from_recording(
    path: &Path,
    meta: &newt_model::ModelMeta,
    transpose: f32,
) -> anyhow::Result<Vec<FrameControls>> {
    let (audio, rate) = newt_features::read_wav(path)?;
    if audio.is_empty() {
        bail!("{} holds no samples", path.display());
    }
    let audio = newt_features::resample(&audio, rate, meta.sample_rate)
        .map_err(|e| anyhow::anyhow!("{}: resampling from {rate} Hz: {e}", path.display()))?;
    let config = newt_features::PitchConfig {
        sample_rate: meta.sample_rate,
        hop: meta.hop,
        ..newt_features::PitchConfig::default()
    };
    let frames = newt_features::extract_controls_with(&audio, config, meta.loudness_measure)
        .with_context(|| format!("extracting controls from {}", path.display()))?;
    let first_f0 = frames
        .iter()
        .find(|f| f.f0_hz > 0.0)
        .map_or(meta.f0_mean_hz, |f| f.f0_hz);
    let shift = (transpose / 12.0).exp2();
    Ok(frames
        .iter()
        .map(|f| FrameControls {
            f0_hz: if f.f0_hz > 0.0 { f.f0_hz } else { first_f0 } * shift,
            loudness_db: f.loudness_db,
        })
        .collect())
}

/// Writes `f0_hz,loudness_db` rows with a header line.
pub fn write_controls_csv(path: &Path, controls: &[FrameControls]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, newt_engine::format_controls_csv(controls))
        .with_context(|| format!("writing {}", path.display()))
}

/// Reads `f0_hz,loudness_db` rows (`newt_engine::parse_controls_csv`).
pub fn read_controls_csv(path: &Path) -> anyhow::Result<Vec<FrameControls>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    newt_engine::parse_controls_csv(&text).with_context(|| path.display().to_string())
}

/// Writes mono WAV; 16-bit output is scaled down if it would clip. Returns the peak.
fn write_wav(path: &Path, audio: &[f32], rate: u32, float: bool) -> anyhow::Result<f32> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let peak = audio.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: if float { 32 } else { 16 },
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    };
    let mut w = hound::WavWriter::create(path, spec)
        .with_context(|| format!("creating {}", path.display()))?;
    if float {
        for &x in audio {
            w.write_sample(x)?;
        }
    } else {
        let scale = if peak > 0.999 {
            println!(
                "note: peak {peak:.2} would clip 16-bit output; scaled down by {:.1} dB",
                20.0 * (0.999 / peak).log10()
            );
            0.999 / peak
        } else {
            1.0
        };
        for &x in audio {
            w.write_sample((x * scale * 32767.0).round() as i16)?;
        }
    }
    w.finalize()?;
    Ok(peak)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn controls_csv_with_header_parses() {
        let p = temp("ok.csv", "f0_hz,loudness_db\n440,-20\n\n441.5, -21.25\n");
        let c = read_controls_csv(&p).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(
            c[1],
            FrameControls {
                f0_hz: 441.5,
                loudness_db: -21.25
            }
        );
    }

    #[test]
    fn bad_controls_csv_names_the_line() {
        let p = temp("bad.csv", "440,-20\n440,loud\n");
        let e = format!("{:#}", read_controls_csv(&p).unwrap_err());
        assert!(e.contains("bad.csv") && e.contains("line 2"), "{e}");
        let p = temp("empty.csv", "f0_hz,loudness_db\n");
        assert!(format!("{:#}", read_controls_csv(&p).unwrap_err()).contains("no control frames"));
    }

    #[test]
    fn the_demo_melody_parses() {
        let bytes = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../",
            "assets/demo/demo.mid"
        ))
        .unwrap();
        let events = newt_engine::midi_file::read_midi(&bytes).unwrap();
        let notes = events
            .iter()
            .filter(|e| matches!(e.kind, newt_engine::EventKind::NoteOn { .. }))
            .count();
        assert_eq!(notes, 20);
        assert!(events.windows(2).all(|w| w[0].seconds <= w[1].seconds));
        assert!(newt_engine::midi_file::read_midi(b"MThd garbage").is_err());
    }
}
