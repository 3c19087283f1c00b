//! WaveJam: an instrument plugin that listens to the player's phrase and answers it in time.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nice_plug::context::process::SendEventError;
use nice_plug::midi::{Channel, Key, VoiceID};
use nice_plug::prelude::*;

pub mod assets;
pub mod audio;
pub mod editor;
pub mod generator;
pub mod lab;
pub mod listen;
pub mod models;
pub mod music;
pub mod params;
pub mod persist;
pub mod protocol;
pub mod simd;
pub mod status;
#[cfg(test)]
mod test_kit;
#[cfg(feature = "train")]
pub mod train;
pub mod voice;

use audio::clock::HostTime;
use audio::conductor::{Conductor, Delivery, InputEvent, PlayerAction, Settings};
use audio::events::OutEvent;
use audio::AudioSide;
use generator::{GeneratorThread, Parked};
use params::{within_range, WaveJamParams};
use protocol::{OBSERVATION_RING_CAPACITY, SCHEDULE_RING_CAPACITY};
use status::Status;

/// The plugin instance.
pub struct WaveJam {
    params: Arc<WaveJamParams>,
    status: Arc<Status>,
    /// Set by the panel's panic button; the audio thread releases everything and clears it.
    panic: Arc<AtomicBool>,
    /// The audio thread's side, made by the first `activate()` and kept across deactivation:
    /// the notes it owes the host's MIDI output and the phrase in progress survive.
    audio: Option<AudioSide>,
    /// The generator thread, between `activate()` and `deactivate()`.
    generator: Option<GeneratorThread>,
    /// What the generator leaves between activations (the session it has learned).
    parked: Option<Parked>,
    /// The host announced an offline render (bounce): the audio thread may wait, bounded, for
    /// the generator.
    offline: bool,
    /// The state loads (see [`persist::SessionState::loads`]) the running parts started from,
    /// and whether a restart was asked of the host for a load since.
    loads_seen: u64,
    restart_asked: bool,
    /// Test-only: allocate inside `process()` to prove the allocation checker fires.
    #[cfg(test)]
    plant_allocation: bool,
}

impl Default for WaveJam {
    /// Defaults only: a plugin scan that instantiates WaveJam starts no thread and builds nothing.
    fn default() -> Self {
        Self {
            params: Arc::new(WaveJamParams::default()),
            status: Arc::new(Status::default()),
            panic: Arc::new(AtomicBool::new(false)),
            audio: None,
            generator: None,
            parked: None,
            offline: false,
            loads_seen: 0,
            restart_asked: false,
            #[cfg(test)]
            plant_allocation: false,
        }
    }
}

impl WaveJam {
    /// The live figures the panel shows (what was heard, counters), for an in-process host.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// The audio side at `sample_rate_hz` and the generator's parked side: new ones (with new
    /// rings between them) the first time, or when a generator thread was lost; otherwise the
    /// kept ones, re-sized.
    fn prepare(&mut self, sample_rate_hz: f32) -> Parked {
        if let (Some(audio), Some(parked)) = (&mut self.audio, self.parked.take()) {
            audio.reactivate(sample_rate_hz);
            self.status.voice_slot.set_host_rate(sample_rate_hz);
            return parked;
        }
        let (to_generator, observations) = rtrb::RingBuffer::new(OBSERVATION_RING_CAPACITY);
        let (schedule, from_generator) = rtrb::RingBuffer::new(SCHEDULE_RING_CAPACITY);
        match &mut self.audio {
            Some(audio) => {
                audio.conductor.connect(to_generator, from_generator);
                audio.reactivate(sample_rate_hz);
                self.status.voice_slot.set_host_rate(sample_rate_hz);
            }
            None => {
                let conductor = Conductor::new(
                    sample_rate_hz,
                    to_generator,
                    from_generator,
                    self.status.clone(),
                );
                let (panel, voices) = voice::slot::rings();
                self.status.voice_slot.connect(panel, sample_rate_hz);
                self.audio = Some(AudioSide::new(sample_rate_hz, conductor, voices));
            }
        }
        Parked {
            observations,
            schedule,
            worker: None,
        }
    }

