//! A small CLAP host for integration tests and benches.
//!
//! It loads the built bundle (`target/bundled/WaveJam.clap`, or `$WAVEJAM_CLAP`) with `clack-host`,
//! drives one instance block by block with notes, parameter changes and a transport, and records
//! the stereo audio and every note event the plugin sends to its note output.
//!
//! Everything runs on the calling thread: the instance is created, processed and destroyed there,
//! as a host's main and audio threads would, one after the other.
//!
//! CLAP parameter values: nice-plug reports continuous parameters as normalised `0..1` and stepped
//! ones (ints, enums, bools) as `0..steps` (`min_value` is always 0). [`Instance::set_param_plain`]
//! converts a plain value through the plugin's own `text_to_value`, so skewed ranges and offsets
//! are handled by the plugin's formatters rather than guessed here.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use clack_extensions::audio_ports::{AudioPortInfoBuffer, PluginAudioPorts};
use clack_extensions::latency::{HostLatency, HostLatencyImpl, PluginLatency};
use clack_extensions::note_ports::{NotePortInfoBuffer, PluginNotePorts};
use clack_extensions::params::{
    HostParams, HostParamsImplMainThread, HostParamsImplShared, ParamClearFlags, ParamInfoBuffer,
    ParamInfoFlags, ParamRescanFlags, PluginParams,
};
use clack_extensions::render::{PluginRender, RenderMode};
use clack_extensions::state::{HostState, HostStateImpl, PluginState};
use clack_host::events::event_types::{
    MidiEvent, NoteOffEvent, NoteOnEvent, ParamValueEvent, TransportEvent, TransportFlags,
};
use clack_host::events::spaces::CoreEventSpace;
use clack_host::events::EventFlags;
use clack_host::prelude::*;
use clack_host::utils::BeatTime;

/// The plugin this harness instantiates.
pub const PLUGIN_ID: &str = "dev.wavejam.wavejam";

/// Path of the bundle under test: `$WAVEJAM_CLAP`, else `<crate>/target/bundled/WaveJam.clap`.
pub fn bundle_path() -> PathBuf {
    match std::env::var_os("WAVEJAM_CLAP") {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bundled/WaveJam.clap"),
    }
}

// ---------------------------------------------------------------------------------------------
// Host callbacks
// ---------------------------------------------------------------------------------------------

/// Host-side state the plugin may touch from any thread.
pub struct TestHostShared {
    /// The plugin asked for `on_main_thread` (nice-plug's GUI-task queue).
    callback_requested: AtomicBool,
    /// The plugin asked to be deactivated and reactivated (e.g. render-mode or latency change).
    restart_requested: AtomicBool,
    /// The plugin asked for a parameter flush.
    flush_requested: AtomicBool,
}

impl<'a> SharedHandler<'a> for TestHostShared {
    fn request_restart(&self) {
        self.restart_requested.store(true, Ordering::SeqCst);
    }
    fn request_process(&self) {}
    fn request_callback(&self) {
        self.callback_requested.store(true, Ordering::SeqCst);
    }
}

impl HostParamsImplShared for TestHostShared {
    fn request_flush(&self) {
        self.flush_requested.store(true, Ordering::SeqCst);
    }
}

/// Host-side state touched only on the main thread.
#[derive(Default)]
pub struct TestHostMainThread {
    /// How many times the plugin asked for a parameter rescan.
    rescans: AtomicU32,
    /// The plugin marked its state dirty.
    dirty: AtomicBool,
    /// How many times the plugin said its latency changed while inactive.
    latency_changes: AtomicU32,
}

impl<'a> MainThreadHandler<'a> for TestHostMainThread {}

impl HostParamsImplMainThread for TestHostMainThread {
    fn rescan(&self, _flags: ParamRescanFlags) {
        self.rescans.fetch_add(1, Ordering::SeqCst);
    }
    fn clear(&self, _param_id: ClapId, _flags: ParamClearFlags) {}
}

impl HostLatencyImpl for TestHostMainThread {
    fn changed(&self) {
        self.latency_changes.fetch_add(1, Ordering::SeqCst);
    }
}

impl HostStateImpl for TestHostMainThread {
    fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::SeqCst);
    }
}

/// The host's handler types.
pub struct TestHost;

impl HostHandlers for TestHost {
    type Shared<'a> = TestHostShared;
    type MainThread<'a> = TestHostMainThread;
    type AudioProcessor<'a> = ();

    fn declare_extensions(builder: &mut HostExtensions<Self>, _shared: &Self::Shared<'_>) {
        builder
            .register::<HostParams>()
            .register::<HostState>()
            .register::<HostLatency>();
    }
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

/// A loaded bundle.
pub struct Host {
    entry: PluginEntry,
    path: PathBuf,
    info: HostInfo,
}

impl Host {
    /// Loads the bundle from [`bundle_path`]; panics with build instructions if it is missing.
    pub fn load() -> Self {
        Self::load_from(&bundle_path())
    }

