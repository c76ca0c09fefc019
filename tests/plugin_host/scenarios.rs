//! Host-agnostic test scenarios: each drives the plugin only through [`PluginHost`], so the
//! CLAP and VST3 test binaries run the same checks. They render in blocks of 512 at the
//! host's sample rate, and measure the left output channel.

use std::path::Path;

use realfft::RealFftPlanner;
use serde_json::Value;

use super::{PluginHost, workspace_root};
use crate::{cents, fundamental_hz, rms};

/// Block size of every scenario.
pub const BLOCK: usize = 512;
/// The note every scenario plays: A4.
pub const NOTE: u8 = 69;
pub const NOTE_HZ: f64 = 440.0;
pub const VELOCITY: f32 = 0.8;
/// Pitch tolerance.
pub const MAX_CENTS: f64 = 10.0;
/// RMS below which a signal counts as silent (-80 dBFS).
pub const SILENT_RMS: f64 = 1e-4;

fn frames(host: &dyn PluginHost, seconds: f64) -> usize {
    (seconds * host.sample_rate()).round() as usize
}

fn assert_finite(x: &[f32], what: &str) {
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        panic!("{what}: sample {i} is {}", x[i]);
    }
}

fn peak(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

/// Fundamental and RMS of a steady stretch, with the checks every measurement needs.
fn measure(host: &dyn PluginHost, x: &[f32], what: &str) -> (f64, f64) {
    assert_finite(x, what);
    let level = rms(x);
    assert!(
        level > SILENT_RMS,
        "{what}: silent (RMS {level:.3e}, peak {:.3e})",
        peak(x)
    );
    (fundamental_hz(x, host.sample_rate()), level)
}

fn db(ratio: f64) -> f64 {
    20.0 * ratio.log10()
}

/// The strongest spectral peaks of `x` (Hann window, zero-padded), as "Hz (dB re the
/// strongest)", strongest first: what a failed pitch check prints.
fn spectrum_report(x: &[f32], sample_rate: f64) -> String {
    let peaks = spectral_peaks(x, sample_rate);
    let top = peaks.first().map_or(1.0, |p| p.1);
    let list: Vec<String> = peaks
        .iter()
        .take(12)
        .map(|(f, m)| format!("{f:.1} Hz ({:.1} dB)", db(m / top)))
        .collect();
    format!("strongest peaks: {}", list.join(", "))
}

/// Local maxima of the magnitude spectrum above 30 Hz, (frequency, magnitude), strongest
/// first.
fn spectral_peaks(x: &[f32], sample_rate: f64) -> Vec<(f64, f64)> {
    let n = x.len();
    let pad = (4 * n).next_power_of_two();
    let mut buf: Vec<f64> = (0..pad)
        .map(|i| {
            x.get(i).map_or(0.0, |&v| {
                let w = 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n as f64).cos();
                f64::from(v) * w
            })
        })
        .collect();
    let fft = RealFftPlanner::<f64>::new().plan_fft_forward(pad);
    let mut spec = fft.make_output_vec();
    fft.process(&mut buf, &mut spec).expect("FFT sizes match");
    let mag: Vec<f64> = spec.iter().map(|c| c.norm()).collect();
    let bin_hz = sample_rate / pad as f64;
    let first = (30.0 / bin_hz) as usize + 1;
    let mut peaks: Vec<(f64, f64)> = (first..mag.len() - 1)
        .filter(|&k| mag[k] >= mag[k - 1] && mag[k] > mag[k + 1])
        .map(|k| (k as f64 * bin_hz, mag[k]))
        .collect();
    peaks.sort_by(|a, b| b.1.total_cmp(&a.1));
    peaks
}

/// A held A4 plays at 440 Hz (within 10 cents), finite and not silent.
pub fn note_pitch_matches(host: &mut dyn PluginHost) {
    let latency = host.latency_samples() as usize;
    host.note_on(NOTE, VELOCITY);
    let out = host.process(None, latency + frames(host, 1.5), BLOCK);
    assert_finite(&out, "held note");
    // 0.5 s well after the onset: past the latency, the attack and the decay to sustain.
    let start = latency + frames(host, 0.9);
    let window = &out[start..start + frames(host, 0.5)];
    let (f0, level) = measure(host, window, "held A4");
    let off = cents(f0, NOTE_HZ);
    assert!(
        off.abs() < MAX_CENTS,
        "A4 measured {f0:.2} Hz, {off:+.1} cents from 440 Hz (RMS {level:.3e}); {}",
        spectrum_report(window, host.sample_rate())
    );
    host.note_off(NOTE);
    host.process(None, BLOCK, BLOCK);
}

