//! `cargo xtask data instruments`: monophonic phrases rendered from the FluidR3 General
//! MIDI SoundFont (Debian `fluid-soundfont-gm`) with rustysynth: public-domain tunes
//! from music21's ABC corpus transposed into each instrument's range, and generated
//! scales, arpeggios and long notes; vibrato, slides, crescendos and accents throughout.
//! Each phrase is a WAV (48 kHz mono) with its ground truth beside it (`.truth.csv`:
//! f0, note, dynamics, loudness per 8 ms frame). Resumable; then the pitch tracker is
//! scored against the ground truth.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::abc::{Tune, parse_book};
use crate::instrument::{INSTRUMENTS, Instrument, by_name};
use crate::performance::{Exercise, exercise, from_tune};
use crate::render::{RENDER_RATE, TRUTH_RATE, load_sound_font, parse_truth_csv, render, truth_csv};
use crate::tracker::{GROSS_CENTS, TrackerTally, score, score_live};
use clap::Args;
use seeded_rng::SplitMix64;
use source_packages::{debian_package, run_tool};

#[derive(Args, Debug)]
pub struct InstrumentsArgs {
    #[arg(long, default_value = "data/instruments")]
    out: PathBuf,
    /// Minutes of audio per instrument.
    #[arg(long, default_value_t = 20.0)]
    minutes: f64,
    /// Comma-separated instruments (default: all five).
    #[arg(long, value_delimiter = ',')]
    instruments: Vec<String>,
    /// Where the downloaded SoundFont and tune corpus are kept.
    #[arg(long, default_value = "data/sources")]
    sources: PathBuf,
    #[arg(long, default_value_t = 11)]
    seed: u64,
}

/// Length of each phrase, about, in seconds.
const PHRASE_S: f64 = 30.0;
const SOUND_FONT: &str = "FluidR3_GM.sf2";
const MUSIC21: &str = "music21==10.5.1";
/// Tune books of music21's corpus used (public domain).
const CORPORA: [&str; 3] = ["ryansMammoth", "essenFolksong", "oneills1850"];

/// The FluidR3 SoundFont: the installed one, or fetched from Debian into `sources`.
fn sound_font_path(sources: &Path) -> anyhow::Result<PathBuf> {
    let installed = Path::new("/usr/share/sounds/sf2").join(SOUND_FONT);
    if installed.exists() {
        return Ok(installed);
    }
    let local = sources.join(SOUND_FONT);
    if local.exists() {
        return Ok(local);
    }
    let unpacked = debian_package("fluid-soundfont-gm", sources)?;
    std::fs::rename(
        unpacked.join("usr/share/sounds/sf2").join(SOUND_FONT),
        &local,
    )
    .context("moving the SoundFont out of the package")?;
    Ok(local)
}

/// Every tune of the corpora, in a fixed order (fetched from PyPI's music21 wheel).
fn tunes(sources: &Path) -> anyhow::Result<Vec<Tune>> {
    let abc_dir = sources.join("abc");
    if !abc_dir.exists() {
        std::fs::create_dir_all(sources)?;
        let wheel = std::fs::read_dir(sources)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.to_string_lossy().ends_with(".whl") && p.to_string_lossy().contains("music21")
            });
        let wheel = match wheel {
            Some(w) => w,
            None => {
                println!("fetching {MUSIC21} (PyPI) for its ABC tune corpus");
                run_tool(
                    Command::new("pip")
                        .args(["download", "--no-deps", "-d"])
                        .arg(sources)
                        .arg(MUSIC21),
                    "pip download music21",
                )?;
                return tunes(sources);
            }
        };
        // The wheel is a zip: Python's zipfile extracts the corpus files we use.
        let script = format!(
            "import zipfile,sys\nz=zipfile.ZipFile(sys.argv[1])\nfor n in z.namelist():\n    \
             if n.endswith('.abc') and any('/corpus/'+c+'/' in n for c in {CORPORA:?}):\n        \
             z.extract(n, sys.argv[2])\n"
        );
        let tmp = sources.join("abc.partial");
        run_tool(
            Command::new("python3")
                .arg("-c")
                .arg(script)
                .arg(&wheel)
                .arg(&tmp),
            "extracting the ABC corpus",
        )?;
        std::fs::rename(tmp.join("music21/corpus"), &abc_dir)?;
        std::fs::remove_dir_all(&tmp).ok();
    }
    let mut files = Vec::new();
    for corpus in CORPORA {
        let dir = abc_dir.join(corpus);
        if let Ok(rd) = std::fs::read_dir(&dir) {
            files.extend(rd.filter_map(|e| e.ok().map(|e| e.path())));
        }
    }
    files.sort();
    let mut all = Vec::new();
    for f in files {
        let bytes = std::fs::read(&f)?;
        // Latin-1 or UTF-8: every byte as a char is lossless for ABC's ASCII syntax.
        let text: String = match String::from_utf8(bytes.clone()) {
            Ok(s) => s,
            Err(_) => bytes.iter().map(|&b| b as char).collect(),
        };
        all.extend(parse_book(&text));
    }
    if all.is_empty() {
        bail!("no tunes parsed from {}", abc_dir.display());
    }
    Ok(all)
}

