//! Hosting `newt.clap` with clack-host.
//!
//! The host keeps CLAP's threading model: the test thread is the main thread (it creates the
//! instance and makes every main-thread call), and audio is rendered on a separate, scoped
//! audio thread per [`PluginHost::process`] call, while the main thread answers the plugin's
//! `request_callback`s. Restart requests are honoured between process calls. Rendering is
//! paced in real time by default, so that the plugin's background work (model loading) sees
//! as much wall-clock time per rendered second as it would in a DAW.
//!
//! nice-plug exposes every parameter to CLAP as a normalised value (times the step count for
//! stepped parameters), while [`PluginHost`] speaks plain values. The translation uses an
//! inactive second instance of the plugin (the "scratch" instance): a plain value is written
//! into its saved state and read back through `get_value`, and a CLAP value is flushed into it
//! and read back from its saved state. The plugin's own conversions are used both ways, and
//! the instance under test is never disturbed by them.

// `PluginEntry::load` (loading a shared library and running its initialiser) is the one
// unsafe call; everything else goes through clack's safe wrappers.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ffi::CString;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use clack_extensions::audio_ports::{
    AudioPortInfoBuffer, AudioPortRescanFlags, HostAudioPorts, HostAudioPortsImpl, PluginAudioPorts,
};
use clack_extensions::latency::{HostLatency, HostLatencyImpl, PluginLatency};
use clack_extensions::note_ports::{
    HostNotePorts, HostNotePortsImpl, NoteDialect, NoteDialects, NotePortInfoBuffer,
    NotePortRescanFlags, PluginNotePorts,
};
use clack_extensions::params::{
    HostParams, HostParamsImplMainThread, HostParamsImplShared, ParamClearFlags, ParamInfoBuffer,
    ParamInfoFlags, ParamRescanFlags, PluginParams,
};
use clack_extensions::state::{HostState, HostStateImpl, PluginState};
use clack_host::events::Match;
use clack_host::events::event_types::{MidiEvent, NoteOffEvent, NoteOnEvent, ParamValueEvent};
use clack_host::prelude::*;
use serde_json::Value;

use super::PluginHost;

/// The plugin this host loads from the bundle.
pub const PLUGIN_ID: &str = "com.newt-synth.newt";

/// Requests the plugin made from any thread; served on the main thread. Also what the
/// host saw of the plugin's latency notifications: CLAP allows `latency.changed` only while
/// the plugin is being activated (inside `clap_plugin.activate`).
#[derive(Default)]
struct HostShared {
    callback: AtomicBool,
    restart: AtomicBool,
    /// True while the host is inside the plugin's `activate`.
    activating: AtomicBool,
    latency_changed_in_activate: AtomicU32,
    latency_changed_elsewhere: AtomicU32,
}

impl SharedHandler<'_> for HostShared {
    fn request_restart(&self) {
        self.restart.store(true, Ordering::SeqCst);
    }

    fn request_process(&self) {
        // The host is always processing while a `process` call renders, and the plugin is
        // never put to sleep, so there is nothing to wake.
    }

    fn request_callback(&self) {
        self.callback.store(true, Ordering::SeqCst);
    }
}

impl HostParamsImplShared for HostShared {
    fn request_flush(&self) {
        // The plugin's own parameter changes reach the host with the next process call or
        // flush, which is what this asks for; the host reads values fresh with `get_value`.
    }
}

/// Main-thread notifications from the plugin. The host caches nothing they could
/// invalidate: latency and parameter values are queried when asked for, ports at every
/// (re)activation, and state when saved.
struct HostMainThread<'a> {
    shared: &'a HostShared,
}

impl<'a> MainThreadHandler<'a> for HostMainThread<'a> {}

impl HostParamsImplMainThread for HostMainThread<'_> {
    fn rescan(&self, _flags: ParamRescanFlags) {}

    fn clear(&self, _param_id: ClapId, _flags: ParamClearFlags) {}
}