    /// Loads the bundle at `path`; panics with build instructions if it is missing.
    pub fn load_from(path: &Path) -> Self {
        assert!(
            path.exists(),
            "CLAP bundle not found at {}: run `cargo xtask bundle wavejam --release` first \
             (or point WAVEJAM_CLAP at a built WaveJam.clap)",
            path.display()
        );
        // SAFETY: loading a plugin library runs its initialisers; the bundle is our own build.
        let entry = unsafe { PluginEntry::load(path) }
            .unwrap_or_else(|err| panic!("cannot load {}: {err}", path.display()));
        let info = HostInfo::new(
            "WaveJam test host",
            "WaveJam developers",
            "https://example.invalid",
            "0.1.0",
        )
        .expect("host info");
        Self {
            entry,
            path: path.to_owned(),
            info,
        }
    }

    /// IDs of every plugin in the bundle's plugin factory.
    pub fn plugin_ids(&self) -> Vec<String> {
        let factory = self
            .entry
            .get_plugin_factory()
            .expect("bundle has no plugin factory");
        factory
            .plugin_descriptors()
            .filter_map(|d| d.id().map(|id| id.to_string_lossy().into_owned()))
            .collect()
    }

    /// Creates an inactive instance of [`PLUGIN_ID`].
    pub fn instantiate(&self) -> Instance {
        let ids = self.plugin_ids();
        assert!(
            ids.iter().any(|id| id == PLUGIN_ID),
            "{} does not contain {PLUGIN_ID} (found {ids:?})",
            self.path.display()
        );
        let id = CString::new(PLUGIN_ID).unwrap();
        let plugin = PluginInstance::<TestHost>::new(
            |_| TestHostShared {
                callback_requested: AtomicBool::new(false),
                restart_requested: AtomicBool::new(false),
                flush_requested: AtomicBool::new(false),
            },
            |_| TestHostMainThread::default(),
            &self.entry,
            &id,
            &self.info,
        )
        .unwrap_or_else(|err| panic!("cannot instantiate {PLUGIN_ID}: {err}"));
        let mut instance = Instance {
            plugin,
            processor: None,
            params: Vec::new(),
            sample_rate: 0.0,
            max_block: 0,
            steady_time: 0,
            in_events: EventBuffer::with_capacity(256),
            out_events: EventBuffer::with_capacity(256),
            out_channels: Vec::new(),
            out_port_channels: Vec::new(),
            out_ports: AudioPorts::with_capacity(2, 1),
            offline: false,
            last_process_time: Duration::ZERO,
        };
        instance.scan_params();
        instance
    }

    /// Instantiates, optionally switches to offline rendering, activates at `sample_rate` with
    /// blocks of at most `max_block` frames, and starts processing; then waits until the
    /// plugin's long-term memory is built, so answers do not depend on how fast that was.
    pub fn start(&self, sample_rate: f64, max_block: usize, offline: bool) -> Instance {
        let mut instance = self.instantiate();
        if offline {
            assert!(
                instance.set_render_mode(RenderMode::Offline),
                "the plugin refused the offline render mode"
            );
        }
        instance.activate(sample_rate, max_block);
        wait_for_long_term_memory();
        instance
    }
}

/// Name of the thread on which the plugin builds its long-term memory (from its first
/// activation in a process).
pub const LONG_TERM_THREAD: &str = "wavejam-memory";

/// Whether a thread named [`LONG_TERM_THREAD`] runs in this process.
pub fn long_term_memory_building() -> bool {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return false;
    };
    tasks.flatten().any(|task| {
        std::fs::read_to_string(task.path().join("comm"))
            .is_ok_and(|name| name.trim_end() == LONG_TERM_THREAD)
    })
}

/// Waits (at most a minute) until the plugin's long-term memory is built: the thread that
/// builds it names itself once it runs, so it is given half a second to show up first (it does
/// not if an earlier instance in this process built the memory).
pub fn wait_for_long_term_memory() {
    static BUILT: AtomicBool = AtomicBool::new(false);
    if BUILT.load(Ordering::Acquire) {
        return;
    }
    let appear_by = Instant::now() + Duration::from_millis(500);
    while !long_term_memory_building() && Instant::now() < appear_by {
        std::thread::sleep(Duration::from_millis(2));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while long_term_memory_building() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    BUILT.store(true, Ordering::Release);
}

// ---------------------------------------------------------------------------------------------
// Events in and out
// ---------------------------------------------------------------------------------------------

/// One thing the host sends at a sample position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Input {
    /// A CLAP note-on (note id −1, port 0).
    NoteOn { channel: u8, key: u8, velocity: f64 },
    /// A CLAP note-off (note id −1, port 0).
    NoteOff { channel: u8, key: u8, velocity: f64 },
    /// A MIDI 1.0 message on note port 0.
    Midi([u8; 3]),
    /// A CLAP parameter value (in CLAP units: see the module docs).
    Param { id: ClapId, value: f64 },
}

