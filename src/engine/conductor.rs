//! The audio-thread side of call and response: stamps the player's notes in beats, detects the end
//! of a phrase, asks the generator for an answer ahead of time, starts it on the host's grid, and
//! releases every note it emitted whenever the music is interrupted.
//!
//! Host-independent (no nice-plug types), so it is tested directly; `lib.rs` adapts it to the host.
//! Nothing here allocates, locks or blocks, except the bounded wait of an offline bounce.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::engine::answer::{AnswerEvent, AnswerSlot};
use crate::engine::clock::{next_grid_point, BlockTime, Clock, Continuity, HostTime};
use crate::engine::events::{BlockEvents, OutEvent};
use crate::engine::synth::VoiceSource;
use crate::params::{EngineChoice, Mode, Output, Quantize, SeedMode};
use crate::protocol::{Observation, Request, Scheduled, Source};
use crate::status::{Activity, Status};

/// MIDI channel (0-based) the answer is sent on.
pub const ANSWER_CHANNEL: u8 = 0;
/// Longest an offline bounce waits for the generator before giving up on an answer.
pub const OFFLINE_WAIT_LIMIT: Duration = Duration::from_secs(2);

/// Parameter values for one block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub engine: EngineChoice,
    /// Counts model loads ([`crate::model_choice::ModelShared::generation`]); a change releases.
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
    /// The host renders offline: waiting for the generator is allowed (bounded).
    pub offline: bool,
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
            offline: false,
        }
    }
}

/// A note event from the player.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputEvent {
    /// Sample offset in the block.
    pub offset: u32,
    pub channel: u8,
    /// MIDI key; `None` on a release means every key (a host's "all notes off").
    pub key: Option<u8>,
    /// `Some(velocity 1–127)` for a note-on, `None` for a note-off.
    pub velocity: Option<u8>,
}

/// Where the player's current phrase stands.
#[derive(Debug, Clone, Copy)]
struct Phrase {
    /// Keys held by the player.
    held: [bool; 128],
    /// Notes since the last phrase end.
    has_notes: bool,
    /// Beat of the last release with no key held.
    last_release_beat: f64,
}

impl Default for Phrase {
    fn default() -> Self {
        Self {
            held: [false; 128],
            has_notes: false,
            last_release_beat: 0.0,
        }
    }
}

