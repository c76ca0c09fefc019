//! Every model shipped in `assets/models` plays in tune over the demo melody's notes (E4
//! to F5), rendered by the engine as the plugin and the renderer run it (48 kHz,
//! FastNEWT tables, mono legato, default envelope).

use newt_engine::{Engine, EngineConfig, EngineParams, EventKind, TimedEvent, render_to_vec};
use newt_integration_tests::{cents, median_pitch, pitch_track};
use newt_model::NewtModel;

/// The keys of `assets/demo/demo.mid`.
const DEMO_KEYS: [u8; 9] = [64, 67, 68, 69, 71, 72, 74, 76, 77];
const RATE: u32 = 48_000;
/// Each note sounds for `NOTE_S` and is followed by `GAP_S` of silence.
const NOTE_S: f64 = 0.6;
const GAP_S: f64 = 0.15;

fn bundled_models() -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/models");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("assets/models exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_bundled_model_plays_the_demo_notes_in_tune() {
    let files = bundled_models();
    assert!(
        files.len() >= 8,
        "expected the eight bundled models in assets/models, found {files:?}"
    );
    let at = |s: f64| (s * RATE as f64) as u64;
    let mut events = Vec::new();
    for (i, &note) in DEMO_KEYS.iter().enumerate() {
        let start = i as f64 * (NOTE_S + GAP_S);
        events.push(TimedEvent {
            sample: at(start),
            kind: EventKind::NoteOn {
                note,
                velocity: 0.8,
            },
        });
        events.push(TimedEvent {
            sample: at(start + NOTE_S),
            kind: EventKind::NoteOff { note },
        });
    }
    let len = at(DEMO_KEYS.len() as f64 * (NOTE_S + GAP_S)) as usize;
    for file in files {
        let model = NewtModel::load(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let config = EngineConfig {
            host_sample_rate: RATE,
            ..EngineConfig::default()
        };
        let mut engine = Engine::new(model, config).unwrap();
        let out = render_to_vec(&mut engine, &events, &EngineParams::default(), len, 512);
        let track = pitch_track(&out);
        let mut errors: Vec<(u8, f64)> = DEMO_KEYS
            .iter()
            .enumerate()
            .map(|(i, &note)| {
                let start = i as f64 * (NOTE_S + GAP_S);
                let f0 = median_pitch(&track, start + 0.2, start + NOTE_S - 0.05) as f64;
                let want = 440.0 * 2f64.powf((note as f64 - 69.0) / 12.0);
                (
                    note,
                    if f0 > 0.0 {
                        cents(f0, want)
                    } else {
                        f64::INFINITY
                    },
                )
            })
            .collect();
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        println!(
            "{name}: {}",
            errors
                .iter()
                .map(|(n, c)| format!("{n}: {c:+.1}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        errors.sort_by(|a, b| a.1.abs().total_cmp(&b.1.abs()));
        let median = errors[errors.len() / 2].1.abs();
        let worst = errors[errors.len() - 1];
        assert!(
            median < 10.0,
            "{name}: median pitch error {median:.1} cents"
        );
        assert!(
            worst.1.abs() < 50.0,
            "{name}: note {} is {:+.1} cents off",
            worst.0,
            worst.1
        );
    }
}

/// The plugin's level trim brings every bundled model's reference note (ours, trained on
/// quiet SoundFont renders, and the authors', whose learned response adds about 32 dB)
/// to the same -18 dBFS RMS, measured on a rendering played through the trim, without
/// hitting the trim's bounds.
#[test]
fn the_level_trim_brings_every_reference_note_to_minus_18_dbfs() {
    use newt::handover::{MAX_TRIM_DB, MIN_TRIM_DB, REFERENCE_LEVEL_DB, level_trim};
    for file in bundled_models() {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let model = NewtModel::load(&file).unwrap();
        let config = EngineConfig {
            host_sample_rate: RATE,
            ..EngineConfig::default()
        };
        let mut engine = Engine::new(model, config).unwrap();
        let level = newt_engine::reference_level_db(&mut engine);
        let trim = level_trim(level);
        let trim_db = 20.0 * trim.log10();
        assert!(
            trim_db > MIN_TRIM_DB + 1.0 && trim_db < MAX_TRIM_DB - 1.0,
            "{name}: trim {trim_db:.1} dB at its bound"
        );
        // Play the reference note again through the trim, as the plugin does.
        let meta = &engine.model().meta;
        let key = (69.0 + 12.0 * (meta.f0_mean_hz / 440.0).log2()).round() as u8;
        let on = TimedEvent {
            sample: 0,
            kind: EventKind::NoteOn {
                note: key,
                velocity: 0.8,
            },
        };
        let params = EngineParams {
            output_gain: trim,
            ..EngineParams::default()
        };
        let out = render_to_vec(&mut engine, &[on], &params, 6 * RATE as usize / 10, 512);
        let tail = &out[3 * RATE as usize / 10..];
        let rms_db = 10.0
            * (tail.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / tail.len() as f64).log10();
        println!(
            "{name}: reference note {level:.1} dBFS, trim {trim_db:+.1} dB -> {rms_db:.2} dBFS"
        );
        assert!(
            (rms_db - REFERENCE_LEVEL_DB as f64).abs() < 0.5,
            "{name}: {rms_db:.2} dBFS"
        );
    }
}
