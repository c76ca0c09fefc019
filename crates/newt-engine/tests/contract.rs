//! The engine end to end, as the renderer and the plugin drive it.

mod support;
#[path = "support/checks.rs"]
mod support_checks;

use newt_engine::{
    Drive, Engine, EngineConfig, EngineParams, Event, EventKind, FrameControls, ShaperPath,
    TimedEvent, VoiceMode, render_aligned_to_vec, render_controls_to_vec, render_to_vec,
};
use newt_model::NewtModel;
use support::{cents, fundamental_hz, rms};

fn steady(f0_hz: f32, loudness_db: f32, frames: usize) -> Vec<FrameControls> {
    vec![FrameControls { f0_hz, loudness_db }; frames]
}

fn render_controls(
    controls: &[FrameControls],
    host_rate: u32,
    shaper: ShaperPath,
    block: usize,
) -> Vec<f32> {
    render_model(NewtModel::seeded(11), controls, host_rate, shaper, block)
}

fn render_model(
    model: NewtModel,
    controls: &[FrameControls],
    host_rate: u32,
    shaper: ShaperPath,
    block: usize,
) -> Vec<f32> {
    let config = EngineConfig {
        host_sample_rate: host_rate,
        max_block: 4096,
        voices: 1,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(model, config).unwrap();
    let mut params = EngineParams {
        drive: Drive::Controls,
        ..EngineParams::default()
    };
    params.voice.shaper = shaper;
    render_controls_to_vec(&mut engine, controls, &params, block)
}

/// Every host rate from 1 kHz to 768 kHz, odd ones too (the rates a CLAP validator tries):
/// the engine builds, its output is finite and free of subnormals, and the note is in
/// tune. Below 4 kHz the note is 220 Hz, so that it stays well inside Nyquist.
#[test]
fn a_440_hz_control_sounds_at_440_hz_at_every_host_rate() {
    for rate in [
        1_000, 1_001, 2_000, 4_000, 8_000, 11_025, 12_000, 16_000, 22_050, 22_051, 32_000, 44_100,
        47_999, 48_000, 88_200, 96_000, 176_400, 192_000, 352_800, 384_000, 705_600, 768_000,
    ] {
        let f0 = if rate < 4_000 { 220.0 } else { 440.0 };
        let controls = steady(f0, -25.0, 250); // 2 s
        let out = render_controls(&controls, rate, ShaperPath::Table, 512);
        assert!(
            out.iter()
                .all(|x| x.is_finite() && (*x == 0.0 || x.abs() >= f32::MIN_POSITIVE)),
            "{rate} Hz: non-finite or subnormal output"
        );
        let steady_part = &out[rate as usize / 2..3 * rate as usize / 2];
        assert!(rms(steady_part) > 1e-3, "{rate} Hz: silent");
        // The pitch from at most 0.25 s (the FFT grows with the rate).
        let window = &steady_part[..steady_part.len().min(rate as usize / 4).max(1)];
        let f = fundamental_hz(window, rate as f64);
        let err = cents(f, f0 as f64);
        println!("host {rate} Hz: measured fundamental {f:.3} Hz ({err:+.3} cents)");
        assert!(
            err.abs() < 5.0,
            "{rate} Hz: {f} Hz is {err} cents from {f0}"
        );
    }
}

#[test]
fn rates_outside_1_to_768_khz_are_refused_with_a_clear_error() {
    for rate in [0, 999, 768_001, u32::MAX] {
        let config = EngineConfig {
            host_sample_rate: rate,
            ..EngineConfig::default()
        };
        let err = Engine::new(NewtModel::seeded(1), config)
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains("1000..=768000")),
            "{rate} Hz: {err:?}"
        );
    }
}