/// An [`Input`] at a sample position (relative to the block for [`Instance::process`], absolute
/// for [`Timeline`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timed {
    pub sample: u64,
    pub input: Input,
}

impl Timed {
    pub fn note_on(sample: u64, key: u8, velocity: f64) -> Self {
        Self {
            sample,
            input: Input::NoteOn {
                channel: 0,
                key,
                velocity,
            },
        }
    }
    pub fn note_off(sample: u64, key: u8) -> Self {
        Self {
            sample,
            input: Input::NoteOff {
                channel: 0,
                key,
                velocity: 0.0,
            },
        }
    }
    /// The same note event on MIDI channel `channel` (0-based); other inputs are unchanged.
    pub fn with_channel(mut self, channel: u8) -> Self {
        if let Input::NoteOn { channel: c, .. } | Input::NoteOff { channel: c, .. } =
            &mut self.input
        {
            *c = channel;
        }
        self
    }
    /// The same note event as a MIDI 1.0 message (velocity × 127, rounded); other inputs are
    /// unchanged.
    pub fn as_midi(self) -> Self {
        let input = match self.input {
            Input::NoteOn {
                channel,
                key,
                velocity,
            } => Input::Midi([
                0x90 | (channel & 0x0f),
                key,
                (velocity * 127.0).round() as u8,
            ]),
            Input::NoteOff {
                channel,
                key,
                velocity,
            } => Input::Midi([
                0x80 | (channel & 0x0f),
                key,
                (velocity * 127.0).round() as u8,
            ]),
            other => other,
        };
        Self { input, ..self }
    }
}

/// Kind of an output note event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoteKind {
    On,
    Off,
    Choke,
    End,
}

/// A note event the plugin sent, as CLAP note event or as MIDI 1.0 (`midi` says which).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoteOut {
    pub kind: NoteKind,
    /// Absolute sample position (block start + event time).
    pub sample: u64,
    /// Event time inside its block.
    pub time: u32,
    pub port: i16,
    pub channel: i16,
    pub key: i16,
    pub note_id: i32,
    /// 0..1 (MIDI velocities are divided by 127).
    pub velocity: f64,
    pub midi: bool,
}

/// Transport state the host reports for a block (as of its first sample).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transport {
    pub tempo: f64,
    pub playing: bool,
    /// Song position in beats (quarter notes) at the block's first sample.
    pub beats: f64,
    pub time_sig: (u16, u16),
}

impl Transport {
    /// The CLAP event: tempo, 4/4-style time signature, beat timeline, bar start and number.
    pub fn to_event(self) -> TransportEvent {
        let mut flags = TransportFlags::HAS_TEMPO
            | TransportFlags::HAS_BEATS_TIMELINE
            | TransportFlags::HAS_TIME_SIGNATURE;
        if self.playing {
            flags |= TransportFlags::IS_PLAYING;
        }
        // Bars are `num` beats of `4 / den` quarter notes.
        let bar_beats = f64::from(self.time_sig.0) * 4.0 / f64::from(self.time_sig.1);
        let bar_number = (self.beats / bar_beats).floor();
        TransportEvent {
            header: EventHeader::new_core(0, EventFlags::empty()),
            flags,
            song_pos_beats: BeatTime::from_float(self.beats),
            song_pos_seconds: Default::default(),
            tempo: self.tempo,
            tempo_inc: 0.0,
            loop_start_beats: Default::default(),
            loop_end_beats: Default::default(),
            loop_start_seconds: Default::default(),
            loop_end_seconds: Default::default(),
            bar_start: BeatTime::from_float(bar_number * bar_beats),
            bar_number: bar_number as i32,
            time_signature_numerator: self.time_sig.0,
            time_signature_denominator: self.time_sig.1,
        }
    }
}

/// What one `process()` call produced.
#[derive(Debug, Clone)]
pub struct Block {
    /// Absolute sample position of the block's first frame.
    pub start_sample: u64,
    pub frames: usize,
    pub status: ProcessStatus,
    /// Note events in the order the plugin sent them.
    pub notes: Vec<NoteOut>,
    /// One `Vec` per output channel (port 0 first), `frames` long.
    pub audio: Vec<Vec<f32>>,
    /// The transport this block was given.
    pub transport: Option<Transport>,
}

impl Block {
    /// Largest absolute sample value over all channels.
    pub fn peak(&self) -> f32 {
        self.audio
            .iter()
            .flatten()
            .fold(0.0f32, |peak, s| peak.max(s.abs()))
    }
}

// ---------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------

/// A parameter as the params extension describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamDesc {
    pub id: ClapId,
    pub name: String,
    pub module: String,
    pub min: f64,
    pub max: f64,
    pub default: f64,
    pub flags: ParamInfoFlags,
}