/// Host rates the CLAP validator tries, odd and fractional ones included: from 1 kHz to
/// 768 kHz.
pub const ODD_RATES: [f64; 9] = [
    1_000.0, 8_000.0, 11_025.0, 22_050.0, 44_100.5, 47_999.0, 96_000.0, 352_800.0, 768_000.0,
];

/// At the host's rate, whatever it is: a held note plays in tune (A4; C4 below 2 kHz,
/// where A4 would sit next to Nyquist), every sample finite and none subnormal.
pub fn note_in_tune_at_any_rate(host: &mut dyn PluginHost) {
    let rate = host.sample_rate();
    let (note, hz) = if rate < 2_000.0 {
        (60, 261.625_565)
    } else {
        (NOTE, NOTE_HZ)
    };
    let latency = host.latency_samples() as usize;
    host.note_on(note, VELOCITY);
    let out = host.process(None, latency + frames(host, 1.5), BLOCK);
    assert_finite(&out, "held note");
    if let Some(i) = out
        .iter()
        .position(|v| *v != 0.0 && v.abs() < f32::MIN_POSITIVE)
    {
        panic!("{rate} Hz: sample {i} is subnormal ({:e})", out[i]);
    }
    let start = latency + frames(host, 0.9);
    let window = &out[start..start + frames(host, 0.5)];
    let (f0, level) = measure(host, window, "held note");
    let off = cents(f0, hz);
    println!("{rate} Hz: latency {latency}, note {note} measured {f0:.2} Hz ({off:+.2} cents)");
    assert!(
        off.abs() < MAX_CENTS,
        "{rate} Hz: note {note} measured {f0:.2} Hz, {off:+.1} cents from {hz:.2} Hz (RMS \
         {level:.3e}); {}",
        spectrum_report(window, rate)
    );
    host.note_off(note);
    host.process(None, BLOCK, BLOCK);
}

/// After note-off the release and the reverb tail die away: the last 0.25 s of a 3 s tail
/// is below -80 dBFS, while the held note was well above it.
pub fn note_decays_after_release(host: &mut dyn PluginHost) {
    let latency = host.latency_samples() as usize;
    host.note_on(NOTE, VELOCITY);
    let held = host.process(None, latency + frames(host, 1.0), BLOCK);
    host.note_off(NOTE);
    let tail = host.process(None, frames(host, 3.0), BLOCK);
    assert_finite(&held, "held note");
    assert_finite(&tail, "release tail");
    let held_rms = rms(&held[latency + frames(host, 0.5)..]);
    assert!(
        held_rms > 100.0 * SILENT_RMS,
        "the held note is not loud: RMS {held_rms:.3e} ({:.1} dBFS)",
        db(held_rms)
    );
    let last = &tail[tail.len() - frames(host, 0.25)..];
    let tail_rms = rms(last);
    if tail_rms >= SILENT_RMS {
        // Where the tail stands over time, to tell a slow release from a stuck note.
        let quarter = frames(host, 0.25);
        let profile: Vec<String> = tail
            .chunks(quarter)
            .map(|c| format!("{:.1}", db(rms(c).max(1e-12))))
            .collect();
        panic!(
            "the last 0.25 s of the 3 s after note-off has RMS {tail_rms:.3e} ({:.1} dBFS, \
             must be below -80); held RMS {held_rms:.3e}; tail by quarter second (dBFS): {}",
            db(tail_rms),
            profile.join(" ")
        );
    }
}

