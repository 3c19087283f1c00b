//! The audio-thread side of call and response: stamps the player's notes in beats, detects the end
//! of a phrase, asks the generator for an answer ahead of time, starts it on the host's grid, and
//! releases every note it emitted whenever the music is interrupted.
//!
//! Host-independent (no nice-plug types), so it is tested directly; `lib.rs` adapts it to the host.
//! Nothing here allocates, locks or blocks, except the bounded wait of an offline bounce.
//!
//! Every release (barge-in, transport stop or jump, panic, engine, model or mode change, bypass)
//! moves on to a new answer serial, the generation the generator tags its answers with: nothing
//! of a cancelled answer can play afterwards. A restart of processing (`reset()`, activation)
//! releases what sounds but keeps the answer due, which starts on its grid point.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::audio::answer::{AnswerEvent, AnswerSlot};
use crate::audio::clock::{next_grid_point, BlockTime, Clock, Continuity, HostTime};
use crate::audio::events::{BlockEvents, OutEvent};
use crate::audio::sustain::Sustain;
use crate::audio::synth::VoiceSource;
use crate::params::{EngineChoice, Mode, Output, Quantize, ScaleLock, SeedMode};
use crate::protocol::{Observation, PlayerTime, Request, Scheduled, Source};
use crate::status::{Activity, Status};

/// MIDI channel (0-based) the answer is sent on.
pub const ANSWER_CHANNEL: u8 = 0;
/// Longest an offline bounce waits for the generator, in all, for one answer before it goes on
/// without it.
pub const OFFLINE_WAIT_LIMIT: Duration = Duration::from_secs(2);
/// Longest a bounce the host declared offline waits for one answer while the engines' long-term
/// memory is still being built (a few seconds of one core after the first activation): the
/// answer waits for it, and [`OFFLINE_WAIT_LIMIT`] counts from the end of the warm-up.
pub const OFFLINE_WARM_UP_LIMIT: Duration = Duration::from_secs(60);

/// Parameter values for one block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub engine: EngineChoice,
    /// Counts model loads ([`crate::models::choice::ModelShared::generation`]); a change releases.
    pub model_generation: u64,
    pub temperature: f32,
    pub seed: u32,
    pub seed_mode: SeedMode,
    pub wait_beats: f64,
    pub answer_bars: u32,
    pub quantize: Quantize,
    pub mode: Mode,
    /// Current value of the `generate` trigger; a rising edge answers now.
    pub generate: bool,
    pub barge_in: bool,
    pub output: Output,
    pub thru: bool,
    pub bypass: bool,
    /// The scale answers keep to.
    pub scale: ScaleLock,
    /// How much of the player's groove answers play with (0–1).
    pub feel: f32,
    /// The host renders offline, or far faster than real time: waiting for the generator is
    /// allowed (bounded).
    pub offline: bool,
    /// The host said it renders offline (not only runs ahead of the clock, which a live host
    /// may do): a bounce may wait for the generator's warm-up too.
    pub host_offline: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            engine: EngineChoice::Hybrid,
            model_generation: 0,
            temperature: 1.0,
            seed: 1,
            seed_mode: SeedMode::Fixed,
            wait_beats: 1.0,
            answer_bars: 2,
            quantize: Quantize::Beat,
            mode: Mode::Answer,
            generate: false,
            barge_in: true,
            output: Output::MidiAndAudio,
            thru: true,
            bypass: false,
            scale: ScaleLock::Off,
            feel: 1.0,
            offline: false,
            host_offline: false,
        }
    }
}

/// What the host did with a note event WaveJam sent to its MIDI output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Taken,
    /// Refused: its queue was full (or it found the event invalid).
    Refused,
    /// The host gives WaveJam no MIDI output here (a VST3 host with no event bus connected):
    /// it refuses everything, and holds no note.
    NoOutput,
}

/// A release of every note on WaveJam's voice within a block: at `offset`, after the block's
/// events before `before_event` and before the others (a release in the middle of a block, as an
/// offline bounce's wait can bring, comes after the notes struck at its offset before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoicesRelease {
    pub before_event: usize,
    pub offset: u32,
}

/// A MIDI event from the player.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputEvent {
    /// Sample offset in the block.
    pub offset: u32,
    /// MIDI channel, 0–15; `None` means every channel (a key struck on it is channel 1's).
    pub channel: Option<u8>,
    pub action: PlayerAction,
}

