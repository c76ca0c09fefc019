//! The sound of the engine, pinned: a fixed phrase of notes played by the default bundled
//! model (`assets/models/flute.safetensors`) must match the stored render
//! `tests/golden/flute-phrase.wav`, so that any change to what the engine plays is a
//! deliberate one.
//!
//! Tolerance: 1e-3 of the reference's peak, sample by sample. The engine's SIMD kernels
//! pick their instruction set at run time (AVX-512 or AVX2), and sums taken in another
//! order differ in the last bits of an f32; every deliberate change to the sound moves
//! samples by far more (a one-cent detune moves this phrase by 0.38 of its peak).
//!
//! After a deliberate change (a new default model, a new operator), write the new
//! reference and commit it with the change:
//! `NEWT_BLESS_GOLDEN=1 cargo test -p newt-engine --test golden_render`.

use std::path::PathBuf;

use newt_engine::{
    Engine, EngineConfig, EngineParams, EventKind, TimedEvent, VoiceMode, render_to_vec,
};
use newt_model::NewtModel;

const RATE: u32 = 24_000;
const SECONDS: f64 = 0.75;
/// Host block size; the output does not depend on it (`contract.rs`).
const BLOCK: usize = 256;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn reference_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/flute-phrase.wav")
}

/// Three overlapping notes (a legato step, a chord tone, a release into the reverb) with
/// a pitch bend and the mod wheel, in poly mode.
fn phrase() -> Vec<TimedEvent> {
    let s = |sec: f64| (sec * RATE as f64) as u64;
    let on = |t: f64, note: u8, velocity: f32| TimedEvent {
        sample: s(t),
        kind: EventKind::NoteOn { note, velocity },
    };
    let off = |t: f64, note: u8| TimedEvent {
        sample: s(t),
        kind: EventKind::NoteOff { note },
    };
    let mut events = vec![
        on(0.0, 69, 0.8),
        on(0.2, 72, 0.6),
        off(0.35, 69),
        on(0.4, 76, 0.9),
        TimedEvent {
            sample: s(0.45),
            kind: EventKind::PitchBend(0.25),
        },
        TimedEvent {
            sample: s(0.5),
            kind: EventKind::ModWheel(0.7),
        },
        off(0.55, 72),
        off(0.6, 76),
    ];
    events.sort_by_key(|e| e.sample);
    events
}

/// The phrase played by the default model, raw (the engine's latency included), with
/// every note transposed by `transpose_cents`.
fn render(transpose_cents: f32) -> Vec<f32> {
    let model = NewtModel::load(repo().join("assets/models/flute.safetensors"))
        .expect("the default bundled model loads");
    let config = EngineConfig {
        host_sample_rate: RATE,
        max_block: BLOCK,
        voices: 4,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(model, config).expect("engine");
    let mut params = EngineParams {
        mode: VoiceMode::Poly,
        ..EngineParams::default()
    };
    params.notes.transpose_semitones = transpose_cents / 100.0;
    let len = (SECONDS * RATE as f64) as usize;
    render_to_vec(&mut engine, &phrase(), &params, len, BLOCK)
}

/// The largest absolute difference from the reference, relative to its peak, and where.
fn worst_difference(out: &[f32], reference: &[f32]) -> (f32, usize) {
    assert_eq!(out.len(), reference.len(), "length in samples");
    let peak = reference.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(peak > 1e-3, "the reference is silent (peak {peak})");
    let (worst, at) = out
        .iter()
        .zip(reference)
        .map(|(a, b)| (a - b).abs())
        .enumerate()
        .fold((0.0f32, 0), |m, (i, d)| if d > m.0 { (d, i) } else { m });
    (worst / peak, at)
}

fn read_reference() -> Vec<f32> {
    let mut reader = hound::WavReader::open(reference_path()).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (write it with NEWT_BLESS_GOLDEN=1)",
            reference_path().display()
        )
    });
    assert_eq!(reader.spec().sample_rate, RATE);
    reader.samples::<f32>().map(|s| s.unwrap()).collect()
}

fn write_reference(x: &[f32]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    std::fs::create_dir_all(reference_path().parent().unwrap()).unwrap();
    let mut w = hound::WavWriter::create(reference_path(), spec).unwrap();
    for v in x {
        w.write_sample(*v).unwrap();
    }
    w.finalize().unwrap();
}

#[test]
fn the_default_model_plays_the_stored_phrase() {
    let out = render(0.0);
    if std::env::var_os("NEWT_BLESS_GOLDEN").is_some() {
        write_reference(&out);
    }
    let (worst, at) = worst_difference(&out, &read_reference());
    eprintln!("largest difference from the reference: {worst:.2e} of its peak");
    assert!(
        worst <= 1e-3,
        "sample {at} ({:.4} s) differs by {worst:.2e} of the reference's peak",
        at as f64 / RATE as f64
    );
}

/// The comparison above would catch a change of one cent: the check is not vacuous.
#[test]
fn a_one_cent_detune_fails_the_comparison() {
    let (worst, _) = worst_difference(&render(1.0), &render(0.0));
    eprintln!("one cent: {worst:.2e} of the peak");
    assert!(
        worst > 1e-2,
        "a one-cent detune moved the phrase by only {worst:.2e} of its peak"
    );
}
