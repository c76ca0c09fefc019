//! `newt-eval range` on a tiny grid: two half-second flute notes, one in the heart of the
//! flute's range map and one an octave and a half below it.

use std::path::{Path, PathBuf};

use newt_data::render::{load_sound_font, render};
use newt_eval::range::{
    Grid, PlayReference, Results, measure_model, reference_instrument, report_markdown,
    write_report,
};
use newt_model::NewtModel;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A scratch folder of this test, emptied.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("newt-eval-range-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_tiny_grid_scores_the_flute_and_its_report_regenerates_byte_for_byte() {
    let model = NewtModel::load(root().join("assets/models/flute.safetensors")).unwrap();
    // MIDI 40 and 76 at one loudness, the middle of the default span (about -46 dB A).
    let grid = Grid {
        midi_lo: 40,
        midi_hi: 76,
        midi_step: 36,
        loudness_levels: 1,
        seconds: 0.5,
        onset_s: 0.2,
        velocities: vec![20, 60, 100],
        ..Grid::default()
    };
    // The reference instrument when the SoundFont is at hand (`cargo xtask data
    // instruments`); without it the notes are scored for pitch only.
    let sf_path = root().join("data/sources/FluidR3_GM.sf2");
    let sound_font = sf_path.exists().then(|| load_sound_font(&sf_path).unwrap());
    let inst = reference_instrument("flute", &model).expect("our flute has a reference");
    let bar = indicatif::ProgressBar::hidden();
    let result = match &sound_font {
        Some(sf) => {
            let play = |perf: &newt_data::performance::Performance| {
                let r = render(sf, &inst, perf)?;
                Ok((r.audio, r.truth.iter().map(|t| t.loudness_db).collect()))
            };
            let play: PlayReference<'_> = &play;
            measure_model(&model, &grid, Some(("flute", play)), &bar).unwrap()
        }
        None => measure_model(&model, &grid, None, &bar).unwrap(),
    };

    assert_eq!(result.points.len(), 2);
    assert_eq!(result.loudness_levels_db.len(), 1);
    let (low, inside) = (&result.points[0], &result.points[1]);
    assert_eq!((low.midi, inside.midi), (40, 76));
    // The map: MIDI 76 at a middling loudness is the flute's heart, MIDI 40 it never played.
    assert!(inside.knows && inside.region < 0.9, "{inside:?}");
    assert!(!low.knows && low.region > 0.99, "{low:?}");
    // Inside, the note is in tune and voiced throughout.
    assert!(inside.pitch_error_cents < 50.0, "{inside:?}");
    assert!(inside.unvoiced_share < 0.2, "{inside:?}");
    assert!(inside.output_rms_db > -70.0, "{inside:?}");
    if sound_font.is_some() {
        let (d_in, d_low) = (
            inside.spectral_distance_db.unwrap(),
            low.spectral_distance_db.unwrap(),
        );
        assert!(d_in.is_finite() && d_in > 0.0, "{inside:?}");
        // An octave and a half below its range the flute no longer sounds like one.
        assert!(d_low > d_in + 2.0, "outside {d_low} dB, inside {d_in} dB");
        assert!(
            grid.velocities
                .contains(&inside.reference_velocity.unwrap())
        );
        assert!(inside.reference_loudness_db.unwrap() > -100.0);
    } else {
        assert_eq!(inside.spectral_distance_db, None);
    }

    // The results file reads back to the same results and the same text.
    let mut results = Results::default();
    results.models.insert("flute".into(), result);
    let json = results.to_json().unwrap();
    let back: Results = serde_json::from_str(&json).unwrap();
    assert_eq!(back, results);
    assert_eq!(back.to_json().unwrap(), json);

    // The report and figure from the read-back results are those of the originals, byte
    // for byte, as `--report-only` relies on.
    let (a, b) = (scratch("a"), scratch("b"));
    write_report(&results, &a).unwrap();
    write_report(&back, &b).unwrap();
    for file in ["RANGE.md", "figures/range-flute.png"] {
        let (x, y) = (
            std::fs::read(a.join(file)).unwrap(),
            std::fs::read(b.join(file)).unwrap(),
        );
        assert!(!x.is_empty(), "{file} is empty");
        assert!(x == y, "{file} differs between runs");
    }
    let text = report_markdown(&back);
    assert!(text.contains("| flute | counted | 1 / 1 |"), "{text}");
    assert!(text.contains("figures/range-flute.png"));
    let _ = std::fs::remove_dir_all(&a);
    let _ = std::fs::remove_dir_all(&b);
}

#[test]
fn the_committed_write_up_is_the_one_its_results_make() {
    let json_path = root().join("docs/range/results.json");
    let results = Results::read(&json_path).unwrap();
    // The file is in the stable form `to_json` writes (what `--report-only` relies on).
    assert!(
        results.to_json().unwrap() == std::fs::read_to_string(&json_path).unwrap(),
        "docs/range/results.json is not in its stable form"
    );
    for name in newt_eval::range::MODELS {
        assert_eq!(
            results.models.get(name).map(|m| m.points.len()),
            Some(264),
            "{name}: the full grid"
        );
    }
    let committed = std::fs::read_to_string(root().join("docs/RANGE.md")).unwrap();
    assert!(
        report_markdown(&results) == committed,
        "docs/RANGE.md is stale: run `cargo xtask range --report-only`"
    );
}
