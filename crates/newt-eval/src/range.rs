//! `newt-eval range` (`cargo xtask range`): does a model play worse outside the range map
//! it was trained on ([`newt_model::RangeMap`])? Each model plays a grid of constant notes
//! (pitch x loudness) through the real-time engine (FastNEWT tables); each note is scored
//! by the pitch the offline tracker hears in it and, for the models trained on FluidR3
//! SoundFont renders, by its log-spectral distance to the FluidR3 instrument playing the
//! same note. Results go to `docs/range/results.json` (resumable per model); the report
//! (`docs/RANGE.md`) and figures (`docs/figures/range-<model>.png`) are regenerated from
//! that file alone (`--report-only`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use figures::plotters::prelude::*;
use figures::plotters::style::colors::colormaps::ViridisRGB;
use newt_data::instrument::{self, Instrument};
use newt_data::performance::{Performance, PlayedNote};
use newt_data::render::{RENDER_RATE, load_sound_font, render};
use newt_engine::{
    Drive, Engine, EngineConfig, EngineParams, FrameControls, ShaperPath, render_controls_to_vec,
};
use newt_features::spectral::log_spectral_distance;
use newt_features::{LoudnessMeasure, PitchConfig, resample, track_pitch};
use newt_model::range::{KNOWN_SHARE, LOUDNESS_BIN_DB, hz_of_midi};
use newt_model::{NewtModel, RangeMap};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// The bundled models, in report order: ours (FluidR3 renders), then the NEWT authors'.
pub const MODELS: [&str; 8] = [
    "flute",
    "violin",
    "trumpet",
    "cello",
    "alto-sax",
    "flute-urmp",
    "violin-urmp",
    "trumpet-urmp",
];

/// Rate the notes are analysed at (the models' rate), and the pitch tracker's hop.
const RATE: u32 = 16_000;
const HOP: usize = 128;
/// Host rate of the engine.
const HOST_RATE: u32 = 48_000;
/// Highest pitch the tracker searches: above the grid's top note (MIDI 100, 2637 Hz);
/// the tracker's default (2.1 kHz) would miss the top notes.
const PITCH_F_MAX: f32 = 3_000.0;
/// Analysis stops this long before the end of a note (the tracker's and the loudness
/// meter's windows run past the end into zero padding).
const TAIL_S: f64 = 0.05;
/// Largest lag (samples at 16 kHz) searched when aligning a note with its reference.
const MAX_LAG: usize = 160;
/// A note whose median pitch error exceeds this counts as off pitch.
pub const OFF_CENTS: f64 = 50.0;
/// Pitch error of a note with no voiced frame.
pub const UNVOICED_CENTS: f64 = 1200.0;
/// A reference note at most this loud (A-weighted dBFS) is silence: no distance is taken.
const REFERENCE_SILENT_DB: f64 = -100.0;

#[derive(Args, Debug)]
pub struct RangeArgs {
    /// Models to measure: stems of `<model-dir>/<name>.safetensors`.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "flute,violin,trumpet,cello,alto-sax,flute-urmp,violin-urmp,trumpet-urmp"
    )]
    models: Vec<String>,
    #[arg(long, default_value = "assets/models")]
    model_dir: PathBuf,
    /// The SoundFont the references are played on (the training data's).
    #[arg(long, default_value = "data/sources/FluidR3_GM.sf2")]
    sound_font: PathBuf,
    /// Folder of the write-up: `<docs>/range/results.json`, `<docs>/RANGE.md` and
    /// `<docs>/figures/range-<model>.png`.
    #[arg(long, default_value = "docs")]
    docs: PathBuf,
    /// Measure models again even when the results already hold them.
    #[arg(long)]
    force: bool,
    /// Only regenerate the report and figures from the results file.
    #[arg(long)]
    report_only: bool,
}

/// The notes each model plays.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    /// Pitches: `midi_lo, midi_lo + midi_step, ..` up to `midi_hi`.
    pub midi_lo: u8,
    pub midi_hi: u8,
    pub midi_step: u8,
    /// Loudness levels, evenly spaced from `below_db` under the model's 1st-percentile
    /// trained loudness to `above_db` over its 99th (clamped to its measure's range, the
    /// lowest one map bin above its floor).
    pub loudness_levels: usize,
    pub below_db: f64,
    pub above_db: f64,
    /// Length of each note and the onset skipped before measuring, in seconds.
    pub seconds: f64,
    pub onset_s: f64,
    /// MIDI velocities each reference note is rendered at.
    pub velocities: Vec<u8>,
}

impl Default for Grid {
    fn default() -> Self {
        Self {
            midi_lo: 36,
            midi_hi: 100,
            midi_step: 2,
            loudness_levels: 8,
            below_db: 15.0,
            above_db: 10.0,
            seconds: 1.0,
            onset_s: 0.3,
            velocities: vec![20, 40, 60, 80, 100, 127],
        }
    }
}

impl Grid {
    pub fn midis(&self) -> Vec<u8> {
        (self.midi_lo..=self.midi_hi)
            .step_by(self.midi_step.max(1) as usize)
            .collect()
    }

    /// The loudness levels for a model with this map, in its measure (0.1 dB steps). The
    /// lowest is kept one map bin above the measure's floor: the floor itself is silence
    /// (the NEWT authors' -80 dB), where no note is the right answer.
    pub fn levels(&self, map: &RangeMap) -> Vec<f64> {
        let measure = map.measure();
        let floor = (measure.floor_db() + LOUDNESS_BIN_DB) as f64;
        let ceiling = measure.ceiling_db() as f64;
        let q = map.loudness_quantiles_db;
        let lo = (q[0] as f64 - self.below_db).clamp(floor, ceiling);
        let hi = (q[4] as f64 + self.above_db).clamp(lo, ceiling);
        let n = self.loudness_levels.max(1);
        (0..n)
            .map(|i| {
                let t = if n > 1 {
                    i as f64 / (n - 1) as f64
                } else {
                    0.5
                };
                round_to(lo + t * (hi - lo), 0.1)
            })
            .collect()
    }
}

/// One note of the grid and how it came out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub midi: u8,
    /// The loudness control, in the model's measure.
    pub loudness_db: f64,
    /// [`RangeMap::region`] of the point: the smallest highest-density region of the
    /// training controls holding it (1 = never seen).
    pub region: f64,
    /// Inside the region holding 99% of the training frames.
    pub knows: bool,
    /// Median |error| of the tracked pitch over the voiced frames after the onset, cents
    /// ([`UNVOICED_CENTS`] when none is voiced).
    pub pitch_error_cents: f64,
    /// Share of the frames after the onset the tracker finds unvoiced.
    pub unvoiced_share: f64,
    /// RMS level of the note after the onset, dBFS.
    pub output_rms_db: f64,
    /// Mean |difference| of the log spectra (dB, level-matched) to the reference
    /// instrument's note; `None` for a model without a reference, or where the reference
    /// instrument plays nothing at that pitch.
    pub spectral_distance_db: Option<f64>,
    /// The reference note's velocity and its median A-weighted loudness after the onset.
    pub reference_velocity: Option<u8>,
    pub reference_loudness_db: Option<f64>,
}

/// One model's grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelResult {
    pub instrument: String,
    /// `LoudnessMeasure::key`: `a_weighted_dbfs` or `nws_db`.
    pub measure: String,
    /// The map was estimated from the model's statistics, not counted from its data.
    pub estimated: bool,
    /// The FluidR3 instrument the notes are compared with (`None`: no reference).
    pub reference: Option<String>,
    pub pitch_quantiles_midi: [f64; 5],
    pub loudness_quantiles_db: [f64; 5],
    pub grid: Grid,
    pub loudness_levels_db: Vec<f64>,
    pub points: Vec<Point>,
}

