//! Model loading, off the audio thread: the background task that builds an engine for a
//! model request and offers it to the audio thread, and the status the editor shows.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use newt_engine::{Engine, EngineConfig};
use newt_model::NewtModel;

use crate::audio_input::{AudioInputError, AudioInputTracker};
use crate::handover::{EngineHandover, LoadedEngine, ModelRequest};
use crate::library;
use crate::params::UserModelPath;
use crate::telemetry::Telemetry;

/// The audio-input tracker for an engine's rates, its latency including the engine's.
fn tracker_for(engine: &Engine) -> Result<AudioInputTracker, AudioInputError> {
    AudioInputTracker::new(
        engine.config().host_sample_rate,
        &engine.model().meta,
        engine.latency_samples(),
    )
}

/// Background work the plugin schedules (from `process` or the editor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Load the model a request names and hand its engine to the audio thread.
    Load(ModelRequest),
    /// Free engines the audio thread has retired.
    Collect,
}

/// What the editor shows about the model.
#[derive(Clone, Debug, Default)]
pub struct ModelStatus {
    /// Name of the model the audio thread is playing.
    pub playing: String,
    /// The model itself, for drawing its transfer curves.
    pub model: Option<Arc<NewtModel>>,
    /// The last load's error, cleared by the next successful load.
    pub error: Option<String>,
}

/// Loads remembered so that the model an adopted request names can be found (the few
/// most recent; a request older than these is long gone from the audio thread).
const REMEMBERED_LOADS: usize = 8;

/// No engine adopted yet.
const NONE_ADOPTED: u64 = u64::MAX;

/// A request packed into one word for the audio thread to publish.
fn pack(r: ModelRequest) -> u64 {
    ((r.choice_index as u32 as u64) << 32) | (r.user_generation & 0xffff_ffff)
}

#[derive(Debug, Default)]
struct Loads {
    /// `(request, name, model)` of the latest successful loads, newest last.
    recent: Vec<(ModelRequest, String, Arc<NewtModel>)>,
    error: Option<String>,
}

/// State shared by the plugin, its loader task and its editor.
#[derive(Debug)]
pub struct Shared {
    pub handover: EngineHandover,
    pub telemetry: Telemetry,
    /// Engine configuration of the current activation (`None` while inactive).
    config: Mutex<Option<EngineConfig>>,
    loads: Mutex<Loads>,
    /// The request of the engine playing, packed; written by whoever installs an engine
    /// (the audio thread on a swap, the main thread in `activate`).
    adopted: AtomicU64,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            handover: EngineHandover::default(),
            telemetry: Telemetry::default(),
            config: Mutex::new(None),
            loads: Mutex::new(Loads::default()),
            adopted: AtomicU64::new(NONE_ADOPTED),
        }
    }
}

impl Shared {
    pub fn set_config(&self, config: Option<EngineConfig>) {
        if let Ok(mut c) = self.config.lock() {
            *c = config;
        }
    }

    pub fn config(&self) -> Option<EngineConfig> {
        self.config.lock().ok().and_then(|c| *c)
    }

    /// The engine answering `request` is now playing. Lock-free (audio thread).
    pub fn set_adopted(&self, request: ModelRequest) {
        self.adopted.store(pack(request), Ordering::Release);
    }

    /// The remembered load of the model playing.
    fn playing(&self, loads: &Loads) -> Option<(ModelRequest, String, Arc<NewtModel>)> {
        let adopted = self.adopted.load(Ordering::Acquire);
        loads
            .recent
            .iter()
            .rev()
            .find(|(r, _, _)| pack(*r) == adopted)
            .cloned()
    }

    pub fn status(&self) -> ModelStatus {
        let Ok(loads) = self.loads.lock() else {
            return ModelStatus::default();
        };
        let playing = self.playing(&loads);
        ModelStatus {
            playing: playing.as_ref().map(|p| p.1.clone()).unwrap_or_default(),
            model: playing.map(|p| p.2),
            error: loads.error.clone(),
        }
    }

    /// Builds the engine a request names at `config`. On failure the status records the
    /// error (and the log says it), and nothing else changes.
    pub fn build(
        &self,
        request: ModelRequest,
        user_model: &UserModelPath,
        config: EngineConfig,
    ) -> Option<Box<LoadedEngine>> {
        let choice = library::choice(request.choice_index);
        let result = library::load(choice, user_model.get().as_deref())
            .map_err(|e| e.to_string())
            .and_then(|(model, name)| {
                let shared_model = Arc::new(model.clone());
                let mut engine = Engine::new(model, config).map_err(|e| e.to_string())?;
                let level_db = newt_engine::reference_level_db(&mut engine);
                let tracker = tracker_for(&engine).map_err(|e| e.to_string())?;
                Ok((engine, tracker, name, shared_model, level_db))
            });
        let Ok(mut loads) = self.loads.lock() else {
            return None;
        };
        match result {
            Ok((engine, tracker, name, model, level_db)) => {
                let level_trim = crate::handover::level_trim(level_db);
                tracing::info!(
                    "model loaded: {name} (reference note {level_db:.1} dBFS, trimmed by {:+.1} dB)",
                    20.0 * level_trim.log10()
                );
                loads.recent.push((request, name.clone(), model));
                if loads.recent.len() > REMEMBERED_LOADS {
                    loads.recent.remove(0);
                }
                loads.error = None;
                Some(Box::new(LoadedEngine {
                    engine,
                    tracker,
                    request,
                    name,
                    level_trim,
                }))
            }
            Err(e) => {
                let message = match self.playing(&loads) {
                    Some((_, playing, _)) => {
                        format!("model load failed: {e} (still playing {playing})")
                    }
                    None => format!("model load failed: {e}"),
                };
                tracing::error!("{message}");
                loads.error = Some(message);
                None
            }
        }
    }

    /// Rebuilds the engine of the model playing at a new configuration (after a
    /// sample-rate change when the requested model cannot be loaded).
    pub fn rebuild_playing(&self, config: EngineConfig) -> Option<Box<LoadedEngine>> {
        let loads = self.loads.lock().ok()?;
        let (request, name, model) = self.playing(&loads)?;
        drop(loads);
        let mut engine = Engine::new((*model).clone(), config).ok()?;
        let level_trim = crate::handover::level_trim(newt_engine::reference_level_db(&mut engine));
        let tracker = tracker_for(&engine).ok()?;
        Some(Box::new(LoadedEngine {
            engine,
            tracker,
            request,
            name,
            level_trim,
        }))
    }

    /// Runs a background task.
    pub fn run(&self, task: Task, user_model: &UserModelPath) {
        self.handover.collect();
        if let Task::Load(request) = task {
            // Inactive: `activate` loads whatever is requested then.
            let Some(config) = self.config() else { return };
            if let Some(engine) = self.build(request, user_model, config) {
                self.handover.offer(engine);
            }
        }
    }
}