/// "Semitone" -5 transposes a held note down a fourth (within 10 cents), and
/// "Output gain" -12 dB lowers the output by 12 dB (within 1.5 dB).
pub fn parameter_change_takes_effect(host: &mut dyn PluginHost) {
    let latency = host.latency_samples() as usize;
    let half = frames(host, 0.5);
    host.note_on(NOTE, VELOCITY);
    let before = host.process(None, latency + frames(host, 1.0), BLOCK);
    let before = &before[before.len() - half..];
    let (f_before, _) = measure(host, before, "A4 before the change");

    // Down a fourth (to E4): the waveshapers run at the model's 16 kHz and their new
    // harmonics above 8 kHz fold back; at higher pitches the folded partials of the
    // untrained seeded model are strong enough to mislead the fundamental estimator.
    host.set_param("Semitone", -5.0);
    let shifted = host.process(None, frames(host, 1.0), BLOCK);
    let semitone = host.param("Semitone");
    assert_eq!(
        semitone, -5.0,
        "\"Semitone\" reads {semitone} after setting -5"
    );
    let shifted = &shifted[shifted.len() - half..];
    let (f_shifted, rms_shifted) = measure(host, shifted, "A4 with Semitone -5");
    let interval = cents(f_shifted, f_before);
    assert!(
        (interval + 500.0).abs() < MAX_CENTS,
        "Semitone -5 moved {f_before:.2} Hz to {f_shifted:.2} Hz: {interval:.1} cents, not -500; \
         before: {}; after: {}",
        spectrum_report(before, host.sample_rate()),
        spectrum_report(shifted, host.sample_rate())
    );

    host.set_param("Output gain", -12.0);
    let quiet = host.process(None, frames(host, 1.0), BLOCK);
    let gain = host.param("Output gain");
    assert!(
        (gain + 12.0).abs() < 1e-3,
        "\"Output gain\" reads {gain} after setting -12"
    );
    let quiet = &quiet[quiet.len() - half..];
    let (f_quiet, rms_quiet) = measure(host, quiet, "at -12 dB");
    let drop = db(rms_shifted / rms_quiet);
    assert!(
        (drop - 12.0).abs() <= 1.5,
        "Output gain -12 dB lowered the RMS by {drop:.2} dB ({rms_shifted:.3e} -> {rms_quiet:.3e})"
    );
    assert!(
        cents(f_quiet, f_shifted).abs() < MAX_CENTS,
        "the gain change moved the pitch: {f_shifted:.2} Hz -> {f_quiet:.2} Hz; {}",
        spectrum_report(quiet, host.sample_rate())
    );

    host.set_param("Output gain", 0.0);
    host.set_param("Semitone", 0.0);
    host.note_off(NOTE);
    host.process(None, BLOCK, BLOCK);
    assert_eq!(host.param("Output gain"), 0.0, "Output gain reset");
    assert_eq!(host.param("Semitone"), 0.0, "Semitone reset");
}

/// The note sequence the state scenario renders on both instances: A4 held 1 s, released,
/// then 0.5 s of tail.
fn play_sequence(host: &mut dyn PluginHost) -> Vec<f32> {
    host.note_on(NOTE, VELOCITY);
    let mut out = host.process(None, frames(host, 1.0), BLOCK);
    host.note_off(NOTE);
    out.extend(host.process(None, frames(host, 0.5), BLOCK));
    out
}

/// A state saved from one instance, loaded into a fresh one, makes it sound the same and
/// read the same parameter values.
pub fn state_restores_into_new_instance(make: &mut dyn FnMut() -> Box<dyn PluginHost>) {
    let settings = [
        ("Semitone", 5.0),
        ("Reverb mix", 0.5),
        ("Output gain", -6.0),
    ];
    let mut a = make();
    for (name, value) in settings {
        a.set_param(name, value);
    }
    // Both instances render the same silence before the notes (A: the settings' smoothing;
    // B: whatever the plugin does on a state load), so both start from the same point.
    let lead_in = frames(a.as_ref(), 0.5);
    a.process(None, lead_in, BLOCK);
    let state = a.save_state();
    let out_a = play_sequence(a.as_mut());

    let mut b = make();
    b.load_state(&state);
    b.process(None, lead_in, BLOCK);
    for (name, value) in settings {
        let got = b.param(name);
        assert!(
            (got - value).abs() < 1e-3,
            "{name:?} reads {got} after loading a state saved at {value}"
        );
    }
    let out_b = play_sequence(b.as_mut());

    assert_finite(&out_a, "instance A");
    assert_finite(&out_b, "instance B");
    let peak_a = peak(&out_a);
    assert!(
        f64::from(peak_a) > 100.0 * SILENT_RMS,
        "instance A is silent (peak {peak_a:.3e})"
    );
    let (worst, diff) = out_a
        .iter()
        .zip(&out_b)
        .map(|(x, y)| (x - y).abs())
        .enumerate()
        .fold((0, 0.0f32), |m, (i, d)| if d > m.1 { (i, d) } else { m });
    let sr = a.sample_rate();
    if diff >= 1e-4 * peak_a {
        let (lag, lag_diff) = best_alignment(&out_a, &out_b, 512);
        panic!(
            "restored instance differs: max |A - B| = {diff:.3e} at sample {worst} \
             ({:.3} s; A {:.4}, B {:.4}), peak {peak_a:.3e}; best alignment: B = A delayed \
             by {lag} samples, max difference then {lag_diff:.3e}",
            worst as f64 / sr,
            out_a[worst],
            out_b[worst]
        );
    }
    // The settings are audible (so that matching outputs mean something): with Semitone 5
    // the strongest partial between 300 Hz and 1 kHz is the fundamental, D5, a fourth above
    // A4 (whose own partials there would be 440 and 880 Hz).
    let latency = a.latency_samples() as usize;
    let window = &out_a[latency + frames(a.as_ref(), 0.4)..latency + frames(a.as_ref(), 0.9)];
    let expected = NOTE_HZ * 2f64.powf(5.0 / 12.0);
    let strongest = spectral_peaks(window, sr)
        .into_iter()
        .find(|p| (300.0..1000.0).contains(&p.0))
        .map_or(0.0, |p| p.0);
    assert!(
        cents(strongest, expected).abs() < MAX_CENTS,
        "instance A with Semitone 5: strongest partial in 300..1000 Hz at {strongest:.2} Hz, \
         not {expected:.2} Hz; {}",
        spectrum_report(window, sr)
    );
    assert_eq!(b.param("Semitone"), 5.0, "B's Semitone");
}

