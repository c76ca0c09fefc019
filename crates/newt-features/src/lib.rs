//! Control features from audio: fundamental frequency with a voicing confidence, and
//! loudness, on the model's frame grid (hop 128 at 16 kHz). Loudness comes in the two
//! measures of [`LoudnessMeasure`]: this project's A-weighted dBFS ([`loudness`]) and the
//! NEWT authors' file-relative measure ([`nws_loudness`]).
//!
//! Every feature exists as a streaming processor (block by block, bounded latency, no
//! allocation after construction) and as an offline function over a whole signal that
//! runs the very same per-frame code, so datasets and the plugin's audio-input mode see
//! identical features. Frame `f` is centred on sample `f * hop`.

mod controls;
mod framer;
pub mod live;
pub mod loudness;
pub mod nws_loudness;
pub mod pitch;
pub mod resample;
pub mod spectral;
pub mod wav;

pub use controls::{
    AnyLoudnessMeter, ControlExtractor, ControlFrame, extract_controls, extract_controls_with,
};
pub use framer::Framer;
pub use live::LiveTracking;
pub use loudness::{LoudnessMeter, a_weighting_db, loudness_db};
pub use newt_model::LoudnessMeasure;
pub use nws_loudness::{NwsLoudnessMeter, nws_db_from_normalised, nws_loudness_db, nws_normalised};
pub use pitch::{PitchConfig, PitchEstimate, PitchTracker, YinWindow, track_pitch};
pub use resample::{ResampleError, resample};
pub use wav::{WavError, read_wav, read_wav_bytes, write_pcm16};

/// Errors of feature extraction.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FeatureError {
    #[error("sample rate {0} Hz is not supported (8000..=192000)")]
    SampleRate(u32),
    #[error("hop of {0} samples is not supported")]
    Hop(usize),
    #[error("pitch range {lo}..{hi} Hz is invalid at {sample_rate} Hz")]
    PitchRange { lo: f32, hi: f32, sample_rate: u32 },
    #[error("the NEWT authors' loudness is defined at 16000 Hz only (got {0} Hz): resample first")]
    NwsSampleRate(u32),
    #[error("loudness reference floor {0} dBFS is not finite")]
    ReferenceFloor(f32),
}

pub(crate) fn check_rate_and_hop(sample_rate: u32, hop: usize) -> Result<(), FeatureError> {
    if !(8_000..=192_000).contains(&sample_rate) {
        return Err(FeatureError::SampleRate(sample_rate));
    }
    if hop == 0 || hop > 8192 {
        return Err(FeatureError::Hop(hop));
    }
    Ok(())
}
