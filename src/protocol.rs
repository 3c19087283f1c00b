//! Messages between the audio thread and the generator thread (both ways over wait-free rings).

use crate::music::Note;
use crate::params::{EngineChoice, ScaleLock, SeedMode};

/// Capacity of the audio → generator ring, in observations. A MIDI flood beyond this is counted
/// and dropped; the generator closes any note whose release was dropped at the phrase end.
pub const OBSERVATION_RING_CAPACITY: usize = 1024;
/// Capacity of the generator → audio ring, in scheduled messages (several answers' worth).
pub const SCHEDULE_RING_CAPACITY: usize = 1024;
/// Most notes in one answer; the generator never produces more.
pub const MAX_ANSWER_NOTES: usize = 256;
/// Most answer notes sounding at once: the generator never writes more, the audio thread tracks
/// this many.
pub const MAX_ANSWER_POLYPHONY: usize = 16;

/// The parameter values an answer depends on, captured by the audio thread when it asks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Request {
    /// Tags the answer; the audio thread plays only the answer to its latest request.
    pub serial: u64,
    /// How many phrases were answered since playback started (picks the seed in
    /// [`SeedMode::NewEachPhrase`]).
    pub phrase_index: u64,
    pub engine: EngineChoice,
    pub temperature: f32,
    pub seed: u32,
    pub seed_mode: SeedMode,
    /// Answer length in beats.
    pub length_beats: f64,
    /// Bar length in beats (the host's time signature): the bars the answer is generated in.
    pub bar_beats: f64,
    /// A bar line of the host's, in beats: bars of `bar_beats` run from it (as on the audio
    /// thread's grid).
    pub bar_origin_beat: f64,
    /// Where the answer will start if it is played when due, in host beats: with the bars,
    /// where in its bar it starts.
    pub start_beat: f64,
    /// The beat the answer is due after (it starts on the first grid point at or after it).
    pub trigger_beat: f64,
    /// The Quantize grid's step, in beats.
    pub step_beats: f64,
    /// The clock's tempo, in BPM (the host's; with the transport stopped, the internal clock's).
    pub tempo_bpm: f64,
    /// The transport is stopped: the answer follows the player's own tempo and beat, if heard.
    pub free_tempo: bool,
    /// What to continue.
    pub source: Source,
    /// The scale the answer keeps to.
    pub scale: ScaleLock,
    /// How much of the player's groove the answer plays with (0 on the grid, 1 all of it).
    pub feel: f32,
    /// The host renders offline: the answer waits for the engines' long-term memory if it is
    /// still being built, so a bounce right after the project opens answers as later ones do.
    pub offline: bool,
}

/// What an answer continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The phrase being played (speculatively, while no key is held) or, if none, the last one.
    Phrase,
    /// WaveJam's own last answer (continuous mode).
    LastAnswer,
}

/// Audio thread → generator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Observation {
    /// The player pressed a key at `beat`.
    NoteOn { pitch: u8, velocity: u8, beat: f64 },
    /// The player released a key at `beat`.
    NoteOff { pitch: u8, beat: f64 },
    /// Prepare an answer (sent when no key is held, so the answer is ready when the phrase ends).
    Answer(Request),
    /// The phrase being played ended (it was answered or would have been): learn it.
    Commit,
    /// Playback started: start learning afresh (the tune so far is empty).
    ResetMemory,
    /// The timeline jumped: drop the phrase in progress.
    Discontinuity,
}

/// Generator → audio thread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scheduled {
    /// One note of answer `serial`, onset relative to the answer's start.
    Note { serial: u64, note: Note },
    /// Answer `serial` is complete and lasts `length_beats`; with `player`, it is in the
    /// player's time and starts on their grid.
    End {
        serial: u64,
        length_beats: f64,
        player: Option<PlayerTime>,
    },
}

/// The player's own beat (free tempo) in the audio thread's beats: one player beat lasts
/// `clock_beats` clock beats, and a bar of theirs starts at `origin_beat`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlayerTime {
    pub origin_beat: f64,
    /// Clock beats per player beat (positive).
    pub clock_beats: f64,
}

impl PlayerTime {
    /// `clock_beat` in player beats from their bar line.
    pub fn to_player(&self, clock_beat: f64) -> f64 {
        (clock_beat - self.origin_beat) / self.clock_beats
    }

    /// The player's tempo, for a clock at `clock_bpm`.
    pub fn bpm(&self, clock_bpm: f64) -> f64 {
        clock_bpm / self.clock_beats
    }
}