/// The lag (B later than A by `lag` samples, within `max_lag`) that best aligns two
/// renderings, and their largest difference at that lag: tells a timing offset from a
/// different sound.
fn best_alignment(a: &[f32], b: &[f32], max_lag: usize) -> (i64, f32) {
    let n = a.len().min(b.len());
    let m = max_lag as i64;
    (-m..=m)
        .map(|lag| {
            let d = (max_lag..n - max_lag)
                .map(|t| (a[t] - b[(t as i64 + lag) as usize]).abs())
                .fold(0.0f32, f32::max);
            (lag, d)
        })
        .fold((0, f32::MAX), |best, x| if x.1 < best.1 { x } else { best })
}

/// Values of the Model parameter that saved projects hold. They come from the model
/// registry in `plugin/build.rs`, which never renumbers: flute 0, trumpet 1, violin 2,
/// "User file" 3 (the values of the plugin's first release), later models from 4 on.
pub const MODEL_FLUTE: i64 = 0;
pub const MODEL_VIOLIN: i64 = 2;
pub const MODEL_USER_FILE: i64 = 3;
/// The model a new instance plays (`DEFAULT_MODEL` in `plugin/build.rs`).
pub const DEFAULT_MODEL_FILE: &str = "flute.safetensors";

/// The value of the model parameter that selects "User file".
pub fn user_file_model_index() -> i64 {
    MODEL_USER_FILE
}

/// A state saved with the Model parameter at `value`, loaded back: the host's Model reads
/// `value` again, whatever the parameter's range is now. The state is this instance's own
/// with only the model changed, in nice-plug's format (`{"i32": value}`), as NEWT saved it
/// when the parameter had four values (0..=3). Gives the background load time to finish.
pub fn saved_model_value_restores(host: &mut dyn PluginHost, value: i64) {
    let (prefixed, mut json) = split_state(&host.save_state());
    let model = &mut json["params"]["model"];
    assert!(
        model.get("i32").is_some(),
        "the state stores the model parameter as {model}, expected an i32"
    );
    *model = serde_json::json!({ "i32": value });
    host.load_state(&join_state(prefixed, &json));
    host.process(None, frames(host, 0.5), BLOCK);
    let now = host.param("Model");
    assert_eq!(
        now, value as f64,
        "the model parameter reads {now} after loading a state saved at {value}"
    );
    // It plays (the model it names, or the one before when that cannot load).
    let latency = host.latency_samples() as usize;
    host.note_on(NOTE, VELOCITY);
    let out = host.process(None, latency + frames(host, 1.0), BLOCK);
    host.note_off(NOTE);
    host.process(None, frames(host, 0.5), BLOCK);
    let window = &out[out.len() - frames(host, 0.5)..];
    let (f0, _) = measure(
        host,
        window,
        &format!("A4 after the state with model {value}"),
    );
    assert!(
        cents(f0, NOTE_HZ).abs() < MAX_CENTS,
        "with the state's model {value} A4 plays {f0:.2} Hz"
    );
}

/// Splits a saved state into an optional binary prefix and nice-plug's JSON: the CLAP
/// wrapper writes the JSON's length (u64, little endian) before it; VST3 states are the
/// JSON alone.
fn split_state(state: &[u8]) -> (bool, Value) {
    let (prefixed, json) = match state.split_first_chunk::<8>() {
        Some((len, rest)) if u64::from_le_bytes(*len) as usize == rest.len() => (true, rest),
        _ => (false, state),
    };
    let value = serde_json::from_slice(json).unwrap_or_else(|e| {
        panic!(
            "the saved state is not nice-plug JSON ({e}): {}",
            String::from_utf8_lossy(state)
        )
    });
    (prefixed, value)
}