/// What phrase `i` of an instrument is: two tunes, then an exercise, in turn.
enum Item {
    Tune(usize),
    Exercise(Exercise),
}

fn item(i: usize, rng: &mut SplitMix64, tunes: usize) -> Item {
    match i % 3 {
        0 | 1 => Item::Tune((rng.next_u64() % tunes as u64) as usize),
        _ => Item::Exercise(match (i / 3) % 3 {
            0 => Exercise::Scale,
            1 => Exercise::Arpeggio,
            _ => Exercise::LongNotes,
        }),
    }
}

fn seed_for(seed: u64, instrument: &Instrument, i: usize) -> u64 {
    let name: u64 = instrument.name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    seed ^ name ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The live tracker configurations scored for `instrument`: the one every model used
/// before range maps, and the one the plugin derives from the bundled model's range map
/// (when the model file is there).
fn live_configurations(instrument: &str) -> Vec<(&'static str, newt_features::PitchConfig)> {
    use newt_features::{LiveTracking, PitchConfig, YinWindow};
    let before = PitchConfig {
        sample_rate: TRUTH_RATE,
        hop: crate::render::TRUTH_HOP,
        lag_frames: 0,
        f_min: 62.0,
        integration_periods: 0.5,
        window: YinWindow::Start,
        ..PitchConfig::default()
    };
    let mut configs = vec![("before", before)];
    let model = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../assets/models")
        .join(format!("{instrument}.safetensors"));
    if let Ok(model) = newt_model::NewtModel::load(&model) {
        let (lowest_trained, _) = model.meta.range_map.pitch_range_midi();
        let lowest = LiveTracking::lowest_pitch_for_range(lowest_trained);
        let live = LiveTracking::for_lowest_pitch(TRUTH_RATE, crate::render::TRUTH_HOP, lowest);
        configs.push(("from the model's range", live.pitch));
    }
    configs
}

pub fn run(args: InstrumentsArgs) -> anyhow::Result<()> {
    let instruments: Vec<Instrument> = if args.instruments.is_empty() {
        INSTRUMENTS.to_vec()
    } else {
        args.instruments
            .iter()
            .map(|n| by_name(n).with_context(|| format!("unknown instrument {n}")))
            .collect::<anyhow::Result<_>>()?
    };
    let sf_path = sound_font_path(&args.sources)?;
    let sound_font = load_sound_font(&sf_path)?;
    let tunes = tunes(&args.sources)?;
    println!("{} tunes; SoundFont {}", tunes.len(), sf_path.display());

    let target_s = args.minutes * 60.0;
    let bar = indicatif::ProgressBar::new((target_s * instruments.len() as f64) as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "instruments [{bar:30}] {pos}/{len} s of audio {msg} ({eta} left)",
        )
        .expect("valid template"),
    );
    let mut report = String::from(
        "| instrument | minutes | scored frames | median error (cents) | gross errors (> 50 cents) | unvoiced misses |\n|---|---|---|---|---|---|\n",
    );
    let mut live_report = String::from(
        "| instrument | live configuration | lowest pitch (Hz) | median error (cents) | gross errors (> 50 cents) | unvoiced misses |\n|---|---|---|---|---|---|\n",
    );
    for inst in &instruments {
        let dir = args.out.join(inst.name);
        std::fs::create_dir_all(&dir)?;
        let mut seconds = 0.0;
        let mut tally = TrackerTally::default();
        let live = live_configurations(inst.name);
        let mut live_tallies = vec![TrackerTally::default(); live.len()];
        // Phrases in a fixed order until the instrument has its minutes.
        let mut next = 0;
        while seconds < target_s {
            let i = next;
            next += 1;
            bar.set_message(inst.name);
            let mut rng = SplitMix64::new(seed_for(args.seed, inst, i));
            let (stem, performance) = match item(i, &mut rng, tunes.len()) {
                Item::Tune(t) => (
                    format!("{i:03}-tune"),
                    from_tune(&tunes[t], inst, PHRASE_S, &mut rng),
                ),
                Item::Exercise(kind) => (
                    format!("{i:03}-{kind:?}").to_lowercase(),
                    Some(exercise(kind, inst, PHRASE_S, &mut rng)),
                ),
            };
            let Some(performance) = performance else {
                continue;
            };
            let wav = dir.join(format!("{stem}.wav"));
            let csv = dir.join(format!("{stem}.truth.csv"));
            let (audio, truth) = if wav.exists() && csv.exists() {
                let (audio, _) = newt_features::read_wav(&wav)?;
                let truth = parse_truth_csv(&std::fs::read_to_string(&csv)?)
                    .with_context(|| format!("reading {}", csv.display()))?;
                (audio, truth)
            } else {
                let r = render(&sound_font, inst, &performance)?;
                newt_features::write_pcm16(&wav, &r.audio, RENDER_RATE)?;
                let partial = csv.with_extension("csv.partial");
                std::fs::write(&partial, truth_csv(&r.truth))?;
                std::fs::rename(&partial, &csv)?;
                (r.audio, r.truth)
            };
            let length_s = audio.len() as f64 / RENDER_RATE as f64;
            seconds += length_s;
            bar.inc(length_s.min(target_s) as u64);
            let audio16 = newt_features::resample(&audio, RENDER_RATE, TRUTH_RATE)
                .map_err(anyhow::Error::msg)?;
            tally.merge(score(&audio16, &truth)?);
            for ((_, config), t) in live.iter().zip(&mut live_tallies) {
                t.merge(score_live(
                    &audio16,
                    &truth,
                    *config,
                    newt_features::live::DEFAULT_CONFIDENCE_GATE,
                )?);
            }
        }
        for ((label, config), t) in live.iter().zip(&live_tallies) {
            live_report.push_str(&format!(
                "| {} | {label} | {:.0} | {:.2} | {:.2}% | {:.2}% |\n",
                inst.name,
                config.f_min,
                t.median_cents(),
                100.0 * t.gross_rate(),
                100.0 * t.missed_rate()
            ));
        }
        report.push_str(&format!(
            "| {} | {:.1} | {} | {:.2} | {:.2}% | {:.2}% |\n",
            inst.name,
            seconds / 60.0,
            tally.frames(),
            tally.median_cents(),
            100.0 * tally.gross_rate(),
            100.0 * tally.missed_rate()
        ));
    }
    bar.finish();
    let report = format!(
        "# Pitch tracker on rendered instruments\n\nThe offline tracker (newt-features: YIN, \
         pYIN-style probabilities, Viterbi) against the ground truth of `cargo xtask data \
         instruments` (FluidR3 SoundFont, 48 kHz rendered, tracked at 16 kHz), on frames \
         whose note is held for 40 ms on each side; gross = more than {GROSS_CENTS} cents \
         off.\n\n{report}\n## Live (the plugin's audio input)\n\nThe streaming tracker as the \
         plugin runs it on its audio input (no Viterbi look-ahead, half-period YIN \
         integration; a frame counts as pitched when voiced with at least the default \
         confidence gate, {gate}) on the same frames. *Before*: one configuration for \
         every model, searching down to 62 Hz, YIN comparing the window's oldest samples \
         (until 2026-12-04). *From the model's range*: searching down to {margin} semitones \
         below the bundled model's 1st-percentile trained pitch, YIN comparing the window's \
         newest samples (`newt_features::LiveTracking`).\n\n{live_report}",
        gate = newt_features::live::DEFAULT_CONFIDENCE_GATE,
        margin = newt_features::live::RANGE_MARGIN_SEMITONES
    );
    std::fs::write(args.out.join("tracker.md"), &report)?;
    println!("{report}");
    println!("wrote {}", args.out.join("tracker.md").display());
    Ok(())
}
