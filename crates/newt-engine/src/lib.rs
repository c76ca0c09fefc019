//! The real-time NEWT / FastNEWT engine (Hayes et al., ISMIR 2021), in plain Rust.
//!
//! Data flows one way: note events or per-frame controls -> [`NoteDriver`] -> [`Voice`]s
//! (control encoder, exciter, FiLM, shapers, noise at the model rate) -> one shared
//! [`ReverbConvolver`] -> [`RateConverter`] -> host-rate output.
//!
//! Real-time rules, in one place: [`Engine::new`] (and [`PreparedModel::new`]) allocate
//! everything; [`Engine::process`] never allocates, locks, logs or touches files, does a
//! bounded amount of work per sample, keeps all state across blocks, produces output that
//! does not depend on the host's block size, and never lets NaN or Inf out. This crate
//! never depends on candle.

// The audio thread must never unwind into a host: no `unwrap`, `expect` or `panic!` outside
// tests; a broken invariant is a handled case (issue 21).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod allocator;
pub mod controls;
pub mod controls_csv;
pub mod driver;
pub mod engine;
pub mod error;
pub mod kernels;
pub mod midi_file;
pub mod nets;
mod noise_filter;
pub mod nws_noise;
pub mod offline;
mod prepared;
pub mod rate;
pub mod reverb;
pub mod shaper;
pub mod voice;

pub use allocator::{Assignment, VoiceAllocator, VoiceMode};
pub use controls::FrameControls;
pub use controls_csv::{ControlsCsvError, format_controls_csv, parse_controls_csv};
pub use driver::{ChannelState, NoteDriver, NoteParams};
pub use engine::{Drive, Engine, EngineConfig, EngineParams, Event, EventKind, LiveVoice};
pub use error::{EngineError, ProcessError};
pub use nws_noise::{NwsNoise, NwsNoisePlan};
pub use offline::{
    TimedEvent, controls_to_events, reference_level_db, render_aligned_to_vec,
    render_controls_to_vec, render_to_vec,
};
pub use rate::{RateConverter, RateError, SampleFifo};
pub use reverb::ReverbConvolver;
pub use shaper::{ShaperPath, ShaperTables, TableSpec};
pub use voice::{FrameNetworks, PreparedModel, Voice, VoiceParams};