fn join_state(prefixed: bool, json: &Value) -> Vec<u8> {
    let body = serde_json::to_vec(json).expect("JSON serialises");
    let mut out = Vec::with_capacity(body.len() + 8);
    if prefixed {
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    }
    out.extend_from_slice(&body);
    out
}

/// A state that points the model at a corrupt user file makes the plugin fail that load
/// (it logs "model load failed"; the test binary checks the log) and go on playing the
/// held note with the model it had.
/// Points the plugin at a user model file through its saved state (the "user-model"
/// field and the Model parameter's last value, "User file"), as a DAW restoring a
/// project would.
fn load_user_model_through_state(host: &mut dyn PluginHost, file: &Path) {
    let (prefixed, mut json) = split_state(&host.save_state());
    let path = file.to_str().expect("the file's path is UTF-8").to_string();
    let fields = json["fields"]
        .as_object_mut()
        .expect("the state has a fields object");
    assert!(
        fields.contains_key("user-model"),
        "the state has no \"user-model\" field: {:?}",
        fields.keys().collect::<Vec<_>>()
    );
    // Persisted fields are stored as JSON strings of their own JSON.
    fields.insert(
        "user-model".to_string(),
        Value::String(serde_json::to_string(&Some(path)).expect("serialises")),
    );
    let user_file = user_file_model_index();
    let model = &mut json["params"]["model"];
    assert!(
        model.get("i32").is_some(),
        "the state stores the model parameter as {model}, expected an i32"
    );
    *model = serde_json::json!({ "i32": user_file });
    host.load_state(&join_state(prefixed, &json));
}

