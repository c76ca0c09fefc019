//! Timbre transfer in process (no host): the plugin's audio-input tracker feeding the
//! engine, as its `process` does. The same checks through real hosts are the
//! `audio_input_*` scenarios of the CLAP and VST3 tests.

use newt::audio_input::AudioInputTracker;
use newt::params::InputSettings;
use newt_engine::{Drive, Engine, EngineConfig, EngineParams, Event, EventKind};
use newt_integration_tests::{PITCH_FRAME_S, median_pitch, melody, pitch_track, tone, track_lag};
use newt_model::NewtModel;

const SR: u32 = 48_000;

/// Renders `input` through tracker and engine in blocks of `block`; returns the output
/// and the latency the plugin would report.
fn transfer(input: &[f32], block: usize) -> (Vec<f32>, usize) {
    transfer_with(NewtModel::seeded(0), input, block)
}

fn transfer_with(model: NewtModel, input: &[f32], block: usize) -> (Vec<f32>, usize) {
    let config = EngineConfig {
        host_sample_rate: SR,
        max_block: 4096,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(model, config).unwrap();
    let meta = engine.model().meta.clone();
    let mut tracker = AudioInputTracker::new(
        SR,
        meta.sample_rate,
        meta.hop,
        meta.loudness_measure,
        engine.latency_samples(),
    )
    .unwrap();
    let params = EngineParams {
        drive: Drive::Controls,
        ..EngineParams::default()
    };
    let settings = InputSettings {
        pitch_ratio: 1.0,
        loudness_offset_db: 0.0,
        gate: 0.3,
    };
    let mut out = vec![0.0; input.len()];
    let mut events = Vec::new();
    for (x, y) in input.chunks(block).zip(out.chunks_mut(block)) {
        events.clear();
        tracker.process(x, &settings, |time, controls, _| {
            events.push(Event {
                time,
                kind: EventKind::Controls(controls),
            })
        });
        engine.process(&events, &params, y).unwrap();
    }
    (out, tracker.latency_samples())
}

#[test]
fn output_follows_the_input_melody() {
    let input = melody(SR as f64, &[(220.0, 1.5), (330.0, 1.0), (262.0, 1.0)]);
    let (out, _) = transfer(&input, 512);
    assert!(out.iter().all(|x| x.is_finite()));
    let track = pitch_track(&out);
    for (start_s, end_s, f) in [(0.4, 1.4, 220.0f32), (1.7, 2.4, 330.0), (2.7, 3.4, 262.0)] {
        let median = median_pitch(&track, start_s, end_s);
        let cents = 1200.0 * (median / f).log2();
        assert!(cents.abs() < 20.0, "{f} Hz note came out at {median} Hz");
    }
}

/// A model in the NEWT authors' loudness measure (their violin) streams its own
/// loudness from the input and plays the input's melody.
#[test]
fn an_imported_model_follows_the_input_melody() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../assets/models/violin-urmp.safetensors");
    let model = NewtModel::load(&path).unwrap();
    let input = melody(SR as f64, &[(440.0, 1.5), (587.3, 1.0), (493.9, 1.0)]);
    let (out, _) = transfer_with(model, &input, 512);
    assert!(out.iter().all(|x| x.is_finite()));
    let track = pitch_track(&out);
    for (start_s, end_s, f) in [(0.5, 1.4, 440.0f32), (1.8, 2.4, 587.3), (2.8, 3.4, 493.9)] {
        let median = median_pitch(&track, start_s, end_s);
        let cents = 1200.0 * (median / f).log2();
        println!("{f} Hz note: {median:.2} Hz ({cents:+.1} cents)");
        assert!(cents.abs() < 20.0, "{f} Hz note came out at {median} Hz");
    }
}

#[test]
fn reported_latency_is_the_measured_delay_and_under_40_ms() {
    // A slow vibrato (3 Hz, +-60 cents) around 262 Hz: always voiced, so the lag of the
    // output's pitch track behind the input's is the pure delay.
    let input = tone(SR as f64, 3.0, |t| {
        262.0 * (0.6 / 12.0 * (std::f64::consts::TAU * 3.0 * t).sin()).exp2()
    });
    let (out, latency) = transfer(&input, 512);
    assert!(
        latency <= 40 * SR as usize / 1000,
        "latency {latency} samples"
    );
    let (ti, to) = (pitch_track(&input), pitch_track(&out));
    let skip = (0.5 / PITCH_FRAME_S) as usize;
    let lag = track_lag(&ti[skip..ti.len() - 2], &to[skip..to.len() - 2], 20);
    let frame = PITCH_FRAME_S * SR as f64;
    let measured = lag * frame;
    println!("reported latency {latency} samples, measured {measured:.0} samples");
    assert!(
        (measured - latency as f64).abs() <= frame,
        "reported {latency}, measured {measured:.0}"
    );
}

#[test]
fn output_does_not_depend_on_the_block_size() {
    let input = melody(SR as f64, &[(196.0, 0.6), (294.0, 0.6)]);
    let (a, _) = transfer(&input, 512);
    for block in [1, 77, 4096] {
        let (b, _) = transfer(&input, block);
        assert_eq!(a, b, "block {block}");
    }
}
