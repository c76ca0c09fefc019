//! The CLAP bundle (`target/bundled/newt.clap`) in a real host (clack-host): the shared
//! scenarios at 48 kHz in blocks of 512, a corrupt user model reported in the plugin's log,
//! and the allocation-checked debug build playing without aborting.
//!
//! The log and allocation checks run their scenario in a child process (this test binary
//! again, running one `#[ignore]`d test): the plugin's logger reads `NICE_LOG` once per
//! process, and an allocation in `process` aborts the whole process.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use newt_integration_tests::plugin_host::clap::ClapHost;
use newt_integration_tests::plugin_host::{PluginHost, bundle_path, scenarios};
use newt_integration_tests::rms;

const SAMPLE_RATE: f64 = 48_000.0;
const BLOCK: u32 = 512;
/// Environment variable naming the corrupt model file for the child test.
const CORRUPT_MODEL_ENV: &str = "NEWT_TEST_CORRUPT_MODEL";
/// What the plugin logs when a model does not load.
const LOAD_FAILED: &str = "model load failed";
/// What the allocation-checked child prints, for the parent to read.
const ALLOC_RMS_TAG: &str = "alloc-checked rms:";

fn host() -> ClapHost {
    ClapHost::load(&bundle_path("newt.clap"), SAMPLE_RATE, BLOCK)
}

