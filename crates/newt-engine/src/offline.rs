//! Offline rendering helpers shared by the renderer, the benches and the tests. These
//! allocate (their names say so); the real-time path is [`Engine::process`].

use crate::controls::FrameControls;
use crate::engine::{Engine, EngineParams, Event, EventKind};

/// An event at an absolute host sample time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimedEvent {
    pub sample: u64,
    pub kind: EventKind,
}

/// Renders `len` host samples in blocks of `block`, delivering each event in the block
/// that contains its time. Returns the raw engine output (it starts with the engine's
/// latency; see [`Engine::latency_samples`]).
pub fn render_to_vec(
    engine: &mut Engine,
    events: &[TimedEvent],
    params: &EngineParams,
    len: usize,
    block: usize,
) -> Vec<f32> {
    let block = block.clamp(1, engine.config().max_block);
    let mut out = vec![0.0f32; len];
    let mut block_events: Vec<Event> = Vec::with_capacity(events.len().min(4096));
    let mut next = 0;
    let mut pos = 0usize;
    while pos < len {
        let n = block.min(len - pos);
        block_events.clear();
        while next < events.len() && events[next].sample < (pos + n) as u64 {
            let t = events[next].sample.saturating_sub(pos as u64) as u32;
            block_events.push(Event {
                time: t,
                kind: events[next].kind,
            });
            next += 1;
        }
        // The block size is clamped to the configured maximum above, so `process` takes
        // it; were it refused, that block would stay silent.
        let _ = engine.process(&block_events, params, &mut out[pos..pos + n]);
        pos += n;
    }
    out
}

/// Renders and drops the engine's latency, so that output sample 0 lines up with host
/// time 0.
pub fn render_aligned_to_vec(
    engine: &mut Engine,
    events: &[TimedEvent],
    params: &EngineParams,
    len: usize,
    block: usize,
) -> Vec<f32> {
    let latency = engine.latency_samples();
    let mut out = render_to_vec(engine, events, params, len + latency, block);
    out.drain(..latency);
    out
}

/// One `Controls` event per model frame, timed so that frame `f`'s controls land exactly
/// on frame `f` whatever the host rate.
pub fn controls_to_events(
    controls: &[FrameControls],
    model_rate: u32,
    hop: usize,
    host_rate: u32,
) -> Vec<TimedEvent> {
    controls
        .iter()
        .enumerate()
        .map(|(f, &c)| TimedEvent {
            // floor(f hop host / model): the frame of this time is exactly f.
            sample: (f as u128 * hop as u128 * host_rate as u128 / model_rate as u128) as u64,
            kind: EventKind::Controls(c),
        })
        .collect()
}

/// Host samples covering `frames` model frames.
pub fn frames_to_host_samples(frames: usize, model_rate: u32, hop: usize, host_rate: u32) -> usize {
    (frames as u128 * hop as u128 * host_rate as u128).div_ceil(model_rate as u128) as usize
}

/// Renders per-frame controls through `engine` (whose `params.drive` should be
/// `Drive::Controls`), latency removed: the host samples covering `controls.len()` frames.
pub fn render_controls_to_vec(
    engine: &mut Engine,
    controls: &[FrameControls],
    params: &EngineParams,
    block: usize,
) -> Vec<f32> {
    let (rate, hop) = (engine.model().meta.sample_rate, engine.model().meta.hop);
    let host = engine.config().host_sample_rate;
    let events = controls_to_events(controls, rate, hop, host);
    let len = frames_to_host_samples(controls.len(), rate, hop, host);
    render_aligned_to_vec(engine, &events, params, len, block)
}

/// Level of a model's reference note, in dBFS RMS: the key nearest the model's mean
/// training pitch, velocity 0.8, default parameters, measured from 0.3 s to 0.6 s after
/// the note-on. Models trained on quiet recordings play quietly; a host trims each model
/// by its reference level so that all play at a common level. Renders offline (call it
/// off the audio thread) and leaves the engine reset.
pub fn reference_level_db(engine: &mut Engine) -> f32 {
    let meta = &engine.model().meta;
    let key = (69.0 + 12.0 * (meta.f0_mean_hz.max(20.0) / 440.0).log2())
        .round()
        .clamp(21.0, 108.0) as u8;
    let rate = engine.config().host_sample_rate as usize;
    let on = TimedEvent {
        sample: 0,
        kind: EventKind::NoteOn {
            note: key,
            velocity: 0.8,
        },
    };
    engine.reset();
    let out = render_to_vec(engine, &[on], &EngineParams::default(), 6 * rate / 10, 512);
    engine.reset();
    let tail = &out[3 * rate / 10..];
    let power = tail.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / tail.len().max(1) as f64;
    (10.0 * power.max(1e-20).log10()) as f32
}