/// Everything measured, by model stem.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub models: BTreeMap<String, ModelResult>,
}

impl Results {
    /// The results file's text: stable (models sorted by name, one point per line,
    /// numbers rounded when measured).
    pub fn to_json(&self) -> anyhow::Result<String> {
        let mut s = String::from("{\n  \"models\": {");
        for (i, (name, m)) in self.models.iter().enumerate() {
            let header = serde_json::json!({
                "instrument": m.instrument,
                "measure": m.measure,
                "estimated": m.estimated,
                "reference": m.reference,
                "pitch_quantiles_midi": m.pitch_quantiles_midi,
                "loudness_quantiles_db": m.loudness_quantiles_db,
                "grid": m.grid,
                "loudness_levels_db": m.loudness_levels_db,
            });
            let serde_json::Value::Object(fields) = header else {
                anyhow::bail!("header is an object");
            };
            let _ = write!(
                s,
                "{}\n    {}: {{",
                if i > 0 { "," } else { "" },
                serde_json::to_string(name)?
            );
            // serde_json's map is sorted by key.
            for (key, value) in &fields {
                let _ = write!(
                    s,
                    "\n      {}: {},",
                    serde_json::to_string(key)?,
                    serde_json::to_string(value)?
                );
            }
            s.push_str("\n      \"points\": [");
            for (j, p) in m.points.iter().enumerate() {
                let _ = write!(
                    s,
                    "{}\n        {}",
                    if j > 0 { "," } else { "" },
                    serde_json::to_string(p)?
                );
            }
            s.push_str("\n      ]\n    }");
        }
        s.push_str("\n  }\n}\n");
        Ok(s)
    }

    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

/// Where the results, the report and the figures of `docs` are.
pub fn results_path(docs: &Path) -> PathBuf {
    docs.join("range").join("results.json")
}

pub fn run(args: RangeArgs) -> anyhow::Result<()> {
    let results_file = results_path(&args.docs);
    if args.report_only {
        let results = Results::read(&results_file)?;
        write_report(&results, &args.docs)?;
        println!(
            "wrote {} and its figures from {}",
            args.docs.join("RANGE.md").display(),
            results_file.display()
        );
        return Ok(());
    }
    let grid = Grid::default();
    let mut results = if results_file.exists() {
        Results::read(&results_file)?
    } else {
        Results::default()
    };
    let todo: Vec<&String> = args
        .models
        .iter()
        .filter(|name| {
            args.force
                || results
                    .models
                    .get(name.as_str())
                    .is_none_or(|m| m.grid != grid)
        })
        .collect();
    for name in args.models.iter().filter(|n| !todo.contains(n)) {
        println!(
            "{name}: already in {} (--force to redo)",
            results_file.display()
        );
    }
    let per_model = grid.midis().len() * grid.loudness_levels;
    let bar = indicatif::ProgressBar::new((per_model * todo.len()) as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "range [{bar:30}] {pos}/{len} notes {msg} ({elapsed}, eta {eta})",
        )?
        .progress_chars("=> "),
    );
    let mut sound_font = None;
    let started = std::time::Instant::now();
    for name in todo {
        let path = args.model_dir.join(format!("{name}.safetensors"));
        let model =
            NewtModel::load(&path).with_context(|| format!("loading {}", path.display()))?;
        let reference = reference_instrument(name, &model);
        if reference.is_some() && sound_font.is_none() {
            bar.set_message("loading the SoundFont");
            sound_font = Some(load_sound_font(&args.sound_font).with_context(|| {
                "the references need the FluidR3 SoundFont: run `cargo xtask data instruments` first"
            })?);
        }
        bar.set_message(name.clone());
        let result = match (&reference, &sound_font) {
            (Some(inst), Some(sf)) => {
                let play = |perf: &Performance| -> anyhow::Result<(Vec<f32>, Vec<f32>)> {
                    let r = render(sf, inst, perf)?;
                    Ok((r.audio, r.truth.iter().map(|t| t.loudness_db).collect()))
                };
                measure_model(&model, &grid, Some((inst.name, &play)), &bar)?
            }
            _ => measure_model(&model, &grid, None, &bar)?,
        };
        results.models.insert(name.clone(), result);
        // Written after every model: an interrupted run resumes at the next one.
        if let Some(dir) = results_file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&results_file, results.to_json()?)?;
    }
    bar.finish_and_clear();
    if !results.models.is_empty() && started.elapsed().as_secs_f64() > 0.0 {
        println!(
            "{} in {:.0} s",
            results_file.display(),
            started.elapsed().as_secs_f64()
        );
    }
    // The report always comes from the file, as `--report-only` makes it.
    let results = Results::read(&results_file)?;
    write_report(&results, &args.docs)?;
    println!(
        "wrote {} and {}",
        args.docs.join("RANGE.md").display(),
        args.docs.join("figures/range-*.png").display()
    );
    Ok(())
}

/// The FluidR3 instrument a model was trained on: one of the data set's instruments, for
/// a model in A-weighted dBFS (ours); `None` for the authors' models.
pub fn reference_instrument(name: &str, model: &NewtModel) -> Option<Instrument> {
    (model.meta.loudness_measure == LoudnessMeasure::AWeightedDbfs)
        .then(|| instrument::by_name(name))
        .flatten()
}

/// Renders a one-note [`Performance`] on the reference instrument: `(audio at
/// RENDER_RATE, A-weighted loudness per 8 ms frame)`.
pub type PlayReference<'a> =
    &'a (dyn Fn(&Performance) -> anyhow::Result<(Vec<f32>, Vec<f32>)> + Sync);

/// One reference note at one velocity.
struct ReferenceNote {
    velocity: u8,
    loudness_db: f64,
    /// At [`RATE`].
    audio: Vec<f32>,
}