/// What the player did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayerAction {
    /// Struck `key` at `velocity` (1–127).
    Strike { key: u8, velocity: u8 },
    /// Let `key` go; `None`: every key (MIDI "all notes off", CC 123, or a host's note-off on
    /// every key). Where the sustain pedal is down, it holds the notes let go, as the MIDI
    /// specification asks of "all notes off".
    Release { key: Option<u8> },
    /// End `key`'s note now, pedal or not (`None`: every key's): a host's choke, or MIDI "all
    /// sound off" (CC 120).
    Cut { key: Option<u8> },
    /// Put the sustain pedal (MIDI CC 64) down or lifted it.
    Pedal { down: bool },
}

/// The channels `channel` names, a bit each (`None`: all 16).
fn channel_bits(channel: Option<u8>) -> u16 {
    channel.map_or(u16::MAX, |c| 1 << (c & 15))
}

/// Where the player's current phrase stands.
#[derive(Debug, Clone, Copy)]
struct Phrase {
    /// Keys held by the player: the channels each is held on, a bit each.
    held: [u16; 128],
    /// Notes since the last phrase end.
    has_notes: bool,
    /// Beat of the last release with no key held.
    last_release_beat: f64,
}

impl Default for Phrase {
    fn default() -> Self {
        Self {
            held: [0; 128],
            has_notes: false,
            last_release_beat: 0.0,
        }
    }
}

impl Phrase {
    fn any_held(&self) -> bool {
        self.held.iter().any(|h| *h != 0)
    }
}

/// The audio thread's conductor.
pub struct Conductor {
    clock: Clock,
    time: BlockTime,
    to_generator: rtrb::Producer<Observation>,
    from_generator: rtrb::Consumer<Scheduled>,
    status: Arc<Status>,
    events: BlockEvents,
    answer: AnswerSlot,
    phrase: Phrase,
    /// The sustain pedal and the thru notes it holds.
    sustain: Sustain,
    /// Serial of the latest request.
    serial: u64,
    /// Phrases answered since playback started (seeds `SeedMode::NewEachPhrase`).
    phrase_index: u64,
    /// Sample offset up to which the block has been processed.
    cursor: u32,
    previous: Option<Settings>,
    /// Release everything at the start of the next block (after a panic).
    release_pending: bool,
    /// Processing restarted (`reset()`, activation): at the start of the next block, release
    /// what sounds but keep the answer due.
    restart_pending: bool,
    /// The answer serial the offline wait is for, when the wait for it began, and when its
    /// [`OFFLINE_WAIT_LIMIT`] began (the end of the generator's warm-up, if later).
    wait_began: Option<(u64, Instant, Instant)>,
    /// [`Status::generator_panics`] as last seen: a change means the requests in flight are lost.
    generator_panics_seen: u64,
    /// Where in this block WaveJam's voice must release every note: the first release and,
    /// if there is another, the last (which releases whatever was struck in between).
    voices_releases: [Option<VoicesRelease>; 2],
    /// The player's own time (free tempo) of the latest answer that followed it: the Wait is in
    /// their beats. Forgotten when the transport plays or jumps.
    player: Option<PlayerTime>,
}

impl Conductor {
    pub fn new(
        sample_rate_hz: f32,
        to_generator: rtrb::Producer<Observation>,
        from_generator: rtrb::Consumer<Scheduled>,
        status: Arc<Status>,
    ) -> Self {
        let mut clock = Clock::new(sample_rate_hz);
        let time = clock.advance(&HostTime::default(), 0);
        Self {
            clock,
            time,
            to_generator,
            from_generator,
            status,
            events: BlockEvents::default(),
            answer: AnswerSlot::default(),
            phrase: Phrase::default(),
            sustain: Sustain::default(),
            serial: 0,
            phrase_index: 0,
            cursor: 0,
            previous: None,
            release_pending: false,
            restart_pending: false,
            wait_began: None,
            generator_panics_seen: 0,
            voices_releases: [None; 2],
            player: None,
        }
    }

    /// Release everything at the start of the next block (a panic: the host gives no way to send
    /// events outside `process()`). The phrase, the learned memory and the generator are kept.
    pub fn request_release(&mut self) {
        self.release_pending = true;
    }

