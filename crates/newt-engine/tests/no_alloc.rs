//! `Engine::process` never allocates: every call runs under `assert_no_alloc`, whose
//! global allocator aborts the test process on any allocation or deallocation while the
//! guard is held (active in builds with debug assertions, as the test profile has).

mod support;

use assert_no_alloc::{AllocDisabler, assert_no_alloc};
use newt_engine::{
    Drive, Engine, EngineConfig, EngineParams, Event, EventKind, FrameControls, ShaperPath,
    VoiceMode,
};
use newt_model::NewtModel;

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

fn play(rate: u32, mode: VoiceMode, drive: Drive, shaper: ShaperPath) {
    play_model(NewtModel::seeded(8), rate, mode, drive, shaper);
}

fn play_model(model: NewtModel, rate: u32, mode: VoiceMode, drive: Drive, shaper: ShaperPath) {
    let config = EngineConfig {
        host_sample_rate: rate,
        max_block: 1024,
        voices: 16,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(model, config).unwrap();
    let mut params = EngineParams {
        mode,
        drive,
        ..EngineParams::default()
    };
    params.voice.shaper = shaper;
    let mut out = vec![0.0f32; 1024];
    let mut events: Vec<Event> = Vec::with_capacity(64);
    let mut note = 48u8;
    // Odd block sizes, notes on and off (stealing voices), controllers and direct controls.
    for (i, block) in [1usize, 7, 64, 333, 1024, 512, 96]
        .iter()
        .cycle()
        .take(400)
        .enumerate()
    {
        events.clear();
        if i % 3 == 0 {
            events.push(Event {
                time: 0,
                kind: EventKind::NoteOn {
                    note,
                    velocity: 0.7,
                },
            });
            note = if note > 90 { 48 } else { note + 5 };
        }
        if i % 5 == 0 {
            events.push(Event {
                time: 0,
                kind: EventKind::NoteOff {
                    note: note.wrapping_sub(10),
                },
            });
        }
        events.push(Event {
            time: (*block as u32 - 1) / 2,
            kind: EventKind::PitchBend((i as f32).sin()),
        });
        events.push(Event {
            time: (*block as u32 - 1) / 2,
            kind: EventKind::Controls(FrameControls {
                f0_hz: 200.0 + i as f32,
                loudness_db: -30.0,
            }),
        });
        if i % 7 == 0 {
            events.push(Event {
                time: 0,
                kind: EventKind::Sustain(i % 14 == 0),
            });
        }
        if i == 300 {
            events.push(Event {
                time: 0,
                kind: EventKind::AllNotesOff,
            });
        }
        events.sort_by_key(|e| e.time);
        let buf = &mut out[..*block];
        assert_no_alloc(|| engine.process(&events, &params, buf).unwrap());
        assert!(buf.iter().all(|x| x.is_finite()));
    }
}

#[test]
fn process_never_allocates() {
    for rate in [44_100, 48_000, 16_000, 192_000, 47_999] {
        play(rate, VoiceMode::Poly, Drive::Notes, ShaperPath::Table);
    }
    play(48_000, VoiceMode::MonoLegato, Drive::Notes, ShaperPath::Mlp);
    play(
        22_050,
        VoiceMode::MonoLegato,
        Drive::Controls,
        ShaperPath::Table,
    );
    // The authors' operators (centred ramps, their noise operator).
    let nws = support::seeded_nws(8);
    play_model(
        nws.clone(),
        44_100,
        VoiceMode::Poly,
        Drive::Notes,
        ShaperPath::Table,
    );
    play_model(
        nws,
        48_000,
        VoiceMode::MonoLegato,
        Drive::Controls,
        ShaperPath::Mlp,
    );
}

#[test]
fn the_guard_is_armed() {
    // If the allocator were not installed or the guard disabled, this would not abort;
    // a child process proves that it does.
    if std::env::var("NEWT_ALLOC_CHILD").is_ok() {
        assert_no_alloc(|| {
            let v = vec![1u8; 100];
            std::hint::black_box(v);
        });
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let status = std::process::Command::new(exe)
        .args(["the_guard_is_armed", "--exact", "--nocapture"])
        .env("NEWT_ALLOC_CHILD", "1")
        .output()
        .unwrap();
    assert!(
        !status.status.success(),
        "allocating under the guard did not abort"
    );
}
