//! The host-facing engine: events in, host-rate audio out.
//!
//! Everything runs in fixed model-rate frames (`hop` samples). Events are stamped with
//! their host sample time and applied at the first frame boundary at or after it, plus a
//! fixed latency of `latency_frames`. That latency covers the resampler's chunking, so the
//! engine never has to render a frame before all the events that affect it have arrived:
//! the output is the same for every host block size, sample for sample.

use std::collections::VecDeque;

use newt_model::NewtModel;

use crate::allocator::{Assignment, VoiceAllocator, VoiceMode};
use crate::controls::{FrameControls, finite_or};
use crate::driver::{ChannelState, NoteDriver, NoteParams};
use crate::error::{EngineError, ProcessError};
use crate::rate::{RateConverter, SampleFifo};
use crate::reverb::ReverbConvolver;
use crate::shaper::TableSpec;
use crate::voice::{MAX_BATCH, PreparedModel, Voice, VoiceNetBatch, VoiceParams};

/// Host sample rates the engine accepts, in Hz (and the model's own rate).
pub const HOST_RATES: std::ops::RangeInclusive<u32> = 1_000..=768_000;
/// Absolute bound on the output, a safety net far above any sane level (+12 dBFS).
pub const OUTPUT_LIMIT: f32 = 4.0;
/// Largest linear output gain accepted (+60 dB): hosts fold a model's level trim (up to
/// +40 dB for models trained on quiet recordings) and the player's gain (up to +12 dB)
/// into it. The output itself stays bounded by [`OUTPUT_LIMIT`].
pub const MAX_OUTPUT_GAIN: f32 = 1000.0;
/// Bound on the sum of the voices before the reverb (+24 dBFS).
const VOICE_SUM_LIMIT: f32 = 16.0;
/// Capacity of the event queue. Controller and control events are dropped (and counted)
/// once half of it is used; note events keep the other half, so a flood of controllers
/// can never cause a stuck note.
pub const EVENT_CAPACITY: usize = 2048;

/// Fixed at construction: everything that sizes an allocation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EngineConfig {
    pub host_sample_rate: u32,
    /// Largest host block `process` will be given.
    pub max_block: usize,
    /// Size of the voice pool.
    pub voices: usize,
    pub table: TableSpec,
    /// Seed of the voices' noise generators (voice `v` uses `seed + v`).
    pub noise_seed: u64,
    /// Remove DC from the output (a 5 Hz one-pole high-pass after the reverb). Off only
    /// to compare with the training forward pass, which has no such filter.
    pub dc_blocker: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            host_sample_rate: 48_000,
            max_block: 4096,
            voices: 16,
            table: TableSpec::default(),
            noise_seed: 0,
            dc_blocker: true,
        }
    }
}

/// What drives the voices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Drive {
    /// Note events through the voice allocator and note drivers.
    #[default]
    Notes,
    /// `EventKind::Controls` events drive voice 0 directly (control files, audio input).
    Controls,
}

/// Settings read once per block (the plugin passes its smoothed parameters here).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EngineParams {
    pub voice: VoiceParams,
    pub notes: NoteParams,
    pub mode: VoiceMode,
    pub drive: Drive,
    /// Gain of the learned reverb's tail, after its first 8 ms (1 = the model as
    /// trained; the early part, where trained responses equalise, always plays).
    pub reverb_mix: f32,
    /// Linear output gain.
    pub output_gain: f32,
}

impl Default for EngineParams {
    fn default() -> Self {
        Self {
            voice: VoiceParams::default(),
            notes: NoteParams::default(),
            mode: VoiceMode::MonoLegato,
            drive: Drive::Notes,
            reverb_mix: 1.0,
            output_gain: 1.0,
        }
    }
}

