//! NEWT, the neural waveshaping instrument, as a CLAP and VST3 plugin (nice-plug).
//!
//! Threads (see ARCHITECTURE.md): the host's audio thread runs [`Newt::process`], which
//! only renders, swaps in ready engines and schedules work; nice-plug's background thread
//! runs [`loader::Shared::run`], which loads models, builds engines and frees retired
//! ones; the GUI thread runs the [`editor`]; the host's main thread activates (building the
//! first engine synchronously) and saves and restores state.

// The audio thread must never unwind into a host: no `unwrap`, `expect` or `panic!` outside
// tests; a broken invariant is a handled case (issue 21).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod audio_input;
pub mod editor;
pub mod file_dialog;
pub mod handover;
pub mod library;
pub mod loader;
pub mod params;
pub mod presets;
pub mod telemetry;

use std::num::NonZeroU32;
use std::sync::Arc;

use newt_engine::{EngineConfig, EngineParams, Event, EventKind, FrameControls, TableSpec};
use nice_plug::prelude::*;

use crate::handover::{LoadedEngine, ModelRequest};
use crate::loader::{Shared, Task};
use crate::params::{InputMode, NewtParams};

/// Voices of the engine (the voicing parameter chooses mono legato or poly).
pub const VOICES: usize = 16;
/// Engine events per block; more are dropped (the engine itself keeps note priority).
const EVENT_CAPACITY: usize = 4096;
/// Crossfade from the old engine to the new one on a model change, in seconds.
const SWAP_FADE_S: f32 = 0.03;
/// Time the incoming engine plays muted before the cross-fade, in seconds: its GRU
/// starts from rest, and a trained model's first frames after rest are an onset, not
/// the held note (about 100 ms on the bundled models).
const SWAP_WARMUP_S: f32 = 0.1;
/// Retired engines held on the audio thread while the retire queue is full.
const RETIRE_SLOTS: usize = 8;

pub struct Newt {
    params: Arc<NewtParams>,
    shared: Arc<Shared>,
    /// The engine playing, and the one fading out after a model change.
    current: Option<Box<LoadedEngine>>,
    fading: Option<Box<LoadedEngine>>,
    /// Samples of the crossfade done, and its length.
    fade_pos: usize,
    fade_len: usize,
    /// Samples the incoming engine plays muted before its fade (see `SWAP_WARMUP_S`).
    warmup_len: usize,
    /// Engines waiting for room in the retire queue (capacity fixed, never grows).
    /// Boxed: engines move between the queues and this list as pointers; unboxing one
    /// on the audio thread would copy it, and freeing the box there is not allowed.
    #[allow(clippy::vec_box)]
    pending_retire: Vec<Box<LoadedEngine>>,
    /// The last model request sent to the loader.
    requested: Option<ModelRequest>,
    /// Host events for both engines this block.
    events: Vec<Event>,
    /// Audio input: the fading engine's own controls during an Audio-mode swap.
    fade_events: Vec<Event>,
    input: Vec<f32>,
    out: Vec<f32>,
    old: Vec<f32>,
    /// The layout has a main input (else Audio mode hears silence, not stale buffers).
    has_input: bool,
    reported_latency: u32,
    max_block: usize,
}

impl Default for Newt {
    fn default() -> Self {
        Self {
            params: Arc::new(NewtParams::default()),
            shared: Arc::new(Shared::default()),
            current: None,
            fading: None,
            fade_pos: 0,
            fade_len: 1,
            warmup_len: 0,
            pending_retire: Vec::with_capacity(RETIRE_SLOTS),
            requested: None,
            events: Vec::new(),
            fade_events: Vec::new(),
            input: Vec::new(),
            out: Vec::new(),
            old: Vec::new(),
            has_input: false,
            reported_latency: 0,
            max_block: 0,
        }
    }
}

impl Drop for Newt {
    fn drop(&mut self) {
        self.shared.handover.collect();
        self.shared.handover.clear_incoming();
    }
}