impl HostLatencyImpl for HostMainThread<'_> {
    fn changed(&self) {
        let count = if self.shared.activating.load(Ordering::SeqCst) {
            &self.shared.latency_changed_in_activate
        } else {
            &self.shared.latency_changed_elsewhere
        };
        count.fetch_add(1, Ordering::SeqCst);
    }
}

impl HostStateImpl for HostMainThread<'_> {
    fn mark_dirty(&self) {}
}

impl HostNotePortsImpl for HostMainThread<'_> {
    fn supported_dialects(&self) -> NoteDialects {
        NoteDialects::CLAP | NoteDialects::MIDI
    }

    fn rescan(&self, _flags: NotePortRescanFlags) {}
}

impl HostAudioPortsImpl for HostMainThread<'_> {
    fn is_rescan_flag_supported(&self, _flag: AudioPortRescanFlags) -> bool {
        true
    }

    fn rescan(&self, _flags: AudioPortRescanFlags) {}
}

struct NewtHost;

impl HostHandlers for NewtHost {
    type Shared<'a> = HostShared;
    type MainThread<'a> = HostMainThread<'a>;
    type AudioProcessor<'a> = ();

    fn declare_extensions(builder: &mut HostExtensions<Self>, _shared: &Self::Shared<'_>) {
        builder
            .register::<HostParams>()
            .register::<HostLatency>()
            .register::<HostState>()
            .register::<HostNotePorts>()
            .register::<HostAudioPorts>();
    }
}

/// A parameter as CLAP describes it, plus nice-plug's string id (the key in saved states).
#[derive(Clone, Debug)]
struct ParamMeta {
    clap_id: ClapId,
    string_id: String,
    max_value: f64,
}

/// Which note events the plugin's note input port takes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum NoteDialectUsed {
    Clap,
    Midi,
}

/// A CLAP instance of the bundled plugin, activated and processing.
pub struct ClapHost {
    // Declaration order is drop order, after `Drop::drop` has stopped and deactivated the
    // processor: the instances go before the entry that keeps their library loaded.
    processor: Option<StartedPluginAudioProcessor<NewtHost>>,
    instance: PluginInstance<NewtHost>,
    scratch: PluginInstance<NewtHost>,
    _entry: PluginEntry,
    params_ext: PluginParams,
    state_ext: PluginState,
    latency_ext: Option<PluginLatency>,
    scratch_params_ext: PluginParams,
    scratch_state_ext: PluginState,
    params: HashMap<String, ParamMeta>,
    config: PluginAudioConfiguration,
    in_channels: Vec<usize>,
    out_channels: Vec<usize>,
    dialect: NoteDialectUsed,
    /// Parameter changes for the next process call (or flush), in order.
    pending_params: Vec<ParamValueEvent>,
    /// Note and MIDI events for the next process call, in order.
    pending_notes: EventBuffer,
    steady_time: u64,
    realtime: bool,
    restarts_done: u32,
    /// When set, `process` leaves the plugin's main-thread requests for later.
    defer_main_thread: bool,
}

fn host_info() -> HostInfo {
    HostInfo::new(
        "newt-integration-tests",
        "newt-synth",
        "https://example.invalid/newt",
        env!("CARGO_PKG_VERSION"),
    )
    .expect("host info strings have no NUL")
}

fn new_instance(entry: &PluginEntry, id: &CString) -> PluginInstance<NewtHost> {
    PluginInstance::<NewtHost>::new(
        |_| HostShared::default(),
        |shared| HostMainThread { shared },
        entry,
        id,
        &host_info(),
    )
    .unwrap_or_else(|e| panic!("cannot instantiate {PLUGIN_ID}: {e}"))
}

/// Runs `f` on a fresh thread standing in for the host's audio thread.
fn on_audio_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(f)
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

