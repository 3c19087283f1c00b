//! Conductor tests with the real generator logic run synchronously between blocks.

use super::*;
use crate::generator::worker::Worker;
use crate::music::Note;
use crate::params::WaveJamParams;
use crate::protocol::{OBSERVATION_RING_CAPACITY, SCHEDULE_RING_CAPACITY};

const SR: f32 = 48_000.0;
/// Samples per beat at 120 BPM and 48 kHz.
const SPB: f64 = 24_000.0;

struct Rig {
    conductor: Conductor,
    observations: rtrb::Consumer<Observation>,
    schedule: rtrb::Producer<Scheduled>,
    worker: Worker,
    status: Arc<Status>,
    settings: Settings,
    host: HostTime,
    /// Where the host's bars of `bar_beats` start after a first bar of 2/4 at beat 0 (`None`: no
    /// bar starts reported).
    bars_from: Option<f64>,
    bar_beats: f64,
    /// Absolute sample of the next block.
    position: u64,
    /// (absolute sample, event) of everything emitted.
    out: Vec<(u64, OutEvent)>,
    /// The generator is held back: nothing is answered until [`Rig::pump`] is called.
    hold: bool,
}

impl Rig {
    fn new() -> Self {
        let status = Arc::new(Status::default());
        let (to_gen, observations) = rtrb::RingBuffer::new(OBSERVATION_RING_CAPACITY);
        let (schedule, from_gen) = rtrb::RingBuffer::new(SCHEDULE_RING_CAPACITY);
        let params = WaveJamParams::default();
        Self {
            conductor: Conductor::new(SR, to_gen, from_gen, status.clone()),
            observations,
            schedule,
            worker: Worker::new(&params, status.clone()),
            status,
            settings: Settings {
                thru: false,
                ..Settings::default()
            },
            host: HostTime {
                playing: true,
                tempo_bpm: Some(120.0),
                pos_beats: Some(0.0),
                time_signature: Some((4, 4)),
                bar_start_beats: None,
                bar_number: None,
            },
            bars_from: None,
            bar_beats: 4.0,
            position: 0,
            out: Vec::new(),
            hold: false,
        }
    }

    /// Run the generator on everything observed so far.
    fn pump(&mut self) {
        while let Ok(o) = self.observations.pop() {
            if let Some((request, answer)) = self.worker.handle(o) {
                for message in answer.messages(request.serial) {
                    self.schedule.push(message).unwrap();
                }
            }
        }
    }

    fn block(&mut self, samples: usize, inputs: &[InputEvent]) -> Vec<OutEvent> {
        if self.host.playing {
            let pos = self.position as f64 / SPB;
            self.host.pos_beats = Some(pos);
            let bar_beats = self.bar_beats;
            let bar = self.bars_from.map(|from| {
                if pos < from {
                    (0.0, 0)
                } else {
                    let bars = ((pos - from) / bar_beats).floor();
                    (from + bars * bar_beats, 1 + bars as i32)
                }
            });
            self.host.bar_start_beats = bar.map(|b| b.0);
            self.host.bar_number = bar.map(|b| b.1);
        }
        self.conductor
            .process(&self.host, samples, &self.settings, inputs.iter().copied());
        let events = self.conductor.events().to_vec();
        for e in &events {
            self.out.push((self.position + e.offset as u64, *e));
        }
        self.position += samples as u64;
        if !self.hold {
            self.pump();
        }
        events
    }

    /// Run to absolute sample `end` in blocks, placing `inputs` (absolute sample, event).
    fn run_to(&mut self, end: u64, block: usize, inputs: &[(u64, InputEvent)]) {
        while self.position < end {
            let n = ((end - self.position) as usize).min(block);
            let here: Vec<InputEvent> = inputs
                .iter()
                .filter(|(t, _)| *t >= self.position && *t < self.position + n as u64)
                .map(|(t, e)| InputEvent {
                    offset: (*t - self.position) as u32,
                    ..*e
                })
                .collect();
            self.block(n, &here);
        }
    }

    fn answer_ons(&self) -> Vec<(u64, u8)> {
        self.out
            .iter()
            .filter(|(_, e)| e.source == VoiceSource::Answer && e.velocity.is_some())
            .map(|(t, e)| (*t, e.key))
            .collect()
    }
}

fn on(key: u8) -> InputEvent {
    InputEvent {
        offset: 0,
        channel: Some(0),
        action: PlayerAction::Strike { key, velocity: 100 },
    }
}

fn off(key: u8) -> InputEvent {
    InputEvent {
        action: PlayerAction::Release { key: Some(key) },
        ..on(key)
    }
}

/// A two-bar phrase with repeated pitches that branch, as (absolute sample, event).
fn phrase() -> Vec<(u64, InputEvent)> {
    let pitches = [60, 62, 64, 60, 62, 67, 60, 62];
    let mut events = Vec::new();
    for (i, p) in pitches.iter().enumerate() {
        let start = (i as f64 * SPB) as u64;
        events.push((start, on(*p)));
        events.push((start + (0.9 * SPB) as u64, off(*p)));
    }
    events
}

/// Beat of the last note-off of [`phrase`].
const PHRASE_END_BEAT: f64 = 7.9;

fn assert_all_closed(out: &[(u64, OutEvent)]) {
    let mut sounding = std::collections::BTreeMap::new();
    for (_, e) in out.iter().filter(|(_, e)| e.midi) {
        let count = sounding.entry((e.channel, e.key)).or_insert(0i32);
        *count += if e.velocity.is_some() { 1 } else { -1 };
        assert!(
            (0..=1).contains(count),
            "double note-on or stray note-off for {:?}",
            e
        );
    }
    assert!(
        sounding.values().all(|c| *c == 0),
        "stuck notes: {sounding:?}"
    );
}

