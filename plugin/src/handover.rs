//! Lock-free hand-over of ready engines between the loader thread and the audio thread.
//!
//! The loader builds a whole [`Engine`] for a model (tables, FFT plans, buffers) off the
//! audio thread and `offer`s it; the audio thread `take`s it between blocks and `retire`s
//! the engine it replaces; the loader (or the plugin's destructor) `collect`s retired
//! engines and frees them. The audio thread never allocates or frees.

use crossbeam::queue::ArrayQueue;
use newt_engine::Engine;

use crate::audio_input::AudioInputTracker;

/// What the model parameter and user file asked for; an engine is tagged with the request
/// it answers so that the audio thread can tell a stale answer from the current one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelRequest {
    pub choice_index: i32,
    /// Generation of the user model path when the request was made.
    pub user_generation: u64,
}

/// An engine with the model it plays, and the audio-input tracker made for its rates.
#[derive(Debug)]
pub struct LoadedEngine {
    pub engine: Engine,
    pub tracker: AudioInputTracker,
    pub request: ModelRequest,
    pub name: String,
    /// Linear gain that brings the model's reference note to [`REFERENCE_LEVEL_DB`].
    pub level_trim: f32,
}

/// Level every model's reference note is trimmed to (dBFS RMS; see
/// `newt_engine::reference_level_db`), so that models trained on quiet and on loud
/// recordings play at one level.
pub const REFERENCE_LEVEL_DB: f32 = -18.0;
/// The trim stays within these bounds (dB).
pub const MAX_TRIM_DB: f32 = 40.0;
pub const MIN_TRIM_DB: f32 = -20.0;

/// The trim for a model whose reference note plays at `level_db`.
pub fn level_trim(level_db: f32) -> f32 {
    let db = (REFERENCE_LEVEL_DB - level_db).clamp(MIN_TRIM_DB, MAX_TRIM_DB);
    10f32.powf(db / 20.0)
}

/// Capacity of each queue: a few loads can be in flight; older offers are dropped.
const CAPACITY: usize = 4;

#[derive(Debug)]
pub struct EngineHandover {
    incoming: ArrayQueue<Box<LoadedEngine>>,
    retired: ArrayQueue<Box<LoadedEngine>>,
}

impl Default for EngineHandover {
    fn default() -> Self {
        Self {
            incoming: ArrayQueue::new(CAPACITY),
            retired: ArrayQueue::new(CAPACITY),
        }
    }
}

impl EngineHandover {
    /// Off the audio thread: queues a ready engine, dropping the oldest waiting one if the
    /// queue is full (a newer request supersedes it anyway).
    pub fn offer(&self, engine: Box<LoadedEngine>) {
        if let Some(dropped) = self.incoming.force_push(engine) {
            drop(dropped);
        }
    }

    /// Audio thread: the next ready engine, if any. Wait-free.
    pub fn take(&self) -> Option<Box<LoadedEngine>> {
        self.incoming.pop()
    }

    /// Audio thread: hands an engine back to be freed elsewhere. Returns it if the queue
    /// is full (the caller keeps it and retries on a later block).
    pub fn retire(&self, engine: Box<LoadedEngine>) -> Result<(), Box<LoadedEngine>> {
        self.retired.push(engine)
    }

    /// Off the audio thread: frees every retired engine.
    pub fn collect(&self) {
        while let Some(e) = self.retired.pop() {
            drop(e);
        }
    }

    /// Off the audio thread: drops every waiting engine (after a reconfiguration).
    pub fn clear_incoming(&self) {
        while let Some(e) = self.incoming.pop() {
            drop(e);
        }
    }
}

#[cfg(test)]
mod level_tests {
    use super::*;

    #[test]
    fn trims_bring_models_to_the_reference_level_within_bounds() {
        let db = |g: f32| 20.0 * g.log10();
        assert!(db(level_trim(REFERENCE_LEVEL_DB)).abs() < 1e-4);
        assert!((db(level_trim(-43.0)) - 25.0).abs() < 1e-3);
        assert!((db(level_trim(-120.0)) - MAX_TRIM_DB).abs() < 1e-3);
        assert!((db(level_trim(10.0)) - MIN_TRIM_DB).abs() < 1e-3);
    }
}