/// Splits a saved state into nice-plug's JSON; CLAP states carry an 8-byte little-endian
/// length before it.
fn state_json(bytes: &[u8]) -> Value {
    let json = match bytes.split_first_chunk::<8>() {
        Some((len, rest)) if u64::from_le_bytes(*len) as usize == rest.len() => rest,
        _ => bytes,
    };
    serde_json::from_slice(json).unwrap_or_else(|e| {
        panic!(
            "plugin state is not nice-plug JSON ({e}): {}",
            String::from_utf8_lossy(bytes)
        )
    })
}

fn clap_state_bytes(json: &Value) -> Vec<u8> {
    let body = serde_json::to_vec(json).expect("JSON serialises");
    let mut bytes = (body.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&body);
    bytes
}

/// nice-plug's CLAP parameter id for a string id (`wrapper::util::hash_param_id`).
fn nice_plug_param_hash(id: &str) -> u32 {
    let mut hash: u32 = 0;
    for b in id.bytes() {
        hash = hash.wrapping_mul(31).wrapping_add(b as u32);
    }
    hash & !(1 << 31)
}

impl ClapHost {
    /// Loads the bundle at `path`, instantiates [`PLUGIN_ID`], activates it at `sample_rate`
    /// for blocks of up to `max_block` frames and starts processing.
    pub fn load(path: &Path, sample_rate: f64, max_block: u32) -> ClapHost {
        assert!(path.exists(), "{} does not exist", path.display());
        // SAFETY: the path is the NEWT CLAP bundle built by this workspace (a nice-plug
        // plugin), whose entry point follows the CLAP ABI; loading it runs its initialisers,
        // which is what any host does. The entry is kept alive in the returned host for as
        // long as any instance made from it exists.
        let entry = unsafe { PluginEntry::load(path.as_os_str()) }
            .unwrap_or_else(|e| panic!("cannot load CLAP entry {}: {e}", path.display()));
        let factory = entry
            .get_plugin_factory()
            .expect("the CLAP entry has no plugin factory");
        let ids: Vec<String> = factory
            .plugin_descriptors()
            .filter_map(|d| d.id().map(|id| id.to_string_lossy().into_owned()))
            .collect();
        assert_eq!(
            ids.first().map(String::as_str),
            Some(PLUGIN_ID),
            "first plugin descriptor of {}",
            path.display()
        );
        let id = CString::new(PLUGIN_ID).expect("no NUL");
        let mut instance = new_instance(&entry, &id);
        let mut scratch = new_instance(&entry, &id);

        let handle = instance.plugin_handle();
        let params_ext = handle
            .get_extension::<PluginParams>()
            .expect("plugin lacks the params extension");
        let state_ext = handle
            .get_extension::<PluginState>()
            .expect("plugin lacks the state extension");
        let latency_ext = handle.get_extension::<PluginLatency>();
        let note_ports = handle
            .get_extension::<PluginNotePorts>()
            .expect("plugin lacks the note-ports extension");
        let audio_ports = handle
            .get_extension::<PluginAudioPorts>()
            .expect("plugin lacks the audio-ports extension");

        // Note input dialect: CLAP notes when port 0 takes them, else MIDI.
        assert!(
            note_ports.count(&handle, true) >= 1,
            "plugin has no note input port"
        );
        let mut buf = NotePortInfoBuffer::new();
        let port = note_ports
            .get(&handle, 0, true, &mut buf)
            .expect("note input port 0 info");
        let dialect = if port.supported_dialects.supports(NoteDialect::Clap) {
            NoteDialectUsed::Clap
        } else if port.supported_dialects.supports(NoteDialect::Midi) {
            NoteDialectUsed::Midi
        } else {
            panic!(
                "note input port supports neither CLAP nor MIDI notes: {:?}",
                port.supported_dialects
            );
        };

        let channels = |is_input: bool| -> Vec<usize> {
            (0..audio_ports.count(&handle, is_input))
                .map(|i| {
                    let mut buf = AudioPortInfoBuffer::new();
                    audio_ports
                        .get(&handle, i, is_input, &mut buf)
                        .unwrap_or_else(|| panic!("audio port {i} (input: {is_input}) info"))
                        .channel_count as usize
                })
                .collect()
        };
        let in_channels = channels(true);
        let out_channels = channels(false);
        assert!(
            out_channels.first().is_some_and(|&c| c >= 1),
            "plugin has no main audio output: {out_channels:?}"
        );

        let scratch_handle = scratch.plugin_handle();
        let scratch_params_ext = scratch_handle
            .get_extension::<PluginParams>()
            .expect("params extension (scratch)");
        let scratch_state_ext = scratch_handle
            .get_extension::<PluginState>()
            .expect("state extension (scratch)");

        let mut host = ClapHost {
            processor: None,
            instance,
            scratch,
            _entry: entry,
            params_ext,
            state_ext,
            latency_ext,
            scratch_params_ext,
            scratch_state_ext,
            params: HashMap::new(),
            config: PluginAudioConfiguration {
                sample_rate,
                min_frames_count: 1,
                max_frames_count: max_block,
            },
            in_channels,
            out_channels,
            dialect,
            pending_params: Vec::new(),
            pending_notes: EventBuffer::new(),
            steady_time: 0,
            realtime: true,
            restarts_done: 0,
            defer_main_thread: false,
        };
        host.params = host.scan_params();
        host.activate();
        host.service_main_thread();
        host
    }

