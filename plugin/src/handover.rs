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