/// The file bytes of the model the plugin plays by default ([`DEFAULT_MODEL_FILE`]).
pub fn default_model_bytes() -> Vec<u8> {
    let path = workspace_root()
        .join("assets/models")
        .join(DEFAULT_MODEL_FILE);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A model file that must not load: the first half of [`default_model_bytes`].
pub fn truncated_model_bytes() -> Vec<u8> {
    let valid = default_model_bytes();
    assert!(
        newt_model::NewtModel::from_bytes(&valid).is_ok(),
        "the source model is valid"
    );
    let cut = valid[..valid.len() / 2].to_vec();
    assert!(
        newt_model::NewtModel::from_bytes(&cut).is_err(),
        "half a model file must not load"
    );
    cut
}

/// Writes [`default_model_bytes`] into a fresh temporary folder.
pub fn write_default_model_copy(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("newt-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary folder");
    let path = dir.join("copy.safetensors");
    std::fs::write(&path, default_model_bytes()).expect("write the model copy");
    path
}

/// A valid user model (the same weights as the built-in one, from another file) loaded
/// through the state while A4 is held: the engine is swapped on the audio thread, the
/// held note is replayed into the new engine and cross-faded, so the sound never drops
/// out (no 10 ms window more than 6 dB below the level before) and A4 plays on.
pub fn model_swap_keeps_the_held_note(host: &mut dyn PluginHost, model_file: &Path) {
    let latency = host.latency_samples() as usize;
    host.note_on(NOTE, VELOCITY);
    let before = host.process(None, latency + frames(host, 1.0), BLOCK);
    let level = rms(&before[before.len() - frames(host, 0.3)..]);
    load_user_model_through_state(host, model_file);
    let during = host.process(None, frames(host, 1.5), BLOCK);
    assert_finite(&during, "across the swap");
    let window = frames(host, 0.01);
    let quietest = during.chunks(window).map(rms).fold(f64::INFINITY, f64::min);
    assert!(
        quietest > level * 0.5,
        "the held note dropped to {:.1} dB of its level across the model swap",
        db(quietest / level)
    );
    let tail = &during[during.len() - frames(host, 0.5)..];
    let (f0, _) = measure(host, tail, "held A4 after the swap");
    assert!(
        cents(f0, NOTE_HZ).abs() < MAX_CENTS,
        "after the swap A4 plays {f0:.2} Hz"
    );
    host.note_off(NOTE);
    host.process(None, BLOCK, BLOCK);
}

/// See [`load_user_model_through_state`]: a corrupt file leaves the model playing.
pub fn corrupt_user_model_keeps_playing(host: &mut dyn PluginHost, corrupt_file: &Path) {
    let latency = host.latency_samples() as usize;
    host.note_on(NOTE, VELOCITY);
    let before = host.process(None, latency + frames(host, 0.5), BLOCK);
    assert_finite(&before, "before the state load");

    load_user_model_through_state(host, corrupt_file);

    // The load is attempted in the background; give it time, still holding the note.
    let settle = host.process(None, frames(host, 0.5), BLOCK);
    assert_finite(&settle, "after the state load");
    let model_now = host.param("Model");
    let user_file = user_file_model_index();
    assert_eq!(
        model_now, user_file as f64,
        "the model parameter reads {model_now} after loading {user_file} (\"User file\")"
    );
    let after = host.process(None, frames(host, 1.0), BLOCK);
    let window = &after[after.len() - frames(host, 0.5)..];
    let (f0, level) = measure(host, window, "held A4 after the corrupt model");
    assert!(
        cents(f0, NOTE_HZ).abs() < MAX_CENTS,
        "after the failed load A4 plays {f0:.2} Hz ({:+.1} cents, RMS {level:.3e}); {}",
        cents(f0, NOTE_HZ),
        spectrum_report(window, host.sample_rate())
    );
    host.note_off(NOTE);
    host.process(None, BLOCK, BLOCK);
}

/// Audio-input mode ("Input" = Audio) with the default model (the flute, trained from
/// about C#4 up): a synthesised melody in its range on the input comes out at its pitch,
/// and the output's pitch track lags the input's by the latency the plugin reports
/// (within 3 ms), which is at most 20 ms. Needs 48 kHz.
pub fn audio_input_follows_the_input_pitch(host: &mut dyn PluginHost) {
    use crate::{PITCH_FRAME_S, median_pitch, melody, pitch_track, tone, track_lag};
    let sr = host.sample_rate();
    assert_eq!(sr, 48_000.0, "the pitch tracks decimate 48 kHz by 3");
    host.set_param("Input", 1.0);
    host.set_param("Confidence gate", 0.3);
    let silence = vec![0.0; BLOCK * 4];
    host.process(Some(&silence), silence.len(), BLOCK);
    let latency = host.latency_samples() as f64;
    assert!(
        latency <= 0.020 * sr,
        "audio-input latency {latency} samples is over 20 ms"
    );

    // A melody, then a slow vibrato (always voiced) for the delay.
    let notes = melody(sr, &[(294.0, 1.2), (440.0, 1.0), (349.0, 1.0)]);
    let vibrato = tone(sr, 3.0, |t| {
        392.0 * (0.6 / 12.0 * (std::f64::consts::TAU * 3.0 * t).sin()).exp2()
    });
    let input: Vec<f32> = notes.iter().chain(&vibrato).copied().collect();
    let out = host.process(Some(&input), input.len(), BLOCK);
    assert_finite(&out, "audio-input output");
    let (ti, to) = (pitch_track(&input), pitch_track(&out));
    for (start_s, end_s, f) in [(0.4, 1.1, 294.0f32), (1.5, 2.1, 440.0), (2.5, 3.1, 349.0)] {
        let median = median_pitch(&to, start_s, end_s);
        assert!(
            median > 0.0 && cents(median as f64, f as f64).abs() < 20.0,
            "the {f} Hz input note came out at {median} Hz"
        );
    }
    let start = ((3.2 + 0.5) / PITCH_FRAME_S) as usize;
    let end = ti.len().min(to.len()) - 2;
    let lag = track_lag(&ti[start..end], &to[start..end], 20);
    let frame = PITCH_FRAME_S * sr;
    let measured = lag * frame;
    println!("audio input: reported latency {latency} samples, measured {measured:.0}");
    assert!(
        (measured - latency).abs() <= 0.003 * sr && measured <= 0.020 * sr,
        "reported latency {latency} samples, measured delay {measured:.0} samples"
    );
    host.set_param("Input", 0.0);
}

/// Every automatable parameter: (display name, lowest, highest, step) in plain values.
pub const AUTOMATED: [(&str, f64, f64, f64); 22] = [
    ("Octave", -3.0, 3.0, 1.0),
    ("Semitone", -12.0, 12.0, 1.0),
    ("Loudness offset", -24.0, 24.0, 0.001),
    ("Confidence gate", 0.0, 1.0, 0.001),
    ("Shaper in scale", 0.0, 4.0, 0.001),
    ("Shaper in offset", -2.0, 2.0, 0.001),
    ("Shaper out scale", 0.0, 4.0, 0.001),
    ("Harmonic/noise", -1.0, 1.0, 0.001),
    ("Reverb mix", 0.0, 2.0, 0.001),
    ("Attack", 0.0, 2000.0, 0.1),
    ("Decay", 0.0, 5000.0, 0.1),
    ("Sustain", 0.0, 1.0, 0.001),
    ("Release", 0.0, 5000.0, 0.1),
    ("Glide", 0.0, 2000.0, 0.1),
    ("Vibrato", 0.0, 100.0, 0.1),
    ("Vibrato rate", 0.5, 12.0, 0.01),
    ("Bend range", 0.0, 24.0, 1.0),
    ("Output gain", -48.0, 12.0, 0.1),
    ("Voicing", 0.0, 1.0, 1.0),
    ("Input", 0.0, 1.0, 1.0),
    ("Keep in range", 0.0, 1.0, 1.0),
    ("Model", 0.0, 7.0, 1.0),
];

/// The 16 notes of the stress chord: two octaves of stacked thirds and fourths from G3.
pub const CHORD: [u8; 16] = [
    55, 59, 62, 65, 67, 71, 74, 77, 79, 83, 86, 89, 60, 64, 69, 72,
];

/// 10 ms windows (RMS, dB) where one sits more than 6 dB below both neighbours: a dropout.
pub fn dropouts(x: &[f32], rate: f64) -> Vec<(usize, f64, f64, f64)> {
    let window = (0.01 * rate).round().max(1.0) as usize;
    let level: Vec<f64> = x
        .chunks_exact(window)
        .map(|w| db(rms(w).max(1e-9)))
        .collect();
    level
        .windows(3)
        .enumerate()
        .filter(|(_, w)| w[1] < w[0] - 6.0 && w[1] < w[2] - 6.0)
        .map(|(i, w)| (i + 1, w[0], w[1], w[2]))
        .collect()
}

/// The stress a session puts a plugin through: a 16-voice chord held while the model
/// changes `model_changes` times, every 50 ms with every eighth held for 400 ms (so most
/// loads are superseded, some complete and cross-fade, some swap mid-crossfade; each
/// stretch also waits as long in wall-clock time, so that the background loads run as in a
/// DAW): finite output and no dropout (a 10 ms window 6 dB below both neighbours). Then `automated_blocks` blocks in which every parameter moves every block
/// (the input mode and the voicing toggle, the model changes, the chord is replayed when
/// the voicing releases it): finite output. Returns the RMS of everything rendered.
pub fn stress(host: &mut dyn PluginHost, model_changes: usize, automated_blocks: usize) -> f64 {
    host.set_param("Voicing", 1.0);
    for &n in &CHORD {
        host.note_on(n, 0.6);
    }
    let latency = host.latency_samples() as usize;
    let onset = host.process(None, latency + frames(host, 0.5), BLOCK);
    assert_finite(&onset, "the chord's onset");
    let mut held = Vec::new();
    for i in 0..model_changes {
        host.set_param("Model", (i % 8) as f64);
        let seconds = if i % 8 == 7 { 0.4 } else { 0.05 };
        held.extend(host.process(None, frames(host, seconds), BLOCK));
        std::thread::sleep(std::time::Duration::from_secs_f64(seconds));
    }
    held.extend(host.process(None, frames(host, 0.5), BLOCK));
    assert_finite(&held, "the chord across the model changes");
    let found = dropouts(&held, host.sample_rate());
    assert!(
        found.is_empty(),
        "{} dropouts across {model_changes} model changes, first (window, dB before, at, after): {:?}",
        found.len(),
        &found[..found.len().min(5)]
    );

    let mut automated = Vec::new();
    let mut rng = 0x5eed_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 11) as f64 / (1u64 << 53) as f64
    };
    for b in 0..automated_blocks {
        for &(name, lo, hi, step) in &AUTOMATED {
            let v = lo + (hi - lo) * next();
            let v = ((v / step).round() * step).clamp(lo, hi);
            host.set_param(name, v);
        }
        if b % 16 == 0 {
            for &n in &CHORD {
                host.note_on(n, 0.6);
            }
        }
        automated.extend(host.process(None, BLOCK, BLOCK));
    }
    assert_finite(&automated, "every parameter automated every block");
    for &n in &CHORD {
        host.note_off(n);
    }
    host.process(None, BLOCK, BLOCK);
    let level = rms(&held);
    println!(
        "stress: {model_changes} model changes, {automated_blocks} automated blocks; chord RMS \
         {level:.3e}, automated RMS {:.3e}",
        rms(&automated)
    );
    level
}

