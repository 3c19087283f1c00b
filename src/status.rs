//! Live figures the audio and generator threads publish for the panel: atomics (the audio thread
//! never locks), and the model slot the panel and the generator share.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};

use atomic_float::AtomicF64;

/// What WaveJam is doing, as the panel shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Activity {
    /// Waiting for the player.
    Listening = 0,
    /// The player is playing a phrase.
    Hearing = 1,
    /// A phrase ended; the answer starts on the next grid point.
    Waiting = 2,
    /// The answer is playing.
    Answering = 3,
}

impl Activity {
    pub fn label(self) -> &'static str {
        match self {
            Activity::Listening => "listening",
            Activity::Hearing => "hearing you",
            Activity::Waiting => "about to answer",
            Activity::Answering => "answering",
        }
    }
}

/// Shared between the plugin's threads and the panel.
#[derive(Debug, Default)]
pub struct Status {
    activity: AtomicU8,
    pub tempo_bpm: AtomicF64,
    /// Playhead in beats (host position while playing, internal clock while stopped).
    pub beat: AtomicF64,
    pub playing: AtomicBool,
    /// Bar length in beats.
    pub bar_beats: AtomicF64,
    /// A bar line of the host's, in beats, and its bar's number (0 for the song's first).
    pub bar_origin_beat: AtomicF64,
    pub bar_origin_number: AtomicI64,
    /// Observations dropped because the audio → generator ring was full.
    pub observation_overflows: AtomicU64,
    /// Times the generator found the generator → audio ring full and had to retry.
    pub schedule_ring_full: AtomicU64,
    /// Answer notes dropped because an answer exceeded the audio thread's slot.
    pub answer_overflows: AtomicU64,
    /// Note events the host refused (its output queue was full).
    pub host_refused_events: AtomicU64,
    /// The host gave WaveJam no MIDI output at its last note event (not counted as refusals).
    pub host_has_no_midi_output: AtomicBool,
    /// Note-ons dropped because a block was full.
    pub dropped_note_ons: AtomicU64,
    /// The key heard in the session's phrases, as [`crate::music::key::Key::index`] + 1 (0: none
    /// heard yet).
    pub heard_key: AtomicU8,
    /// The player's tempo heard with the transport stopped (free tempo), in BPM; 0 while the
    /// host's tempo rules or none was heard.
    pub heard_tempo_bpm: AtomicF64,
    /// Where the player's latest phrase began in their bar as heard with the transport stopped
    /// (free tempo), in their beats after its bar line: 0 on the downbeat, 2.5 for a pickup 8th
    /// before the next bar of 3/4. Meaningful while [`Status::heard_tempo_bpm`] is not 0.
    pub heard_start_in_bar: AtomicF64,
    /// The grid of the latest phrase heard, as [`crate::listen::transcribe::Grid`] `as u8` + 1
    /// (0: none heard yet).
    pub heard_grid: AtomicU8,
    /// Wall time of the generator's last answer, in microseconds.
    pub last_answer_micros: AtomicU64,
    /// Answers that arrived after their grid point and started on a later one.
    pub late_answers: AtomicU64,
    /// Answers a bounce (or a host running ahead of the clock) gave up waiting for, after
    /// [`crate::audio::conductor::OFFLINE_WAIT_LIMIT`] in all, or whose request was lost.
    pub skipped_answers: AtomicU64,
    /// The host renders far faster than real time (or offline): the audio thread waits, bounded,
    /// for the generator, as in a bounce.
    pub running_ahead: AtomicBool,
    /// The corpus' long-term memory is still being built: `hybrid` and `markov` answer without it.
    pub warming_up: AtomicBool,
    /// Times the generator thread panicked (it restarts once per activation, then stays down).
    pub generator_panics: AtomicU64,
    /// The generator thread is down for the rest of this activation: nothing is answered.
    pub generator_dead: AtomicBool,
    /// Incremented by the generator whenever the last phrase / answer in the session changes, so
    /// the panel knows to redraw its piano rolls.
    pub session_revision: AtomicU64,
    /// The model hand-over between the panel and the generator, and the panel's line about the
    /// model; the audio thread reads only its `generation` atomic.
    pub model_slot: crate::models::choice::ModelSlot,
    /// The custom voice's hand-over between the panel and the audio thread, the panel's line
    /// about it, and the neural voice's counters.
    pub voice_slot: crate::voice::slot::VoiceSlot,
}

impl Status {
    pub fn activity(&self) -> Activity {
        match self.activity.load(Ordering::Relaxed) {
            1 => Activity::Hearing,
            2 => Activity::Waiting,
            3 => Activity::Answering,
            _ => Activity::Listening,
        }
    }

    pub fn set_activity(&self, activity: Activity) {
        self.activity.store(activity as u8, Ordering::Relaxed);
    }
}