/// Converts a host note event to engine events; `None` for events the engine ignores.
fn engine_event(event: &PluginNoteEvent<Newt>) -> Option<Event> {
    let (time, kind) = match *event {
        NoteEvent::NoteOn {
            timing,
            key,
            velocity,
            ..
        } => (
            timing,
            match key.number() {
                Some(note) => EventKind::NoteOn {
                    note: note.min(127),
                    velocity,
                },
                None => return None,
            },
        ),
        NoteEvent::NoteOff { timing, key, .. } | NoteEvent::Choke { timing, key, .. } => (
            timing,
            match key.number() {
                Some(note) => EventKind::NoteOff {
                    note: note.min(127),
                },
                None => EventKind::AllNotesOff,
            },
        ),
        NoteEvent::MidiPitchBend { timing, value, .. } => {
            (timing, EventKind::PitchBend(2.0 * value - 1.0))
        }
        NoteEvent::MidiChannelPressure {
            timing, pressure, ..
        } => (timing, EventKind::Expression(pressure)),
        NoteEvent::MidiCC {
            timing, cc, value, ..
        } => (
            timing,
            match cc {
                control_change::MODULATION_MSB => EventKind::ModWheel(value),
                control_change::EXPRESSION_CONTROLLER_MSB => EventKind::Expression(value),
                control_change::DAMPER_PEDAL => EventKind::Sustain(value >= 0.5),
                control_change::ALL_NOTES_OFF | control_change::ALL_SOUND_OFF => {
                    EventKind::AllNotesOff
                }
                _ => return None,
            },
        ),
        _ => return None,
    };
    Some(Event { time, kind })
}

impl Newt {
    /// The model the parameters and the user file ask for now. Lock-free.
    fn wanted_request(&self) -> ModelRequest {
        let choice_index = self.params.model.value();
        let user_file = library::choice(choice_index) == library::ModelChoice::UserFile;
        ModelRequest {
            choice_index,
            // The user file's changes matter only while it is the choice.
            user_generation: if user_file {
                self.params.user_model.generation()
            } else {
                0
            },
        }
    }

    fn engine_config(sample_rate: f32, max_block: u32) -> EngineConfig {
        EngineConfig {
            host_sample_rate: sample_rate.round() as u32,
            max_block: max_block.max(1) as usize,
            voices: VOICES,
            table: TableSpec::default(),
            noise_seed: 0,
            dc_blocker: true,
        }
    }

    /// Audio thread: retires an engine now, or keeps it until the queue has room.
    fn retire(&mut self, engine: Box<LoadedEngine>) {
        if let Err(engine) = self.shared.handover.retire(engine) {
            // Capacity is reserved before any engine is adopted, so this never grows.
            debug_assert!(self.pending_retire.len() < RETIRE_SLOTS);
            self.pending_retire.push(engine);
        }
    }

    /// Audio thread: takes a ready engine if it answers the current request and fits the
    /// current configuration; the playing engine fades out into it. Returns whether
    /// anything was retired (so that the loader should collect).
    fn adopt_ready_engine(&mut self, wanted: ModelRequest) -> bool {
        while let Some(engine) = self.pending_retire.pop() {
            if let Err(engine) = self.shared.handover.retire(engine) {
                self.pending_retire.push(engine);
                return false;
            }
        }
        // Room for the two engines an adoption can retire.
        if self.pending_retire.len() + 2 > RETIRE_SLOTS {
            return false;
        }
        let Some(mut new) = self.shared.handover.take() else {
            return false;
        };
        let fits = self
            .current
            .as_ref()
            .is_none_or(|c| c.engine.config() == new.engine.config());
        let same = self
            .current
            .as_ref()
            .is_some_and(|c| c.request == new.request);
        if new.request != wanted || !fits || same {
            self.retire(new);
            return true;
        }
        new.engine.reset();
        new.tracker.reset();
        if let Some(previous) = self.fading.take() {
            self.retire(previous);
        }
        self.shared.set_adopted(new.request);
        self.fading = self.current.replace(new);
        self.fade_pos = 0;
        // The new engine takes over the notes, envelopes and oscillator phases, so the
        // cross-fade is between two in-phase renderings of the same performance.
        if let (Some(current), Some(fading)) = (self.current.as_mut(), self.fading.as_ref()) {
            current.engine.continue_performance(&fading.engine);
        }
        true
    }