#[test]
fn fastnewt_matches_the_mlp_shapers() {
    // 4 s: a slow glide 220 -> 660 Hz with a loudness swell, at the model rate.
    let controls: Vec<FrameControls> = (0..500)
        .map(|f| {
            let t = f as f32 / 500.0;
            FrameControls {
                f0_hz: 220.0 * 3f32.powf(t),
                loudness_db: -45.0 + 30.0 * (std::f32::consts::PI * t).sin(),
            }
        })
        .collect();
    // The seeded model's shapers are gentle (input scales 0.5-4); trained NEWT shapers
    // start from input scales ~N(0, 1) * 10 and have many more wiggles over [-3, 3]: the
    // second model scales every input scale by 6 to stand in for them.
    let gentle = NewtModel::seeded(11);
    let mut sharp = gentle.clone();
    sharp
        .weights
        .shapers
        .input_scale
        .iter_mut()
        .for_each(|s| *s *= 6.0);
    for (name, model, max_bound, rms_bound) in [
        ("seeded", gentle, 2e-5, 2e-6),
        ("sharp shapers", sharp, 5e-4, 5e-5),
    ] {
        let fast = render_model(model.clone(), &controls, 16_000, ShaperPath::Table, 512);
        let mlp = render_model(model, &controls, 16_000, ShaperPath::Mlp, 512);
        let diff: Vec<f32> = fast.iter().zip(&mlp).map(|(a, b)| a - b).collect();
        let max = diff.iter().fold(0.0f32, |m, d| m.max(d.abs()));
        let (rms_diff, rms_ref) = (rms(&diff), rms(&mlp));
        println!(
            "FastNEWT vs MLP, {name}, 4 s at 16 kHz: max |diff| {max:.2e}, RMS diff {rms_diff:.2e}, signal RMS {rms_ref:.3} ({:.1} dB below)",
            20.0 * (rms_ref / rms_diff).log10()
        );
        assert!(rms_ref > 1e-2, "{name}: silent");
        assert!(max < max_bound, "{name}: max difference {max}");
        assert!(rms_diff < rms_bound, "{name}: RMS difference {rms_diff}");
    }
}

/// A phrase that exercises everything stateful: notes, legato, bend, mod wheel,
/// expression, release and the reverb tail, in poly mode with voice stealing.
fn phrase(rate: u32) -> Vec<TimedEvent> {
    let s = |sec: f64| (sec * rate as f64) as u64;
    let mut ev = Vec::new();
    let notes = [
        (0.0, 60),
        (0.31, 64),
        (0.52, 67),
        (0.73, 72),
        (0.91, 76),
        (1.3, 59),
    ];
    for (i, (t, n)) in notes.iter().enumerate() {
        ev.push(TimedEvent {
            sample: s(*t),
            kind: EventKind::NoteOn {
                note: *n,
                velocity: 0.5 + 0.08 * i as f32,
            },
        });
        ev.push(TimedEvent {
            sample: s(t + 0.6),
            kind: EventKind::NoteOff { note: *n },
        });
    }
    for i in 0..40 {
        let t = 0.05 * i as f64;
        ev.push(TimedEvent {
            sample: s(t) + 3,
            kind: EventKind::PitchBend(((i as f32) * 0.3).sin() * 0.5),
        });
        ev.push(TimedEvent {
            sample: s(t) + 5,
            kind: EventKind::ModWheel(i as f32 / 40.0),
        });
        ev.push(TimedEvent {
            sample: s(t) + 7,
            kind: EventKind::Expression(0.5 + 0.5 * (i as f32 * 0.2).cos()),
        });
    }
    ev.sort_by_key(|e| e.sample);
    ev
}

