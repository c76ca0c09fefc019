//! `newt-eval eval` (`cargo xtask eval`): held-out phrases resynthesised from their extracted controls by
//! NEWT with its exact MLP shapers, by FastNEWT (both through the real-time engine), and
//! by the DDSP-style baseline trained on the same data (candle, from its checkpoint; the
//! row is skipped with a note when there is none, or for a model in the authors'
//! loudness), scored against the controls and the real audio. Writes a markdown table,
//! log-mel spectrograms (real vs each model) and the WAVs.
//!
//! A model is shown its controls in the loudness measure it was trained on
//! (`ModelMeta::loudness_measure`): the dataset's A-weighted dBFS as they are, or for a
//! model of the NEWT authors ([`LoudnessMeasure::NwsDb`]) their loudness recomputed from
//! the audio (see [`NwsReference`]); the loudness error is measured in that same measure.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use candle_core::{Device, Tensor};
use clap::Args;
use clap::ValueEnum;
use newt_engine::{
    Drive, Engine, EngineConfig, EngineParams, FrameControls, ShaperPath, render_controls_to_vec,
};
use newt_features::{LoudnessMeasure, PitchConfig, loudness_db, nws_loudness_db, track_pitch};
use newt_features::{read_wav, resample, write_pcm16};
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
    /// For a model in the NEWT authors' loudness (`nws_db`): what the loudness of a
    /// held-out segment is relative to.
    #[arg(long, value_enum, default_value_t = NwsReference::Phrase)]
    nws_reference: NwsReference,
    /// Label of this model in `side-by-side.png` (default: the model's file stem).
    #[arg(long)]
    label: Option<String>,
    /// `LABEL=DIR`: write `side-by-side.png`, log-mel spectrograms of the real audio, this
    /// model's MLP-shaper resynthesis and that of another `eval` run on the same data (its
    /// `DIR/newt-mlp.wav`) under LABEL (default: the folder's name), each model scaled to
    /// the real audio's RMS. Repeatable.
    #[arg(long, value_name = "LABEL=DIR")]
    figure_with: Vec<String>,
}

/// The reference of the authors' loudness ([`LoudnessMeasure::NwsDb`]): the loudest STFT
/// bin of the signal it is computed on, so its values depend on how much audio is passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NwsReference {
    /// The whole phrase file the segment was cut from, as the authors do per recording
    /// (loudness of the whole file, then cut into segments); the output is measured
    /// against the louder of that reference and its own loudest bin, i.e. as if it
    /// replaced the real segment in the phrase.
    Phrase,
    /// The 1 s segment alone (its own loudest bin); the output is measured against the
    /// louder of the real segment's loudest bin and its own.
    Segment,
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
    /// In the model's loudness measure.
    pub loudness_mae_db: f64,
    /// Level of the output against the real audio (RMS over all segments), in dB.
    pub level_db: f64,
    /// `mrstft` and `frechet_log_mel` with the output scaled by the one gain that brings
    /// its RMS over all segments to the real audio's (`-level_db`).
    pub mrstft_level_matched: f64,
    pub frechet_log_mel_level_matched: f64,
}

/// A held-out segment's loudness control in the model's measure.
struct HeldOut {
    /// Per frame, in the model's [`LoudnessMeasure`].
    loudness_db: Vec<f32>,
    /// [`LoudnessMeasure::NwsDb`]: the reference magnitude the control is relative to.
    nws_reference: Option<f64>,
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
    let measure = model.meta.loudness_measure;
    let held_out = held_out_controls(&segments, measure, args.nws_reference, sr, hop)?;
    let mut notes = Vec::new();

    let baseline_dir = args
        .baseline
        .clone()
        .unwrap_or_else(|| args.model.with_file_name(format!("{stem}.ddsp.ckpt")));
    let device = Device::Cpu;
    let ddsp = if measure != LoudnessMeasure::AWeightedDbfs {
        // `cargo xtask train` makes baselines on A-weighted controls only.
        notes.push(format!(
            "DDSP baseline: skipped (the model's loudness is {}; baselines are trained on \
             A-weighted dBFS).",
            measure_name(measure)
        ));
        None
    } else if baseline_dir.join("weights.safetensors").exists() {
        let meta = meta_for(&dataset, &model.meta.instrument);
        Some(Ddsp::from_checkpoint(&baseline_dir, meta, &device)?)
    } else {
        println!(
            "no DDSP baseline at {} (train one with `cargo xtask train --decoder ddsp --out {}`)",
            baseline_dir.display(),
            args.model.display()
        );
        notes.push(format!(
            "DDSP baseline: skipped (no checkpoint at `{}`).",
            baseline_dir.display()
        ));
        None
    };

