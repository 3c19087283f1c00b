//! Figures the panel shows, derived from [`Status`] values.

use std::sync::atomic::{AtomicU64, Ordering};

use egui::Color32;

use super::theme;
use crate::listen::transcribe::Grid;
use crate::music::key::Key;
use crate::status::Status;

/// Tempo assumed while the host has not reported one, in BPM.
pub const FALLBACK_TEMPO_BPM: f64 = 120.0;
/// Bar length assumed while the host has not reported a time signature, in beats.
pub const FALLBACK_BAR_BEATS: f64 = 4.0;

/// A counter of the panel's health row: its name, the status field it shows, what it counts.
pub type Counter = (&'static str, fn(&Status) -> &AtomicU64, &'static str);

/// The health row's counters (highlighted when not zero).
#[rustfmt::skip]
pub const COUNTERS: [Counter; 9] = [
    ("obs. overflows", |s| &s.observation_overflows, "Observations dropped: the audio → generator ring was full"),
    ("gen. retries", |s| &s.schedule_ring_full, "Times the generator found the generator → audio ring full and retried"),
    ("answer overflows", |s| &s.answer_overflows, "Answer notes dropped: an answer exceeded the audio thread's slot"),
    ("host refused", |s| &s.host_refused_events, "Note events the host refused (its output queue was full)"),
    ("dropped note-ons", |s| &s.dropped_note_ons, "Note-ons dropped because a block was full"),
    ("late answers", |s| &s.late_answers, "Answers that came after their grid point and started on the next one"),
    ("skipped answers", |s| &s.skipped_answers, "Answers a bounce gave up waiting for (2 s), or lost with a failed generator"),
    ("gen. panics", |s| &s.generator_panics, "Times the generator thread failed (it restarts once per activation)"),
    ("voice fallbacks", |s| &s.voice_slot.fallbacks, "Times a neural voice missed its block's deadline and the synth took its line over"),
];

/// The key heard in the session's phrases, if any yet.
pub fn heard_key(status: &Status) -> Option<Key> {
    Key::from_index(status.heard_key.load(Ordering::Relaxed).checked_sub(1)?)
}

/// The grid of the latest phrase heard, if any yet.
pub fn heard_grid(status: &Status) -> Option<Grid> {
    let index = status.heard_grid.load(Ordering::Relaxed).checked_sub(1)?;
    Grid::ALL.get(usize::from(index)).copied()
}

