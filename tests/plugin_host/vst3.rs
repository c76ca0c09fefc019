//! Hosting `newt.vst3` with the `vst3` crate: a minimal but complete VST3 host, enough to
//! drive the plugin the way a DAW does (setup, bus arrangement, activation, processing with
//! note events and parameter changes, state save and restore, tear-down).
//!
//! nice-plug builds a single-component effect: the `IComponent` object is also the
//! `IEditController` and the `IAudioProcessor`. A plugin with a separate controller class is
//! rejected with a clear message rather than half-supported.

#![allow(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::{CStr, c_char, c_void};
use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::Mutex;

use vst3::Steinberg::IBStream_::IStreamSeekMode_::{kIBSeekCur, kIBSeekEnd, kIBSeekSet};
use vst3::Steinberg::Vst::BusDirections_::{kInput, kOutput};
use vst3::Steinberg::Vst::Event_::EventTypes_::{kNoteOffEvent, kNoteOnEvent};
use vst3::Steinberg::Vst::MediaTypes_::{kAudio, kEvent};
use vst3::Steinberg::Vst::ProcessContext_::StatesAndFlags_::{
    kPlaying, kTempoValid, kTimeSigValid,
};
use vst3::Steinberg::Vst::ProcessModes_::kRealtime;
use vst3::Steinberg::Vst::SymbolicSampleSizes_::kSample32;
use vst3::Steinberg::Vst::{
    AudioBusBuffers, AudioBusBuffers__type0, Chord, Event, Event__type0, FrameRate,
    IAudioProcessor, IAudioProcessorTrait, IComponent, IComponentHandler, IComponentHandlerTrait,
    IComponentTrait, IEditController, IEditControllerTrait, IEventList, IEventListTrait,
    IHostApplication, IHostApplicationTrait, IParamValueQueue, IParamValueQueueTrait,
    IParameterChanges, IParameterChangesTrait, NoteOffEvent, NoteOnEvent, ParamID, ParamValue,
    ParameterInfo, ProcessContext, ProcessData, ProcessSetup, SpeakerArr, SpeakerArrangement,
    String128,
};
use vst3::Steinberg::{
    FIDString, FUnknown, IBStream, IBStreamTrait, IPluginBaseTrait, IPluginFactory,
    IPluginFactoryTrait, PClassInfo, TUID, int32, int64, kInvalidArgument, kNotImplemented,
    kResultFalse, kResultOk, tresult,
};
use vst3::{Class, ComPtr, ComWrapper, Interface};

use super::PluginHost;

/// `PClassInfo::category` of audio processor classes (`kVstAudioEffectClass`).
const AUDIO_EFFECT_CLASS: &str = "Audio Module Class";

/// The one audio bus each way, stereo.
const CHANNELS: usize = 2;

/// A VST3 plugin instance loaded from a `.vst3` bundle: stereo in and out, 32-bit realtime
/// processing, active and processing (`setProcessing(true)`) from `load` until dropped.
pub struct Vst3Host {
    // The COM objects live in the plugin's library: they are released in `Drop` before the
    // module is exited and the library closed.
    component: ManuallyDrop<ComPtr<IComponent>>,
    processor: ManuallyDrop<ComPtr<IAudioProcessor>>,
    controller: ManuallyDrop<ComPtr<IEditController>>,
    factory: ManuallyDrop<ComPtr<IPluginFactory>>,
    /// The context given to `initialize`, kept alive for the plugin's lifetime.
    _host_application: ComWrapper<HostApplication>,
    /// What the plugin asks of the host through `IComponentHandler` (restarts).
    handler: ComWrapper<ComponentHandler>,
    events: ComWrapper<EventList>,
    param_changes: ComWrapper<ParameterChanges>,
    /// Parameter ids by title.
    params: HashMap<String, ParamID>,
    /// Note events for the start of the next `process` call.
    queued_notes: Vec<Event>,
    /// Normalised parameter changes not yet delivered to the processor.
    queued_params: Vec<(ParamID, ParamValue)>,
    sample_rate: f64,
    max_block: usize,
    /// Samples processed so far (the transport position).
    position: i64,
    /// Dropped last: exits the module and closes the library.
    _module: Module,
}