    /// Renders as fast as the CPU allows instead of in real time (on by default).
    pub fn set_realtime(&mut self, realtime: bool) {
        self.realtime = realtime;
    }

    /// How many times the host deactivated and reactivated the plugin on its request.
    pub fn restarts(&self) -> u32 {
        self.restarts_done
    }

    /// Calls of `latency.changed`: (inside the plugin's `activate`, anywhere else). CLAP
    /// allows only the first.
    pub fn latency_notifications(&self) -> (u32, u32) {
        self.instance.access_shared_handler(|s| {
            (
                s.latency_changed_in_activate.load(Ordering::SeqCst),
                s.latency_changed_elsewhere.load(Ordering::SeqCst),
            )
        })
    }

    /// Restores a state through the state extension, as a host does; `Err` when the
    /// plugin refuses it.
    pub fn try_load_state(&mut self, state: &[u8]) -> Result<(), String> {
        self.flush_params();
        let result = self
            .state_ext
            .load(&self.instance.plugin_handle(), &mut &state[..])
            .map_err(|e| format!("plugin rejected the state: {e}"));
        self.service_main_thread();
        result
    }

    /// While set, `process` does not serve the plugin's main-thread requests (callbacks,
    /// restarts) before, during or after rendering: they wait for the next call that does.
    pub fn set_defer_main_thread(&mut self, defer: bool) {
        self.defer_main_thread = defer;
    }

    /// What a host does when it pauses a plugin (bypass, a device change): stops and
    /// deactivates it, serves the main thread's pending callbacks while it is inactive,
    /// then activates it again.
    pub fn pause_and_resume(&mut self) {
        self.deactivate();
        self.service_main_thread();
        self.activate();
        self.service_main_thread();
    }

    /// The plugin's text for a parameter's current value (CLAP `value_to_text`), as a host
    /// shows it.
    pub fn param_text(&mut self, name: &str) -> String {
        self.flush_params();
        let meta = self.meta(name);
        let handle = self.instance.plugin_handle();
        let value = self
            .params_ext
            .get_value(&handle, meta.clap_id)
            .unwrap_or_else(|| panic!("get_value({name})"));
        let mut buffer = [0u8; 256];
        let text = self
            .params_ext
            .value_to_text(&handle, meta.clap_id, value, &mut buffer)
            .unwrap_or_else(|_| panic!("value_to_text({name}, {value})"));
        String::from_utf8_lossy(text).into_owned()
    }