impl ParamDesc {
    pub fn stepped(&self) -> bool {
        self.flags.contains(ParamInfoFlags::IS_STEPPED)
    }
}

// ---------------------------------------------------------------------------------------------
// The instance
// ---------------------------------------------------------------------------------------------

/// One plugin instance and the buffers to process it.
pub struct Instance {
    plugin: PluginInstance<TestHost>,
    processor: Option<StartedPluginAudioProcessor<TestHost>>,
    params: Vec<ParamDesc>,
    sample_rate: f64,
    max_block: usize,
    /// Samples processed since activation (`steady_time`).
    steady_time: u64,
    in_events: EventBuffer,
    out_events: EventBuffer,
    /// Output channel buffers, `max_block` long, port after port.
    out_channels: Vec<Vec<f32>>,
    /// Channel count of each output port.
    out_port_channels: Vec<usize>,
    out_ports: AudioPorts,
    offline: bool,
    /// Wall time of the last `process()` call alone (no host-side copying).
    pub last_process_time: Duration,
}

impl Instance {
    fn scan_params(&mut self) {
        let handle = self.plugin.plugin_handle();
        let ext: PluginParams = handle
            .get_extension()
            .expect("the plugin has no params extension");
        let mut buffer = ParamInfoBuffer::new();
        self.params = (0..ext.count(&handle))
            .map(|index| {
                let info = ext
                    .get_info(&handle, index, &mut buffer)
                    .unwrap_or_else(|| panic!("params.get_info({index}) failed"));
                ParamDesc {
                    id: info.id,
                    name: String::from_utf8_lossy(info.name).into_owned(),
                    module: String::from_utf8_lossy(info.module).into_owned(),
                    min: info.min_value,
                    max: info.max_value,
                    default: info.default_value,
                    flags: info.flags,
                }
            })
            .collect();
    }

    /// Parameters as enumerated at instantiation.
    pub fn params(&self) -> &[ParamDesc] {
        &self.params
    }