    /// Processing (re)starts (`reset()`): at the start of the next block, every note sounding is
    /// released (the voice was reset) but the answer due is kept, so a stop and start of
    /// processing with the transport where it was changes nothing musical.
    pub fn request_restart(&mut self) {
        self.restart_pending = true;
    }

    /// New rings to a new generator thread (the previous one was lost with its ends); call
    /// [`Conductor::reactivate`] next.
    pub fn connect(
        &mut self,
        to_generator: rtrb::Producer<Observation>,
        from_generator: rtrb::Consumer<Scheduled>,
    ) {
        self.to_generator = to_generator;
        self.from_generator = from_generator;
    }

    /// The host activated the plugin again, at `sample_rate_hz`: the session (the phrases heard
    /// and what the generator learned from them) goes on, and the first block releases every note
    /// still sounding on the MIDI output from before the deactivation.
    ///
    /// What the host interrupted is dropped: the answer playing or due, and the phrase in
    /// progress (the player's keys and pedal held then are forgotten, so a release lost in
    /// between cannot hold the phrase open or the pedal down for ever). With the transport
    /// stopped the internal clock starts again from beat 0, as on the first activation, so a
    /// host that re-activates before each render renders the same phrase the same way.
    pub fn reactivate(&mut self, sample_rate_hz: f32) {
        self.clock.set_sample_rate(sample_rate_hz);
        self.clock.restart_internal();
        self.request_release();
        self.phrase = Phrase::default();
        self.sustain = Sustain::default();
        self.player = None;
        self.send(Observation::Discontinuity);
    }

    /// The events of the last processed block, in time order.
    pub fn events(&self) -> &[OutEvent] {
        self.events.as_slice()
    }

    /// Where the voice must release every note in the last block: its first release and its
    /// last, if any.
    pub fn voices_releases(&self) -> [Option<VoicesRelease>; 2] {
        self.voices_releases
    }

    /// What the host did with the block's MIDI event `index`: a refused note-on is not sounding
    /// there; a refused note-off is retried at the next block if the host holds the note (see
    /// [`BlockEvents::host_refused`]). Refusals are counted for the panel, a missing MIDI output
    /// is shown there.
    pub fn host_answered(&mut self, index: usize, delivery: Delivery) {
        self.status
            .host_has_no_midi_output
            .store(delivery == Delivery::NoOutput, Ordering::Relaxed);
        match delivery {
            Delivery::Taken => self.events.host_took(index),
            Delivery::Refused => {
                self.status
                    .host_refused_events
                    .fetch_add(1, Ordering::Relaxed);
                self.events.host_refused(index);
            }
            Delivery::NoOutput => self.events.host_refused(index),
        }
    }

    /// Keys sounding on the MIDI output right now.
    pub fn midi_sounding(&self) -> usize {
        self.events.sounding_count()
    }

    /// The timeline of the last block.
    pub fn time(&self) -> &BlockTime {
        &self.time
    }