    /// Queues a raw three-byte MIDI message (port 0) for the next process call.
    pub fn midi(&mut self, data: [u8; 3]) {
        self.pending_notes.push(&MidiEvent::new(0, 0, data));
    }

    /// Queues a channel-1 pitch-bend message; `amount` in [-1, 1].
    pub fn pitch_bend(&mut self, amount: f32) {
        let v = ((amount.clamp(-1.0, 1.0) + 1.0) * 8192.0)
            .round()
            .min(16383.0) as u16;
        self.midi([0xE0, (v & 0x7F) as u8, (v >> 7) as u8]);
    }

    /// Display name -> (CLAP id, nice-plug string id, CLAP range), from the params extension
    /// and the keys of a saved state.
    fn scan_params(&mut self) -> HashMap<String, ParamMeta> {
        let state = self.save_state_raw();
        let json = state_json(&state);
        let by_hash: HashMap<u32, String> = json["params"]
            .as_object()
            .expect("state has a params object")
            .keys()
            .map(|k| (nice_plug_param_hash(k), k.clone()))
            .collect();
        let handle = self.instance.plugin_handle();
        let mut params = HashMap::new();
        for i in 0..self.params_ext.count(&handle) {
            let mut buf = ParamInfoBuffer::new();
            let info = self
                .params_ext
                .get_info(&handle, i, &mut buf)
                .unwrap_or_else(|| panic!("param info {i}"));
            let name = String::from_utf8_lossy(info.name).into_owned();
            let Some(string_id) = by_hash.get(&info.id.get()).cloned() else {
                // Not persisted (or not a nice-plug id): it cannot be set by plain value.
                continue;
            };
            let stepped = info.flags.contains(ParamInfoFlags::IS_STEPPED);
            assert!(
                info.min_value == 0.0 && (stepped || info.max_value == 1.0),
                "unexpected CLAP range for {name}: {}..{}",
                info.min_value,
                info.max_value
            );
            params.insert(
                name,
                ParamMeta {
                    clap_id: info.id,
                    string_id,
                    max_value: info.max_value,
                },
            );
        }
        params
    }

    fn meta(&self, name: &str) -> ParamMeta {
        self.params.get(name).cloned().unwrap_or_else(|| {
            let mut names: Vec<&String> = self.params.keys().collect();
            names.sort();
            panic!("no parameter named {name:?}; the plugin has {names:?}")
        })
    }

    fn activate(&mut self) {
        self.instance
            .access_shared_handler(|s| s.activating.store(true, Ordering::SeqCst));
        let stopped = self.instance.activate(|_, _| (), self.config);
        self.instance
            .access_shared_handler(|s| s.activating.store(false, Ordering::SeqCst));
        let stopped =
            stopped.unwrap_or_else(|e| panic!("activation at {:?} failed: {e}", self.config));
        let started = on_audio_thread(move || {
            stopped
                .start_processing()
                .unwrap_or_else(|e| panic!("start_processing failed: {e}"))
        });
        self.processor = Some(started);
    }

    fn deactivate(&mut self) {
        if let Some(started) = self.processor.take() {
            let stopped = on_audio_thread(move || started.stop_processing());
            self.instance.deactivate(stopped);
        }
    }

    /// Serves what the plugin asked of the main thread: `on_main_thread` callbacks and
    /// restarts (deactivate, reactivate, start processing again).
    fn service_main_thread(&mut self) {
        for _ in 0..64 {
            let (callback, restart) = self.instance.access_shared_handler(|s| {
                (
                    s.callback.swap(false, Ordering::SeqCst),
                    s.restart.swap(false, Ordering::SeqCst),
                )
            });
            if callback {
                self.instance.call_on_main_thread_callback();
            }
            if restart {
                self.deactivate();
                self.activate();
                self.restarts_done += 1;
            }
            Self::service_scratch(&mut self.scratch);
            if !callback && !restart {
                return;
            }
        }
        panic!("the plugin keeps requesting callbacks or restarts");
    }