#[test]
fn a_phrase_is_answered_on_the_next_beat_after_the_wait() {
    let mut rig = Rig::new();
    rig.run_to((16.0 * SPB) as u64, 512, &phrase());
    let ons = rig.answer_ons();
    assert!(!ons.is_empty(), "no answer");
    let first_beat = ons[0].0 as f64 / SPB;
    // Last release at 7.9, wait 1 beat → due 8.9 → next beat 9.0.
    assert_eq!(
        ons[0].0,
        (9.0 * SPB) as u64,
        "first answer note at beat {first_beat}"
    );
    let answer_end = 9.0 + 8.0;
    assert!(ons.iter().all(|(t, _)| (*t as f64) < answer_end * SPB));
    assert!(first_beat <= PHRASE_END_BEAT + 1.0 + 1.0);
}

#[test]
fn answers_end_with_every_note_released() {
    let mut rig = Rig::new();
    rig.run_to((20.0 * SPB) as u64, 333, &phrase());
    assert!(!rig.answer_ons().is_empty());
    assert_all_closed(&rig.out);
    assert_eq!(rig.conductor.midi_sounding(), 0);
}

#[test]
fn the_answer_does_not_depend_on_the_block_size() {
    let answer_at = |block: usize| {
        let mut rig = Rig::new();
        rig.run_to((20.0 * SPB) as u64, block, &phrase());
        rig.answer_ons()
    };
    let reference = answer_at(512);
    for block in [1usize, 32, 100, 4096] {
        assert_eq!(answer_at(block), reference, "block size {block}");
    }
}

#[test]
fn quantize_bar_starts_the_answer_on_the_next_bar() {
    let mut rig = Rig::new();
    rig.settings.quantize = Quantize::Bar;
    rig.run_to((20.0 * SPB) as u64, 512, &phrase());
    assert_eq!(rig.answer_ons()[0].0, (12.0 * SPB) as u64);
}

/// After a 2/4 bar the host's bar lines are at 2, 6, 10…: the answer due at 8.9 starts at 10.
#[test]
fn quantize_bar_follows_the_hosts_bar_lines() {
    let mut rig = Rig::new();
    rig.settings.quantize = Quantize::Bar;
    rig.bars_from = Some(2.0);
    rig.run_to((20.0 * SPB) as u64, 512, &phrase());
    assert_eq!(rig.answer_ons()[0].0, (10.0 * SPB) as u64);
    // The panel is told the host's bars: the last block started in bar 5 (0-based), at 18.
    let origin = rig.status.bar_origin_beat.load(Ordering::Relaxed);
    assert_eq!(origin, 18.0);
    assert_eq!(rig.status.bar_origin_number.load(Ordering::Relaxed), 5);
}

#[test]
fn barge_in_releases_every_answer_note_in_the_same_block() {
    let mut rig = Rig::new();
    rig.run_to((9.5 * SPB) as u64, 256, &phrase());
    assert!(
        rig.conductor.midi_sounding() > 0,
        "answer should be sounding"
    );
    let sounding = rig.conductor.midi_sounding();
    let events = rig.block(
        256,
        &[InputEvent {
            offset: 100,
            ..on(72)
        }],
    );
    let offs: Vec<_> = events
        .iter()
        .filter(|e| e.source == VoiceSource::Answer && e.velocity.is_none() && e.midi)
        .collect();
    // Answer notes that began earlier in this block are released too.
    let started_here = events
        .iter()
        .filter(|e| e.source == VoiceSource::Answer && e.velocity.is_some() && e.midi)
        .inspect(|e| assert!(e.offset < 100, "an answer note-on after the barge-in"))
        .count();
    assert_eq!(offs.len(), sounding + started_here);
    // Those sounding at the barge-in stop exactly there; the others ended before it, as they
    // do in the same block without the barge-in.
    let mut unbroken = Rig::new();
    unbroken.run_to((9.5 * SPB) as u64, 256, &phrase());
    let ended_before = unbroken
        .block(256, &[])
        .iter()
        .filter(|e| e.source == VoiceSource::Answer && e.velocity.is_none() && e.midi)
        .filter(|e| e.offset < 100)
        .count();
    assert!(offs.iter().all(|e| e.offset <= 100));
    assert_eq!(
        offs.iter().filter(|e| e.offset == 100).count(),
        offs.len() - ended_before
    );
    assert_eq!(rig.conductor.midi_sounding(), 0);
    // The answer is over: nothing more from it, even much later.
    let before = rig.answer_ons().len();
    rig.run_to((12.0 * SPB) as u64, 256, &[]);
    assert_eq!(rig.answer_ons().len(), before);
}

#[test]
fn without_barge_in_the_answer_plays_on() {
    let mut rig = Rig::new();
    rig.settings.barge_in = false;
    rig.run_to((9.5 * SPB) as u64, 256, &phrase());
    let before = rig.answer_ons().len();
    rig.block(256, &[on(72)]);
    rig.run_to((17.0 * SPB) as u64, 256, &[((10.0 * SPB) as u64, off(72))]);
    assert!(rig.answer_ons().len() > before);
}