    /// Process one block of `samples` samples: the player's events (in time order) go in, the
    /// block's output events come out through [`Conductor::events`].
    pub fn process(
        &mut self,
        host: &HostTime,
        samples: usize,
        settings: &Settings,
        inputs: impl IntoIterator<Item = InputEvent>,
    ) {
        self.events.clear();
        self.voices_releases = [None; 2];
        self.cursor = 0;
        self.time = self.clock.advance(host, samples);
        self.receive();
        self.follow_generator();
        self.apply_interruptions(settings);

        if settings.bypass {
            // Keep track of releases and the pedal, so a key let go while bypassed doesn't stay
            // held forever (nothing sounds: turning bypass on released it all).
            for input in inputs {
                let channels = channel_bits(input.channel);
                match input.action {
                    PlayerAction::Strike { .. } => {}
                    PlayerAction::Release { key: Some(key) }
                    | PlayerAction::Cut { key: Some(key) } => {
                        self.phrase.held[key as usize & 127] &= !channels;
                    }
                    PlayerAction::Release { key: None } | PlayerAction::Cut { key: None } => {
                        self.phrase.held.iter_mut().for_each(|h| *h &= !channels);
                    }
                    PlayerAction::Pedal { down } => self.sustain.set_pedal(channels, down),
                }
            }
            self.publish();
            return;
        }
        if settings.generate && !self.previous.is_some_and(|p| p.generate) {
            self.answer_now(settings, Source::Phrase);
        }
        self.previous = Some(*settings);

        for input in inputs {
            // In time order, even from a host that sends them out of it.
            let offset = input
                .offset
                .min(samples.saturating_sub(1) as u32)
                .max(self.cursor);
            self.advance_to(offset, settings);
            let channels = channel_bits(input.channel);
            match input.action {
                PlayerAction::Strike { key, velocity } => {
                    let channel = input.channel.unwrap_or(0);
                    self.strike(channel, key, velocity, offset, settings);
                }
                PlayerAction::Release { key: Some(key) } => {
                    self.release(input.channel, key, offset, settings);
                }
                PlayerAction::Release { key: None } | PlayerAction::Cut { key: None } => {
                    for key in 0..128u8 {
                        if self.phrase.held[key as usize] & channels != 0 {
                            self.release(input.channel, key, offset, settings);
                        }
                    }
                    if matches!(input.action, PlayerAction::Cut { .. }) {
                        self.end_sustained(channels, offset);
                    }
                }
                PlayerAction::Cut { key: Some(key) } => {
                    self.release(input.channel, key, offset, settings);
                    for channel in (0..16u8).filter(|c| channels & (1 << c) != 0) {
                        if self.sustain.strike(channel, key) {
                            self.events
                                .note_off(offset, VoiceSource::Player, channel, key, true);
                        }
                    }
                }
                PlayerAction::Pedal { down } => {
                    self.sustain.set_pedal(channels, down);
                    if !down {
                        self.end_sustained(channels, offset);
                    }
                }
            }
        }
        self.advance_to(samples as u32, settings);
        self.publish();
    }

    /// Transport stops, jumps, bypass, mode, engine and model changes, reset and panic release everything;
    /// playback start also restarts the learned memory.
    fn apply_interruptions(&mut self, settings: &Settings) {
        let continuity = self.time.continuity;
        let changed = self.previous.is_some_and(|p| {
            p.mode != settings.mode
                || p.engine != settings.engine
                || p.model_generation != settings.model_generation
        });
        let bypass_on = settings.bypass && !self.previous.is_some_and(|p| p.bypass);
        if continuity != Continuity::Continuous || changed || bypass_on || self.release_pending {
            self.release_everything(0);
            self.release_pending = false;
        } else if self.restart_pending {
            self.release_sounding(0);
        }
        self.restart_pending = false;
        if continuity == Continuity::Jumped || continuity == Continuity::Started {
            self.send(Observation::Discontinuity);
            self.phrase.has_notes = false;
        }
        if continuity != Continuity::Continuous || self.time.playing {
            self.player = None;
        }
        if continuity == Continuity::Started {
            self.send(Observation::ResetMemory);
            self.phrase_index = 0;
        }
        if settings.bypass {
            self.previous = Some(*settings);
        }
    }

    /// Stop the answer (playing or due) and every note on the MIDI output and the voice.
    fn release_everything(&mut self, offset: u32) {
        self.release_answer(offset);
        self.release_sounding(offset);
    }

    /// Release every note on the MIDI output and the voice; an answer playing stops, an answer
    /// due is kept.
    fn release_sounding(&mut self, offset: u32) {
        let release = Some(VoicesRelease {
            before_event: self.events.as_slice().len(),
            offset,
        });
        match &mut self.voices_releases {
            [first @ None, _] => *first = release,
            [_, last] => *last = release,
        }
        if self.answer.is_playing() {
            self.release_answer(offset);
        }
        self.events.release_all_midi(offset);
        // Released with the rest; lifting the pedal later releases nothing more.
        self.sustain.end_held(u16::MAX, |_, _| {});
    }

    /// End the thru notes the sustain pedal holds on `channels`.
    fn end_sustained(&mut self, channels: u16, offset: u32) {
        let events = &mut self.events;
        self.sustain.end_held(channels, |channel, key| {
            events.note_off(offset, VoiceSource::Player, channel, key, true);
        });
    }

    /// Stop the answer, playing or due, and move on to a new serial (generation).
    fn release_answer(&mut self, offset: u32) {
        let events = &mut self.events;
        self.serial += 1;
        self.answer.release_all(self.serial, |key| {
            events.note_off(offset, VoiceSource::Answer, ANSWER_CHANNEL, key, true);
        });
    }