    let real: Vec<Vec<f32>> = segments.iter().map(|s| s.audio.clone()).collect();
    let mut systems: Vec<(&'static str, Vec<Vec<f32>>)> = vec![
        (
            "NEWT (MLP shapers)",
            render_engine(&model, &segments, &held_out, ShaperPath::Mlp)?,
        ),
        (
            "FastNEWT (tables)",
            render_engine(&model, &segments, &held_out, ShaperPath::Table)?,
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
    let truth = Truth {
        real: &real,
        real_mel: &real_mel,
        segments: &segments,
        held_out: &held_out,
        measure,
        sr,
        hop,
    };
    let mut scores = Vec::new();
    for (name, outs) in &systems {
        scores.push(score(name, outs, &truth)?);
    }

    // Figures and sound: the first few held-out segments back to back.
    let shown = segments.len().min(SHOWN_SEGMENTS);
    let joined = |xs: &[Vec<f32>]| -> Vec<f32> { xs[..shown].concat() };
    let mut panels: Vec<(String, Vec<Vec<f64>>)> =
        vec![("real".to_string(), log_mel(&joined(&real), sr))];
    write_pcm16(&out_dir.join("real.wav"), &joined(&real), sr)?;
    for (name, outs) in &systems {
        panels.push((name.to_string(), log_mel(&joined(outs), sr)));
        write_pcm16(
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
    figures::spectrograms(
        &png,
        &format!("{}: held-out phrases, log-mel", model.meta.instrument),
        &refs,
    )?;

    if !args.figure_with.is_empty() {
        let own = args.label.clone().unwrap_or_else(|| stem.clone());
        let mlp = &systems[0].1;
        side_by_side(
            &out_dir,
            &model,
            &joined(&real),
            (&own, &joined(mlp)),
            &args.figure_with,
        )?;
    }

    let table = markdown(
        &model,
        &scores,
        segments.len(),
        &held_out,
        args.nws_reference,
        &notes,
    );
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
    held_out: &[HeldOut],
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
        .zip(held_out)
        .map(|(seg, held)| {
            let controls: Vec<FrameControls> = seg
                .f0_hz
                .iter()
                .zip(&held.loudness_db)
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

/// What each system is scored against.
struct Truth<'a> {
    real: &'a [Vec<f32>],
    real_mel: &'a [Vec<f64>],
    segments: &'a [&'a Segment],
    held_out: &'a [HeldOut],
    measure: LoudnessMeasure,
    sr: u32,
    hop: usize,
}

fn score(name: &'static str, outs: &[Vec<f32>], truth: &Truth) -> anyhow::Result<Scores> {
    let Truth {
        real,
        real_mel,
        segments,
        held_out,
        measure,
        sr,
        hop,
    } = *truth;
    let mut cents = Vec::new();
    let mut looked_at = 0usize;
    let (mut loud_err, mut loud_n) = (0.0f64, 0usize);
    let (mut dist, mut dist_matched) = (0.0f64, 0.0f64);
    let (mut mel, mut mel_matched) = (Vec::new(), Vec::new());
    // One gain over all segments: the level offset alone, not the dynamics.
    let energy = |xs: &mut dyn Iterator<Item = &[f32]>| -> f64 {
        xs.flat_map(|x| x.iter().map(|&v| f64::from(v).powi(2)))
            .sum()
    };
    let out_energy = energy(
        &mut outs
            .iter()
            .zip(real)
            .map(|(o, t)| &o[..t.len().min(o.len())]),
    );
    let real_energy = energy(
        &mut outs
            .iter()
            .zip(real)
            .map(|(o, t)| &t[..t.len().min(o.len())]),
    );
    let gain = if out_energy > 0.0 {
        (real_energy / out_energy).sqrt()
    } else {
        1.0
    };
    for (((out, target), seg), held) in outs.iter().zip(real).zip(segments).zip(held_out) {
        let out = &out[..target.len().min(out.len())];
        let config = PitchConfig {
            sample_rate: sr,
            hop,
            ..PitchConfig::default()
        };
        let pitch = track_pitch(out, config)?;
        // The output's loudness in the model's measure; for the authors' measure against
        // the louder of the control's reference and the output's own loudest bin.
        let loud = match (measure, held.nws_reference) {
            (LoudnessMeasure::NwsDb, Some(reference)) => {
                nws_db_relative_to(out, hop, reference.max(nws_peak_magnitude(out, hop)))
            }
            _ => loudness_db(out, sr, hop)?,
        };
        // Skip the first frames (the GRU and the reverb start from rest). Frames are
        // chosen by the real audio's A-weighted loudness whatever the model's measure, so
        // that every model is scored on the same frames.
        let frames = seg.f0_hz.len().min(pitch.len()).min(loud.len());
        for f in 8..frames {
            let (f0, l) = (seg.f0_hz[f], seg.loudness_db[f]);
            looked_at += usize::from(l > -45.0);
            if l > -45.0 && pitch[f].voiced {
                cents.push((1200.0 * (pitch[f].f0_hz as f64 / f0 as f64).log2()).abs());
            }
            if l > -70.0 {
                loud_err += (loud[f] - held.loudness_db[f]).abs() as f64;
                loud_n += 1;
            }
        }
        let dev = Device::Cpu;
        let a = Tensor::from_vec(out.to_vec(), (1, out.len()), &dev)?;
        let b = Tensor::from_vec(target[..out.len()].to_vec(), (1, out.len()), &dev)?;
        dist += mrstft_loss(&a, &b, &PAPER_RESOLUTIONS)?.to_scalar::<f32>()? as f64;
        mel.extend(log_mel(out, sr));
        let scaled: Vec<f32> = out.iter().map(|&v| (f64::from(v) * gain) as f32).collect();
        mel_matched.extend(log_mel(&scaled, sr));
        let a = Tensor::from_vec(scaled, (1, out.len()), &dev)?;
        dist_matched += mrstft_loss(&a, &b, &PAPER_RESOLUTIONS)?.to_scalar::<f32>()? as f64;
    }
    cents.sort_by(f64::total_cmp);
    Ok(Scores {
        name,
        mrstft: dist / outs.len().max(1) as f64,
        frechet_log_mel: frechet_distance(real_mel, &mel),
        median_pitch_cents: cents.get(cents.len() / 2).copied().unwrap_or(f64::NAN),
        voiced_percent: 100.0 * cents.len() as f64 / looked_at.max(1) as f64,
        loudness_mae_db: loud_err / loud_n.max(1) as f64,
        level_db: -20.0 * gain.log10(),
        mrstft_level_matched: dist_matched / outs.len().max(1) as f64,
        frechet_log_mel_level_matched: frechet_distance(real_mel, &mel_matched),
    })
}

fn markdown(
    model: &NewtModel,
    scores: &[Scores],
    segments: usize,
    held_out: &[HeldOut],
    nws_reference: NwsReference,
    notes: &[String],
) -> String {
    let measure = model.meta.loudness_measure;
    let mut t = format!(
        "Held-out resynthesis of {} ({} segments of 1 s; lower is better everywhere).\n\n\
         | system | MR-STFT distance | Fréchet log-mel distance | pitch error, median (cents) | output voiced (%) | loudness error ({}) |\n\
         |---|---|---|---|---|---|\n",
        model.meta.instrument,
        segments,
        measure_unit(measure)
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
    t.push_str(
        "\nLevel: the output's RMS over all segments against the real audio's, and the \
         distances with the output scaled by the one gain that removes that difference \
         (its dynamics untouched).\n\n\
         | system | level vs real (dB) | MR-STFT distance, level-matched | Fréchet log-mel distance, level-matched |\n\
         |---|---|---|---|\n",
    );
    for s in scores {
        t.push_str(&format!(
            "| {} | {:+.1} | {:.4} | {:.3} |\n",
            s.name, s.level_db, s.mrstft_level_matched, s.frechet_log_mel_level_matched
        ));
    }
    let (mean, std) = mean_std(held_out.iter().flat_map(|h| &h.loudness_db));
    let m = &model.meta;
    t.push_str(&format!(
        "\nLoudness is in the model's own measure, {}: the controls it was shown and the \
         loudness error both. A-weighted dBFS and the NEWT authors' dB are different scales; \
         loudness errors in the two are not comparable.\n\
         Loudness controls of these segments: {mean:.1} +- {std:.1} dB; the model's training \
         data: {:.1} +- {:.1} dB.\n",
        measure_name(measure),
        m.loudness_mean_db,
        m.loudness_std_db
    ));
    if measure == LoudnessMeasure::NwsDb {
        t.push_str(match nws_reference {
            NwsReference::Phrase => {
                "The authors' loudness of each whole phrase file (relative to its loudest \
                 STFT bin, as the authors compute it per recording), cut to the segment; the \
                 output is measured against the louder of that reference and its own loudest \
                 bin (as if it replaced the real segment in the phrase).\n"
            }
            NwsReference::Segment => {
                "The authors' loudness of each 1 s segment alone (relative to its own loudest \
                 STFT bin); the output is measured against the louder of the real segment's \
                 loudest bin and its own.\n"
            }
        });
    }
    for note in notes {
        t.push_str(&format!("{note}\n"));
    }
    t
}

fn measure_name(measure: LoudnessMeasure) -> &'static str {
    match measure {
        LoudnessMeasure::AWeightedDbfs => "A-weighted dBFS",
        LoudnessMeasure::NwsDb => "the NEWT authors' dB (in [-80, 0], not A-weighted)",
    }
}

fn measure_unit(measure: LoudnessMeasure) -> &'static str {
    match measure {
        LoudnessMeasure::AWeightedDbfs => "dB, A-weighted",
        LoudnessMeasure::NwsDb => "dB, authors' measure",
    }
}

fn mean_std<'a>(values: impl Iterator<Item = &'a f32>) -> (f64, f64) {
    let (mut n, mut s, mut s2) = (0.0f64, 0.0f64, 0.0f64);
    for &v in values {
        n += 1.0;
        s += f64::from(v);
        s2 += f64::from(v).powi(2);
    }
    let mean = s / n.max(1.0);
    (mean, (s2 / n.max(1.0) - mean * mean).max(0.0).sqrt())
}

fn file_name(name: &str) -> String {
    name.split(' ').next().unwrap_or(name).to_lowercase()
        + if name.contains("MLP") { "-mlp" } else { "" }
}

/// The held-out segments' loudness controls in `measure`: the dataset's (A-weighted dBFS)
/// as they are, or the authors' loudness recomputed from the audio (relative to the whole
/// phrase file or to the segment, `reference`).
fn held_out_controls(
    segments: &[&Segment],
    measure: LoudnessMeasure,
    reference: NwsReference,
    sr: u32,
    hop: usize,
) -> anyhow::Result<Vec<HeldOut>> {
    if measure == LoudnessMeasure::AWeightedDbfs {
        return Ok(segments
            .iter()
            .map(|seg| HeldOut {
                loudness_db: seg.loudness_db.clone(),
                nws_reference: None,
            })
            .collect());
    }
    // Per phrase file: its loudness in the authors' measure and its loudest bin.
    let mut phrases: HashMap<PathBuf, (Vec<f32>, Vec<f32>, f64)> = HashMap::new();
    segments
        .iter()
        .map(|seg| {
            let n = seg.f0_hz.len();
            if reference == NwsReference::Segment {
                let loud = nws_loudness_db(&seg.audio, sr, hop)?;
                anyhow::ensure!(loud.len() >= n, "{}: too few frames", seg.source);
                return Ok(HeldOut {
                    loudness_db: loud[..n].to_vec(),
                    nws_reference: Some(nws_peak_magnitude(&seg.audio, hop)),
                });
            }
            let (path, seconds) = seg
                .source
                .rsplit_once('@')
                .and_then(|(p, t)| Some((p, t.strip_suffix('s')?.parse::<f64>().ok()?)))
                .with_context(|| format!("segment source {:?} is not PATH@SECONDSs", seg.source))?;
            let path = PathBuf::from(path);
            if !phrases.contains_key(&path) {
                let (audio, rate) =
                    read_wav(&path).with_context(|| format!("reading {}", path.display()))?;
                let audio = resample(&audio, rate, sr)
                    .map_err(|e| anyhow::anyhow!("resampling {}: {e}", path.display()))?;
                let loud = nws_loudness_db(&audio, sr, hop)?;
                let peak = nws_peak_magnitude(&audio, hop);
                phrases.insert(path.clone(), (audio, loud, peak));
            }
            let (audio, loud, peak) = &phrases[&path];
            // Segments start on multiples of their own length.
            let len = seg.audio.len();
            let start = ((seconds * sr as f64 / len as f64).round() as usize) * len;
            anyhow::ensure!(
                start.is_multiple_of(hop)
                    && audio.get(start..start + len) == Some(seg.audio.as_slice())
                    && start / hop + n <= loud.len(),
                "{}: the segment is not at {start} samples of its file",
                seg.source
            );
            Ok(HeldOut {
                loudness_db: loud[start / hop..start / hop + n].to_vec(),
                nws_reference: Some(*peak),
            })
        })
        .collect()
}

/// Calls `on_frame` with the magnitudes of each frame of the authors' loudness STFT of
/// `audio` (`newt_features::nws_loudness`: 1024-point periodic Hann, numpy `reflect`
/// padding of 512 samples, `1 + len / hop` frames, frame `f` centred on sample `f * hop`).
fn nws_frames(audio: &[f32], hop: usize, mut on_frame: impl FnMut(&[f64])) {
    use newt_features::nws_loudness::NWS_N_FFT;
    let len = audio.len();
    if len == 0 || hop == 0 {
        return;
    }
    let fft = realfft::RealFftPlanner::<f64>::new().plan_fft_forward(NWS_N_FFT);
    let window: Vec<f64> = (0..NWS_N_FFT)
        .map(|i| 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / NWS_N_FFT as f64).cos())
        .collect();
    let (mut time, mut spec) = (fft.make_input_vec(), fft.make_output_vec());
    let mut mag = vec![0.0f64; spec.len()];
    let reflect = |i: isize| -> usize {
        if len <= 1 {
            return 0;
        }
        let period = 2 * (len as isize - 1);
        let m = i.rem_euclid(period);
        (if m >= len as isize { period - m } else { m }) as usize
    };
    for f in 0..=len / hop {
        let start = (f * hop) as isize - (NWS_N_FFT / 2) as isize;
        for (i, (t, w)) in time.iter_mut().zip(&window).enumerate() {
            let x = audio[reflect(start + i as isize)];
            *t = if x.is_finite() { f64::from(x) * w } else { 0.0 };
        }
        if fft.process(&mut time, &mut spec).is_err() {
            mag.fill(0.0);
        } else {
            for (m, c) in mag.iter_mut().zip(&spec) {
                *m = c.norm();
            }
        }
        on_frame(&mag);
    }
}

/// The largest STFT magnitude of `audio` in the authors' loudness transform: the reference
/// their loudness of `audio` is relative to.
fn nws_peak_magnitude(audio: &[f32], hop: usize) -> f64 {
    let mut peak = 0.0f64;
    nws_frames(audio, hop, |mag| {
        peak = mag.iter().copied().fold(peak, f64::max);
    });
    peak
}

/// The authors' loudness of `audio` (their dB, [-80, 0]) relative to `reference` instead of
/// the loudest bin of `audio` itself; with `reference = nws_peak_magnitude(audio)` it is
/// `newt_features::nws_loudness_db`.
fn nws_db_relative_to(audio: &[f32], hop: usize, reference: f64) -> Vec<f32> {
    use newt_features::nws_loudness::{NWS_AMIN, NWS_SILENCE_DB};
    let ref_db = 20.0 * reference.max(NWS_AMIN).log10();
    let floor = f64::from(NWS_SILENCE_DB);
    let mut out = Vec::with_capacity(1 + audio.len() / hop.max(1));
    nws_frames(audio, hop, |mag| {
        let sum: f64 = mag
            .iter()
            .map(|m| (20.0 * m.max(NWS_AMIN).log10() - ref_db).max(floor))
            .sum();
        out.push((sum / mag.len().max(1) as f64) as f32);
    });
    out
}

/// `side-by-side.png`: log-mel spectrograms of the real held-out audio, this model's
/// MLP-shaper resynthesis and that of each `LABEL=DIR` (another `eval` run's
/// `DIR/newt-mlp.wav`, which must have been made from the same held-out audio), each
/// model's scaled by the gain that brings its RMS to the real audio's.
fn side_by_side(
    out_dir: &Path,
    model: &NewtModel,
    real: &[f32],
    own: (&str, &[f32]),
    others: &[String],
) -> anyhow::Result<()> {
    let sr = model.meta.sample_rate;
    let ours = read_wav(&out_dir.join("real.wav"))?.0;
    // Each model scaled to the real audio's RMS (the models trained on other recordings
    // play at another level), the gain in its label.
    let rms = |x: &[f32]| {
        (x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
    };
    let matched = |label: &str, x: &[f32]| -> (String, Vec<Vec<f64>>) {
        let gain = if rms(x) > 0.0 {
            rms(real) / rms(x)
        } else {
            1.0
        };
        let scaled: Vec<f32> = x.iter().map(|&v| (f64::from(v) * gain) as f32).collect();
        (
            format!("{label} {:+.0} dB", 20.0 * gain.log10()),
            log_mel(&scaled, sr),
        )
    };
    let mut panels: Vec<(String, Vec<Vec<f64>>)> = vec![
        ("real".to_string(), log_mel(real, sr)),
        matched(own.0, own.1),
    ];
    for spec in others {
        let (label, dir) = match spec.split_once('=') {
            Some((label, dir)) => (label.to_string(), PathBuf::from(dir)),
            None => {
                let dir = PathBuf::from(spec);
                let label = dir
                    .file_name()
                    .map_or(spec.clone(), |n| n.to_string_lossy().into_owned());
                (label, dir)
            }
        };
        let (theirs, rate) = read_wav(&dir.join("real.wav"))
            .with_context(|| format!("{}: not an `eval` output folder", dir.display()))?;
        anyhow::ensure!(
            rate == sr && theirs == ours,
            "{} was evaluated on other held-out audio than this run",
            dir.display()
        );
        let (audio, _) = read_wav(&dir.join("newt-mlp.wav"))?;
        panels.push(matched(&label, &audio));
    }
    let refs: Vec<(&str, &[Vec<f64>])> = panels
        .iter()
        .map(|(n, f)| (n.as_str(), f.as_slice()))
        .collect();
    let png = out_dir.join("side-by-side.png");
    figures::spectrograms(
        &png,
        &format!(
            "{}, held-out phrases: log-mel, models level-matched to real",
            model.meta.instrument
        ),
        &refs,
    )?;
    println!("wrote {}", png.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authors_loudness_relative_to_its_own_peak_is_the_library_s() {
        let (sr, hop) = (16_000u32, 128usize);
        // A note with a crescendo and a second harmonic, then near-silence.
        let x: Vec<f32> = (0..12_000)
            .map(|i| {
                let t = i as f64 / sr as f64;
                let env = if i < 9_000 { t * 2.0 } else { 1e-4 };
                let p = std::f64::consts::TAU * 330.0 * t;
                (env * (0.3 * p.sin() + 0.1 * (2.0 * p).sin())) as f32
            })
            .collect();
        let library = nws_loudness_db(&x, sr, hop).unwrap();
        let ours = nws_db_relative_to(&x, hop, nws_peak_magnitude(&x, hop));
        assert_eq!(library.len(), ours.len());
        for (a, b) in library.iter().zip(&ours) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
        // Against a reference 6 dB higher every frame above the floor drops by 6 dB.
        let peak = nws_peak_magnitude(&x, hop);
        let lower = nws_db_relative_to(&x, hop, 2.0 * peak);
        assert!(lower.iter().zip(&ours).all(|(l, o)| l <= o));
        assert!(lower.iter().zip(&ours).any(|(l, o)| o - l > 1.0));
    }
}
