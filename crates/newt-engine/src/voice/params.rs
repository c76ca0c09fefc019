//! The voice's settings and limits, which every stage of the voice reads.

use crate::shaper::ShaperPath;

/// Per-block sound-shaping settings of the voices.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VoiceParams {
    pub shaper: ShaperPath,
    /// Affine transforms of the shaper inputs and outputs (the paper's "simple affine
    /// transformations" that make NEWT playable): `u' = in_gain u + in_offset`,
    /// `s' = out_gain s`.
    pub shaper_in_gain: f32,
    pub shaper_in_offset: f32,
    pub shaper_out_gain: f32,
    /// Linear gains of the harmonic (waveshaper) and noise branches.
    pub harmonic_gain: f32,
    pub noise_gain: f32,
}

impl Default for VoiceParams {
    fn default() -> Self {
        Self {
            shaper: ShaperPath::Table,
            shaper_in_gain: 1.0,
            shaper_in_offset: 0.0,
            shaper_out_gain: 1.0,
            harmonic_gain: 1.0,
            noise_gain: 1.0,
        }
    }
}

/// Most frames a voice renders in one call: the networks run on all of them at once,
/// reading each weight once per batch instead of once per frame.
pub const MAX_BATCH: usize = 8;