#[test]
fn output_is_identical_for_every_block_size() {
    for (rate, mode) in [
        (44_100, VoiceMode::Poly),
        (48_000, VoiceMode::MonoLegato),
        (22_050, VoiceMode::Poly),
        (16_000, VoiceMode::Poly),
        (22_051, VoiceMode::Poly),
    ] {
        let events = phrase(rate);
        let params = EngineParams {
            mode,
            ..EngineParams::default()
        };
        let len = 3 * rate as usize;
        for model in [NewtModel::seeded(3), support::seeded_nws(3)] {
            let ops = model.meta.operators;
            let render = |block: usize| {
                let config = EngineConfig {
                    host_sample_rate: rate,
                    max_block: 4096,
                    voices: 4,
                    ..EngineConfig::default()
                };
                let mut engine = Engine::new(model.clone(), config).unwrap();
                render_to_vec(&mut engine, &events, &params, len, block)
            };
            let reference = render(4096);
            assert!(rms(&reference) > 1e-3, "silent render");
            for block in [1, 7, 64, 512] {
                let out = render(block);
                let first_diff = out
                    .iter()
                    .zip(&reference)
                    .position(|(a, b)| a.to_bits() != b.to_bits());
                assert_eq!(
                    first_diff, None,
                    "{rate} Hz, {ops:?} operators, block {block} differs from block 4096"
                );
            }
        }
    }
}

#[test]
fn absurd_controls_give_finite_bounded_output() {
    let bad = [
        0.0,
        1e9,
        f32::NAN,
        f32::INFINITY,
        -5.0,
        f32::NEG_INFINITY,
        1e-30,
    ];
    let loud = [f32::NEG_INFINITY, f32::NAN, 1e9, -1e9, f32::INFINITY, -25.0];
    let mut controls = Vec::new();
    for (i, &f) in bad.iter().enumerate() {
        for (j, &l) in loud.iter().enumerate() {
            // Alternate with sane frames so that every transition is exercised.
            controls.extend(steady(f, l, 3 + (i + j) % 4));
            controls.extend(steady(330.0, -30.0, 2));
        }
    }
    for rate in [16_000, 48_000] {
        for shaper in [ShaperPath::Table, ShaperPath::Mlp] {
            let out = render_controls(&controls, rate, shaper, 256);
            assert!(out.iter().all(|x| x.is_finite()), "non-finite output");
            let peak = out.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            assert!(peak <= newt_engine::engine::OUTPUT_LIMIT, "peak {peak}");
            // The engine recovers: a sane tone after the abuse still has its pitch.
            let mut after = controls.clone();
            after.extend(steady(440.0, -25.0, 250));
            let out = render_controls(&after, rate, shaper, 256);
            let tail = &out[out.len() - rate as usize..];
            assert!(cents(fundamental_hz(tail, rate as f64), 440.0).abs() < 5.0);
        }
    }
}