impl Vst3Host {
    /// Loads the plugin in `bundle` (a `.vst3` directory), instantiates its audio effect class
    /// and brings it up to the processing state at `sample_rate` with blocks of at most
    /// `max_block` samples. Panics, saying which step failed, when the plugin refuses one.
    pub fn load(bundle: &Path, sample_rate: f64, max_block: i32) -> Vst3Host {
        assert!(max_block > 0, "max_block must be positive");
        let module = Module::open(bundle);

        // SAFETY: `GetPluginFactory` is the VST3 entry point, `extern "system" fn() ->
        // *mut IPluginFactory` by the VST3 module ABI; the symbol is only used while `module`
        // keeps the library loaded.
        let factory_ptr = unsafe {
            let get_factory = module
                .library
                .get::<unsafe extern "system" fn() -> *mut c_void>(b"GetPluginFactory\0")
                .unwrap_or_else(|e| panic!("{}: no GetPluginFactory: {e}", module.path.display()));
            get_factory()
        };
        // SAFETY: the factory pointer is a valid `IPluginFactory` (or null, handled here) that
        // the host owns one reference to, which `from_raw` takes over.
        let factory = unsafe { ComPtr::from_raw(factory_ptr as *mut IPluginFactory) }
            .unwrap_or_else(|| panic!("{}: GetPluginFactory returned null", bundle.display()));

        let class_id = find_audio_effect_class(&factory, bundle);

        let mut instance: *mut c_void = ptr::null_mut();
        // SAFETY: `class_id` and the interface id are 16-byte TUIDs that outlive the call, and
        // `instance` is a valid out pointer.
        let result = unsafe {
            factory.createInstance(
                class_id.as_ptr() as FIDString,
                IComponent::IID.as_ptr() as FIDString,
                &mut instance,
            )
        };
        assert_eq!(result, kResultOk, "createInstance(IComponent) failed");
        // SAFETY: on success `instance` holds an owned `IComponent` reference.
        let component = unsafe { ComPtr::from_raw(instance as *mut IComponent) }
            .expect("createInstance(IComponent) returned null");

        let host_application = ComWrapper::new(HostApplication);
        let context = host_application
            .as_com_ref::<IHostApplication>()
            .expect("HostApplication implements IHostApplication");
        // SAFETY: `context` is a live COM object (kept alive by `host_application`, and the
        // plugin adds its own reference if it keeps it).
        let result = unsafe { component.initialize(context.as_ptr() as *mut FUnknown) };
        assert_eq!(result, kResultOk, "IComponent::initialize failed");

        let mut controller_cid: TUID = [0; 16];
        // SAFETY: `controller_cid` is a valid out pointer for a TUID.
        let has_separate_controller =
            unsafe { component.getControllerClassId(&mut controller_cid) } == kResultOk;
        let controller = component.cast::<IEditController>().unwrap_or_else(|| {
            panic!(
                "the component is not its own edit controller (separate controller: \
                     {has_separate_controller}); this host supports single-component effects \
                     only"
            )
        });
        let processor = component
            .cast::<IAudioProcessor>()
            .expect("the component does not implement IAudioProcessor");
        let handler = ComWrapper::new(ComponentHandler::default());
        let handler_ref = handler
            .as_com_ref::<IComponentHandler>()
            .expect("ComponentHandler implements IComponentHandler");
        // SAFETY: `handler_ref` is a live COM object, kept alive by `handler` for the
        // plugin's lifetime (the plugin adds its own reference if it keeps it).
        let result = unsafe { controller.setComponentHandler(handler_ref.as_ptr()) };
        assert_eq!(result, kResultOk, "setComponentHandler failed");

        let mut host = Vst3Host {
            component: ManuallyDrop::new(component),
            processor: ManuallyDrop::new(processor),
            controller: ManuallyDrop::new(controller),
            factory: ManuallyDrop::new(factory),
            _host_application: host_application,
            handler,
            events: ComWrapper::new(EventList::default()),
            param_changes: ComWrapper::new(ParameterChanges::default()),
            params: HashMap::new(),
            queued_notes: Vec::new(),
            queued_params: Vec::new(),
            sample_rate,
            max_block: max_block as usize,
            position: 0,
            _module: module,
        };
        host.params = host.read_parameter_titles();
        host.start(sample_rate, max_block);
        host
    }

    fn read_parameter_titles(&self) -> HashMap<String, ParamID> {
        let mut params = HashMap::new();
        // SAFETY: plain call on a live controller.
        let count = unsafe { self.controller.getParameterCount() };
        for index in 0..count {
            // SAFETY: ParameterInfo is plain old data (integers, floats and UTF-16 arrays), so
            // all zeroes is a valid value.
            let mut info: ParameterInfo = unsafe { std::mem::zeroed() };
            // SAFETY: `info` is a valid out pointer and `index` is in range.
            let result = unsafe { self.controller.getParameterInfo(index, &mut info) };
            assert_eq!(result, kResultOk, "getParameterInfo({index}) failed");
            params.insert(from_utf16(&info.title), info.id);
        }
        params
    }

    /// setBusArrangements, setupProcessing, activateBus, setActive, setProcessing.
    fn start(&mut self, sample_rate: f64, max_block: i32) {
        let mut inputs: [SpeakerArrangement; 1] = [SpeakerArr::kStereo];
        let mut outputs: [SpeakerArrangement; 1] = [SpeakerArr::kStereo];
        // SAFETY: both arrays hold one arrangement each, as the counts say, and outlive the
        // call.
        let result = unsafe {
            self.processor
                .setBusArrangements(inputs.as_mut_ptr(), 1, outputs.as_mut_ptr(), 1)
        };
        assert_eq!(
            result, kResultOk,
            "setBusArrangements(stereo in, stereo out) refused"
        );

        // SAFETY: plain call on a live processor.
        let result = unsafe { self.processor.canProcessSampleSize(kSample32 as int32) };
        assert_eq!(result, kResultOk, "32-bit float processing not supported");

        let mut setup = ProcessSetup {
            processMode: kRealtime as int32,
            symbolicSampleSize: kSample32 as int32,
            maxSamplesPerBlock: max_block,
            sampleRate: sample_rate,
        };
        // SAFETY: `setup` is a valid ProcessSetup that outlives the call.
        let result = unsafe { self.processor.setupProcessing(&mut setup) };
        assert_eq!(result, kResultOk, "setupProcessing failed");

        for (media, direction, what) in [
            (kAudio, kInput, "audio input"),
            (kAudio, kOutput, "audio output"),
            (kEvent, kInput, "event input"),
        ] {
            // SAFETY: plain call on a live component.
            let result = unsafe {
                self.component
                    .activateBus(media as int32, direction as int32, 0, 1)
            };
            assert_eq!(result, kResultOk, "activateBus({what} 0) failed");
        }

        // SAFETY: plain calls on a live component/processor, in the order the VST3 workflow
        // prescribes.
        let result = unsafe { self.component.setActive(1) };
        assert_eq!(result, kResultOk, "setActive(true) failed");
        // SAFETY: as above.
        let result = unsafe { self.processor.setProcessing(1) };
        assert_eq!(result, kResultOk, "setProcessing(true) failed");
    }

