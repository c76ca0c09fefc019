//! The shared plugin scenarios against the VST3 build (`target/bundled/newt.vst3`), hosted
//! with the `vst3` crate at 48 kHz in blocks of 512 samples.
//!
//! Build the bundle first: `cargo xtask bundle newt --release` (`cargo xtask test` does).

use std::path::{Path, PathBuf};
use std::process::Command;

use newt_integration_tests::plugin_host::vst3::Vst3Host;
use newt_integration_tests::plugin_host::{PluginHost, bundle_path, scenarios};

const SAMPLE_RATE: f64 = 48_000.0;
const MAX_BLOCK: i32 = 512;

fn host() -> Vst3Host {
    Vst3Host::load(&bundle_path("newt.vst3"), SAMPLE_RATE, MAX_BLOCK)
}

#[test]
fn note_pitch_matches() {
    scenarios::note_pitch_matches(&mut host());
}

#[test]
fn note_decays_after_release() {
    scenarios::note_decays_after_release(&mut host());
}

#[test]
fn parameter_change_takes_effect() {
    scenarios::parameter_change_takes_effect(&mut host());
}

#[test]
fn model_swap_keeps_the_held_note() {
    let file = scenarios::write_default_model_copy("swap");
    scenarios::model_swap_keeps_the_held_note(&mut host(), &file);
}

#[test]
fn audio_input_follows_the_input_pitch() {
    scenarios::audio_input_follows_the_input_pitch(&mut host());
}

#[test]
fn state_restores_into_new_instance() {
    scenarios::state_restores_into_new_instance(&mut || Box::new(host()) as Box<dyn PluginHost>);
}

/// Set in the child process that runs the corrupt-model scenario.
const CHILD_ENV: &str = "NEWT_VST3_TEST_CHILD";
/// Name of the corrupt model file (the logged failure must name it).
const CORRUPT_FILE: &str = "corrupt.safetensors";

/// Runs in a child process of this test binary, so that the plugin's log (its own stderr,
/// which the test harness cannot capture in-process) can be read: the scenario must pass
/// there, and the log must say that the model load failed.
#[test]
fn corrupt_user_model_keeps_playing() {
    const NAME: &str = "corrupt_user_model_keeps_playing";
    if std::env::var_os(CHILD_ENV).is_some() {
        let dir = TempDir::new("corrupt-model");
        let file = dir.path().join(CORRUPT_FILE);
        std::fs::write(&file, scenarios::truncated_model_bytes()).expect("write the corrupt model");
        scenarios::corrupt_user_model_keeps_playing(&mut host(), &file);
        return;
    }
    bundle_path("newt.vst3");
    let exe = std::env::current_exe().expect("the test binary's path");
    let child = Command::new(&exe)
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .env("NICE_LOG", "stderr")
        .output()
        .expect("run the scenario in a child process");
    let stdout = String::from_utf8_lossy(&child.stdout);
    let stderr = String::from_utf8_lossy(&child.stderr);
    assert!(
        child.status.success(),
        "the scenario failed in the child process ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        child.status
    );
    assert!(
        stdout.contains(&format!("test {NAME} ... ok")),
        "the child process did not run the scenario:\n{stdout}"
    );
    let failure = stderr
        .lines()
        .find(|l| l.contains("model load failed"))
        .unwrap_or_else(|| panic!("no \"model load failed\" in the plugin's log:\n{stderr}"));
    assert!(
        failure.contains(CORRUPT_FILE),
        "the logged failure does not name the file: {failure}"
    );
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path =
            std::env::temp_dir().join(format!("newt-plugin-vst3-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temp dir");
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// VST3's latency rule: a plugin whose latency changes calls
/// `IComponentHandler::restartComponent(kLatencyChanged)`, and the host reads the new
/// latency after restarting it. Switching the input mode while a note plays changes the
/// latency (MIDI: the engine's few ms; audio: the tracker's tens of ms).
#[test]
fn latency_change_asks_for_a_restart() {
    use std::time::Duration;
    const LATENCY_CHANGED: i32 = vst3::Steinberg::Vst::RestartFlags_::kLatencyChanged;
    let mut host = host();
    let midi_latency = host.latency_samples();
    host.note_on(60, 0.8);
    host.process(None, 4800, MAX_BLOCK as usize);
    host.take_restart_requests(Duration::ZERO);
    for (mode, back_to_midi) in [(1.0, false), (0.0, true)] {
        host.set_param("Input", mode);
        host.process(None, 4800, MAX_BLOCK as usize);
        let flags = host.take_restart_requests(Duration::from_secs(2));
        assert!(
            flags.iter().any(|f| f & LATENCY_CHANGED != 0),
            "no restartComponent(kLatencyChanged) after Input = {mode}: {flags:?}"
        );
        let latency = host.restart_for_latency();
        println!("Input = {mode}: restartComponent {flags:?}, latency {latency} samples");
        assert_eq!(latency == midi_latency, back_to_midi, "latency {latency}");
        let out = host.process(None, 4800, MAX_BLOCK as usize);
        assert!(out.iter().all(|x| x.is_finite()));
    }
}

/// Every host rate from 1 kHz to 768 kHz activates and plays in tune, finite and without
/// subnormals (the CLAP validator's `process-varying-sample-rates`).
#[test]
fn plays_in_tune_at_odd_rates() {
    for rate in scenarios::ODD_RATES {
        let mut host = Vst3Host::load(&bundle_path("newt.vst3"), rate, MAX_BLOCK);
        scenarios::note_in_tune_at_any_rate(&mut host);
    }
}

/// The session stress test in the VST3 build (`scenarios::stress`).
#[test]
fn stress_model_changes_and_automation() {
    let mut host = host();
    let level = scenarios::stress(&mut host, 200, 200);
    assert!(level > scenarios::SILENT_RMS);
}

#[test]
fn factory_presets_load_and_change_the_sound() {
    scenarios::factory_presets_load_and_change_the_sound(&mut host());
}
