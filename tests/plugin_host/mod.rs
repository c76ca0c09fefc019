//! Real plugin hosts for the bundled NEWT plugin, behind one trait so that every test
//! scenario runs, unchanged, against the CLAP build (clack-host) and the VST3 build (the
//! `vst3` crate).
//!
//! The bundles come from `cargo xtask bundle newt --release` (`target/bundled/newt.clap`,
//! `target/bundled/newt.vst3`); `cargo xtask test` builds them before running the tests.

pub mod clap;
pub mod scenarios;
pub mod vst3;

use std::path::PathBuf;

/// Stereo output in, stereo output out; the tests read the left channel.
pub trait PluginHost {
    /// Host sample rate in Hz.
    fn sample_rate(&self) -> f64;
    /// Latency the plugin reports, in samples.
    fn latency_samples(&mut self) -> u32;
    /// Sets a parameter, found by its display name ("Semitone", "Output gain", ...), to a
    /// plain (unnormalised) value; takes effect from the next `process` call.
    fn set_param(&mut self, name: &str, plain: f64);
    /// Current plain value of a parameter, by display name.
    fn param(&mut self, name: &str) -> f64;
    /// Queues a note-on (MIDI note number, velocity in [0, 1]) at the start of the next
    /// `process` call.
    fn note_on(&mut self, note: u8, velocity: f32);
    fn note_off(&mut self, note: u8);
    /// Renders `frames` samples in blocks of at most `block` (queued events go into the
    /// first block). `input`, when given, is fed to both input channels (it must hold
    /// `frames` samples). Returns the left output channel.
    fn process(&mut self, input: Option<&[f32]>, frames: usize, block: usize) -> Vec<f32>;
    /// The plugin's saved state (opaque bytes).
    fn save_state(&mut self) -> Vec<u8>;
    /// Restores a state saved by `save_state` (possibly edited).
    fn load_state(&mut self, state: &[u8]);
}

/// Workspace root (the tests package lives one level below it).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Path of a bundle in `target/bundled`, with a clear failure when it is missing.
pub fn bundle_path(file_name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let path = target.join("bundled").join(file_name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask bundle newt --release` first (`cargo xtask test` does)",
        path.display()
    );
    path
}
