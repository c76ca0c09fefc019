//! The controls of one frame (f0 and loudness), the range every model is shown, and
//! [`finite_or`], the gate every value from outside the engine passes through.

/// Lowest loudness any model is shown, in dB (the silence of A-weighted dBFS models;
/// models in the authors' measure clamp to their own -80, `LoudnessMeasure::floor_db`).
pub const LOUDNESS_FLOOR_DB: f32 = -120.0;
/// Highest loudness accepted, in dB.
pub const LOUDNESS_CEIL_DB: f32 = 20.0;

/// `v` clamped to `[lo, hi]`, or `default` where `v` is NaN or infinite: how every value
/// from outside (controls, events, parameters) enters the engine.
#[inline]
pub fn finite_or(v: f32, default: f32, lo: f32, hi: f32) -> f32 {
    if v.is_finite() {
        v.clamp(lo, hi)
    } else {
        default
    }
}

/// The controls of one frame: the model's inputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrameControls {
    /// Fundamental frequency in Hz.
    pub f0_hz: f32,
    /// Loudness in dB, in the model's own measure (`ModelMeta::loudness_measure`):
    /// A-weighted dBFS for our models, the NEWT authors' dB for theirs.
    pub loudness_db: f32,
}

impl FrameControls {
    pub const SILENT: Self = Self {
        f0_hz: 0.0,
        loudness_db: LOUDNESS_FLOOR_DB,
    };

    /// Maps any input to a finite, in-range control: NaN and negative f0 become 0 Hz,
    /// f0 is capped at the model's Nyquist frequency (every harmonic is silent beyond),
    /// loudness is clamped to [-120, 20] dB.
    pub fn sanitized(self, nyquist_hz: f32) -> Self {
        self.sanitized_within(nyquist_hz, LOUDNESS_FLOOR_DB, LOUDNESS_CEIL_DB)
    }

    /// As [`sanitized`](Self::sanitized), with loudness clamped to `[floor_db, ceiling_db]`
    /// (a model's own silence and ceiling; NaN becomes the floor).
    pub fn sanitized_within(self, nyquist_hz: f32, floor_db: f32, ceiling_db: f32) -> Self {
        let f0 = if self.f0_hz.is_finite() {
            self.f0_hz.clamp(0.0, nyquist_hz)
        } else if self.f0_hz == f32::INFINITY {
            nyquist_hz
        } else {
            0.0
        };
        let l = if self.loudness_db.is_nan() {
            floor_db
        } else {
            self.loudness_db.clamp(floor_db, ceiling_db)
        };
        Self {
            f0_hz: f0,
            loudness_db: l,
        }
    }
}
