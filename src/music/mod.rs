//! Musical vocabulary shared by the audio thread, the generator thread and the tools.
//!
//! Time is in beats (quarter notes) as `f64`, the host's PPQ unit, so answers follow the host tempo.

pub mod encoding;
pub mod key;
pub mod meter;
pub mod midi_file;

/// Ticks per beat of WaveJam's time grid: 24 makes 32nd notes and triplets exact (a 12-tick
/// grid loses 1.2% of the training corpus' notes).
pub const TICKS_PER_BEAT: u32 = 24;

/// A time in beats as the nearest tick (negative and NaN times count as 0).
pub fn beats_to_ticks(beats: f64) -> u64 {
    // NOTE: `f64::max` returns the non-NaN operand, and `as` saturates huge values.
    (beats.max(0.0) * f64::from(TICKS_PER_BEAT)).round() as u64
}

/// A tick count in beats.
pub fn ticks_to_beats(ticks: u64) -> f64 {
    ticks as f64 / f64::from(TICKS_PER_BEAT)
}

/// One note in musical time.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Note {
    /// MIDI key, 0–127.
    pub pitch: u8,
    /// MIDI velocity, 1–127.
    pub velocity: u8,
    /// Onset in beats. In a phrase: from the phrase's first note; in an answer: from the answer's start.
    pub onset_beats: f64,
    /// Length in beats, > 0.
    pub duration_beats: f64,
}

impl Note {
    /// Beat at which the note is released.
    pub fn end_beats(&self) -> f64 {
        self.onset_beats + self.duration_beats
    }
}