    /// The parameter with display name `name`; panics listing the known names otherwise.
    pub fn param(&self, name: &str) -> &ParamDesc {
        self.params
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| {
                let names: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
                panic!("no parameter named {name:?}; the plugin has {names:?}")
            })
    }

    /// Current CLAP value of `name` (params `get_value`).
    pub fn get_param(&mut self, name: &str) -> f64 {
        let id = self.param(name).id;
        let handle = self.plugin.plugin_handle();
        let ext: PluginParams = handle.get_extension().unwrap();
        ext.get_value(&handle, id)
            .unwrap_or_else(|| panic!("params.get_value({name:?}) failed"))
    }

    /// The plugin's text for a CLAP value of `name` (params `value_to_text`).
    pub fn param_text(&mut self, name: &str, value: f64) -> String {
        let id = self.param(name).id;
        let handle = self.plugin.plugin_handle();
        let ext: PluginParams = handle.get_extension().unwrap();
        let mut buffer = [0u8; 256];
        let text = ext
            .value_to_text(&handle, id, value, &mut buffer)
            .unwrap_or_else(|_| panic!("params.value_to_text({name:?}, {value}) failed"));
        String::from_utf8_lossy(text).into_owned()
    }

    /// The plugin's text for the current value of `name`.
    pub fn current_text(&mut self, name: &str) -> String {
        let value = self.get_param(name);
        self.param_text(name, value)
    }

    /// CLAP value for `text` (params `text_to_value`), if the plugin can parse it.
    pub fn text_to_value(&mut self, name: &str, text: &str) -> Option<f64> {
        let id = self.param(name).id;
        let handle = self.plugin.plugin_handle();
        let ext: PluginParams = handle.get_extension().unwrap();
        let text = CString::new(text).ok()?;
        ext.text_to_value(&handle, id, &text)
    }

    /// CLAP value for the plain value `plain` of `name`.
    ///
    /// Two-state stepped parameters (bools) map 0/1 directly (nice-plug's bool parser only reads
    /// "on"/"true"); everything else goes through the plugin's `text_to_value`, with integers
    /// written without a fraction because nice-plug's int parser rejects "3.0". For Gain, `plain`
    /// is what its parser reads: decibels. Stepped values are rounded to integers.
    pub fn plain_to_value(&mut self, name: &str, plain: f64) -> f64 {
        let desc = self.param(name).clone();
        if desc.stepped() && desc.max == 1.0 && (plain == 0.0 || plain == 1.0) {
            return plain;
        }
        let text = if plain.fract() == 0.0 {
            format!("{}", plain as i64)
        } else {
            format!("{plain}")
        };
        let value = self
            .text_to_value(name, &text)
            .unwrap_or_else(|| panic!("{name:?} cannot parse {text:?} (plain value {plain})"));
        // nice-plug computes `normalised (f32) × steps`, which is off by ~1e-7; CLAP stepped
        // values are integers.
        if desc.stepped() {
            value.round()
        } else {
            value
        }
    }

    /// A parameter-value input event for `name` at block-relative or absolute `sample`.
    pub fn param_event(&mut self, name: &str, plain: f64, sample: u64) -> Timed {
        let value = self.plain_to_value(name, plain);
        Timed {
            sample,
            input: Input::Param {
                id: self.param(name).id,
                value,
            },
        }
    }

    /// Sets `name` to the CLAP value `value` through a param-value event (params `flush` while
    /// active, so it takes effect before the next block without processing audio).
    pub fn set_param(&mut self, name: &str, value: f64) {
        let id = self.param(name).id;
        let mut events = EventBuffer::with_capacity(1);
        events.push(&ParamValueEvent::new(0, id, Pckn::match_all(), value));
        let mut out = EventBuffer::with_capacity(16);
        let ext: PluginParams = self.plugin.plugin_handle().get_extension().unwrap();
        match self.processor.as_mut() {
            Some(processor) => ext.flush_active(
                &mut processor.plugin_handle(),
                &events.as_input(),
                &mut OutputEvents::from_buffer(&mut out),
            ),
            None => {
                let mut handle = self
                    .plugin
                    .inactive_plugin_handle()
                    .expect("inactive plugin handle");
                ext.flush(
                    &mut handle,
                    &events.as_input(),
                    &mut OutputEvents::from_buffer(&mut out),
                )
            }
        }
        self.run_main_thread_callbacks();
    }

    /// Sets `name` to a plain value (see [`Self::plain_to_value`]).
    pub fn set_param_plain(&mut self, name: &str, plain: f64) {
        let value = self.plain_to_value(name, plain);
        self.set_param(name, value);
    }

    /// Sets `name` from the text the plugin displays ("Bar", "Off", "New each phrase", "-3 dB").
    pub fn set_param_text(&mut self, name: &str, text: &str) {
        let value = self
            .text_to_value(name, text)
            .unwrap_or_else(|| panic!("{name:?} cannot parse {text:?}"));
        self.set_param(name, value);
    }

    /// Every parameter's (name, CLAP value).
    pub fn param_values(&mut self) -> Vec<(String, f64)> {
        let names: Vec<String> = self.params.iter().map(|p| p.name.clone()).collect();
        names
            .into_iter()
            .map(|name| {
                let value = self.get_param(&name);
                (name, value)
            })
            .collect()
    }

    /// Switches the render mode through the render extension; false if it is missing or
    /// refused. Call it before [`Self::activate`] (nice-plug asks for a restart otherwise).
    pub fn set_render_mode(&mut self, mode: RenderMode) -> bool {
        let handle = self.plugin.plugin_handle();
        let Some(ext) = handle.get_extension::<PluginRender>() else {
            return false;
        };
        let ok = ext.set(&handle, mode).is_ok();
        if ok {
            self.offline = mode == RenderMode::Offline;
        }
        ok
    }

    /// Whether the render mode was set to offline.
    pub fn is_offline(&self) -> bool {
        self.offline
    }

    /// Number of (input, output) note ports.
    pub fn note_ports(&mut self) -> (u32, u32) {
        let handle = self.plugin.plugin_handle();
        let Some(ext) = handle.get_extension::<PluginNotePorts>() else {
            return (0, 0);
        };
        let mut buffer = NotePortInfoBuffer::new();
        for is_input in [true, false] {
            for index in 0..ext.count(&handle, is_input) {
                assert!(
                    ext.get(&handle, index, is_input, &mut buffer).is_some(),
                    "note_ports.get({index}, input={is_input}) failed"
                );
            }
        }
        (ext.count(&handle, true), ext.count(&handle, false))
    }

    /// Channel counts of the (input, output) audio ports.
    pub fn audio_ports(&mut self) -> (Vec<u32>, Vec<u32>) {
        let handle = self.plugin.plugin_handle();
        let Some(ext) = handle.get_extension::<PluginAudioPorts>() else {
            return (Vec::new(), Vec::new());
        };
        let mut buffer = AudioPortInfoBuffer::new();
        let mut ports = |is_input| {
            (0..ext.count(&handle, is_input))
                .map(|index| {
                    ext.get(&handle, index, is_input, &mut buffer)
                        .unwrap_or_else(|| panic!("audio_ports.get({index}) failed"))
                        .channel_count
                })
                .collect::<Vec<u32>>()
        };
        let inputs = ports(true);
        let outputs = ports(false);
        (inputs, outputs)
    }

    /// Activates at `sample_rate` with blocks of 1..=`max_block` frames and starts processing.
    pub fn activate(&mut self, sample_rate: f64, max_block: usize) {
        assert!(self.processor.is_none(), "already active");
        let (inputs, outputs) = self.audio_ports();
        assert!(
            inputs.is_empty(),
            "this harness feeds no audio input, but the plugin has input ports {inputs:?}"
        );
        self.out_port_channels = outputs.iter().map(|&c| c as usize).collect();
        let total: usize = self.out_port_channels.iter().sum();
        self.out_channels = vec![vec![0.0; max_block]; total];
        self.out_ports = AudioPorts::with_capacity(total, outputs.len());
        self.sample_rate = sample_rate;
        self.max_block = max_block;
        self.steady_time = 0;
        let config = PluginAudioConfiguration {
            sample_rate,
            min_frames_count: 1,
            max_frames_count: max_block as u32,
        };
        let stopped = self
            .plugin
            .activate(|_, _| (), config)
            .unwrap_or_else(|err| panic!("activate({sample_rate} Hz, {max_block}) failed: {err}"));
        self.processor = Some(
            stopped
                .start_processing()
                .unwrap_or_else(|err| panic!("start_processing failed: {err}")),
        );
        self.run_main_thread_callbacks();
    }

    /// Stops and starts processing again, as hosts do around transport changes and device
    /// pauses (the plugin stays active).
    pub fn restart_processing(&mut self) {
        let processor = self
            .processor
            .take()
            .expect("restart_processing() on an inactive instance");
        let stopped = processor.stop_processing();
        self.processor = Some(
            stopped
                .start_processing()
                .unwrap_or_else(|err| panic!("start_processing failed: {err}")),
        );
        self.run_main_thread_callbacks();
    }

    /// Stops processing and deactivates (no-op if inactive).
    pub fn deactivate(&mut self) {
        if let Some(processor) = self.processor.take() {
            let stopped = processor.stop_processing();
            self.plugin.deactivate(stopped);
        }
        self.run_main_thread_callbacks();
    }

    pub fn sample_rate(&self) -> f64 {
        self.sample_rate
    }

    pub fn max_block(&self) -> usize {
        self.max_block
    }

    /// Whether the plugin asked for a restart since the last call (and clears the flag).
    pub fn take_restart_request(&self) -> bool {
        self.plugin
            .access_shared_handler(|s| s.restart_requested.swap(false, Ordering::SeqCst))
    }

    /// The latency the plugin reports, in samples.
    pub fn latency(&mut self) -> u32 {
        let handle = self.plugin.plugin_handle();
        let ext = handle
            .get_extension::<PluginLatency>()
            .expect("the latency extension");
        ext.get(&handle)
    }

    /// Runs the plugin's `on_main_thread` if it asked for it.
    pub fn run_main_thread_callbacks(&mut self) {
        let requested = self
            .plugin
            .access_shared_handler(|s| s.callback_requested.swap(false, Ordering::SeqCst));
        if requested {
            self.plugin.call_on_main_thread_callback();
        }
    }

    /// Processes one block of `frames` frames. `inputs` are block-relative (`sample < frames`) and
    /// may come in any order (they are sorted, stably, by time). `transport` is as of frame 0.
    pub fn process(
        &mut self,
        frames: usize,
        inputs: &[Timed],
        transport: Option<Transport>,
    ) -> Block {
        assert!(
            (1..=self.max_block).contains(&frames),
            "block of {frames} frames, max is {}",
            self.max_block
        );
        let mut sorted: Vec<Timed> = inputs.to_vec();
        sorted.sort_by_key(|t| t.sample);
        self.in_events.clear();
        for timed in &sorted {
            assert!(
                (timed.sample as usize) < frames,
                "input {timed:?} is outside a block of {frames} frames"
            );
            let time = timed.sample as u32;
            match timed.input {
                Input::NoteOn {
                    channel,
                    key,
                    velocity,
                } => self.in_events.push(&NoteOnEvent::new(
                    time,
                    Pckn::from_raw(0, i16::from(channel), i16::from(key), -1),
                    velocity,
                )),
                Input::NoteOff {
                    channel,
                    key,
                    velocity,
                } => self.in_events.push(&NoteOffEvent::new(
                    time,
                    Pckn::from_raw(0, i16::from(channel), i16::from(key), -1),
                    velocity,
                )),
                Input::Midi(data) => self.in_events.push(&MidiEvent::new(time, 0, data)),
                Input::Param { id, value } => {
                    self.in_events
                        .push(&ParamValueEvent::new(time, id, Pckn::match_all(), value))
                }
            }
        }
        self.out_events.clear();
        for channel in &mut self.out_channels {
            channel[..frames].fill(0.0);
        }
        let transport_event = transport.map(|t| t.to_event());

        let processor = self
            .processor
            .as_mut()
            .expect("process() on an inactive instance");
        let mut channels = self.out_channels.iter_mut();
        let port_channels = &self.out_port_channels;
        let mut audio_out = self
            .out_ports
            .with_output_buffers(port_channels.iter().map(|&n| {
                AudioPortBuffer {
                    latency: 0,
                    channels: AudioPortBufferType::f32_output_only(
                        channels
                            .by_ref()
                            .take(n)
                            .map(|c| &mut c[..frames])
                            .collect::<Vec<&mut [f32]>>(),
                    ),
                }
            }));
        let started = Instant::now();
        let status = processor
            .process(
                &InputAudioBuffers::empty(),
                &mut audio_out,
                &self.in_events.as_input(),
                &mut OutputEvents::from_buffer(&mut self.out_events),
                Some(self.steady_time),
                transport_event.as_ref(),
            )
            .unwrap_or_else(|err| panic!("process() failed: {err}"));
        self.last_process_time = started.elapsed();

        let start_sample = self.steady_time;
        let notes = self
            .out_events
            .iter()
            .filter_map(|event| decode_note(event, start_sample))
            .collect();
        self.steady_time += frames as u64;
        let audio = self
            .out_channels
            .iter()
            .map(|c| c[..frames].to_vec())
            .collect();
        self.run_main_thread_callbacks();
        Block {
            start_sample,
            frames,
            status,
            notes,
            audio,
            transport,
        }
    }

    /// Saves the plugin state (state extension).
    pub fn save_state(&mut self) -> Vec<u8> {
        let handle = self.plugin.plugin_handle();
        let ext: PluginState = handle.get_extension().expect("no state extension");
        let mut bytes = Vec::new();
        ext.save(&handle, &mut bytes).expect("state save failed");
        bytes
    }

    /// Loads state saved by [`Self::save_state`].
    pub fn load_state(&mut self, bytes: &[u8]) {
        let handle = self.plugin.plugin_handle();
        let ext: PluginState = handle.get_extension().expect("no state extension");
        ext.load(&handle, &mut &bytes[..])
            .expect("state load failed");

        self.run_main_thread_callbacks();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.deactivate();
    }
}