    fn service_scratch(scratch: &mut PluginInstance<NewtHost>) {
        for _ in 0..64 {
            let callback =
                scratch.access_shared_handler(|s| s.callback.swap(false, Ordering::SeqCst));
            if !callback {
                return;
            }
            scratch.call_on_main_thread_callback();
        }
    }

    /// Delivers queued parameter changes now, through the params extension's flush (on the
    /// audio thread, as CLAP requires while the plugin is active).
    fn flush_params(&mut self) {
        if self.pending_params.is_empty() {
            return;
        }
        let mut events = EventBuffer::new();
        for e in self.pending_params.drain(..) {
            events.push(&e);
        }
        let params = self.params_ext;
        let processor = self.processor.as_mut().expect("plugin is processing");
        on_audio_thread(|| {
            let mut handle = processor.plugin_handle();
            params.flush_active(
                &mut handle,
                &InputEvents::from_buffer(&events),
                &mut OutputEvents::void(),
            );
        });
        self.service_main_thread();
    }

    fn save_state_raw(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.state_ext
            .save(&self.instance.plugin_handle(), &mut out)
            .expect("plugin state save failed");
        out
    }

    fn scratch_state(&mut self) -> Value {
        let mut out = Vec::new();
        self.scratch_state_ext
            .save(&self.scratch.plugin_handle(), &mut out)
            .expect("scratch state save failed");
        state_json(&out)
    }

    /// The CLAP value nice-plug uses for plain value `plain` of `meta`.
    fn plain_to_clap(&mut self, name: &str, meta: &ParamMeta, plain: f64) -> f64 {
        let mut json = self.scratch_state();
        let slot = &mut json["params"][&meta.string_id];
        let (kind, _) = slot
            .as_object()
            .and_then(|o| o.iter().next())
            .map(|(k, v)| (k.clone(), v.clone()))
            .unwrap_or_else(|| panic!("state value of {name}: {slot}"));
        *slot = match kind.as_str() {
            "f32" => serde_json::json!({ "f32": plain }),
            "i32" => serde_json::json!({ "i32": plain.round() as i64 }),
            "bool" => serde_json::json!({ "bool": plain != 0.0 }),
            // An enum saved by its variant id: the plain value is the variant index, which is
            // exactly nice-plug's CLAP value for it.
            "string" => {
                assert!(
                    plain.fract() == 0.0 && (0.0..=meta.max_value).contains(&plain),
                    "{name}: {plain} is not a variant index (0..={})",
                    meta.max_value
                );
                return plain;
            }
            other => panic!("{name}: unknown state value kind {other}"),
        };
        self.scratch_state_ext
            .load(
                &self.scratch.plugin_handle(),
                &mut clap_state_bytes(&json).as_slice(),
            )
            .expect("scratch state load failed");
        Self::service_scratch(&mut self.scratch);
        let value = self
            .scratch_params_ext
            .get_value(&self.scratch.plugin_handle(), meta.clap_id)
            .unwrap_or_else(|| panic!("get_value({name}) on the scratch instance"));
        // nice-plug clamps (and rounds) out-of-range values; say so instead of silently
        // setting something else.
        let back = self.clap_to_plain(name, meta, value);
        assert!(
            (back - plain).abs() <= 1e-4 * plain.abs().max(1.0),
            "{name} cannot be set to {plain}: the plugin stores {back} (out of range?)"
        );
        value
    }