    fn param_id(&self, name: &str) -> ParamID {
        match self.params.get(name) {
            Some(id) => *id,
            None => {
                let mut titles: Vec<&str> = self
                    .params
                    .keys()
                    .map(String::as_str)
                    .filter(|t| !t.starts_with("MIDI Ch."))
                    .collect();
                titles.sort_unstable();
                panic!("the plugin has no parameter titled {name:?}; it has {titles:?}")
            }
        }
    }

    /// Delivers queued parameter changes now, with a zero-sample process call (a VST3
    /// "parameter flush"). Note events stay queued for the next audio block.
    fn flush_params(&mut self) {
        if self.queued_params.is_empty() {
            return;
        }
        self.param_changes
            .set(&std::mem::take(&mut self.queued_params));
        self.events.set(&[]);
        let mut context = self.process_context();
        let mut data = ProcessData {
            processMode: kRealtime as int32,
            symbolicSampleSize: kSample32 as int32,
            numSamples: 0,
            numInputs: 0,
            numOutputs: 0,
            inputs: ptr::null_mut(),
            outputs: ptr::null_mut(),
            inputParameterChanges: self.param_changes_ptr(),
            outputParameterChanges: ptr::null_mut(),
            inputEvents: self.events_ptr(),
            outputEvents: ptr::null_mut(),
            processContext: &mut context,
        };
        // SAFETY: `data` and everything it points to (the context and our COM objects) outlive
        // the call; with zero samples and no buses the plugin touches no audio buffers.
        let result = unsafe { self.processor.process(&mut data) };
        self.param_changes.set(&[]);
        assert_eq!(
            result, kResultOk,
            "parameter flush (process with 0 samples) failed"
        );
    }

    fn process_context(&self) -> ProcessContext {
        ProcessContext {
            state: kPlaying | kTempoValid | kTimeSigValid,
            sampleRate: self.sample_rate,
            projectTimeSamples: self.position,
            systemTime: 0,
            continousTimeSamples: self.position,
            projectTimeMusic: 0.0,
            barPositionMusic: 0.0,
            cycleStartMusic: 0.0,
            cycleEndMusic: 0.0,
            tempo: 120.0,
            timeSigNumerator: 4,
            timeSigDenominator: 4,
            chord: Chord {
                keyNote: 0,
                rootNote: 0,
                chordMask: 0,
            },
            smpteOffsetSubframes: 0,
            frameRate: FrameRate {
                framesPerSecond: 0,
                flags: 0,
            },
            samplesToNextClock: 0,
        }
    }

    fn events_ptr(&self) -> *mut IEventList {
        self.events
            .as_com_ref::<IEventList>()
            .expect("EventList implements IEventList")
            .as_ptr()
    }

    fn param_changes_ptr(&self) -> *mut IParameterChanges {
        self.param_changes
            .as_com_ref::<IParameterChanges>()
            .expect("ParameterChanges implements IParameterChanges")
            .as_ptr()
    }

    fn queue_note(&mut self, event_type: u32, note: u8, velocity: f32) {
        assert!(note < 128, "MIDI note {note} out of range");
        let pitch = note as i16;
        // Note id -1: notes are identified by channel and pitch, as from a MIDI keyboard.
        let payload = if event_type == kNoteOnEvent {
            Event__type0 {
                noteOn: NoteOnEvent {
                    channel: 0,
                    pitch,
                    tuning: 0.0,
                    velocity,
                    length: 0,
                    noteId: -1,
                },
            }
        } else {
            Event__type0 {
                noteOff: NoteOffEvent {
                    channel: 0,
                    pitch,
                    velocity,
                    noteId: -1,
                    tuning: 0.0,
                },
            }
        };
        self.queued_notes.push(Event {
            busIndex: 0,
            sampleOffset: 0,
            ppqPosition: 0.0,
            flags: 0,
            r#type: event_type as u16,
            __field0: payload,
        });
    }
}