/// A fresh directory under the system temp dir.
fn temp_dir(tag: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!(
        "newt-{tag}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// A model file cut short: the first half of the default model's file.
fn write_corrupt_model(dir: &Path) -> PathBuf {
    let path = dir.join("truncated.safetensors");
    std::fs::write(&path, scenarios::truncated_model_bytes()).expect("write corrupt model");
    path
}

/// Runs the `#[ignore]`d test `name` of this binary in a child process.
fn run_child(name: &str, envs: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(std::env::current_exe().expect("current exe"));
    cmd.args([
        "--exact",
        name,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("spawn the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child {name} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("1 passed"),
        "child {name} did not run exactly one test:\n{stdout}"
    );
    out
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

#[test]
fn corrupt_user_model_is_reported_and_keeps_playing() {
    bundle_path("newt.clap");
    let dir = temp_dir("corrupt-model");
    let model = write_corrupt_model(&dir);
    let log = dir.join("nice.log");
    run_child(
        "child_corrupt_user_model",
        &[(CORRUPT_MODEL_ENV, &model), ("NICE_LOG", &log)],
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains(LOAD_FAILED),
        "the plugin's log ({}) does not say {LOAD_FAILED:?}:\n{text}",
        log.display()
    );
    assert!(
        text.contains("truncated.safetensors"),
        "the logged failure does not name the file:\n{text}"
    );
    eprintln!("--- plugin log\n{text}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
#[ignore = "run in a child process by corrupt_user_model_is_reported_and_keeps_playing"]
fn child_corrupt_user_model() {
    let model = PathBuf::from(
        std::env::var_os(CORRUPT_MODEL_ENV).expect("the parent names the corrupt model"),
    );
    let mut host = host();
    scenarios::corrupt_user_model_keeps_playing(&mut host, &model);
    drop(host);
    // The logger writes from a background thread; wait until the line is out (or give up
    // and let the parent report what is there) so that exiting does not lose it.
    if let Some(log) = std::env::var_os("NICE_LOG") {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains(LOAD_FAILED) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A project saved with Model = Violin (2) or "User file" (3), as NEWT saved it when the
/// parameter had four values, restores the same choice in this build: the host reads the
/// same value and name, and the plugin's log shows the violin loading, then the user file
/// being asked for (none is chosen, so the violin plays on).
#[test]
fn a_saved_model_keeps_its_choice() {
    bundle_path("newt.clap");
    let dir = temp_dir("saved-model");
    let log = dir.join("nice.log");
    run_child("child_saved_model", &[("NICE_LOG", &log)]);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let at = |what: &str| {
        text.find(what)
            .unwrap_or_else(|| panic!("the plugin's log does not say {what:?}:\n{text}"))
    };
    let flute = at("model loaded: Flute");
    let violin = at("model loaded: Violin");
    let user = at(SAVED_MODEL_LAST);
    assert!(
        flute < violin && violin < user,
        "the loads are out of order:\n{text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// What the plugin logs last in `child_saved_model`.
const SAVED_MODEL_LAST: &str = "no user model file chosen (still playing Violin)";

#[test]
#[ignore = "run in a child process by a_saved_model_keeps_its_choice"]
fn child_saved_model() {
    let mut host = host();
    assert_eq!(
        host.param("Model"),
        scenarios::MODEL_FLUTE as f64,
        "default"
    );
    assert_eq!(host.param_text("Model"), "Flute", "default");
    scenarios::saved_model_value_restores(&mut host, scenarios::MODEL_VIOLIN);
    assert_eq!(host.param_text("Model"), "Violin");
    scenarios::saved_model_value_restores(&mut host, scenarios::MODEL_USER_FILE);
    assert_eq!(host.param_text("Model"), "User file");
    drop(host);
    if let Some(log) = std::env::var_os("NICE_LOG") {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains(SAVED_MODEL_LAST) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn debug_build_with_allocation_checks_renders() {
    bundle_path("alloc-checked/newt.clap");
    let dir = temp_dir("alloc-checked");
    let log = dir.join("nice.log");
    let out = run_child("child_alloc_checked", &[("NICE_LOG", &log)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let level: f64 = stdout
        .lines()
        .find_map(|l| l.split_once(ALLOC_RMS_TAG).map(|(_, v)| v))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("the child printed no {ALLOC_RMS_TAG:?} line:\n{stdout}"));
    assert!(
        level > scenarios::SILENT_RMS,
        "the allocation-checked build rendered silence (RMS {level:.3e})"
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    eprintln!("--- alloc-checked plugin log\n{text}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
#[ignore = "run in a child process by debug_build_with_allocation_checks_renders"]
fn child_alloc_checked() {
    let mut host = ClapHost::load(&bundle_path("alloc-checked/newt.clap"), SAMPLE_RATE, BLOCK);
    let block = BLOCK as usize;
    let step = 4800; // 0.1 s, not a multiple of the block: events land mid-stream
    let mut out = Vec::new();
    // A melody with releases and retriggers.
    for &note in &[60u8, 64, 67, 72] {
        host.note_on(note, 0.7);
        out.extend(host.process(None, 2 * step, block));
        host.note_off(note);
        out.extend(host.process(None, step, 7));
    }
    // Poly chords (mode switch through a parameter), with pitch bend and odd block sizes.
    host.set_param("Voicing", 1.0);
    for chord in [[57u8, 60, 64], [55, 59, 62]] {
        for &n in &chord {
            host.note_on(n, 0.6);
        }
        out.extend(host.process(None, step, 333));
        host.pitch_bend(0.5);
        out.extend(host.process(None, step, block));
        host.pitch_bend(-0.25);
        out.extend(host.process(None, step, 64));
        host.pitch_bend(0.0);
        for &n in &chord {
            host.note_off(n);
        }
        out.extend(host.process(None, step, block));
    }
    // Parameter changes while a note sounds.
    host.note_on(69, 0.8);
    host.set_param("Output gain", -6.0);
    host.set_param("Semitone", 3.0);
    out.extend(host.process(None, 2 * step, block));
    host.note_off(69);
    out.extend(host.process(None, step, block));
    // The session stress, shorter (a debug build loads models slowly): model changes
    // under a 16-voice chord, every parameter automated every block, input mode toggles.
    scenarios::stress(&mut host, 16, 48);

    if let Some(i) = out.iter().position(|v| !v.is_finite()) {
        panic!("sample {i} is {}", out[i]);
    }
    let level = rms(&out);
    assert!(
        level > scenarios::SILENT_RMS,
        "the allocation-checked build rendered silence (RMS {level:.3e})"
    );
    println!("{ALLOC_RMS_TAG} {level:.6e}");
}

/// CLAP's latency rule: `latency.changed` only inside `activate`; a plugin whose latency
/// changes while active asks for a restart. Switching the input mode (MIDI: the engine's
/// few ms; audio: the tracker's tens of ms) changes the latency: once with a host that
/// serves the main thread between blocks, once with one that pauses the plugin first (as
/// the CLAP validator's `param-fuzz-sample-accurate` does).
#[test]
fn latency_is_reported_only_inside_activate() {
    let mut host = host();
    host.set_realtime(false);
    let midi_latency = host.latency_samples();
    host.note_on(60, 0.8);
    host.process(None, 4800, BLOCK as usize);

    host.set_param("Input", 1.0);
    host.process(None, 4800, BLOCK as usize);
    host.process(None, 512, BLOCK as usize);
    let audio_latency = host.latency_samples();
    assert_ne!(audio_latency, midi_latency, "the input modes' latencies");
    assert!(host.restarts() >= 1, "no restart was requested");

    host.set_defer_main_thread(true);
    host.set_param("Input", 0.0);
    host.process(None, 4800, BLOCK as usize);
    host.set_defer_main_thread(false);
    host.pause_and_resume();
    assert_eq!(host.latency_samples(), midi_latency);
    let out = host.process(None, 4800, BLOCK as usize);
    assert!(out.iter().all(|x| x.is_finite()));

    let (inside, elsewhere) = host.latency_notifications();
    println!(
        "latency {midi_latency} (MIDI) / {audio_latency} (audio) samples; latency.changed: \
         {inside} inside activate, {elsewhere} elsewhere; {} restarts",
        host.restarts()
    );
    assert_eq!(elsewhere, 0, "latency.changed was called outside activate");
    assert!(
        inside >= 2,
        "the two changes were not reported in activate ({inside})"
    );
}

/// Every host rate from 1 kHz to 768 kHz activates and plays in tune, finite and without
/// subnormals (the CLAP validator's `process-varying-sample-rates`).
#[test]
fn plays_in_tune_at_odd_rates() {
    for rate in scenarios::ODD_RATES {
        let mut host = ClapHost::load(&bundle_path("newt.clap"), rate, BLOCK);
        host.set_realtime(false);
        scenarios::note_in_tune_at_any_rate(&mut host);
    }
}

/// The session stress test in the CLAP build (`scenarios::stress`): 200 model changes
/// under a held 16-voice chord, then every parameter automated every block.
#[test]
fn stress_model_changes_and_automation() {
    let mut host = host();
    host.set_realtime(false);
    let level = scenarios::stress(&mut host, 200, 200);
    assert!(level > scenarios::SILENT_RMS);
}

#[test]
fn factory_presets_load_and_change_the_sound() {
    scenarios::factory_presets_load_and_change_the_sound(&mut host());
}