#[test]
fn notes_release_to_silence_after_the_reverb_tail() {
    let rate = 48_000;
    let config = EngineConfig {
        host_sample_rate: rate,
        voices: 4,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(NewtModel::seeded(5), config).unwrap();
    let params = EngineParams {
        mode: VoiceMode::Poly,
        ..EngineParams::default()
    };
    let events = vec![
        TimedEvent {
            sample: 0,
            kind: EventKind::NoteOn {
                note: 69,
                velocity: 0.8,
            },
        },
        TimedEvent {
            sample: 1000,
            kind: EventKind::NoteOn {
                note: 76,
                velocity: 0.8,
            },
        },
        TimedEvent {
            sample: rate as u64,
            kind: EventKind::NoteOff { note: 69 },
        },
        TimedEvent {
            sample: rate as u64,
            kind: EventKind::NoteOff { note: 76 },
        },
    ];
    // 1 s note, 0.3 s release (about 0.4 s to -60 dB), 2 s reverb: silent from 3.5 s.
    let out = render_aligned_to_vec(&mut engine, &events, &params, 5 * rate as usize, 512);
    let held = rms(&out[rate as usize / 4..rate as usize]);
    let late = out[7 * rate as usize / 2..]
        .iter()
        .fold(0.0f32, |m, x| m.max(x.abs()));
    assert!(held > 1e-2, "held note RMS {held}");
    assert!(late < 1e-5, "still sounding after release and tail: {late}");
    assert_eq!(engine.active_voices(), 0);
    assert_eq!(engine.dropped_events(), 0);
}

#[test]
fn latency_is_reported_and_small() {
    for rate in [22_050, 22_051, 44_100, 48_000, 96_000, 192_000] {
        let config = EngineConfig {
            host_sample_rate: rate,
            voices: 1,
            ..EngineConfig::default()
        };
        let engine = Engine::new(NewtModel::seeded(0), config).unwrap();
        let ms = engine.latency_samples() as f64 * 1000.0 / rate as f64;
        println!(
            "host {rate} Hz: latency {} samples = {ms:.1} ms",
            engine.latency_samples()
        );
        assert!(ms <= 40.0, "{rate} Hz: {ms} ms");
    }
}

#[test]
fn reported_latency_matches_the_measured_onset() {
    // A note-on at host sample 0 into a silent engine: the first non-silent output sample
    // must come within one frame after the reported latency (the FiLM ramp and the
    // attack make the onset gradual, but the voice starts at the scheduled frame).
    let rate = 48_000;
    let config = EngineConfig {
        host_sample_rate: rate,
        voices: 1,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(NewtModel::seeded(2), config).unwrap();
    let params = EngineParams {
        reverb_mix: 0.0,
        ..EngineParams::default()
    };
    let events = vec![TimedEvent {
        sample: 0,
        kind: EventKind::NoteOn {
            note: 69,
            velocity: 1.0,
        },
    }];
    let out = render_to_vec(&mut engine, &events, &params, rate as usize / 4, 256);
    let onset = out.iter().position(|x| x.abs() > 1e-4).expect("no sound");
    let latency = engine.latency_samples();
    let frame = 128 * 3; // one model frame in host samples
    println!("reported latency {latency}, measured onset {onset}");
    assert!(
        onset + frame >= latency && onset <= latency + frame,
        "onset {onset} vs latency {latency}"
    );
}

#[test]
fn non_finite_parameters_never_silence_the_engine_for_good() {
    let rate = 48_000;
    let config = EngineConfig {
        host_sample_rate: rate,
        voices: 2,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(NewtModel::seeded(4), config).unwrap();
    let mut bad = EngineParams {
        drive: Drive::Controls,
        ..EngineParams::default()
    };
    bad.reverb_mix = f32::NAN;
    bad.output_gain = f32::INFINITY;
    bad.voice.shaper_in_gain = f32::NAN;
    bad.notes.sustain = f32::NAN;
    let good = EngineParams {
        drive: Drive::Controls,
        ..EngineParams::default()
    };
    let tone = newt_engine::Event {
        time: 0,
        kind: EventKind::Controls(FrameControls {
            f0_hz: 440.0,
            loudness_db: -25.0,
        }),
    };
    let mut out = vec![0.0f32; 512];
    for i in 0..200 {
        let params = if i < 100 { &bad } else { &good };
        engine.process(&[tone], params, &mut out).unwrap();
        assert!(out.iter().all(|x| x.is_finite()));
    }
    assert!(
        rms(&out) > 1e-3,
        "engine stayed silent after bad parameters"
    );
}

#[test]
fn a_flood_of_controllers_cannot_drop_note_offs() {
    let rate = 48_000;
    let config = EngineConfig {
        host_sample_rate: rate,
        max_block: 4096,
        voices: 4,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(NewtModel::seeded(4), config).unwrap();
    let params = EngineParams {
        mode: VoiceMode::Poly,
        ..EngineParams::default()
    };
    let mut events = vec![newt_engine::Event {
        time: 0,
        kind: EventKind::NoteOn {
            note: 60,
            velocity: 0.8,
        },
    }];
    events.extend((0..5000).map(|i| newt_engine::Event {
        time: 1 + i % 4000,
        kind: EventKind::PitchBend(0.1),
    }));
    events.sort_by_key(|e| e.time);
    events.push(newt_engine::Event {
        time: 4095,
        kind: EventKind::NoteOff { note: 60 },
    });
    let mut out = vec![0.0f32; 4096];
    engine.process(&events, &params, &mut out).unwrap();
    assert!(
        engine.dropped_events() > 0,
        "the flood should overflow the controller half"
    );
    for _ in 0..100 {
        engine.process(&[], &params, &mut out).unwrap();
    }
    assert_eq!(engine.active_voices(), 0, "note stuck");
}

#[test]
fn direct_controls_ignore_note_events() {
    let config = EngineConfig {
        host_sample_rate: 48_000,
        voices: 4,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(NewtModel::seeded(4), config).unwrap();
    let params = EngineParams {
        drive: Drive::Controls,
        mode: VoiceMode::Poly,
        ..EngineParams::default()
    };
    let events = [newt_engine::Event {
        time: 0,
        kind: EventKind::NoteOn {
            note: 60,
            velocity: 0.8,
        },
    }];
    let mut out = vec![0.0f32; 4096];
    engine.process(&events, &params, &mut out).unwrap();
    assert_eq!(engine.active_voices(), 0);
}

#[test]
fn bad_configurations_are_errors() {
    let model = NewtModel::seeded(0);
    for rate in [0, 999, 768_001] {
        let config = EngineConfig {
            host_sample_rate: rate,
            ..EngineConfig::default()
        };
        assert!(
            Engine::new(model.clone(), config).is_err(),
            "{rate} Hz accepted"
        );
    }
    let config = EngineConfig {
        table: newt_engine::TableSpec {
            size: 1,
            lo: -3.0,
            hi: 3.0,
        },
        ..EngineConfig::default()
    };
    assert!(Engine::new(model.clone(), config).is_err());
    let config = EngineConfig {
        max_block: 0,
        ..EngineConfig::default()
    };
    assert!(Engine::new(model, config).is_err());
}

/// A model swap: an engine that takes over another's performance (`continue_performance`)
/// plays the held note in phase with it and at its level, with no new attack, so a
/// cross-fade between the two cannot dip.
#[test]
fn a_continued_performance_plays_in_phase() {
    for rate in [48_000u32, 44_100] {
        let config = EngineConfig {
            host_sample_rate: rate,
            max_block: 512,
            voices: 4,
            ..EngineConfig::default()
        };
        let params = EngineParams::default();
        let mut old = Engine::new(NewtModel::seeded(3), config).unwrap();
        let mut new = Engine::new(NewtModel::seeded(3), config).unwrap();
        let note_on = TimedEvent {
            sample: 0,
            kind: EventKind::NoteOn {
                note: 69,
                velocity: 0.8,
            },
        };
        // The swap falls mid-frame: 0.6 s plus an odd number of samples.
        let before = 6 * rate as usize / 10 + 77;
        render_to_vec(&mut old, &[note_on], &params, before, 512);
        new.reset();
        new.continue_performance(&old);
        let after = 3 * rate as usize / 10;
        let a = render_to_vec(&mut old, &[], &params, after, 512);
        let b = render_to_vec(&mut new, &[], &params, after, 512);
        // After the new engine's GRU has settled: the last 0.15 s.
        let (a, b) = (&a[after / 2..], &b[after / 2..]);
        let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
        let correlation = dot / (rms(a) * rms(b) * a.len() as f64);
        let level_db = 20.0 * (rms(b) / rms(a)).log10();
        println!("{rate} Hz: correlation {correlation:.4}, level {level_db:+.2} dB");
        assert!(
            correlation > 0.95,
            "{rate} Hz: the continued note is out of phase (correlation {correlation:.3})"
        );
        assert!(level_db.abs() < 1.0, "{rate} Hz: level {level_db:+.2} dB");
    }
}

/// The reference level a host trims models by: measured off the audio thread, it
/// follows the model's level and leaves the engine reset.
#[test]
fn reference_level_follows_the_model_and_leaves_the_engine_reset() {
    let config = EngineConfig {
        host_sample_rate: 48_000,
        ..EngineConfig::default()
    };
    let model = NewtModel::seeded(3);
    let mut quiet = model.clone();
    // The output mixer feeds the harmonic branch: scaling it by 0.1 is -20 dB there.
    quiet
        .weights
        .output_mixer
        .weight
        .iter_mut()
        .for_each(|w| *w *= 0.1);
    quiet
        .weights
        .output_mixer
        .bias
        .iter_mut()
        .for_each(|w| *w *= 0.1);
    let mut engine = Engine::new(model, config).unwrap();
    let level = newt_engine::reference_level_db(&mut engine);
    let mut quiet_engine = Engine::new(quiet, config).unwrap();
    let quiet_level = newt_engine::reference_level_db(&mut quiet_engine);
    println!("reference levels: {level:.2} dBFS, scaled mixer {quiet_level:.2} dBFS");
    assert!((-60.0..0.0).contains(&level), "{level}");
    assert!(quiet_level < level - 10.0, "{quiet_level} vs {level}");
    // Reset afterwards: the next render equals a fresh engine's.
    let events = [TimedEvent {
        sample: 0,
        kind: EventKind::NoteOn {
            note: 60,
            velocity: 0.7,
        },
    }];
    let params = EngineParams::default();
    let after = render_to_vec(&mut engine, &events, &params, 24_000, 512);
    let mut fresh = Engine::new(NewtModel::seeded(3), config).unwrap();
    let reference = render_to_vec(&mut fresh, &events, &params, 24_000, 512);
    assert!(
        after == reference,
        "after measuring, a render differs from a fresh engine's"
    );
}

/// A steady 440 Hz tone at the model rate (no resampler) without the DC blocker (whose
/// own slow response to a change of the harmonic branch's offset would hide what the test
/// looks for), rendered in host blocks of 4096 with the settings `params(block)` for each
/// block.
fn render_automated(params: impl Fn(usize) -> EngineParams, blocks: usize) -> Vec<f32> {
    const BLOCK: usize = 4096;
    let config = EngineConfig {
        host_sample_rate: 16_000,
        max_block: BLOCK,
        voices: 1,
        dc_blocker: false,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(NewtModel::seeded(11), config).unwrap();
    let tone = Event {
        time: 0,
        kind: EventKind::Controls(FrameControls {
            f0_hz: 440.0,
            loudness_db: -25.0,
        }),
    };
    let mut out = vec![0.0f32; blocks * BLOCK];
    for (b, block) in out.chunks_mut(BLOCK).enumerate() {
        let events = if b == 0 { vec![tone] } else { vec![] };
        engine.process(&events, &params(b), block).unwrap();
    }
    out
}

/// Largest change between neighbouring samples of `out / reference` where the reference
/// is well above zero (at least a fifth of its peak): the gain envelope a setting applied.
fn largest_gain_step(out: &[f32], reference: &[f32], from: usize) -> f32 {
    let peak = reference[from..].iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let ratio: Vec<Option<f32>> = out
        .iter()
        .zip(reference)
        .map(|(o, r)| (r.abs() > 0.2 * peak).then(|| o / r))
        .collect();
    ratio[from..]
        .windows(2)
        .filter_map(|w| Some((w[1]? - w[0]?).abs()))
        .fold(0.0, f32::max)
}

/// A host that moves output gain and the harmonic/noise balance once per block of 4096
/// samples (255 ms): the engine glides, so the gain envelope moves by at most a few
/// thousandths per sample, where stepping would move it by the whole change at once.
#[test]
fn automation_at_blocks_of_4096_has_no_steps() {
    let base = EngineParams {
        drive: Drive::Controls,
        reverb_mix: 0.0,
        ..EngineParams::default()
    };
    let mut harmonic_only = base;
    harmonic_only.voice.noise_gain = 0.0;
    let blocks = 12;
    let from = 4096; // after the onset
    let reference = render_automated(|_| base, blocks);
    let gain = render_automated(
        |b| EngineParams {
            output_gain: if b % 2 == 0 { 1.0 } else { 0.25 },
            ..base
        },
        blocks,
    );
    let gain_step = largest_gain_step(&gain, &reference, from);

    let reference_h = render_automated(|_| harmonic_only, blocks);
    let balance = render_automated(
        |b| {
            let mut p = harmonic_only;
            p.voice.harmonic_gain = if b % 2 == 0 { 1.0 } else { 0.3 };
            p
        },
        blocks,
    );
    let balance_step = largest_gain_step(&balance, &reference_h, from);
    println!(
        "largest step of the envelope: output gain {gain_step:.2e}, harmonic gain {balance_step:.2e}"
    );
    assert!(gain_step < 3e-3, "output gain steps by {gain_step}");
    assert!(balance_step < 1e-2, "harmonic gain steps by {balance_step}");
    // And the settings arrive: the last 1000 samples of a block sit at its value.
    let end = 2 * 4096 - 1000..2 * 4096;
    let level = rms(&gain[end.clone()]) / rms(&reference[end]);
    assert!((level - 0.25).abs() < 0.01, "output gain reached {level}");
}

/// "Keep in range": with the flute (trained from about C#4 to G#6), A2 and A7 are folded
/// by whole octaves into that range and sound as A4 and A5; without it they sound where
/// they are played; a legato move from a folded note to an unfolded one glides.
#[test]
fn keep_in_range_folds_notes_by_octaves_into_the_trained_range() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../assets/models/flute.safetensors");
    let model = NewtModel::load(&path).unwrap();
    let (lo, hi) = model.meta.range_map.pitch_range_midi();
    assert!(!model.meta.range_map.estimated, "the flute carries its map");
    assert!(
        (60.0..63.0).contains(&lo) && (90.0..94.0).contains(&hi),
        "{lo}-{hi}"
    );
    let rate = 48_000;
    let config = EngineConfig {
        host_sample_rate: rate,
        max_block: 4096,
        ..EngineConfig::default()
    };
    let play = |note: u8, keep_in_range: bool| {
        let mut engine = Engine::new(model.clone(), config).unwrap();
        let mut params = EngineParams::default();
        params.notes.keep_in_range = keep_in_range;
        let events = [TimedEvent {
            sample: 0,
            kind: EventKind::NoteOn {
                note,
                velocity: 0.8,
            },
        }];
        let out = render_to_vec(&mut engine, &events, &params, rate as usize, 512);
        fundamental_hz(&out[rate as usize / 2..], rate as f64)
    };
    for (note, kept_hz, played_hz) in [(45u8, 440.0, 110.0), (105, 880.0, 3520.0)] {
        let kept = play(note, true);
        assert!(
            cents(kept, kept_hz).abs() < 20.0,
            "MIDI {note} kept in range sounds {kept:.1} Hz, not {kept_hz}"
        );
        let played = play(note, false);
        assert!(
            cents(played, played_hz).abs() < 20.0,
            "MIDI {note} as played sounds {played:.1} Hz, not {played_hz}"
        );
    }
    // A note inside the range is untouched.
    assert!(cents(play(69, true), 440.0).abs() < 20.0);

    // Legato from A2 (folded to A4) to B4 (inside): one glide from A4 up to B4, never
    // through the octave below.
    let mut engine = Engine::new(model.clone(), config).unwrap();
    let mut params = EngineParams::default();
    params.notes.keep_in_range = true;
    params.notes.glide_s = 0.05;
    let events = [
        TimedEvent {
            sample: 0,
            kind: EventKind::NoteOn {
                note: 45,
                velocity: 0.8,
            },
        },
        TimedEvent {
            sample: 24_000,
            kind: EventKind::NoteOn {
                note: 71,
                velocity: 0.8,
            },
        },
    ];
    let out = render_to_vec(&mut engine, &events, &params, 48_000, 512);
    let window = 2048;
    for start in (24_000..36_000).step_by(1024) {
        let f = fundamental_hz(&out[start..start + window], rate as f64);
        assert!(
            (430.0..500.0).contains(&f),
            "{f:.1} Hz at sample {start}: the legato left the A4-B4 span"
        );
    }
}