    /// The plain value of `meta` that nice-plug stores for CLAP value `value`.
    fn clap_to_plain(&mut self, name: &str, meta: &ParamMeta, value: f64) -> f64 {
        let mut events = EventBuffer::new();
        events.push(&ParamValueEvent::new(
            0,
            meta.clap_id,
            Pckn::match_all(),
            value,
        ));
        let mut handle = self
            .scratch
            .inactive_plugin_handle()
            .expect("the scratch instance is never activated");
        self.scratch_params_ext.flush(
            &mut handle,
            &InputEvents::from_buffer(&events),
            &mut OutputEvents::void(),
        );
        Self::service_scratch(&mut self.scratch);
        let json = self.scratch_state();
        let slot = &json["params"][&meta.string_id];
        if let Some(v) = slot.get("f32").or_else(|| slot.get("i32")) {
            v.as_f64().expect("number")
        } else if let Some(v) = slot.get("bool") {
            if v.as_bool().expect("bool") { 1.0 } else { 0.0 }
        } else if slot.get("string").is_some() {
            value
        } else {
            panic!("state value of {name}: {slot}")
        }
    }
}

impl Drop for ClapHost {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Keep a failing test's message readable: still shut down cleanly, but do not
            // panic again from here.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.deactivate()));
        } else {
            self.deactivate();
        }
    }
}

impl PluginHost for ClapHost {
    fn sample_rate(&self) -> f64 {
        self.config.sample_rate
    }

    fn latency_samples(&mut self) -> u32 {
        self.service_main_thread();
        match self.latency_ext {
            Some(latency) => latency.get(&self.instance.plugin_handle()),
            None => 0,
        }
    }

    fn set_param(&mut self, name: &str, plain: f64) {
        let meta = self.meta(name);
        let value = self.plain_to_clap(name, &meta, plain);
        self.pending_params.push(ParamValueEvent::new(
            0,
            meta.clap_id,
            Pckn::match_all(),
            value,
        ));
    }

    fn param(&mut self, name: &str) -> f64 {
        self.flush_params();
        let meta = self.meta(name);
        let value = self
            .params_ext
            .get_value(&self.instance.plugin_handle(), meta.clap_id)
            .unwrap_or_else(|| panic!("get_value({name})"));
        self.clap_to_plain(name, &meta, value)
    }

    fn note_on(&mut self, note: u8, velocity: f32) {
        match self.dialect {
            NoteDialectUsed::Clap => self.pending_notes.push(&NoteOnEvent::new(
                0,
                Pckn::new(0u16, 0u16, note as u16, Match::All),
                velocity as f64,
            )),
            NoteDialectUsed::Midi => {
                let v = (velocity.clamp(0.0, 1.0) * 127.0).round().max(1.0) as u8;
                self.midi([0x90, note, v]);
            }
        }
    }

    fn note_off(&mut self, note: u8) {
        match self.dialect {
            NoteDialectUsed::Clap => self.pending_notes.push(&NoteOffEvent::new(
                0,
                Pckn::new(0u16, 0u16, note as u16, Match::All),
                0.0,
            )),
            NoteDialectUsed::Midi => self.midi([0x80, note, 0]),
        }
    }

    fn process(&mut self, input: Option<&[f32]>, frames: usize, block: usize) -> Vec<f32> {
        assert!(
            (1..=self.config.max_frames_count as usize).contains(&block),
            "block {block} outside 1..={}",
            self.config.max_frames_count
        );
        if let Some(input) = input {
            assert!(input.len() >= frames, "input shorter than {frames} frames");
        }
        let serve = !self.defer_main_thread;
        if serve {
            self.service_main_thread();
        }

        // Parameter changes first, then notes, all at sample 0 of the first block.
        let mut first_events = EventBuffer::new();
        for e in self.pending_params.drain(..) {
            first_events.push(&e);
        }
        for e in self.pending_notes.iter() {
            first_events.push(e);
        }
        self.pending_notes.clear();

        let mut out = vec![0.0f32; frames];
        let sample_rate = self.config.sample_rate;
        let realtime = self.realtime;
        let steady_start = self.steady_time;
        let in_channels = self.in_channels.clone();
        let out_channels = self.out_channels.clone();
        let Self {
            processor,
            instance,
            ..
        } = self;
        let processor = processor.as_mut().expect("plugin is processing");
        let out_ref = &mut out;
        std::thread::scope(|s| {
            let audio = s.spawn(move || {
                render(
                    processor,
                    &first_events,
                    input,
                    out_ref,
                    block,
                    &in_channels,
                    &out_channels,
                    steady_start,
                    realtime.then_some(sample_rate),
                )
            });
            // The main thread stays responsive while the audio thread renders.
            while !audio.is_finished() {
                if serve
                    && instance.access_shared_handler(|s| s.callback.swap(false, Ordering::SeqCst))
                {
                    instance.call_on_main_thread_callback();
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            audio
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e))
        });
        self.steady_time += frames as u64;
        if serve {
            self.service_main_thread();
        }
        out
    }

