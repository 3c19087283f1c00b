//! An in-process host: drives the real plugin (`WaveJam::process`, the same code a DAW runs) block
//! by block with a transport and MIDI, and records its audio and note output. The `wavejam render`
//! demo and the Rust-level tests use it; the real-host tests load the built bundles instead.
//!
//! In debug builds every `process()` call runs under `assert_no_alloc`, as in the CLAP and VST3
//! wrappers, so an allocation on the audio path aborts the test run.

use std::collections::VecDeque;

use nice_plug::midi::{Channel, Key, VoiceID};
use nice_plug::prelude::*;

use nice_plug::context::process::SendEventError;

use crate::WaveJam;

/// Most output note events one block may record (recording must not allocate inside `process()`).
const MAX_EVENTS_PER_BLOCK: usize = 8192;

/// A note event the plugin sent to the host.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecordedNote {
    /// Absolute sample position from the start of the render.
    pub sample: u64,
    pub channel: u8,
    pub key: u8,
    /// `Some(velocity 0–1)` for a note-on, `None` for a note-off.
    pub velocity: Option<f32>,
}

/// What the host's transport does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TransportSetup {
    pub playing: bool,
    pub tempo_bpm: f64,
    pub time_signature: (i32, i32),
}

impl Default for TransportSetup {
    fn default() -> Self {
        Self {
            playing: true,
            tempo_bpm: 120.0,
            time_signature: (4, 4),
        }
    }
}

struct Context<'a> {
    transport: Transport,
    input: &'a mut VecDeque<NoteEvent<()>>,
    output: &'a mut Vec<(u32, NoteEvent<()>)>,
    /// The plugin asked to be restarted (deactivated and activated) after this block.
    restart: std::cell::Cell<bool>,
}

impl ProcessContext<WaveJam> for Context<'_> {
    fn plugin_api(&self) -> PluginApi {
        PluginApi::Clap
    }
    fn execute_background(&self, _task: ()) {}
    fn execute_gui(&self, _task: ()) {}
    fn transport(&self) -> &Transport {
        &self.transport
    }
    fn next_event(&mut self) -> Option<NoteEvent<()>> {
        self.input.pop_front()
    }
    fn try_send_event(
        &mut self,
        event: NoteEvent<()>,
    ) -> Result<(), (NoteEvent<()>, SendEventError)> {
        if self.output.len() == self.output.capacity() {
            return Err((event, SendEventError::HostBufferFull));
        }
        self.output.push((event.timing(), event));
        Ok(())
    }
    fn set_latency_samples(&self, _samples: u32) {}
    fn request_restart(&self) {
        self.restart.set(true);
    }
    fn set_current_voice_capacity(&self, _capacity: u32) {}
}

struct Activation;

impl ActivateContext<WaveJam> for Activation {
    fn plugin_api(&self) -> PluginApi {
        PluginApi::Clap
    }
    fn execute(&self, _task: ()) {}
    fn set_latency_samples(&self, _samples: u32) {}
    fn set_current_voice_capacity(&self, _capacity: u32) {}
}

/// The in-process host.
pub struct Host {
    pub plugin: WaveJam,
    config: BufferConfig,
    /// Restarts the plugin asked for and got (a deactivation and an activation each).
    pub restarts: usize,
    sample_rate_hz: f32,
    max_block: usize,
    /// Samples rendered so far.
    position: u64,
    pub transport: TransportSetup,
    /// Player events waiting for their block, sorted by absolute sample.
    pending: VecDeque<(u64, NoteEvent<()>)>,
    block_input: VecDeque<NoteEvent<()>>,
    block_output: Vec<(u32, NoteEvent<()>)>,
    left: Vec<f32>,
    right: Vec<f32>,
    /// Everything the plugin sent, in order.
    pub notes: Vec<RecordedNote>,
    /// Everything the plugin played, per channel.
    pub audio: [Vec<f32>; 2],
}

impl Host {
    /// Activate a fresh plugin. `offline` renders like a DAW's bounce (the plugin may wait for its
    /// generator, so the result doesn't depend on thread timing).
    pub fn new(sample_rate_hz: f32, max_block: usize, offline: bool) -> Self {
        Self::with_plugin(WaveJam::default(), sample_rate_hz, max_block, offline)
    }