fn decode_note(event: &UnknownEvent, block_start: u64) -> Option<NoteOut> {
    let from_note = |kind, time: u32, pckn: Pckn, velocity| NoteOut {
        kind,
        sample: block_start + u64::from(time),
        time,
        port: pckn.raw_port_index(),
        channel: pckn.raw_channel(),
        key: pckn.raw_key(),
        note_id: pckn.raw_note_id(),
        velocity,
        midi: false,
    };
    match event.as_core_event()? {
        CoreEventSpace::NoteOn(e) => Some(from_note(
            NoteKind::On,
            e.header().time(),
            e.pckn(),
            e.velocity(),
        )),
        CoreEventSpace::NoteOff(e) => Some(from_note(
            NoteKind::Off,
            e.header().time(),
            e.pckn(),
            e.velocity(),
        )),
        CoreEventSpace::NoteChoke(e) => {
            Some(from_note(NoteKind::Choke, e.header().time(), e.pckn(), 0.0))
        }
        CoreEventSpace::NoteEnd(e) => {
            Some(from_note(NoteKind::End, e.header().time(), e.pckn(), 0.0))
        }
        CoreEventSpace::Midi(e) => {
            let [status, key, velocity] = e.data();
            let kind = match status & 0xf0 {
                0x90 if velocity > 0 => NoteKind::On,
                0x90 | 0x80 => NoteKind::Off,
                _ => return None,
            };
            let time = e.header().time();
            Some(NoteOut {
                kind,
                sample: block_start + u64::from(time),
                time,
                port: e.port_index() as i16,
                channel: i16::from(status & 0x0f),
                key: i16::from(key),
                note_id: -1,
                velocity: f64::from(velocity) / 127.0,
                midi: true,
            })
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// A song timeline
// ---------------------------------------------------------------------------------------------

/// Everything a [`Timeline`] rendered.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    pub blocks: Vec<Block>,
    pub notes: Vec<NoteOut>,
    /// One `Vec` per output channel.
    pub audio: Vec<Vec<f32>>,
}

impl Recording {
    /// Note-ons of the output, in order.
    pub fn note_ons(&self) -> impl Iterator<Item = &NoteOut> {
        self.notes.iter().filter(|n| n.kind == NoteKind::On)
    }

    /// Largest |sample| in `range` (absolute samples), over all channels.
    pub fn peak(&self, range: std::ops::Range<u64>) -> f32 {
        self.audio
            .iter()
            .flat_map(|c| {
                let end = (range.end as usize).min(c.len());
                let start = (range.start as usize).min(end);
                c[start..end].iter()
            })
            .fold(0.0f32, |peak, s| peak.max(s.abs()))
    }

    /// Whether every audio sample is finite.
    pub fn all_finite(&self) -> bool {
        self.audio.iter().flatten().all(|s| s.is_finite())
    }
}

/// A host timeline: a transport (tempo, 4/4, playing flag, beat position that advances while
/// playing) and inputs scheduled at absolute sample positions, rendered block by block.
pub struct Timeline {
    pub tempo: f64,
    pub playing: bool,
    /// Beat position at the next block's first sample.
    pub beats: f64,
    pub time_sig: (u16, u16),
    /// Absolute sample position of the next block.
    pub sample: u64,
    /// Send no transport at all (a free-running host).
    pub no_transport: bool,
    /// Sleep this long after each block whose start lies in `throttle.0` (gives a real-time
    /// instance's generator thread the time a real host would).
    pub throttle: Option<(std::ops::Range<u64>, Duration)>,
    /// Pace blocks at the audio rate, as a live host's audio device does (wall time of the
    /// first paced block, and the sample it started at).
    pub real_time: Option<(Instant, u64)>,
    scheduled: VecDeque<Timed>,
    pub rec: Recording,
}

impl Timeline {
    /// A playing transport at `tempo` from beat 0, sample 0.
    pub fn playing(tempo: f64) -> Self {
        Self {
            tempo,
            playing: true,
            beats: 0.0,
            time_sig: (4, 4),
            sample: 0,
            no_transport: false,
            throttle: None,
            real_time: None,
            scheduled: VecDeque::new(),
            rec: Recording::default(),
        }
    }

    /// A stopped transport at `tempo`, beat 0.
    pub fn stopped(tempo: f64) -> Self {
        Self {
            playing: false,
            ..Self::playing(tempo)
        }
    }

    /// Samples per beat at `sample_rate`.
    pub fn samples_per_beat(&self, sample_rate: f64) -> f64 {
        sample_rate * 60.0 / self.tempo
    }

    /// Schedules inputs at absolute sample positions (at or after [`Self::sample`]).
    pub fn schedule(&mut self, inputs: impl IntoIterator<Item = Timed>) {
        for timed in inputs {
            assert!(
                timed.sample >= self.sample,
                "{timed:?} is in the past (now {})",
                self.sample
            );
            let at = self.scheduled.partition_point(|t| t.sample <= timed.sample);
            self.scheduled.insert(at, timed);
        }
    }

    /// Renders one block of `frames` with the scheduled inputs that fall in it plus `extra`
    /// (block-relative), records it and returns it.
    pub fn step(&mut self, inst: &mut Instance, frames: usize, extra: &[Timed]) -> &Block {
        let end = self.sample + frames as u64;
        let mut inputs: Vec<Timed> = Vec::new();
        while self.scheduled.front().is_some_and(|t| t.sample < end) {
            let mut timed = self.scheduled.pop_front().unwrap();
            timed.sample -= self.sample;
            inputs.push(timed);
        }
        inputs.extend_from_slice(extra);
        if let Some((wall, from)) = self.real_time {
            let due =
                wall + Duration::from_secs_f64((self.sample - from) as f64 / inst.sample_rate());
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        let transport = (!self.no_transport).then_some(Transport {
            tempo: self.tempo,
            playing: self.playing,
            beats: self.beats,
            time_sig: self.time_sig,
        });
        let mut block = inst.process(frames, &inputs, transport);
        // The instance counts samples from its latest activation; the timeline from its start.
        for note in &mut block.notes {
            note.sample = note.sample - block.start_sample + self.sample;
        }
        block.start_sample = self.sample;
        if self.playing {
            self.beats += frames as f64 / self.samples_per_beat(inst.sample_rate());
        }
        self.sample = end;
        if let Some((range, pause)) = &self.throttle {
            if range.contains(&block.start_sample) {
                std::thread::sleep(*pause);
            }
        }
        if self.rec.audio.len() < block.audio.len() {
            self.rec.audio.resize(block.audio.len(), Vec::new());
        }
        for (all, part) in self.rec.audio.iter_mut().zip(&block.audio) {
            all.extend_from_slice(part);
        }
        self.rec.notes.extend_from_slice(&block.notes);
        self.rec.blocks.push(block);
        self.rec.blocks.last().unwrap()
    }

    /// Paces the following blocks at the audio rate, from now.
    pub fn pace_in_real_time(&mut self) {
        self.real_time = Some((Instant::now(), self.sample));
    }

    /// The absolute sample at which the playing transport reaches `beat` (at the instance's
    /// current sample rate and the timeline's tempo).
    pub fn sample_at_beat(&self, inst: &Instance, beat: f64) -> u64 {
        let spb = self.samples_per_beat(inst.sample_rate());
        self.sample + ((beat - self.beats) * spb).round().max(0.0) as u64
    }

    /// Renders until `until` (absolute sample) in blocks of `block` frames (the last one shorter).
    pub fn run_until(&mut self, inst: &mut Instance, until: u64, block: usize) {
        while self.sample < until {
            let frames = block.min((until - self.sample) as usize);
            self.step(inst, frames, &[]);
        }
    }
}