    fn save_state(&mut self) -> Vec<u8> {
        self.flush_params();
        let state = self.save_state_raw();
        self.service_main_thread();
        state
    }

    fn load_state(&mut self, state: &[u8]) {
        if let Err(e) = self.try_load_state(state) {
            panic!("{e}");
        }
    }
}

/// The audio thread's work for one `process` call: blocks of at most `block` frames, the
/// queued events in the first, left channel of output port 0 into `out`.
#[allow(clippy::too_many_arguments)]
fn render(
    processor: &mut StartedPluginAudioProcessor<NewtHost>,
    first_events: &EventBuffer,
    input: Option<&[f32]>,
    out: &mut [f32],
    block: usize,
    in_channels: &[usize],
    out_channels: &[usize],
    steady_start: u64,
    realtime_rate: Option<f64>,
) {
    let frames = out.len();
    let mut in_bufs: Vec<Vec<Vec<f32>>> = in_channels
        .iter()
        .map(|&c| vec![vec![0.0f32; block]; c])
        .collect();
    let mut out_bufs: Vec<Vec<Vec<f32>>> = out_channels
        .iter()
        .map(|&c| vec![vec![0.0f32; block]; c])
        .collect();
    let mut in_ports = AudioPorts::with_capacity(in_channels.iter().sum(), in_channels.len());
    let mut out_ports = AudioPorts::with_capacity(out_channels.iter().sum(), out_channels.len());
    let mut out_events = EventBuffer::new();
    let start = Instant::now();
    let mut done = 0;
    while done < frames {
        let n = block.min(frames - done);
        if let Some(rate) = realtime_rate {
            let due = start + Duration::from_secs_f64(done as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        // The input signal goes to every channel of the main input; other inputs are silent.
        for (p, port) in in_bufs.iter_mut().enumerate() {
            for ch in port.iter_mut() {
                match input {
                    Some(x) if p == 0 => ch[..n].copy_from_slice(&x[done..done + n]),
                    _ => ch[..n].fill(0.0),
                }
            }
        }
        let inputs = in_ports.with_input_buffers(in_bufs.iter_mut().map(|port| AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_input_only(
                port.iter_mut().map(|c| InputChannel::variable(&mut c[..n])),
            ),
        }));
        let mut outputs =
            out_ports.with_output_buffers(out_bufs.iter_mut().map(|port| AudioPortBuffer {
                latency: 0,
                channels: AudioPortBufferType::f32_output_only(
                    port.iter_mut().map(|c| &mut c[..n]),
                ),
            }));
        let events = if done == 0 {
            InputEvents::from_buffer(first_events)
        } else {
            InputEvents::empty()
        };
        out_events.clear();
        processor
            .process(
                &inputs,
                &mut outputs,
                &events,
                &mut OutputEvents::from_buffer(&mut out_events),
                Some(steady_start + done as u64),
                None,
            )
            .unwrap_or_else(|e| panic!("process failed at frame {done}: {e}"));
        out[done..done + n].copy_from_slice(&out_bufs[0][0][..n]);
        done += n;
    }
}