/// Plays `model`'s grid, with its reference instrument `(name, player)` if any.
pub fn measure_model(
    model: &NewtModel,
    grid: &Grid,
    reference: Option<(&str, PlayReference<'_>)>,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<ModelResult> {
    let map = &model.meta.range_map;
    let midis = grid.midis();
    let levels = grid.levels(map);
    // The reference notes, every velocity of every pitch.
    let references: Vec<Option<Vec<ReferenceNote>>> = match reference {
        Some((_, play)) => midis
            .par_iter()
            .map(|&midi| reference_notes(play, midi, grid).map(Some))
            .collect::<anyhow::Result<_>>()?,
        None => (0..midis.len()).map(|_| None).collect(),
    };
    let cells: Vec<(usize, f64)> = (0..midis.len())
        .flat_map(|i| levels.iter().map(move |&l| (i, l)))
        .collect();
    let config = EngineConfig {
        host_sample_rate: HOST_RATE,
        voices: 1,
        ..EngineConfig::default()
    };
    // An engine per worker (each note resets it), the notes in grid order.
    let points = cells
        .par_iter()
        .map_init(
            || Engine::new(model.clone(), config),
            |engine, &(i, loudness)| -> anyhow::Result<Point> {
                let engine = engine
                    .as_mut()
                    .map_err(|e| anyhow::anyhow!("engine: {e}"))?;
                let point = measure_point(
                    engine,
                    map,
                    grid,
                    midis[i],
                    loudness,
                    references[i].as_deref(),
                );
                bar.inc(1);
                point
            },
        )
        .collect::<anyhow::Result<Vec<Point>>>()?;
    let round5 = |q: [f32; 5]| q.map(|v| round_to(v as f64, 0.01));
    Ok(ModelResult {
        instrument: model.meta.instrument.clone(),
        measure: model.meta.loudness_measure.key().to_string(),
        estimated: map.estimated,
        reference: reference.map(|(name, _)| name.to_string()),
        pitch_quantiles_midi: round5(map.pitch_quantiles_midi),
        loudness_quantiles_db: round5(map.loudness_quantiles_db),
        grid: grid.clone(),
        loudness_levels_db: levels,
        points,
    })
}

/// The reference instrument playing `midi` for the grid's note length at each velocity.
fn reference_notes(
    play: PlayReference<'_>,
    midi: u8,
    grid: &Grid,
) -> anyhow::Result<Vec<ReferenceNote>> {
    grid.velocities
        .iter()
        .map(|&velocity| {
            let perf = Performance {
                notes: vec![PlayedNote {
                    start_s: 0.0,
                    end_s: grid.seconds,
                    midi,
                    velocity,
                    slide_cents: 0.0,
                    vibrato_cents: 0.0,
                    vibrato_hz: 0.0,
                }],
                expression: Vec::new(),
                duration_s: grid.seconds,
            };
            let (audio, loudness) = play(&perf)?;
            let (a, b) = steady_frames(grid, loudness.len());
            let loudness_db = median(loudness[a..b].iter().map(|&v| v as f64)).unwrap_or(-120.0);
            Ok(ReferenceNote {
                velocity,
                loudness_db,
                audio: resample(&audio, RENDER_RATE, RATE)?,
            })
        })
        .collect()
}

/// The 8 ms frames (of `frames`) a note is measured on: after the onset, before the tail.
fn steady_frames(grid: &Grid, frames: usize) -> (usize, usize) {
    let frame_s = HOP as f64 / RATE as f64;
    let a = (grid.onset_s / frame_s).ceil() as usize;
    let b = ((grid.seconds - TAIL_S) / frame_s).floor() as usize;
    (a.min(frames), b.min(frames).max(a.min(frames)))
}

/// The samples at [`RATE`] a note is measured on.
fn steady_samples(grid: &Grid, len: usize) -> (usize, usize) {
    let a = ((grid.onset_s * RATE as f64).round() as usize).min(len);
    let b = (((grid.seconds - TAIL_S) * RATE as f64).round() as usize).clamp(a, len);
    (a, b)
}

fn measure_point(
    engine: &mut Engine,
    map: &RangeMap,
    grid: &Grid,
    midi: u8,
    loudness_db: f64,
    references: Option<&[ReferenceNote]>,
) -> anyhow::Result<Point> {
    let meta = &engine.model().meta;
    let (sr, hop) = (meta.sample_rate, meta.hop);
    let f0_hz = hz_of_midi(midi as f32);
    let frames = (grid.seconds * sr as f64 / hop as f64).round() as usize;
    let controls = vec![
        FrameControls {
            f0_hz,
            loudness_db: loudness_db as f32,
        };
        frames
    ];
    let mut params = EngineParams {
        drive: Drive::Controls,
        ..EngineParams::default()
    };
    params.voice.shaper = ShaperPath::Table;
    engine.reset();
    let out = render_controls_to_vec(engine, &controls, &params, 512);
    let out = resample(&out, HOST_RATE, RATE)?;

    let config = PitchConfig {
        sample_rate: RATE,
        hop: HOP,
        f_max: PITCH_F_MAX,
        ..PitchConfig::default()
    };
    let track = track_pitch(&out, config)?;
    let (a, b) = steady_frames(grid, track.len());
    let steady = &track[a..b];
    let cents: Vec<f64> = steady
        .iter()
        .filter(|p| p.voiced)
        .map(|p| (1200.0 * (p.f0_hz as f64 / f0_hz as f64).log2()).abs())
        .collect();
    let pitch_error_cents = median(cents.iter().copied()).unwrap_or(UNVOICED_CENTS);
    let unvoiced_share = 1.0 - cents.len() as f64 / steady.len().max(1) as f64;

    let (sa, sb) = steady_samples(grid, out.len());
    let x = &out[sa..sb];
    let power = x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / x.len().max(1) as f64;
    let output_rms_db = 10.0 * power.max(1e-14).log10();

    let mut point = Point {
        midi,
        loudness_db,
        region: round_to(map.region(f0_hz, loudness_db as f32) as f64, 1e-4),
        knows: map.knows(f0_hz, loudness_db as f32),
        pitch_error_cents: round_to(pitch_error_cents, 0.1),
        unvoiced_share: round_to(unvoiced_share, 1e-3),
        output_rms_db: round_to(output_rms_db, 0.01),
        spectral_distance_db: None,
        reference_velocity: None,
        reference_loudness_db: None,
    };
    // The velocity whose loudness is nearest the control, among those that sound (the
    // SoundFont has no sample for some instruments' highest notes).
    if let Some(best) = references.and_then(|r| {
        r.iter()
            .filter(|n| n.loudness_db > REFERENCE_SILENT_DB)
            .min_by(|p, q| {
                (p.loudness_db - loudness_db)
                    .abs()
                    .total_cmp(&(q.loudness_db - loudness_db).abs())
            })
    }) {
        let (ra, rb) = steady_samples(grid, best.audio.len());
        let d = log_spectral_distance(&best.audio[ra..rb], x, MAX_LAG);
        point.spectral_distance_db = Some(round_to(d.mean_abs_db, 0.01));
        point.reference_velocity = Some(best.velocity);
        point.reference_loudness_db = Some(round_to(best.loudness_db, 0.01));
    }
    Ok(point)
}

fn round_to(v: f64, step: f64) -> f64 {
    let r = (v / step).round() * step;
    // Through the decimal text, so that the stored number is the shortest one that reads
    // back to itself (0.30000000000000004 becomes 0.3).
    let decimals = (-step.log10()).ceil().max(0.0) as usize;
    format!("{r:.decimals$}").parse().unwrap_or(r)
}

fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    })
}

// ---------------------------------------------------------------------------------------
// The report.

/// The bins of a point's map region in the summaries: upper bounds (inclusive) and labels.
pub const REGION_BINS: [(f64, &str); 4] = [
    (0.5, "core (<= 50%)"),
    (0.9, "50-90%"),
    (KNOWN_SHARE as f64, "90-99%"),
    (f64::INFINITY, "outside (> 99%)"),
];

/// The bin of `region` in [`REGION_BINS`].
pub fn region_bin(region: f64) -> usize {
    REGION_BINS
        .iter()
        .position(|(hi, _)| region <= *hi + 1e-9)
        .unwrap_or(REGION_BINS.len() - 1)
}

/// What a set of notes came to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub notes: usize,
    pub pitch_median_cents: Option<f64>,
    /// Share of the notes off by more than [`OFF_CENTS`] (or unvoiced throughout).
    pub off_share: Option<f64>,
    /// Mean share of unvoiced frames.
    pub unvoiced_mean: Option<f64>,
    pub spectral_median_db: Option<f64>,
}