/// Loads a factory preset as the editor does: its plugin state (`presets::Sound::state`,
/// what the editor hands to `GuiContext::set_state`) restored through the host's state
/// interface, which runs the same restore. Waits for a model the preset names to load.
fn load_preset(host: &mut dyn PluginHost, name: &str) -> newt::presets::Sound {
    let preset =
        newt::presets::factory_preset(name).unwrap_or_else(|| panic!("no factory preset {name:?}"));
    let (prefixed, _) = split_state(&host.save_state());
    let json = serde_json::to_value(preset.sound.state()).expect("a state serialises");
    host.load_state(&join_state(prefixed, &json));
    host.process(None, frames(host, 0.5), BLOCK);
    preset.sound
}

/// RMS of the first 80 ms of A4 and the spread of its pitch (cents, standard deviation
/// of the pitch track over 0.5-1.5 s after the note starts).
fn onset_and_vibrato(host: &mut dyn PluginHost) -> (f64, f64) {
    let latency = host.latency_samples() as usize;
    host.note_on(NOTE, VELOCITY);
    let out = host.process(None, latency + frames(host, 1.6), BLOCK);
    host.note_off(NOTE);
    host.process(None, frames(host, 2.0), BLOCK);
    assert_finite(&out, "preset note");
    let onset = rms(&out[latency..latency + frames(host, 0.08)]);
    let track = crate::pitch_track(&out[latency..]);
    let from = (0.5 / crate::PITCH_FRAME_S) as usize;
    let to = (1.5 / crate::PITCH_FRAME_S) as usize;
    let c: Vec<f64> = track[from..to.min(track.len())]
        .iter()
        .filter(|f| **f > 0.0)
        .map(|f| cents(*f as f64, NOTE_HZ))
        .collect();
    assert!(c.len() > 50, "A4 is unpitched under the preset");
    let mean = c.iter().sum::<f64>() / c.len() as f64;
    let spread = (c.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / c.len() as f64).sqrt();
    (onset, spread)
}