#[test]
fn transport_stop_releases_everything_in_that_block_and_the_clock_runs_on() {
    let mut rig = Rig::new();
    rig.settings.thru = true;
    rig.run_to((9.5 * SPB) as u64, 256, &phrase());
    assert!(rig.conductor.midi_sounding() > 0);
    rig.host.playing = false;
    let events = rig.block(256, &[]);
    assert!(events.iter().all(|e| e.velocity.is_none() && e.offset == 0));
    assert_eq!(rig.conductor.midi_sounding(), 0);
    let releases = rig.conductor.voices_releases();
    assert_eq!(releases.map(|r| r.map(|r| r.offset)), [Some(0), None]);
    let t = rig.conductor.time().start_beat;
    rig.block(24_000, &[]);
    assert!((rig.conductor.time().start_beat - t - 256.0 / SPB).abs() < 1e-9);
}

#[test]
fn a_loop_jump_releases_everything() {
    let mut rig = Rig::new();
    rig.run_to((9.5 * SPB) as u64, 256, &phrase());
    assert!(rig.conductor.midi_sounding() > 0);
    rig.position = 0;
    rig.block(256, &[]);
    assert_eq!(rig.conductor.midi_sounding(), 0);
}

#[test]
fn the_clock_answers_with_the_transport_stopped() {
    let mut rig = Rig::new();
    rig.host = HostTime::default();
    rig.run_to((16.0 * SPB) as u64, 512, &phrase());
    assert!(!rig.answer_ons().is_empty());
}

#[test]
fn manual_mode_answers_only_on_the_generate_trigger() {
    let mut rig = Rig::new();
    rig.settings.mode = Mode::Manual;
    rig.run_to((14.0 * SPB) as u64, 512, &phrase());
    assert!(rig.answer_ons().is_empty());
    rig.settings.generate = true;
    rig.block(512, &[]);
    rig.settings.generate = false;
    rig.run_to((24.0 * SPB) as u64, 512, &[]);
    let ons = rig.answer_ons();
    assert!(!ons.is_empty());
    assert!(ons[0].0 >= (14.0 * SPB) as u64);
    assert_all_closed(&rig.out);
}

#[test]
fn continuous_mode_keeps_answering_its_own_answers() {
    let mut rig = Rig::new();
    rig.settings.mode = Mode::Continuous;
    rig.settings.answer_bars = 1;
    rig.run_to((40.0 * SPB) as u64, 512, &phrase());
    let late = rig
        .answer_ons()
        .iter()
        .filter(|(t, _)| *t as f64 > 20.0 * SPB)
        .count();
    assert!(late > 0, "continuous mode stopped after one answer");
}

/// Mode, engine and model changes each release the answer playing, in the next block.
#[test]
fn mode_engine_and_model_changes_release_the_answer() {
    let changes: [fn(&mut Settings); 3] = [
        |s| s.mode = Mode::Manual,
        |s| s.engine = EngineChoice::Markov,
        |s| s.model_generation += 1,
    ];
    for change in changes {
        let mut rig = Rig::new();
        rig.run_to((9.5 * SPB) as u64, 256, &phrase());
        assert!(rig.conductor.midi_sounding() > 0);
        change(&mut rig.settings);
        rig.block(256, &[]);
        assert_eq!(rig.conductor.midi_sounding(), 0);
        assert_all_closed(&rig.out);
    }
}

#[test]
fn reset_and_panic_release_at_the_next_block() {
    for restart in [false, true] {
        let mut rig = Rig::new();
        rig.run_to((9.5 * SPB) as u64, 256, &phrase());
        assert!(rig.conductor.midi_sounding() > 0);
        if restart {
            rig.conductor.request_restart();
        } else {
            rig.conductor.request_release();
        }
        rig.block(256, &[]);
        assert_eq!(rig.conductor.midi_sounding(), 0);
        assert_all_closed(&rig.out);
        // The answer that was playing is over: nothing more of it plays.
        let before = rig.answer_ons().len();
        rig.run_to((20.0 * SPB) as u64, 256, &[]);
        assert_eq!(rig.answer_ons().len(), before, "restart {restart}");
    }
}

/// The answer ons of a rig that plays the phrase to beat 20 in blocks of 256, with `between`
/// done to it at beat `at`.
fn answer_with(at: f64, hold: bool, between: impl FnOnce(&mut Rig)) -> Vec<(u64, u8)> {
    let mut rig = Rig::new();
    rig.hold = hold;
    rig.run_to((at * SPB) as u64, 256, &phrase());
    between(&mut rig);
    rig.hold = false;
    rig.pump();
    rig.run_to((20.0 * SPB) as u64, 256, &phrase());
    assert_all_closed(&rig.out);
    rig.answer_ons()
}

/// A stop and start of processing (`reset()`) 0.1 beat after the phrase ends, before the
/// answer's grid point, keeps the answer: the same notes at the same samples, whether the
/// generator had delivered it already or not.
#[test]
fn a_restart_of_processing_keeps_the_answer_due() {
    let reference = answer_with(PHRASE_END_BEAT + 0.1, false, |_| {});
    assert!(!reference.is_empty());
    for hold in [false, true] {
        let restarted = answer_with(PHRASE_END_BEAT + 0.1, hold, |rig| {
            rig.conductor.request_restart();
        });
        assert_eq!(restarted, reference, "generator held back: {hold}");
    }
}

/// An answer cancelled while the generator works on it (panic, engine change) never plays,
/// even when it arrives after the release.
#[test]
fn a_cancelled_answer_never_plays_when_it_arrives_later() {
    let cancels: [fn(&mut Rig); 3] = [
        |rig| rig.conductor.request_release(),
        |rig| rig.settings.engine = EngineChoice::Markov,
        |rig| rig.settings.model_generation += 1,
    ];
    for cancel in cancels {
        let ons = answer_with(PHRASE_END_BEAT + 0.1, true, |rig| {
            cancel(rig);
            rig.block(256, &[]);
        });
        assert!(ons.is_empty(), "the cancelled answer played: {ons:?}");
    }
}