pub fn summarise<'a>(points: impl Iterator<Item = &'a Point>) -> Summary {
    let points: Vec<&Point> = points.collect();
    let n = points.len();
    Summary {
        notes: n,
        pitch_median_cents: median(points.iter().map(|p| p.pitch_error_cents)),
        off_share: (n > 0).then(|| {
            points
                .iter()
                .filter(|p| p.pitch_error_cents > OFF_CENTS)
                .count() as f64
                / n as f64
        }),
        unvoiced_mean: (n > 0)
            .then(|| points.iter().map(|p| p.unvoiced_share).sum::<f64>() / n as f64),
        spectral_median_db: median(points.iter().filter_map(|p| p.spectral_distance_db)),
    }
}

fn measure_words(key: &str) -> (&'static str, &'static str) {
    if key == LoudnessMeasure::NwsDb.key() {
        (
            "the NEWT authors' dB (-80..0, not A-weighted)",
            "dB, authors'",
        )
    } else {
        ("A-weighted dBFS", "dB A")
    }
}

/// The models of `results` in report order: [`MODELS`] first, then any other by name.
fn ordered(results: &Results) -> Vec<(&String, &ModelResult)> {
    let mut v: Vec<(&String, &ModelResult)> = results.models.iter().collect();
    v.sort_by_key(|(name, _)| {
        (
            MODELS
                .iter()
                .position(|m| m == name)
                .unwrap_or(MODELS.len()),
            name.to_string(),
        )
    });
    v
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or("-".into(), |x| format!("{x:.decimals$}"))
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{:.0}%", 100.0 * x))
}

/// Which way a note outside the map lies, by the map's 1st and 99th percentiles of each
/// axis: loudness first (too quiet, too loud), then pitch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Quieter,
    Louder,
    /// Loudness within the percentiles, pitch outside them.
    Pitch,
    /// Both within the percentiles: a corner of the map the data did not fill.
    Corner,
}

impl Side {
    pub const ALL: [Side; 4] = [Side::Quieter, Side::Louder, Side::Pitch, Side::Corner];

    pub fn of(p: &Point, m: &ModelResult) -> Side {
        let (pq, lq) = (&m.pitch_quantiles_midi, &m.loudness_quantiles_db);
        if p.loudness_db < lq[0] {
            Side::Quieter
        } else if p.loudness_db > lq[4] {
            Side::Louder
        } else if (p.midi as f64) < pq[0] || (p.midi as f64) > pq[4] {
            Side::Pitch
        } else {
            Side::Corner
        }
    }

    fn words(self) -> &'static str {
        match self {
            Side::Quieter => "quieter than the 1st percentile",
            Side::Louder => "louder than the 99th percentile",
            Side::Pitch => "loudness within, pitch beyond the 1st-99th percentiles",
            Side::Corner => "both within the percentiles",
        }
    }
}

/// Off-pitch notes (above [`OFF_CENTS`]) and how many of them have no voiced frame.
fn off_notes<'a>(points: impl Iterator<Item = &'a Point>) -> (usize, usize) {
    points
        .filter(|p| p.pitch_error_cents > OFF_CENTS)
        .fold((0, 0), |(n, u), p| {
            (n + 1, u + usize::from(p.unvoiced_share >= 1.0))
        })
}

/// The headline of one model: does error grow outside its map?
fn headline(name: &str, m: &ModelResult) -> String {
    let inside = summarise(m.points.iter().filter(|p| p.knows));
    let outside = summarise(m.points.iter().filter(|p| !p.knows));
    let mut s = format!(
        "**{name}**: outside its map ({} of {} notes) {} of the notes are off pitch (more \
         than {OFF_CENTS:.0} cents, or no voiced frame) against {} inside ({} notes); the median \
         pitch error is {} cents outside and {} inside",
        outside.notes,
        m.points.len(),
        pct(outside.off_share),
        pct(inside.off_share),
        inside.notes,
        opt(outside.pitch_median_cents, 1),
        opt(inside.pitch_median_cents, 1),
    );
    let (off, unvoiced) = off_notes(m.points.iter());
    if off > 0 {
        let _ = write!(
            s,
            " ({unvoiced} of the {off} off-pitch notes have no voiced frame at all)"
        );
    }
    if let (Some(r), Some(o), Some(i)) = (
        &m.reference,
        outside.spectral_median_db,
        inside.spectral_median_db,
    ) {
        let _ = write!(
            s,
            "; its median spectral distance to the FluidR3 {r} is {o:.1} dB outside against \
             {i:.1} dB inside"
        );
    }
    s.push_str(". ");
    let pitch_grows = match (
        inside.off_share,
        outside.off_share,
        inside.pitch_median_cents,
        outside.pitch_median_cents,
    ) {
        (Some(fi), Some(fo), Some(mi), Some(mo)) => {
            Some(fo > fi + 0.05 || (mo > 1.5 * mi && mo - mi > 5.0))
        }
        _ => None,
    };
    let spectral_grows = match (inside.spectral_median_db, outside.spectral_median_db) {
        (Some(i), Some(o)) => Some(o > i + 1.0),
        _ => None,
    };
    s.push_str(match (pitch_grows, spectral_grows) {
        (None, _) => "Too few notes on one side of the map's edge to tell.",
        (Some(true), None) => "More notes are off pitch outside the map.",
        (Some(false), None) => {
            "The share of off-pitch notes outside the map is within 5 points of the share \
             inside: no clear growth."
        }
        (Some(true), Some(true)) => {
            "Outside the map more notes are off pitch and the sound moves away from the \
             instrument's: both measures grow."
        }
        (Some(true), Some(false)) => {
            "More notes are off pitch outside the map; the spectral distance does not grow (by \
             more than 1 dB)."
        }
        (Some(false), Some(true)) => {
            "The notes stay in tune outside the map, but the spectral distance grows: they lose \
             the instrument's timbre."
        }
        (Some(false), Some(false)) => "Neither measure grows outside the map.",
    });
    s
}

/// Writes `<docs>/RANGE.md` and `<docs>/figures/range-<model>.png` from `results`.
pub fn write_report(results: &Results, docs: &Path) -> anyhow::Result<()> {
    let fig_dir = docs.join("figures");
    std::fs::create_dir_all(&fig_dir)?;
    for (name, m) in ordered(results) {
        plot_model(&fig_dir.join(format!("range-{name}.png")), name, m)?;
    }
    std::fs::write(docs.join("RANGE.md"), report_markdown(results))?;
    Ok(())
}

