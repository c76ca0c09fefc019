//! Criterion benches of the engine: one second of audio per iteration, fixed seed, block
//! size and voice count in each name.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use newt_engine::{
    Drive, Engine, EngineConfig, EngineParams, EventKind, FrameControls, ShaperPath, TimedEvent,
    VoiceMode, controls_to_events, render_to_vec,
};
use newt_model::NewtModel;

fn glide(frames: usize) -> Vec<FrameControls> {
    (0..frames)
        .map(|f| FrameControls {
            f0_hz: 220.0 * (1.0 + (f as f32 * 0.01).sin().abs()),
            loudness_db: -30.0,
        })
        .collect()
}

fn single_voice(c: &mut Criterion, name: &str, shaper: ShaperPath) {
    let model = NewtModel::seeded(1);
    let controls = glide(125);
    let events = controls_to_events(&controls, 16_000, 128, 16_000);
    let mut params = EngineParams {
        drive: Drive::Controls,
        ..EngineParams::default()
    };
    params.voice.shaper = shaper;
    let config = EngineConfig {
        host_sample_rate: 16_000,
        max_block: 512,
        voices: 1,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(model, config).unwrap();
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(16_000));
    group.sample_size(20);
    group.bench_function(name, |b| {
        b.iter(|| {
            engine.reset();
            render_to_vec(&mut engine, &events, &params, 16_000, 512)
        })
    });
    group.finish();
}

fn fastnewt(c: &mut Criterion) {
    single_voice(c, "fastnewt_1voice_16k_block512_1s", ShaperPath::Table);
}

fn mlp(c: &mut Criterion) {
    single_voice(c, "mlp_1voice_16k_block512_1s", ShaperPath::Mlp);
}

fn poly16(c: &mut Criterion) {
    let config = EngineConfig {
        host_sample_rate: 48_000,
        max_block: 512,
        voices: 16,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(NewtModel::seeded(1), config).unwrap();
    let params = EngineParams {
        mode: VoiceMode::Poly,
        ..EngineParams::default()
    };
    let events: Vec<TimedEvent> = (0..16u8)
        .map(|v| TimedEvent {
            sample: 0,
            kind: EventKind::NoteOn {
                note: 55 + v * 2,
                velocity: 0.7,
            },
        })
        .collect();
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(48_000));
    group.sample_size(10);
    group.bench_function("poly16_48k_block512_1s", |b| {
        b.iter(|| {
            engine.reset();
            render_to_vec(&mut engine, &events, &params, 48_000, 512)
        })
    });
    group.finish();
}

criterion_group!(benches, fastnewt, mlp, poly16);
criterion_main!(benches);