/// An answer that comes after its grid point plays from the next one, whole, and is counted.
#[test]
fn a_late_answer_plays_from_the_next_grid_point_and_is_counted() {
    let mut rig = Rig::new();
    rig.hold = true;
    rig.run_to((9.5 * SPB) as u64, 256, &phrase());
    assert!(rig.answer_ons().is_empty());
    rig.hold = false;
    rig.pump();
    rig.run_to((20.0 * SPB) as u64, 256, &[]);
    let reference = answer_with(PHRASE_END_BEAT + 0.1, false, |_| {});
    let shifted: Vec<(u64, u8)> = reference
        .iter()
        .map(|(t, key)| (t + SPB as u64, *key))
        .filter(|(t, _)| *t < (20.0 * SPB) as u64)
        .collect();
    assert_eq!(rig.answer_ons(), shifted);
    assert_eq!(rig.status.late_answers.load(Ordering::Relaxed), 1);
    assert_all_closed(&rig.out);
}

/// A bounce waits for an answer at most [`OFFLINE_WAIT_LIMIT`] in all, then goes on without it
/// (counted); the answer arriving afterwards does not play.
#[test]
fn a_bounce_gives_up_on_an_answer_after_the_wait_limit() {
    let mut rig = Rig::new();
    rig.settings.offline = true;
    rig.hold = true;
    rig.run_to((10.0 * SPB) as u64, 256, &phrase());
    assert_eq!(rig.status.skipped_answers.load(Ordering::Relaxed), 1);
    rig.hold = false;
    rig.pump();
    rig.run_to((20.0 * SPB) as u64, 256, &[]);
    assert!(rig.answer_ons().is_empty());
    assert_eq!(rig.status.activity(), Activity::Listening);
}

/// While the generator warms up (it waits for its long-term memory) a bounce the host declared
/// offline waits for the answer beyond [`OFFLINE_WAIT_LIMIT`], which counts from the end of the
/// warm-up; a host only running ahead of the clock (maybe live) is not held up by it.
#[test]
fn a_declared_bounce_waits_out_the_generators_warm_up() {
    let warm_after = OFFLINE_WAIT_LIMIT + Duration::from_millis(500);
    for host_offline in [false, true] {
        let mut rig = Rig::new();
        rig.settings.offline = true;
        rig.settings.host_offline = host_offline;
        rig.hold = true;
        rig.status.warming_up.store(true, Ordering::Relaxed);
        let status = rig.status.clone();
        let began = Instant::now();
        let warmed = std::thread::spawn(move || {
            std::thread::sleep(warm_after);
            status.warming_up.store(false, Ordering::Relaxed);
        });
        rig.run_to((10.0 * SPB) as u64, 256, &phrase());
        let waited = began.elapsed();
        warmed.join().unwrap();
        assert_eq!(rig.status.skipped_answers.load(Ordering::Relaxed), 1);
        if host_offline {
            assert!(
                waited >= warm_after + OFFLINE_WAIT_LIMIT,
                "gave up after {waited:?}"
            );
        } else {
            assert!(waited < warm_after, "waited {waited:?} for the warm-up");
        }
    }
}

/// After the host re-activates (here at another sample rate) the first block releases every
/// note still sounding from before.
#[test]
fn reactivation_releases_what_sounded_in_its_first_block() {
    let mut rig = Rig::new();
    rig.settings.thru = true;
    rig.settings.barge_in = false;
    let mut inputs = phrase();
    inputs.push(((9.2 * SPB) as u64, on(72)));
    rig.run_to((9.5 * SPB) as u64, 256, &inputs);
    assert!(
        rig.conductor.midi_sounding() >= 2,
        "an answer note and a held thru note"
    );
    rig.conductor.reactivate(96_000.0);
    let events = rig.block(256, &[]);
    assert_eq!(rig.conductor.midi_sounding(), 0);
    assert!(events.iter().all(|e| e.offset == 0 && e.velocity.is_none()));
    assert_all_closed(&rig.out);
}

/// A generator that panicked lost its requests: everything is released at the next block; one
/// that is down is asked nothing, and the phrase end is not left waiting for it.
#[test]
fn a_failed_generator_releases_everything_and_is_not_waited_for() {
    let mut rig = Rig::new();
    rig.run_to((9.5 * SPB) as u64, 256, &phrase());
    assert!(rig.conductor.midi_sounding() > 0);
    rig.status.generator_panics.fetch_add(1, Ordering::AcqRel);
    rig.block(256, &[]);
    assert_eq!(rig.conductor.midi_sounding(), 0);

    let mut rig = Rig::new();
    rig.settings.offline = true;
    rig.status.generator_dead.store(true, Ordering::Release);
    rig.run_to((12.0 * SPB) as u64, 256, &phrase());
    assert!(rig.answer_ons().is_empty());
    assert_eq!(rig.status.activity(), Activity::Listening);
    assert_eq!(rig.status.skipped_answers.load(Ordering::Relaxed), 0);
}