    /// Push to the generator; `false` (counted) if its ring is full.
    fn send(&mut self, observation: Observation) -> bool {
        let sent = self.to_generator.push(observation).is_ok();
        if !sent {
            self.status
                .observation_overflows
                .fetch_add(1, Ordering::Relaxed);
        }
        sent
    }

    /// A generator that panicked lost the requests it had: release everything (the answer due
    /// will not come). One that is down answers nothing more.
    fn follow_generator(&mut self) {
        let panics = self.status.generator_panics.load(Ordering::Acquire);
        if panics != self.generator_panics_seen {
            self.generator_panics_seen = panics;
            // At the block's start, or where a bounce's wait for it stands.
            self.release_everything(self.cursor);
        }
    }

    /// Take what the generator has scheduled.
    fn receive(&mut self) {
        while let Ok(message) = self.from_generator.pop() {
            match message {
                Scheduled::Note { serial, note } => self.answer.receive_note(serial, note),
                Scheduled::End {
                    serial,
                    length_beats,
                    player,
                } => self.answer.receive_end(serial, length_beats, player),
            }
        }
    }

    /// Ask the generator for a new answer that is due at `trigger_beat` (so it starts on the
    /// grid point after it); the slot waits for it.
    fn request(&mut self, settings: &Settings, source: Source, trigger_beat: f64) {
        let step = settings.quantize.step_beats(self.time.bar_beats);
        self.serial += 1;
        self.answer.expect(self.serial);
        // NOTE: the bar length is the host's in the player's time too: a quantize step is as
        // many of their beats as of the host's.
        let request = Request {
            serial: self.serial,
            phrase_index: self.phrase_index,
            engine: settings.engine,
            temperature: settings.temperature,
            seed: settings.seed,
            seed_mode: settings.seed_mode,
            length_beats: settings.answer_bars as f64 * self.time.bar_beats,
            bar_beats: self.time.bar_beats,
            bar_origin_beat: self.time.bar_origin_beat,
            start_beat: self.host_grid_point(trigger_beat, step),
            trigger_beat,
            step_beats: step,
            tempo_bpm: self.time.tempo_bpm,
            free_tempo: !self.time.playing,
            source,
            scale: settings.scale,
            feel: settings.feel,
            offline: settings.host_offline,
        };
        let generator_up = !self.status.generator_dead.load(Ordering::Acquire);
        if generator_up && self.send(Observation::Answer(request)) {
            self.answer.mark_requested();
        }
    }

    /// Answer now (the `generate` trigger, or continuous mode).
    fn answer_now(&mut self, settings: &Settings, source: Source) {
        let beat = self.time.beat_at(self.cursor as usize);
        self.release_answer(self.cursor);
        self.request(settings, source, beat);
        self.answer.trigger(beat);
        self.phrase_index += 1;
    }

    /// The player strikes `key` on `channel`.
    fn strike(&mut self, channel: u8, key: u8, velocity: u8, offset: u32, settings: &Settings) {
        let beat = self.time.beat_at(offset as usize);
        let (channel, key) = (channel & 15, key & 127);
        if settings.barge_in && self.answer.is_engaged() {
            self.release_answer(offset);
        }
        if !self.answer.is_playing() {
            // The phrase goes on: any prepared answer is stale.
            self.serial += 1;
            self.answer.expect(self.serial);
        }
        self.phrase.held[key as usize] |= 1 << channel;
        self.phrase.has_notes = true;
        if self.sustain.strike(channel, key) {
            // The note the pedal held ends, whether thru plays the new one or not.
            self.events
                .note_off(offset, VoiceSource::Player, channel, key, true);
        }
        self.send(Observation::NoteOn {
            pitch: key,
            velocity,
            beat,
        });
        if settings.thru {
            self.events.note_on(OutEvent {
                offset,
                source: VoiceSource::Player,
                channel,
                key,
                velocity: Some(velocity),
                midi: settings.output.midi(),
                audio: settings.output.audio(),
                pedal_held: false,
            });
        }
    }

