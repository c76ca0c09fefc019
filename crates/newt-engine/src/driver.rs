//! The note-level driver: turns MIDI-style note state into per-frame controls (f0 in Hz,
//! loudness in dB) with glide, pitch bend, vibrato and an envelope. The plugin and the
//! offline renderer share it.

use newt_model::{LoudnessMeasure, ModelMeta};

use crate::controls::{FrameControls, finite_or};

/// Note-shaping settings, in musical units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NoteParams {
    /// Portamento time constant in seconds (0 = jump).
    pub glide_s: f32,
    pub vibrato_rate_hz: f32,
    /// Vibrato depth in cents; the mod wheel adds up to `mod_wheel_depth_cents`.
    pub vibrato_depth_cents: f32,
    pub mod_wheel_depth_cents: f32,
    /// Seconds before vibrato reaches full depth after a note starts.
    pub vibrato_delay_s: f32,
    pub attack_s: f32,
    pub decay_s: f32,
    /// Sustain level as linear gain in [0, 1].
    pub sustain: f32,
    /// Release time to -60 dB in seconds.
    pub release_s: f32,
    pub bend_range_semitones: f32,
    /// Pitch shift of every note, in semitones (the plugin's octave and semitone knobs);
    /// applied continuously, like pitch bend.
    pub transpose_semitones: f32,
    /// Loudness span of the velocity range, in model standard deviations.
    pub velocity_span_std: f32,
    /// Folds each note (with the transposition) by whole octaves into the model's trained
    /// pitch range (`RangeMap::pitch_range_midi`); bend and vibrato stay as played.
    pub keep_in_range: bool,
}

impl NoteParams {
    /// Replaces non-finite values by the defaults and clamps to sane ranges, so that no
    /// automation value can stall an envelope or poison a voice.
    pub fn sanitized(self) -> Self {
        let d = Self::default();
        Self {
            glide_s: finite_or(self.glide_s, d.glide_s, 0.0, 10.0),
            vibrato_rate_hz: finite_or(self.vibrato_rate_hz, d.vibrato_rate_hz, 0.0, 20.0),
            vibrato_depth_cents: finite_or(
                self.vibrato_depth_cents,
                d.vibrato_depth_cents,
                0.0,
                200.0,
            ),
            mod_wheel_depth_cents: finite_or(
                self.mod_wheel_depth_cents,
                d.mod_wheel_depth_cents,
                0.0,
                200.0,
            ),
            vibrato_delay_s: finite_or(self.vibrato_delay_s, d.vibrato_delay_s, 0.0, 10.0),
            attack_s: finite_or(self.attack_s, d.attack_s, 0.0, 10.0),
            decay_s: finite_or(self.decay_s, d.decay_s, 0.0, 30.0),
            sustain: finite_or(self.sustain, d.sustain, 0.0, 1.0),
            release_s: finite_or(self.release_s, d.release_s, 0.001, 30.0),
            bend_range_semitones: finite_or(
                self.bend_range_semitones,
                d.bend_range_semitones,
                0.0,
                48.0,
            ),
            transpose_semitones: finite_or(self.transpose_semitones, 0.0, -48.0, 48.0),
            velocity_span_std: finite_or(self.velocity_span_std, d.velocity_span_std, 0.0, 10.0),
            keep_in_range: self.keep_in_range,
        }
    }
}

impl Default for NoteParams {
    fn default() -> Self {
        Self {
            glide_s: 0.05,
            vibrato_rate_hz: 5.5,
            vibrato_depth_cents: 0.0,
            mod_wheel_depth_cents: 50.0,
            vibrato_delay_s: 0.25,
            attack_s: 0.03,
            decay_s: 0.2,
            sustain: 0.8,
            release_s: 0.3,
            bend_range_semitones: 2.0,
            transpose_semitones: 0.0,
            velocity_span_std: 2.5,
            keep_in_range: false,
        }
    }
}

/// Channel-wide controllers, all normalised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChannelState {
    /// Pitch bend in [-1, 1].
    pub bend: f32,
    /// Mod wheel in [0, 1].
    pub mod_wheel: f32,
    /// Expression / channel pressure in [0, 1] (1 = as played).
    pub expression: f32,
}