/// A generator that fails while a bounce waits for it in the middle of a block releases the
/// voice there, after the block's notes before it (the MIDI output releases them there too):
/// released at the block's start, a note struck before the wait would start again after the
/// release and hang.
#[test]
fn a_generator_failing_during_a_bounces_wait_releases_where_it_failed() {
    let mut rig = Rig::new();
    rig.settings.offline = true;
    rig.settings.thru = true;
    rig.hold = true;
    // One bounce block of a second: a phrase ends in it, and a note struck 1.25 beats after
    // its end finds the answer due, waiting for the generator, which fails meanwhile.
    let status = rig.status.clone();
    let failing = std::thread::spawn(move || {
        // Well inside the wait (2 s), which begins at once.
        std::thread::sleep(Duration::from_millis(1000));
        status.generator_panics.fetch_add(1, Ordering::AcqRel);
    });
    let events = rig.block(
        48_000,
        &[
            InputEvent {
                offset: 100,
                ..on(60)
            },
            InputEvent {
                offset: 1_000,
                ..off(60)
            },
            InputEvent {
                offset: 31_000,
                ..on(62)
            },
        ],
    );
    failing.join().unwrap();
    // (The block's first release is the start of playback's, at 0.)
    let release = rig.conductor.voices_releases()[1].expect("a release where it failed");
    assert!(release.offset >= 1_000, "{release:?}");
    assert!(release.before_event >= 2, "{release:?}: {events:?}");
    let struck = events
        .iter()
        .position(|e| e.key == 62 && e.velocity.is_some());
    assert!(struck.is_some_and(|i| i >= release.before_event));
}

#[test]
fn bypass_releases_and_stays_quiet() {
    let mut rig = Rig::new();
    rig.run_to((9.5 * SPB) as u64, 256, &phrase());
    rig.settings.bypass = true;
    rig.block(256, &[]);
    assert_eq!(rig.conductor.midi_sounding(), 0);
    let before = rig.out.len();
    rig.run_to((16.0 * SPB) as u64, 256, &[]);
    assert_eq!(rig.out.len(), before);
}

#[test]
fn thru_echoes_the_player_and_releases_it() {
    let mut rig = Rig::new();
    rig.settings.thru = true;
    rig.settings.mode = Mode::Manual;
    rig.run_to((10.0 * SPB) as u64, 512, &phrase());
    let player: Vec<_> = rig
        .out
        .iter()
        .filter(|(_, e)| e.source == VoiceSource::Player)
        .collect();
    assert_eq!(player.len(), 16);
    assert_eq!(player[0].0, 0);
    assert_all_closed(&rig.out);
}

#[test]
fn a_midi_flood_is_survived_and_leaves_nothing_hanging() {
    let mut rig = Rig::new();
    rig.settings.thru = true;
    let flood: Vec<InputEvent> = (0..5000u32)
        .map(|i| InputEvent {
            offset: i % 512,
            channel: Some((i % 16) as u8),
            ..on((i % 128) as u8)
        })
        .collect();
    let mut sorted = flood.clone();
    sorted.sort_by_key(|e| e.offset);
    rig.block(512, &sorted);
    let all_off: Vec<InputEvent> = (0..16u8)
        .map(|channel| InputEvent {
            channel: Some(channel),
            action: PlayerAction::Release { key: None },
            offset: 0,
        })
        .collect();
    rig.block(512, &all_off);
    assert_eq!(
        rig.conductor.midi_sounding(),
        0,
        "each channel's all-notes-off"
    );
    assert!(rig.status.observation_overflows.load(Ordering::Relaxed) > 0);
    assert_all_closed(&rig.out);
}

#[test]
fn same_seed_same_answer_and_seed_matters() {
    let answer = |seed: u32| {
        let mut rig = Rig::new();
        rig.settings.seed = seed;
        rig.run_to((20.0 * SPB) as u64, 512, &phrase());
        rig.answer_ons()
    };
    assert_eq!(answer(5), answer(5));
    let distinct: std::collections::BTreeSet<_> = (1..8).map(answer).collect();
    assert!(distinct.len() > 1, "every seed gave the same answer");
}

#[test]
fn temperature_zero_is_the_same_for_every_seed() {
    let answer = |seed: u32| {
        let mut rig = Rig::new();
        rig.settings.seed = seed;
        rig.settings.temperature = 0.0;
        rig.run_to((20.0 * SPB) as u64, 512, &phrase());
        rig.answer_ons()
    };
    assert_eq!(answer(1), answer(2));
}

#[test]
fn the_session_keeps_the_last_phrase_and_answer() {
    let mut rig = Rig::new();
    rig.run_to((20.0 * SPB) as u64, 512, &phrase());
    let session = rig.worker_session();
    assert_eq!(session.last_phrase.len(), 8);
    assert!(!session.last_answer.is_empty());
    let first: Vec<Note> = session.last_phrase.iter().take(1).copied().collect();
    assert_eq!(first[0].pitch, 60);
    assert_eq!(first[0].onset_beats, 0.0);
}

impl Rig {
    fn worker_session(&self) -> crate::persist::Session {
        self.worker.session_snapshot()
    }
}

#[test]
fn a_key_released_while_bypassed_does_not_hang_the_phrase() {
    let mut rig = Rig::new();
    rig.block(512, &[on(60)]);
    rig.settings.bypass = true;
    rig.block(512, &[off(60)]);
    rig.settings.bypass = false;
    rig.run_to((2.0 * SPB) as u64, 512, &[]);
    rig.run_to(
        (12.0 * SPB) as u64,
        512,
        &[
            ((2.0 * SPB) as u64 + 10, on(62)),
            ((3.0 * SPB) as u64, off(62)),
        ],
    );
    assert!(!rig.answer_ons().is_empty(), "the phrase never ended");
}