    /// Renders `n` samples into `self.out` from `self.input` and `self.events`: the
    /// audio-input trackers, the playing engine, and the one fading out after a swap.
    fn render(&mut self, n: usize, audio_input: bool, context: &mut impl ProcessContext<Self>) {
        let Some(current) = self.current.as_mut() else {
            self.out[..n].fill(0.0);
            return;
        };
        // The input settings' smoothers advance every block, whatever the mode.
        let settings = self.params.input_settings(n as u32);
        let params = self.params.engine_params();
        let input = &self.input[..n];
        if audio_input {
            let events = &mut self.events;
            let telemetry = &self.shared.telemetry;
            current
                .tracker
                .process(input, &settings, |time, controls, tracked| {
                    push_controls(events, time, controls);
                    let r = std::sync::atomic::Ordering::Relaxed;
                    telemetry.input_f0_hz.store(tracked.f0_hz, r);
                    telemetry.input_confidence.store(tracked.confidence, r);
                    telemetry.input_loudness_db.store(tracked.loudness_db, r);
                });
        }
        let out = &mut self.out[..n];
        let trimmed = |trim: f32| EngineParams {
            output_gain: params.output_gain * trim,
            ..params
        };
        if current
            .engine
            .process(&self.events, &trimmed(current.level_trim), out)
            .is_err()
        {
            out.fill(0.0);
        }
        self.shared
            .telemetry
            .publish_voice(current.engine.live_voice());

        let Some(fading) = self.fading.as_mut() else {
            return;
        };
        // The old engine plays on with the player's events or, in Audio mode, with its
        // own tracker until the new one has caught up.
        let old_events: &[Event] = if audio_input {
            self.fade_events.clear();
            let events = &mut self.fade_events;
            fading
                .tracker
                .process(input, &settings, |time, controls, _| {
                    push_controls(events, time, controls);
                });
            &self.fade_events
        } else {
            &self.events
        };
        let old = &mut self.old[..n];
        if fading
            .engine
            .process(old_events, &trimmed(fading.level_trim), old)
            .is_err()
        {
            old.fill(0.0);
        }
        // The new model's GRU starts from rest: it plays muted for SWAP_WARMUP_S before
        // fading in. In Audio mode its tracker also says nothing for its latency first.
        let delay = self.warmup_len
            + if audio_input {
                current.tracker.latency_samples()
            } else {
                0
            };
        let len = self.fade_len;
        for (i, (o, x)) in out.iter_mut().zip(old.iter()).enumerate() {
            let pos = (self.fade_pos + i).saturating_sub(delay);
            let g = (pos as f32 / len as f32).min(1.0);
            *o = g * *o + (1.0 - g) * x;
        }
        self.fade_pos += n;
        if self.fade_pos >= delay + len
            && let Some(done) = self.fading.take()
        {
            self.retire(done);
            context.execute_background(Task::Collect);
        }
    }

    fn reported_latency(&self) -> u32 {
        self.current
            .as_ref()
            .map_or(0, |c| match self.params.input.value() {
                InputMode::Midi => c.engine.latency_samples(),
                InputMode::Audio => c.tracker.latency_samples(),
            }) as u32
    }
}

/// Queues tracked controls as an engine event, if the preallocated queue has room (the
/// audio thread never grows it).
fn push_controls(events: &mut Vec<Event>, time: u32, controls: FrameControls) {
    if events.len() < EVENT_CAPACITY {
        events.push(Event {
            time,
            kind: EventKind::Controls(controls),
        });
    }
}

