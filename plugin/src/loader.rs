//! Model loading, off the audio thread: the background task that builds an engine for a
//! model request and offers it to the audio thread, and the status the editor shows.

use std::sync::{Arc, Mutex};

use newt_engine::{Engine, EngineConfig};
use newt_model::NewtModel;

use crate::audio_input::AudioInputTracker;
use crate::handover::{EngineHandover, LoadedEngine, ModelRequest};
use crate::library;
use crate::params::UserModelPath;
use crate::telemetry::Telemetry;

/// The audio-input tracker for an engine's rates, its latency including the engine's.
fn tracker_for(engine: &Engine) -> Result<AudioInputTracker, String> {
    let meta = &engine.model().meta;
    AudioInputTracker::new(
        engine.config().host_sample_rate,
        meta.sample_rate,
        meta.hop,
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
    /// Name of the model playing (or about to, once the audio thread takes it).
    pub playing: String,
    /// The model itself, for drawing its transfer curves.
    pub model: Option<Arc<NewtModel>>,
    /// The last load's error, cleared by the next successful load.
    pub error: Option<String>,
}

/// State shared by the plugin, its loader task and its editor.
#[derive(Debug, Default)]
pub struct Shared {
    pub handover: EngineHandover,
    pub telemetry: Telemetry,
    /// Engine configuration of the current activation (`None` while inactive).
    config: Mutex<Option<EngineConfig>>,
    status: Mutex<ModelStatus>,
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

    pub fn status(&self) -> ModelStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn update_status(&self, f: impl FnOnce(&mut ModelStatus)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
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
                let engine = Engine::new(model, config).map_err(|e| e.to_string())?;
                let tracker = tracker_for(&engine)?;
                Ok((engine, tracker, name, shared_model))
            });
        match result {
            Ok((engine, tracker, name, model)) => {
                tracing::info!("model loaded: {name}");
                self.update_status(|s| {
                    s.playing = name.clone();
                    s.model = Some(model);
                    s.error = None;
                });
                Some(Box::new(LoadedEngine {
                    engine,
                    tracker,
                    request,
                    name,
                }))
            }
            Err(e) => {
                let playing = self.status().playing;
                let message = if playing.is_empty() {
                    format!("model load failed: {e}")
                } else {
                    format!("model load failed: {e} (still playing {playing})")
                };
                tracing::error!("{message}");
                self.update_status(|s| s.error = Some(message));
                None
            }
        }
    }

    /// Rebuilds the engine of the model now playing at a new configuration (after a
    /// sample-rate change when the requested model cannot be loaded).
    pub fn rebuild_current(
        &self,
        request: ModelRequest,
        config: EngineConfig,
    ) -> Option<Box<LoadedEngine>> {
        let status = self.status();
        let model = status.model?;
        let engine = Engine::new((*model).clone(), config).ok()?;
        let tracker = tracker_for(&engine).ok()?;
        Some(Box::new(LoadedEngine {
            engine,
            tracker,
            request,
            name: status.playing,
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