/// `notes` (in beats) played at `bpm` from `start_seconds`, as (absolute sample, event).
fn performed(notes: &[Note], bpm: f64, start_seconds: f64) -> Vec<(u64, InputEvent)> {
    let sample = |beats: f64| ((start_seconds + beats * 60.0 / bpm) * f64::from(SR)) as u64;
    let mut events: Vec<(u64, InputEvent)> = notes
        .iter()
        .flat_map(|n| {
            [
                (sample(n.onset_beats), on(n.pitch)),
                (sample(n.end_beats()), off(n.pitch)),
            ]
        })
        .collect();
    events.sort_by_key(|(t, e)| (*t, matches!(e.action, PlayerAction::Strike { .. })));
    events
}

/// With the transport stopped, a player at their own tempo (70 or 160 BPM against the host's
/// 120) is answered at their tempo, on their beat, in their bars: every answer onset within 1/48
/// of their beat of a 16th or triplet point of it, the first after their phrase and its Wait (in
/// their beats), the phrase's pickup heard as one.
#[test]
fn a_free_player_is_answered_at_their_tempo_on_their_beat() {
    for bpm in [70.0, 160.0] {
        let mut rig = Rig::new();
        rig.host.playing = false;
        let start = 0.37;
        let tune = crate::lab::performance::played_live(&crate::test_kit::folk_tune(0), bpm, 5);
        let phrase = performed(&tune, bpm, start);
        let phrase_end = phrase.last().unwrap().0;
        let beat_samples = 60.0 / bpm * f64::from(SR);
        rig.run_to(phrase_end + (12.0 * beat_samples) as u64, 256, &phrase);
        let heard = rig.status.heard_tempo_bpm.load(Ordering::Relaxed);
        assert!(
            (heard / bpm - 1.0).abs() < 0.03,
            "heard {heard:.1} BPM, played {bpm}"
        );
        // The answer is saved in their beats, with their tempo (the clock's is 120).
        assert_eq!(rig.worker_session().answer_tempo_bpm, Some(heard));
        // In their bars (4/4, the host's): the tune begins with a pickup 8th, on beat 4.5.
        let start = rig.status.heard_start_in_bar.load(Ordering::Relaxed);
        assert!(
            (start - 3.5).abs() < 0.1,
            "{bpm} BPM: heard to begin {start:.2} beats into its bar"
        );
        let ons = rig.answer_ons();
        assert!(ons.len() >= 4, "{bpm} BPM: {} answer notes", ons.len());
        assert!(ons[0].0 as f64 >= phrase_end as f64 + beat_samples * 0.99);
        let origin = start * f64::from(SR);
        for (t, _) in &ons {
            let in_twelfths = (*t as f64 - origin) / beat_samples * 12.0;
            let off_grid = (in_twelfths - in_twelfths.round()).abs() / 12.0;
            assert!(
                off_grid <= 1.0 / 48.0,
                "{bpm} BPM: an onset {off_grid:.3} beats off"
            );
        }
        assert_all_closed(&rig.out);
    }
}

/// A free player keeps their tempo from phrase to phrase: a line of quarters at 150 BPM, heard
/// alone in 8ths at 75 (a unit test of the beat finder), is heard at 150 after a phrase at 150.
#[test]
fn a_free_players_next_phrase_is_heard_at_the_tempo_they_set() {
    let bpm = 150.0;
    let mut rig = Rig::new();
    rig.host.playing = false;
    let beat_samples = 60.0 / bpm * f64::from(SR);
    let first = performed(&crate::test_kit::folk_tune(0), bpm, 0.37);
    let first_end = first.last().unwrap().0;
    rig.run_to(first_end + (16.0 * beat_samples) as u64, 256, &first);
    let start = (first_end + (16.0 * beat_samples) as u64) as f64 / f64::from(SR);
    let second = performed(&crate::listen::tempo::tests::hymn_line(), bpm, start);
    let second_end = second.last().unwrap().0;
    rig.run_to(second_end + (16.0 * beat_samples) as u64, 256, &second);
    let heard = rig.status.heard_tempo_bpm.load(Ordering::Relaxed);
    assert!((heard / bpm - 1.0).abs() < 0.03, "heard {heard:.1} BPM");
    assert_all_closed(&rig.out);
}

/// A free player who comes back in after the answer keeps counting its bars: a phrase that
/// enters on beat 2 (the folk tune from its second beat) is heard there after a phrase that set
/// the bars, though alone its notes say a phrase begins on a downbeat or with a pickup.
#[test]
fn a_free_players_next_phrase_is_heard_in_the_bars_they_kept() {
    let bpm = 160.0;
    let mut rig = Rig::new();
    rig.host.playing = false;
    let beat_samples = 60.0 / bpm * f64::from(SR);
    let start = 0.37;
    let tune = crate::lab::performance::played_live(&crate::test_kit::folk_tune(0), bpm, 5);
    let first = performed(&tune, bpm, start);
    let first_end = first.last().unwrap().0;
    let second_from = first_end + (12.0 * beat_samples) as u64;
    rig.run_to(second_from, 256, &first);
    let heard = rig.status.heard_start_in_bar.load(Ordering::Relaxed);
    assert!(
        (heard - 3.5).abs() < 0.1,
        "first phrase heard from {heard:.2}"
    );
    // The player's bar lines fall on the tune's beats 0, 4, 8, … (its pickup 8th is beat 4.5);
    // the second phrase, the tune's beats 5 to 11.5 (up to its first rest), enters on beat 2
    // of the first bar after `second_from`.
    let since_start = second_from as f64 / beat_samples - start * bpm / 60.0;
    let bar = (since_start / 4.0).ceil() * 4.0;
    let from_beat_two: Vec<Note> = crate::test_kit::folk_tune(0)
        .into_iter()
        .filter(|n| (5.0..11.5).contains(&n.onset_beats))
        .map(|n| Note {
            onset_beats: n.onset_beats - 4.0 + bar,
            ..n
        })
        .collect();
    let second = performed(
        &crate::lab::performance::played_live(&from_beat_two, bpm, 6),
        bpm,
        start,
    );
    let second_end = second.last().unwrap().0;
    rig.run_to(second_end + (12.0 * beat_samples) as u64, 256, &second);
    let heard = rig.status.heard_start_in_bar.load(Ordering::Relaxed);
    assert!(
        (heard - 1.0).abs() < 0.1,
        "second phrase heard from {heard:.2}"
    );
    assert_all_closed(&rig.out);
}