impl Plugin for Newt {
    const NAME: &'static str = "NEWT";
    const VENDOR: &'static str = "NEWT project";
    const URL: &'static str = "https://github.com/newt-synth/newt";
    const EMAIL: &'static str = "newt@example.org";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = &[
        AudioIOLayout {
            main_input_channels: NonZeroU32::new(2),
            main_output_channels: NonZeroU32::new(2),
            ..AudioIOLayout::const_default()
        },
        AudioIOLayout {
            main_input_channels: None,
            main_output_channels: NonZeroU32::new(2),
            ..AudioIOLayout::const_default()
        },
        AudioIOLayout {
            main_input_channels: NonZeroU32::new(1),
            main_output_channels: NonZeroU32::new(1),
            ..AudioIOLayout::const_default()
        },
    ];
    const MIDI_INPUT: MidiConfig = MidiConfig::MidiCCs;
    const SAMPLE_ACCURATE_AUTOMATION: bool = false;

    type Editor = nice_plug_egui::EguiEditor<editor::NewtEditor>;
    type SysExMessage = ();
    type BackgroundTask = Task;

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    fn task_executor(&mut self) -> TaskExecutor<Self> {
        let shared = self.shared.clone();
        let params = self.params.clone();
        Box::new(move |task| shared.run(task, &params.user_model))
    }

    fn editor(&mut self, _async_executor: AsyncExecutor<Self>) -> Option<Self::Editor> {
        editor::create(self.params.clone(), self.shared.clone())
    }

    fn activate(
        &mut self,
        audio_io_layout: &AudioIOLayout,
        buffer_config: &BufferConfig,
        context: &mut impl ActivateContext<Self>,
    ) -> bool {
        let config = Self::engine_config(buffer_config.sample_rate, buffer_config.max_buffer_size);
        self.shared.set_config(Some(config));
        self.shared.handover.clear_incoming();
        self.shared.handover.collect();
        let wanted = self.wanted_request();
        let reuse = self
            .current
            .as_ref()
            .is_some_and(|c| c.request == wanted && *c.engine.config() == config);
        if !reuse {
            let built = self
                .shared
                .build(wanted, &self.params.user_model, config)
                .or_else(|| self.shared.rebuild_playing(config))
                .or_else(|| {
                    // Nothing loaded yet and the request fails: the default model.
                    let fallback = ModelRequest {
                        choice_index: library::DEFAULT_VALUE,
                        user_generation: 0,
                    };
                    self.shared.build(fallback, &self.params.user_model, config)
                });
            let Some(engine) = built else {
                nice_error!("NEWT cannot play at {} Hz", buffer_config.sample_rate);
                return false;
            };
            self.shared.set_adopted(engine.request);
            self.current = Some(engine);
        }
        self.fading = None;
        self.pending_retire.clear();
        self.requested = Some(wanted);
        self.max_block = config.max_block;
        self.events = Vec::with_capacity(EVENT_CAPACITY);
        self.fade_events = Vec::with_capacity(EVENT_CAPACITY);
        self.input = vec![0.0; config.max_block];
        self.out = vec![0.0; config.max_block];
        self.old = vec![0.0; config.max_block];
        self.has_input = audio_io_layout.main_input_channels.is_some();
        self.fade_len = ((SWAP_FADE_S * buffer_config.sample_rate) as usize).max(1);
        self.warmup_len = (SWAP_WARMUP_S * buffer_config.sample_rate) as usize;
        self.reported_latency = self.reported_latency();
        context.set_latency_samples(self.reported_latency);
        true
    }

    fn reset(&mut self) {
        if let Some(c) = self.current.as_mut() {
            c.engine.reset();
            c.tracker.reset();
        }
        if let Some(f) = self.fading.take() {
            self.retire(f);
        }
    }

    fn deactivate(&mut self) {
        self.shared.set_config(None);
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        _aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        let wanted = self.wanted_request();
        if self.requested != Some(wanted) {
            self.requested = Some(wanted);
            // Back to the model playing (A -> B -> A): nothing to load.
            if self.current.as_ref().is_none_or(|c| c.request != wanted) {
                context.execute_background(Task::Load(wanted));
            }
        }
        let audio_input = self.params.input.value() == InputMode::Audio;
        let total = buffer.samples();
        let channels = buffer.as_slice();
        if self.current.is_none() || total == 0 {
            channels.iter_mut().for_each(|c| c.fill(0.0));
            return ProcessStatus::Normal;
        }
        // Host blocks longer than promised are rendered in pieces of at most `max_block`.
        let mut next_event = context.next_event();
        let mut start = 0;
        while start < total {
            let n = (total - start).min(self.max_block);
            self.events.clear();
            if self.adopt_ready_engine(wanted) {
                context.execute_background(Task::Collect);
            }
            while let Some(event) = next_event.as_ref() {
                if event.timing() as usize >= start + n {
                    break;
                }
                if let Some(mut e) = engine_event(event) {
                    e.time = e.time.saturating_sub(start as u32);
                    if !audio_input && self.events.len() < EVENT_CAPACITY {
                        self.events.push(e);
                    }
                }
                next_event = context.next_event();
            }
            // The input, mono, before the output overwrites it (silence without an input).
            let input = &mut self.input[..n];
            input.fill(0.0);
            if self.has_input && audio_input {
                let scale = 1.0 / channels.len().max(1) as f32;
                for ch in channels.iter() {
                    for (m, x) in input.iter_mut().zip(&ch[start..]) {
                        *m += scale * if x.is_finite() { *x } else { 0.0 };
                    }
                }
            }
            self.render(n, audio_input, context);
            for ch in channels.iter_mut() {
                let end = (start + n).min(ch.len());
                if start < end {
                    ch[start..end].copy_from_slice(&self.out[..end - start]);
                }
            }
            start += n;
        }

        let latency = self.reported_latency();
        if latency != self.reported_latency {
            self.reported_latency = latency;
            context.set_latency_samples(latency);
        }
        ProcessStatus::KeepAlive
    }
}

impl ClapPlugin for Newt {
    const CLAP_ID: &'static str = "com.newt-synth.newt";
    const CLAP_DESCRIPTION: Option<&'static str> = Some(
        "Neural waveshaping synthesis (NEWT / FastNEWT): play it from MIDI or from your voice",
    );
    const CLAP_MANUAL_URL: Option<&'static str> = None;
    const CLAP_SUPPORT_URL: Option<&'static str> = None;
    const CLAP_FEATURES: &'static [ClapFeature] = &[
        ClapFeature::Instrument,
        ClapFeature::Synthesizer,
        ClapFeature::Stereo,
        ClapFeature::Mono,
    ];
}

impl Vst3Plugin for Newt {
    const VST3_CLASS_ID: [u8; 16] = *b"NewtWaveshaper01";
    const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] =
        &[Vst3SubCategory::Instrument, Vst3SubCategory::Synth];
}

nice_export_clap!(Newt);
nice_export_vst3!(Newt);