    /// Installs the custom voice the project names, if the one installed is not it: read from
    /// its file (checked against its saved hash) at `sample_rate_hz`. A file that cannot play
    /// is reported in the panel and *Custom* plays the synth.
    fn restore_voice(&mut self, sample_rate_hz: f32) {
        let Some(audio) = &mut self.audio else {
            return;
        };
        let wanted = self
            .params
            .voice_file
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let slot = &self.status.voice_slot;
        if wanted.path.is_none() {
            // Also over what a project loaded before said about its own voice file.
            slot.set_line(models::choice::ModelLine::playing(
                voice::slot::NO_CUSTOM_VOICE,
            ));
        }
        if audio.sound.custom().map(|c| &c.choice) == Some(&wanted)
            || (wanted.path.is_none() && audio.sound.custom().is_none())
        {
            return;
        }
        match models::choice::restore_with(&wanted, voice::VoiceFile::parse) {
            Ok(Some(file)) => {
                let path = wanted.path.clone().unwrap_or_default();
                slot.set_line(models::choice::ModelLine::playing(voice::slot::describe(
                    &file, &path,
                )));
                let custom = voice::slot::CustomVoice::new(wanted, Arc::new(file), sample_rate_hz);
                audio.sound.install_custom(Some(custom));
            }
            Ok(None) => {
                slot.set_line(models::choice::ModelLine::playing(
                    voice::slot::NO_CUSTOM_VOICE,
                ));
                audio.sound.install_custom(None);
            }
            Err(error) => {
                slot.set_line(models::choice::ModelLine::failed(
                    error,
                    "Custom plays the synth",
                ));
                audio.sound.install_custom(None);
            }
        }
    }

    /// The parameters' values for this block; `offline`: the host renders offline or runs far
    /// ahead of the clock.
    fn settings(&self, offline: bool) -> Settings {
        let p = &self.params;
        Settings {
            engine: p.engine.value(),
            model_generation: self.status.model_slot.generation.load(Ordering::Acquire),
            temperature: within_range(&p.temperature),
            seed: within_range(&p.seed).max(0) as u32,
            seed_mode: p.seed_mode.value(),
            wait_beats: within_range(&p.wait_beats) as f64,
            answer_bars: within_range(&p.answer_bars).max(1) as u32,
            quantize: p.quantize.value(),
            mode: p.mode.value(),
            generate: p.generate.value(),
            barge_in: p.barge_in.value(),
            output: p.output.value(),
            thru: p.thru.value(),
            bypass: p.bypass.value(),
            scale: p.scale_lock(),
            feel: within_range(&p.feel),
            offline,
            host_offline: self.offline,
        }
    }
}

/// The host's transport as the clock wants it.
fn host_time(transport: &Transport) -> HostTime {
    HostTime {
        playing: transport.playing,
        tempo_bpm: transport.tempo,
        pos_beats: transport.pos_beats(),
        time_signature: transport
            .time_sig_numerator
            .zip(transport.time_sig_denominator),
        bar_start_beats: transport.bar_start_pos_beats(),
        bar_number: transport.bar_number(),
    }
}

/// An emitted note as the host's note event.
fn host_note_event(event: &OutEvent) -> NoteEvent<()> {
    let (timing, channel, key) = (
        event.offset,
        Channel::Number(event.channel),
        Key::Number(event.key),
    );
    match event.velocity {
        Some(velocity) => NoteEvent::NoteOn {
            timing,
            voice_id: VoiceID::Wildcard,
            channel,
            key,
            velocity: velocity as f32 / 127.0,
        },
        None => NoteEvent::NoteOff {
            timing,
            voice_id: VoiceID::Wildcard,
            channel,
            key,
            velocity: 0.0,
        },
    }
}