/// Factory presets, loaded as the editor loads them, set their parameters (read back
/// through the host) and change the sound as their names say: "Poly pad" attacks slowly,
/// "Expressive vibrato" bends A4 by tens of cents, "Plain" plays a fresh instance's
/// sound; loading the Violin's preset switches the model.
pub fn factory_presets_load_and_change_the_sound(host: &mut dyn PluginHost) {
    assert_eq!(
        host.sample_rate(),
        48_000.0,
        "the pitch tracks decimate 48 kHz by 3"
    );
    let plain = load_preset(host, "Flute: Plain");
    assert_eq!(host.param("Attack"), plain.attack_ms as f64);
    let (plain_onset, plain_spread) = onset_and_vibrato(host);

    let pad = load_preset(host, "Flute: Poly pad");
    for (name, want) in [
        ("Voicing", 1.0),
        ("Keep in range", 1.0),
        ("Attack", pad.attack_ms as f64),
        ("Release", pad.release_ms as f64),
        ("Reverb mix", pad.reverb as f64),
    ] {
        let got = host.param(name);
        assert!(
            (got - want).abs() < 1e-3,
            "after Poly pad, {name} reads {got}, the preset says {want}"
        );
    }
    let (pad_onset, _) = onset_and_vibrato(host);
    println!("onset RMS: plain {plain_onset:.4}, poly pad {pad_onset:.4}");
    assert!(
        pad_onset < 0.5 * plain_onset,
        "Poly pad's 600 ms attack should start quietly: {pad_onset:.4} vs {plain_onset:.4}"
    );

    load_preset(host, "Flute: Expressive vibrato");
    assert_eq!(host.param("Voicing"), 0.0, "back to mono legato");
    let (_, vibrato_spread) = onset_and_vibrato(host);
    println!("pitch spread: plain {plain_spread:.1} cents, expressive vibrato {vibrato_spread:.1}");
    assert!(
        plain_spread < 5.0 && vibrato_spread > 12.0,
        "vibrato spread {vibrato_spread:.1} cents against {plain_spread:.1} without"
    );

    let violin = load_preset(host, "Violin: Plain");
    assert_eq!(host.param("Model"), violin.model as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_10_ms_gap_is_a_dropout_and_a_fade_is_not() {
        let rate = 48_000.0;
        let tone: Vec<f32> = (0..48_000)
            .map(|i| (std::f64::consts::TAU * 440.0 * i as f64 / rate).sin() as f32)
            .collect();
        assert!(dropouts(&tone, rate).is_empty());
        let mut gap = tone.clone();
        gap[24_000..24_480].fill(0.0);
        assert_eq!(dropouts(&gap, rate).len(), 1);
        let fade: Vec<f32> = tone
            .iter()
            .enumerate()
            .map(|(i, x)| x * (1.0 - i as f32 / 48_000.0))
            .collect();
        assert!(dropouts(&fade, rate).is_empty());
    }
}