/// What WaveJam heard in the player: "D major · swung 8ths · 72 BPM from beat 3.5" (key, grid,
/// and when it follows the player's own tempo, that and the beat of their bar their phrase began
/// on, to a quarter beat), or `None` before anything was heard.
pub fn heard(status: &Status) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    parts.extend(heard_key(status).map(|k| k.to_string()));
    parts.extend(heard_grid(status).map(|g| g.label().to_string()));
    let bpm = status.heard_tempo_bpm.load(Ordering::Relaxed);
    if bpm.is_finite() && bpm > 0.0 {
        let start = status.heard_start_in_bar.load(Ordering::Relaxed);
        // NOTE: a phrase may begin a hair before its beat; it began on it.
        let beat = 1.0 + ((start * 4.0).round() / 4.0).max(0.0);
        parts.push(format!("{bpm:.0} BPM from beat {beat}"));
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// What the panel's header says about the generator: (note, what it means, colour), the most
/// serious first.
pub fn generator_notes(status: &Status) -> Vec<(&'static str, &'static str, Color32)> {
    let mut notes = Vec::new();
    if status.generator_dead.load(Ordering::Relaxed) {
        notes.push((
            "generator down",
            "The generator thread failed twice: WaveJam answers nothing until it is re-activated \
             (every note was released)",
            theme::DANGER,
        ));
    }
    if status.warming_up.load(Ordering::Relaxed) {
        notes.push((
            "warming up",
            "The long-term memory of the corpus is being built (a few seconds after the first \
             load): hybrid answers from the WaveNet and your phrases, markov from your phrases",
            theme::WARNING,
        ));
    }
    if status.host_has_no_midi_output.load(Ordering::Relaxed) {
        notes.push((
            "no MIDI output",
            "This host takes no notes from WaveJam here (no note output connected): the answers \
             sound only on WaveJam's own voice, and not at all with Output on MIDI only",
            theme::TEXT_DIM,
        ));
    }
    if status.running_ahead.load(Ordering::Relaxed) {
        notes.push((
            "rendering ahead",
            "The host renders far faster than real time: WaveJam waits for its answers as in a \
             bounce",
            theme::TEXT_DIM,
        ));
    }
    notes
}

/// `tempo_bpm` if it is a usable tempo, else [`FALLBACK_TEMPO_BPM`].
pub fn tempo_bpm(tempo_bpm: f64) -> f64 {
    if tempo_bpm.is_finite() && tempo_bpm > 0.0 {
        tempo_bpm
    } else {
        FALLBACK_TEMPO_BPM
    }
}

/// `bar_beats` if it is a usable bar length, else [`FALLBACK_BAR_BEATS`].
pub fn bar_beats(bar_beats: f64) -> f64 {
    if bar_beats.is_finite() && bar_beats > 0.0 {
        bar_beats
    } else {
        FALLBACK_BAR_BEATS
    }
}

/// The playhead at `beat` (beats from the song start) as "bar.beat", both counted from 1, in
/// bars of `bar_beats_now` from the bar line at `origin_beat`, whose bar is number
/// `origin_number` (0 for the song's first, as hosts count); a count-in before the song start
/// shows as bar 0 or below.
pub fn bar_beat(beat: f64, bar_beats_now: f64, origin_beat: f64, origin_number: i64) -> String {
    let bar_len = bar_beats(bar_beats_now);
    let since = if beat.is_finite() { beat } else { 0.0 } - origin_beat;
    let since = if since.is_finite() { since } else { 0.0 };
    let bar = origin_number + (since / bar_len).floor() as i64 + 1;
    let beat_in_bar = since.rem_euclid(bar_len).floor() as i64 + 1;
    format!("{bar}.{beat_in_bar}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_counts_bars_and_beats_from_one() {
        let plain = |beat, bar_beats| bar_beat(beat, bar_beats, 0.0, 0);
        assert_eq!(plain(0.0, 4.0), "1.1");
        assert_eq!(plain(3.99, 4.0), "1.4");
        assert_eq!(plain(5.5, 4.0), "2.2");
        assert_eq!(plain(6.0, 3.0), "3.1");
        assert_eq!(plain(-0.5, 4.0), "0.4");
        // After a 2/4 first bar, the host's bar 1 (the second) starts at beat 2.
        assert_eq!(bar_beat(2.0, 4.0, 2.0, 1), "2.1");
        assert_eq!(bar_beat(7.5, 4.0, 2.0, 1), "3.2");
    }

    #[test]
    fn the_header_names_what_the_generator_is_going_through() {
        let status = Status::default();
        assert!(generator_notes(&status).is_empty());
        status.warming_up.store(true, Ordering::Relaxed);
        status.generator_dead.store(true, Ordering::Relaxed);
        let notes: Vec<&str> = generator_notes(&status).iter().map(|n| n.0).collect();
        assert_eq!(notes, ["generator down", "warming up"]);
        assert_eq!(heard_key(&status), None);
        status.heard_key.store(7 + 12 + 1, Ordering::Relaxed);
        assert_eq!(heard_key(&status).unwrap().to_string(), "G minor");
    }

    #[test]
    fn what_was_heard_reads_key_grid_and_free_tempo() {
        let status = Status::default();
        assert_eq!(heard(&status), None);
        status.heard_key.store(2 + 1, Ordering::Relaxed);
        status
            .heard_grid
            .store(Grid::Swung8 as u8 + 1, Ordering::Relaxed);
        assert_eq!(heard(&status).unwrap(), "D major · swung 8ths");
        status.heard_tempo_bpm.store(71.6, Ordering::Relaxed);
        status.heard_start_in_bar.store(2.48, Ordering::Relaxed);
        assert_eq!(
            heard(&status).unwrap(),
            "D major · swung 8ths · 72 BPM from beat 3.5"
        );
        status.heard_grid.store(9, Ordering::Relaxed);
        status.heard_start_in_bar.store(-0.1, Ordering::Relaxed);
        assert_eq!(heard(&status).unwrap(), "D major · 72 BPM from beat 1");
    }

    #[test]
    fn missing_host_figures_fall_back() {
        assert_eq!(bar_beat(4.0, 0.0, 0.0, 0), "2.1");
        assert_eq!(bar_beat(f64::NAN, f64::NAN, 0.0, 0), "1.1");
        assert_eq!(bar_beat(4.0, 4.0, f64::NAN, 0), "1.1");
        assert_eq!(tempo_bpm(0.0), FALLBACK_TEMPO_BPM);
        assert_eq!(tempo_bpm(f64::INFINITY), FALLBACK_TEMPO_BPM);
        assert_eq!(tempo_bpm(97.5), 97.5);
    }
}