    /// Activate `plugin` (e.g. one whose state was restored), once the long-term memory is
    /// built.
    pub fn with_plugin(
        plugin: WaveJam,
        sample_rate_hz: f32,
        max_block: usize,
        offline: bool,
    ) -> Self {
        let config = BufferConfig {
            sample_rate: sample_rate_hz,
            min_buffer_size: None,
            max_buffer_size: max_block as u32,
            process_mode: if offline {
                ProcessMode::Offline
            } else {
                ProcessMode::Realtime
            },
        };
        // As the wrappers do: smoothers start at the parameters' values.
        for (_, ptr, _) in plugin.params().param_map() {
            // SAFETY: the pointer comes from the plugin's own parameter map.
            unsafe { ptr._internal_update_smoother(sample_rate_hz, true) };
        }
        // Renders are reproducible: the engines answer with their long-term memory from the
        // first phrase (a DAW's first seconds answer without it, see `Worker::warming`).
        drop(crate::assets::default_long_term());
        let mut host = Self {
            plugin,
            config,
            restarts: 0,
            sample_rate_hz,
            max_block,
            position: 0,
            transport: TransportSetup::default(),
            pending: VecDeque::new(),
            block_input: VecDeque::with_capacity(1024),
            block_output: Vec::with_capacity(MAX_EVENTS_PER_BLOCK),
            left: vec![0.0; max_block],
            right: vec![0.0; max_block],
            notes: Vec::new(),
            audio: [Vec::new(), Vec::new()],
        };
        host.activate();
        host
    }

    /// Activate the plugin, as a host does before it plays (again).
    fn activate(&mut self) {
        let layout = WaveJam::AUDIO_IO_LAYOUTS[0];
        assert!(
            self.plugin.activate(&layout, &self.config, &mut Activation),
            "activate() failed"
        );
        self.plugin.reset();
    }

