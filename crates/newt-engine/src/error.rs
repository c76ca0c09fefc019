//! The engine's errors: [`EngineError`] from building an engine or a voice (off the audio
//! thread), [`ProcessError`] from the real-time call (`Copy`, never allocating).

use crate::shaper::TableSpec;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "host sample rate {0} Hz is outside the supported 1000..=768000 Hz (or the model's own rate)"
    )]
    UnsupportedSampleRate(u32),
    #[error("max block size must be at least 1")]
    ZeroBlock,
    #[error("FastNEWT table needs at least 2 points over a non-empty finite range, got {0:?}")]
    BadTable(TableSpec),
    #[error(transparent)]
    Resampler(#[from] crate::rate::RateError),
}

/// Errors of the real-time call: `Copy`, never allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProcessError {
    #[error("block of {actual} samples exceeds the configured maximum of {max}")]
    BlockTooLarge { max: usize, actual: usize },
}