impl Phrase {
    fn any_held(&self) -> bool {
        self.held.iter().any(|h| *h)
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
    /// Serial of the latest request.
    serial: u64,
    /// Phrases answered since playback started (seeds `SeedMode::NewEachPhrase`).
    phrase_index: u64,
    /// Sample offset up to which the block has been processed.
    cursor: u32,
    previous: Option<Settings>,
    /// Release everything at the start of the next block (after `reset()` or a panic).
    release_pending: bool,
    /// Offset at which WaveJam's voice must release every voice in this block, if any.
    voices_release_at: Option<u32>,
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
            serial: 0,
            phrase_index: 0,
            cursor: 0,
            previous: None,
            release_pending: false,
            voices_release_at: None,
        }
    }

    /// Release everything at the start of the next block (the host gives `reset()` no way to
    /// send events). The phrase, the learned memory and the generator are kept.
    pub fn request_release(&mut self) {
        self.release_pending = true;
    }

    /// The events of the last processed block, in time order.
    pub fn events(&self) -> &[OutEvent] {
        self.events.as_slice()
    }

    /// Offset at which all voices must be released in the last block.
    pub fn voices_release_at(&self) -> Option<u32> {
        self.voices_release_at
    }

    /// The host refused a note-on (`true`) or note-off (`false`) for this key.
    pub fn host_refused(&mut self, channel: u8, key: u8, was_note_on: bool) {
        self.status
            .host_refused_events
            .fetch_add(1, Ordering::Relaxed);
        if was_note_on {
            self.events.forget(channel, key);
        } else {
            self.events.retry_off(channel, key);
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
        self.voices_release_at = None;
        self.cursor = 0;
        self.time = self.clock.advance(host, samples);
        self.receive();
        self.apply_interruptions(settings);

        if settings.bypass {
            // Keep track of releases, so a key let go while bypassed doesn't stay held forever.
            for input in inputs.into_iter().filter(|i| i.velocity.is_none()) {
                match input.key {
                    Some(key) => self.phrase.held[key as usize & 127] = false,
                    None => self.phrase.held = [false; 128],
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
            let offset = input.offset.min(samples.saturating_sub(1) as u32);
            self.advance_to(offset, settings);
            match input.key {
                Some(key) => {
                    self.handle_input(input.channel, key, input.velocity, offset, settings)
                }
                None => {
                    for key in 0..128u8 {
                        if self.phrase.held[key as usize] {
                            self.handle_input(input.channel, key, None, offset, settings);
                        }
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
        }
        if continuity == Continuity::Jumped || continuity == Continuity::Started {
            self.send(Observation::Discontinuity);
            self.phrase.has_notes = false;
        }
        if continuity == Continuity::Started {
            self.send(Observation::ResetMemory);
            self.phrase_index = 0;
        }
        if settings.bypass {
            self.previous = Some(*settings);
        }
    }

    fn release_everything(&mut self, offset: u32) {
        self.answer.release_all(|_| {});
        self.events.release_all_midi(offset);
        self.voices_release_at = Some(offset);
    }

    fn release_answer(&mut self, offset: u32) {
        let events = &mut self.events;
        self.answer.release_all(|key| {
            events.note_off(offset, VoiceSource::Answer, ANSWER_CHANNEL, key, true);
        });
    }

    fn send(&mut self, observation: Observation) {
        if self.to_generator.push(observation).is_err() {
            self.status
                .observation_overflows
                .fetch_add(1, Ordering::Relaxed);
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
                } => self.answer.receive_end(serial, length_beats),
            }
        }
    }

    /// Ask the generator for a new answer that is due at `trigger_beat` (so it starts on the
    /// grid point after it); the slot waits for it.
    fn request(&mut self, settings: &Settings, source: Source, trigger_beat: f64) {
        let step = settings.quantize.step_beats(self.time.bar_beats);
        self.serial += 1;
        self.answer.expect(self.serial);
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
            start_beat: next_grid_point(trigger_beat, step, self.time.bar_origin_beat),
            source,
        };
        self.send(Observation::Answer(request));
    }

    /// Answer now (the `generate` trigger, or continuous mode).
    fn answer_now(&mut self, settings: &Settings, source: Source) {
        let beat = self.time.beat_at(self.cursor as usize);
        self.release_answer(self.cursor);
        self.request(settings, source, beat);
        self.answer.trigger(beat);
        self.phrase_index += 1;
    }

    fn handle_input(
        &mut self,
        channel: u8,
        key: u8,
        velocity: Option<u8>,
        offset: u32,
        settings: &Settings,
    ) {
        let beat = self.time.beat_at(offset as usize);
        let (channel, key) = (channel & 15, key & 127);
        match velocity {
            Some(velocity) => {
                if settings.barge_in && self.answer.is_engaged() {
                    self.release_answer(offset);
                }
                if !self.answer.is_playing() {
                    // The phrase goes on: any prepared answer is stale.
                    self.serial += 1;
                    self.answer.expect(self.serial);
                }
                self.phrase.held[key as usize] = true;
                self.phrase.has_notes = true;
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
                    });
                }
            }
            None => {
                let was_held = std::mem::replace(&mut self.phrase.held[key as usize], false);
                if was_held {
                    self.send(Observation::NoteOff { pitch: key, beat });
                }
                // Released whatever the thru setting is now, so a change mid-note can't hang it.
                self.events
                    .note_off(offset, VoiceSource::Player, channel, key, true);
                if was_held && !self.phrase.any_held() && self.phrase.has_notes {
                    self.phrase.last_release_beat = beat;
                    if settings.mode != Mode::Manual && !self.answer.is_playing() {
                        // Prepare the answer now, so it is ready when the wait is over.
                        self.request(settings, Source::Phrase, beat + settings.wait_beats);
                    }
                }
            }
        }
    }

    /// Run the timeline up to `limit` (exclusive): phrase end, answer start, answer notes.
    fn advance_to(&mut self, limit: u32, settings: &Settings) {
        let limit_beat = self.time.beat_at(limit as usize);
        self.detect_phrase_end(limit, settings);
        if self.answer.trigger_beat().is_some() && !self.answer.is_playing() {
            if settings.offline && !self.answer.is_complete() {
                self.wait_for_generator();
            }
            if self.answer.ready_to_start() {
                let earliest = self
                    .answer
                    .trigger_beat()
                    .unwrap_or(limit_beat)
                    .max(self.time.beat_at(self.cursor as usize));
                let step = settings.quantize.step_beats(self.time.bar_beats);
                self.answer
                    .start(next_grid_point(earliest, step, self.time.bar_origin_beat));
            }
        }
        while let Some(event) = self.next_answer_event(limit) {
            let offset =
                (self.time.offset_of(event.beat()) as u32).clamp(self.cursor, limit.max(1) - 1);
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
        let due = self.phrase.last_release_beat + settings.wait_beats;
        if self.time.offset_of(due) >= limit as usize {
            return;
        }
        self.phrase.has_notes = false;
        self.send(Observation::Commit);
        if settings.mode != Mode::Manual && !self.answer.is_playing() {
            self.answer.trigger(due);
            self.phrase_index += 1;
        }
    }

    /// Offline bounce: wait (bounded) until the generator has delivered the awaited answer.
    fn wait_for_generator(&mut self) {
        let deadline = Instant::now() + OFFLINE_WAIT_LIMIT;
        while !self.answer.is_complete() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(200));
            self.receive();
        }
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