impl Default for ChannelState {
    fn default() -> Self {
        Self {
            bend: 0.0,
            mod_wheel: 0.0,
            expression: 1.0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Idle,
    Attack,
    Decay,
    Release,
}

/// Loudness envelope level (linear gain) below which a released note is over: -60 dB.
pub const ENVELOPE_END: f32 = 1e-3;

/// Per-voice note state, advanced once per control frame.
#[derive(Clone, Debug)]
pub struct NoteDriver {
    note: u8,
    velocity: f32,
    /// Current pitch in semitones (MIDI note numbers, fractional while gliding).
    pitch: f32,
    target: f32,
    /// Octave fold ("Keep in range") in semitones, gliding with the pitch so that a legato
    /// move between a folded and an unfolded note is one smooth glide.
    fold: f32,
    /// The next frame is a note's first: the fold is set, not glided.
    fresh: bool,
    stage: Stage,
    env: f32,
    vibrato_phase: f32,
    age_s: f32,
}

impl Default for NoteDriver {
    fn default() -> Self {
        Self {
            note: 69,
            velocity: 0.0,
            pitch: 69.0,
            target: 69.0,
            fold: 0.0,
            fresh: false,
            stage: Stage::Idle,
            env: 0.0,
            vibrato_phase: 0.0,
            age_s: 0.0,
        }
    }
}

impl NoteDriver {
    /// Starts a note from the attack; the pitch jumps (no glide from the last note). A
    /// voice that is still sounding (retrigger, stolen voice) attacks from its current
    /// level instead of dropping to silence.
    pub fn start(&mut self, note: u8, velocity: f32) {
        self.note = note;
        self.velocity = finite_or(velocity, 0.0, 0.0, 1.0);
        self.pitch = note as f32;
        self.target = note as f32;
        self.fresh = true;
        if self.stage == Stage::Idle {
            self.env = 0.0;
        }
        self.stage = Stage::Attack;
        self.vibrato_phase = 0.0;
        self.age_s = 0.0;
    }

    /// Moves to a new note without retriggering; the pitch glides.
    pub fn legato(&mut self, note: u8) {
        self.note = note;
        self.target = note as f32;
    }

    pub fn release(&mut self) {
        if self.stage != Stage::Idle {
            self.stage = Stage::Release;
        }
    }

    pub fn note(&self) -> u8 {
        self.note
    }

    pub fn is_idle(&self) -> bool {
        self.stage == Stage::Idle
    }

    /// True once a released note has decayed below [`ENVELOPE_END`].
    pub fn is_finished(&self) -> bool {
        self.stage == Stage::Release && self.env < ENVELOPE_END
    }

    pub fn stop(&mut self) {
        self.stage = Stage::Idle;
        self.env = 0.0;
    }

    /// Advances by one frame of `dt` seconds and returns the frame's controls.
    pub fn next_frame(
        &mut self,
        p: &NoteParams,
        ch: &ChannelState,
        meta: &ModelMeta,
        dt: f32,
    ) -> FrameControls {
        if self.stage == Stage::Idle {
            return FrameControls::SILENT;
        }
        // Envelope (linear attack, exponential decay and release).
        match self.stage {
            Stage::Attack => {
                self.env += dt / p.attack_s.max(dt);
                if self.env >= 1.0 {
                    self.env = 1.0;
                    self.stage = Stage::Decay;
                }
            }
            Stage::Decay => {
                let k = 1.0 - (-dt * 6.9 / p.decay_s.max(1e-3)).exp();
                self.env += (p.sustain.clamp(0.0, 1.0) - self.env) * k;
            }
            Stage::Release => {
                self.env *= (-dt * 6.9 / p.release_s.max(1e-3)).exp();
            }
            Stage::Idle => {}
        }
        // Glide in the log-frequency domain.
        let g = if p.glide_s > 0.0 {
            1.0 - (-dt / p.glide_s).exp()
        } else {
            1.0
        };
        self.pitch += (self.target - self.pitch) * g;
        let fold = if p.keep_in_range {
            let played = self.target + p.transpose_semitones;
            meta.range_map.fold_pitch_midi(played) - played
        } else {
            0.0
        };
        if self.fresh {
            self.fold = fold;
            self.fresh = false;
        } else {
            self.fold += (fold - self.fold) * g;
        }
        // Vibrato, faded in after the delay.
        self.age_s += dt;
        self.vibrato_phase = (self.vibrato_phase + dt * p.vibrato_rate_hz.max(0.0)).fract();
        let fade = ((self.age_s - p.vibrato_delay_s) / 0.3).clamp(0.0, 1.0);
        let depth =
            (p.vibrato_depth_cents + ch.mod_wheel.clamp(0.0, 1.0) * p.mod_wheel_depth_cents) * fade;
        let vibrato = depth / 100.0 * (std::f32::consts::TAU * self.vibrato_phase).sin();
        let semis = self.pitch
            + self.fold
            + p.transpose_semitones
            + ch.bend.clamp(-1.0, 1.0) * p.bend_range_semitones
            + vibrato;
        let f0 = newt_model::range::hz_of_midi(semis);

        FrameControls {
            f0_hz: f0,
            loudness_db: played_loudness_db(
                meta,
                p.velocity_span_std,
                self.velocity,
                self.env * ch.expression.clamp(0.0, 1.0),
            ),
        }
    }
}

/// The loudness control of a note played at `velocity` (in [0, 1]) under a gain (the
/// envelope times expression, in [0, 1]), in the model's own loudness measure.
///
/// Velocity spans `span_std` standard deviations of the model's training loudness,
/// centred so that velocity 0.6 plays its mean. The gain then moves the loudness down
/// toward the model's silence:
/// - A-weighted dBFS models hear it as a level, `20 log10(gain)` dB (floor -120 dB);
/// - the NEWT authors' measure spans only about mean +- 3 std (+-7 dB) between silence
///   (-80) and the loudest playing, and a level in dB would push it tens of standard
///   deviations below what the model knows; there the gain's dB (0 to -60, where a
///   release ends) map linearly onto the way from the played loudness to silence.
pub fn played_loudness_db(meta: &ModelMeta, span_std: f32, velocity: f32, gain: f32) -> f32 {
    let floor = meta.loudness_measure.floor_db();
    let vel_db = meta.loudness_mean_db + meta.loudness_std_db * span_std * (velocity - 0.6);
    let gain_db = 20.0 * gain.max(1e-6).log10();
    let loudness = match meta.loudness_measure {
        LoudnessMeasure::AWeightedDbfs => vel_db + gain_db,
        LoudnessMeasure::NwsDb => {
            let share = (1.0 + gain_db / 60.0).clamp(0.0, 1.0);
            floor + (vel_db.max(floor) - floor) * share
        }
    };
    loudness.max(floor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use newt_model::NewtModel;

    #[test]
    fn note_pitch_bend_and_release() {
        let meta = NewtModel::seeded(0).meta;
        let p = NoteParams {
            vibrato_depth_cents: 0.0,
            ..NoteParams::default()
        };
        let dt = 0.008;
        let mut d = NoteDriver::default();
        d.start(69, 1.0);
        let mut ch = ChannelState::default();
        let c = d.next_frame(&p, &ch, &meta, dt);
        assert!((c.f0_hz - 440.0).abs() < 1e-3);
        ch.bend = 1.0;
        let c = d.next_frame(&p, &ch, &meta, dt);
        assert!((c.f0_hz - 440.0 * 2f32.powf(2.0 / 12.0)).abs() < 1e-2);
        ch.bend = 0.0;
        for _ in 0..100 {
            d.next_frame(&p, &ch, &meta, dt);
        }
        let held = d.next_frame(&p, &ch, &meta, dt).loudness_db;
        d.release();
        let mut frames = 0;
        while !d.is_finished() {
            let c = d.next_frame(&p, &ch, &meta, dt);
            assert!(c.loudness_db < held);
            frames += 1;
            assert!(frames < 200, "release never ends");
        }
        // 0.3 s to -60 dB is about 38 frames of 8 ms.
        assert!((30..=45).contains(&frames), "{frames}");
    }

    /// For a model in the authors' loudness measure, notes play inside its trained
    /// range (mean +- 3 std) and fade to its silence (-80 dB), never below.
    #[test]
    fn notes_stay_in_the_range_of_an_nws_model() {
        let mut meta = NewtModel::seeded(0).meta;
        meta.loudness_measure = LoudnessMeasure::NwsDb;
        meta.loudness_mean_db = -72.4;
        meta.loudness_std_db = 2.4;
        let p = NoteParams::default();
        let ch = ChannelState::default();
        let (lo, hi) = (
            meta.loudness_mean_db - 3.0 * 2.4,
            meta.loudness_mean_db + 3.0 * 2.4,
        );
        for velocity in [0.05, 0.6, 1.0] {
            let mut d = NoteDriver::default();
            d.start(69, velocity);
            let mut held = 0.0;
            for _ in 0..100 {
                held = d.next_frame(&p, &ch, &meta, 0.008).loudness_db;
            }
            assert!((lo..=hi).contains(&held), "velocity {velocity}: {held}");
            d.release();
            let mut last = held;
            while !d.is_finished() {
                last = d.next_frame(&p, &ch, &meta, 0.008).loudness_db;
                assert!(last >= -80.0, "{last}");
            }
            assert!(last < -79.0, "a finished release reaches silence: {last}");
        }
        let played = |v: f32| played_loudness_db(&meta, p.velocity_span_std, v, 0.8);
        assert!(played(0.2) < played(0.5) && played(0.5) < played(0.9));
        // Our own models keep the level rule: the gain is a level in dB.
        let ours = NewtModel::seeded(0).meta;
        let full = played_loudness_db(&ours, 2.5, 0.6, 1.0);
        let half = played_loudness_db(&ours, 2.5, 0.6, 0.5);
        assert!((full - half - 20.0 * 2f32.log10()).abs() < 1e-4);
    }

    #[test]
    fn legato_glides_toward_the_new_note() {
        let meta = NewtModel::seeded(0).meta;
        let p = NoteParams {
            glide_s: 0.05,
            vibrato_depth_cents: 0.0,
            ..NoteParams::default()
        };
        let ch = ChannelState::default();
        let mut d = NoteDriver::default();
        d.start(60, 0.8);
        d.next_frame(&p, &ch, &meta, 0.008);
        d.legato(72);
        let first = d.next_frame(&p, &ch, &meta, 0.008).f0_hz;
        let f60 = 440.0 * 2f32.powf(-9.0 / 12.0);
        assert!(first > f60 * 1.01 && first < 2.0 * f60 * 0.99, "{first}");
        for _ in 0..100 {
            d.next_frame(&p, &ch, &meta, 0.008);
        }
        let end = d.next_frame(&p, &ch, &meta, 0.008).f0_hz;
        assert!((end / (2.0 * f60) - 1.0).abs() < 1e-3);
    }
}