impl Vst3Host {
    /// The `restartComponent` flag words the plugin sent since the last call, waiting up
    /// to `wait` for at least one (the plugin sends them from its own GUI-task thread).
    pub fn take_restart_requests(&mut self, wait: std::time::Duration) -> Vec<i32> {
        let start = std::time::Instant::now();
        loop {
            let taken: Vec<i32> = std::mem::take(
                &mut *self
                    .handler
                    .restarts
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()),
            );
            if !taken.is_empty() || start.elapsed() >= wait {
                return taken;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// What a host does on `kLatencyChanged`: stops processing, deactivates, reads the new
    /// latency (returned) and starts again.
    pub fn restart_for_latency(&mut self) -> u32 {
        // SAFETY: plain calls on live objects, in the VST3 workflow's order.
        unsafe {
            assert_eq!(
                self.processor.setProcessing(0),
                kResultOk,
                "setProcessing(false)"
            );
            assert_eq!(self.component.setActive(0), kResultOk, "setActive(false)");
            let latency = self.processor.getLatencySamples();
            assert_eq!(self.component.setActive(1), kResultOk, "setActive(true)");
            assert_eq!(
                self.processor.setProcessing(1),
                kResultOk,
                "setProcessing(true)"
            );
            latency
        }
    }
}

impl PluginHost for Vst3Host {
    fn sample_rate(&self) -> f64 {
        self.sample_rate
    }

    fn latency_samples(&mut self) -> u32 {
        // SAFETY: plain call on a live processor.
        unsafe { self.processor.getLatencySamples() }
    }

    fn set_param(&mut self, name: &str, plain: f64) {
        let id = self.param_id(name);
        // SAFETY: plain calls on a live controller.
        let normalized = unsafe { self.controller.plainParamToNormalized(id, plain) };
        assert!(
            (0.0..=1.0).contains(&normalized),
            "{name} = {plain} normalises to {normalized}, outside [0, 1]"
        );
        // The controller side, as a host's generic editor would; nice-plug ignores this while
        // processing and takes the value from the processor's parameter queue instead.
        // SAFETY: as above.
        let result = unsafe { self.controller.setParamNormalized(id, normalized) };
        assert_eq!(result, kResultOk, "setParamNormalized({name}) failed");
        self.queued_params.retain(|(queued, _)| *queued != id);
        self.queued_params.push((id, normalized));
    }

    fn param(&mut self, name: &str) -> f64 {
        let id = self.param_id(name);
        self.flush_params();
        // SAFETY: plain calls on a live controller.
        unsafe {
            let normalized = self.controller.getParamNormalized(id);
            self.controller.normalizedParamToPlain(id, normalized)
        }
    }

    fn note_on(&mut self, note: u8, velocity: f32) {
        self.queue_note(kNoteOnEvent, note, velocity);
    }

    fn note_off(&mut self, note: u8) {
        self.queue_note(kNoteOffEvent, note, 0.0);
    }

    fn process(&mut self, input: Option<&[f32]>, frames: usize, block: usize) -> Vec<f32> {
        assert!(
            (1..=self.max_block).contains(&block),
            "block {block} outside 1..={}",
            self.max_block
        );
        if let Some(input) = input {
            assert!(
                input.len() >= frames,
                "input holds {} < {frames} samples",
                input.len()
            );
        }
        let mut output = Vec::with_capacity(frames);
        let mut in_buffers = vec![vec![0.0f32; block]; CHANNELS];
        let mut out_buffers = vec![vec![0.0f32; block]; CHANNELS];
        let mut first = true;
        let mut done = 0;
        while done < frames {
            let n = block.min(frames - done);
            for channel in in_buffers.iter_mut() {
                match input {
                    Some(input) => channel[..n].copy_from_slice(&input[done..done + n]),
                    None => channel[..n].fill(0.0),
                }
            }
            for channel in out_buffers.iter_mut() {
                channel.fill(0.0);
            }
            if first {
                self.events.set(&std::mem::take(&mut self.queued_notes));
                self.param_changes
                    .set(&std::mem::take(&mut self.queued_params));
            } else {
                self.events.set(&[]);
                self.param_changes.set(&[]);
            }
            first = false;

            let mut in_ptrs: Vec<*mut f32> =
                in_buffers.iter_mut().map(|c| c.as_mut_ptr()).collect();
            let mut out_ptrs: Vec<*mut f32> =
                out_buffers.iter_mut().map(|c| c.as_mut_ptr()).collect();
            let mut inputs = AudioBusBuffers {
                numChannels: CHANNELS as int32,
                silenceFlags: if input.is_none() { 0b11 } else { 0 },
                __field0: AudioBusBuffers__type0 {
                    channelBuffers32: in_ptrs.as_mut_ptr(),
                },
            };
            let mut outputs = AudioBusBuffers {
                numChannels: CHANNELS as int32,
                silenceFlags: 0,
                __field0: AudioBusBuffers__type0 {
                    channelBuffers32: out_ptrs.as_mut_ptr(),
                },
            };
            let mut context = self.process_context();
            let mut data = ProcessData {
                processMode: kRealtime as int32,
                symbolicSampleSize: kSample32 as int32,
                numSamples: n as int32,
                numInputs: 1,
                numOutputs: 1,
                inputs: &mut inputs,
                outputs: &mut outputs,
                inputParameterChanges: self.param_changes_ptr(),
                outputParameterChanges: ptr::null_mut(),
                inputEvents: self.events_ptr(),
                outputEvents: ptr::null_mut(),
                processContext: &mut context,
            };
            // SAFETY: `data` describes one stereo input and one stereo output bus whose channel
            // pointers address `block >= n` valid f32s each; all of it, the context and our COM
            // objects outlive the call.
            let result = unsafe { self.processor.process(&mut data) };
            assert_eq!(
                result, kResultOk,
                "process failed at sample {}",
                self.position
            );
            output.extend_from_slice(&out_buffers[0][..n]);
            done += n;
            self.position += n as i64;
        }
        self.events.set(&[]);
        self.param_changes.set(&[]);
        output
    }

    fn save_state(&mut self) -> Vec<u8> {
        self.flush_params();
        let stream = ComWrapper::new(MemoryStream::default());
        let stream_ptr = stream
            .as_com_ref::<IBStream>()
            .expect("MemoryStream implements IBStream")
            .as_ptr();
        // SAFETY: `stream_ptr` is a live IBStream kept alive by `stream` for the call.
        let result = unsafe { self.component.getState(stream_ptr) };
        assert_eq!(result, kResultOk, "IComponent::getState failed");
        let state = stream.data.borrow().clone();
        assert!(!state.is_empty(), "IComponent::getState wrote nothing");
        state
    }

    fn load_state(&mut self, state: &[u8]) {
        if let Err(e) = self.try_load_state(state) {
            panic!("{e}");
        }
    }
}

impl Vst3Host {
    /// Restores a state through `IComponent::setState` and the controller's
    /// `setComponentState`, as a host does; `Err` names the call that refused it.
    pub fn try_load_state(&mut self, state: &[u8]) -> Result<(), String> {
        self.flush_params();
        let stream = ComWrapper::new(MemoryStream {
            data: RefCell::new(state.to_vec()),
            position: Cell::new(0),
        });
        let stream_ptr = stream
            .as_com_ref::<IBStream>()
            .expect("MemoryStream implements IBStream")
            .as_ptr();
        // SAFETY: `stream_ptr` is a live IBStream kept alive by `stream` for the call.
        let result = unsafe { self.component.setState(stream_ptr) };
        if result != kResultOk {
            return Err(format!("IComponent::setState refused the state ({result})"));
        }
        // As hosts do, the controller then gets the component state too (for nice-plug's
        // single-component effect this is a no-op).
        stream.position.set(0);
        // SAFETY: as above.
        let result = unsafe { self.controller.setComponentState(stream_ptr) };
        if result != kResultOk {
            return Err(format!(
                "IEditController::setComponentState failed ({result})"
            ));
        }
        Ok(())
    }
}

impl Drop for Vst3Host {
    fn drop(&mut self) {
        // Do not turn a failing test's panic into an abort; the tear-down results are checked
        // only when the host is dropped normally.
        let check = !std::thread::panicking();
        // SAFETY: plain calls on live objects, in the VST3 tear-down order.
        let results = unsafe {
            [
                ("setProcessing(false)", self.processor.setProcessing(0)),
                ("setActive(false)", self.component.setActive(0)),
                ("terminate", self.component.terminate()),
            ]
        };
        // SAFETY: each pointer is dropped exactly once, here, and never used again; they are
        // released before the module is exited and the library unloaded (`self.module` drops
        // after this function).
        unsafe {
            ManuallyDrop::drop(&mut self.processor);
            ManuallyDrop::drop(&mut self.controller);
            ManuallyDrop::drop(&mut self.component);
            ManuallyDrop::drop(&mut self.factory);
        }
        if check {
            for (what, result) in results {
                assert_eq!(result, kResultOk, "{what} failed");
            }
        }
    }
}

/// The plugin's shared library, entered (`ModuleEntry` / `bundleEntry` / `InitDll`) while
/// loaded: once per process and path, however many instances use it.
struct Module {
    path: PathBuf,
    library: libloading::Library,
    /// The OS handle of `library` (Linux: what `ModuleEntry` is given).
    handle: *mut c_void,
}

/// Per library path: how many `Module`s have it entered.
static ENTERED: Mutex<Vec<(PathBuf, usize)>> = Mutex::new(Vec::new());

impl Module {
    fn open(bundle: &Path) -> Module {
        let path = library_path(bundle);
        assert!(
            path.exists(),
            "{} is missing from the bundle {}",
            path.display(),
            bundle.display()
        );
        let (library, handle) = open_library(&path);
        let module = Module {
            path,
            library,
            handle,
        };

        let mut entered = ENTERED.lock().unwrap_or_else(|e| e.into_inner());
        match entered.iter_mut().find(|(p, _)| *p == module.path) {
            Some((_, count)) => *count += 1,
            None => {
                module.enter();
                entered.push((module.path.clone(), 1));
            }
        }
        module
    }

    #[cfg(all(unix, not(target_os = "macos")))]
    fn enter(&self) {
        // SAFETY: `ModuleEntry(void* sharedLibraryHandle) -> bool` is the Linux VST3 module
        // entry point, given the library's own handle, which stays open while entered.
        unsafe {
            if let Ok(entry) = self
                .library
                .get::<unsafe extern "C" fn(*mut c_void) -> bool>(b"ModuleEntry\0")
            {
                assert!(entry(self.handle), "ModuleEntry returned false");
            }
        }
    }

    #[cfg(any(not(unix), target_os = "macos"))]
    fn enter(&self) {
        let name: &[u8] = if cfg!(target_os = "macos") {
            b"bundleEntry\0"
        } else {
            b"InitDll\0"
        };
        // SAFETY: `bundleEntry(CFBundleRef) -> bool` / `InitDll() -> bool` are the VST3 module
        // entry points on macOS / Windows; the bundle reference is optional for the plugins
        // this host targets and passed as null (ignored by `InitDll`).
        unsafe {
            if let Ok(entry) = self
                .library
                .get::<unsafe extern "system" fn(*mut c_void) -> bool>(name)
            {
                assert!(entry(self.handle), "module entry returned false");
            }
        }
    }

    fn exit(&self) {
        let name: &[u8] = if cfg!(target_os = "macos") {
            b"bundleExit\0"
        } else if cfg!(unix) {
            b"ModuleExit\0"
        } else {
            b"ExitDll\0"
        };
        // SAFETY: the module exit points take no arguments and return bool; every instance
        // created from the library has been released.
        unsafe {
            if let Ok(exit) = self
                .library
                .get::<unsafe extern "system" fn() -> bool>(name)
            {
                let ok = exit();
                if !std::thread::panicking() {
                    assert!(ok, "module exit returned false");
                }
            }
        }
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        let mut entered = ENTERED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = entered.iter().position(|(p, _)| *p == self.path) {
            entered[i].1 -= 1;
            if entered[i].1 == 0 {
                entered.swap_remove(i);
                self.exit();
            }
        }
    }
}

#[cfg(unix)]
fn open_library(path: &Path) -> (libloading::Library, *mut c_void) {
    use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
    // SAFETY: loading the plugin runs its initialisers; a VST3 plugin library is made to be
    // loaded into a host process. The raw handle round-trip keeps one open handle.
    unsafe {
        let library = Library::open(Some(path), RTLD_NOW | RTLD_LOCAL)
            .unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()));
        let handle = library.into_raw();
        (Library::from_raw(handle).into(), handle)
    }
}