/// A release on every channel (a CLAP note-off with channel −1) lets go of a key struck on
/// channel 4, on the MIDI output and the voice.
#[test]
fn a_release_on_every_channel_lets_go_of_a_key_held_on_any() {
    let mut rig = Rig::new();
    rig.settings.thru = true;
    rig.block(
        256,
        &[InputEvent {
            channel: Some(3),
            ..on(60)
        }],
    );
    assert_eq!(rig.conductor.midi_sounding(), 1);
    let offs = rig.block(
        256,
        &[InputEvent {
            channel: None,
            ..off(60)
        }],
    );
    assert_eq!(rig.conductor.midi_sounding(), 0);
    assert!(offs.iter().any(|e| e.channel == 3
        && e.key == 60
        && e.velocity.is_none()
        && e.midi
        && e.audio));
}

/// A host that sends a block's events out of time order (CLAP asks it not to) gets WaveJam's
/// back in time order, so the voice never renders a span that ends before it starts.
#[test]
fn events_sent_out_of_order_come_back_in_order() {
    let mut rig = Rig::new();
    rig.settings.thru = true;
    let late = InputEvent {
        offset: 100,
        ..on(60)
    };
    let early = InputEvent {
        offset: 50,
        ..on(62)
    };
    let events = rig.block(256, &[late, early]);
    let offsets: Vec<u32> = events.iter().map(|e| e.offset).collect();
    assert_eq!(events.len(), 2);
    assert!(offsets.windows(2).all(|w| w[0] <= w[1]), "{offsets:?}");
}

/// With the transport playing, the host's tempo rules, whatever the player's.
#[test]
fn a_playing_transport_keeps_the_hosts_tempo() {
    let mut rig = Rig::new();
    // On the host's grid (a player off the host's tempo makes no groove worth playing).
    rig.settings.feel = 0.0;
    let tune = crate::test_kit::folk_tune(0);
    let phrase = performed(&tune, 70.0, 0.0);
    let end = phrase.last().unwrap().0 + (8.0 * SPB) as u64;
    rig.run_to(end, 256, &phrase);
    assert_eq!(rig.status.heard_tempo_bpm.load(Ordering::Relaxed), 0.0);
    let ons = rig.answer_ons();
    assert!(!ons.is_empty());
    // Quantize: a beat; events on ticks (24 a beat) of the host's beat.
    assert_eq!(ons[0].0 % SPB as u64, 0);
    assert!(ons.iter().all(|(t, _)| t % (SPB as u64 / 24) == 0));
}

/// In 9/8 the beats of each bar start at its own bar line (4.5 beats apart): the answer starts
/// on a beat of the bar it falls in or on the next bar line, where it was asked for, even after
/// the bar it was asked in has passed.
#[test]
fn in_nine_eight_answers_start_on_a_beat_of_their_own_bar() {
    let nine_eight = || {
        let mut rig = Rig::new();
        rig.host.time_signature = Some((9, 8));
        (rig.bars_from, rig.bar_beats) = (Some(0.0), 4.5);
        rig
    };
    let mut rig = nine_eight();
    // Last release at 7.9 (bar 2, from 4.5); due at 8.9: bar 3's line at 9.0 comes first.
    rig.run_to((20.0 * SPB) as u64, 256, &phrase());
    let ons = rig.answer_ons();
    assert!(!ons.is_empty());
    assert_eq!(ons[0].0, (9.0 * SPB) as u64);
    // Wait 1.25 beats: due at 9.15 in bar 3, whose beats are 9.0 + k: 10.0.
    let mut rig = nine_eight();
    rig.settings.wait_beats = 1.25;
    rig.run_to((20.0 * SPB) as u64, 256, &phrase());
    assert_eq!(rig.answer_ons()[0].0, (10.0 * SPB) as u64);
}

fn pedal(down: bool) -> InputEvent {
    InputEvent {
        action: PlayerAction::Pedal { down },
        ..on(0)
    }
}

/// The player's thru note-offs (`pedal_held`: the keys let go under the pedal instead):
/// (absolute sample, key), in time order.
fn thru_offs(out: &[(u64, OutEvent)], pedal_held: bool) -> Vec<(u64, u8)> {
    let mut offs: Vec<(u64, u8)> = out
        .iter()
        .filter(|(_, e)| e.source == VoiceSource::Player && e.velocity.is_none())
        .filter(|(_, e)| e.pedal_held == pedal_held)
        .map(|(t, e)| (*t, e.key))
        .collect();
    offs.sort();
    offs
}