    /// The player lets `key` go on `channel` (`None`: on every channel it is held on).
    fn release(&mut self, channel: Option<u8>, key: u8, offset: u32, settings: &Settings) {
        let beat = self.time.beat_at(offset as usize);
        let key = key & 127;
        let held = &mut self.phrase.held[key as usize];
        let released = *held & channel_bits(channel);
        *held &= !released;
        // Released whatever the thru setting is now, so a change mid-note can't hang it: on
        // every channel it was held on, and the one named; where the sustain pedal is down, when
        // it lifts.
        let named = channel.map_or(0, |c| 1u16 << (c & 15));
        let (ending, newly_held) = self.sustain.let_go(released | named, key);
        for channel in (0..16u8).filter(|c| (released | named) & (1 << c) != 0) {
            if ending & (1 << channel) != 0 {
                self.events
                    .note_off(offset, VoiceSource::Player, channel, key, true);
            } else if newly_held & (1 << channel) != 0 {
                self.events.let_go_under_pedal(offset, channel, key);
            }
            if released & (1 << channel) != 0 {
                self.send(Observation::NoteOff { pitch: key, beat });
            }
        }
        if released != 0 && !self.phrase.any_held() && self.phrase.has_notes {
            self.phrase.last_release_beat = beat;
            if settings.mode != Mode::Manual && !self.answer.is_playing() {
                // Prepare the answer now, so it is ready when the wait is over.
                let wait = self.wait_beats(settings);
                self.request(settings, Source::Phrase, beat + wait);
            }
        }
    }

    /// Run the timeline up to `limit` (exclusive): phrase end, answer start, answer notes.
    fn advance_to(&mut self, limit: u32, settings: &Settings) {
        let limit_beat = self.time.beat_at(limit as usize);
        self.detect_phrase_end(limit, settings);
        if let Some(trigger) = self
            .answer
            .trigger_beat()
            .filter(|_| !self.answer.is_playing())
        {
            if settings.offline && !self.answer.is_complete() {
                self.wait_for_generator(settings);
            }
            if !self.answer.is_engaged() {
                // Released while waiting (the generator panicked).
            } else if self.answer.is_hopeless() {
                self.skip_answer();
            } else if self.answer.ready_to_start() {
                let step = settings.quantize.step_beats(self.time.bar_beats);
                // In the player's time (free tempo) the grid is theirs.
                let grid_point = |beat: f64| match self.answer.player() {
                    Some(player) => {
                        next_grid_point(beat, step * player.clock_beats, player.origin_beat)
                    }
                    None => self.host_grid_point(beat, step),
                };
                let due = grid_point(trigger);
                let now = self.time.beat_at(self.cursor as usize);
                let start = grid_point(trigger.max(now));
                if start > due {
                    // It came after its grid point: it plays, from the next one.
                    self.status.late_answers.fetch_add(1, Ordering::Relaxed);
                }
                if self.answer.player().is_some() {
                    self.player = self.answer.player();
                }
                self.answer.start(start);
            }
        }
        while let Some(event) = self.next_answer_event(limit) {
            // In time order, within the block (`cursor` is `limit` on a second call for it).
            let last = limit.max(1) - 1;
            let offset =
                (self.time.offset_of(event.beat()) as u32).clamp(self.cursor.min(last), last);
            match event {
                AnswerEvent::On { key, velocity, .. } => {
                    self.events.note_on(OutEvent {
                        offset,
                        source: VoiceSource::Answer,
                        channel: ANSWER_CHANNEL,
                        key,
                        velocity: Some(velocity),
                        midi: settings.output.midi(),
                        audio: settings.output.audio(),
                        pedal_held: false,
                    });
                }
                AnswerEvent::Off { key, .. } => {
                    self.events
                        .note_off(offset, VoiceSource::Answer, ANSWER_CHANNEL, key, true);
                }
            }
            self.cursor = offset;
        }
        if self.answer.finished_by(limit_beat) {
            let end = self.answer.end_beat().unwrap_or(limit_beat);
            self.answer.expect(self.serial);
            if settings.mode == Mode::Continuous && !self.phrase.any_held() {
                self.request(settings, Source::LastAnswer, end);
                self.answer.trigger(end);
                self.phrase_index += 1;
            }
        }
        self.cursor = limit;
    }

    /// The next answer event whose sample offset is before `limit`.
    fn next_answer_event(&mut self, limit: u32) -> Option<AnswerEvent> {
        // Events are placed by sample offset, so the beat limit is the first beat that rounds
        // into sample `limit`.
        let limit_beat = self.time.beat_at(limit as usize) - 0.5 * self.time.beats_per_sample;
        self.answer.next_event_before(limit_beat)
    }