/// A note event from the host as the conductor wants it (other events are ignored).
/// A wildcard channel or key on a release means every channel or key (a note-on on a wildcard
/// channel is channel 1's).
fn input_event(event: NoteEvent<()>) -> Option<InputEvent> {
    let channel_of = |channel: Channel| channel.number();
    let (offset, channel, action) = match event {
        NoteEvent::NoteOn {
            timing,
            channel,
            key: Key::Number(key),
            velocity,
            ..
        } if velocity > 0.0 => (
            timing,
            channel_of(channel),
            PlayerAction::Strike {
                key,
                velocity: (velocity * 127.0).round().clamp(1.0, 127.0) as u8,
            },
        ),
        NoteEvent::NoteOn {
            timing,
            channel,
            key,
            ..
        }
        | NoteEvent::NoteOff {
            timing,
            channel,
            key,
            ..
        } => (
            timing,
            channel_of(channel),
            PlayerAction::Release { key: key.number() },
        ),
        NoteEvent::Choke {
            timing,
            channel,
            key,
            ..
        } => (
            timing,
            channel_of(channel),
            PlayerAction::Cut { key: key.number() },
        ),
        NoteEvent::MidiCC {
            timing,
            channel,
            cc,
            value,
        } => {
            let action = match cc {
                control_change::DAMPER_PEDAL => PlayerAction::Pedal {
                    down: value * 127.0 >= 63.5,
                },
                control_change::RESET_ALL_CONTROLLERS => PlayerAction::Pedal { down: false },
                control_change::ALL_NOTES_OFF => PlayerAction::Release { key: None },
                control_change::ALL_SOUND_OFF => PlayerAction::Cut { key: None },
                _ => return None,
            };
            (timing, Some(channel & 15), action)
        }
        _ => return None,
    };
    Some(InputEvent {
        offset,
        channel,
        action,
    })
}