    /// Samples rendered so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    pub fn sample_rate_hz(&self) -> f32 {
        self.sample_rate_hz
    }

    /// Samples per beat at the transport's tempo.
    pub fn samples_per_beat(&self) -> f64 {
        self.sample_rate_hz as f64 * 60.0 / self.transport.tempo_bpm
    }

    /// Set a parameter by its ID to a plain value (as automation would, between blocks).
    pub fn set_param(&mut self, id: &str, plain: f32) {
        let params = self.plugin.params();
        let (_, ptr, _) = params
            .param_map()
            .into_iter()
            .find(|(param_id, _, _)| param_id == id)
            .unwrap_or_else(|| panic!("no parameter {id}"));
        // SAFETY: the pointer comes from the plugin's own parameter map and the plugin is alive.
        unsafe {
            let normalized = ptr.preview_normalized(plain);
            ptr._internal_set_normalized_value(normalized);
            ptr._internal_update_smoother(self.sample_rate_hz, true);
        }
    }

    /// Queue a note-on at absolute sample `at` (velocity 0–1) on channel 0.
    pub fn note_on(&mut self, at: u64, key: u8, velocity: f32) {
        self.queue(
            at,
            NoteEvent::NoteOn {
                timing: 0,
                voice_id: VoiceID::Wildcard,
                channel: Channel::Number(0),
                key: Key::Number(key),
                velocity,
            },
        );
    }

    /// Queue a note-off at absolute sample `at` on channel 0.
    pub fn note_off(&mut self, at: u64, key: u8) {
        self.queue(
            at,
            NoteEvent::NoteOff {
                timing: 0,
                voice_id: VoiceID::Wildcard,
                channel: Channel::Number(0),
                key: Key::Number(key),
                velocity: 0.0,
            },
        );
    }

    fn queue(&mut self, at: u64, event: NoteEvent<()>) {
        let index = self.pending.partition_point(|(t, _)| *t <= at);
        self.pending.insert(index, (at, event));
    }

    /// Queue a phrase given in beats from `start_beat`.
    pub fn play_phrase(&mut self, start_beat: f64, notes: &[crate::music::Note]) {
        let spb = self.samples_per_beat();
        for n in notes {
            let on = ((start_beat + n.onset_beats) * spb).round() as u64;
            let off = ((start_beat + n.end_beats()) * spb).round() as u64;
            self.note_on(on, n.pitch, n.velocity as f32 / 127.0);
            self.note_off(off, n.pitch);
        }
    }

    /// Render one block of `samples` (≤ the max block size).
    pub fn process_block(&mut self, samples: usize) {
        assert!(samples <= self.max_block);
        let end = self.position + samples as u64;
        self.block_input.clear();
        while self.pending.front().is_some_and(|(t, _)| *t < end) {
            let (t, mut event) = self.pending.pop_front().expect("checked");
            let timing = t.saturating_sub(self.position) as u32;
            set_timing(&mut event, timing);
            self.block_input.push_back(event);
        }
        let mut transport = Transport::new(self.sample_rate_hz);
        transport.playing = self.transport.playing;
        transport.tempo = Some(self.transport.tempo_bpm);
        transport.time_sig_numerator = Some(self.transport.time_signature.0);
        transport.time_sig_denominator = Some(self.transport.time_signature.1);
        if self.transport.playing {
            transport.pos_samples = Some(self.position as i64);
        }
        self.block_output.clear();
        let (left, right) = (&mut self.left[..samples], &mut self.right[..samples]);
        let mut buffer = Buffer::default();
        // SAFETY: the slices outlive the buffer, which is dropped at the end of this function.
        unsafe {
            buffer.set_slices(samples, |slices| {
                slices.clear();
                slices.push(std::mem::transmute::<&mut [f32], &mut [f32]>(left));
                slices.push(std::mem::transmute::<&mut [f32], &mut [f32]>(right));
            });
        }
        let mut aux = AuxiliaryBuffers {
            inputs: &mut [],
            outputs: &mut [],
        };
        let mut context = Context {
            transport,
            input: &mut self.block_input,
            output: &mut self.block_output,
            restart: std::cell::Cell::new(false),
        };
        let plugin = &mut self.plugin;
        let status = nice_assert_no_alloc::assert_no_alloc(|| {
            plugin.process(&mut buffer, &mut aux, &mut context)
        });
        assert!(
            !matches!(status, ProcessStatus::Error(_)),
            "process() failed: {status:?}"
        );
        let restart = context.restart.get();
        drop(buffer);
        for (timing, event) in self.block_output.drain(..) {
            let sample = self.position + timing as u64;
            match event {
                NoteEvent::NoteOn {
                    channel,
                    key,
                    velocity,
                    ..
                } => self.notes.push(RecordedNote {
                    sample,
                    channel: channel.number().unwrap_or(0),
                    key: key.number().unwrap_or(0),
                    velocity: Some(velocity),
                }),
                NoteEvent::NoteOff { channel, key, .. } => self.notes.push(RecordedNote {
                    sample,
                    channel: channel.number().unwrap_or(0),
                    key: key.number().unwrap_or(0),
                    velocity: None,
                }),
                _ => {}
            }
        }
        self.audio[0].extend_from_slice(&self.left[..samples]);
        self.audio[1].extend_from_slice(&self.right[..samples]);
        self.position = end;
        if restart {
            self.plugin.deactivate();
            self.activate();
            self.restarts += 1;
        }
    }

    /// Render `total` samples in blocks of `block` samples.
    pub fn run(&mut self, total: u64, block: usize) {
        let end = self.position + total;
        while self.position < end {
            let n = ((end - self.position) as usize).min(block);
            self.process_block(n);
        }
    }

    /// Render until beat `beat` in blocks of `block` samples.
    pub fn run_until_beat(&mut self, beat: f64, block: usize) {
        let target = (beat * self.samples_per_beat()).round() as u64;
        if target > self.position {
            self.run(target - self.position, block);
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.plugin.deactivate();
    }
}

