//! What the audio thread publishes for the editor, through atomics (no locks): the live
//! controls of the sounding voice, the range of each shaper's input, and in audio-input
//! mode the tracked pitch and its confidence.

use std::sync::atomic::{AtomicBool, Ordering};

use nice_plug::prelude::AtomicF32;

/// Most shapers a model may have for the editor's live ranges.
pub const MAX_SHAPERS: usize = 128;

#[derive(Debug)]
pub struct Telemetry {
    pub sounding: AtomicBool,
    /// Controls of the sounding voice: f0 in Hz, loudness in dB.
    pub f0_hz: AtomicF32,
    pub loudness_db: AtomicF32,
    /// Audio input: tracked f0 (Hz), voicing confidence, loudness (dB).
    pub input_f0_hz: AtomicF32,
    pub input_confidence: AtomicF32,
    pub input_loudness_db: AtomicF32,
    /// `[lo, hi]` of each shaper's input, flattened.
    shaper_range: Vec<AtomicF32>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self {
            sounding: AtomicBool::new(false),
            f0_hz: AtomicF32::new(0.0),
            loudness_db: AtomicF32::new(-120.0),
            input_f0_hz: AtomicF32::new(0.0),
            input_confidence: AtomicF32::new(0.0),
            input_loudness_db: AtomicF32::new(-120.0),
            shaper_range: (0..2 * MAX_SHAPERS).map(|_| AtomicF32::new(0.0)).collect(),
        }
    }
}

impl Telemetry {
    /// Audio thread: publishes the sounding voice's state (`None` when all are silent).
    pub fn publish_voice(&self, live: Option<newt_engine::LiveVoice<'_>>) {
        let r = Ordering::Relaxed;
        match live {
            Some(v) => {
                self.sounding.store(true, r);
                self.f0_hz.store(v.controls.f0_hz, r);
                self.loudness_db.store(v.controls.loudness_db, r);
                for (c, [lo, hi]) in v.shaper_input_range.iter().take(MAX_SHAPERS).enumerate() {
                    self.shaper_range[2 * c].store(*lo, r);
                    self.shaper_range[2 * c + 1].store(*hi, r);
                }
            }
            None => self.sounding.store(false, r),
        }
    }

    /// Range `[lo, hi]` of shaper `c`'s input in the last published frame.
    pub fn shaper_range(&self, c: usize) -> [f32; 2] {
        if c >= MAX_SHAPERS {
            return [0.0; 2];
        }
        let r = Ordering::Relaxed;
        [
            self.shaper_range[2 * c].load(r),
            self.shaper_range[2 * c + 1].load(r),
        ]
    }
}