impl EngineParams {
    /// Non-finite values replaced by defaults and ranges clamped; `process` applies this to
    /// every parameter snapshot it receives.
    pub fn sanitized(&self) -> Self {
        let d = Self::default();
        let v = &self.voice;
        Self {
            voice: VoiceParams {
                shaper: v.shaper,
                shaper_in_gain: finite_or(v.shaper_in_gain, 1.0, -100.0, 100.0),
                shaper_in_offset: finite_or(v.shaper_in_offset, 0.0, -100.0, 100.0),
                shaper_out_gain: finite_or(v.shaper_out_gain, 1.0, -100.0, 100.0),
                harmonic_gain: finite_or(v.harmonic_gain, 1.0, 0.0, 16.0),
                noise_gain: finite_or(v.noise_gain, 1.0, 0.0, 16.0),
            },
            notes: self.notes.sanitized(),
            mode: self.mode,
            drive: self.drive,
            reverb_mix: finite_or(self.reverb_mix, d.reverb_mix, 0.0, 4.0),
            output_gain: finite_or(self.output_gain, d.output_gain, 0.0, MAX_OUTPUT_GAIN),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EventKind {
    /// Velocity in [0, 1]; 0 means note off.
    NoteOn {
        note: u8,
        velocity: f32,
    },
    NoteOff {
        note: u8,
    },
    /// Pitch bend in [-1, 1].
    PitchBend(f32),
    /// Mod wheel in [0, 1] (adds vibrato depth).
    ModWheel(f32),
    /// Expression or channel pressure in [0, 1].
    Expression(f32),
    /// Sustain pedal (CC64) down or up.
    Sustain(bool),
    /// Direct controls for [`Drive::Controls`].
    Controls(FrameControls),
    AllNotesOff,
}

/// An event at a sample offset within the current host block.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Event {
    pub time: u32,
    pub kind: EventKind,
}

pub struct Engine {
    config: EngineConfig,
    model: Box<PreparedModel>,
    voices: Vec<Voice>,
    /// The voices' frame networks, run together for each batch.
    net_batch: VoiceNetBatch,
    /// Where the continuous settings are on their way to the host's values.
    glide: ParamGlide,
    /// Frame (within the batch) at which each voice's first run starts, `None` if silent.
    first_run_start: Vec<Option<usize>>,
    drivers: Vec<NoteDriver>,
    allocator: VoiceAllocator,
    mode: VoiceMode,
    drive: Drive,
    channel: ChannelState,
    direct: FrameControls,
    reverb: ReverbConvolver,
    rate: RateConverter,
    fifo: SampleFifo,
    queue: VecDeque<(u64, EventKind)>,
    dropped_events: u64,
    host_pos: u64,
    frame: u64,
    latency_frames: u64,
    /// Controls of each voice for each frame of the batch `[voices][MAX_BATCH]`, `None`
    /// where the voice is silent.
    batch_controls: Vec<Option<FrameControls>>,
    /// Frames (within the batch) at which a voice's release ends `[voices][MAX_BATCH]`.
    batch_finished: Vec<bool>,
    /// Model-rate mix of all voices for the batch `[MAX_BATCH * hop]`.
    mix: Vec<f32>,
    voice_out: Vec<f32>,
    wet: Vec<f32>,
    fade: Vec<f32>,
    dc: DcBlocker,
    /// The last voice rendered in the last batch and its last frame's controls.
    live: Option<(usize, FrameControls)>,
}

/// A sounding voice as an editor shows it.
#[derive(Clone, Copy, Debug)]
pub struct LiveVoice<'a> {
    pub controls: FrameControls,
    /// Range `[lo, hi]` of each shaper's input over the voice's last frame.
    pub shaper_input_range: &'a [[f32; 2]],
}

/// Frames by which events must be delayed so that no frame is rendered before every
/// event that affects it has arrived. `process` renders, for a block ending at host
/// sample `t`, the frames that feed `ceil(t / chunk_out)` resampler chunks; an event at
/// `t` or later falls on frame `ceil(t chunk_in / (chunk_out hop))` or later. The answer
/// is the largest gap between the two over one period of `t`.
fn scheduling_latency_frames(chunk_in: usize, chunk_out: usize, hop: usize) -> u64 {
    let period = chunk_out * hop;
    (1..=period)
        .map(|t| {
            let rendered = (t.div_ceil(chunk_out) * chunk_in).div_ceil(hop);
            let first_unknown = (t * chunk_in).div_ceil(chunk_out * hop);
            rendered.saturating_sub(first_unknown) as u64
        })
        .max()
        .unwrap_or(0)
}

/// One-pole DC blocker at the model rate (-3 dB at about 5 Hz): no DC reaches the host.
#[derive(Clone, Copy, Debug)]
struct DcBlocker {
    r: f32,
    x1: f32,
    y1: f32,
}

impl DcBlocker {
    fn new(sample_rate: u32) -> Self {
        Self {
            r: 1.0 - std::f32::consts::TAU * 5.0 / sample_rate as f32,
            x1: 0.0,
            y1: 0.0,
        }
    }