fn set_timing(event: &mut NoteEvent<()>, new_timing: u32) {
    match event {
        NoteEvent::NoteOn { timing, .. } | NoteEvent::NoteOff { timing, .. } => {
            *timing = new_timing
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    const CHILD_ENV: &str = "WAVEJAM_PLANTED_ALLOCATION_CHILD";

    #[test]
    fn an_allocation_in_process_aborts_the_test_run() {
        if std::env::var_os(CHILD_ENV).is_some() {
            let mut host = Host::new(48_000.0, 64, false);
            host.plugin.plant_allocation = true;
            host.process_block(64);
            return;
        }
        let output = crate::test_kit::run_in_fresh_process(
            "lab::host::tests::an_allocation_in_process_aborts_the_test_run",
            CHILD_ENV,
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.signal(),
            Some(libc::SIGABRT),
            "the planted allocation did not abort: {:?}\n{stderr}",
            output.status
        );
        assert!(stderr.contains("memory allocation of"), "{stderr}");
    }

    #[test]
    fn a_clean_process_passes_the_allocation_check() {
        let mut host = Host::new(48_000.0, 64, false);
        host.note_on(10, 60, 0.8);
        host.note_off(4000, 60);
        host.run(48_000, 64);
        assert!(host.audio[0].iter().any(|x| x.abs() > 1e-3));
    }

    /// A project whose model or voice choice is of the wrong shape plays the default, not
    /// the choice the plugin had before the load.
    #[test]
    fn a_garbage_model_or_voice_choice_loads_as_the_default() {
        let plugin = WaveJam::default();
        let chosen = crate::models::choice::ModelChoice {
            path: Some("/somewhere/mine.safetensors".into()),
            hash: Some("0123456789abcdef".into()),
        };
        *plugin.params.model.lock().unwrap() = chosen.clone();
        *plugin.params.voice_file.lock().unwrap() = chosen;
        let mut fields = std::collections::BTreeMap::new();
        fields.insert("model".to_string(), r#"{"path": 7}"#.to_string());
        fields.insert("voice_file".to_string(), "[1, 2]".to_string());
        plugin.params().deserialize_fields(&fields);
        assert_eq!(*plugin.params.model.lock().unwrap(), Default::default());
        assert_eq!(
            *plugin.params.voice_file.lock().unwrap(),
            Default::default()
        );
    }

    #[test]
    fn garbage_session_state_loads_as_the_default() {
        let plugin = WaveJam::default();
        let mut fields = std::collections::BTreeMap::new();
        fields.insert(
            "session".to_string(),
            r#"{"last_phrase": "garbage"}"#.to_string(),
        );
        plugin.params().deserialize_fields(&fields);
        assert_eq!(*plugin.params.session.lock().unwrap(), Default::default());
        let mut fields = std::collections::BTreeMap::new();
        fields.insert(
            "session".to_string(),
            r#"{"last_phrase":[{"pitch":60,"velocity":90,"onset_beats":0.0,"duration_beats":1.0}]}"#
                .to_string(),
        );
        plugin.params().deserialize_fields(&fields);
        assert_eq!(plugin.params.session.lock().unwrap().last_phrase.len(), 1);
    }
}

/// The neural voices as a host plays them: in `process()` under the allocation check, thru and
/// answers as one line, saved and restored with the project.
#[cfg(test)]
mod voice_tests {
    use super::*;
    use crate::assets::FLUTE_VOICE;
    use crate::models::choice::ModelChoice;
    use crate::params::VoiceChoice;
    use crate::test_kit::TempDir;
    use std::sync::atomic::Ordering;

    const RATE: f32 = 44_100.0;

    /// A short phrase, its answer and silence after it, with `voice`: the MIDI out and audio.
    fn jam(voice: VoiceChoice) -> Host {
        let mut host = Host::new(RATE, 512, true);
        host.set_param("voice", voice as i32 as f32);
        host.set_param("answer_bars", 1.0);
        let spb = host.samples_per_beat() as u64;
        for (beat, key) in [(0, 69), (1, 71), (2, 73), (3, 74)] {
            host.note_on(beat * spb, key, 0.8);
            host.note_off(beat * spb + spb * 9 / 10, key);
        }
        host.run_until_beat(12.0, 512);
        host
    }

    #[test]
    fn the_fiddle_plays_thru_and_answers_in_process_without_allocating() {
        let fiddle = jam(VoiceChoice::Fiddle);
        let synth = jam(VoiceChoice::Synth);
        assert!(
            fiddle.notes.iter().filter(|n| n.velocity.is_some()).count() > 4,
            "an answer was played"
        );
        assert_eq!(
            fiddle.notes, synth.notes,
            "the voice changes the sound only"
        );
        let slot = &fiddle.plugin.status.voice_slot;
        let latency = slot.latency_samples.load(Ordering::Relaxed);
        assert!(latency > 0 && latency < 256, "{latency} samples");
        assert_eq!(
            slot.fallbacks.load(Ordering::Relaxed),
            0,
            "a bounce has no deadline"
        );
        let audio = &fiddle.audio[0];
        let peak = audio.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(peak > 0.01 && peak <= 1.0, "peak {peak}");
        assert!(audio.iter().all(|x| x.is_finite()));
        assert_ne!(
            fiddle.audio, synth.audio,
            "the fiddle sounds, not the synth"
        );
        let sound = &fiddle.plugin.audio.as_ref().unwrap().sound;
        assert!(!sound.active(), "every note released and faded");
    }

    /// A project names its Custom voice by path and hash: reopened, it plays; changed on disk,
    /// the panel says so and Custom plays the synth. A bad file from the panel changes nothing.
    #[test]
    fn a_custom_voice_is_restored_with_the_project_and_bad_files_change_nothing() {
        let dir = TempDir::new("custom-voice");
        let path = dir.0.join("mine.safetensors");
        std::fs::write(&path, FLUTE_VOICE).unwrap();
        let path = path.to_string_lossy().into_owned();
        let saved = {
            let plugin = WaveJam::default();
            plugin
                .status
                .voice_slot
                .load_file(&path, &plugin.params.voice_file)
                .unwrap();
            let saved = plugin.params.voice_file.lock().unwrap().clone();
            saved
        };
        assert!(saved.hash.is_some());
        let reopen = |choice: &ModelChoice| {
            let plugin = WaveJam::default();
            *plugin.params.voice_file.lock().unwrap() = choice.clone();
            Host::with_plugin(plugin, RATE, 256, true)
        };
        let mut host = reopen(&saved);
        let custom = host.plugin.audio.as_ref().unwrap().sound.custom();
        assert_eq!(custom.map(|c| &c.choice), Some(&saved));

        let slot = &host.plugin.status.voice_slot;
        let bad = dir.0.join("bad.safetensors");
        std::fs::write(&bad, b"not a voice").unwrap();
        assert!(slot
            .load_file(bad.to_str().unwrap(), &host.plugin.params.voice_file)
            .is_err());
        assert_eq!(*host.plugin.params.voice_file.lock().unwrap(), saved);
        host.run(4096, 256);
        let custom = host.plugin.audio.as_ref().unwrap().sound.custom();
        assert_eq!(
            custom.map(|c| &c.choice),
            Some(&saved),
            "the voice kept playing"
        );
        drop(host);

        let mut changed = FLUTE_VOICE.to_vec();
        let n = changed.len();
        changed[n - 2..].copy_from_slice(&[0, 0]);
        std::fs::write(&path, changed).unwrap();
        let mut host = reopen(&saved);
        assert!(host.plugin.audio.as_ref().unwrap().sound.custom().is_none());
        let line = host.plugin.status.voice_slot.line();
        assert!(line.text.contains("changed"), "{}", line.text);

        // A project without a voice file, loaded next, is not told about the last one's.
        let without = WaveJam::default().params().serialize_fields();
        host.plugin.params().deserialize_fields(&without);
        host.run(4096, 256);
        assert_eq!(host.restarts, 1);
        let line = host.plugin.status.voice_slot.line();
        assert_eq!(line.text, crate::voice::slot::NO_CUSTOM_VOICE);
    }

    /// A voice file handed over that the audio thread never took (the host stopped processing,
    /// then deactivated the plugin) does not replace, at the next activation, the voice the
    /// project names by then; a file loaded while inactive is recorded for that activation.
    #[test]
    fn voices_never_taken_give_way_to_the_projects_at_activation() {
        let dir = TempDir::new("stale-voices");
        let write = |name: &str| {
            let path = dir.0.join(name);
            std::fs::write(&path, FLUTE_VOICE).unwrap();
            path.to_string_lossy().into_owned()
        };
        let (old, new) = (write("old.safetensors"), write("new.safetensors"));
        let mut host = Host::new(RATE, 256, true);
        host.run(1024, 256);
        let status = host.plugin.status.clone();
        let params = host.plugin.params.clone();
        status
            .voice_slot
            .load_file(&old, &params.voice_file)
            .unwrap();
        host.plugin.deactivate();
        status
            .voice_slot
            .load_file(&new, &params.voice_file)
            .unwrap();
        host.activate();
        host.run(1024, 256);
        let playing = host.plugin.audio.as_ref().unwrap().sound.custom();
        assert_eq!(playing.and_then(|c| c.choice.path.as_deref()), Some(&*new));
    }

    /// A project or preset loaded into a playing plugin (the host sets its state while it
    /// processes) takes over whole: the plugin asks the host for a restart, once, and comes back
    /// with the loaded voice and session.
    #[test]
    fn a_state_loaded_while_playing_takes_over_after_one_restart() {
        let dir = TempDir::new("state-load");
        let path = dir.0.join("mine.safetensors");
        std::fs::write(&path, FLUTE_VOICE).unwrap();
        let saved = {
            let plugin = WaveJam::default();
            plugin
                .status
                .voice_slot
                .load_file(path.to_str().unwrap(), &plugin.params.voice_file)
                .unwrap();
            plugin.params.session.lock().unwrap().last_phrase =
                crate::test_kit::folk_tune(0)[..8].to_vec();
            plugin.params().serialize_fields()
        };
        let mut host = Host::new(RATE, 256, true);
        host.run(4096, 256);
        assert!(host.plugin.audio.as_ref().unwrap().sound.custom().is_none());
        let revision = host.plugin.status.session_revision.load(Ordering::Relaxed);
        host.plugin.params().deserialize_fields(&saved);
        host.run(4096, 256);
        assert_eq!(host.restarts, 1, "one restart asked for, and no more");
        let custom = host.plugin.audio.as_ref().unwrap().sound.custom();
        assert_eq!(
            custom.map(|c| &c.choice),
            Some(&*host.plugin.params.voice_file.lock().unwrap())
        );
        assert!(host.plugin.status.session_revision.load(Ordering::Relaxed) > revision);
        assert_eq!(
            host.plugin.params.session.lock().unwrap().last_phrase.len(),
            8
        );
    }

    /// A model loaded in the panel that the generator never took (no answer came since) gives
    /// way to the model of a project loaded after it: it would have played at the next answer
    /// while the panel and the project named the project's.
    #[test]
    fn a_model_never_taken_gives_way_to_a_loaded_projects() {
        use crate::models::wavenet::Precision;
        use crate::test_kit::{random_model_bytes, small_config};
        let dir = TempDir::new("stale-model");
        let write = |name: &str, seed: u64| {
            let path = dir.0.join(name);
            let bytes = random_model_bytes(&small_config(), seed, Precision::Single);
            std::fs::write(&path, bytes).unwrap();
            path.to_string_lossy().into_owned()
        };
        let (panel, project) = (
            write("panel.safetensors", 1),
            write("project.safetensors", 2),
        );
        let saved = {
            let plugin = WaveJam::default();
            let slot = &plugin.status.model_slot;
            slot.load_file(&project, &plugin.params.model).unwrap();
            plugin.params().serialize_fields()
        };
        let mut host = Host::new(RATE, 256, true);
        host.run(4096, 256);
        let status = host.plugin.status.clone();
        status
            .model_slot
            .load_file(&panel, &host.plugin.params.model)
            .unwrap();
        host.plugin.params().deserialize_fields(&saved);
        host.run(4096, 256);
        assert_eq!(host.restarts, 1);
        let named = host.plugin.params.model.lock().unwrap().path.clone();
        assert_eq!(named.as_deref(), Some(&*project));
        assert!(
            status.model_slot.take().is_none(),
            "the panel's model is still offered to the generator"
        );
    }
}