impl Plugin for WaveJam {
    const NAME: &'static str = "WaveJam";
    const VENDOR: &'static str = "WaveJam";
    const URL: &'static str = "https://wavejam.dev";
    const EMAIL: &'static str = "hello@wavejam.dev";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = &[AudioIOLayout {
        main_input_channels: None,
        main_output_channels: NonZeroU32::new(2),
        ..AudioIOLayout::const_default()
    }];
    /// MIDI CCs for the sustain pedal (CC 64) and a keyboard's "all notes off" and "all sound
    /// off" (on VST3 this adds nice-plug's 2,080 hidden read-only parameters that carry CCs).
    const MIDI_INPUT: MidiConfig = MidiConfig::MidiCCs;
    /// Input events a block holds without allocating: with CCs, a controller's curves and
    /// pressure come in too (nice-plug's 1,024 would grow on the audio thread).
    const INPUT_EVENT_CAPACITY: usize = 8192;
    const MIDI_OUTPUT: MidiConfig = MidiConfig::Basic;
    const SAMPLE_ACCURATE_AUTOMATION: bool = true;

    type Editor = editor::WaveJamEditor;
    type SysExMessage = ();
    type BackgroundTask = ();

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    fn editor(&mut self, _async_executor: AsyncExecutor<Self>) -> Option<Self::Editor> {
        editor::create(self.params.clone(), self.status.clone(), self.panic.clone())
    }

    fn activate(
        &mut self,
        _audio_io_layout: &AudioIOLayout,
        buffer_config: &BufferConfig,
        context: &mut impl ActivateContext<Self>,
    ) -> bool {
        self.deactivate();
        // The long-term memory builds in the background from the first activation; the
        // engines answer without it until it is ready.
        assets::prepare_long_term_in_background();
        self.offline = buffer_config.process_mode == ProcessMode::Offline;
        let mut parked = self.prepare(buffer_config.sample_rate);
        let loads = self.params.session.loads();
        if loads != self.loads_seen {
            // A state was loaded: the generator starts from it, as on reopening the project,
            // not from a model the panel offered before it.
            self.loads_seen = loads;
            parked.worker = None;
            self.status.model_slot.withdraw();
            self.status.session_revision.fetch_add(1, Ordering::Relaxed);
        }
        self.restart_asked = false;
        if let Some(audio) = &mut self.audio {
            // Voices handed over but never taken (the host stopped processing first) would
            // replace the one the project names now.
            audio.sound.drop_handovers();
        }
        self.restore_voice(buffer_config.sample_rate);
        if let Some(audio) = &mut self.audio {
            audio.sound.select(self.params.voice.value());
            let latency = audio.sound.latency() as u32;
            self.status
                .voice_slot
                .latency_samples
                .store(latency, Ordering::Relaxed);
            context.set_latency_samples(latency);
        }
        match GeneratorThread::spawn(parked, self.params.clone(), self.status.clone()) {
            Ok(generator) => self.generator = Some(generator),
            Err(err) => {
                nice_error!("WaveJam could not start its generator thread: {err}");
                return false;
            }
        }
        true
    }

    fn reset(&mut self) {
        // A loaded project may have replaced the session: let the panel redraw it.
        self.status.session_revision.fetch_add(1, Ordering::Relaxed);
        if let Some(audio) = &mut self.audio {
            audio.restart();
        }
    }

    fn deactivate(&mut self) {
        if let Some(mut generator) = self.generator.take() {
            self.parked = generator.stop();
        }
        // Voice files loaded while inactive are only recorded: activation builds the one the
        // project names.
        self.status.voice_slot.set_host_rate(0.0);
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        _aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        #[cfg(test)]
        if self.plant_allocation {
            std::hint::black_box(vec![0u8; 64]);
        }
        let samples = buffer.samples();
        let ahead = match &mut self.audio {
            Some(audio) if self.generator.is_some() => audio.running_ahead(samples),
            _ => return ProcessStatus::Error("process() before activate()"),
        };
        self.status.running_ahead.store(ahead, Ordering::Relaxed);
        let settings = self.settings(self.offline || ahead);
        let Some(running) = &mut self.audio else {
            return ProcessStatus::Error("process() before activate()");
        };
        if self.panic.swap(false, Ordering::Relaxed) {
            running.conductor.request_release();
        }
        if self.params.session.loads() != self.loads_seen && !self.restart_asked {
            // A state loaded into the playing plugin: its voice, phrase model and session take
            // over on the host's restart (deactivate, activate), which releases every note.
            context.request_restart();
            self.restart_asked = true;
        }
        let host = host_time(context.transport());
        running.conductor.process(
            &host,
            samples,
            &settings,
            std::iter::from_fn(|| context.next_event()).filter_map(input_event),
        );

        let outputs = buffer.as_slice();
        let (left, rest) = outputs.split_at_mut(1);
        let (left, right) = (&mut *left[0], &mut *rest[0]);
        let fell_back = running.render(
            left,
            right,
            self.params.voice.value(),
            !settings.offline,
            |event| match context.try_send_event(host_note_event(event)) {
                Ok(()) => Delivery::Taken,
                Err((_, SendEventError::NoOutputBuffer)) => Delivery::NoOutput,
                Err(_) => Delivery::Refused,
            },
        );
        let voices = &self.status.voice_slot;
        if fell_back {
            voices.fallbacks.fetch_add(1, Ordering::Relaxed);
        }
        let latency = running.sound.latency() as u32;
        if voices.latency_samples.swap(latency, Ordering::Relaxed) != latency {
            context.set_latency_samples(latency);
        }
        let max_gain = util::db_to_gain(params::MAX_GAIN_DB);
        for (l, r) in left.iter_mut().zip(right.iter_mut()) {
            let gain = if settings.bypass {
                0.0
            } else {
                // Within range, whatever a restored state asked for.
                self.params.gain.smoothed.next().min(max_gain)
            };
            *l *= gain;
            *r *= gain;
        }
        ProcessStatus::KeepAlive
    }
}

impl ClapPlugin for WaveJam {
    const CLAP_ID: &'static str = "dev.wavejam.wavejam";
    const CLAP_DESCRIPTION: Option<&'static str> =
        Some("Listens to your phrase and answers it in time");
    const CLAP_MANUAL_URL: Option<&'static str> = None;
    const CLAP_SUPPORT_URL: Option<&'static str> = None;
    const CLAP_FEATURES: &'static [ClapFeature] = &[
        ClapFeature::Instrument,
        ClapFeature::Synthesizer,
        ClapFeature::NoteEffect,
        ClapFeature::Stereo,
    ];
}

impl Vst3Plugin for WaveJam {
    const VST3_CLASS_ID: [u8; 16] = *b"WaveJamDuetPlug!";
    const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] = &[
        Vst3SubCategory::Instrument,
        Vst3SubCategory::Synth,
        Vst3SubCategory::Generator,
    ];
}

nice_export_clap!(WaveJam);
nice_export_vst3!(WaveJam);