#[cfg(not(unix))]
fn open_library(path: &Path) -> (libloading::Library, *mut c_void) {
    // SAFETY: loading the plugin runs its initialisers; a VST3 plugin library is made to be
    // loaded into a host process.
    let library = unsafe { libloading::Library::new(path) }
        .unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()));
    (library, ptr::null_mut())
}

/// The shared library inside a `.vst3` bundle directory.
fn library_path(bundle: &Path) -> PathBuf {
    let stem = bundle
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("bundle name");
    let contents = bundle.join("Contents");
    if cfg!(target_os = "macos") {
        contents.join("MacOS").join(stem)
    } else if cfg!(windows) {
        contents
            .join(format!("{}-win", std::env::consts::ARCH))
            .join(format!("{stem}.vst3"))
    } else {
        contents
            .join(format!("{}-linux", std::env::consts::ARCH))
            .join(format!("{stem}.so"))
    }
}

/// The class id of the factory's (first) audio effect class.
fn find_audio_effect_class(factory: &ComPtr<IPluginFactory>, bundle: &Path) -> TUID {
    // SAFETY: plain call on a live factory.
    let count = unsafe { factory.countClasses() };
    let mut seen = Vec::new();
    for index in 0..count {
        // SAFETY: PClassInfo is plain old data (integers and char arrays).
        let mut info: PClassInfo = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid out pointer and `index` is in range.
        if unsafe { factory.getClassInfo(index, &mut info) } != kResultOk {
            continue;
        }
        let category = c_chars_to_string(&info.category);
        if category == AUDIO_EFFECT_CLASS {
            return info.cid;
        }
        seen.push(format!("{} ({category})", c_chars_to_string(&info.name)));
    }
    panic!(
        "{} has no {AUDIO_EFFECT_CLASS:?} class among {seen:?}",
        bundle.display()
    )
}