    fn detect_phrase_end(&mut self, limit: u32, settings: &Settings) {
        if !self.phrase.has_notes || self.phrase.any_held() {
            return;
        }
        let due = self.phrase.last_release_beat + self.wait_beats(settings);
        if self.time.offset_of(due) >= limit as usize {
            return;
        }
        self.phrase.has_notes = false;
        self.send(Observation::Commit);
        // NOTE: an answer cancelled since it was asked for (say, by a transport stop) is not
        // asked for again: the phrase ends unanswered.
        if settings.mode != Mode::Manual && !self.answer.is_playing() && self.answer.is_requested()
        {
            self.answer.trigger(due);
            self.phrase_index += 1;
        }
    }

    /// The first point at or after `beat` of the host's grid of `step` beats, counted from each
    /// bar's line: in bars of a fractional number of beats (9/8, say) each bar's beats start at
    /// its own line, and the next bar line is a point too.
    fn host_grid_point(&self, beat: f64, step: f64) -> f64 {
        let (origin, bar) = (self.time.bar_origin_beat, self.time.bar_beats);
        let bars = ((beat - origin) / bar + 1e-9).floor();
        if !bars.is_finite() {
            return next_grid_point(beat, step, origin);
        }
        let line = origin + bars * bar;
        next_grid_point(beat, step, line).min(line + bar)
    }

    /// The Wait, in clock beats: the player's beats if their time is followed.
    fn wait_beats(&self, settings: &Settings) -> f64 {
        settings.wait_beats * self.player.map_or(1.0, |p| p.clock_beats)
    }

    /// Offline bounce: wait until the generator has delivered the awaited answer, at most
    /// [`OFFLINE_WAIT_LIMIT`] in all for one answer (however many blocks ask); in a bounce the
    /// host declared offline, the generator's warm-up (it waits for its long-term memory) does
    /// not count, up to [`OFFLINE_WARM_UP_LIMIT`] in all. Then the bounce goes on without it.
    fn wait_for_generator(&mut self, settings: &Settings) {
        let serial = self.answer.serial();
        let (began, mut counting) = match self.wait_began {
            Some((waited_for, began, counting)) if waited_for == serial => (began, counting),
            _ => {
                let now = Instant::now();
                (now, now)
            }
        };
        loop {
            self.receive();
            self.follow_generator();
            if self.answer.is_complete() || self.answer.is_hopeless() {
                break;
            }
            let now = Instant::now();
            if settings.host_offline && self.status.warming_up.load(Ordering::Relaxed) {
                counting = now;
            }
            if now - began >= OFFLINE_WARM_UP_LIMIT || now - counting >= OFFLINE_WAIT_LIMIT {
                self.answer.forget_request();
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        self.wait_began = Some((serial, began, counting));
    }

    /// The answer due will not come: go on without it (counted for the panel).
    fn skip_answer(&mut self) {
        self.status.skipped_answers.fetch_add(1, Ordering::Relaxed);
        self.serial += 1;
        self.answer.expect(self.serial);
    }

    fn publish(&mut self) {
        let s = &self.status;
        s.tempo_bpm.store(self.time.tempo_bpm, Ordering::Relaxed);
        s.beat.store(self.time.start_beat, Ordering::Relaxed);
        s.bar_beats.store(self.time.bar_beats, Ordering::Relaxed);
        s.bar_origin_beat
            .store(self.time.bar_origin_beat, Ordering::Relaxed);
        s.bar_origin_number
            .store(self.time.bar_origin_number, Ordering::Relaxed);
        s.playing.store(self.time.playing, Ordering::Relaxed);
        s.answer_overflows
            .store(self.answer.overflows, Ordering::Relaxed);
        s.dropped_note_ons
            .store(self.events.dropped_note_ons, Ordering::Relaxed);
        let activity = if self.answer.is_playing() {
            Activity::Answering
        } else if self.answer.trigger_beat().is_some() {
            Activity::Waiting
        } else if self.phrase.has_notes {
            Activity::Hearing
        } else {
            Activity::Listening
        };
        s.set_activity(activity);
    }
}

#[cfg(test)]
#[path = "conductor_tests.rs"]
mod tests;