/// With the sustain pedal down, the thru notes ring on until it lifts (a key struck again ends
/// its held note then), but the phrase is heard as the keys play it: the answer is the one
/// played without the pedal, and it comes while the pedal is still down.
#[test]
fn the_sustain_pedal_holds_the_thru_notes_not_the_phrase() {
    let lift = (12.0 * SPB) as u64;
    let run = |pedalled: bool| {
        let mut rig = Rig::new();
        rig.settings.thru = true;
        let mut inputs = phrase();
        if pedalled {
            inputs.insert(0, (0, pedal(true)));
            inputs.push((lift, pedal(false)));
        }
        rig.run_to((20.0 * SPB) as u64, 256, &inputs);
        assert_all_closed(&rig.out);
        rig
    };
    let (plain, pedalled) = (run(false), run(true));
    assert!(!plain.answer_ons().is_empty());
    assert!(plain.answer_ons()[0].0 < lift);
    assert_eq!(pedalled.answer_ons(), plain.answer_ons());
    // 60 and 62 are struck again: each held note ends where its key is struck next.
    let struck_again = |key: u8, beat: f64| (((beat * SPB) as u64), key);
    let expected = vec![
        struck_again(60, 3.0),
        struck_again(62, 4.0),
        struck_again(60, 6.0),
        struck_again(62, 7.0),
        (lift, 60),
        (lift, 62),
        (lift, 64),
        (lift, 67),
    ];
    assert_eq!(thru_offs(&pedalled.out, false), expected);
    // The voice is told of every key let go under the pedal, when it is let go (a one-line
    // voice ends its note then), and the synth and MIDI output are not.
    let let_go: Vec<(u64, u8)> = phrase()
        .into_iter()
        .filter(|(_, e)| matches!(e.action, PlayerAction::Release { .. }))
        .map(|(t, e)| match e.action {
            PlayerAction::Release { key: Some(key) } => (t, key),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(thru_offs(&pedalled.out, true), let_go);
    assert!(pedalled
        .out
        .iter()
        .all(|(_, e)| !e.pedal_held || (e.audio && !e.midi)));
    assert_eq!(pedalled.conductor.midi_sounding(), 0);
}

/// A note the pedal holds ends when its key is struck again, with thru off by then too; "all
/// notes off" leaves the pedal's notes to it, as MIDI asks; "all sound off" and a choke end
/// them.
#[test]
fn the_pedals_notes_end_when_struck_with_thru_off_and_when_cut() {
    let mut rig = Rig::new();
    rig.settings.thru = true;
    rig.block(256, &[pedal(true), on(60), on(64)]);
    rig.block(256, &[off(60), off(64)]);
    assert_eq!(rig.conductor.midi_sounding(), 2);
    rig.settings.thru = false;
    rig.block(256, &[on(60)]);
    assert_eq!(rig.conductor.midi_sounding(), 1, "64 rings on");
    let action = |action| InputEvent { action, ..on(0) };
    rig.block(256, &[off(60), action(PlayerAction::Release { key: None })]);
    assert_eq!(rig.conductor.midi_sounding(), 1, "64 is still the pedal's");
    rig.block(256, &[action(PlayerAction::Cut { key: None })]);
    assert_eq!(rig.conductor.midi_sounding(), 0);
    rig.settings.thru = true;
    rig.block(256, &[on(62), off(62)]);
    assert_eq!(rig.conductor.midi_sounding(), 1);
    rig.block(256, &[action(PlayerAction::Cut { key: Some(62) })]);
    assert_eq!(rig.conductor.midi_sounding(), 0, "choked");
    rig.block(256, &[pedal(false)]);
    assert_all_closed(&rig.out);
}

/// A transport stop releases the notes the pedal holds, and the pedal, still down, goes on
/// holding the keys let go next; a reactivation forgets it (its lift may be lost in between).
#[test]
fn a_stop_ends_the_pedals_notes_and_a_reactivation_lifts_it() {
    let mut rig = Rig::new();
    rig.settings.thru = true;
    rig.block(256, &[pedal(true), on(60)]);
    rig.block(256, &[off(60)]);
    rig.host.playing = false;
    rig.block(256, &[]);
    assert_eq!(rig.conductor.midi_sounding(), 0);
    rig.block(256, &[on(62)]);
    rig.block(256, &[off(62)]);
    assert_eq!(rig.conductor.midi_sounding(), 1, "the pedal is still down");
    rig.conductor.reactivate(SR);
    rig.block(256, &[]);
    assert_eq!(rig.conductor.midi_sounding(), 0);
    rig.block(256, &[on(64)]);
    rig.block(256, &[off(64)]);
    assert_eq!(
        rig.conductor.midi_sounding(),
        0,
        "lifted by the reactivation"
    );
    let offs = rig.block(256, &[pedal(false)]);
    assert!(offs.is_empty(), "{offs:?}");
    assert_all_closed(&rig.out);
}

/// A host without a MIDI output for WaveJam is shown as such, not counted as refusing every
/// event (a full queue is).
#[test]
fn a_host_without_a_midi_output_is_told_apart_from_a_full_queue() {
    let mut rig = Rig::new();
    rig.settings.thru = true;
    let refused = |rig: &Rig| rig.status.host_refused_events.load(Ordering::Relaxed);
    let no_output = |rig: &Rig| rig.status.host_has_no_midi_output.load(Ordering::Relaxed);
    rig.block(256, &[on(60)]);
    rig.conductor.host_answered(0, Delivery::NoOutput);
    assert_eq!((refused(&rig), no_output(&rig)), (0, true));
    rig.block(256, &[off(60), on(62)]);
    rig.conductor.host_answered(0, Delivery::Refused);
    assert_eq!((refused(&rig), no_output(&rig)), (1, false));
    rig.conductor.host_answered(1, Delivery::Taken);
    assert_eq!((refused(&rig), no_output(&rig)), (1, false));
}