fn c_chars_to_string(chars: &[c_char]) -> String {
    let bytes: Vec<u8> = chars.iter().map(|c| *c as u8).collect();
    CStr::from_bytes_until_nul(&bytes)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned())
}

fn from_utf16(chars: &[u16]) -> String {
    let end = chars.iter().position(|c| *c == 0).unwrap_or(chars.len());
    String::from_utf16_lossy(&chars[..end])
}

/// `IComponentHandler`: records the plugin's restart requests (from whichever thread the
/// plugin calls them on); parameter edits from the plugin are accepted and ignored.
#[derive(Default)]
struct ComponentHandler {
    /// Every `restartComponent` flag word, in order.
    restarts: Mutex<Vec<i32>>,
}

impl Class for ComponentHandler {
    type Interfaces = (IComponentHandler,);
}

impl IComponentHandlerTrait for ComponentHandler {
    unsafe fn beginEdit(&self, _id: ParamID) -> tresult {
        kResultOk
    }

    unsafe fn performEdit(&self, _id: ParamID, _value: ParamValue) -> tresult {
        kResultOk
    }

    unsafe fn endEdit(&self, _id: ParamID) -> tresult {
        kResultOk
    }

    unsafe fn restartComponent(&self, flags: int32) -> tresult {
        self.restarts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(flags);
        kResultOk
    }
}

/// `IHostApplication`: the host context passed to `initialize`.
struct HostApplication;

impl Class for HostApplication {
    type Interfaces = (IHostApplication,);
}

impl IHostApplicationTrait for HostApplication {
    unsafe fn getName(&self, name: *mut String128) -> tresult {
        if name.is_null() {
            return kInvalidArgument;
        }
        let mut buffer: String128 = [0; 128];
        for (dst, src) in buffer
            .iter_mut()
            .take(127)
            .zip("newt-integration-tests".encode_utf16())
        {
            *dst = src;
        }
        // SAFETY: `name` is non-null and, by the interface contract, points to a String128.
        unsafe { *name = buffer };
        kResultOk
    }

