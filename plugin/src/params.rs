//! The plugin's parameters: smoothed, automatable, and turned into the engine's settings
//! once per block.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use newt_engine::{Drive, EngineParams, NoteParams, ShaperPath, VoiceMode, VoiceParams};
use nice_plug::params::persist::PersistentField;
use nice_plug::prelude::*;
use nice_plug_egui::EguiEditorState;

use crate::library;

/// What drives the instrument.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputMode {
    /// Notes from the host's MIDI.
    #[name = "MIDI"]
    Midi,
    /// Timbre transfer: pitch and loudness tracked from the audio input.
    #[name = "Audio"]
    Audio,
}

/// How notes take voices.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Voicing {
    /// One voice, last-note priority, legato notes glide.
    #[name = "Mono legato"]
    MonoLegato,
    /// Sixteen voices with stealing.
    #[name = "Poly"]
    Poly,
}

/// The user's model file: a persisted path, with a generation counter bumped on every
/// change (from the editor or a restored state) so that the audio thread can notice a
/// change without locking.
#[derive(Debug, Default)]
pub struct UserModelPath {
    path: Mutex<Option<String>>,
    generation: AtomicU64,
}

impl UserModelPath {
    pub fn get(&self) -> Option<String> {
        self.path.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Chooses a file (the editor): always reloads, even the same path (it may have been
    /// retrained since); the audio thread notices and asks for a load.
    pub fn set_path(&self, path: Option<String>) {
        if let Ok(mut p) = self.path.lock() {
            *p = path;
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Bumped on every `set`; read by the audio thread (lock-free).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

impl<'a> PersistentField<'a, Option<String>> for UserModelPath {
    /// A restored state: a load only if the path changed, so that restoring a state
    /// never interrupts the model playing for nothing.
    fn set(&self, new_value: Option<String>) {
        if let Ok(mut p) = self.path.lock()
            && *p != new_value
        {
            *p = new_value;
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn map<F, R>(&self, f: F) -> R
    where
        F: Fn(&Option<String>) -> R,
    {
        match self.path.lock() {
            Ok(p) => f(&p),
            Err(_) => f(&None),
        }
    }
}

/// Editor size in logical pixels.
pub const EDITOR_SIZE: (f32, f32) = (960.0, 600.0);

/// Smoothing of the audio input's settings (loudness offset, confidence gate), in ms.
const SMOOTHING_MS: f32 = 20.0;

fn ms(name: &str, default: f32, max: f32) -> FloatParam {
    FloatParam::new(
        name,
        default,
        FloatRange::Skewed {
            min: 0.0,
            max,
            factor: FloatRange::skew_factor(-2.0),
        },
    )
    .with_unit(" ms")
    .with_step_size(0.1)
}

/// A linear parameter without a smoother: the engine glides the settings it plays.
fn linear(name: &str, default: f32, min: f32, max: f32) -> FloatParam {
    FloatParam::new(name, default, FloatRange::Linear { min, max }).with_step_size(0.001)
}

#[derive(Params)]
pub struct NewtParams {
    /// The editor window's size (not saved: the editor has one size).
    pub editor_state: Arc<EguiEditorState>,
    /// The user model file (the "User file" value of `model`).
    #[persist = "user-model"]
    pub user_model: UserModelPath,

    /// A model by its registry value (`library`, `plugin/build.rs`): flute 0, trumpet 1,
    /// violin 2, "User file" 3, then models appended with new values. nice-plug saves an
    /// `IntParam` as its plain value (`ParamValue::I32`) and CLAP automates it by that
    /// value, so a saved project keeps its model when models are added; the range grows
    /// with the registry (VST3 automation, which is normalised, is the one thing a larger
    /// range shifts).
    #[id = "model"]
    pub model: IntParam,
    #[id = "input"]
    pub input: EnumParam<InputMode>,
    #[id = "voicing"]
    pub voicing: EnumParam<Voicing>,

    /// Folds notes (and the audio input's pitch) by octaves into the model's trained
    /// pitch range.
    #[id = "keep_in_range"]
    pub keep_in_range: BoolParam,
    #[id = "octave"]
    pub octave: IntParam,
    #[id = "semitone"]
    pub semitone: IntParam,
    /// Audio input: added to the tracked loudness, in dB.
    #[id = "loud_offset"]
    pub loudness_offset: FloatParam,
    /// Audio input: frames whose voicing confidence is below this are silent.
    #[id = "gate"]
    pub gate: FloatParam,

    /// The paper's affine transforms of the shapers: `u' = scale u + offset`,
    /// `s' = out_scale s`.
    #[id = "shaper_in_scale"]
    pub shaper_in_scale: FloatParam,
    #[id = "shaper_in_offset"]
    pub shaper_in_offset: FloatParam,
    #[id = "shaper_out_scale"]
    pub shaper_out_scale: FloatParam,
    /// -1 = harmonic only, 0 = as trained, +1 = noise only.
    #[id = "balance"]
    pub balance: FloatParam,
    /// Gain of the learned reverb's tail after its first 8 ms (1 = as trained; the first
    /// 8 ms, where trained models equalise, always play).
    #[id = "reverb"]
    pub reverb: FloatParam,

    #[id = "attack"]
    pub attack: FloatParam,
    #[id = "decay"]
    pub decay: FloatParam,
    #[id = "sustain"]
    pub sustain: FloatParam,
    #[id = "release"]
    pub release: FloatParam,
    #[id = "glide"]
    pub glide: FloatParam,
    /// Vibrato depth in cents without the mod wheel; the wheel adds up to 50 cents more.
    #[id = "vibrato"]
    pub vibrato: FloatParam,
    #[id = "vibrato_rate"]
    pub vibrato_rate: FloatParam,
    #[id = "bend_range"]
    pub bend_range: FloatParam,

    #[id = "gain"]
    pub gain: FloatParam,
}

impl Default for NewtParams {
    fn default() -> Self {
        Self {
            editor_state: EguiEditorState::from_size(
                nice_plug::editor::dpi::LogicalSize::new(EDITOR_SIZE.0, EDITOR_SIZE.1),
                1.0,
            ),
            user_model: UserModelPath::default(),
            model: IntParam::new(
                "Model",
                library::DEFAULT_VALUE,
                IntRange::Linear {
                    min: 0,
                    max: library::MAX_VALUE,
                },
            )
            .with_value_to_string(Arc::new(library::choice_name))
            .with_string_to_value(Arc::new(|s| {
                library::choice_index(s).or_else(|| s.trim().parse().ok())
            })),
            input: EnumParam::new("Input", InputMode::Midi),
            voicing: EnumParam::new("Voicing", Voicing::MonoLegato),
            keep_in_range: BoolParam::new("Keep in range", false),
            octave: IntParam::new("Octave", 0, IntRange::Linear { min: -3, max: 3 }),
            semitone: IntParam::new("Semitone", 0, IntRange::Linear { min: -12, max: 12 })
                .with_unit(" st"),
            // The audio input's settings are applied per block by the tracker: smoothed.
            loudness_offset: linear("Loudness offset", 0.0, -24.0, 24.0)
                .with_smoother(SmoothingStyle::Linear(SMOOTHING_MS))
                .with_unit(" dB"),
            gate: linear(
                "Confidence gate",
                newt_features::live::DEFAULT_CONFIDENCE_GATE,
                0.0,
                1.0,
            )
            .with_smoother(SmoothingStyle::Linear(SMOOTHING_MS)),
            shaper_in_scale: linear("Shaper in scale", 1.0, 0.0, 4.0),
            shaper_in_offset: linear("Shaper in offset", 0.0, -2.0, 2.0),
            shaper_out_scale: linear("Shaper out scale", 1.0, 0.0, 4.0),
            balance: linear("Harmonic/noise", 0.0, -1.0, 1.0),
            reverb: linear("Reverb mix", 1.0, 0.0, 2.0),
            attack: ms("Attack", 30.0, 2000.0),
            decay: ms("Decay", 200.0, 5000.0),
            sustain: FloatParam::new("Sustain", 0.8, FloatRange::Linear { min: 0.0, max: 1.0 })
                .with_step_size(0.001),
            release: ms("Release", 300.0, 5000.0),
            glide: ms("Glide", 50.0, 2000.0),
            vibrato: FloatParam::new(
                "Vibrato",
                0.0,
                FloatRange::Linear {
                    min: 0.0,
                    max: 100.0,
                },
            )
            .with_unit(" ct")
            .with_step_size(0.1),
            vibrato_rate: FloatParam::new(
                "Vibrato rate",
                5.5,
                FloatRange::Linear {
                    min: 0.5,
                    max: 12.0,
                },
            )
            .with_unit(" Hz")
            .with_step_size(0.01),
            bend_range: FloatParam::new(
                "Bend range",
                2.0,
                FloatRange::Linear {
                    min: 0.0,
                    max: 24.0,
                },
            )
            .with_unit(" st")
            .with_step_size(1.0),
            gain: FloatParam::new(
                "Output gain",
                0.0,
                FloatRange::Linear {
                    min: -48.0,
                    max: 12.0,
                },
            )
            .with_unit(" dB")
            .with_step_size(0.1),
        }
    }
}

/// Audio-input settings of one block.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InputSettings {
    /// Pitch factor of the octave and semitone knobs.
    pub pitch_ratio: f32,
    pub loudness_offset_db: f32,
    pub gate: f32,
    /// Fold the input's pitch by octaves into the model's trained range.
    pub keep_in_range: bool,
}

impl NewtParams {
    /// Octave and semitone knobs together, in semitones.
    pub fn transpose_semitones(&self) -> f32 {
        (12 * self.octave.value() + self.semitone.value()) as f32
    }

    /// The engine's settings now.
    pub fn engine_params(&self) -> EngineParams {
        // The continuous settings go to the engine as set: it glides them itself, frame
        // by frame and sample by sample, the same for any block size (`ParamGlide`).
        let balance = self.balance.value();
        EngineParams {
            voice: VoiceParams {
                shaper: ShaperPath::Table,
                shaper_in_gain: self.shaper_in_scale.value(),
                shaper_in_offset: self.shaper_in_offset.value(),
                shaper_out_gain: self.shaper_out_scale.value(),
                harmonic_gain: (1.0 - balance).min(1.0),
                noise_gain: (1.0 + balance).min(1.0),
            },
            notes: NoteParams {
                glide_s: self.glide.value() / 1000.0,
                vibrato_rate_hz: self.vibrato_rate.value(),
                vibrato_depth_cents: self.vibrato.value(),
                attack_s: self.attack.value() / 1000.0,
                decay_s: self.decay.value() / 1000.0,
                sustain: self.sustain.value(),
                release_s: (self.release.value() / 1000.0).max(0.001),
                bend_range_semitones: self.bend_range.value(),
                transpose_semitones: self.transpose_semitones(),
                keep_in_range: self.keep_in_range.value(),
                ..NoteParams::default()
            },
            mode: match self.voicing.value() {
                Voicing::MonoLegato => VoiceMode::MonoLegato,
                Voicing::Poly => VoiceMode::Poly,
            },
            drive: match self.input.value() {
                InputMode::Midi => Drive::Notes,
                InputMode::Audio => Drive::Controls,
            },
            reverb_mix: self.reverb.value(),
            output_gain: util::db_to_gain(self.gain.value()),
        }
    }

    /// The audio-input settings for a block of `samples`, advancing the smoothers.
    pub fn input_settings(&self, samples: u32) -> InputSettings {
        InputSettings {
            pitch_ratio: (self.transpose_semitones() / 12.0).exp2(),
            loudness_offset_db: self.loudness_offset.smoothed.next_step(samples),
            gate: self.gate.smoothed.next_step(samples),
            keep_in_range: self.keep_in_range.value(),
        }
    }
}