/// The text of `RANGE.md`.
pub fn report_markdown(results: &Results) -> String {
    let models = ordered(results);
    let grid = models
        .first()
        .map_or_else(Grid::default, |(_, m)| m.grid.clone());
    let mut t = String::new();
    t.push_str(
        "# Playing outside the range map\n\n\
         Generated by `cargo run --release -p newt-eval -- range` (`cargo xtask range`) from \
         `docs/range/results.json`; `--report-only` regenerates this page and its figures from \
         that file alone.\n\n\
         ## The range map\n\n\
         Every model file carries a range map (`newt_model::RangeMap`): a 2-D histogram of \
         the (f0, loudness) controls the model was trained on, one bin per semitone (MIDI \
         12..120) by 3 dB of the model's loudness measure, blurred over 3 x 3 bins. Sorting \
         the bins from densest to sparsest and accumulating their share of the training \
         frames gives every control point a *region* value: the smallest highest-density \
         region that holds it, small in the heart of the training data, 1 where the model \
         never went. A point the map *knows* lies in the region holding 99% of the training \
         frames (region <= 0.99). Our five models (flute, violin, trumpet, cello, alto sax, \
         trained on FluidR3 SoundFont renders in A-weighted dBFS) have maps counted from \
         their training data. The NEWT authors' three models (`*-urmp`, trained on URMP \
         recordings, loudness in their own dB) come without their data: their maps are \
         **estimated** from the f0 and loudness mean and spread stored in the file (independent \
         normal distributions), so their boundary is a guess.\n\n\
         The claim measured here: a model plays well inside its map and worse outside it.\n\n\
         ## Method\n\n",
    );
    let midis = grid.midis();
    let _ = write!(
        t,
        "Each model plays a grid of constant notes: pitch every {} semitones from MIDI {} to \
         {} ({} pitches) by {} loudness levels evenly spread from {:.0} dB below the model's \
         1st-percentile trained loudness to {:.0} dB above its 99th (clamped to its measure's \
         range, the lowest level kept one 3 dB map bin above the floor: the floor is the \
         measure's silence, -80 dB in the authors' measure, where no note is the right \
         answer), {} notes per model. Each note is {:.1} s of constant controls \
         rendered through the real-time engine (FastNEWT tables, the default; model rate 16 \
         kHz, host 48 kHz, one voice, the learned reverb on) and measured from {:.1} s (the \
         onset skipped) to {:.2} s before its end, after resampling to 16 kHz.\n\n\
         - **Pitch error**: the project's offline pitch tracker (`newt_features::track_pitch`, \
         YIN with Viterbi smoothing, searching 55 Hz to {:.0} Hz so that the top notes are \
         in reach); the median |error| in cents over the voiced frames, and the share of \
         unvoiced frames. A note with no voiced frame counts as {UNVOICED_CENTS:.0} cents. \
         A note is *off* (off pitch) when its error exceeds {OFF_CENTS:.0} cents, which \
         includes every note with no voiced frame.\n\
         - **Spectral distance** (our five models only, the only ones with a reference \
         instrument): `newt_features::spectral::log_spectral_distance` between the model's \
         note and the FluidR3 instrument it was trained on playing the same MIDI note (its \
         General MIDI program, rendered by `newt-data` as the training data was, no vibrato): \
         the mean |difference| of the log-magnitude spectra in dB (64 ms Hann frames at 16 \
         kHz, floored 80 dB below the louder peak), after aligning the two (lag within 10 \
         ms) and scaling the model's note to the reference's RMS, so the distance is \
         level-independent. The reference note is rendered at velocities {:?}; the one whose \
         median A-weighted loudness after the onset is nearest the grid loudness is used \
         (the models' loudness control is that same measure; grid levels quieter than the \
         quietest velocity are compared with it). Outside the instrument's \
         playable range FluidR3 still plays (its samples transposed), so far out the \
         reference is itself no longer a real instrument.\n\
         - **Region**: `RangeMap::region` of the note's (f0, loudness); *inside* is region \
         <= 0.99 (`RangeMap::knows`).\n\n\
         Medians are over the notes of each group; the bins of the region value are {}.\n\n",
        grid.midi_step,
        grid.midi_lo,
        grid.midi_hi,
        midis.len(),
        grid.loudness_levels,
        grid.below_db,
        grid.above_db,
        midis.len() * grid.loudness_levels,
        grid.seconds,
        grid.onset_s,
        TAIL_S,
        PITCH_F_MAX,
        grid.velocities,
        REGION_BINS
            .iter()
            .map(|(_, l)| format!("`{l}`"))
            .collect::<Vec<_>>()
            .join(", "),
    );

    t.push_str(
        "## Summary\n\n\
         | model | map | notes in / out | off pitch in / out | pitch error in / out (median cents) | spectral distance in / out (median dB) |\n\
         |---|---|---|---|---|---|\n",
    );
    for (name, m) in &models {
        let i = summarise(m.points.iter().filter(|p| p.knows));
        let o = summarise(m.points.iter().filter(|p| !p.knows));
        let _ = writeln!(
            t,
            "| {name} | {} | {} / {} | {} / {} | {} / {} | {} / {} |",
            if m.estimated { "estimated" } else { "counted" },
            i.notes,
            o.notes,
            pct(i.off_share),
            pct(o.off_share),
            opt(i.pitch_median_cents, 1),
            opt(o.pitch_median_cents, 1),
            opt(i.spectral_median_db, 1),
            opt(o.spectral_median_db, 1),
        );
    }
    t.push('\n');
    for (name, m) in &models {
        let _ = writeln!(t, "- {}", headline(name, m));
    }
    t.push('\n');
    findings(&mut t, &models);
    t.push_str(
        "## Reading the figures\n\n\
         Left, (a): the pitch error of every note of the grid (colour, log scale from 1 to \
         1200 cents), pitch across, loudness up; the notes outside the map's 99% region are \
         hatched and the region's edge on the grid is outlined in red. Below it, for our \
         models, (b): the spectral distance to the FluidR3 instrument on the same grid \
         (linear, 5 to 25 dB; grey where the instrument plays nothing). Right: every note's \
         pitch error (blue, left axis, log) and spectral distance (red, right axis) against \
         the bin of its map region, as small dots spread sideways, with the median of each \
         bin (large markers) and the share of its notes off pitch (top).\n\n",
    );

    for (name, m) in &models {
        let (measure, _) = measure_words(&m.measure);
        let _ = write!(
            t,
            "## {name}\n\n\
             {} model, loudness in {measure}; map {} (pitch 1st-99th percentile MIDI {:.1} to \
             {:.1}, loudness {:.1} to {:.1} dB); grid loudness levels {}; reference: {}.\n\n\
             | region | notes | off pitch | pitch error (median cents) | unvoiced frames (mean) | spectral distance (median dB) |\n\
             |---|---|---|---|---|---|\n",
            m.instrument,
            if m.estimated {
                "estimated from the statistics"
            } else {
                "counted from the training data"
            },
            m.pitch_quantiles_midi[0],
            m.pitch_quantiles_midi[4],
            m.loudness_quantiles_db[0],
            m.loudness_quantiles_db[4],
            m.loudness_levels_db
                .iter()
                .map(|l| format!("{l:.1}"))
                .collect::<Vec<_>>()
                .join(", "),
            m.reference
                .as_ref()
                .map_or("none".to_string(), |r| format!("FluidR3 {r}")),
        );
        // The bins inside the map, both sides, then the outside by direction.
        let rows: Vec<(String, Summary)> = REGION_BINS[..REGION_BINS.len() - 1]
            .iter()
            .enumerate()
            .map(|(b, (_, label))| {
                (
                    label.to_string(),
                    summarise(m.points.iter().filter(|p| region_bin(p.region) == b)),
                )
            })
            .chain([
                (
                    "**inside (<= 99%)**".to_string(),
                    summarise(m.points.iter().filter(|p| p.knows)),
                ),
                (
                    "**outside (> 99%)**".to_string(),
                    summarise(m.points.iter().filter(|p| !p.knows)),
                ),
            ])
            .chain(Side::ALL.iter().map(|side| {
                (
                    format!("outside: {}", side.words()),
                    summarise(
                        m.points
                            .iter()
                            .filter(|p| !p.knows && Side::of(p, m) == *side),
                    ),
                )
            }))
            .collect();
        for (label, s) in rows {
            let _ = writeln!(
                t,
                "| {label} | {} | {} | {} | {} | {} |",
                s.notes,
                pct(s.off_share),
                opt(s.pitch_median_cents, 1),
                pct(s.unvoiced_mean),
                opt(s.spectral_median_db, 1),
            );
        }
        if let Some(r) = &m.reference {
            let mut silent: Vec<u8> = m
                .points
                .iter()
                .filter(|p| p.spectral_distance_db.is_none())
                .map(|p| p.midi)
                .collect();
            silent.dedup();
            if !silent.is_empty() {
                let _ = write!(
                    t,
                    "\nThe FluidR3 {r} plays nothing at MIDI {}: those notes have no spectral \
                     distance.\n",
                    silent
                        .iter()
                        .map(|m| m.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        let _ = write!(
            t,
            "\n{}\n\n![{name}: pitch error over the grid and against the map region](figures/range-{name}.png)\n\n",
            headline(name, m)
        );
    }
    while t.ends_with("\n\n") {
        t.pop();
    }
    t
}

/// The section that reads the summary across models.
fn findings(t: &mut String, models: &[(&String, &ModelResult)]) {
    let points = |counted: bool, knows: bool| -> Vec<&Point> {
        models
            .iter()
            .filter(|(_, m)| m.estimated != counted)
            .flat_map(|(_, m)| m.points.iter().filter(|p| p.knows == knows))
            .collect()
    };
    let group = |counted: bool| {
        (
            summarise(points(counted, true).into_iter()),
            summarise(points(counted, false).into_iter()),
        )
    };
    let (ours_in, ours_out) = group(true);
    let (theirs_in, theirs_out) = group(false);
    let all: Vec<&Point> = models.iter().flat_map(|(_, m)| &m.points).collect();
    let (off, unvoiced) = off_notes(all.iter().copied());
    let quieter = models
        .iter()
        .flat_map(|(_, m)| {
            m.points.iter().filter(move |p| {
                p.pitch_error_cents > OFF_CENTS && !p.knows && Side::of(p, m) == Side::Quieter
            })
        })
        .count();
    let by_side = |side: Option<Side>| {
        summarise(
            models
                .iter()
                .filter(|(_, m)| !m.estimated)
                .flat_map(|(_, m)| {
                    m.points.iter().filter(move |p| match side {
                        None => p.knows,
                        Some(s) => !p.knows && Side::of(p, m) == s,
                    })
                }),
        )
    };
    t.push_str("## What the numbers say\n\n");
    if ours_in.notes + ours_out.notes > 0 {
        let _ = write!(
            t,
            "Our models (maps counted from their training data): {} of the {} notes outside \
             the maps are off pitch against {} of the {} inside; the median spectral distance \
             to the reference instrument is {} dB outside against {} dB inside. ",
            pct(ours_out.off_share),
            ours_out.notes,
            pct(ours_in.off_share),
            ours_in.notes,
            opt(ours_out.spectral_median_db, 1),
            opt(ours_in.spectral_median_db, 1),
        );
    }
    if theirs_in.notes + theirs_out.notes > 0 {
        let _ = write!(
            t,
            "The authors' models (estimated maps): {} of the {} notes outside off pitch \
             against {} of the {} inside.",
            pct(theirs_out.off_share),
            theirs_out.notes,
            pct(theirs_in.off_share),
            theirs_in.notes,
        );
    }
    let _ = write!(
        t,
        "\n\nHow the notes fail: of the {off} off-pitch notes of all models, {unvoiced} have no \
         voiced frame at all (the model plays noise, not a note) and {} are voiced but more \
         than {OFF_CENTS:.0} cents off ({} of them by an octave or more); {quieter} of the off-pitch notes lie \
         outside the map below the model's 1st-percentile trained loudness. NEWT's harmonic \
         exciter runs at the f0 control, so a note the model voices is in tune wherever it \
         lies: the median errors of a cent or two are mostly the tracker's own resolution \
         (coarser at high pitch, where a period is a few samples at 16 kHz: about 20 \
         cents for a pure tone at MIDI 100). Outside its map \
         in pitch a model keeps its pitch and loses its instrument's timbre, which the \
         spectral distance measures; outside it in loudness, below what it was trained on, \
         it fades into noise.\n\n",
        off - unvoiced,
        all.iter()
            .filter(|p| p.unvoiced_share < 1.0 && p.pitch_error_cents > 1100.0)
            .count(),
    );
    if ours_in.notes + ours_out.notes > 0 {
        t.push_str(
            "By the direction in which a note leaves the map (our models; the 1st and 99th \
             percentiles of each axis):\n\n\
             | where | notes | off pitch | spectral distance (median dB) |\n|---|---|---|---|\n",
        );
        let rows = [(None, "inside the map")]
            .into_iter()
            .chain(Side::ALL.iter().map(|s| (Some(*s), s.words())));
        for (side, words) in rows {
            let s = by_side(side);
            let label = if side.is_some() {
                format!("outside: {words}")
            } else {
                words.to_string()
            };
            let _ = writeln!(
                t,
                "| {label} | {} | {} | {} |",
                s.notes,
                pct(s.off_share),
                opt(s.spectral_median_db, 1)
            );
        }
        t.push('\n');
        // Which way out costs most, and whether going louder costs anything.
        let (inside, louder) = (by_side(None), by_side(Some(Side::Louder)));
        let worst = Side::ALL
            .iter()
            .filter_map(|&side| Some((side, by_side(Some(side)).spectral_median_db?)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((side, d)) = worst {
            let _ = write!(
                t,
                "The costliest way out of the map is {} (median spectral distance {d:.1} dB). ",
                side.words()
            );
        }
        if let (Some(fo), Some(dl), Some(di)) = (
            louder.off_share,
            louder.spectral_median_db,
            inside.spectral_median_db,
        ) && fo < 0.05
            && dl <= di + 1.0
        {
            let _ = write!(
                t,
                "Louder than trained, up to the grid's top ({:.0} dB over the 99th percentile), \
                 costs next to nothing ({} off pitch, {dl:.1} dB against {di:.1} dB inside): \
                 the map's upper loudness edge is conservative.",
                models.first().map_or(0.0, |(_, m)| m.grid.above_db),
                pct(Some(fo))
            );
        }
        t.push_str("\n\n");
    }
    if theirs_out.notes > 0 {
        let _ = write!(
            t,
            "The authors' maps are estimated from four numbers (the mean and spread of f0 and \
             loudness, fitted as independent normal distributions), and they are narrow: \
             {} of the notes outside them still play in tune. Their boundary is a guess that \
             is much tighter than what these models can play; only counted maps (our models) \
             test the claim.\n\n",
            theirs_out
                .off_share
                .map_or("-".into(), |s| pct(Some(1.0 - s))),
        );
    }
}

/// The colour scale of a heat map: values from `lo` to `hi`, on a log scale or not.
struct HeatScale {
    lo: f64,
    hi: f64,
    log: bool,
    ticks: &'static [f64],
    label: &'static str,
}

/// Pitch error: log scale from 1 to 1200 cents.
const PITCH_SCALE: HeatScale = HeatScale {
    lo: 1.0,
    hi: UNVOICED_CENTS,
    log: true,
    ticks: &[1.0, 3.0, 10.0, 30.0, 100.0, 300.0, UNVOICED_CENTS],
    label: "cents",
};

/// Spectral distance: linear from 5 to 25 dB.
const SPECTRAL_SCALE: HeatScale = HeatScale {
    lo: 5.0,
    hi: 25.0,
    log: false,
    ticks: &[5.0, 10.0, 15.0, 20.0, 25.0],
    label: "dB",
};

impl HeatScale {
    /// Where `v` lies on the scale, 0..1.
    fn level(&self, v: f64) -> f64 {
        let v = v.clamp(self.lo, self.hi);
        let t = if self.log {
            (v / self.lo).ln() / (self.hi / self.lo).ln()
        } else {
            (v - self.lo) / (self.hi - self.lo)
        };
        t.clamp(0.0, 1.0)
    }

    fn colour(&self, v: f64) -> RGBColor {
        ViridisRGB::get_color(self.level(v))
    }
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, figures::plotters::coord::Shift>;

/// A heat map of `value` over the grid of `m` (cells without a value grey), the map's 99%
/// region outlined in red and the cells outside it hatched, with its colour scale.
fn draw_heat(
    area: &Area<'_>,
    m: &ModelResult,
    caption: &str,
    scale: &HeatScale,
    value: impl Fn(&Point) -> Option<f64>,
) -> anyhow::Result<()> {
    let text = figures::register_font();
    let (_, unit) = measure_words(&m.measure);
    let (w, _) = area.dim_in_pixel();
    let (heat, bar) = area.split_horizontally(w.saturating_sub(62));
    let midis: Vec<f64> = m.points.iter().map(|p| p.midi as f64).collect();
    let (mlo, mhi) = (
        midis.iter().copied().fold(f64::INFINITY, f64::min),
        midis.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    let (mlo, mhi) = if mlo.is_finite() {
        (mlo, mhi)
    } else {
        (0.0, 1.0)
    };
    let dm = m.grid.midi_step.max(1) as f64;
    let levels = &m.loudness_levels_db;
    let dl = if levels.len() > 1 {
        (levels[levels.len() - 1] - levels[0]) / (levels.len() - 1) as f64
    } else {
        3.0
    };
    let (llo, lhi) = (
        levels.first().copied().unwrap_or(0.0),
        levels.last().copied().unwrap_or(0.0),
    );
    let mut builder = ChartBuilder::on(&heat);
    builder
        .margin(8)
        .x_label_area_size(if text { 40 } else { 4 })
        .y_label_area_size(if text { 56 } else { 4 });
    if text {
        builder.caption(caption, ("sans-serif", 16));
    }
    let mut chart = builder.build_cartesian_2d(
        (mlo - dm / 2.0)..(mhi + dm / 2.0),
        (llo - dl / 2.0)..(lhi + dl / 2.0),
    )?;
    let y_desc = format!("loudness control ({unit})");
    if text {
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("MIDI note")
            .y_desc(y_desc.as_str())
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()?;
    }
    // Cells meet halfway between neighbouring levels.
    let level_index = |loud: f64| levels.iter().position(|&l| (l - loud).abs() < 1e-6);
    let cell = |p: &Point| {
        let x = p.midi as f64;
        let (y0, y1) = match level_index(p.loudness_db) {
            Some(i) => (
                if i > 0 {
                    0.5 * (levels[i - 1] + levels[i])
                } else {
                    levels[i] - dl / 2.0
                },
                if i + 1 < levels.len() {
                    0.5 * (levels[i] + levels[i + 1])
                } else {
                    levels[i] + dl / 2.0
                },
            ),
            None => (p.loudness_db - dl / 2.0, p.loudness_db + dl / 2.0),
        };
        ((x - dm / 2.0, y0), (x + dm / 2.0, y1))
    };
    chart.draw_series(m.points.iter().map(|p| {
        let (a, b) = cell(p);
        let colour = value(p).map_or(RGBColor(215, 215, 215), |v| scale.colour(v));
        Rectangle::new([a, b], colour.filled())
    }))?;
    // Hatching: one diagonal across each cell outside the map.
    chart.draw_series(m.points.iter().filter(|p| !p.knows).map(|p| {
        let (a, b) = cell(p);
        PathElement::new(
            vec![(a.0, a.1), (b.0, b.1)],
            RGBColor(150, 150, 150).stroke_width(1),
        )
    }))?;
    // The 99% region's edge on the grid: every side of a known cell whose neighbour is
    // unknown or off the grid.
    let known = |midi: f64, li: Option<usize>| {
        li.and_then(|i| levels.get(i)).is_some_and(|&loud| {
            m.points.iter().any(|p| {
                p.knows
                    && (p.midi as f64 - midi).abs() < 1e-6
                    && (p.loudness_db - loud).abs() < 1e-6
            })
        })
    };
    let mut edges = Vec::new();
    for p in m.points.iter().filter(|p| p.knows) {
        let (a, b) = cell(p);
        let li = level_index(p.loudness_db);
        let x = p.midi as f64;
        if !known(x - dm, li) {
            edges.push([(a.0, a.1), (a.0, b.1)]);
        }
        if !known(x + dm, li) {
            edges.push([(b.0, a.1), (b.0, b.1)]);
        }
        if !known(x, li.and_then(|i| i.checked_sub(1))) {
            edges.push([(a.0, a.1), (b.0, a.1)]);
        }
        if !known(x, li.map(|i| i + 1)) {
            edges.push([(a.0, b.1), (b.0, b.1)]);
        }
    }
    chart.draw_series(
        edges
            .into_iter()
            .map(|e| PathElement::new(e.to_vec(), RED.stroke_width(3))),
    )?;

    // The colour scale, beside the plotting area.
    let (_, bar_h) = bar.dim_in_pixel();
    let (bar_top, bar_bottom) = if text {
        (8 + 24, bar_h as i32 - 8 - 40)
    } else {
        (8, bar_h as i32 - 8)
    };
    let steps = 120;
    let span = (bar_bottom - bar_top).max(1) as f64;
    for i in 0..steps {
        let y1 = bar_bottom - (i as f64 * span / steps as f64) as i32;
        let y0 = bar_bottom - ((i + 1) as f64 * span / steps as f64).ceil() as i32;
        let t = (i as f64 + 0.5) / steps as f64;
        bar.draw(&Rectangle::new(
            [(4, y0), (20, y1)],
            ViridisRGB::get_color(t).filled(),
        ))?;
    }
    bar.draw(&Rectangle::new(
        [(4, bar_top), (20, bar_bottom)],
        BLACK.stroke_width(1),
    ))?;
    if text {
        for &v in scale.ticks {
            let y = bar_bottom - (scale.level(v) * span) as i32;
            bar.draw(&PathElement::new(vec![(20, y), (24, y)], BLACK))?;
            bar.draw(&Text::new(
                format!("{v:.0}"),
                (26, y - 6),
                ("sans-serif", 12).into_font(),
            ))?;
        }
        bar.draw(&Text::new(
            scale.label,
            (2, bar_top - 18),
            ("sans-serif", 13).into_font(),
        ))?;
    }
    Ok(())
}

/// `range-<model>.png`: heat maps over the grid with the map's 99% region (pitch error,
/// and for a model with a reference instrument the spectral distance), then pitch error
/// and spectral distance against the map region.
fn plot_model(path: &Path, name: &str, m: &ModelResult) -> anyhow::Result<()> {
    let text = figures::register_font();
    let has_reference = m.reference.is_some();
    // The heat maps stacked on the left (pitch error; spectral distance below it for a
    // model with a reference), the summary on the right.
    let height = if has_reference { 760 } else { 470 };
    let root = BitMapBackend::new(path, (1150, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let top = if text { 34 } else { 0 };
    let (title, body) = root.split_vertically(top);
    if text {
        title.draw(&Text::new(
            format!(
                "{name}: 1 s constant notes inside and outside the range map (red: its 99% \
                 region; hatched: outside){}",
                if m.estimated { "; map estimated" } else { "" }
            ),
            (12, 8),
            ("sans-serif", 19).into_font(),
        ))?;
    }
    let (left, right) = body.split_horizontally(560);
    let heats = left.split_evenly((if has_reference { 2 } else { 1 }, 1));
    if let Some(area) = heats.first() {
        draw_heat(area, m, "(a) pitch error", &PITCH_SCALE, |p| {
            Some(p.pitch_error_cents)
        })?;
    }
    if let Some(area) = heats.get(1) {
        draw_heat(
            area,
            m,
            "(b) spectral distance to FluidR3 (grey: no reference note)",
            &SPECTRAL_SCALE,
            |p| p.spectral_distance_db,
        )?;
    }

    // Against the map region.
    let mut builder = ChartBuilder::on(&right);
    builder
        .margin(8)
        .margin_right(if text { 4 } else { 8 })
        .x_label_area_size(if text { 40 } else { 4 })
        .y_label_area_size(if text { 56 } else { 4 })
        .right_y_label_area_size(if text && m.reference.is_some() { 66 } else { 4 });
    if text {
        builder.caption(
            if has_reference {
                "(c) against the map region"
            } else {
                "(b) against the map region"
            },
            ("sans-serif", 16),
        );
    }
    let spectral_max = m
        .points
        .iter()
        .filter_map(|p| p.spectral_distance_db)
        .fold(0.0f64, f64::max);
    let spectral_top = if spectral_max > 0.0 {
        (spectral_max * 1.1 / 5.0).ceil() * 5.0
    } else {
        10.0
    };
    let mut chart = builder
        .build_cartesian_2d(0.4f64..4.6f64, (1f64..6000f64).log_scale())?
        .set_secondary_coord(0.4f64..4.6f64, 0f64..spectral_top);
    let counts: Vec<usize> = (0..REGION_BINS.len())
        .map(|b| {
            m.points
                .iter()
                .filter(|p| region_bin(p.region) == b)
                .count()
        })
        .collect();
    let bin_label = |v: &f64| {
        let i = v.round();
        if (v - i).abs() > 0.01 || !(1.0..=REGION_BINS.len() as f64).contains(&i) {
            return String::new();
        }
        let b = i as usize - 1;
        format!("{} n={}", REGION_BINS[b].1, counts[b])
    };
    let has_reference = m.reference.is_some();
    if text {
        chart
            .configure_mesh()
            .x_labels(REGION_BINS.len())
            .x_label_formatter(&bin_label)
            .x_desc("map region of the note")
            .y_desc("pitch error (cents)")
            .y_label_formatter(&|v| format!("{v:.0}"))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        if has_reference {
            chart
                .configure_secondary_axes()
                .y_desc("spectral distance (dB)")
                .y_label_formatter(&|v| format!("{v:.0}"))
                .draw()?;
        }
    }
    let pitch_colour = RGBColor(31, 90, 180);
    let spectral_colour = RGBColor(200, 60, 30);
    // Small dots: every note, spread sideways by a fixed pattern.
    let jitter = |i: usize| ((i as f64 * 0.618_034).fract() - 0.5) * 0.3;
    let offset = if has_reference { 0.17 } else { 0.0 };
    chart.draw_series(m.points.iter().enumerate().map(|(i, p)| {
        let x = (region_bin(p.region) + 1) as f64 - offset + jitter(i);
        Circle::new(
            (x, p.pitch_error_cents.clamp(1.0, 2500.0)),
            2,
            pitch_colour.mix(0.35).filled(),
        )
    }))?;
    let medians = |f: &dyn Fn(&Summary) -> Option<f64>, shift: f64| -> Vec<(f64, f64)> {
        (0..REGION_BINS.len())
            .filter_map(|b| {
                let s = summarise(m.points.iter().filter(|p| region_bin(p.region) == b));
                f(&s).map(|v| ((b + 1) as f64 + shift, v))
            })
            .collect()
    };
    let pm: Vec<(f64, f64)> = medians(&|s| s.pitch_median_cents, -offset)
        .into_iter()
        .map(|(x, y)| (x, y.clamp(1.0, 2500.0)))
        .collect();
    chart.draw_series(LineSeries::new(pm.clone(), pitch_colour.stroke_width(2)))?;
    let series = chart.draw_series(pm.iter().map(|&p| Circle::new(p, 6, pitch_colour.filled())))?;
    if text {
        series
            .label("pitch error, median (left)")
            .legend(move |(x, y)| Circle::new((x + 8, y), 5, pitch_colour.filled()));
    }
    // The share of the notes off pitch in each bin, above the dots.
    if text {
        chart.draw_series((0..REGION_BINS.len()).filter_map(|b| {
            let s = summarise(m.points.iter().filter(|p| region_bin(p.region) == b));
            let share = s.off_share?;
            Some(Text::new(
                format!("{:.0}% off", 100.0 * share),
                ((b + 1) as f64 - 0.3, 3600.0),
                ("sans-serif", 13).into_font().color(&pitch_colour),
            ))
        }))?;
    }
    if has_reference {
        chart.draw_secondary_series(m.points.iter().enumerate().filter_map(|(i, p)| {
            let d = p.spectral_distance_db?;
            let x = (region_bin(p.region) + 1) as f64 + offset + jitter(i);
            Some(Circle::new((x, d), 2, spectral_colour.mix(0.35).filled()))
        }))?;
        let sm = medians(&|s| s.spectral_median_db, offset);
        chart
            .draw_secondary_series(LineSeries::new(sm.clone(), spectral_colour.stroke_width(2)))?;
        let series = chart.draw_secondary_series(
            sm.iter()
                .map(|&(x, y)| TriangleMarker::new((x, y), 7, spectral_colour.filled())),
        )?;
        if text {
            series
                .label("spectral distance, median (right)")
                .legend(move |(x, y)| TriangleMarker::new((x + 8, y), 6, spectral_colour.filled()));
        }
    }
    if text {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::Coordinate(70, 60))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_bins_split_at_the_map_s_shares() {
        assert_eq!(region_bin(0.1), 0);
        assert_eq!(region_bin(0.5), 0);
        assert_eq!(region_bin(0.7), 1);
        assert_eq!(region_bin(0.99), 2);
        assert_eq!(region_bin(1.0), 3);
    }

    #[test]
    fn numbers_are_stored_short() {
        assert_eq!(round_to(0.1 + 0.2, 0.1).to_string(), "0.3");
        assert_eq!(round_to(-12.345_67, 0.01), -12.35);
        assert_eq!(median([3.0, 1.0, 2.0, 10.0].into_iter()), Some(2.5));
        assert_eq!(median(std::iter::empty()), None);
    }

    #[test]
    fn the_tracker_reaches_the_grid_s_top_note() {
        let f = hz_of_midi(100.0) as f64;
        let x: Vec<f32> = (0..RATE as usize)
            .map(|i| (0.3 * (std::f64::consts::TAU * f * i as f64 / RATE as f64).sin()) as f32)
            .collect();
        let config = PitchConfig {
            f_max: PITCH_F_MAX,
            ..PitchConfig::default()
        };
        let track = track_pitch(&x, config).unwrap();
        let mid = &track[40..100];
        assert!(mid.iter().all(|p| p.voiced));
        let cents = median(
            mid.iter()
                .map(|p| (1200.0 * (p.f0_hz as f64 / f).log2()).abs()),
        )
        .unwrap();
        // YIN's resolution at a period of six samples: about 20 cents (the report says so).
        assert!(cents < 30.0, "{cents}");
    }
}