    unsafe fn createInstance(
        &self,
        _cid: *mut TUID,
        _iid: *mut TUID,
        obj: *mut *mut c_void,
    ) -> tresult {
        if !obj.is_null() {
            // SAFETY: `obj` is a non-null out pointer by the interface contract.
            unsafe { *obj = ptr::null_mut() };
        }
        kNotImplemented
    }
}

/// `IEventList` over a vector of events.
#[derive(Default)]
struct EventList {
    events: RefCell<Vec<Event>>,
}

impl EventList {
    fn set(&self, events: &[Event]) {
        let mut list = self.events.borrow_mut();
        list.clear();
        list.extend_from_slice(events);
    }
}

impl Class for EventList {
    type Interfaces = (IEventList,);
}

impl IEventListTrait for EventList {
    unsafe fn getEventCount(&self) -> int32 {
        self.events.borrow().len() as int32
    }

    unsafe fn getEvent(&self, index: int32, e: *mut Event) -> tresult {
        if e.is_null() {
            return kInvalidArgument;
        }
        match usize::try_from(index)
            .ok()
            .and_then(|i| self.events.borrow().get(i).copied())
        {
            Some(event) => {
                // SAFETY: `e` is non-null and points to an Event by the interface contract.
                unsafe { *e = event };
                kResultOk
            }
            None => kInvalidArgument,
        }
    }

    unsafe fn addEvent(&self, e: *mut Event) -> tresult {
        if e.is_null() {
            return kInvalidArgument;
        }
        // SAFETY: `e` is non-null and points to an Event by the interface contract.
        self.events.borrow_mut().push(unsafe { *e });
        kResultOk
    }
}

/// `IParameterChanges`: one queue per parameter.
#[derive(Default)]
struct ParameterChanges {
    queues: RefCell<Vec<ComWrapper<ParamValueQueue>>>,
}

impl ParameterChanges {
    /// One point at sample offset 0 per parameter.
    fn set(&self, changes: &[(ParamID, ParamValue)]) {
        let mut queues = self.queues.borrow_mut();
        queues.clear();
        for &(id, value) in changes {
            queues.push(ComWrapper::new(ParamValueQueue {
                id,
                points: RefCell::new(vec![(0, value)]),
            }));
        }
    }

    fn queue_ptr(queue: &ComWrapper<ParamValueQueue>) -> *mut IParamValueQueue {
        queue
            .as_com_ref::<IParamValueQueue>()
            .expect("ParamValueQueue implements IParamValueQueue")
            .as_ptr()
    }
}

impl Class for ParameterChanges {
    type Interfaces = (IParameterChanges,);
}

impl IParameterChangesTrait for ParameterChanges {
    unsafe fn getParameterCount(&self) -> int32 {
        self.queues.borrow().len() as int32
    }

    unsafe fn getParameterData(&self, index: int32) -> *mut IParamValueQueue {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.queues.borrow().get(i).map(Self::queue_ptr))
            .unwrap_or(ptr::null_mut())
    }

    unsafe fn addParameterData(
        &self,
        id: *const ParamID,
        index: *mut int32,
    ) -> *mut IParamValueQueue {
        if id.is_null() {
            return ptr::null_mut();
        }
        // SAFETY: `id` is non-null and points to a ParamID by the interface contract.
        let id = unsafe { *id };
        let mut queues = self.queues.borrow_mut();
        let i = match queues.iter().position(|q| q.id == id) {
            Some(i) => i,
            None => {
                queues.push(ComWrapper::new(ParamValueQueue {
                    id,
                    points: RefCell::new(Vec::new()),
                }));
                queues.len() - 1
            }
        };
        if !index.is_null() {
            // SAFETY: `index` is a non-null out pointer by the interface contract.
            unsafe { *index = i as int32 };
        }
        Self::queue_ptr(&queues[i])
    }
}

/// `IParamValueQueue`: (sample offset, normalised value) points of one parameter.
struct ParamValueQueue {
    id: ParamID,
    points: RefCell<Vec<(int32, ParamValue)>>,
}

impl Class for ParamValueQueue {
    type Interfaces = (IParamValueQueue,);
}

impl IParamValueQueueTrait for ParamValueQueue {
    unsafe fn getParameterId(&self) -> ParamID {
        self.id
    }

    unsafe fn getPointCount(&self) -> int32 {
        self.points.borrow().len() as int32
    }

    unsafe fn getPoint(
        &self,
        index: int32,
        sample_offset: *mut int32,
        value: *mut ParamValue,
    ) -> tresult {
        if sample_offset.is_null() || value.is_null() {
            return kInvalidArgument;
        }
        match usize::try_from(index)
            .ok()
            .and_then(|i| self.points.borrow().get(i).copied())
        {
            Some((offset, v)) => {
                // SAFETY: both out pointers are non-null by the check above.
                unsafe {
                    *sample_offset = offset;
                    *value = v;
                }
                kResultOk
            }
            None => kInvalidArgument,
        }
    }

    unsafe fn addPoint(
        &self,
        sample_offset: int32,
        value: ParamValue,
        index: *mut int32,
    ) -> tresult {
        let mut points = self.points.borrow_mut();
        let i = points.partition_point(|(offset, _)| *offset <= sample_offset);
        points.insert(i, (sample_offset, value));
        if !index.is_null() {
            // SAFETY: `index` is a non-null out pointer by the interface contract.
            unsafe { *index = i as int32 };
        }
        kResultOk
    }
}