    #[inline]
    fn process(&mut self, x: f32) -> f32 {
        let y = x - self.x1 + self.r * self.y1;
        self.x1 = x;
        self.y1 = y;
        y
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .field("model", &self.model.meta.instrument)
            .field("frame", &self.frame)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Prepares `model` and allocates everything for `config`. Not real-time safe.
    pub fn new(model: NewtModel, config: EngineConfig) -> Result<Self, EngineError> {
        Self::with_prepared(Box::new(PreparedModel::new(model, config.table)?), config)
    }

    pub fn with_prepared(
        model: Box<PreparedModel>,
        config: EngineConfig,
    ) -> Result<Self, EngineError> {
        if !HOST_RATES.contains(&config.host_sample_rate)
            && config.host_sample_rate != model.meta.sample_rate
        {
            return Err(EngineError::UnsupportedSampleRate(config.host_sample_rate));
        }
        if config.max_block == 0 {
            return Err(EngineError::ZeroBlock);
        }
        let meta = &model.meta;
        let hop = meta.hop;
        let rate = RateConverter::new(meta.sample_rate, config.host_sample_rate, hop)?;
        let latency_frames = if rate.is_exact() {
            scheduling_latency_frames(rate.chunk_in(), rate.chunk_out(), hop)
        } else {
            // Variable output per chunk: frames are rendered one at a time, at most one
            // chunk ahead of the block's end.
            let host_per_frame =
                hop as f64 * config.host_sample_rate as f64 / meta.sample_rate as f64;
            (rate.chunk_out() as f64 / host_per_frame).ceil() as u64 + 1
        };
        let fifo = SampleFifo::new(config.max_block + 2 * rate.max_output_per_push(hop) + 16);
        let voices = (0..config.voices.max(1))
            .map(|v| Voice::new(&model, config.noise_seed.wrapping_add(v as u64)))
            .collect();
        Ok(Self {
            glide: ParamGlide::new(meta.hop, meta.sample_rate),
            net_batch: VoiceNetBatch::new(&model, config.voices.max(1)),
            first_run_start: vec![None; config.voices.max(1)],
            config,
            voices,
            drivers: vec![NoteDriver::default(); config.voices.max(1)],
            allocator: VoiceAllocator::new(config.voices.max(1)),
            mode: VoiceMode::default(),
            drive: Drive::default(),
            channel: ChannelState::default(),
            direct: FrameControls::SILENT,
            reverb: ReverbConvolver::new(&model.reverb_ir, hop),
            rate,
            fifo,
            queue: VecDeque::with_capacity(EVENT_CAPACITY),
            dropped_events: 0,
            host_pos: 0,
            frame: 0,
            latency_frames,
            batch_controls: vec![None; config.voices.max(1) * MAX_BATCH],
            batch_finished: vec![false; config.voices.max(1) * MAX_BATCH],
            mix: vec![0.0; MAX_BATCH * hop],
            voice_out: vec![0.0; MAX_BATCH * hop],
            wet: vec![0.0; hop],
            fade: (0..hop)
                .map(|i| 1.0 - (i + 1) as f32 / hop as f32)
                .collect(),
            dc: DcBlocker::new(meta.sample_rate),
            live: None,
            model,
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn model(&self) -> &PreparedModel {
        &self.model
    }

    /// Total latency from an event (or control) to its effect at the output, in host
    /// samples: the scheduling latency plus the resampler's delay.
    pub fn latency_samples(&self) -> usize {
        let m = &self.model.meta;
        let per_frame = m.hop as f64 * self.config.host_sample_rate as f64 / m.sample_rate as f64;
        (self.latency_frames as f64 * per_frame).round() as usize + self.rate.delay()
    }

    /// Events dropped because the queue was full.
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }

    /// The voice rendered last (of the most recent batch), if any is sounding.
    pub fn live_voice(&self) -> Option<LiveVoice<'_>> {
        self.live.map(|(v, controls)| LiveVoice {
            controls,
            shaper_input_range: self.voices[v].shaper_input_range(),
        })
    }

    /// Number of voices currently sounding.
    pub fn active_voices(&self) -> usize {
        self.drivers.iter().filter(|d| !d.is_idle()).count()
    }

    /// Renders `out.len()` host-rate samples. Real-time safe: no allocation, lock or I/O.
    /// `events` must be sorted by time, with times inside the block.
    pub fn process(
        &mut self,
        events: &[Event],
        params: &EngineParams,
        out: &mut [f32],
    ) -> Result<(), ProcessError> {
        if out.len() > self.config.max_block {
            return Err(ProcessError::BlockTooLarge {
                max: self.config.max_block,
                actual: out.len(),
            });
        }
        let params = &params.sanitized();
        for e in events {
            let t = self.host_pos + (e.time as u64).min(out.len().saturating_sub(1) as u64);
            let frame = self.frame_of_host_time(t) + self.latency_frames;
            let is_note = matches!(
                e.kind,
                EventKind::NoteOn { .. }
                    | EventKind::NoteOff { .. }
                    | EventKind::AllNotesOff
                    | EventKind::Sustain(_)
            );
            let room = if is_note {
                EVENT_CAPACITY
            } else {
                EVENT_CAPACITY / 2
            };
            if self.queue.len() < room {
                self.queue.push_back((frame, e.kind));
            } else {
                self.dropped_events += 1;
            }
        }
        let hop = self.model.meta.hop;
        while self.fifo.len() < out.len() {
            let needed = self.rate.frames_needed(out.len() - self.fifo.len(), hop);
            self.render_batch(params, needed.clamp(1, MAX_BATCH));
        }
        self.fifo.pop_into(out);
        // The resampler's filters can leave subnormal numbers in a decaying tail, which
        // slow down a host's own processing: flushed to zero.
        for x in out.iter_mut() {
            if x.abs() < f32::MIN_POSITIVE {
                *x = 0.0;
            }
        }
        self.host_pos += out.len() as u64;
        Ok(())
    }

    /// Silences everything and clears all state (tails, queue, phases).
    pub fn reset(&mut self) {
        self.glide.current = None;
        self.voices.iter_mut().for_each(Voice::reset);
        self.drivers.iter_mut().for_each(NoteDriver::stop);
        self.allocator.clear();
        self.reverb.reset();
        self.rate.reset();
        self.dc = DcBlocker::new(self.model.meta.sample_rate);
        self.fifo.clear();
        self.queue.clear();
        self.channel = ChannelState::default();
        self.direct = FrameControls::SILENT;
        self.live = None;
        self.host_pos = 0;
        self.frame = 0;
    }

    /// Takes over the performance of `previous`, an engine of the same configuration
    /// (usually the one playing the model this one replaces): its notes with their
    /// envelopes, glides and vibrato, the controller and direct-control state, and each
    /// voice's oscillator phase, moved onto this engine's frame grid so that the two
    /// play in phase through a cross-fade. The model's own state (GRU, FiLM, noise,
    /// reverb tail) starts fresh. Call right after [`reset`](Self::reset), at the same
    /// host position as `previous`; allocation-free.
    pub fn continue_performance(&mut self, previous: &Engine) {
        if previous.voices.len() != self.voices.len() {
            return;
        }
        self.drivers.clone_from_slice(&previous.drivers);
        self.allocator.copy_from(&previous.allocator);
        self.channel = previous.channel;
        self.direct = previous.direct;
        self.mode = previous.mode;
        self.drive = previous.drive;
        // `previous` has rendered frames ahead of the host: its phases are those of the
        // end of frame `previous.frame`, `ahead` model samples after the host position
        // where this engine's frame 0 starts.
        let m = &previous.model.meta;
        let ahead = previous.frame as f64 * m.hop as f64
            - previous.host_pos as f64 * m.sample_rate as f64
                / previous.config.host_sample_rate as f64;
        for (voice, old) in self.voices.iter_mut().zip(&previous.voices) {
            let f0 = old.last_f0_hz() as f64;
            voice.set_phase(old.phase() - f0 * ahead / m.sample_rate as f64);
        }
    }

    /// Every sounding voice to its release; tails ring out.
    fn release_all(&mut self) {
        self.allocator.release_all();
        self.drivers.iter_mut().for_each(NoteDriver::release);
    }

    /// First frame whose start is at or after host sample `t`.
    fn frame_of_host_time(&self, t: u64) -> u64 {
        let m = &self.model.meta;
        let num = t as u128 * m.sample_rate as u128;
        let den = self.config.host_sample_rate as u128 * m.hop as u128;
        num.div_ceil(den) as u64
    }

    fn apply(&mut self, kind: EventKind, params: &EngineParams) {
        let mode = params.mode;
        let notes_drive = params.drive == Drive::Notes;
        let assignment = match kind {
            // Direct controls own the voice: note events are ignored.
            EventKind::NoteOn { .. } | EventKind::NoteOff { .. } | EventKind::Sustain(_)
                if !notes_drive =>
            {
                Assignment::Nothing
            }
            EventKind::NoteOn { note, velocity } if velocity > 0.0 => {
                let a = self.allocator.note_on(mode, note);
                if let Assignment::Start { voice, note } = a {
                    self.drivers[voice].start(note, velocity);
                }
                a
            }
            EventKind::NoteOn { note, .. } | EventKind::NoteOff { note } => {
                self.allocator.note_off(mode, note)
            }
            EventKind::PitchBend(b) => {
                self.channel.bend = finite_or(b, 0.0, -1.0, 1.0);
                Assignment::Nothing
            }
            EventKind::ModWheel(m) => {
                self.channel.mod_wheel = finite_or(m, 0.0, 0.0, 1.0);
                Assignment::Nothing
            }
            EventKind::Expression(x) => {
                self.channel.expression = finite_or(x, 1.0, 0.0, 1.0);
                Assignment::Nothing
            }
            EventKind::Controls(c) => {
                self.direct = c;
                Assignment::Nothing
            }
            EventKind::Sustain(down) => {
                let drivers = &mut self.drivers;
                self.allocator.sustain(down, |v| drivers[v].release());
                Assignment::Nothing
            }
            EventKind::AllNotesOff => {
                self.release_all();
                Assignment::Nothing
            }
        };
        match assignment {
            Assignment::Legato { voice, note } => self.drivers[voice].legato(note),
            Assignment::Release { voice } => self.drivers[voice].release(),
            Assignment::Start { .. } | Assignment::Nothing => {}
        }
    }

    /// Renders `n` model-rate frames of all voices, the reverb, and hands them to the
    /// resampler: controls first (events, note drivers), then each voice's frames in one
    /// batch, then the shared output chain frame by frame.
    fn render_batch(&mut self, params: &EngineParams, n: usize) {
        // The continuous settings glide from where the last batch left them towards
        // `params` (`ParamGlide`); everything else applies at once.
        let start = self.glide.current.unwrap_or(*params);
        let end = self.glide.advance(&start, params, n);
        let ramp = ParamRamp {
            start: start_with(params, &start),
            end,
            frames: n,
        };
        self.gather_controls(params, n);
        self.render_voices(&ramp, n);
        self.output_chain(&ramp, n);
        self.frame += n as u64;
    }

    /// Stage 1, controls: for each frame of the batch, the events due by then applied,
    /// then every voice's controls for it (`None` where the voice is silent) into
    /// `batch_controls`, and where a release ends into `batch_finished`.
    fn gather_controls(&mut self, params: &EngineParams, n: usize) {
        for j in 0..n {
            self.follow_mode_and_drive(params);
            self.apply_due_events(self.frame + j as u64, params);
            for v in 0..self.voices.len() {
                let slot = v * MAX_BATCH + j;
                let (controls, finished) = self.next_voice_controls(v, params);
                self.batch_controls[slot] = controls;
                self.batch_finished[slot] = finished;
            }
        }
    }

    /// A change of voice mode or drive releases every voice first.
    fn follow_mode_and_drive(&mut self, params: &EngineParams) {
        if params.mode != self.mode || params.drive != self.drive {
            self.release_all();
            self.mode = params.mode;
            self.drive = params.drive;
        }
    }

    /// Applies the queued events that fall on or before `frame`.
    fn apply_due_events(&mut self, frame: u64, params: &EngineParams) {
        while let Some(&(at, kind)) = self.queue.front() {
            if at > frame {
                break;
            }
            self.queue.pop_front();
            self.apply(kind, params);
        }
    }

    /// Voice `v`'s controls for the next frame (`None` if it is silent), and whether its
    /// release ends with that frame (its driver then stops and the allocator frees it).
    fn next_voice_controls(
        &mut self,
        v: usize,
        params: &EngineParams,
    ) -> (Option<FrameControls>, bool) {
        match params.drive {
            Drive::Controls => ((v == 0).then_some(self.direct), false),
            Drive::Notes if self.drivers[v].is_idle() => (None, false),
            Drive::Notes => {
                let meta = &self.model.meta;
                let dt = meta.hop as f32 / meta.sample_rate as f32;
                let c = self.drivers[v].next_frame(&params.notes, &self.channel, meta, dt);
                let finished = self.drivers[v].is_finished();
                if finished {
                    self.drivers[v].stop();
                    self.allocator.voice_finished(v);
                }
                (Some(c), finished)
            }
        }
    }

    /// Stage 2, voices: each voice renders its runs of consecutive sounding frames, each
    /// run in one batch, summed into `mix`.
    fn render_voices(&mut self, params: &ParamRamp, n: usize) {
        let hop = self.model.meta.hop;
        self.mix[..n * hop].fill(0.0);
        self.live = None;
        // The networks of each voice's first run, all voices together.
        for v in 0..self.voices.len() {
            self.first_run_start[v] = None;
            if let Some((start, end, _)) = self.next_sounding_run(v, 0, n) {
                let controls = self.run_controls(v, start..end);
                self.voices[v].prepare(&controls[..end - start]);
                self.first_run_start[v] = Some(start);
            }
        }
        self.net_batch
            .run(&self.model, &mut self.voices, &self.first_run_start, n);
        // Only the last voice rendered (the one `live_voice` shows) measures its shaper
        // input ranges.
        let shown = self.first_run_start.iter().rposition(Option::is_some);
        for (v, voice) in self.voices.iter_mut().enumerate() {
            voice.measure_input_range(Some(v) == shown);
        }
        for v in 0..self.voices.len() {
            let mut j = 0;
            while let Some((start, end, finished)) = self.next_sounding_run(v, j, n) {
                let prepared = self.first_run_start[v] == Some(start);
                self.render_voice_run(v, start..end, finished, prepared, params);
                j = end;
            }
        }
    }

    /// The controls of voice `v` over the frames `frames` of the batch (all sounding).
    fn run_controls(&self, v: usize, frames: std::ops::Range<usize>) -> [FrameControls; MAX_BATCH] {
        let mut controls = [FrameControls::SILENT; MAX_BATCH];
        let slots = self
            .batch_controls
            .get(v * MAX_BATCH + frames.start..v * MAX_BATCH + frames.end)
            .unwrap_or_default();
        for (c, slot) in controls.iter_mut().zip(slots) {
            *c = slot.unwrap_or(FrameControls::SILENT);
        }
        controls
    }

    /// The next run of frames `[start, end)` at or after frame `from` (of `n`) in which
    /// voice `v` sounds, and whether its release ends with the run's last frame.
    fn next_sounding_run(&self, v: usize, from: usize, n: usize) -> Option<(usize, usize, bool)> {
        let slots = &self.batch_controls[v * MAX_BATCH..v * MAX_BATCH + n];
        let start = from + slots[from..].iter().position(Option::is_some)?;
        let mut end = start;
        while end < n && slots[end].is_some() {
            end += 1;
            if self.batch_finished[v * MAX_BATCH + end - 1] {
                return Some((start, end, true));
            }
        }
        Some((start, end, false))
    }

    /// Voice `v` renders the batch's `frames` (all sounding) and adds them to `mix`, its
    /// networks already run if `prepared` (`render_voices`); a voice whose release ends is
    /// faded over its last frame and reset, and one whose output is not finite (it cannot
    /// be, with validated weights) silenced and reset.
    fn render_voice_run(
        &mut self,
        v: usize,
        frames: std::ops::Range<usize>,
        finished: bool,
        prepared: bool,
        params: &ParamRamp,
    ) {
        let hop = self.model.meta.hop;
        let len = frames.len();
        let controls = self.run_controls(v, frames.clone());
        let out = &mut self.voice_out[..len * hop];
        out.fill(0.0);
        let (from, to) = (params.at(frames.start).voice, params.at(frames.end).voice);
        let voice = &mut self.voices[v];
        if !prepared {
            voice.prepare(&controls[..len]);
            voice.run_own_networks(&self.model);
        }
        voice.render_prepared(&self.model, &from, &to, out);
        self.live = Some((v, controls[len - 1]));
        if out.iter().any(|x| !x.is_finite()) {
            // Cannot happen with validated weights and sanitised controls; if it ever
            // does, the voice's state is poisoned: silence it, start afresh.
            out.fill(0.0);
            self.voices[v].reset();
        }
        if finished {
            for (x, g) in out[(len - 1) * hop..].iter_mut().zip(&self.fade) {
                *x *= g;
            }
            self.voices[v].reset();
        }
        for (m, x) in self.mix[frames.start * hop..frames.end * hop]
            .iter_mut()
            .zip(out.iter())
        {
            *m += x;
        }
    }

    /// Stage 3, the shared output chain, frame by frame: the voice sum bounded, the
    /// reverb, the DC blocker, the output gain and limit, then the resampler.
    fn output_chain(&mut self, params: &ParamRamp, n: usize) {
        let hop = self.model.meta.hop;
        for j in 0..n {
            let (from, to) = (params.at(j), params.at(j + 1));
            // The tail gain per frame, the output gain per sample.
            let wet_gain = to.reverb_mix;
            let (gain, gain_step) = (
                from.output_gain,
                (to.output_gain - from.output_gain) / hop as f32,
            );
            let frame = &mut self.mix[j * hop..(j + 1) * hop];
            // Bounded input keeps the reverb's and the DC blocker's state finite.
            for m in frame.iter_mut() {
                *m = if m.is_finite() {
                    m.clamp(-VOICE_SUM_LIMIT, VOICE_SUM_LIMIT)
                } else {
                    0.0
                };
            }
            self.wet.fill(0.0);
            self.reverb
                .process_with_tail_gain(frame, &mut self.wet, wet_gain);
            for (i, (m, w)) in frame.iter_mut().zip(&self.wet).enumerate() {
                let dry_wet = *m + w;
                let gain = if gain_step == 0.0 {
                    gain
                } else {
                    gain + gain_step * (i + 1) as f32
                };
                let y = gain
                    * if self.config.dc_blocker {
                        self.dc.process(dry_wet)
                    } else {
                        dry_wet
                    };
                *m = if y.is_finite() {
                    y.clamp(-OUTPUT_LIMIT, OUTPUT_LIMIT)
                } else {
                    0.0
                };
            }
            self.rate.push(frame, &mut self.fifo);
        }
    }
}

/// Time constant of the settings' glide, in seconds: a step in a gain or knob from the host
/// becomes an exponential approach, about 95% there after 60 ms.
const PARAM_GLIDE_S: f64 = 0.02;

/// The continuous settings (output gain, reverb mix, branch gains, shaper knobs) glide
/// towards the host's values frame by frame, the same for any host block size: a host
/// that changes a parameter once a block of 4096 samples gets a smooth curve, not steps.
/// Within a batch they move linearly, sample by sample where a gain is applied. Once a
/// setting is within 1e-6 of its target it is the target, so that constant settings
/// render bit for bit as if there were no glide; with changing settings the output
/// depends on where the host's blocks put each change (the engine sees one value a
/// block), so bit-identity across block sizes holds for constant parameters.
#[derive(Clone, Copy, Debug)]
struct ParamGlide {
    /// Settings at the end of the last batch; `None` before the first (and after a reset),
    /// when the host's values apply at once.
    current: Option<EngineParams>,
    /// Per frame, the share of the distance to the target that remains.
    keep_per_frame: f64,
}

impl ParamGlide {
    fn new(hop: usize, model_rate: u32) -> Self {
        Self {
            current: None,
            keep_per_frame: (-(hop as f64) / (PARAM_GLIDE_S * model_rate as f64)).exp(),
        }
    }

    /// The settings `frames` frames on from `start` towards `target`, remembered as the
    /// new current ones.
    fn advance(
        &mut self,
        start: &EngineParams,
        target: &EngineParams,
        frames: usize,
    ) -> EngineParams {
        let keep = self.keep_per_frame.powi(frames as i32) as f32;
        let step = |from: f32, to: f32| {
            let v = to + (from - to) * keep;
            if (v - to).abs() <= 1e-6 * to.abs().max(1.0) {
                to
            } else {
                v
            }
        };
        let (sv, tv) = (&start.voice, &target.voice);
        let end = EngineParams {
            voice: VoiceParams {
                shaper_in_gain: step(sv.shaper_in_gain, tv.shaper_in_gain),
                shaper_in_offset: step(sv.shaper_in_offset, tv.shaper_in_offset),
                shaper_out_gain: step(sv.shaper_out_gain, tv.shaper_out_gain),
                harmonic_gain: step(sv.harmonic_gain, tv.harmonic_gain),
                noise_gain: step(sv.noise_gain, tv.noise_gain),
                ..target.voice
            },
            reverb_mix: step(start.reverb_mix, target.reverb_mix),
            output_gain: step(start.output_gain, target.output_gain),
            ..*target
        };
        self.current = Some(end);
        end
    }
}

/// The continuous settings of `glided` with everything else from `target`.
fn start_with(target: &EngineParams, glided: &EngineParams) -> EngineParams {
    EngineParams {
        voice: VoiceParams {
            shaper: target.voice.shaper,
            ..glided.voice
        },
        reverb_mix: glided.reverb_mix,
        output_gain: glided.output_gain,
        ..*target
    }
}

/// The settings across one batch of `frames` frames: `start` at its first frame's start,
/// `end` at its last frame's end, linear in between.
struct ParamRamp {
    start: EngineParams,
    end: EngineParams,
    frames: usize,
}

impl ParamRamp {
    /// The settings at frame boundary `f` (0 ..= frames) of the batch.
    fn at(&self, f: usize) -> EngineParams {
        if f == 0 || self.frames == 0 {
            return self.start;
        }
        if f >= self.frames {
            return self.end;
        }
        let t = f as f32 / self.frames as f32;
        let lerp = |a: f32, b: f32| if a == b { a } else { a + (b - a) * t };
        let (s, e) = (&self.start, &self.end);
        EngineParams {
            voice: VoiceParams {
                shaper_in_gain: lerp(s.voice.shaper_in_gain, e.voice.shaper_in_gain),
                shaper_in_offset: lerp(s.voice.shaper_in_offset, e.voice.shaper_in_offset),
                shaper_out_gain: lerp(s.voice.shaper_out_gain, e.voice.shaper_out_gain),
                harmonic_gain: lerp(s.voice.harmonic_gain, e.voice.harmonic_gain),
                noise_gain: lerp(s.voice.noise_gain, e.voice.noise_gain),
                ..e.voice
            },
            reverb_mix: lerp(s.reverb_mix, e.reverb_mix),
            output_gain: lerp(s.output_gain, e.output_gain),
            ..*e
        }
    }
}