/// `IBStream` over a growable byte vector.
#[derive(Default)]
struct MemoryStream {
    data: RefCell<Vec<u8>>,
    position: Cell<usize>,
}

impl Class for MemoryStream {
    type Interfaces = (IBStream,);
}

impl IBStreamTrait for MemoryStream {
    unsafe fn read(
        &self,
        buffer: *mut c_void,
        num_bytes: int32,
        num_bytes_read: *mut int32,
    ) -> tresult {
        if buffer.is_null() || num_bytes < 0 {
            return kInvalidArgument;
        }
        let data = self.data.borrow();
        let start = self.position.get().min(data.len());
        let n = (num_bytes as usize).min(data.len() - start);
        // SAFETY: `buffer` is non-null and, by the interface contract, has room for
        // `num_bytes >= n` bytes; the source range is inside `data`.
        unsafe { ptr::copy_nonoverlapping(data[start..].as_ptr(), buffer as *mut u8, n) };
        self.position.set(start + n);
        if !num_bytes_read.is_null() {
            // SAFETY: non-null out pointer.
            unsafe { *num_bytes_read = n as int32 };
        }
        if n == num_bytes as usize {
            kResultOk
        } else {
            kResultFalse
        }
    }

    unsafe fn write(
        &self,
        buffer: *mut c_void,
        num_bytes: int32,
        num_bytes_written: *mut int32,
    ) -> tresult {
        if buffer.is_null() || num_bytes < 0 {
            return kInvalidArgument;
        }
        let n = num_bytes as usize;
        // SAFETY: `buffer` is non-null and, by the interface contract, holds `num_bytes`
        // readable bytes.
        let bytes = unsafe { std::slice::from_raw_parts(buffer as *const u8, n) };
        let mut data = self.data.borrow_mut();
        let start = self.position.get();
        if data.len() < start + n {
            data.resize(start + n, 0);
        }
        data[start..start + n].copy_from_slice(bytes);
        self.position.set(start + n);
        if !num_bytes_written.is_null() {
            // SAFETY: non-null out pointer.
            unsafe { *num_bytes_written = num_bytes };
        }
        kResultOk
    }

    unsafe fn seek(&self, pos: int64, mode: int32, result: *mut int64) -> tresult {
        let base = match mode as u32 {
            m if m == kIBSeekSet => 0,
            m if m == kIBSeekCur => self.position.get() as int64,
            m if m == kIBSeekEnd => self.data.borrow().len() as int64,
            _ => return kInvalidArgument,
        };
        let target = base + pos;
        if target < 0 {
            return kInvalidArgument;
        }
        self.position.set(target as usize);
        if !result.is_null() {
            // SAFETY: non-null out pointer.
            unsafe { *result = target };
        }
        kResultOk
    }

    unsafe fn tell(&self, pos: *mut int64) -> tresult {
        if pos.is_null() {
            return kInvalidArgument;
        }
        // SAFETY: non-null out pointer.
        unsafe { *pos = self.position.get() as int64 };
        kResultOk
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_stream_reads_back_what_was_written_and_seeks() {
        let stream = ComWrapper::new(MemoryStream::default());
        let s = stream.as_com_ref::<IBStream>().unwrap();
        let mut written = 0;
        let mut payload = *b"hello, state";
        // SAFETY: valid buffers and out pointers for the duration of each call.
        unsafe {
            assert_eq!(
                s.write(payload.as_mut_ptr() as *mut c_void, 12, &mut written),
                kResultOk
            );
            assert_eq!(written, 12);
            let mut end = 0;
            assert_eq!(s.seek(0, kIBSeekEnd as int32, &mut end), kResultOk);
            assert_eq!(end, 12);
            assert_eq!(s.seek(7, kIBSeekSet as int32, ptr::null_mut()), kResultOk);
            let mut out = [0u8; 16];
            let mut read = 0;
            // Short read: only 5 bytes are left.
            assert_eq!(
                s.read(out.as_mut_ptr() as *mut c_void, 16, &mut read),
                kResultFalse
            );
            assert_eq!(&out[..read as usize], b"state");
            let mut pos = 0;
            assert_eq!(s.tell(&mut pos), kResultOk);
            assert_eq!(pos, 12);
        }
    }

    #[test]
    fn parameter_changes_expose_one_point_per_parameter() {
        let changes = ComWrapper::new(ParameterChanges::default());
        changes.set(&[(7, 0.25), (9, 1.0)]);
        let c = changes.as_com_ref::<IParameterChanges>().unwrap();
        // SAFETY: pointers returned by the object stay valid while `changes` is alive and
        // unchanged; out pointers are valid locals.
        unsafe {
            assert_eq!(c.getParameterCount(), 2);
            let q = vst3::ComRef::from_raw(c.getParameterData(1)).unwrap();
            assert_eq!(q.getParameterId(), 9);
            assert_eq!(q.getPointCount(), 1);
            let (mut offset, mut value) = (-1, 0.0);
            assert_eq!(q.getPoint(0, &mut offset, &mut value), kResultOk);
            assert_eq!((offset, value), (0, 1.0));
            assert!(c.getParameterData(2).is_null());
        }
    }
}
